"""The example's training gives the same weights whatever kernels the CPU would pick and however many threads it has,
so the README's figures are the ones a fresh clone gets."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from conftest import ROOT, SCRIPTS

TRAIN = """
import hashlib, sys
import example_training as teach
if sys.argv[2] == "reproducible":
    teach.reproducible_numerics()
from example_models import build_chat_model
teach.CHAT_STEPS = 6
teach.teach_chat_model(build_chat_model(sys.argv[1], 0, corpus=teach.corpus(), vocab_size=teach.VOCAB), 0)
from transformers import AutoModelForCausalLM
weights = AutoModelForCausalLM.from_pretrained(sys.argv[1]).state_dict()
print(hashlib.sha256(b"".join(w.numpy().tobytes() for w in weights.values())).hexdigest())
"""


def cpu_has(flag: str) -> bool:
    """Whether /proc/cpuinfo lists an instruction-set flag."""
    try:
        with open("/proc/cpuinfo") as handle:
            return flag in handle.read().split()
    except OSError:
        return False


def weights_hash(folder, mode: str, env: dict) -> str:
    """Train the chat model a few steps in a fresh process; the hash of its weights."""
    done = subprocess.run([sys.executable, "-c", TRAIN, str(folder), mode], capture_output=True, text=True,
                          env={**os.environ, "PYTHONPATH": os.pathsep.join([ROOT, SCRIPTS]), **env}, timeout=600,
                          check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout.strip().splitlines()[-1]


@pytest.mark.slow
def test_training_is_the_same_on_other_instruction_sets_and_thread_counts(tmp_path):
    """torch picks AVX2 or AVX-512 kernels by CPU (ATEN_CPU_CAPABILITY stands in for another CPU here) and MKL its
    code path (MKL_CBWR); the example's training gives the same weights under each, with one thread or two."""
    best = "avx512" if cpu_has("avx512f") else "avx2" if cpu_has("avx2") else "default"
    machines = [{"ATEN_CPU_CAPABILITY": best, "MKL_CBWR": best.upper() if best != "default" else "AUTO",
                 "OMP_NUM_THREADS": "2"},
                {"ATEN_CPU_CAPABILITY": "avx2" if best != "default" else "default", "MKL_CBWR": "AVX2",
                 "OMP_NUM_THREADS": "1"},
                {}]
    hashes = {weights_hash(tmp_path / f"m{i}", "reproducible", env) for i, env in enumerate(machines)}
    assert len(hashes) == 1, hashes
    if best == "avx512":  # the control: without it, the kernels torch picks change the weights
        assert weights_hash(tmp_path / "c0", "native", machines[0]) != weights_hash(tmp_path / "c1", "native",
                                                                                   machines[1])

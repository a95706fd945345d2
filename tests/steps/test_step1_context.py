"""--max_length and --max_new_tokens are checked against the model's context before any work, on both local
backends: one line, nothing written (no checkpoint, no engine started)."""
from __future__ import annotations

import os

import pytest

from generation.common.cli import run_main
from generation.generate_reasoning_samples import main

from fixtures_benchmarks import write_benchmark

CONTEXT = 4096  # tiny_models.build_chat_model: max_position_embeddings


@pytest.mark.parametrize("backend", ["transformers", "vllm"])
@pytest.mark.parametrize("flag", ["--max_length", "--max_new_tokens"])
def test_length_above_the_model_context_is_one_line_before_the_checkpoint(tiny_chat_model, tmp_path, capsys,
                                                                          backend, flag):
    path = write_benchmark("math", str(tmp_path / "bench"))
    argv = ["--model", tiny_chat_model, "--backend", backend, "--dataset", "math", "--dataset_path", path,
            "--output_path", str(tmp_path / "o"), "--max_length", str(CONTEXT + 1 if flag == "--max_length" else 64),
            "--max_new_tokens", str(CONTEXT + 1 if flag == "--max_new_tokens" else 8)]
    with pytest.raises(SystemExit) as exited:
        run_main(main, argv)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert exited.value.code == 2 and "Traceback" not in err and len(lines) == 1, err
    assert f"{flag} {CONTEXT + 1} is above the context" in lines[0] and f"{flag} {CONTEXT} or less" in lines[0]
    assert sorted(os.listdir(tmp_path)) == ["bench"]  # no output, no checkpoint, no lock

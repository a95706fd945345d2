"""Step 3a end to end: the script on tiny local RMs (resume, incremental add, shards, failures, bad input, workers)."""
from __future__ import annotations

import json
import os

import datasets
import pytest

from generation import merge_shards
from generation import unified_RMs_and_LM_Judges as step3
from generation.common.cli import UserError
from generation.common.writing import provenance_path

import tiny_reward_models as tiny
from conftest import ENGINE_IN_PROCESS, GENERATION, run_script

SCRIPT = "unified_RMs_and_LM_Judges.py"
ROWS = [
    {"instruction": f"Question {i}: What is {i} + {i}?",
     "samples": [f"Step 1: add.\n\nStep 2: check.\n\nThe answer is: {2 * i}", "the of and " * (5 + 20 * i) +
                 f"\n\nThe answer is: {i}", f"short {i}"],
     "extracted_answers": [str(2 * i), str(i), None], "answer_correct": [True, False, False], "answer": str(2 * i)}
    for i in range(4)
]


@pytest.fixture(scope="module")
def rms(tmp_path_factory) -> dict[str, str]:
    """Tiny models as NAME=PATH:KIND entries."""
    root = str(tmp_path_factory.mktemp("cli-rms"))
    return {"seq": f"TinySeq={tiny.build_sequence_classifier(f'{root}/seq')}:sequence_classifier",
            "prm": f"TinyPRM={tiny.build_qwen2_rm(f'{root}/prm', 2)}:step_prm",
            "gpm": f"TinyGPM={tiny.build_custom_head(f'{root}/gpm', 'gpm')}:gpm",
            "rm": f"TinyQwenRM={tiny.build_qwen2_rm(f'{root}/rm', 1)}:scalar_head",
            "internlm2": f"TinyInternLM2={tiny.build_internlm2(f'{root}/internlm2')}:internlm2",
            "gpm_path": f"{root}/gpm"}


@pytest.fixture()
def step2(tmp_path) -> str:
    """A Step 2 style output: DatasetDict({'data': ...}) saved to disk."""
    path = str(tmp_path / "step2.hf")
    datasets.DatasetDict({"data": datasets.Dataset.from_list(ROWS)}).save_to_disk(path)
    return path


def load(path: str):
    """The 'data' split of a saved output."""
    return datasets.load_from_disk(path)["data"]


class Result:
    """Exit code and printed summary of an in-process run."""

    def __init__(self, returncode: int, stdout: str) -> None:
        self.returncode, self.stdout = returncode, stdout


@pytest.fixture()
def run(capsys):
    """Run Step 3's main in this process (imports are paid once), returning its exit code and stdout."""
    def call(*args: str) -> Result:
        capsys.readouterr()
        code = step3.main(list(args))
        return Result(code, capsys.readouterr().out)

    return call


@pytest.mark.slow
def test_scores_columns_provenance_and_max_samples(rms, step2, tmp_path, run):
    """Scores every sample, writes aligned columns (max_samples cuts every per-sample column) and provenance."""
    out = str(tmp_path / "out.hf")
    proc = run("--dataset_path", step2, "--output_path", out, "--reward_models", f"{rms['seq']},{rms['prm']}",
               "--max_samples", "2", "--max_input_length", "64", "--batch_size", "3")
    assert proc.returncode == 0
    data = load(out)
    for row in data:
        assert len(row["samples"]) == len(row["answer_correct"]) == len(row["extracted_answers"]) == 2
        assert len(row["TinySeq_scores"]) == 2 and all(isinstance(s, float) for s in row["TinySeq_scores"])
        assert [len(s) for s in row["TinyPRM_step_scores"]] == [3, 2]
        assert row["TinyPRM_min_scores"][0] == min(row["TinyPRM_step_scores"][0])
    prov = json.load(open(provenance_path(out)))
    seq = prov["verifiers"]["TinySeq"]
    assert seq["kind"] == "sequence_classifier" and seq["batch_size"] == 3 and seq["dtype"] == "float32"
    assert seq["loaded"] == "native"
    assert seq["truncated"] >= 2 and seq["failures"] == 0 and "score_s" in seq
    assert "TinySeq: scored" in proc.stdout and "truncated" in proc.stdout


@pytest.mark.slow
def test_rerun_skips_and_incremental_add_in_place(rms, step2, tmp_path, run):
    """Re-running reuses checkpoints; adding a verifier to the step's own output keeps the earlier columns."""
    out = str(tmp_path / "out.hf")
    args = ["--dataset_path", step2, "--output_path", out, "--reward_models", rms["seq"]]
    assert run(*args).returncode == 0
    first = load(out)["TinySeq_scores"]
    again = run(*args)
    assert again.returncode == 0 and "TinySeq: reused checkpoint" in again.stdout
    added = run("--dataset_path", out, "--output_path", out, "--reward_models", f"{rms['seq']},{rms['prm']}",
                "--max_input_length", "4096")
    assert added.returncode == 0
    assert "TinySeq: kept existing columns" in added.stdout and "TinyPRM: scored" in added.stdout
    data = load(out)
    assert data["TinySeq_scores"] == first and "TinyPRM_avg_scores" in data.column_names
    assert data["answer_correct"] == [r["answer_correct"] for r in ROWS]
    # the provenance still says which model made the kept columns, also after a further incremental run
    for extra in (["--reward_models", ""], ["--reward_models", rms["prm"], "--max_input_length", "4096"]):
        assert run("--dataset_path", out, "--output_path", out, *extra).returncode == 0
        earlier = json.load(open(provenance_path(out)))["earlier_verifiers"]
        assert earlier["TinySeq"]["kind"] == "sequence_classifier" and earlier["TinySeq"]["hf_id"]


@pytest.mark.slow
def test_resume_from_item_store(rms, step2, tmp_path, run):
    """A model interrupted mid-way resumes from its per-item store instead of recomputing."""
    out = str(tmp_path / "out.hf")
    args = ["--dataset_path", step2, "--output_path", out, "--reward_models", rms["seq"]]
    assert run(*args).returncode == 0
    folder = out + ".checkpoint"
    os.remove(os.path.join(folder, "verifier-TinySeq.json"))  # as if killed before the model finished
    store = next(f for f in os.listdir(folder) if f.startswith("rm-TinySeq") and f.endswith(".jsonl"))
    lines = open(os.path.join(folder, store)).read().splitlines()
    marker = {"k": json.loads(lines[0])["k"], "v": 123.5}
    with open(os.path.join(folder, store), "w") as handle:
        handle.write("\n".join(lines[:3] + [json.dumps(marker)]) + '\n{"k": "torn')
    assert run(*args).returncode == 0
    flat = [s for row in load(out)["TinySeq_scores"] for s in row]
    assert 123.5 in flat and None not in flat
    assert json.load(open(provenance_path(out)))["verifiers"]["TinySeq"]["resumed"] == 3


@pytest.mark.slow
def test_failures_are_none_and_exit_nonzero(rms, step2, tmp_path, run):
    """A model that cannot load fails alone (others saved); unscorable samples are None; exit code 1."""
    out = str(tmp_path / "out.hf")
    wrong = f"Broken={rms['gpm_path']}:sequence_classifier"  # a causal-LM checkpoint has no classifier head
    proc = run("--dataset_path", step2, "--output_path", out, "--reward_models", f"{rms['seq']},{wrong},{rms['gpm']}",
               "--max_samples", "1")
    assert proc.returncode == 1
    assert "Broken: failed" in proc.stdout and "random" in proc.stdout
    assert "TinyGPM: scored with failures, 4 failed samples" in proc.stdout
    data = load(out)
    assert data["TinyGPM_scores"] == [[None]] * 4 and "Broken_scores" not in data.column_names
    assert all(isinstance(row[0], float) for row in data["TinySeq_scores"])
    prov = json.load(open(provenance_path(out)))
    assert prov["failures"] == {"Broken": 4, "TinyGPM": 4}


def test_bad_input_is_refused_before_writing(rms, step2, tmp_path):
    """Unknown names, missing columns, ragged rows, CUDA without GPU and unloadable models: clear error, no output."""
    out = str(tmp_path / "out.hf")
    empty, no_head = str(tmp_path / "empty"), tiny.build_qwen2_rm(str(tmp_path / "nohead"), 2, head=False)
    os.makedirs(empty)
    proc = run_script(SCRIPT, "--dataset_path", step2, "--output_path", out, "--reward_models", "NoSuchRM")
    assert proc.returncode == 2 and "unknown reward model(s) NoSuchRM; known: ArmorRM" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    cases = [
        (["--reward_models", rms["seq"], "--device", "cuda"], "no CUDA GPU"),
        (["--reward_models", "X=/no/such/folder:sequence_classifier"], "reward model X cannot be loaded"),
        (["--reward_models", "X=/tmp:not_a_kind"], "unknown loader kind"),
        (["--reward_models", f"NotModel={empty}:step_prm"], r"NotModel cannot be loaded .*is not a model checkpoint"),
        (["--reward_models", f"NotModel={empty}:sequence_classifier"], "reward model NotModel cannot be loaded"),
        (["--reward_models", f"NoHead={no_head}:step_prm"], r"NoHead cannot be loaded .*has no score\.\* head weights"),
        (["--reward_models", f"NoHead={no_head}:internlm2"], "model_type 'qwen2', not internlm2"),
    ]
    for extra, message in cases:
        with pytest.raises(UserError, match=message) as caught:
            step3.main(["--dataset_path", step2, "--output_path", out, *extra])
        assert "\n" not in str(caught.value)
    ragged = str(tmp_path / "ragged.jsonl")
    with open(ragged, "w") as handle:
        for i, row in enumerate(ROWS):
            samples = row["samples"][: 3 - (i == 2)]  # row 2 has one sample fewer
            handle.write(json.dumps({"instruction": row["instruction"], "samples": samples}) + "\n")
    with pytest.raises(UserError, match=r"rows \[2\] differ"):
        step3.main(["--dataset_path", ragged, "--output_path", out, "--reward_models", rms["seq"]])
    no_samples = str(tmp_path / "nosamples.jsonl")
    with open(no_samples, "w") as handle:
        handle.write(json.dumps({"problem": "q", "answer": "1"}) + "\n")
    with pytest.raises(UserError, match=r"lacks column\(s\) samples"):
        step3.main(["--dataset_path", no_samples, "--output_path", out, "--reward_models", rms["seq"]])
    needs_package = tiny.build_multi_objective(str(tmp_path / "needs-package"))  # like sklearn for decision trees
    with open(os.path.join(needs_package, "modeling_tiny_rm.py"), "a") as handle:
        handle.write("\nimport package_missing_here_xyz  # noqa\n")
    with pytest.raises(UserError, match="reward model Needy .*package_missing_here_xyz"):
        step3.main(["--dataset_path", step2, "--output_path", out,
                    "--reward_models", f"Needy={needs_package}:multi_objective"])
    assert not os.path.exists(out) and not os.path.exists(out + ".checkpoint")
    for cut in (["--max_rows", "2"], ["--max_samples", "1"], ["--start_row", "1"]):  # in place: rest would be lost
        with pytest.raises(UserError, match="writing them over the input would delete the rest"):
            step3.main(["--dataset_path", step2, "--output_path", step2, "--reward_models", rms["seq"], *cut])
    assert load(step2)["samples"] == [row["samples"] for row in ROWS]


@pytest.mark.slow
def test_shards_merge_back(rms, step2, tmp_path, run):
    """--start_row/--end_row shards merged with merge_shards.py equal a single run (run from generation/)."""
    whole, parts = str(tmp_path / "whole.hf"), [str(tmp_path / "a.hf"), str(tmp_path / "b.hf")]
    assert run("--dataset_path", step2, "--output_path", whole, "--reward_models", rms["seq"]).returncode == 0
    first = run_script(SCRIPT, "--dataset_path", step2, "--output_path", parts[0], "--reward_models", rms["seq"],
                       "--start_row", "0", "--end_row", "3", cwd=GENERATION)  # as `cd generation && python ...`
    assert first.returncode == 0, first.stderr[-2000:]
    assert run("--dataset_path", step2, "--output_path", parts[1], "--reward_models", rms["seq"],
               "--start_row", "3", "--end_row", "4").returncode == 0
    merged = str(tmp_path / "merged.hf")
    assert merge_shards.main(["--shards", *parts, "--output_path", merged]) == 0
    for got, want in zip(load(merged)["TinySeq_scores"], load(whole)["TinySeq_scores"], strict=True):
        assert got == pytest.approx(want, abs=1e-6)
    kept, single = (json.load(open(os.path.join(path, "provenance.json"))) for path in (merged, whole))
    assert kept["fingerprint"] == single["fingerprint"]  # recomputed over all rows: a later run reuses the merge
    assert kept["verifiers"].keys() == single["verifiers"].keys()
    assert kept["verifiers"]["TinySeq"]["failures"] == single["verifiers"]["TinySeq"]["failures"]
    with pytest.raises(UserError, match="different columns"):
        merge_shards.main(["--shards", parts[0], step2, "--output_path", str(tmp_path / "x.hf")])
    same_shard = os.path.join(str(tmp_path), ".", "a.hf")  # the first shard, spelled differently
    with pytest.raises(UserError, match="must differ from every input"):
        merge_shards.main(["--shards", *parts, "--output_path", same_shard])


def test_list_prints_registry(run):
    """--list prints every registry entry and exits 0."""
    proc = run("--list")
    assert proc.returncode == 0
    for name in ("GPM", "QwenPRM", "EurusPRMStage2", "INFORM", "SkyworkV2-Qwen3-0.6B", "step_prm"):
        assert name in proc.stdout


@pytest.mark.slow
def test_parallel_workers_match_in_process(rms, step2, tmp_path):
    """One worker process per (pretend) GPU scores the same as in-process; jobs are queued largest first."""
    from generation.reward_models.inputs import ScoreOptions
    from generation.reward_models.placement import Job, plan_order, run_all, run_parallel
    from generation.reward_models.registry import RewardModelSpec, parse_path_spec

    items = [[r["instruction"], s] for r in ROWS for s in r["samples"]]
    items_path = str(tmp_path / "items.json")
    json.dump(items, open(items_path, "w"))
    specs = [parse_path_spec(rms["seq"]), parse_path_spec(rms["prm"])]

    def jobs(tag: str) -> list[Job]:
        return [Job(s, ScoreOptions(batch_size=2), items_path, str(tmp_path / f"{tag}-{s.name}.jsonl"),
                    str(tmp_path / f"{tag}-{s.name}.summary.json")) for s in specs]

    done: dict[str, dict] = {}
    run_parallel(jobs("par"), gpu_ids=[0, 1], per_gpu_gb=80, on_done=lambda j, s: done.__setitem__(j.spec.name, s),
                 poll_s=0.1)
    assert set(done) == {"TinySeq", "TinyPRM"} and not any("fatal" in s for s in done.values())
    mode = run_all(jobs("seq"), "cpu", False, lambda j, s: None)
    assert mode == "sequential (in-process) on CPU"
    for spec in specs:
        par = {r["k"]: r["v"] for r in map(json.loads, open(tmp_path / f"par-{spec.name}.jsonl"))}
        seq = {r["k"]: r["v"] for r in map(json.loads, open(tmp_path / f"seq-{spec.name}.jsonl"))}
        assert par.keys() == seq.keys() and len(par) == len(items)
        for key, value in par.items():
            assert value == pytest.approx(seq[key], abs=1e-5)
    big = RewardModelSpec("Big", "x", "inform", memory_gb=150)
    order = plan_order(jobs("p") + [Job(big, ScoreOptions(), "", "", "")], per_gpu_gb=80, n_gpus=4)
    assert [(j.spec.name, n) for j, n in order][0] == ("Big", 3)


@pytest.mark.slow
def test_judge_failures_never_discard_reward_model_columns(rms, step2, tmp_path, run):
    """RM and LM-judge columns checkpoint independently: a failing judge leaves the RM scores saved."""
    from loopback import LoopbackServer, Reply, default_responder

    out = str(tmp_path / "out.hf")
    args = ["--dataset_path", step2, "--output_path", out, "--reward_models", rms["seq"],
            "--lm_judges", "Loop=openai_compatible:judge"]
    with LoopbackServer(lambda path, request, count: Reply(status=400, body={"error": "bad"})) as server:
        failed = run(*args, "--base_url", server.url)
    assert failed.returncode == 1 and "TinySeq: scored" in failed.stdout and "Loop: failed" in failed.stdout
    data = load(out)  # the judge raised (HTTP 400 is fatal): its columns are absent, the RM's are saved
    scores = data["TinySeq_scores"]
    assert all(isinstance(s, float) for row in scores for s in row) and "Loop_verdicts" not in data.column_names
    with LoopbackServer(default_responder) as server:
        again = run(*args, "--base_url", server.url)
        assert len(server.requests) == 12  # only the judge runs again
    assert again.returncode == 0 and "TinySeq: reused checkpoint" in again.stdout
    data = load(out)
    assert data["TinySeq_scores"] == scores and len(data["Loop_verdicts"][0]) == 3


@pytest.mark.slow
def test_registry_file_implicit_prm_and_overwrite(rms, step2, tmp_path, run):
    """--rm_registry adds an implicit PRM with its reference model; --overwrite recomputes instead of reusing."""
    policy, reference = tiny.build_implicit_pair(str(tmp_path / "eurus"))
    registry = tiny.write_registry(str(tmp_path / "rms.json"), [
        {"name": "TinyEurus", "hf_id": policy, "kind": "implicit_prm", "reference_model": reference, "beta": 0.001}])
    out = str(tmp_path / "out.hf")
    args = ["--dataset_path", step2, "--output_path", out, "--rm_registry", registry, "--reward_models", "TinyEurus",
            "--max_samples", "2"]
    assert run(*args).returncode == 0
    data = load(out)
    assert [len(steps) for steps in data["TinyEurus_step_scores"][1]] == [3, 2]
    assert data["TinyEurus_avg_scores"][0][0] == pytest.approx(sum(data["TinyEurus_step_scores"][0][0]) / 3)
    again = run(*args, "--overwrite")
    assert again.returncode == 0 and "TinyEurus: scored" in again.stdout
    flat = lambda rows: [s for row in rows for steps in row for s in steps]
    assert flat(load(out)["TinyEurus_step_scores"]) == pytest.approx(flat(data["TinyEurus_step_scores"]), abs=1e-7)


@pytest.mark.slow
def test_vllm_pooling_backend_matches_transformers(rms, step2, tmp_path, run):
    """--rm_backend vllm scores sequence classifiers (raw logits, no sigmoid) and, with vLLM's built-in
    Qwen2ForProcessRewardModel, Qwen2ForRewardModel and InternLM2ForRewardModel, the Qwen2.5-Math PRM and RM and the
    InternLM2 reward model (engines one after the other in one process, each inside it): the same scores as
    transformers' native loaders; GPM falls back."""
    hf_out, vllm_out = str(tmp_path / "hf.hf"), str(tmp_path / "vllm.hf")
    names = ("TinySeq", "TinyPRM", "TinyQwenRM", "TinyInternLM2")
    models = ",".join(rms[key] for key in ("seq", "prm", "rm", "internlm2"))
    assert run("--dataset_path", step2, "--output_path", hf_out, "--reward_models", models).returncode == 0
    proc = run_script(SCRIPT, "--dataset_path", step2, "--output_path", vllm_out, "--reward_models",
                      f"{models},{rms['gpm']}", "--rm_backend", "vllm", "--batch_size", "8", env=ENGINE_IN_PROCESS)
    assert proc.returncode == 0, proc.stderr[-3000:]
    verifiers = json.load(open(provenance_path(vllm_out)))["verifiers"]
    assert [verifiers[n]["backend"] for n in names] == ["vllm"] * 4
    assert verifiers["TinyGPM"]["backend"] == "transformers (vLLM has no built-in class for gpm)"
    got, want = load(vllm_out), load(hf_out)
    for column in ("TinySeq_scores", "TinyPRM_min_scores", "TinyPRM_avg_scores", "TinyQwenRM_scores",
                   "TinyInternLM2_scores"):
        assert all(isinstance(s, float) for row in got[column] for s in row[:2]), column
        for a, b in zip(got[column], want[column], strict=True):
            assert a == pytest.approx(b, abs=1e-4), column
    for a, b in zip(got["TinyPRM_step_scores"], want["TinyPRM_step_scores"], strict=True):
        assert [len(s) for s in a] == [len(s) for s in b] and sum(a, []) == pytest.approx(sum(b, []), abs=1e-4)


@pytest.mark.slow
def test_check_mode_reports_each_model(rms, tmp_path, run):
    """--check loads each model, scores the built-in pairs and prints one row per model; a model that fails to load
    or gives a non-finite score makes the exit code 1."""
    from safetensors.torch import load_file, save_file

    good = run("--check", "--reward_models", f"{rms['seq']},{rms['prm']}")
    assert good.returncode == 0, good.stdout
    lines = good.stdout.strip().splitlines()
    assert lines[0].split()[:4] == ["model", "loaded", "finite", "correct>wrong"]
    for name, row in zip(("TinySeq", "TinyPRM"), lines[1:]):
        fields = row.split()
        assert fields[:3] == [name, "native", "yes"] and fields[3] in ("0/2", "1/2", "2/2")
        assert float(fields[4]) > 0 and "GiB" in row
    nan = tiny.build_sequence_classifier(str(tmp_path / "nan"))
    weights = load_file(os.path.join(nan, "model.safetensors"))
    weights["score.weight"][:] = float("nan")
    save_file(weights, os.path.join(nan, "model.safetensors"), metadata={"format": "pt"})
    bad = run("--check", "--reward_models", f"NaN={nan}:sequence_classifier,Gone=/no/such/rm:sequence_classifier")
    assert bad.returncode == 1
    rows = bad.stdout.strip().splitlines()[1:]
    assert rows[0].split()[:3] == ["NaN", "native", "NO"] and "non-finite score" in rows[0]
    assert rows[1].startswith("Gone") and "FAILED TO LOAD" in rows[1]

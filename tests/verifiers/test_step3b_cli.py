"""Step 3b end to end: unified_RMs_and_LM_Judges.py with a loopback API judge (columns, failures, resume)."""
import json

import datasets
import pytest
from test_step3b_api import SCRIPT, sample_index, scripted
from test_step3b_parsing import judge_args

from generation.common.writing import provenance_path
from generation.judges.judging import JudgeSettings, judge_columns
from generation.judges.registry import parse_judge
from generation.steps.verifier_checkpoints import VerifierCheckpoints, rows_fingerprint

from conftest import run_script
from loopback import LoopbackServer, Reply

ROWS = [{"instruction": f"Problem {r}", "samples": [f"Solution SAMPLE-{r * 3 + s}" for s in range(3)],
         "answer_correct": [True, False, True]} for r in range(2)]


@pytest.mark.slow
def test_cli_judge_columns_failures_and_resume(tmp_path):
    source = str(tmp_path / "step2.hf")
    datasets.DatasetDict({"data": datasets.Dataset.from_list(ROWS)}).save_to_disk(source)
    out = str(tmp_path / "out.hf")

    def flaky(path: str, request: dict, count: int) -> Reply:
        return Reply(body="{broken") if sample_index(request) == 3 else scripted(path, request, count)

    command = ["--dataset_path", source, "--output_path", out, "--reward_models", "",
               "--lm_judges", "Loop=openai_compatible:judge", "--verdicts_per_sample", "2"]
    with LoopbackServer(flaky) as server:
        proc = run_script("unified_RMs_and_LM_Judges.py", *command, "--base_url", server.url)
    assert proc.returncode == 1, proc.stderr[-3000:]  # a failed request remains: non-zero, output still written
    assert "Loop" in proc.stdout and "1 failed" in proc.stdout
    summary = proc.stdout.split("Step 3 summary")[1]
    assert "Loop: judged with failures, 1 failed samples in rows 1 (" in summary  # the failed row is named
    unparsed = sum(SCRIPT[i][1] is None for i in range(6) if i != 3) * 2
    assert f"{unparsed} judgments without a verdict" in summary  # honest Nones are named in the summary
    with open(provenance_path(out)) as handle:
        reasons = json.load(handle)["verifiers"]["Loop"]["failure_reasons"]
    assert reasons and all(reason in summary for reason in reasons)  # and so is why requests failed
    data = datasets.load_from_disk(out)["data"]
    expected = [[[SCRIPT[r * 3 + s][1]] * 2 for s in range(3)] for r in range(2)]
    expected[1][0] = [None, None]
    assert data["Loop_verdicts"] == expected
    assert data["Loop_judgments"][0][0] == [SCRIPT[0][0]] * 2 and data["Loop_judgments"][1][0] == [None, None]
    with open(provenance_path(out)) as handle:
        record = json.load(handle)
    assert json.dumps(record).count("Loop") and record["failures"] == {"Loop": 1}
    prompts_hash = record["verifiers"]["Loop"]["prompts_hash"]  # the judge prompt's hash is column metadata too,
    described = json.loads(data.info.description)["verifier_columns"]  # in the saved DatasetInfo (survives a reload)
    assert described["Loop_verdicts"]["prompts_hash"] == described["Loop_judgments"]["prompts_hash"] == prompts_hash
    assert len(prompts_hash) == 16 and described["Loop_verdicts"]["model"] == "judge"

    with LoopbackServer(scripted) as server:  # existing columns in the input are kept, their Nones are named
        proc = run_script("unified_RMs_and_LM_Judges.py", "--dataset_path", out,
                          "--output_path", str(tmp_path / "copy.hf"), *command[4:], "--base_url", server.url)
        assert proc.returncode == 0 and not server.requests, proc.stderr[-3000:]
    kept = unparsed // 2 + 1  # samples with a None verdict: the unparsed ones (K=2 each) and the failed one
    assert f"kept existing columns, {kept} None values kept from the input" in proc.stdout
    copied = datasets.load_from_disk(str(tmp_path / "copy.hf"))["data"].info.description  # kept with the columns
    assert json.loads(copied)["verifier_columns"]["Loop_verdicts"]["prompts_hash"] == prompts_hash

    with LoopbackServer(scripted) as server:  # re-run: only the failed sample is asked again
        proc = run_script("unified_RMs_and_LM_Judges.py", *command, "--base_url", server.url)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert len(server.requests) == 1 and sample_index(server.requests[0]["json"]) == 3
    data = datasets.load_from_disk(out)["data"]
    expected[1][0] = [SCRIPT[3][1]] * 2
    assert expected[1][0] == [0.0, 0.0]
    assert data["Loop_verdicts"] == expected


@pytest.mark.slow
def test_prompts_longer_than_the_judge_context_are_named(tmp_path):
    """A local judge whose context cannot hold the prompt leaves None (no engine is started) and says so."""
    from tiny_models import build_chat_model

    judge = build_chat_model(str(tmp_path / "short-judge"))
    config_path = tmp_path / "short-judge" / "config.json"
    config_path.write_text(json.dumps({**json.loads(config_path.read_text()), "max_position_embeddings": 16}))
    source = str(tmp_path / "step2.hf")
    datasets.DatasetDict({"data": datasets.Dataset.from_list(ROWS)}).save_to_disk(source)
    out = str(tmp_path / "out.hf")
    proc = run_script("unified_RMs_and_LM_Judges.py", "--dataset_path", source, "--output_path", out,
                      "--reward_models", "", "--lm_judges", f"Short={judge}")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "6 prompts longer than the judge's context (None)" in proc.stdout.split("Step 3 summary")[1]
    assert datasets.load_from_disk(out)["data"]["Short_verdicts"] == [[[None]] * 3] * 2


class CountingJudges:
    """The judge half of the step with run_judge replaced by a recorder (the bookkeeping under test is around it)."""

    judge_columns = staticmethod(judge_columns)

    def __init__(self) -> None:
        self.modes: list[bool] = []

    @staticmethod
    def judge_settings(spec, options) -> JudgeSettings:
        """Only the prompts' hash is read by the bookkeeping."""
        return JudgeSettings(verdicts_per_sample=1, temperature=0.0, max_tokens=None, seed=0,
                             critique=options.critique_mode, prompts_hash="ours")

    def run_judge(self, spec, dataset, options, folder, overwrite, budget):
        """Record the mode asked for and answer every sample with one verdict."""
        self.modes.append(options.critique_mode)
        verdicts, judgments = judge_columns(spec, options.critique_mode)
        rows = dataset["samples"]
        return {verdicts: [[[1.0]] * len(r) for r in rows], judgments: [[["True"]] * len(r) for r in rows]}, {}


def test_standard_and_critique_runs_keep_separate_checkpoints(tmp_path):
    """Judging in critique mode does not overwrite the standard run's checkpoint (and vice versa)."""
    data = datasets.Dataset.from_list(ROWS)
    spec, judges, reports = parse_judge("Loop=openai_compatible:judge"), CountingJudges(), []
    for critique in (False, True, False, True):
        checkpoints = VerifierCheckpoints(str(tmp_path), rows_fingerprint(data), overwrite=False)
        checkpoints.run_judge(spec, judges, data, judge_args(*["--critique_mode"] * critique))
        reports.append(checkpoints.report)
    assert judges.modes == [False, True]
    assert reports[2]["Loop"]["status"] == reports[3]["Loop_critique"]["status"] == "reused checkpoint"


def test_a_released_verdicts_column_is_kept_unless_overwrite(tmp_path):
    """Released datasets hold `{judge}_verdicts` without `_judgments`: it is the paper's column, never re-asked."""
    from generation.unified_RMs_and_LM_Judges import main

    released = [[0.0, 1.0, 1.0], [1.0, 0.0, 0.0]]
    source = str(tmp_path / "released.hf")
    rows = [{**row, "Loop_verdicts": verdicts} for row, verdicts in zip(ROWS, released)]
    datasets.DatasetDict({"data": datasets.Dataset.from_list(rows)}).save_to_disk(source)
    command = ["--dataset_path", source, "--reward_models", "", "--lm_judges", "Loop=openai_compatible:judge"]
    with LoopbackServer(scripted) as server:
        assert main(command + ["--output_path", str(tmp_path / "kept.hf"), "--base_url", server.url]) == 0
        assert not server.requests
        assert datasets.load_from_disk(str(tmp_path / "kept.hf"))["data"]["Loop_verdicts"] == released
        main(command + ["--output_path", str(tmp_path / "redone.hf"), "--base_url", server.url, "--overwrite"])
        assert len(server.requests) == 6
        main(command + ["--output_path", str(tmp_path / "redone.hf"), "--base_url", server.url, "--overwrite"])
        assert len(server.requests) == 12  # --overwrite reuses no cached answer (as Step 2 and reward models)


def test_column_metadata_keeps_an_earlier_description():
    """A plain-text dataset description is kept beside the verifier column metadata; earlier columns' entries stay."""
    from generation.steps.verifier_checkpoints import describe_columns

    first = json.loads(describe_columns("Released by the study.", {"A_verdicts": {"prompts_hash": "a"}}))
    assert first == {"text": "Released by the study.", "verifier_columns": {"A_verdicts": {"prompts_hash": "a"}}}
    second = json.loads(describe_columns(json.dumps(first), {"B_verdicts": {"prompts_hash": "b"}}))
    assert second["text"] == first["text"] and set(second["verifier_columns"]) == {"A_verdicts", "B_verdicts"}

"""Step 3b end to end: unified_RMs_and_LM_Judges.py with a loopback API judge (columns, failures, resume)."""
import json

import datasets

from conftest import run_script
from dataset_io import provenance_path
from loopback import LoopbackServer, Reply
from test_step3b_api import SCRIPT, sample_index, scripted

ROWS = [{"instruction": f"Problem {r}", "samples": [f"Solution SAMPLE-{r * 3 + s}" for s in range(3)],
         "answer_correct": [True, False, True]} for r in range(2)]


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
    data = datasets.load_from_disk(out)["data"]
    expected = [[[SCRIPT[r * 3 + s][1]] * 2 for s in range(3)] for r in range(2)]
    expected[1][0] = [None, None]
    assert data["Loop_verdicts"] == expected
    assert data["Loop_judgments"][0][0] == [SCRIPT[0][0]] * 2 and data["Loop_judgments"][1][0] == [None, None]
    with open(provenance_path(out)) as handle:
        record = json.load(handle)
    assert json.dumps(record).count("Loop") and record["failures"] == {"Loop": 1}

    with LoopbackServer(scripted) as server:  # re-run: only the failed sample is asked again
        proc = run_script("unified_RMs_and_LM_Judges.py", *command, "--base_url", server.url)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert len(server.requests) == 1 and sample_index(server.requests[0]["json"]) == 3
    data = datasets.load_from_disk(out)["data"]
    expected[1][0] = [SCRIPT[3][1]] * 2
    assert expected[1][0] == [0.0, 0.0]
    assert data["Loop_verdicts"] == expected

"""Step 3b API judges against a scripted loopback server: parsing end to end, K verdicts, failures, cache, resume."""
import json
import os
import re
import signal
import subprocess
import sys
import textwrap
import time

import pytest
from datasets import Dataset
from test_step3b_parsing import judge_args

from generation.judges.judging import cache_path, request_seed, resolve_judges, run_judge
from generation.judges.registry import parse_judge

from conftest import ROOT
from loopback import LoopbackServer, Reply, anthropic_body, openai_body

TAG = re.compile(r"SAMPLE-(\d+)")

# Judgments the server returns for sample i, and the verdict each must parse to.
SCRIPT = [
    ("Every step holds.\nTrue", 1.0),
    ("Step 2 is wrong.\nFalse", 0.0),
    ("The final claim is untrue", None),
    ("<think>It seems true so far</think>\nFalse", 0.0),
    ("<think>Let me check the first step, which is true, and then", None),  # truncated while thinking
    ("Analysis done.\n**Verdict: True**\n\nThanks!", 1.0),
    ("This would be a false positive", None),
    ("I cannot decide.", None),
]


def sample_index(request: dict) -> int:
    """Which scripted sample a request judges (from the SAMPLE-i tag in its user turn)."""
    user = [m["content"] for m in request["messages"] if m["role"] == "user"][-1]
    return int(TAG.search(user).group(1))


def scripted(path: str, request: dict, count: int) -> Reply:
    """Reply with the scripted judgment of the sample (n identical copies; Anthropic: one per call)."""
    text = SCRIPT[sample_index(request)][0]
    if path.endswith("/messages"):
        return Reply(body=anthropic_body(request, text))
    return Reply(body=openai_body(request, [text] * int(request.get("n") or 1)))


def dataset(n_rows: int = 2, per_row: int = 4) -> Dataset:
    """Rows of per_row tagged samples; sample i is judged with SCRIPT[i % len(SCRIPT)]."""
    samples = [[f"Solution SAMPLE-{(r * per_row + s) % len(SCRIPT)} in row {r}" for s in range(per_row)]
               for r in range(n_rows)]
    return Dataset.from_dict({"instruction": [f"Problem {r}" for r in range(n_rows)], "samples": samples})


def test_scripted_judgments_parse_end_to_end(tmp_path):
    with LoopbackServer(scripted) as server:
        options = judge_args("--base_url", server.url)
        spec = resolve_judges(["Loop=openai_compatible:judge-model"], options)[0]
        columns, stats = run_judge(spec, dataset(), options, str(tmp_path))
    verdicts, judgments = columns["Loop_verdicts"], columns["Loop_judgments"]
    assert [[v for (v,) in row] for row in verdicts] == [[SCRIPT[i][1] for i in range(4)],
                                                          [SCRIPT[i][1] for i in range(4, 8)]]
    assert judgments[0][2] == [SCRIPT[2][0]]  # raw text kept, one per verdict
    assert stats["unparsed"] == sum(v is None for _, v in SCRIPT) and stats["failures"] == 0
    assert stats["calls"] == 8 and stats["verdicts"] == 8 - stats["unparsed"]
    request = server.requests[0]["json"]
    assert request["temperature"] == 0.0 and "n" not in request
    assert request["messages"][0]["role"] == "system"


def test_api_judgment_cut_at_max_tokens_is_none(tmp_path, monkeypatch):
    """A reply the provider stopped at max_tokens has no trustworthy verdict, even if its last line reads True."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")

    def cut(path: str, request: dict, count: int) -> Reply:
        text = "Step 1 is true. True"
        if path.endswith("/messages"):
            return Reply(body=anthropic_body(request, text, stop_reason="max_tokens"))
        return Reply(body=openai_body(request, [text], finish_reason="length"))

    for name in ("Loop=openai_compatible:judge-model", "Claude=anthropic:claude-x"):
        with LoopbackServer(cut) as server:
            options = judge_args("--base_url", server.url)
            spec = resolve_judges([name], options)[0]
            columns, stats = run_judge(spec, dataset(1, 2), options, str(tmp_path / spec.name))
            again, _ = run_judge(spec, dataset(1, 2), options, str(tmp_path / spec.name))  # from the cache
        column = f"{spec.name}_verdicts"
        assert columns[column] == [[[None], [None]]] == again[column]
        assert stats["truncated_samples"] == 2 and stats["failures"] == 0


def test_k_verdicts_with_n_and_registry_judge(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    with LoopbackServer(scripted) as server:
        options = judge_args("--base_url", server.url, "--verdicts_per_sample", "3", "--judge_seed", "7")
        spec = resolve_judges(["GPT-4o-mini"], options)[0]
        columns, stats = run_judge(spec, dataset(1, 3), options, str(tmp_path))
    assert columns["GPT-4o-mini_verdicts"] == [[[1.0] * 3, [0.0] * 3, [None] * 3]]
    assert [len(texts) for texts in columns["GPT-4o-mini_judgments"][0]] == [3, 3, 3]
    assert len(server.requests) == 3  # one request per sample, n=3
    request = server.requests[0]["json"]
    assert request["n"] == 3 and request["temperature"] > 0
    assert request["seed"] == request_seed(7, request["messages"])  # derived per request from --judge_seed
    assert len({r["json"]["seed"] for r in server.requests}) == 3
    assert request["model"] == "gpt-4o-mini"
    assert stats["temperature"] == request["temperature"] and stats["verdicts_per_sample"] == 3


def test_anthropic_judge_k_calls(tmp_path, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test")
    with LoopbackServer(scripted) as server:
        options = judge_args("--base_url", server.root, "--verdicts_per_sample", "2")
        spec = resolve_judges(["Claude-3-5-Haiku"], options)[0]
        columns, _ = run_judge(spec, dataset(1, 2), options, str(tmp_path))
    assert columns["Claude-3-5-Haiku_verdicts"] == [[[1.0, 1.0], [0.0, 0.0]]]
    assert len(server.requests) == 4 and all(r["path"].endswith("/messages") for r in server.requests)
    assert server.requests[0]["json"]["system"].startswith("You are a strict grader")


def test_critique_mode_reads_boxed_index(tmp_path):
    replies = {0: "Paragraph 1 is wrong.\n\\boxed{1}", 1: "All fine.\n\\boxed{-1}", 2: "No box here"}

    def critic(path: str, request: dict, count: int) -> Reply:
        user = request["messages"][-1]["content"]
        assert "<paragraph_1>\nsecond\n</paragraph_1>" in user
        return Reply(body=openai_body(request, [replies[sample_index(request)]]))

    data = Dataset.from_dict({"instruction": ["P"], "samples": [[f"first SAMPLE-{i}\n\nsecond" for i in range(3)]]})
    with LoopbackServer(critic) as server:
        options = judge_args("--base_url", server.url, "--critique_mode")
        spec = resolve_judges(["C=openai_compatible:critic"], options)[0]
        columns, stats = run_judge(spec, data, options, str(tmp_path))
    assert columns["C_critique_verdicts"] == [[[0.0], [1.0], [None]]]
    assert columns["C_critique_judgments"][0][2] == ["No box here"]
    assert stats["unparsed"] == 1


def test_request_failures_are_none_counted_and_retried_next_run(tmp_path):
    def flaky(path: str, request: dict, count: int) -> Reply:
        if sample_index(request) == 1:
            return Reply(body="{not json")  # malformed every time: the client gives up after its re-asks
        return scripted(path, request, count)

    data = dataset(1, 3)
    with LoopbackServer(flaky) as server:
        options = judge_args("--base_url", server.url)
        spec = parse_judge("F=openai_compatible:m")
        columns, stats = run_judge(spec, data, options, str(tmp_path))
    assert columns["F_verdicts"] == [[[1.0], [None], [None]]]
    assert stats["failures"] == 1 and stats["unparsed"] == 1
    with LoopbackServer(scripted) as server:  # the server recovered: only the failed request is asked again
        options = judge_args("--base_url", server.url)
        columns, stats = run_judge(spec, data, options, str(tmp_path))
    assert len(server.requests) == 1 and sample_index(server.requests[0]["json"]) == 1
    assert columns["F_verdicts"] == [[[1.0], [0.0], [None]]] and stats["failures"] == 0
    assert stats["cached"] == 2


DRIVER = textwrap.dedent("""
    import sys
    sys.path[:0] = [{generation!r}, {tests!r}, {helpers!r}, {scripts!r}]
    from datasets import Dataset
    from generation.judges.registry import parse_judge
    from generation.judges.judging import run_judge
    from test_step3b_parsing import judge_args
    data = Dataset.from_dict({{"instruction": ["P"], "samples": [["SAMPLE-%d" % (i % 8) + " v%d" % i
                                                                 for i in range(40)]]}})
    options = judge_args("--base_url", {url!r}, "--max_concurrency", "2")
    run_judge(parse_judge("K=openai_compatible:m"), data, options, {cache!r})
""")


@pytest.mark.slow
def test_resume_after_kill_mid_judge(tmp_path):
    """SIGKILL a judge half-way; the re-run asks only for what the store does not hold, and completes."""
    def slow(path: str, request: dict, count: int) -> Reply:
        reply = scripted(path, request, count)
        reply.delay = 0.05
        return reply

    root = ROOT
    cache = str(tmp_path / "cache")
    spec = parse_judge("K=openai_compatible:m")
    store_file = cache_path(cache, spec, critique=False)
    with LoopbackServer(slow) as server:
        code = DRIVER.format(generation=root, tests=os.path.join(root, "tests", "verifiers"),
                             helpers=os.path.join(root, "tests"), scripts=os.path.join(root, "scripts"),
                             url=server.url, cache=cache)
        proc = subprocess.Popen([sys.executable, "-c", code], stderr=subprocess.PIPE, start_new_session=True)
        deadline = time.time() + 120
        while time.time() < deadline and proc.poll() is None:
            if os.path.exists(store_file) and sum(1 for _ in open(store_file)) >= 12:
                break
            time.sleep(0.02)
        assert proc.poll() is None, proc.stderr.read().decode()[-2000:]
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        first_run = len(server.requests)
    stored = len([line for line in open(store_file) if line.endswith("\n")])
    assert 12 <= stored < 40 and first_run < 40
    data = Dataset.from_dict({"instruction": ["P"], "samples": [["SAMPLE-%d" % (i % 8) + " v%d" % i
                                                                for i in range(40)]]})
    with LoopbackServer(scripted) as server:
        columns, stats = run_judge(spec, data, judge_args("--base_url", server.url), cache)
    assert len(server.requests) == 40 - stored  # nothing answered and stored before the kill is asked again
    assert stats["cached"] == stored and stats["failures"] == 0
    assert [v for (v,) in columns["K_verdicts"][0]] == [SCRIPT[i % 8][1] for i in range(40)]
    with open(store_file) as handle:
        assert all(json.loads(line)["v"]["texts"] for line in handle)

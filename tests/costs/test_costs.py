"""Prices, --prices, dollars after a run (Steps 1-3) and --max_cost, against loopback servers."""
import json
import os

import pytest
from test_step2_cli import MATH_ROWS, save
from test_step3b_api import dataset, scripted
from test_step3b_parsing import judge_args

from generation import unified_evaluation
from generation.common.cli import UserError
from generation.costs.pricing import PRICES, format_cost, load_prices, usage_cost
from generation.generate_reasoning_samples import main as step1
from generation.grading import decision as grading_decision
from generation.judges.judging import resolve_judges, run_judge

from fixtures_benchmarks import write_benchmarks
from loopback import LoopbackServer

PRICE = {"loop": {"input": 2.0, "output": 8.0, "batch_discount": 0.5}}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_benchmarks(str(tmp_path_factory.mktemp("cost_bench")), ("math",))


def prices_file(tmp_path, table=None) -> str:
    path = str(tmp_path / "prices.json")
    with open(path, "w") as handle:
        json.dump(PRICE if table is None else table, handle)
    return path


def step1_args(data_dir, out, url, *extra):
    return ["--model", "loop", "--base_url", url, "--dataset", "math", "--dataset_path",
            os.path.join(data_dir, "math.jsonl"), "--output_path", out, "--samples_per_instruction", "2",
            "--max_rows", "4", *extra]


def test_usage_cost_at_the_list_and_batch_price():
    assert usage_cost(PRICES["gpt-4o-mini"], 1_000_000, 1_000_000) == pytest.approx(0.75)
    assert usage_cost(PRICES["gpt-4o-mini"], 1_000_000, 1_000_000, batch=True) == pytest.approx(0.375)
    assert usage_cost(None, 10, 10) is None


def test_prices_file_adds_and_overrides(tmp_path):
    table = load_prices(prices_file(tmp_path, {"gpt-4o": {"input": 1, "output": 2}, **PRICE}))
    assert table["gpt-4o"].input == 1.0 and table["gpt-4o"].batch_discount is None
    assert table["loop"].output == 8.0 and table["gpt-4o-mini"] == PRICES["gpt-4o-mini"]


@pytest.mark.parametrize("content", ['{"loop": {"input": 1}}', '{"loop": {"input": -1, "output": 1}}', "[1]",
                                     "{not json", '{"loop": {"input": 1, "output": 1, "batch_discount": 2}}',
                                     '{"loop": {"input": "1", "output": 1}}'])
def test_malformed_prices_is_a_one_line_error_before_any_call(data_dir, tmp_path, capsys, content):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with LoopbackServer() as server:
        with pytest.raises(SystemExit) as exc:
            step1(step1_args(data_dir, str(tmp_path / "out"), server.url, "--prices", str(path)))
        assert server.requests == []
    assert exc.value.code == 2
    last = capsys.readouterr().err.strip().splitlines()[-1]  # argparse: usage, then the one-line error
    assert "error: argument --prices: " in last and "bad.json" in last
    assert not os.path.exists(tmp_path / "out")


def test_step1_cost_from_usage_in_provenance_and_summary(data_dir, tmp_path, capsys):
    out = str(tmp_path / "out")
    with LoopbackServer() as server:
        assert step1(step1_args(data_dir, out, server.url, "--prices", prices_file(tmp_path))) == 0
    prov = json.load(open(os.path.join(out, "provenance.json")))
    usage = prov["token_usage"]
    expected = (usage["prompt_tokens"] * 2.0 + usage["completion_tokens"] * 8.0) / 1e6
    assert usage["prompt_tokens"] == 40 and usage["completion_tokens"] == 40  # loopback: 10 + 5 per completion
    assert prov["cost_usd"] == {"loop": pytest.approx(expected)}
    assert f"cost {format_cost(expected)}" in capsys.readouterr().out


def test_step1_model_without_price_costs_null_with_a_notice(data_dir, tmp_path, capsys):
    out = str(tmp_path / "out")
    with LoopbackServer() as server:
        assert step1(step1_args(data_dir, out, server.url)) == 0
    assert json.load(open(os.path.join(out, "provenance.json")))["cost_usd"] == {"loop": None}
    captured = capsys.readouterr()
    assert "no price known for 'loop'" in captured.err and "cost unknown" in captured.out


def test_step2_fallback_cost(tmp_path, monkeypatch):
    monkeypatch.setattr(grading_decision, "fallback_targets", lambda graded, mode: [(0, 3), (1, 1)])
    src = save(MATH_ROWS, str(tmp_path / "in"))
    out = str(tmp_path / "out")
    with LoopbackServer() as server:
        unified_evaluation.main(["-i", src, "-o", out, "-t", "math", "--judge_model", "loop", "--base_url",
                                 server.url, "--prices", prices_file(tmp_path), "-p", "1"])
    prov = json.load(open(os.path.join(out, "provenance.json")))
    assert prov["llm_fallback"]["tokens"] == {"prompt_tokens": 20, "completion_tokens": 10}
    assert prov["llm_fallback"]["cost_usd"] == {"loop": pytest.approx((20 * 2 + 10 * 8) / 1e6)}


def test_step3_cost_per_judge(tmp_path, capsys):
    with LoopbackServer(scripted) as server:
        options = judge_args("--base_url", server.url, "--prices", prices_file(tmp_path))
        spec = resolve_judges(["Loop=openai_compatible:loop"], options)[0]
        _, stats = run_judge(spec, dataset(), options, str(tmp_path))
    assert stats["cost_usd"] == pytest.approx((8 * 10 * 2 + 8 * 5 * 8) / 1e6)
    assert f"cost {format_cost(stats['cost_usd'])}" in capsys.readouterr().out


def test_max_cost_is_the_outputs_total_and_a_raised_cap_resumes(data_dir, tmp_path, capsys):
    """The cap stops a run within one request's worst case; the same command again spends nothing more (the cap is
    the total for the output, said at the start); a raised cap resumes the missing rows only."""
    from generation.common.cli import run_main

    out = str(tmp_path / "out")
    output_only = prices_file(tmp_path, {"loop": {"input": 0.0, "output": 8.0}})  # the worst case is the real cost
    flags = ("--prices", output_only, "--max_new_tokens", "5", "--max_concurrency", "1")
    worst = 2 * 5 * 8.0 / 1e6  # n = 2 completions at the cap of 5 tokens (the loopback writes 5 per completion)
    cap = 2.5 * worst
    sent = []
    for _ in range(2):
        with LoopbackServer() as server:
            with pytest.raises(SystemExit) as exc:
                run_main(step1, step1_args(data_dir, out, server.url, *flags, "--max_cost", str(cap)))
            sent.append(len(server.requests))
        assert exc.value.code == 1
    assert sent == [2, 0]  # the rerun found the cap spent by the first run
    spent = 2 * worst
    assert spent <= cap and cap - spent <= worst  # stopped at the cap, within one request's worst case
    err = capsys.readouterr().err
    assert f"every run on it spent {format_cost(spent)} ({format_cost(spent)} in this run)" in err
    assert f"{format_cost(0)} in this run" in err and "2 more request(s) were not sent" in err
    assert f"earlier runs on {out} spent {format_cost(spent)}; --max_cost {format_cost(cap)} is the total for it" in err
    assert "--max_cost is the total for this output: to spend more, raise it (or lower the worst case: " \
           "--max_new_tokens, --judge_max_tokens) and run the same command again" in err
    assert not os.path.exists(out)  # the output is written only when complete; the checkpoint holds the samples
    with LoopbackServer() as server:
        assert step1(step1_args(data_dir, out, server.url, *flags, "--max_cost", "1")) == 0
        assert len(server.requests) == 2  # only the rows not yet sampled
    assert json.load(open(os.path.join(out, "provenance.json")))["counts"]["reused_from_checkpoint"] == 4


@pytest.mark.parametrize("cap", ["-1", "nan", "x"])
def test_bad_max_cost_is_a_one_line_error(data_dir, tmp_path, capsys, cap):
    with pytest.raises(SystemExit) as exc:
        step1(step1_args(data_dir, str(tmp_path / "out"), "http://127.0.0.1:9", "--max_cost", cap))
    assert exc.value.code == 2 and "error: argument --max_cost: expected dollars >= 0" in capsys.readouterr().err


def test_max_cost_without_a_price_is_refused_before_any_call(data_dir, tmp_path, capsys):
    from generation.common.cli import run_main

    with LoopbackServer() as server:
        with pytest.raises(SystemExit) as exc:
            run_main(step1, step1_args(data_dir, str(tmp_path / "out"), server.url, "--max_cost", "1"))
        assert server.requests == []
    assert exc.value.code == 2 and "--max_cost needs a price for 'loop'" in capsys.readouterr().err


def test_cached_input_is_billed_at_its_price(tmp_path):
    from generation.backends.calls import run_chat_jobs
    from generation.backends.rules import ApiConfig, ChatJob

    from loopback import Reply, openai_body

    def cached_reply(path, request, count):
        body = openai_body(request, ["ok"] * request.get("n", 1))
        body["usage"]["prompt_tokens_details"] = {"cached_tokens": 8}  # 8 of the 10 prompt tokens from the cache
        return Reply(body=body)

    prices = load_prices(prices_file(tmp_path, {"loop": {"input": 2.0, "output": 8.0, "cached_input": 0.5}}))
    with LoopbackServer(cached_reply) as server:
        config = ApiConfig("loop", "openai_compatible", base_url=server.url, prices=prices)
        stats = run_chat_jobs(config, [ChatJob(str(i), [{"role": "user", "content": f"q{i}"}]) for i in range(3)],
                              lambda job, completion: None)
    assert stats["prompt_tokens"] == 30 and stats["cached_tokens"] == 24 and stats["completion_tokens"] == 15
    assert stats["cost_usd"] == pytest.approx((6 * 2.0 + 24 * 0.5 + 15 * 8.0) / 1e6)


def test_step1_refuses_an_unbounded_model_before_writing_anything(data_dir, tmp_path, monkeypatch):
    """A reasoning model with no documented maximum and no --max_new_tokens under --max_cost: the one-line error
    comes before Step 1 creates its output or checkpoint, and nothing is sent."""
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    prices = tmp_path / "prices.json"
    prices.write_text(json.dumps({"o9-preview": {"input": 150.0, "output": 600.0}}))
    out = str(tmp_path / "out")
    with LoopbackServer() as server:
        with pytest.raises(UserError, match="pass --max_new_tokens N"):
            step1(["--model", "o9-preview", "--provider", "openai", "--base_url", server.url, "--dataset", "math",
                  "--dataset_path", os.path.join(data_dir, "math.jsonl"), "--output_path", out,
                  "--max_cost", "1", "--prices", str(prices)])
        assert [r["path"] for r in server.requests if r["path"].endswith("completions")] == []
    assert not os.path.exists(out) and not os.path.exists(out + ".checkpoint")

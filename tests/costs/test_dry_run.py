"""--dry_run on every step: counts equal the seed README's formulas (less what checkpoints hold); nothing is called."""
import os

import pytest
from test_costs import prices_file, step1_args
from test_step2_cli import MATH_ROWS, save
from test_step3b_api import dataset

from generation import unified_evaluation
from generation.costs.pricing import format_cost
from generation.costs.token_counts import CHARS_PER_TOKEN, MESSAGE_OVERHEAD_TOKENS
from generation.generate_reasoning_samples import main as step1
from generation.grading import decision as grading_decision

from fixtures_benchmarks import write_benchmarks
from loopback import LoopbackServer


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_benchmarks(str(tmp_path_factory.mktemp("dry_bench")), ("math",))


def chars_tokens(messages):
    return sum(-(-len(m["content"]) // int(CHARS_PER_TOKEN)) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def test_step1_api_dry_run_counts_the_formula_less_the_checkpoint(data_dir, tmp_path, capsys):
    out = str(tmp_path / "out")
    flags = ("--prices", prices_file(tmp_path), "--max_new_tokens", "100")
    with LoopbackServer() as server:  # rows 0-1 sampled first: the checkpoint holds 2 x 2 samples
        assert step1(step1_args(data_dir, out, server.url, *flags, "--max_rows", "2")) == 0
        capsys.readouterr()
        assert step1(step1_args(data_dir, out, server.url, *flags, "--max_rows", "4", "--dry_run")) == 0
        assert len(server.requests) == 2  # the dry run called nothing
        text = capsys.readouterr().out
        assert step1(step1_args(data_dir, out, server.url, *flags, "--max_rows", "4")) == 0
        asked = [r["json"]["messages"] for r in server.requests[2:]]
    assert "4 rows x 2 samples = 8" in text and "4 already in the checkpoint; 4 to generate" in text
    tokens = sum(chars_tokens(m) for m in asked)  # what the real run then sent: rows 2 and 3
    assert f"loop: 4 completions in 2 requests; input ~{tokens:,} tokens (4 characters per token), " \
           f"output <= 400 tokens; estimated cost {format_cost(round(tokens * 2 / 1e6, 6))} to "\
           f"{format_cost(round((tokens * 2 + 400 * 8) / 1e6, 6))}" in text
    assert len(asked) == 2


def test_step1_anthropic_dry_run_splits_n_and_needs_no_key(data_dir, tmp_path, capsys):
    out = str(tmp_path / "out")
    assert step1(["--model", "claude-3-5-haiku-latest", "--dataset", "math", "--dataset_path",
                  os.path.join(data_dir, "math.jsonl"), "--output_path", out, "--samples_per_instruction", "3",
                  "--max_rows", "4", "--max_new_tokens", "10", "--dry_run"]) == 0
    text = capsys.readouterr().out
    assert "12 completions in 12 requests" in text and "output <= 120 tokens" in text  # Anthropic has no `n`
    assert "estimated cost $" in text and not os.path.exists(out)


def test_step1_local_dry_run_counts_with_the_tokenizer(tiny_chat_model, data_dir, tmp_path, capsys):
    from transformers import AutoTokenizer

    from generation.backends import local_generation as lg
    from generation.data.benchmarks import load_benchmark
    from generation.steps.generate import chat_messages

    out = str(tmp_path / "out")
    assert step1(["--model", tiny_chat_model, "--backend", "transformers", "--dataset", "math", "--dataset_path",
                  os.path.join(data_dir, "math.jsonl"), "--output_path", out, "--samples_per_instruction", "2",
                  "--max_rows", "3", "--max_new_tokens", "7", "--dry_run"]) == 0
    tokenizer = AutoTokenizer.from_pretrained(tiny_chat_model)
    problems = load_benchmark("math", os.path.join(data_dir, "math.jsonl"), 42, 3, None, "college")["problem"]
    tokens = sum(len(lg.prompt_ids(tokenizer, lg.prompt_text(tokenizer, chat_messages(p, False), False), False))
                 for p in problems)
    text = capsys.readouterr().out
    assert f"6 completions in 3 requests; input ~{tokens:,} tokens (the model's tokenizer), output <= 42" in text
    assert "local: no API cost" in text and not os.path.exists(out)


def test_step2_dry_run_counts_fallback_targets_less_the_cache(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(grading_decision, "fallback_targets", lambda graded, mode: [(0, 3), (1, 1)])
    src = save(MATH_ROWS, str(tmp_path / "in"))
    out = str(tmp_path / "out")
    base = ["-i", src, "-o", out, "-t", "math", "--judge_model", "loop", "-p", "1",
            "--prices", prices_file(tmp_path)]
    with LoopbackServer() as server:
        assert unified_evaluation.main(base + ["--base_url", server.url, "--dry_run"]) == 0
        assert server.requests == [] and not os.path.exists(out)
        text = capsys.readouterr().out
        assert "= 10); procedural grading decides all but 2" in text and "(2 distinct prompts, 0 cached)" in text
        assert "loop: 2 completions in 2 requests" in text and "output <= 600 tokens" in text
        unified_evaluation.main(base + ["--base_url", server.url])
        assert unified_evaluation.main(base + ["--base_url", server.url, "--dry_run"]) == 0
        assert len(server.requests) == 2
    text = capsys.readouterr().out
    assert "(2 distinct prompts, 2 cached)" in text and "0 completions in 0 requests" in text


def test_step3_dry_run_judges_times_k(tmp_path, capsys):
    from generation.unified_RMs_and_LM_Judges import main as step3

    src = str(tmp_path / "in")
    dataset(2, 4).save_to_disk(src)
    out = str(tmp_path / "out")
    assert step3(["--dataset_path", src, "--output_path", out, "--reward_models", "", "--lm_judges",
                  "A=anthropic:claude-3-5-haiku-latest,O=openai_compatible:loop", "--verdicts_per_sample", "3",
                  "--judge_max_tokens", "50", "--base_url", "http://127.0.0.1:9/v1", "--dry_run"]) == 0
    text = capsys.readouterr().out
    assert "LM judges: 8 x 2 x 3 = 48 verdicts" in text
    assert "A (claude-3-5-haiku-latest): 24 completions in 24 requests" in text  # Anthropic: K calls per sample
    assert "O (loop): 24 completions in 8 requests" in text and "no price known" in text
    assert not os.path.exists(out)


def test_step1_dry_run_shows_the_batch_discount(data_dir, tmp_path, capsys):
    costs = {}
    for mode in ("live", "batch"):
        assert step1(["--model", "gpt-4o-mini", "--dataset", "math", "--dataset_path",
                      os.path.join(data_dir, "math.jsonl"), "--output_path", str(tmp_path / "out"), "--max_rows", "4",
                      "--max_new_tokens", "100", "--api_mode", mode, "--dry_run"]) == 0
        line = capsys.readouterr().out.split("total estimated API cost: ")[1].split("\n")[0]
        costs[mode] = [float(part.strip("$")) for part in line.split(" to ")]
    assert costs["batch"] == pytest.approx([c * 0.5 for c in costs["live"]], abs=1e-6) and costs["live"][1] > 0


@pytest.mark.parametrize("model, maximum", [("o4-mini", 100_000), ("gpt-5", 128_000), ("gpt-5-mini", 128_000)])
def test_uncapped_reasoning_models_get_an_upper_figure(data_dir, tmp_path, capsys, model, maximum):
    from generation.costs.pricing import PRICES, usage_cost

    assert step1(["--model", model, "--dataset", "math", "--dataset_path", os.path.join(data_dir, "math.jsonl"),
                  "--output_path", str(tmp_path / "out"), "--samples_per_instruction", "4", "--max_rows", "3",
                  "--dry_run"]) == 0  # no --max_new_tokens: no cap is sent to a reasoning model
    text = capsys.readouterr().out
    tokens = int(text.split("input ~")[1].split(" tokens")[0].replace(",", ""))
    high = usage_cost(PRICES[model], tokens, 12 * maximum)
    assert f"output <= {12 * maximum:,} tokens" in text and f"to {format_cost(high)}" in text
    assert f"documented maximum output, {maximum:,} tokens" in text and "?" not in text.split("total")[1]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_a_pilot_dry_run_expects_the_bill_within_30_percent(data_dir, tmp_path, capsys, seed):
    """--pilot 2: two rows asked for real (kept, in the ledger), the other four estimated from their reply lengths;
    the run that follows asks only those four, and its bill is within 30% of the expected figure."""
    import json as json_module

    from loopback_billing import BillingProvider

    from generation.costs.pricing import Price

    provider = BillingProvider(Price(2.0, 8.0), low=50, high=800, seed=seed)
    prices = prices_file(tmp_path, {"loop": {"input": 2.0, "output": 8.0}})
    out = str(tmp_path / "out")
    with LoopbackServer(provider) as server:
        args = step1_args(data_dir, out, server.url, "--prices", prices, "--max_new_tokens", "1000",
                          "--samples_per_instruction", "8", "--max_rows", "6", "--max_cost", "1")
        assert step1(args + ["--dry_run", "--pilot", "2"]) == 0
        pilot_requests, pilot_bill = provider.requests, provider.bill
        text = capsys.readouterr().out
        assert step1(args) == 0
        rest = provider.bill - pilot_bill
    assert pilot_requests == 2 and provider.requests == 6  # the run reused the pilot's rows
    assert "pilot: 2 row(s) sent for real (16 completions" in text and "2 already in the checkpoint" not in text
    assert "12 rows x" not in text and "16 already in the checkpoint; 32 to generate" in text
    expected = float(text.split("expected ~$")[1].split(" ")[0])
    assert abs(expected - rest) / rest <= 0.3, (expected, rest)
    prov = json_module.load(open(os.path.join(out, "provenance.json")))
    assert prov["counts"]["reused_from_checkpoint"] == 16

"""Batch mode under --max_cost, against batch endpoints that bill like the real ones (half price; expired and failed
requests not billed): an expired batch is never bought again live without --batch_fallback live; with it the live
re-sends stay within the cap; provenance keeps the batch counts and the provider's reasons."""
import json
import os

import pytest
from loopback_billing import BillingProvider
from test_batch_mode import data_dir, fast_polls  # noqa: F401 - shared fixtures (fast polls, keys; math rows)

from generation.backends import batch_api
from generation.common.cli import run_main
from generation.costs.pricing import PRICES
from generation.generate_reasoning_samples import main

from fixtures_benchmarks import load_output
from loopback import LoopbackServer
from loopback_batches import BatchService

N = 3
CHAT = "/v1/chat/completions"
MODEL = "gpt-4o-mini"
WORST = N * 300 * PRICES[MODEL].output / 1e6  # one row's completions at the cap (its prompt adds a little)


def step1(data_dir, url, out, *extra):
    return ["--model", MODEL, "--provider", "openai", "--base_url", url, "--dataset", "math",
            "--dataset_path", os.path.join(data_dir, "math.jsonl"), "--output_path", out,
            "--samples_per_instruction", str(N), "--max_new_tokens", "300", "--seed", "3", "--api_mode", "batch",
            *extra]


def run(args) -> int:
    """Step 1's exit code as the command line gives it."""
    try:
        run_main(main, args)
    except SystemExit as exit_:
        return exit_.code
    return 0


def served(provider: BillingProvider, **service):
    """A loopback server whose live endpoint and batch endpoints bill through `provider`."""
    batches = BatchService(provider.batch, **service)
    return LoopbackServer(provider, batches=batches), batches


def test_an_expired_batch_is_not_bought_again_live_without_the_fallback(data_dir, tmp_path, capsys):
    provider = BillingProvider(PRICES[MODEL], low=50, high=300)
    out = str(tmp_path / "out")
    server, service = served(provider, expire_after=0)  # expires with nothing done
    with server:
        assert run(step1(data_dir, server.url, out, "--max_rows", "4")) == 1
        assert [r for r in server.requests if r["path"].startswith(CHAT)] == []
    assert provider.bill == 0  # expired requests are not billed
    err = capsys.readouterr().err
    assert "4 request(s) the batches left unanswered (4 expired) were not sent live (--batch_fallback none; live " \
           "they would cost full price, up to $" in err and "add --batch_fallback live" in err
    prov = json.load(open(os.path.join(out, "provenance.json")))
    assert {k: prov["batch"][k] for k in ("batch_requests", "answered", "expired", "not_sent_live")} == \
        {"batch_requests": 4, "answered": 0, "expired": 4, "not_sent_live": 4}
    assert list(prov["batch"]["reasons"]) == ["batch_expired: This request could not be executed before the "
                                              "completion window expired."]
    assert load_output(out)["samples"] == [[None] * N] * 4
    service.expire_after = None  # the rerun submits them again, as a new batch
    with LoopbackServer(provider, batches=service) as server:
        assert run(step1(data_dir, server.url, out, "--max_rows", "4")) == 0
    assert service.creations == 2 and all(None not in row for row in load_output(out)["samples"])


@pytest.mark.parametrize("cap_in_worst_cases", [1.5, 3.5, 5.5])
@pytest.mark.parametrize("expire_after", [0, 2, None])
def test_batch_mode_spends_within_the_cap(data_dir, tmp_path, monkeypatch, capsys, cap_in_worst_cases,
                                          expire_after):
    """Chunks of two rows reserve their worst case at the batch price; what expires is re-sent live (the fallback)
    at the live price, under the same cap; the bill (batch and live) never passes the cap."""
    monkeypatch.setitem(batch_api.LIMITS, "openai", (2, 200_000_000))
    provider = BillingProvider(PRICES[MODEL], low=200, high=300)
    cap = cap_in_worst_cases * WORST
    out = str(tmp_path / "out")
    server, service = served(provider, expire_after=expire_after)
    with server:
        code = run(step1(data_dir, server.url, out, "--max_cost", f"{cap:.8f}", "--batch_fallback", "live"))
        live = [r for r in server.requests if r["path"].startswith(CHAT)]
    assert provider.bill <= cap + 1e-9
    assert code in (0, 1) and (code == 1) == ("reached for" in capsys.readouterr().err)  # only the cap stops it
    if expire_after == 0:
        assert 0 < len(live) <= 6 and provider.bill > 0  # only the live re-sends were billed, under the same cap
    if code == 0:
        assert all(None not in row for row in load_output(out)["samples"])


def test_the_live_fallback_prints_why_a_whole_batch_failed(data_dir, tmp_path, capsys):
    errors = [{"code": "token_limit_exceeded", "line": None, "param": None,
               "message": "Enqueued token limit reached for gpt-4o-mini in organization org-x."}]
    provider = BillingProvider(PRICES[MODEL], low=50, high=300)
    server, _ = served(provider, fail_whole=errors)
    with server:
        assert run(step1(data_dir, server.url, str(tmp_path / "out"), "--max_rows", "2",
                         "--batch_fallback", "live")) == 0
    err = capsys.readouterr().err
    assert "batch batch_1: token_limit_exceeded: Enqueued token limit reached" in err
    assert "lower --batch_max_enqueued_tokens" in err
    assert "2 request(s) the batches left unanswered (2 failed): sending them live at full price, up to $" in err

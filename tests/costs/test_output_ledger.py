"""--max_cost belongs to the output: every run on it (and every shard) spends from one ledger in its checkpoint
folder, a run killed with requests in flight leaves them counted at their worst case, --overwrite starts a new
ledger; against a loopback provider that bills like the real ones (and one that drops `usage`)."""
import json
import os
import random

import openai
import pytest
from fake_provider import FakeChatClient
from hypothesis import given, settings
from hypothesis import strategies as st
from loopback_billing import BillingProvider
from test_budget_ledger import MODEL, jobs, run_with_cap, worst

from generation.backends import runner
from generation.backends.calls import run_chat_jobs
from generation.backends.rules import ApiConfig
from generation.common.cli import run_main
from generation.costs.budget import Budget, BudgetExceeded
from generation.costs.ledger import Ledger
from generation.costs.pricing import PRICES, Price
from generation.generate_reasoning_samples import main as step1

from fixtures_benchmarks import write_benchmarks
from loopback import LoopbackServer

PRICE = {"input": 2.0, "output": 8.0}


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    return write_benchmarks(str(tmp_path_factory.mktemp("ledger_bench")), ("math",))


class Killed(Exception):
    """The process stops here (jobs in flight are cancelled)."""


def killed_run(budget: Budget, seed: int, after: int) -> FakeChatClient:
    """A run stopped (as by a kill) once `after` jobs have landed: the jobs in flight are cancelled."""
    fake = FakeChatClient(PRICES[MODEL], random.Random(seed), 10, 100_000)
    landed = []

    def on_result(job, completion):
        landed.append(job)
        if len(landed) >= after:
            raise Killed

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_API_KEY", "sk-test")
        patch.setattr(openai, "AsyncOpenAI", fake)
        patch.setattr(runner, "_http_client", lambda sdk, hooks: None)
        with pytest.raises((Killed, BudgetExceeded)):  # killed, unless the cap stopped it first
            run_chat_jobs(ApiConfig(MODEL, "openai", max_concurrency=8, budget=budget), jobs(200), on_result)
    return fake


@settings(max_examples=25, deadline=None)
@given(cap=st.floats(0.3, 3.0), seed=st.integers(0, 2**32 - 1), kills=st.lists(st.integers(1, 6), max_size=3),
       reruns=st.integers(1, 3))
def test_runs_on_one_output_share_its_cap(tmp_path_factory, cap, seed, kills, reruns):
    """Any mix of interrupted runs and full reruns on one output: the provider's bill over all of them stays under
    the cap, and the last run ends within one worst case below it."""
    path = str(tmp_path_factory.mktemp("ledger") / "budget_ledger.jsonl")
    bill = 0.0
    for i, after in enumerate(kills):
        bill += killed_run(Budget(cap, Ledger(path)), seed + i, after).bill
    for i in range(reruns):
        fake, budget, _ = run_with_cap(cap, seed + 100 + i, count=200, budget=Budget(cap, Ledger(path)))
        bill += fake.bill
    assert bill <= cap + 1e-9
    assert budget.spent >= bill - 1e-6  # in-flight requests of killed runs count at their worst case
    assert cap - budget.spent <= worst() + 1e-9


def test_a_killed_runs_reservations_count_as_spent_upper_bounds(tmp_path):
    path = str(tmp_path / "budget_ledger.jsonl")
    crashed = Budget(1.0, Ledger(path))
    assert crashed.reserve(0.25) and crashed.reserve(0.25)
    crashed.settle(0.25, 0.1)  # one landed; the process dies with the other in flight
    rerun = Budget(1.0, Ledger(path))
    assert rerun.spent == pytest.approx(0.35) and rerun.ledger.totals().upper == pytest.approx(0.25)
    assert rerun.idle()  # the dead run's request is no longer waited for
    assert not rerun.reserve(0.7) and rerun.reserve(0.6)
    assert Budget(1.0, Ledger(path, fresh=True)).spent == 0  # --overwrite: a new ledger
    assert os.path.getsize(path) < 300  # each run's opening compacts the file


def step1_args(data_dir, out, url, prices, *extra):
    return ["--model", "loop", "--base_url", url, "--dataset", "math", "--dataset_path",
            os.path.join(data_dir, "math.jsonl"), "--output_path", out, "--samples_per_instruction", "4",
            "--max_new_tokens", "400", "--prices", prices, "--seed", "1", *extra]


@pytest.fixture
def prices(tmp_path):
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"loop": PRICE}))
    return str(path)


def run(args):
    """Step 1's exit code as the command line gives it."""
    try:
        run_main(step1, args)
    except SystemExit as exit_:
        return exit_.code
    return 0


@pytest.mark.parametrize("seed", [1, 2])
def test_three_reruns_of_a_capped_command_spend_the_cap_once(data_dir, tmp_path, prices, capsys, seed):
    provider = BillingProvider(Price(**PRICE), low=50, high=400, seed=seed)
    out = str(tmp_path / "out")
    cap = 0.015  # a worst case is 4 x 400 output tokens ($0.0128) plus the prompt: one job fits, not two
    with LoopbackServer(provider) as server:
        codes = [run(step1_args(data_dir, out, server.url, prices, "--max_cost", str(cap))) for _ in range(3)]
    assert provider.bill <= cap and codes[-1] == 1
    err = capsys.readouterr().err
    assert "--max_cost is the total for this output" in err and f"earlier runs on {out} spent" in err
    with LoopbackServer(provider) as server:  # --overwrite: a new ledger, the cap again
        before = provider.bill
        run(step1_args(data_dir, out, server.url, prices, "--max_cost", str(cap), "--overwrite"))
    assert 0 < provider.bill - before <= cap


def test_a_gateway_without_usage_cannot_take_a_run_over_its_cap(data_dir, tmp_path, prices, capsys):
    provider = BillingProvider(Price(**PRICE), low=50, high=400, omit_usage=True)
    out = str(tmp_path / "out")
    with LoopbackServer(provider) as server:
        assert run(step1_args(data_dir, out, server.url, prices, "--max_cost", "0.05")) == 1
        first, sent = provider.bill, provider.requests
        assert run(step1_args(data_dir, out, server.url, prices, "--max_cost", "1")) == 0
    assert 0 < first <= 0.05 and sent > 0
    prov = json.load(open(os.path.join(out, "provenance.json")))
    unreported = prov["usage_unreported"]
    assert unreported["requests"] == provider.requests - sent and unreported["cost_usd_at_most"] > 0
    assert prov["cost_usd"]["loop"] >= provider.bill - first  # an upper bound of what this run was billed, never $0
    assert "an upper bound: " in capsys.readouterr().out


def test_a_key_the_server_refuses_leaves_nothing_spent(tmp_path):
    """A 401 stops the run: the server refuses every request with that key, so the requests in flight beside it
    count as unbilled (a killed run's would count at their worst case)."""
    from generation.backends.rules import ChatJob, FatalApiError

    from loopback import Reply

    def refuse(path, request, count):
        return Reply(401, {"error": {"message": "Incorrect API key provided", "type": "invalid_request_error",
                                     "code": "invalid_api_key"}}, delay=0.05 * (count % 3))

    budget = Budget(1.0, Ledger(str(tmp_path / "budget_ledger.jsonl")))
    with LoopbackServer(refuse) as server:
        with pytest.raises(FatalApiError):
            run_chat_jobs(ApiConfig("loop", "openai_compatible", base_url=server.url, max_concurrency=8, budget=budget,
                                    prices={"loop": Price(2.0, 8.0)}),
                          [ChatJob(str(i), [{"role": "user", "content": f"q{i}"}], max_tokens=100) for i in range(20)],
                          lambda job, completion: None)
    assert Budget(1.0, Ledger(str(tmp_path / "budget_ledger.jsonl"))).spent == 0

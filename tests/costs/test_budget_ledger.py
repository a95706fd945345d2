"""--max_cost is a ledger: over many caps and reply lengths, spend never passes the cap and ends within one
request's worst case below it; the prompt is reserved once per request; a model without a bound is refused."""
import random

import openai
import pytest
from fake_provider import FakeChatClient
from hypothesis import given, settings
from hypothesis import strategies as st

from generation.backends import runner
from generation.backends.calls import run_chat_jobs
from generation.backends.rules import ApiConfig, ChatJob
from generation.common.cli import UserError
from generation.costs.budget import Budget, BudgetExceeded, worst_case
from generation.costs.pricing import PRICES

MODEL = "gpt-5-nano"  # a reasoning model: sent without a cap, so its documented maximum output is reserved
N = 4


def jobs(count: int) -> list[ChatJob]:
    return [ChatJob(key=str(i), messages=[{"role": "user", "content": f"Problem {i}: what is {i} + {i}?"}], n=N,
                    max_tokens=None) for i in range(count)]


def run_with_cap(cap: float, seed: int, count: int = 200, low: int = 10, high: int = 100_000,
                 omit_usage: bool = False, budget: Budget | None = None):
    """Run `count` jobs (n = 4, concurrency 64) under `cap` (or `budget`) against the fake; (fake, budget, halted)."""
    fake = FakeChatClient(PRICES[MODEL], random.Random(seed), low, high, omit_usage)
    budget = budget or Budget(cap)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("OPENAI_API_KEY", "sk-test")
        patch.setattr(openai, "AsyncOpenAI", fake)
        patch.setattr(runner, "_http_client", lambda sdk, hooks: None)
        try:
            run_chat_jobs(ApiConfig(MODEL, "openai", max_concurrency=64, budget=budget), jobs(count),
                          lambda job, completion: None)
            halted = False
        except BudgetExceeded:
            halted = True
    return fake, budget, halted


def worst() -> float:
    """One job's worst case: its prompt once (n <= 128: one request) and 4 completions at the model's maximum."""
    return worst_case(PRICES[MODEL], MODEL, "openai", jobs(1)[0].messages, 1, N, None)


@settings(max_examples=60, deadline=None)
@given(cap=st.floats(0.01, 5.0), seed=st.integers(0, 2**32 - 1))
def test_spend_stays_under_the_cap_and_ends_within_one_worst_case(cap, seed):
    fake, budget, halted = run_with_cap(cap, seed)
    assert fake.bill <= cap + 1e-9  # what the provider bills never passes the cap
    assert budget.spent == pytest.approx(fake.bill, abs=1e-5)  # the ledger settled what was billed
    assert halted  # 200 jobs cost more than $5: the cap, not the work, ended the run
    assert cap - fake.bill <= worst() + 1e-9  # it kept sending while the next job's worst case fitted


@settings(max_examples=40, deadline=None)
@given(cap=st.floats(0.01, 3.0), seed=st.integers(0, 2**32 - 1))
def test_replies_without_usage_cannot_take_a_run_over_its_cap(cap, seed):
    """A gateway that drops `usage`: each such reply settles at its reservation (an upper bound), never at $0."""
    fake, budget, halted = run_with_cap(cap, seed, count=60, omit_usage=True)
    assert fake.bill <= cap + 1e-9 and budget.spent >= fake.bill - 1e-9  # the ledger's figure bounds the bill
    assert halted and cap - budget.spent <= worst() + 1e-9  # 60 worst cases pass $3: the cap ended the run
    assert budget.ledger.totals().upper == pytest.approx(budget.spent)  # all of it an upper bound


def test_near_the_cap_fewer_requests_are_in_flight(capsys):
    fake, _, halted = run_with_cap(3 * worst() + 0.001, seed=1, low=100_000)
    assert halted and fake.most_in_flight <= 3 and fake.requests == 3  # replies at the maximum: 3 fit, no more
    assert capsys.readouterr().err.count("near the cap, requests") == 1  # said once


def test_prompt_reserved_once_per_request():
    messages = [{"role": "user", "content": "x" * 4000}]
    one, two = (worst_case(PRICES["gpt-4o-mini"], "gpt-4o-mini", "anthropic", messages, r, 8, 10) for r in (1, 2))
    prompt = two - one
    assert one == pytest.approx(prompt + 8 * 10 * PRICES["gpt-4o-mini"].output / 1e6, abs=2e-6)


def test_a_model_without_a_bound_needs_a_cap(monkeypatch):
    monkeypatch.setenv("OPENAI_COMPATIBLE_API_KEY", "x")
    config = ApiConfig("my-model", "openai_compatible", base_url="http://127.0.0.1:9/v1", budget=Budget(1.0),
                       prices={"my-model": PRICES["gpt-4o"]})
    with pytest.raises(UserError, match="pass --max_new_tokens N"):
        run_chat_jobs(config, jobs(2), lambda job, completion: None)

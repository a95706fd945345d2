"""Provider facts that must not drift: reasoning efforts are what the installed openai SDK accepts, price rows are
dated (test_price_table.py), every priced OpenAI/Anthropic model has a documented maximum output, provenance lists
only what is sent."""
import ast
import os

import openai

from generation.backends.rules import REASONING_EFFORTS, ApiConfig, ChatJob, sent_parameters
from generation.costs.pricing import MAX_OUTPUT_TOKENS, PRICES


def sdk_reasoning_efforts() -> set[str]:
    """The string literals of the installed SDK's ReasoningEffort type, read from its source file."""
    path = os.path.join(os.path.dirname(openai.__file__), "types", "shared", "reasoning_effort.py")
    with open(path, encoding="utf-8") as handle:
        tree = ast.parse(handle.read())
    assign = next(node for node in tree.body if isinstance(node, (ast.Assign, ast.AnnAssign)) and "ReasoningEffort"
                  in ast.unparse(node.targets[0] if isinstance(node, ast.Assign) else node.target))
    return {node.value for node in ast.walk(assign.value) if isinstance(node, ast.Constant)
            and isinstance(node.value, str)}


def test_reasoning_efforts_are_the_sdks():
    from generation.generate_reasoning_samples import build_parser

    choices = next(a.choices for a in build_parser()._actions if a.dest == "reasoning_effort")
    assert set(REASONING_EFFORTS) == set(choices) == sdk_reasoning_efforts() >= {"none", "minimal", "high", "xhigh"}


def test_every_batched_model_has_a_maximum_output():
    batched = {model for model, price in PRICES.items() if price.batch_discount}  # OpenAI and Anthropic rows
    assert batched <= set(MAX_OUTPUT_TOKENS)
    assert {"gpt-4.1", "o3", "o4-mini", "gpt-5", "gpt-5-mini", "claude-opus-4-1", "claude-sonnet-4-5",
            "claude-haiku-4-5"} <= batched


def test_provenance_lists_only_parameters_really_sent():
    job = ChatJob("k", [{"role": "user", "content": "q"}], n=3, temperature=0.5, seed=1)
    assert "n" not in sent_parameters(ApiConfig("claude-haiku-4-5", "anthropic"), job)["sent"]  # one per request
    assert "n" in sent_parameters(ApiConfig("gpt-4.1", "openai"), job)["sent"]

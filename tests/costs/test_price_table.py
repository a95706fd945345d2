"""The price table stays honest: every row dated, every model a registry names priced, every documented maximum
output belonging to a priced model, and the batch discount applied the same way on every row."""
import re

import pytest

from generation.backends.batch_api import TIER1_QUEUE_TOKENS
from generation.backends.rules import KNOWN_MODELS
from generation.costs.pricing import MAX_OUTPUT_TOKENS, PRICES, load_prices, usage_cost
from generation.judges.registry import JUDGES

DATE = re.compile(r"^20\d\d-(0[1-9]|1[0-2])$")  # the month a row was read from the provider's page


def registry_models() -> dict[str, str]:
    """Every API model a registry of the project names, with where."""
    named = {spec.model: f"judge {spec.name}" for spec in JUDGES if spec.backend == "api"}
    named.update({model: "KNOWN_MODELS" for model in KNOWN_MODELS})
    named.update({model: "MAX_OUTPUT_TOKENS" for model in MAX_OUTPUT_TOKENS})
    named.update({model: "TIER1_QUEUE_TOKENS" for model in TIER1_QUEUE_TOKENS})
    return named


@pytest.mark.parametrize("model", sorted(PRICES))
def test_every_price_row_is_dated_and_consistent(model):
    price = PRICES[model]
    assert price.taken and DATE.match(price.taken), f"{model}: no month read ({price.taken!r})"
    assert 0 < price.input <= price.output, model  # output costs at least input on every provider listed
    assert price.cached_input is None or price.cached_input < price.input, model
    live, batch = usage_cost(price, 1e6, 1e6), usage_cost(price, 1e6, 1e6, batch=True)
    assert batch == pytest.approx(live * (price.batch_discount or 1.0), abs=1e-6), model


@pytest.mark.parametrize("model, where", sorted(registry_models().items()))
def test_every_model_a_registry_names_has_a_price(model, where):
    assert model in PRICES, f"{model} ({where}) has no price row: add one, dated, from the provider's page"


def test_a_prices_file_row_is_dated_by_its_file(tmp_path):
    path = tmp_path / "p.json"
    path.write_text('{"my-model": {"input": 1, "output": 2}}')
    assert load_prices(str(path))["my-model"].taken == f"--prices {path}"

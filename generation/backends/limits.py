"""Parameter maxima learned from the server: a 400 naming a parameter's maximum lowers that parameter for the rest
of the run (said once, recorded in the run's statistics and so in provenance), and the request is asked again."""
from __future__ import annotations

import json
import re
from typing import Any

from generation.backends.replies import _provider_message
from generation.backends.rules import notice_once

# OpenAI (and gateways passing its errors through): "Invalid 'n': integer above maximum value. Expected a value
# <= 128, but got 300 instead." (code integer_above_max_value, param n) and "max_tokens is too large: 100000. This
# model supports at most 16384 completion tokens, whereas you provided 100000."; Anthropic: "max_tokens: 100000 >
# 64000, which is the maximum allowed number of output tokens for claude-...".
LIMIT_TEXTS = (re.compile(r"Invalid '(?P<param>\w+)': integer above maximum value\. "
                          r"Expected a value <= (?P<value>\d+)"),
               re.compile(r"(?P<param>max_(completion_)?tokens) is too large: \d+\. This model supports at most "
                          r"(?P<value>\d+) completion tokens"),
               re.compile(r"(?P<param>max_tokens): \d+ > (?P<value>\d+), which is the maximum"))
LEARNABLE = ("n", "max_tokens", "max_completion_tokens")


def parameter_limit(exc: Any) -> tuple[str, int, int] | None:
    """(parameter, its maximum, the value the refused request sent) when a 400 says a learnable parameter is above
    the server's maximum, else None."""
    if getattr(exc, "status_code", None) != 400:
        return None
    message = _provider_message(exc)
    for pattern in LIMIT_TEXTS:
        match = pattern.search(message)
        if match and match["param"] in LEARNABLE:
            sent = _sent_value(exc, match["param"])
            return (match["param"], int(match["value"]), sent) if sent is not None else None
    return None


def _sent_value(exc: Any, name: str) -> int | None:
    """The value of `name` in the refused request's JSON body (the SDK keeps the request on its error)."""
    try:
        value = json.loads(exc.request.content).get(name)
    except (AttributeError, TypeError, ValueError):
        return None
    return value if isinstance(value, int) else None


class LearnedLimits:
    """The maxima one run learned, by parameter name (n, max_tokens, max_completion_tokens)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.values: dict[str, int] = {}

    def lower(self, name: str, value: int, sent: int) -> bool:
        """Keep `value` as the parameter's maximum when it is below what was sent (said once); False when lowering
        cannot help (the request would be refused again)."""
        if not 1 <= value < sent:
            return False
        if value < self.values.get(name, sent):
            self.values[name] = value
            notice_once(f"{self.where}: the server allows {name} <= {value} (HTTP 400 for {sent}): sending at most "
                        f"{value} for the rest of the run (recorded in provenance as learned_limits)")
        return True

    def apply(self, params: dict[str, Any]) -> dict[str, Any]:
        """The request's parameters with learned caps applied (`n` is applied where requests are split)."""
        for name in ("max_tokens", "max_completion_tokens"):
            if name in params and name in self.values:
                params[name] = min(params[name], self.values[name])
        return params

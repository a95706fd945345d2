"""Parameters learned from the server: a 400 naming a parameter's maximum lowers that parameter for the rest of the
run; a 400 refusing temperature, top_p or seed for this model (a reasoning model served under another name) leaves
it out; one refusing max_tokens for max_completion_tokens (or the other way round) sends the other name. Each is said
once, recorded in the run's statistics (so in provenance, `learned_limits`), and the request is asked again."""
from __future__ import annotations

import json
import re
from typing import Any

from generation.backends.replies import _error_code, _error_param, _provider_message
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
# A parameter the model does not take: OpenAI's {"code": "unsupported_parameter" (or "unsupported_value"), "param":
# "temperature", "message": "Unsupported parameter: 'temperature' is not supported with this model."} (or "Unsupported
# value: 'temperature' does not support 0.7 with this model. Only the default (1) value is supported.");
# Anthropic's "temperature: Extra inputs are not permitted".
UNSUPPORTED_CODES = ("unsupported_parameter", "unsupported_value")
EXTRA_INPUT = re.compile(r"^(?P<param>\w+): Extra inputs are not permitted")
DROPPABLE = ("temperature", "top_p", "seed")  # left out, the model uses its own default (said, recorded)
RENAMED = {"max_tokens": "max_completion_tokens", "max_completion_tokens": "max_tokens"}
# What to change for a refused parameter this pipeline cannot leave out by itself.
PARAMETER_FLAGS = {"n": "pass --max_n_per_request 1",
                   "reasoning_effort": "it is sent to OpenAI o-series and gpt-5 names: pass --provider "
                                       "openai_compatible to send the plain chat parameters",
                   "max_tokens": "set --max_new_tokens (Step 3: --judge_max_tokens)",
                   "max_completion_tokens": "set --max_new_tokens (Step 3: --judge_max_tokens)"}


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


def refused_parameter(exc: Any) -> str | None:
    """The parameter a 400 says this model does not take, else None."""
    if getattr(exc, "status_code", None) != 400:
        return None
    if _error_code(exc) in UNSUPPORTED_CODES and isinstance(_error_param(exc), str):
        return _error_param(exc)
    match = EXTRA_INPUT.match(_provider_message(exc))
    return match["param"] if match else None


def refusal_line(where: str, name: str, exc: Any) -> str:
    """The one-line error for a refused parameter that cannot be left out: the server's words and the flag."""
    fix = PARAMETER_FLAGS.get(name, "no flag of this pipeline leaves it out; please report it with this message")
    return f"{where}: the server refuses the parameter {name!r} (HTTP 400: {_provider_message(exc)}); {fix}"


def _sent_value(exc: Any, name: str) -> int | None:
    """The value of `name` in the refused request's JSON body (the SDK keeps the request on its error)."""
    try:
        value = json.loads(exc.request.content).get(name)
    except (AttributeError, TypeError, ValueError):
        return None
    return value if isinstance(value, int) else None


class LearnedLimits:
    """What one run learned, by parameter name: maxima (n, max_tokens, max_completion_tokens: an int) and
    parameters left out or renamed (a string saying which)."""

    def __init__(self, where: str) -> None:
        self.where = where
        self.values: dict[str, int] = {}

    def lower(self, name: str, value: int, sent: int) -> bool:
        """Keep `value` as the parameter's maximum when it is below what was sent (said once); False when lowering
        cannot help (the request would be refused again)."""
        current = self.values.get(name, sent)
        if isinstance(current, str) or not 1 <= value < sent:
            return False
        if value < current:
            self.values[name] = value
            notice_once(f"{self.where}: the server allows {name} <= {value} (HTTP 400 for {sent}): sending at most "
                        f"{value} for the rest of the run (recorded in provenance as learned_limits)")
        return True

    def refuse(self, name: str | None, exc: Any) -> bool:
        """Leave out (temperature, top_p, seed) or rename (max_tokens <-> max_completion_tokens, as the server's
        message asks) a parameter the server refused, for the rest of the run (said once); False when that cannot
        help (another parameter, or one already learned)."""
        if name is None or name in self.values:
            return isinstance(self.values.get(name), str)  # learned by a request in flight beside this one
        if name in DROPPABLE:
            self.values[name] = "not sent: the server refuses it"
            notice_once(f"{self.where}: the server refuses {name} for this model (HTTP 400: {_provider_message(exc)}):"
                        f" not sending it for the rest of the run; the model's own default is used (recorded in "
                        "provenance as learned_limits)")
            return True
        other = RENAMED.get(name)
        if other and other in _provider_message(exc) and other not in self.values:
            self.values[name] = f"sent as {other}"
            notice_once(f"{self.where}: the server takes {other} instead of {name} (HTTP 400): sending {other} for "
                        "the rest of the run (recorded in provenance as learned_limits)")
            return True
        return False

    def apply(self, params: dict[str, Any]) -> dict[str, Any]:
        """The request's parameters with what was learned applied: parameters left out or renamed, caps lowered
        (`n` is applied where requests are split)."""
        for name, learned in self.values.items():
            if name in params and isinstance(learned, str):
                value = params.pop(name)
                if learned.startswith("sent as "):
                    params[learned.removeprefix("sent as ")] = value
        for name in ("max_tokens", "max_completion_tokens"):
            if name in params and isinstance(self.values.get(name), int):
                params[name] = min(params[name], self.values[name])
        return params

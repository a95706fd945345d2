"""Weaver's generation stage: generate reasoning samples, grade them, score them with verifiers, report on them.

The four steps are the scripts beside this file; the packages below hold their code by concern (see docs/layout.md).
From Python (docs/python-api.md): `generation.grade`, `generation.grade_dataset`, `generation.parse_verdict`,
`generation.report_metrics` and `generation.load_output`, from generation/api.py, imported on first use so that
`import generation` stays light.
"""
from __future__ import annotations

from typing import Any

__all__ = ["grade", "grade_dataset", "load_output", "parse_verdict", "report_metrics"]  # from generation/api.py


def __getattr__(name: str) -> Any:
    """The API's functions, imported from generation.api when first asked for (PEP 562)."""
    if name in __all__:
        from generation import api

        return getattr(api, name)
    raise AttributeError(f"module 'generation' has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names, the lazily imported API included."""
    return sorted({*globals(), *__all__})

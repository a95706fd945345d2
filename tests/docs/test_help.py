"""Every script's --help states each flag's default once, and it is the parser's real default (a None default: the
help says in words what leaving the flag out means)."""
from __future__ import annotations

import argparse
import glob
import importlib
import os
import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from generation.common.cli import command_parser

from conftest import GENERATION

SCRIPTS = sorted(os.path.basename(path) for path in glob.glob(os.path.join(GENERATION, "*.py"))
                 if re.search(r"^if __name__ == .__main__.:", open(path, encoding="utf-8").read(), re.M))
MENTION = re.compile(r"\bdefault\b", re.I)


def printed_help(parser: argparse.ArgumentParser, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """Each flag's help as --help prints it (whitespace joined), keyed by the flag's first option string."""
    monkeypatch.setenv("COLUMNS", "100")  # wrapped as on a terminal: the checks must hold across line breaks
    blocks: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in parser.format_help().splitlines():
        if re.match(r"  -", line):
            invocation, _, rest = line.strip().partition("  ")
            current = blocks.setdefault(invocation.split()[0].rstrip(","), [])
            current.append(rest)
        elif current is not None and line.startswith("   "):
            current.append(line)
        else:
            current = None
    return {flag: " ".join(" ".join(parts).split()) for flag, parts in blocks.items()}


def default_problems(parser: argparse.ArgumentParser, monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Flags whose printed help states no default, several, or one other than the parser's."""
    printed = printed_help(parser, monkeypatch)
    problems = []
    for action in parser._actions:
        if not action.option_strings or isinstance(action, argparse._HelpAction):
            continue
        flag, default = action.option_strings[0], parser.get_default(action.dest)
        text = printed[flag]
        mentions = len(MENTION.findall(text))
        if action.required:
            ok = mentions == 0
        elif action.nargs == 0:  # a switch: off unless given; its help may say what off means
            ok = mentions <= 1
        elif default is None:
            ok = mentions == 1 and "(default: " in text and "(default: None)" not in text
        else:  # compared without spaces: argparse may break a long default across lines
            value = repr(default) if default == "" else str(default)
            ok = mentions == 1 and re.sub(r"\s", "", text).endswith(re.sub(r"\s", "", f"(default: {value})"))
        if not ok:
            problems.append(f"{flag} (parser default {default!r}): {text}")
    return problems


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_states_each_default_once_and_it_is_the_real_one(script, monkeypatch):
    """Walk the script's parser: one default per flag in --help, equal to parser.get_default (or words for None)."""
    parser = importlib.import_module(f"generation.{script[:-3]}").build_parser()
    assert parser.formatter_class is command_parser(None).formatter_class, f"{script}: build it with command_parser"
    problems = default_problems(parser, monkeypatch)
    assert not problems, f"{script}:\n" + "\n".join(problems)


DEFAULTS = st.one_of(st.integers(-10**6, 10**6), st.floats(allow_nan=False, allow_infinity=False),
                     st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12)
                     .filter(lambda t: "default" not in t.lower()),
                     st.lists(st.sampled_from(["a", "b%", "(c)"]), min_size=1, max_size=3))


@settings(max_examples=150, deadline=None)
@given(defaults=st.lists(DEFAULTS, min_size=1, max_size=6), words=st.integers(1, 30))
def test_the_formatter_prints_each_value_default_once(defaults, words):
    """Any parser built with command_parser: each value default printed once, as the parser holds it, whatever its
    type or characters (%, parentheses) and however the help wraps."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        parser = command_parser("a test parser")
        for index, default in enumerate(defaults):
            parser.add_argument(f"--flag_{index}", default=default, help=" ".join(["word"] * words))
        parser.add_argument("--switch", action="store_true", help="a switch")
        parser.add_argument("--needed", required=True, help="a required flag")
        assert default_problems(parser, monkeypatch) == []

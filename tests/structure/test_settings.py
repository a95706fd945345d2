"""Settings are typed objects: below generation/steps/ no module touches argparse's Namespace (parsing and building
the settings happen in steps/ and the scripts), and each step's settings hold exactly its parser's flags."""
from __future__ import annotations

import argparse
import ast
import os

import pytest

from generation.common.cli import flat_settings, settings_from

from conftest import GENERATION

# What a module below steps/ may use argparse for: building parsers (add_*_arguments helpers, argument types, help
# formatters), everything argparse offers but its Namespace, and the private types of argument groups.
PARSER_BUILDING = frozenset(set(argparse.__all__) - {"Namespace"} | {"_ActionsContainer", "_ArgumentGroup"})
PARSING = frozenset({"parse_args", "parse_known_args", "parse_intermixed_args", "parse_known_intermixed_args"})
NAMESPACE_NAMES = frozenset({"args", "namespace"})  # what the parsed arguments are called


def namespace_uses(source: str) -> list[str]:
    """Where a module's source touches a parsed Namespace: names Namespace, uses argparse for anything but building
    a parser, parses a command line, takes or reads a parameter named like the parsed arguments, or sets an
    attribute on them (each as 'line N: what')."""
    tree = ast.parse(source)
    found = []

    def hit(node: ast.AST, what: str) -> None:
        found.append(f"line {node.lineno}: {what}")

    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and node.id == "Namespace" or (
                isinstance(node, ast.Attribute) and node.attr == "Namespace"):
            hit(node, "names Namespace")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and "Namespace" in node.value.split("."):
            hit(node, "names Namespace in a string annotation")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "argparse" \
                and node.attr not in PARSER_BUILDING:
            hit(node, f"uses argparse.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "argparse" and {
                alias.name for alias in node.names} - PARSER_BUILDING:
            hit(node, "imports from argparse more than parser building")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in PARSING:
            hit(node, f"calls {node.func.attr}")
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in (
                "getattr", "setattr", "hasattr", "delattr", "vars") and node.args and isinstance(
                node.args[0], ast.Name) and node.args[0].id in NAMESPACE_NAMES:
            hit(node, f"calls {node.func.id}({node.args[0].id}, ...)")
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            params = [*node.args.posonlyargs, *node.args.args, *node.args.kwonlyargs]
            for param in params:
                if param.arg in NAMESPACE_NAMES:
                    hit(node, f"takes a parameter named {param.arg}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and \
                node.value.id in NAMESPACE_NAMES:
            hit(node, f"{'sets' if isinstance(node.ctx, ast.Store) else 'reads'} {node.value.id}.{node.attr}")
    return found


def below_steps() -> dict[str, str]:
    """Every module of generation/'s packages except steps/ (the top-level scripts parse), relative path -> source."""
    found = {}
    for folder, _, files in os.walk(GENERATION):
        relative = os.path.relpath(folder, GENERATION)
        if relative == "." or relative.split(os.sep)[0] == "steps":
            continue
        for name in files:
            if name.endswith(".py"):
                with open(os.path.join(folder, name), encoding="utf-8") as handle:
                    found[os.path.join(relative, name)] = handle.read()
    return found


def test_no_module_below_steps_touches_a_namespace():
    modules = below_steps()
    assert "judges/judging.py" in modules and "data/sharding.py" in modules and len(modules) > 40
    wrong = [f"generation/{path} {use}" for path, source in sorted(modules.items()) for use in namespace_uses(source)]
    assert not wrong, "settings objects, never argparse's Namespace, below generation/steps/:\n" + "\n".join(wrong)


@pytest.mark.parametrize("source", [
    "import argparse\ndef f(a: argparse.Namespace): return a.x",
    "from argparse import Namespace\n",
    "def f(a: 'argparse.Namespace'): pass",
    "x = getattr(args, 'max_cost', None)",
    "def f(settings):\n    setattr(args, 'budget', 1)",
    "def f(namespace): return vars(namespace)",
    "args._budget = object()",
    "def f(s):\n    args.split = s",
    "def budget_for(args, model): return args.max_cost",
    "run = lambda args: 0",
    "def f(*, args): pass",
    "def main():\n    options = parser.parse_args()",
    "import argparse\nns = argparse.Namespace(x=1)",
])
def test_each_way_of_touching_a_namespace_is_found(source):
    assert namespace_uses(source), source


@pytest.mark.parametrize("source", [
    "import argparse\ndef add(parser: argparse.ArgumentParser) -> None:\n    parser.add_argument('--x', type=int)",
    "import argparse\ndef parse(text):\n    raise argparse.ArgumentTypeError(f'bad {text!r}')",
    "import argparse\nhidden = action.default is argparse.SUPPRESS",
    "def group(g: 'argparse._ActionsContainer'): g.add_argument('--y')",
    "def run(*args, **kwargs): return len(args)",
    "def f(settings): return settings.api.max_cost",
    "shard = dict(args=[1, 2])",
])
def test_parser_building_and_settings_pass(source):
    assert not namespace_uses(source), namespace_uses(source)


def test_each_steps_settings_hold_exactly_its_flags():
    """Every flag a step parses is one setting of that step (nothing dropped from provenance), read back unchanged."""
    from generation import generate_reasoning_samples
    from generation.steps import evaluate, verify
    from generation.steps.settings import EvaluateSettings, GenerateSettings, VerifySettings

    for parser, cls, argv in [
        (generate_reasoning_samples.build_parser(), GenerateSettings, ["--model", "m", "--dataset", "math",
                                                                       "--output_path", "o", "--max_cost", "2"]),
        (evaluate.build_parser(), EvaluateSettings, ["-i", "in", "-o", "out", "-t", "math", "--start_row", "3"]),
        (verify.build_parser(), VerifySettings, ["--lm_judges", "J", "--critique_mode", "--judge_seed", "5"]),
    ]:
        flags = vars(parser.parse_args(argv))
        assert flat_settings(settings_from(cls, flags)) == flags
        with pytest.raises(ValueError, match="no setting for the flag"):
            settings_from(cls, {**flags, "max_costs": 1.0})  # a misspelt flag fails loudly
        with pytest.raises(ValueError, match="has no flag"):
            settings_from(cls, {k: v for k, v in flags.items() if k != "lock"})

"""The code's shape: packages by concern, dependencies pointing one way, no import cycle, small modules."""
from __future__ import annotations

import ast
import os

import pytest

from conftest import GENERATION, ROOT

# Lower layers never import higher ones; a package may import its own layer's modules and any lower layer.
LAYERS = (("common",), ("data",), ("costs",), ("backends",), ("grading", "reward_models", "judges"), ("report",),
          ("steps",))
RANK = {package: rank for rank, names in enumerate(LAYERS) for package in names}
MAX_LINES = 450
MAX_MODULES = 10


def modules() -> dict[str, str]:
    """Every module of generation/, by dotted name (CLI scripts by their file name), to its path."""
    found = {}
    for folder, _, files in os.walk(GENERATION):
        for name in files:
            if name.endswith(".py"):
                path = os.path.join(folder, name)
                dotted = os.path.relpath(path, GENERATION)[:-3].replace(os.sep, ".")
                found[dotted.removesuffix(".__init__")] = path
    return found


def imports_of(path: str, known: set[str]) -> set[str]:
    """Project modules a file imports anywhere (functions and type-only `if TYPE_CHECKING:` blocks included), named
    without the `generation.` prefix."""
    tree = ast.parse(open(path, encoding="utf-8").read())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            names = [f"{node.module}.{alias.name}" for alias in node.names] + [node.module]
        else:
            continue
        found |= {short for name in names if (short := name.removeprefix("generation.")) in known}
    return found


def graph() -> dict[str, set[str]]:
    """Module -> the project modules it imports."""
    found = modules()
    return {name: imports_of(path, set(found)) - {name} for name, path in found.items()}


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}

    def visit(node: str, trail: list[str]) -> None:
        state[node] = 1
        for dep in sorted(edges.get(node, ())):
            if state.get(dep) == 1:
                pytest.fail("import cycle: " + " -> ".join(trail[trail.index(dep):] + [dep]))
            if dep not in state:
                visit(dep, trail + [dep])
        state[node] = 2

    for start in sorted(edges):
        if start not in state:
            visit(start, [start])


def test_type_only_imports_count(tmp_path):
    """An import under `if TYPE_CHECKING:` is a dependency too (a type-only cycle is still a cycle)."""
    path = tmp_path / "module.py"
    path.write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from generation.common.cli import X\n"
                    "def f():\n    import generation.data.sharding\n")
    assert imports_of(str(path), {"common.cli", "data.sharding", "costs.budget"}) == {"common.cli", "data.sharding"}


def test_dependencies_point_one_way():
    wrong = []
    for name, deps in graph().items():
        package = name.split(".")[0]
        if package not in RANK:
            continue  # a CLI script: it may import anything
        for dep in deps:
            target = dep.split(".")[0]
            if target not in RANK:
                wrong.append(f"{name} imports the CLI script {dep}")
            elif RANK[target] > RANK[package] or (RANK[target] == RANK[package] and target != package):
                wrong.append(f"{name} ({package}) imports {dep} ({target})")
    assert not wrong, "\n".join(wrong)


def test_small_modules_and_folders():
    found = modules()
    long = {name: n for name, path in found.items() if (n := len(open(path, encoding="utf-8").readlines())) > MAX_LINES}
    assert not long, f"modules over {MAX_LINES} lines: {long}"
    per_folder: dict[str, int] = {}
    for name in found:
        if "." in name and not name.endswith("__init__"):
            per_folder[name.split(".")[0]] = per_folder.get(name.split(".")[0], 0) + 1
    assert max(per_folder.values()) <= MAX_MODULES, per_folder
    assert set(per_folder) == set(RANK), f"packages {sorted(per_folder)} != the layers {sorted(RANK)}"


def test_every_package_says_what_lives_there_and_what_it_may_import():
    for package in RANK:
        doc = ast.get_docstring(ast.parse(open(os.path.join(GENERATION, package, "__init__.py")).read()))
        assert doc and ("May import" in doc or package == "common"), package


def test_the_product_imports_only_through_the_generation_package():
    """Every project import is `generation.<package>...`; nothing in the product or scripts/ edits sys.path."""
    product = [path for top in ("generation", "scripts") for path in _python_files(os.path.join(ROOT, top))]
    wrong = []
    for path in [*product, *_python_files(os.path.join(ROOT, "tests")), *_python_files(os.path.join(ROOT, "bench"))]:
        for node in ast.walk(ast.parse(open(path, encoding="utf-8").read())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) and node.module and not node.level else [])
            wrong += [f"{os.path.relpath(path, ROOT)}:{node.lineno} imports {name}" for name in names
                      if name.split(".")[0] in RANK or name.split(".")[0] in SCRIPTS]
    for path in product:
        text = open(path, encoding="utf-8").read()
        wrong += [f"{os.path.relpath(path, ROOT)} edits sys.path" for _ in [1] if "sys.path" in text]
    assert not wrong, "\n".join(wrong)


SCRIPTS = {name[:-3] for name in os.listdir(GENERATION) if name.endswith(".py") and name != "__init__.py"}


def _python_files(folder: str) -> list[str]:
    """Every .py file under folder."""
    return [os.path.join(root, name) for root, _, files in os.walk(folder) for name in files if name.endswith(".py")]

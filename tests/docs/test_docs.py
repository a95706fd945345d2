"""README and docs/ stay true to the code: every flag of every script is documented on its page, every command line
in the docs parses with its script's own argparse, and every link and anchor resolves."""
from __future__ import annotations

import contextlib
import glob
import importlib
import io
import os
import re
import shlex

import pytest

from conftest import GENERATION, ROOT

# The page that documents each command-line script of generation/ (a new script needs a page here).
DOC_PAGES = {
    "generate_reasoning_samples.py": "docs/step1-generate.md",
    "unified_evaluation.py": "docs/step2-grade.md",
    "unified_RMs_and_LM_Judges.py": "docs/step3-verifiers.md",
    "verifier_report.py": "docs/step4-report.md",
    "merge_shards.py": "docs/scale-out.md",
    "verifiers_doc.py": "docs/step3-verifiers.md",
}
DOCS = ["README.md"] + sorted(os.path.relpath(p, ROOT) for p in glob.glob(os.path.join(ROOT, "docs", "*.md")))


def cli_scripts() -> list[str]:
    """Every script in generation/ that can be run: a top-level .py with a `__main__` block."""
    found = []
    for path in sorted(glob.glob(os.path.join(GENERATION, "*.py"))):
        with open(path, encoding="utf-8") as handle:
            if re.search(r"^if __name__ == .__main__.:", handle.read(), re.M):
                found.append(os.path.basename(path))
    return found


def parser_of(script: str):
    """The script's own argparse parser, from its build_parser()."""
    module = importlib.import_module(f"generation.{script[:-3]}")
    assert hasattr(module, "build_parser"), f"{script} must expose build_parser() (its command line)"
    return module.build_parser()


def read(page: str) -> str:
    """A docs page's text."""
    with open(os.path.join(ROOT, page), encoding="utf-8") as handle:
        return handle.read()


def test_every_script_has_a_docs_page():
    """A new command-line script gets a page in DOC_PAGES, and every page there exists."""
    assert set(cli_scripts()) == set(DOC_PAGES)
    for page in DOC_PAGES.values():
        assert os.path.exists(os.path.join(ROOT, page)), page


@pytest.mark.parametrize("script", sorted(DOC_PAGES))
def test_every_flag_is_documented(script):
    """Each option string of the script's parser appears, as a whole flag, on its docs page."""
    text = read(DOC_PAGES[script])
    flags = {option for action in parser_of(script)._actions for option in action.option_strings} - {"-h", "--help"}
    missing = sorted(flag for flag in flags if not re.search(rf"(?<![\w-]){re.escape(flag)}(?![\w-])", text))
    assert not missing, f"{DOC_PAGES[script]} does not mention these flags of {script}: {missing}"


def code_blocks(text: str) -> list[str]:
    """The fenced code blocks of a markdown text, and its inline code spans that start with `python `."""
    blocks = re.findall(r"^```[^\n]*\n(.*?)^```", text, re.M | re.S)
    prose = re.sub(r"^```.*?^```", "", text, flags=re.M | re.S)
    return blocks + [span for span in re.findall(r"`(python [^`]+)`", prose) if "..." not in span]


def blank_substitutions(line: str) -> str:
    """Shell expansions replaced by plain values: `$(...)` by a path, `$VAR`/`${VAR}` by 1."""
    out, depth = [], 0
    i = 0
    while i < len(line):
        if line.startswith("$(", i):
            if depth == 0:
                out.append("x.hf")
            depth += 1
            i += 2
        elif depth and line[i] == "(":
            depth, i = depth + 1, i + 1
        elif depth and line[i] == ")":
            depth, i = depth - 1, i + 1
        else:
            if not depth:
                out.append(line[i])
            i += 1
    return re.sub(r"\$\{\w+\}|\$\w+", "1", "".join(out))


def command_lines(block: str):
    """(working folder, argv) of each shell command in a code block: continuations joined, `$ ` prompts, comments
    and `VAR=value` prefixes dropped, `cd DIR` (alone or before `&&`) followed."""
    cwd = ROOT
    block = re.sub(r"\\\n", " ", block)
    for raw in block.splitlines():
        line = blank_substitutions(raw.strip().removeprefix("$ "))
        try:
            tokens = shlex.split(line, comments=True)
        except ValueError:
            continue
        command: list[str] = []
        for token in tokens + ["&&"]:
            if token not in ("&&", ";", "||"):
                command.append(token)
                continue
            while command and re.fullmatch(r"\w+=.*", command[0]):
                command = command[1:]
            if command[:1] == ["cd"] and len(command) == 2:
                cwd = os.path.normpath(os.path.join(cwd, command[1]))
            elif command:
                yield cwd, command
            command = []


def documented_commands() -> list[tuple[str, str, list[str]]]:
    """(page, script, arguments) of every command line in README/docs that runs a script of generation/."""
    found = []
    for page in DOCS:
        for block in code_blocks(read(page)):
            for cwd, argv in command_lines(block):
                if len(argv) < 2 or argv[0] not in ("python", "python3") or not argv[1].endswith(".py"):
                    continue
                path = os.path.normpath(os.path.join(cwd, argv[1]))
                if os.path.dirname(path) == GENERATION:
                    found.append((page, os.path.basename(path), argv[2:]))
    return found


def test_docs_show_every_step_command():
    """The command extraction finds the commands of every step on their pages (so the parse test below bites)."""
    found = {(page, script) for page, script, _ in documented_commands()}
    for script, page in DOC_PAGES.items():
        assert (page, script) in found or script == "verifiers_doc.py", f"no {script} command found on {page}"
    assert {script for page, script in found if page == "README.md"} >= {
        "generate_reasoning_samples.py", "unified_evaluation.py", "unified_RMs_and_LM_Judges.py", "verifier_report.py"}


@pytest.mark.parametrize("page,script,argv", documented_commands(),
                         ids=lambda value: value if isinstance(value, str) else " ".join(value)[:60])
def test_documented_command_parses(page, script, argv):
    """Each documented command line is accepted by its script's own argparse (nothing is run)."""
    errors = io.StringIO()
    with contextlib.redirect_stderr(errors):
        try:
            parser_of(script).parse_args(argv)
        except SystemExit:
            pytest.fail(f"{page}: `{script} {' '.join(argv)}` does not parse: {errors.getvalue().strip()}")


def slug(heading: str) -> str:
    """GitHub's anchor for a markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower().replace("`", ""))
    return text.replace(" ", "-")


@pytest.mark.parametrize("page", DOCS)
def test_links_resolve(page):
    """Every relative link of a page names an existing file, and its #anchor an existing heading."""
    text = re.sub(r"^```.*?^```", "", read(page), flags=re.M | re.S)
    broken = []
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if re.match(r"[a-z]+://", target):
            continue
        path, _, anchor = target.partition("#")
        full = os.path.normpath(os.path.join(ROOT, os.path.dirname(page), path)) if path else os.path.join(ROOT, page)
        if not os.path.exists(full):
            broken.append(target)
        elif anchor and full.endswith(".md"):
            with open(full, encoding="utf-8") as handle:
                headings = re.findall(r"^#+ (.*)$", re.sub(r"^```.*?^```", "", handle.read(), flags=re.M | re.S), re.M)
            if anchor not in {slug(h) for h in headings}:
                broken.append(target)
    assert not broken, f"{page}: broken links {broken}"


PROJECT_FOLDERS = ("generation/", "tests/", "scripts/", "bench/", "docs/", ".ci/")


@pytest.mark.parametrize("page", DOCS)
def test_named_project_files_exist(page):
    """Every project file a page names in code quotes exists: paths under the project's folders, and bare `x.py`
    names (so a page cannot point at a module that moved)."""
    basenames = {name for _, _, files in os.walk(ROOT) for name in files}
    missing = []
    for name in re.findall(r"`([\w./-]+\.(?:py|sh|md|txt))`", read(page)):
        if name.startswith(PROJECT_FOLDERS):
            if not os.path.exists(os.path.join(ROOT, name)):
                missing.append(name)
        elif "/" not in name and name.endswith(".py") and name not in basenames:
            missing.append(name)
    assert not missing, f"{page} names files that do not exist: {missing}"


def test_readme_is_short_and_links_every_page():
    """README.md stays an overview (at most 15 KB) and links every page of docs/."""
    text = read("README.md")
    assert len(text.encode()) <= 15 * 1024
    unlinked = [page for page in DOCS[1:] if f"]({page})" not in text]
    assert not unlinked, f"README.md does not link {unlinked}"

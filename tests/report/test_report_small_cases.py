"""Step 4's figures in small and odd cases: separate panels with their own reference lines, colours by kind, no
combination of one verifier, empty figures that say so, densities per class, bars for few-valued verifiers, and no
library warning on the console."""
from __future__ import annotations

import re

import matplotlib.figure
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from test_report import known_rows, save
from test_report_scale import capture_figures, run

from generation.report.figures import DISCRETE_VALUES, KIND_COLOURS

from conftest import run_script

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture
def figures(monkeypatch) -> dict:
    """Every figure the report saves, with what is drawn in it."""
    return capture_figures(monkeypatch)

SELECT_REFERENCES = {"pass@k (ceiling)", "majority vote", "first sample", "sample accuracy"}


def test_auroc_and_select_at_1_have_separate_panels_each_with_its_own_lines(tmp_path, figures):
    report = run(tmp_path, known_rows())
    auroc, select = figures["auroc.png"]["axes"][:2]
    assert "AUROC" in auroc["xlabel"] and "select@1" in select["xlabel"]
    assert [line.split(" (")[0] for line in auroc["lines"]] == ["AUROC of chance"]
    assert {re.sub(r" [\d.]+$", "", line) for line in select["lines"]} == SELECT_REFERENCES
    for panel, metric in ((auroc, "auroc"), (select, "select_at_1")):  # a bar per defined value, coloured by kind
        colours = [colour for _, bars in panel["containers"] for _, _, colour in bars]
        expected = [matplotlib.colors.to_hex(KIND_COLOURS[report["verifiers"][n]["kind"]]) for n in auroc["ticks"]
                    if report["verifiers"][n][metric] is not None]
        assert colours == expected


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(kinds=st.lists(st.sampled_from(["varied", "constant", "none"]), min_size=1, max_size=4))
def test_a_combination_only_of_two_or_more_verifiers(tmp_path_factory, monkeypatch, kinds):
    """Verifiers with varied, constant or no scores: the combined verifier is reported exactly when two or more
    verifiers have varied scores (one verifier's z-scores would rank as the verifier itself)."""
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, path, *a, **k: open(path, "wb").close())
    rng = np.random.default_rng(len(kinds))
    correct = rng.random((5, 3)) < 0.5
    columns = {"instruction": ["q"] * 5, "answer_correct": correct.tolist()}
    for index, kind in enumerate(kinds):
        values = {"varied": rng.random((5, 3)).tolist(), "constant": [[0.5] * 3] * 5, "none": [[None] * 3] * 5}
        columns[f"V{index}_scores"] = values[kind]
    report = run(tmp_path_factory.mktemp("combo"), columns)
    assert ("mean_of_normalised" in report["verifiers"]) == (kinds.count("varied") >= 2)


def pixels_vary(path) -> bool:
    """Whether a PNG shows anything (not one flat colour)."""
    with Image.open(path) as image:
        return np.asarray(image.convert("L")).std() > 2


def test_a_figure_with_nothing_to_show_says_so(tmp_path, figures):
    columns = {"instruction": ["q"] * 3, "answer_correct": [[True, False]] * 3, "Broken_scores": [[None] * 2] * 3}
    run(tmp_path, columns)
    for name in ("score_distributions.png", "correlations.png", "auroc_vs_select.png"):
        texts = [text for axes in figures[name]["axes"] for text in axes["texts"]]
        assert any(text.startswith("Nothing to show") for text in texts), (name, texts)
    assert all(pixels_vary(tmp_path / "rep" / name) for name in figures)


def test_one_verifier_has_no_correlation_to_show(tmp_path, figures):
    columns = {"instruction": ["q"] * 3, "answer_correct": [[True, False]] * 3, "A_scores": [[0.9, 0.1]] * 3}
    report = run(tmp_path, columns)
    assert set(report["verifiers"]) == {"A"}  # no combination of one verifier
    assert any("two or more verifiers" in text for text in figures["correlations.png"]["axes"][0]["texts"])


def test_scores_are_densities_per_class_and_few_values_are_bars(tmp_path, figures):
    """Nine incorrect samples for each correct one: each class's histogram has area 1; a judge whose K = 2 verdicts
    average to 0, 0.5 or 1 gets one bar per value and class, the bars of a class adding up to 1."""
    rng = np.random.default_rng(0)
    correct = rng.random((60, 10)) < 0.1
    columns = {"instruction": ["q"] * 60, "answer_correct": correct.tolist(),
               "RM_scores": (rng.normal(size=(60, 10)) + correct).tolist(),
               "J_verdicts": rng.integers(0, 2, (60, 10, 2)).astype(float).tolist()}
    run(tmp_path, columns)
    panels = [axes for axes in figures["score_distributions.png"]["axes"] if len(axes["containers"]) == 2]
    histograms = [axes for axes in panels if len(axes["containers"][0][1]) > DISCRETE_VALUES]
    bars = [axes for axes in panels if len(axes["containers"][0][1]) <= DISCRETE_VALUES]
    assert histograms and bars  # the reward model and the combination; the judge
    for _, patches in [container for axes in histograms for container in axes["containers"]]:
        assert sum(height * width for height, width, _ in patches) == pytest.approx(1.0)
    for _, patches in [container for axes in bars for container in axes["containers"]]:
        assert len(patches) == 3 and sum(height for height, _, _ in patches) == pytest.approx(1.0)


@pytest.mark.slow
def test_no_library_warning_reaches_the_console(tmp_path):
    """The odd cases together (a verifier without scores, one constant verifier, one sample per problem, all samples
    wrong): stderr holds the report's own notices and progress bars, no Python or library warning."""
    columns = {"instruction": ["q"] * 3, "answer_correct": [[False]] * 3, "Broken_scores": [[None]] * 3,
               "Flat_scores": [[0.5]] * 3}
    source = save(columns, tmp_path / "in.hf")
    done = run_script("verifier_report.py", "--dataset_path", source, "--output_dir", str(tmp_path / "rep"))
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert not [line for line in lines if re.search(r"\w+Warning\b|warnings\.warn", line)], done.stderr
    assert any(line.startswith("warning: verifier Broken has no score") for line in lines)

"""Step 4 at scale and on odd input: 40 verifiers, missing metrics, non-finite scores, the palette."""
from __future__ import annotations

import json
import os

import matplotlib.figure
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from matplotlib.container import BarContainer
from test_report import known_rows, save

from generation import verifier_report

pytestmark = pytest.mark.filterwarnings("error")  # no warning reaches the console
BASELINES = ("pass@k", "majority vote")


def many_verifiers(count: int, rows: int = 30, samples: int = 8, seed: int = 0) -> dict:
    """A graded dataset with count reward models of growing skill (scores = noise + skill * correct)."""
    rng = np.random.default_rng(seed)
    correct = rng.random((rows, samples)) < 0.4
    columns = {"instruction": ["q"] * rows, "answer": ["1"] * rows, "answer_correct": correct.tolist(),
               "extracted_answers": rng.choice(["1", "2", "3"], (rows, samples)).tolist(),
               "answer_extraction_method": [["procedural"] * samples] * rows}
    for index in range(count):
        columns[f"RM{index:02d}_scores"] = (rng.random((rows, samples)) + index / count * correct).tolist()
    return columns


@pytest.fixture
def figures(monkeypatch) -> dict:
    """Every figure the report saves (capture_figures)."""
    return capture_figures(monkeypatch)


def capture_figures(monkeypatch) -> dict:
    """Every figure the report saves, by file name, measured after its layout: legend boxes, colours, labels, and
    per axes its texts, lines, bars and tick labels."""
    saved, original = {}, matplotlib.figure.Figure.savefig

    def savefig(fig, path, *args, **kwargs):
        original(fig, path, *args, **kwargs)
        renderer = fig.canvas.get_renderer()
        legends = list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]
        saved[os.path.basename(str(path))] = {
            "figure": fig.bbox.bounds,
            "entries": [(text.get_text(), text.get_window_extent(renderer).bounds)
                        for legend in legends for text in legend.get_texts()],
            "panels": [(ax.get_xlabel(), ax.get_ylabel()) if not hasattr(ax, "_colorbar") else (ax.get_ylabel(),) * 2
                       for ax in fig.axes if ax.axison],  # a colour bar: its one label
            "line_colours": {line.get_label(): matplotlib.colors.to_hex(line.get_color())
                             for ax in fig.axes for line in ax.get_lines() if not line.get_label().startswith("_")},
            "bars": sum(len(c) for ax in fig.axes for c in ax.containers if isinstance(c, BarContainer)),
            "axes": [{"xlabel": ax.get_xlabel(), "texts": [t.get_text() for t in ax.texts],
                      "lines": [line.get_label() for line in ax.get_lines() if not line.get_label().startswith("_")],
                      "containers": [(c.get_label(), [(p.get_height(), p.get_width(),
                                                      matplotlib.colors.to_hex(p.get_facecolor())) for p in c])
                                     for c in ax.containers if isinstance(c, BarContainer)],
                      "ticks": [t.get_text() for t in ax.get_yticklabels()]} for ax in fig.axes],
        }

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", savefig)
    return saved


def run(tmp_path, columns: dict, *extra: str) -> dict:
    """Run Step 4 in this process on columns; return report.json."""
    source = save(columns, tmp_path / "in.hf")
    assert verifier_report.main(["--dataset_path", source, "--output_dir", str(tmp_path / "rep"), *extra]) == 0
    with open(tmp_path / "rep" / "report.json") as handle:
        return json.load(handle)


def inside(box: tuple, figure: tuple) -> bool:
    """A (x, y, width, height) box within the figure's box (to a pixel)."""
    x, y, w, h = box
    fx, fy, fw, fh = figure
    return x >= fx - 1 and y >= fy - 1 and x + w <= fx + fw + 1 and y + h <= fy + fh + 1


def test_forty_verifiers_figures_stay_readable(tmp_path, figures):
    report = run(tmp_path, many_verifiers(40))
    assert set(figures) == {"auroc.png", "best_of_k.png", "score_distributions.png", "correlations.png",
                            "auroc_vs_select.png"}
    for name, figure in figures.items():
        outside = [label for label, box in figure["entries"] if not inside(box, figure["figure"])]
        assert not outside, f"{name}: legend entries outside the figure: {outside}"
    for name, figure in figures.items():
        assert all(x and y for x, y in figure["panels"]), f"{name}: a panel without axis labels"
    curves = figures["best_of_k.png"]
    labels = [label for label, _ in curves["entries"]]
    assert all(baseline in labels for baseline in BASELINES)
    colours = [c for label, c in curves["line_colours"].items()]
    assert len(set(colours)) == len(colours), "two curves share a colour"
    best = max(report["verifiers"], key=lambda name: report["verifiers"][name]["select_at_1"])
    assert best in labels  # the best verifier is drawn


def test_missing_metrics_are_not_bars(tmp_path, figures):
    report = run(tmp_path, known_rows())
    defined = sum(stats[m] is not None for stats in report["verifiers"].values() for m in ("auroc", "select_at_1"))
    assert defined < 2 * len(report["verifiers"])  # Broken has neither
    assert figures["auroc.png"]["bars"] == defined


SPECIAL = st.sampled_from([float("inf"), float("-inf"), float("nan")])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_non_finite_scores_are_counted_and_left_out(tmp_path_factory, monkeypatch, capsys, data):
    """Any mix of inf/-inf/NaN among finite reward-model scores and judge verdicts: a notice with their count,
    strict JSON, metrics from the finite scores only."""
    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", lambda fig, path, *a, **k: open(path, "wb").close())
    rows, samples = data.draw(st.integers(1, 4)), data.draw(st.integers(1, 4))
    finite = st.floats(-1e6, 1e6, allow_nan=False)
    cell = st.one_of(finite, SPECIAL, st.none())
    rm = data.draw(st.lists(st.lists(cell, min_size=samples, max_size=samples), min_size=rows, max_size=rows))
    judge = data.draw(st.lists(st.lists(st.lists(st.one_of(st.sampled_from([0.0, 1.0]), SPECIAL), min_size=2,
                                                 max_size=2), min_size=samples, max_size=samples),
                               min_size=rows, max_size=rows))
    correct = data.draw(st.lists(st.lists(st.booleans(), min_size=samples, max_size=samples), min_size=rows,
                                 max_size=rows))
    columns = {"instruction": ["q"] * rows, "answer_correct": correct, "R_scores": rm, "J_verdicts": judge,
               "clean_scores": [[float(c) for c in row] for row in correct]}
    tmp_path = tmp_path_factory.mktemp("nonfinite")
    source = save(columns, tmp_path / "in.hf")
    out = tmp_path / "rep"
    assert verifier_report.main(["--dataset_path", source, "--output_dir", str(out)]) == 0
    report = json.loads((out / "report.json").read_text(),
                        parse_constant=lambda token: pytest.fail(f"invalid JSON token {token}"))
    notices = capsys.readouterr().err
    for name, values in (("R", rm), ("J", judge)):
        flat = [v for v in np.ravel(np.array(values, dtype=float))]
        count = sum(not np.isfinite(v) for v in flat) - sum(v is None for v in np.ravel(np.array(values, dtype=object)))
        assert (f"verifier {name}: {count} non-finite" in notices) == (count > 0), notices
    r_finite = sum(v is not None and np.isfinite(v) for row in rm for v in row)
    assert report["verifiers"]["R"]["coverage"] == pytest.approx(r_finite / (rows * samples))
    assert report["verifiers"]["clean"]["coverage"] == 1.0


@pytest.mark.parametrize("count", [1, 9, 10, 11, 25, 40, 64])
def test_palette_never_repeats_a_colour(count):
    from generation.report import figures

    colours = [matplotlib.colors.to_hex(colour) for colour in figures.palette(count)]
    assert len(colours) == count == len(set(colours))

"""The report's Markdown and HTML pages: verifier table with intervals, baselines, figures."""
from __future__ import annotations

import base64
import html
import os

from generation.report.analysis import ranked

FIGURES = {"auroc.png": "AUROC and select@1 per verifier (95% intervals)",
           "best_of_k.png": "Best-of-k accuracy as k grows",
           "score_distributions.png": "Scores of correct vs incorrect samples (top 6 verifiers)",
           "correlations.png": "Rank correlations between verifiers (clustered)",
           "auroc_vs_select.png": "AUROC against select@1"}
BASELINE_LABELS = {"pass_at_k": "pass@k", "majority_vote": "majority vote", "first_sample": "first sample",
                   "sample_accuracy": "sample accuracy"}
METRICS = ("select_at_1", "auroc", "coverage", "mean_score_correct", "mean_score_incorrect")


def cell(value) -> str:
    """A table cell: numbers with 3 decimals, None as a dash."""
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def with_interval(value, bounds: list[float] | None) -> str:
    """A value and its 95% interval, e.g. 0.910 [0.844, 0.969]."""
    return cell(value) + (f" [{bounds[0]:.3f}, {bounds[1]:.3f}]" if value is not None and bounds else "")


def table_rows(report: dict, costs: dict[str, float]) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the verifier table, sorted by select_at_1 (intervals beside the values; the cost column
    only when the input recorded a cost)."""
    bounds, overlapping = report["intervals"]["verifiers"], report["ranking"]["overlapping_best"]
    header = ["verifier", "kind", "select@1 [95% interval]", "overlaps best", "AUROC [95% interval]", "coverage",
              "mean score correct", "mean score incorrect", *(["cost (USD)"] if costs else [])]
    rows = []
    for name in ranked(report):
        stats = report["verifiers"][name]
        near = "-" if overlapping is None or stats["select_at_1"] is None else "yes" if name in overlapping else "no"
        rows.append([name, stats["kind"], with_interval(stats["select_at_1"], bounds[name]["select_at_1"]), near,
                     with_interval(stats["auroc"], bounds[name]["auroc"]), cell(stats["coverage"]),
                     cell(stats["mean_score_correct"]), cell(stats["mean_score_incorrect"]),
                     *([cell(costs.get(name))] if costs else [])])
    return header, rows


def baseline_line(report: dict) -> str:
    """The baselines with their intervals in one sentence."""
    bounds = report["intervals"]["baselines"]
    return ", ".join(f"{label} {with_interval(report['baselines'][key], bounds[key])}"
                     for key, label in BASELINE_LABELS.items())


def method_note(report: dict) -> str:
    """How the intervals and the 'overlaps best' column were made."""
    spec = report["intervals"]
    if report["rows"] < 2:
        return "No intervals: one problem has no spread to resample."
    return (f"Intervals: {spec['level']:.0%} percentile bootstrap over problems ({spec['resamples']} resamples of the "
            f"{report['rows']} problems, seed {spec['seed']}). 'overlaps best': the verifier's select@1 interval "
            f"overlaps that of the best verifier ({report['ranking']['best']}), so these problems cannot tell the "
            f"two apart.")


def markdown(report: dict, source: str, costs: dict[str, float]) -> str:
    """report.md: summary, verifier table and the figures."""
    header, rows = table_rows(report, costs)
    lines = [f"# Verifier report: {source}", "",
             f"{report['rows']} problems x {report['samples_per_row']} samples. Baselines: {baseline_line(report)}.",
             "", method_note(report), "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    for name, title in FIGURES.items():
        lines += ["", f"## {title}", "", f"![{title}]({name})"]
    return "\n".join(lines) + "\n"


def page(report: dict, source: str, folder: str, costs: dict[str, float]) -> str:
    """report.html: the same content with the figures inline as data URIs."""
    header, rows = table_rows(report, costs)
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Verifier report</title></head><body>",
             f"<h1>Verifier report: {html.escape(source)}</h1>",
             (f"<p>{report['rows']} problems x {report['samples_per_row']} samples. "
              f"Baselines: {html.escape(baseline_line(report))}.</p>"), f"<p>{html.escape(method_note(report))}</p>",
             "<table border='1' cellpadding='3'><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    parts += ["<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in rows]
    parts.append("</table>")
    for name, title in FIGURES.items():
        with open(os.path.join(folder, name), "rb") as handle:
            data = base64.b64encode(handle.read()).decode()
        parts.append(f"<h2>{html.escape(title)}</h2>"
                     f"<img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
    return "\n".join(parts + ["</body></html>"]) + "\n"

"""The report's figures (matplotlib PNGs) and its Markdown and HTML pages."""
from __future__ import annotations

import base64
import html
import os

import numpy as np

FIGURES = {"auroc.png": "AUROC and select@1 per verifier", "best_of_k.png": "Best-of-k accuracy as k grows",
           "score_distributions.png": "Scores of correct vs incorrect samples (top 6 verifiers)"}
BASELINE_LABELS = {"pass_at_k": "pass@k", "majority_vote": "majority vote", "first_sample": "first sample",
                   "sample_accuracy": "sample accuracy"}
BASELINE_CURVES = {"pass@k": ("black", "--"), "majority vote": ("dimgrey", "-.")}  # always drawn, never in the palette
METRICS = ("kind", "select_at_1", "auroc", "coverage", "mean_score_correct", "mean_score_incorrect")
TOP_DISTRIBUTIONS = 6
TOP_CURVES = 10  # best-of-k draws the best verifiers by select@1 (one tab10 colour each); the table has them all
LEGEND_ROWS = 24  # legend entries per column before a new column starts


def ranked(report: dict) -> list[str]:
    """Verifier names by select_at_1, best first (undefined last, then by name)."""
    verifiers = report["verifiers"]
    return sorted(verifiers, key=lambda n: (verifiers[n]["select_at_1"] is None, -(verifiers[n]["select_at_1"] or 0), n))


def pyplot():
    """matplotlib's pyplot on the file-only Agg backend."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def palette(count: int) -> list:
    """count distinct colours: tab10's while they suffice, else evenly spaced hues (no colour repeats)."""
    plt = pyplot()
    if count <= 10:
        return list(plt.get_cmap("tab10").colors[:count])
    return [plt.get_cmap("hsv")(i / count) for i in range(count)]  # hsv wraps: i/count never reaches 1


def outside_legend(fig, handles: list | None = None) -> None:
    """The legend right of the plot area, in columns of LEGEND_ROWS entries, kept inside the figure."""
    handles = handles if handles is not None else fig.axes[0].get_legend_handles_labels()[0]
    fig.legend(handles=handles, loc="outside right upper", fontsize=7,
               ncols=max(1, -(-len(handles) // LEGEND_ROWS)))


def save(fig, path: str) -> None:
    """Write a figure as PNG and release it."""
    fig.savefig(path, dpi=90)
    pyplot().close(fig)


def draw_auroc(report: dict, path: str) -> None:
    """Bars of AUROC and select@1 per verifier (n/a where undefined), the baselines as horizontal lines."""
    plt = pyplot()
    names = ranked(report)
    fig, ax = plt.subplots(figsize=(max(6.0, 0.3 * len(names) + 4), 4.5), layout="constrained")
    for offset, metric, label, color in ((-0.2, "auroc", "AUROC", "tab:blue"),
                                         (0.2, "select_at_1", "select@1", "tab:orange")):
        values = [report["verifiers"][n][metric] for n in names]
        shown = [i for i, v in enumerate(values) if v is not None]
        ax.bar([i + offset for i in shown], [values[i] for i in shown], 0.4, label=label, color=color)
        for i in sorted(set(range(len(names))) - set(shown)):  # undefined: marked, not a bar of height 0
            ax.text(i + offset, 0.01, "n/a", rotation=90, ha="center", va="bottom", fontsize=6, color=color)
    styles = ("--", "-.", ":", (0, (5, 1)))
    for (key, label), style in zip(BASELINE_LABELS.items(), styles):
        if report["baselines"][key] is not None:
            ax.axhline(report["baselines"][key], linestyle=style, color="black", linewidth=1,
                       label=f"{label} {report['baselines'][key]:.3f}")
    ax.axhline(0.5, color="grey", linewidth=0.8, label="AUROC of chance")
    ax.set_xticks(np.arange(len(names)), names, rotation=45, ha="right", fontsize=8)
    ax.set_xlabel("verifier (best select@1 first)")
    ax.set_ylabel("AUROC / select@1")
    ax.set_ylim(0, 1.05)
    ax.set_title(f"Verifiers on {report['rows']} problems x {report['samples_per_row']} samples")
    outside_legend(fig)
    save(fig, path)


def draw_best_of_k(curves: dict[str, list[float]], ks: list[int], path: str) -> None:
    """Best-of-k accuracy of the TOP_CURVES best verifiers (curves' order), majority vote and pass@k (log2 axis)."""
    plt = pyplot()
    verifiers = [name for name in curves if name not in BASELINE_CURVES]
    shown = verifiers[:TOP_CURVES]
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    for name, color in zip(shown, palette(len(shown))):
        ax.plot(ks, curves[name], marker="o", markersize=3, linewidth=1.2, color=color, label=name)
    for name, (color, style) in BASELINE_CURVES.items():
        if name in curves:
            ax.plot(ks, curves[name], marker="o", markersize=3, linewidth=2.5, linestyle=style, color=color,
                    label=name)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("k (samples drawn per problem)")
    ax.set_ylabel("accuracy")
    ax.set_ylim(0, 1.05)
    if len(verifiers) > len(shown):
        ax.set_title(f"top {len(shown)} of {len(verifiers)} verifiers by select@1 (all in the table)", fontsize=9)
    outside_legend(fig)
    save(fig, path)


def draw_distributions(scores: dict[str, np.ndarray], correct: np.ndarray, path: str) -> None:
    """Histograms of scores of correct and incorrect samples, one labelled panel per verifier."""
    plt = pyplot()
    columns = min(3, max(1, len(scores)))
    rows = max(1, -(-len(scores) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(scores):]:
        ax.axis("off")
    for ax, (name, values) in zip(axes.flat, scores.items()):
        present = ~np.isnan(values)
        bins = np.histogram_bin_edges(values[present], bins=20) if present.any() else 10
        for flag, label, color in ((True, "correct", "tab:green"), (False, "incorrect", "tab:red")):
            ax.hist(values[present & (correct == flag)], bins=bins, alpha=0.6, color=color, label=label)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("score", fontsize=8)
        ax.set_ylabel("samples", fontsize=8)
        ax.legend(fontsize=7)
    save(fig, path)
def cell(value) -> str:
    """A table cell: numbers with 3 decimals, None as a dash."""
    if value is None:
        return "-"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def table_rows(report: dict) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the verifier table, sorted by select_at_1."""
    return ["verifier", *METRICS], [[name, *(cell(report["verifiers"][name][m]) for m in METRICS)]
                                    for name in ranked(report)]


def baseline_line(report: dict) -> str:
    """The baselines in one sentence."""
    return ", ".join(f"{label} {cell(report['baselines'][key])}" for key, label in BASELINE_LABELS.items())


def markdown(report: dict, source: str) -> str:
    """report.md: summary, verifier table and the three figures."""
    header, rows = table_rows(report)
    lines = [f"# Verifier report: {source}", "",
             f"{report['rows']} problems x {report['samples_per_row']} samples. Baselines: {baseline_line(report)}.",
             "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    for name, title in FIGURES.items():
        lines += ["", f"## {title}", "", f"![{title}]({name})"]
    return "\n".join(lines) + "\n"


def page(report: dict, source: str, folder: str) -> str:
    """report.html: the same content with the figures inline as data URIs."""
    header, rows = table_rows(report)
    parts = ["<!doctype html><html><head><meta charset='utf-8'><title>Verifier report</title></head><body>",
             f"<h1>Verifier report: {html.escape(source)}</h1>",
             f"<p>{report['rows']} problems x {report['samples_per_row']} samples. "
             f"Baselines: {html.escape(baseline_line(report))}.</p>",
             "<table border='1' cellpadding='3'><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in header) + "</tr>"]
    parts += ["<tr>" + "".join(f"<td>{html.escape(v)}</td>" for v in row) + "</tr>" for row in rows]
    parts.append("</table>")
    for name, title in FIGURES.items():
        with open(os.path.join(folder, name), "rb") as handle:
            data = base64.b64encode(handle.read()).decode()
        parts.append(f"<h2>{html.escape(title)}</h2><img alt='{html.escape(title)}' src='data:image/png;base64,{data}'>")
    return "\n".join(parts + ["</body></html>"]) + "\n"

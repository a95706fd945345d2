"""The report's figures (matplotlib PNGs): verifiers with their intervals, best-of-k, score densities, relations."""
from __future__ import annotations

import numpy as np

from generation.report.relations import cluster_order

KIND_COLOURS = {"reward_model": "tab:blue", "prm": "tab:green", "judge": "tab:orange", "combination": "tab:purple"}
KIND_LABELS = {"reward_model": "reward model", "prm": "PRM", "judge": "LM judge",
               "combination": "combination of verifiers"}
SELECT_LINES = {"pass_at_k": ("pass@k (ceiling)", "--"), "majority_vote": ("majority vote", "-."),
                "first_sample": ("first sample", ":"), "sample_accuracy": ("sample accuracy", (0, (5, 1)))}
BASELINE_CURVES = {"pass@k": ("black", "--"), "majority vote": ("dimgrey", "-.")}  # always drawn, never in the palette
TOP_CURVES = 10  # best-of-k draws the best verifiers by select@1 (one colour each); the table has them all
TOP_DISTRIBUTIONS = 6
DISCRETE_VALUES = 12  # a verifier with at most this many distinct scores (a judge's K-verdict means) gets bars
ANNOTATE_UP_TO = 12  # correlation cells carry their value up to this many verifiers
SCATTER_LABELS = 12  # the scatter names this many verifiers, the best by select@1 (more would overlap)
LEGEND_ROWS = 24  # legend entries per column before a new column starts


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


def outside_legend(fig, handles: list) -> None:
    """The legend right of the plot area, in columns of LEGEND_ROWS entries, kept inside the figure."""
    if handles:
        fig.legend(handles=handles, loc="outside right upper", fontsize=7,
                   ncols=max(1, -(-len(handles) // LEGEND_ROWS)))


def kind_handles(kinds: list[str]) -> list:
    """Legend patches for the verifier kinds present."""
    from matplotlib.patches import Patch

    return [Patch(color=KIND_COLOURS[k], label=KIND_LABELS[k]) for k in KIND_COLOURS if k in kinds]


def nothing_to_show(ax, message: str) -> None:
    """An empty panel that says why it is empty."""
    ax.text(0.5, 0.5, message, ha="center", va="center", wrap=True, fontsize=9, transform=ax.transAxes)
    ax.set_axis_off()


def save(fig, path: str) -> None:
    """Write a figure as PNG and release it."""
    fig.savefig(path, dpi=90)
    pyplot().close(fig)


def error_widths(values: list, bounds: list) -> np.ndarray:
    """matplotlib's asymmetric error widths (2, n) from values and [low, high] intervals (0 where unknown)."""
    return np.array([[v - b[0], b[1] - v] if v is not None and b else [0.0, 0.0]
                     for v, b in zip(values, bounds)]).T.reshape(2, -1)


def draw_verifiers(report: dict, names: list[str], path: str) -> None:
    """AUROC and select@1 per verifier (best select@1 on top) in two panels, bars coloured by kind with their 95%
    intervals; AUROC with the chance line only, select@1 with the baselines and the best verifier's interval;
    names whose select@1 interval overlaps the best one's in bold; undefined values marked n/a (no bar)."""
    plt = pyplot()
    stats, bounds = report["verifiers"], report["intervals"]["verifiers"]
    fig, axes = plt.subplots(1, 2, sharey=True, figsize=(10, max(3.0, 0.28 * len(names) + 1.8)), layout="constrained")
    positions = np.arange(len(names))
    colours = [KIND_COLOURS[stats[n]["kind"]] for n in names]
    for ax, metric, label in ((axes[0], "auroc", "AUROC"), (axes[1], "select_at_1", "select@1")):
        values = [stats[n][metric] for n in names]
        shown = [i for i, v in enumerate(values) if v is not None]
        ax.barh(positions[shown], [values[i] for i in shown], color=[colours[i] for i in shown], height=0.7)
        widths = error_widths([values[i] for i in shown], [bounds[names[i]][metric] for i in shown])
        ax.errorbar([values[i] for i in shown], positions[shown], xerr=widths, fmt="none", ecolor="black",
                    elinewidth=0.8, capsize=2)
        for i in sorted(set(range(len(names))) - set(shown)):  # undefined: marked, not a bar of length 0
            ax.text(0.01, i, "n/a", va="center", fontsize=7, color="dimgrey")
        ax.set_xlim(0, 1.05)
        ax.set_xlabel(f"{label} (bars: 95% interval)")
    axes[0].axvline(0.5, color="grey", linewidth=0.8, label="AUROC of chance (0.5)")
    for key, (label, style) in SELECT_LINES.items():
        value = report["baselines"][key]
        if value is not None:
            axes[1].axvline(value, linestyle=style, color="black", linewidth=1, label=f"{label} {value:.3f}")
    best = report["ranking"]["best"]
    if best is not None and bounds[best]["select_at_1"]:
        axes[1].axvspan(*bounds[best]["select_at_1"], color="grey", alpha=0.15, label=f"{best}'s 95% interval")
    axes[0].set_yticks(positions, names, fontsize=8)
    overlapping = set(report["ranking"]["overlapping_best"] or ())
    for tick, name in zip(axes[0].get_yticklabels(), names):
        tick.set_fontweight("bold" if name in overlapping else "normal")
    axes[0].invert_yaxis()
    for ax in axes:
        ax.set_ylabel("verifier (best select@1 first)")
    fig.suptitle(f"Verifiers on {report['rows']} problems x {report['samples_per_row']} samples\n(names in bold: "
                 f"select@1 interval overlaps the best one's)", fontsize=9)
    outside_legend(fig, kind_handles([stats[n]["kind"] for n in names])
                   + axes[0].get_legend_handles_labels()[0] + axes[1].get_legend_handles_labels()[0])
    save(fig, path)


def draw_best_of_k(best_of_k: dict, verifiers: list[str], path: str) -> None:
    """Best-of-k accuracy of the TOP_CURVES best verifiers (verifiers' order), majority vote and pass@k, each with
    its 95% band (log2 axis)."""
    plt = pyplot()
    ks, curves, bands = best_of_k["k"], best_of_k["curves"], best_of_k["intervals"]
    shown = [name for name in verifiers if name in curves][:TOP_CURVES]
    fig, ax = plt.subplots(figsize=(8, 4.5), layout="constrained")
    styles = [(name, colour, "-", 1.2) for name, colour in zip(shown, palette(len(shown)))]
    styles += [(name, colour, style, 2.5) for name, (colour, style) in BASELINE_CURVES.items() if name in curves]
    for name, colour, style, width in styles:
        ax.plot(ks, curves[name], marker="o", markersize=3, linewidth=width, linestyle=style, color=colour,
                label=name)
        if bands.get(name) and all(bands[name]):
            ax.fill_between(ks, [b[0] for b in bands[name]], [b[1] for b in bands[name]], color=colour, alpha=0.1,
                            linewidth=0)
    ax.set_xscale("log", base=2)
    ax.set_xticks(ks, [str(k) for k in ks])
    ax.set_xlabel("k (samples drawn per problem)")
    ax.set_ylabel("accuracy (bands: 95% interval)")
    ax.set_ylim(0, 1.05)
    others = [name for name in curves if name not in BASELINE_CURVES]
    if len(others) > len(shown):
        ax.set_title(f"top {len(shown)} of {len(others)} verifiers by select@1 (all in the table)", fontsize=9)
    outside_legend(fig, ax.get_legend_handles_labels()[0])
    save(fig, path)


def draw_distributions(scores: dict[str, np.ndarray], correct: np.ndarray, path: str) -> None:
    """Per verifier, its scores of correct and incorrect samples as densities per class (so class imbalance does not
    hide the smaller class); bars of each value's share per class for verifiers with few distinct scores."""
    plt = pyplot()
    columns = min(3, max(1, len(scores)))
    rows = max(1, -(-len(scores) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(4 * columns, 3 * rows), squeeze=False, layout="constrained")
    for ax in axes.flat[len(scores):]:
        ax.set_axis_off()
    if not scores:
        nothing_to_show(axes.flat[0], "Nothing to show: no verifier has a score.")
    for ax, (name, values) in zip(axes.flat, scores.items()):
        present = ~np.isnan(values)
        classes = [(values[present & correct], "correct", "tab:green"), (values[present & ~correct], "incorrect",
                                                                           "tab:red")]
        distinct = np.unique(values[present])
        if distinct.size <= DISCRETE_VALUES:
            for offset, (part, label, colour) in zip((-0.2, 0.2), classes):
                if part.size:
                    shares = [(part == v).mean() for v in distinct]
                    ax.bar(np.arange(distinct.size) + offset, shares, 0.4, color=colour, label=f"{label} ({part.size})")
            ax.set_xticks(np.arange(distinct.size), [f"{v:.3g}" for v in distinct], fontsize=7)
            ax.set_ylabel("share of the class's samples", fontsize=8)
        else:
            bins = np.histogram_bin_edges(values[present], bins=20)
            for part, label, colour in classes:
                if part.size:
                    ax.hist(part, bins=bins, density=True, alpha=0.5, color=colour, label=f"{label} ({part.size})")
            ax.set_ylabel("density within the class", fontsize=8)
        ax.set_title(name, fontsize=9)
        ax.set_xlabel("score", fontsize=8)
        ax.legend(fontsize=7, title="samples", title_fontsize=7)
    save(fig, path)


def draw_correlations(names: list[str], matrix: np.ndarray, kinds: dict[str, str], path: str) -> None:
    """Heatmap of the verifiers' rank correlations, clustered (similar verifiers together), names coloured by kind;
    grey where two verifiers share too few scored samples."""
    plt = pyplot()
    size = max(4.0, 0.32 * len(names) + 2.5)
    fig, ax = plt.subplots(figsize=(size + 1.5, size), layout="constrained")
    if len(names) < 2:
        nothing_to_show(ax, "Nothing to show: correlations need two or more verifiers with scores "
                            f"(this report has {len(names)}).")
        save(fig, path)
        return
    order = cluster_order(matrix)
    ordered = matrix[np.ix_(order, order)]
    cmap = plt.get_cmap("RdBu_r").with_extremes(bad="lightgrey")
    image = ax.imshow(np.ma.masked_invalid(ordered), cmap=cmap, vmin=-1, vmax=1)
    labels = [names[i] for i in order]
    ax.set_xticks(range(len(labels)), labels, rotation=90, fontsize=7)
    ax.set_yticks(range(len(labels)), labels, fontsize=7)
    for tick in [*ax.get_xticklabels(), *ax.get_yticklabels()]:
        tick.set_color(KIND_COLOURS[kinds[tick.get_text()]])
    if len(labels) <= ANNOTATE_UP_TO:
        for (i, j), value in np.ndenumerate(ordered):
            if np.isfinite(value):
                ax.text(j, i, f"{value:.2f}", ha="center", va="center", fontsize=7,
                        color="white" if abs(value) > 0.6 else "black")
    ax.set_xlabel("verifier (clustered order; names coloured by kind; grey: undefined)")
    ax.set_ylabel("verifier")
    fig.colorbar(image, ax=ax, shrink=0.8, label="Spearman rank correlation of scores")
    outside_legend(fig, kind_handles(list(kinds.values())))
    save(fig, path)


def draw_scatter(report: dict, path: str) -> None:
    """Each verifier as a labelled point, AUROC against select@1 with both 95% intervals, coloured by kind; the
    chance AUROC, the first sample and pass@k as reference lines."""
    plt = pyplot()
    stats, bounds = report["verifiers"], report["intervals"]["verifiers"]
    names = [n for n in stats if stats[n]["auroc"] is not None and stats[n]["select_at_1"] is not None]
    fig, ax = plt.subplots(figsize=(7, 5), layout="constrained")
    if not names:
        nothing_to_show(ax, "Nothing to show: no verifier has both an AUROC and a select@1 "
                            "(an AUROC needs correct and incorrect scored samples).")
        save(fig, path)
        return
    x = [stats[n]["auroc"] for n in names]
    y = [stats[n]["select_at_1"] for n in names]
    ax.errorbar(x, y, xerr=error_widths(x, [bounds[n]["auroc"] for n in names]),
                yerr=error_widths(y, [bounds[n]["select_at_1"] for n in names]), fmt="none", ecolor="lightgrey",
                elinewidth=0.8, zorder=1)
    ax.scatter(x, y, c=[KIND_COLOURS[stats[n]["kind"]] for n in names], s=24, zorder=2)
    labelled = set(sorted(names, key=lambda n: -stats[n]["select_at_1"])[:SCATTER_LABELS])
    for name, px, py in zip(names, x, y):
        if name in labelled:
            ax.annotate(name, (px, py), xytext=(3, 3), textcoords="offset points", fontsize=7)
    if len(names) > SCATTER_LABELS:
        ax.set_title(f"names: the {SCATTER_LABELS} best of {len(names)} verifiers by select@1", fontsize=9)
    ax.axvline(0.5, color="grey", linewidth=0.8, label="AUROC of chance (0.5)")
    for key, (label, style) in SELECT_LINES.items():
        if key in ("first_sample", "pass_at_k") and report["baselines"][key] is not None:
            ax.axhline(report["baselines"][key], linestyle=style, color="black", linewidth=1,
                       label=f"{label} {report['baselines'][key]:.3f}")
    ax.set_xlabel("AUROC (how well scores separate correct from incorrect samples)")
    ax.set_ylabel("select@1 (accuracy of the top-scored sample)")
    ax.set_xlim(0, 1.05)
    ax.set_ylim(0, 1.05)
    outside_legend(fig, kind_handles([stats[n]["kind"] for n in names]) + ax.get_legend_handles_labels()[0])
    save(fig, path)

"""The benchmark chart: one panel per workload figure, MUSE beside its in-kernel peer."""

from __future__ import annotations

import math
from pathlib import Path

# The object-oriented API without pyplot: no GUI backend, no global state.
from matplotlib.figure import Figure as Canvas

from harness.tools.bench.stats import Figure

MUSE_COLOUR = "#d95f02"
KERNEL_COLOUR = "#1b9e77"


def draw(figures: list[Figure], path: Path, *, title: str) -> None:
    """Bars are medians, whiskers the min..max over the repeats; the ratio is in each title."""
    if not figures:
        raise ValueError("no figures to draw")
    cols = min(4, len(figures))
    rows = math.ceil(len(figures) / cols)
    fig = Canvas(figsize=(3.2 * cols, 3.0 * rows))
    axes = fig.subplots(rows, cols, squeeze=False)
    for ax, f in zip(axes.flat, figures, strict=False):
        medians = [f.muse.median, f.kernel.median]
        low = [medians[0] - f.muse.low, medians[1] - f.kernel.low]
        high = [f.muse.high - medians[0], f.kernel.high - medians[1]]
        ax.bar([0, 1], medians, yerr=[low, high], capsize=4,
               color=[MUSE_COLOUR, KERNEL_COLOUR], width=0.6)
        ax.set_xticks([0, 1], [f.muse_label.replace(" on ", "\non "),
                               f.kernel_label.replace(" on ", "\non ")], fontsize=7)
        what = "random read" if f.metric == "random_read_ops" else f.metric.split("_")[0]
        ax.set_title(f"{f.workload}: {what}\nMUSE/in-kernel {f.ratio:.2f}x", fontsize=9)
        ax.set_ylabel(f.unit, fontsize=8)
        ax.tick_params(axis="y", labelsize=7)
        for x, value in enumerate(medians):
            ax.annotate(f"{value:.3g}", (x, value), ha="center", va="bottom", fontsize=7,
                        xytext=(0, 2), textcoords="offset points")
    for ax in list(axes.flat)[len(figures):]:
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)

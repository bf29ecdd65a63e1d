"""Charts for the report, drawn with matplotlib as SVG and embedded as data: URIs.

An image cannot run script or fetch anything, whatever text (model names) it shows, so the
charts need no trust in the transcripts. Text is drawn literally: mathtext is off, so a
model called ``$x$`` is not typeset, and a stray ``$`` cannot break a chart. SVG ids are
salted with a constant, so the same data gives the same file.
"""

from __future__ import annotations

import base64
import io
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import matplotlib as mpl
import numpy as np
from matplotlib.figure import Figure
from matplotlib.typing import RcKeyType

from runner.analysis.intervals import Estimate
from runner.analysis.metrics import GroupResult, Metric

STYLE: dict[RcKeyType, Any] = {
    "svg.fonttype": "none",  # text stays text: smaller files, selectable labels
    "svg.hashsalt": "sparring",
    "text.parse_math": False,
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
PALETTE = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2")
LABEL_LIMIT = 32


@dataclass(frozen=True, slots=True)
class Chart:
    name: str
    title: str
    uri: str  # data:image/svg+xml;base64,...


def colour(i: int) -> str:
    return PALETTE[i % len(PALETTE)]


def _label(text: str) -> str:
    return text if len(text) <= LABEL_LIMIT else text[: LABEL_LIMIT - 1] + "…"


def _svg(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="svg", bbox_inches="tight", metadata={"Date": None})
    return "data:image/svg+xml;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def interval_chart(metric: Metric, groups: Sequence[GroupResult]) -> Chart | None:
    """One metric across groups: the value as a dot, its 95% interval as a bar."""
    rows = [(i, g) for i, g in enumerate(groups) if g.metrics[metric.name].value is not None]
    if not rows:
        return None
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(3.6, 0.5 + 0.32 * len(groups)))
        ax = fig.add_subplot()
        for i, g in rows:
            e = g.metrics[metric.name]
            y = len(groups) - 1 - i
            if e.ci_low is not None and e.ci_high is not None:
                ax.plot([e.ci_low, e.ci_high], [y, y], color=colour(i), linewidth=2.5, alpha=0.45)
            ax.plot([e.value or 0.0], [y], "o", color=colour(i), markersize=5)
        ax.set_yticks(range(len(groups)))
        ax.set_yticklabels([_label(g.group) for g in reversed(groups)])
        ax.set_ylim(-0.6, len(groups) - 0.4)
        _pad_flat_axis(ax, metric, [g.metrics[metric.name] for _, g in rows])
        ax.set_title(_title(metric), fontsize=9, loc="left")
        ax.grid(axis="x", alpha=0.3)
        return Chart(metric.name, metric.label, _svg(fig))


def _title(metric: Metric) -> str:
    """The label, with the unit unless the label already says it ("tokens / s")."""
    if metric.unit.replace(" ", "") in metric.label.replace(" ", ""):
        return metric.label
    return f"{metric.label} ({metric.unit})"


def _pad_flat_axis(ax: Any, metric: Metric, estimates: Sequence[Estimate]) -> None:
    """Every group at the same value: show the metric's natural range, not ±0.04."""
    points = {x for e in estimates for x in (e.value, e.ci_low, e.ci_high) if x is not None}
    if len(points) != 1:
        return
    (x,) = points
    if metric.unit == "share":
        ax.set_xlim(-0.05, 1.05)
    else:
        ax.set_xlim(x - max(1.0, abs(x) * 0.5), x + max(1.0, abs(x) * 0.5))


def distribution_chart(
    name: str, title: str, groups: Sequence[str], values: Sequence[np.ndarray]
) -> Chart | None:
    """Box plots of a per-turn quantity by group: the box is the middle half, whiskers
    reach the 5th and 95th percentiles, the line is the median."""
    kept = [(i, g, v[~np.isnan(v)]) for i, (g, v) in enumerate(zip(groups, values, strict=True))]
    kept = [(i, g, v) for i, g, v in kept if len(v)]
    if not kept:
        return None
    with mpl.rc_context(STYLE):
        fig = Figure(figsize=(5.2, 0.6 + 0.4 * len(kept)))
        ax = fig.add_subplot()
        parts = ax.boxplot(
            [v for _, _, v in reversed(kept)],
            orientation="horizontal",
            whis=(5, 95),
            showfliers=False,
            patch_artist=True,
            widths=0.6,
        )
        for patch, (i, _, _) in zip(parts["boxes"], reversed(kept), strict=True):
            patch.set_facecolor(colour(i))
            patch.set_alpha(0.5)
        ax.set_yticks(range(1, len(kept) + 1))
        ax.set_yticklabels([_label(g) for _, g, _ in reversed(kept)])
        ax.set_title(title, fontsize=9, loc="left")
        ax.grid(axis="x", alpha=0.3)
        return Chart(name, title, _svg(fig))

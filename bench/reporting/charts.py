"""Charts for the report, as inline SVG strings.

Figures are built with matplotlib's object API (`Figure`, no pyplot), so nothing touches the global
backend or figure registry of a user's session. Text is drawn as glyph paths (`svg.fonttype="path"`),
so the page needs no font; `svg.hashsalt` is fixed and the date left out, so the same records
render to the same bytes. Text from records goes through `short`, which escapes `$` so mathtext
never parses it (a label with two dollar signs would otherwise be typeset, or fail to parse).
"""

from __future__ import annotations

import io
import math
import re
from typing import Any, Sequence

import matplotlib
import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from bench.reporting.label_placement import place_point_labels

RC = {
    "svg.fonttype": "path",
    "svg.hashsalt": "ftbench-report",
    "font.size": 9,
    "axes.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "grid.alpha": 0.3,
}

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
           "#bcbd22", "#17becf"]
FRONT_COLOR = "#222222"
LABEL_CHARS = 32


def strategy_colors(strategies: Sequence[str]) -> dict[str, str]:
    """A fixed colour per strategy, the same in every chart."""
    return {s: PALETTE[i % len(PALETTE)] for i, s in enumerate(sorted(set(strategies)))}


def short(text: str, limit: int = LABEL_CHARS) -> str:
    """Record text fit for a chart: truncated, and `$` escaped (literal, not mathtext)."""
    text = str(text)
    text = text if len(text) <= limit else text[: limit - 1] + "…"
    return text.replace("$", r"\$")


def to_svg(fig: Figure, chart_id: str) -> str:
    """The figure as an <svg> element ready to inline: no XML prolog, no metadata, no comments
    (matplotlib writes each text as a comment beside its glyphs), and every id prefixed with
    `chart_id` so several SVGs on one page never resolve each other's glyphs or clip paths."""
    buf = io.StringIO()
    # matplotlib's tick locator overflows (a numpy RuntimeWarning) on axes that reach near the float
    # maximum, which a hand-edited record can hold; the chart still draws, so the warning is noise
    with matplotlib.rc_context(RC), np.errstate(over="ignore", invalid="ignore"):
        fig.savefig(buf, format="svg", metadata={"Date": None}, bbox_inches="tight")
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>", "", svg, flags=re.S)
    svg = re.sub(r"<!--.*?-->", "", svg, flags=re.S)
    for old in sorted(set(re.findall(r'\sid="([^"]+)"', svg)), key=len, reverse=True):
        new = f"{chart_id}-{old}"
        svg = svg.replace(f'id="{old}"', f'id="{new}"').replace(f'"#{old}"', f'"#{new}"')
        svg = svg.replace(f"url(#{old})", f"url(#{new})")
    svg = re.sub(r"\n\s*\n", "\n", svg)
    return svg.replace("<svg ", f'<svg role="img" class="chart" data-chart="{chart_id}" ', 1)


def new_figure(width: float, height: float) -> Figure:
    with matplotlib.rc_context(RC):
        return Figure(figsize=(width, height), layout="constrained")


def cost_scatter(points: list[dict[str, Any]], cost_label: str, log_x: bool, chart_id: str,
                 y_label: str = "test accuracy") -> str:
    """A quality figure (mean ± std over seeds) against one cost; Pareto-optimal points ringed and joined.

    points: dicts with label, strategy, cost, accuracy, accuracy_std, pareto.
    """
    return to_svg(cost_scatter_figure(points, cost_label, log_x, y_label), chart_id)


def cost_scatter_figure(points: list[dict[str, Any]], cost_label: str, log_x: bool,
                        y_label: str = "test accuracy") -> Figure:
    """The figure of `cost_scatter`; its point labels never overlap (label_placement)."""
    colors = strategy_colors([p["strategy"] for p in points])
    shown = [p for p in points if not (math.isnan(p["cost"]) or math.isnan(p["accuracy"]))]
    with matplotlib.rc_context(RC):
        fig = new_figure(4.2, 3.3)
        ax = fig.add_subplot()
        for p in shown:
            std = 0.0 if math.isnan(p["accuracy_std"]) else p["accuracy_std"]
            ax.errorbar(p["cost"], p["accuracy"], yerr=std, fmt="o", color=colors[p["strategy"]],
                        markersize=10 if p["pareto"] else 8, capsize=3, zorder=3,
                        markeredgecolor=FRONT_COLOR if p["pareto"] else "white",
                        markeredgewidth=1.5 if p["pareto"] else 0.8)
        front = sorted((p for p in shown if p["pareto"]), key=lambda p: p["cost"])
        if front:
            ax.plot([p["cost"] for p in front], [p["accuracy"] for p in front], color=FRONT_COLOR,
                    linestyle="--", linewidth=1, drawstyle="steps-post", zorder=2, label="Pareto front")
            ax.legend(loc="lower right", fontsize=8)
        ax.set_xlabel(cost_label + (" (log scale)" if log_x else ""))
        ax.set_ylabel(y_label)
        ax.margins(x=0.15, y=0.12)
        if log_x and shown:
            log_axis_with_zero(ax, [p["cost"] for p in shown])
        place_point_labels(ax, [(p["cost"], p["accuracy"], short(p["label"])) for p in shown],
                           marker_radius_pt=6.5)
        return fig


def log_axis_with_zero(ax, costs: list[float]) -> None:
    """A log x axis; where a cost is 0 (zero-shot trains nothing), a symlog axis (linear below 1)
    with a tick at 0 and one every decade or two, so 0 sits at the left edge, not at -10^0."""
    if min(costs) > 0:
        ax.set_xscale("log")
        return
    ax.set_xscale("symlog", linthresh=1)
    top = max(1, math.ceil(math.log10(max(max(costs), 1.0)) + 0.3))
    step = 2 if top > 4 else 1
    ax.set_xticks([0] + [10**k for k in range(step, top + 1, step)])
    ax.set_xlim(-0.6, 10**top)


def before_after_bars(groups: list[dict[str, Any]], chart_id: str) -> str:
    """Grouped bars: untrained baseline accuracy beside trained accuracy; no bar where no baseline."""
    width = 0.38
    with matplotlib.rc_context(RC):
        fig = new_figure(max(4.5, 1.1 * len(groups) + 1.5), 3.4)
        ax = fig.add_subplot()
        for i, g in enumerate(groups):
            if not math.isnan(g["baseline"]):
                bar = ax.bar(i - width / 2, g["baseline"], width, color="#b0b0b0")
                ax.bar_label(bar, fmt="%.2f", fontsize=7)
            else:
                ax.text(i - width / 2, 0.02, "no baseline", rotation=90, ha="center", va="bottom",
                        fontsize=7, color="#666666")
            bar = ax.bar(i + width / 2, g["trained"], width, color="#1f77b4")
            ax.bar_label(bar, fmt="%.2f", fontsize=7)
        ax.set_xticks(range(len(groups)), [short(g["label"], 24) for g in groups], rotation=20, ha="right")
        ax.set_ylim(0, 1.25)  # headroom above 1.0 for the legend, so it never hides a bar
        ax.set_yticks([0, 0.2, 0.4, 0.6, 0.8, 1.0])
        ax.set_ylabel("test accuracy")
        ax.legend(handles=[Patch(color="#b0b0b0", label="before training (baseline)"),
                           Patch(color="#1f77b4", label="after training")], fontsize=8, loc="upper left", ncol=2)
        return to_svg(fig, chart_id)


def training_curves(curves: list[dict[str, Any]], chart_id: str) -> str:
    """Train loss, val loss and val accuracy per epoch, one line per strategy (mean over seeds). A
    strategy that trains one epoch has no curve to draw: it is one diamond per panel, its legend entry
    saying so.

    curves: dicts with label, strategy and frame (columns epoch, train_loss, val_loss, val_accuracy).
    """
    return to_svg(training_curves_figure(curves), chart_id)


def training_curves_figure(curves: list[dict[str, Any]]) -> Figure:
    colors = strategy_colors([c["strategy"] for c in curves])
    panels = [("train_loss", "train loss"), ("val_loss", "validation loss"), ("val_accuracy", "validation accuracy")]
    with matplotlib.rc_context(RC):
        fig = new_figure(11, 3.3)
        axes = fig.subplots(1, 3)
        linestyles = ["-", "--", ":", "-."]
        seen: dict[str, int] = {}
        for curve in curves:
            style = linestyles[seen.get(curve["strategy"], 0) % len(linestyles)]
            seen[curve["strategy"]] = seen.get(curve["strategy"], 0) + 1
            frame = curve["frame"]
            single = len(frame) == 1
            label = short(curve["label"]) + (" (1 epoch: a point)" if single else "")
            for ax, (key, _) in zip(axes, panels):
                ax.plot(frame["epoch"], frame[key], marker="D" if single else "o", markersize=7 if single else 4,
                        linestyle="none" if single else style, color=colors[curve["strategy"]], label=label)
        for ax, (_, title) in zip(axes, panels):
            ax.set_title(title)
            ax.set_xlabel("epoch")
            ax.xaxis.get_major_locator().set_params(integer=True)
        axes[0].legend(fontsize=8)
        return fig


def size_curves(lines: list[dict[str, Any]], metric: str, x_label: str, chart_id: str) -> str:
    """Test figure against training-set size, one line per strategy (mean over seeds) with its 95%
    interval as a band; log x, as few-shot results are read.

    lines: dicts with label, strategy, sizes, means, lows, highs.
    """
    colors = strategy_colors([l["strategy"] for l in lines])
    with matplotlib.rc_context(RC):
        fig = new_figure(6.0, 3.8)
        ax = fig.add_subplot()
        for line in lines:
            color = colors[line["strategy"]]
            ax.plot(line["sizes"], line["means"], marker="o", markersize=4, color=color, label=short(line["label"]))
            lows = [m if math.isnan(lo) else lo for m, lo in zip(line["means"], line["lows"])]
            highs = [m if math.isnan(hi) else hi for m, hi in zip(line["means"], line["highs"])]
            ax.fill_between(line["sizes"], lows, highs, color=color, alpha=0.15, linewidth=0)
        ax.set_xscale("log")
        sizes = sorted({s for l in lines for s in l["sizes"]})
        ax.set_xticks(sizes, [f"{s:g}" for s in sizes])
        ax.minorticks_off()
        ax.set_xlabel(x_label + " (log scale)")
        ax.set_ylabel(f"test {metric}")
        ax.legend(fontsize=8, loc="lower right")
        return to_svg(fig, chart_id)


def optimization_history(numbers: Sequence[int], values: Sequence[float], best: Sequence[float],
                         objective: str, chart_id: str) -> str:
    """Objective value per complete trial, with the best-so-far line."""
    with matplotlib.rc_context(RC):
        fig = new_figure(5.2, 3.3)
        ax = fig.add_subplot()
        ax.plot(numbers, values, "o", color="#1f77b4", label="trial value")
        ax.plot(numbers, best, color="#d62728", drawstyle="steps-post", label="best so far")
        ax.set_xlabel("trial number")
        ax.set_ylabel(f"validation {short(objective)}")
        ax.xaxis.get_major_locator().set_params(integer=True)
        ax.legend(fontsize=8, loc="lower right")
        return to_svg(fig, chart_id)


def importance_bars(importances: dict[str, float], chart_id: str) -> str:
    names = list(importances)[::-1]  # most important on top
    with matplotlib.rc_context(RC):
        fig = new_figure(4.6, 0.45 * len(names) + 1.0)
        ax = fig.add_subplot()
        ax.barh(range(len(names)), [importances[n] for n in names], color="#2ca02c")
        ax.set_yticks(range(len(names)), [short(n, 24) for n in names])
        ax.set_xlabel("importance")
        ax.grid(axis="y", visible=False)
        return to_svg(fig, chart_id)

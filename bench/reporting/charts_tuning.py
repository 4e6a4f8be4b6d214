"""The comparison's tuning curves: every strategy's best validation figure so far, against trial
number and against its cumulative trial time, on one chart (drawn as bench/reporting/charts.py
draws, with its colours per strategy)."""

from __future__ import annotations

import math
from typing import Any

import matplotlib

from bench.reporting.charts import RC, new_figure, short, strategy_colors, to_svg


def tuning_curves(curves: list[dict[str, Any]], objective: str, chart_id: str) -> str:
    """curves: dicts with strategy, label, numbers (trial numbers of the trials that used budget, in
    order), seconds (cumulative trial time after each), values (the trial's validation figure, NaN
    where it was pruned or failed) and best (best so far, NaN before the first)."""
    return to_svg(tuning_curves_figure(curves, objective), chart_id)


def tuning_curves_figure(curves: list[dict[str, Any]], objective: str):
    colors = strategy_colors([c["strategy"] for c in curves])
    with matplotlib.rc_context(RC):
        fig = new_figure(10, 3.6)
        by_trial, by_time = fig.subplots(1, 2, sharey=True)
        for curve in curves:
            color = colors[curve["strategy"]]
            for ax, xs in ((by_trial, curve["numbers"]), (by_time, curve["seconds"])):
                ax.plot(xs, curve["best"], color=color, drawstyle="steps-post", linewidth=1.8,
                        label=short(curve["label"]))
                done = [(x, v) for x, v in zip(xs, curve["values"]) if not math.isnan(v)]
                ax.plot([x for x, _ in done], [v for _, v in done], "o", color=color, alpha=0.35, markersize=4)
        by_trial.set_xlabel("trial number")
        by_trial.xaxis.get_major_locator().set_params(integer=True)
        by_time.set_xlabel("cumulative trial time (s)")
        by_trial.set_ylabel(f"validation {short(objective)}, best so far")
        by_trial.set_title("by trial")
        by_time.set_title("by the strategy's own trial time")
        by_time.legend(fontsize=8, loc="lower right")
        return fig

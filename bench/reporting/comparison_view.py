"""The report's view of a `bench compare`: the answer in one sentence at the top, and its section.

Per comparison (records carrying `comparison`, bench/core/record.py ComparisonInfo):
- the strategies statistically tied with the best tuned one (bench/reporting/comparisons.py's paired
  tests and Holm correction, over the tuned test runs alone), and the cheapest of them by the cost the
  comparison prefers (its newest record's `prefer`);
- P(best) per strategy (bench/core/stats.p_best: bootstrap over seeds, then test rows within them);
- per strategy: the test figure at defaults and tuned with 95% intervals and the rank change, the
  parameters tuning changed, the budget its study used, its trials' states, and the spread of the
  validation figure over its complete trials (how much the strategy depends on tuning);
- the tuning curves of every strategy on one chart.

A strategy's tuned runs are those of its newest best trial: after a larger budget found a better
one, the older tuned runs stay on disk (and in the summary, named by their trial) but not here.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd
from markupsafe import Markup

from bench.core import budget as budgets
from bench.core import stats
from bench.reporting import charts_tuning, summary
from bench.reporting.comparisons import compare_block
from bench.reporting.formats import fmt_mb, fmt_count, fmt_ms, fmt_score, fmt_seconds, missing
from bench.reporting.summary_tuning import best_so_far, trial_state

METRIC_NAMES = {"accuracy": "accuracy", "balanced_accuracy": "balanced accuracy"}
OBJECTIVE = "balanced_accuracy"  # what every study maximizes on the validation split (bench tune's)
# --prefer NAME: (the runs' column, its words, how a value is written)
PREFER_COSTS = {"train-time": ("train_time_s", "train time", fmt_seconds),
                "memory": ("memory_mb", "peak memory", fmt_mb),
                "params": ("trainable_params", "trainable parameters", fmt_count),
                "latency": ("latency_p50_ms", "serving latency (p50, one text)", fmt_ms)}


def comparison_views(runs: pd.DataFrame) -> list[dict[str, Any]]:
    """One view per comparison in the records, newest first."""
    if "comparison" not in runs or runs["comparison"].isna().all():
        return []
    headline = summary.headline_metrics(runs)
    views = []
    for name, group in runs[runs["comparison"].notna()].groupby("comparison", sort=True):
        views.append(comparison_view(str(name), group, headline))
    return sorted(views, key=lambda v: v["latest"], reverse=True)


def newest(group: pd.DataFrame) -> pd.Series:
    order = group["finished_at"].map(lambda f: f if isinstance(f, str) else "")
    return group.loc[order.sort_values(kind="stable").index[-1]]


def comparison_view(name: str, group: pd.DataFrame, headline: dict[str, str]) -> dict[str, Any]:
    latest = newest(group)
    budget = read_budget(latest["cmp_budget"])
    prefer = str(latest["cmp_prefer"]) if latest["cmp_prefer"] in PREFER_COSTS else "train-time"
    dataset = str(latest["dataset"])
    metric = headline.get(dataset, "accuracy")
    tests = group[(group["cmp_role"] == "test") & (group["status"] == "ok")]
    trials = group[group["cmp_role"] == "trial"]
    strategies = sorted(set(group["strategy"]))
    default = {s: tests[(tests["strategy"] == s) & (tests["cmp_variant"] == "default")] for s in strategies}
    tuned = {s: current_tuned(tests[(tests["strategy"] == s) & (tests["cmp_variant"] == "tuned")])
             for s in strategies}
    before = tied_set(dataset, {s: g for s, g in default.items() if len(g)}, metric, "default")
    after = tied_set(dataset, {s: g for s, g in tuned.items() if len(g)}, metric, "tuned")
    ranks = {"default": ranking(default, metric), "tuned": ranking(tuned, metric)}
    rows = [strategy_row(s, default[s], tuned[s], trials[trials["strategy"] == s], metric, budget, ranks)
            for s in strategies]
    rows.sort(key=lambda r: (r["rank_tuned"] or math.inf, r["rank_default"] or math.inf, r["strategy"]))
    chances, chance_note = best_chances({s: g for s, g in tuned.items() if len(g)}, metric)
    for row in rows:
        row["p_best"] = "—" if row["strategy"] not in chances else f"{chances[row['strategy']]:.2f}"
    view = {"name": name, "latest": str(latest["finished_at"] or ""), "dataset": dataset,
            "metric": METRIC_NAMES.get(metric, metric), "budget": budget.text(), "budget_words": budget.words(),
            "prefer": prefer, "prefer_words": PREFER_COSTS[prefer][1], "rows": rows,
            "seeds": ",".join(sorted({str(int(s)) for s in tests["seed"].dropna()}, key=int)),
            "before": before, "after": after, "p_best": chances, "p_best_note": chance_note,
            "no_tuned": [s for s in strategies if not len(tuned[s])]}
    view["answer"] = answer_sentence(view, tuned, prefer)
    view["tied_lines"] = [f"At defaults: {tied_words(before, metric)}.", f"Tuned: {tied_words(after, metric)}."]
    view["ranking_line"] = ranking_line(ranks)
    view["chart"] = curves_chart(rows, name)
    return view


class UnreadBudget(budgets.Budget):
    """A record's budget this version cannot read: shown as written, its use as counted."""

    def text(self) -> str:
        return self.kind

    def words(self) -> str:
        return f"budget {self.kind!r}"

    def use_words(self, n_used: int, seconds_used: float) -> str:
        return f"{n_used} trials ({budgets.fmt_duration(seconds_used)} of trial time)"


def read_budget(text) -> budgets.Budget:
    from bench.core.errors import BenchError

    try:
        return budgets.parse_budget(str(text))
    except BenchError:
        return UnreadBudget(str(text), math.nan)


def current_tuned(runs: pd.DataFrame) -> pd.DataFrame:
    """The tuned runs of the newest best trial (a larger budget may have found a better one since)."""
    if runs.empty:
        return runs
    best = newest(runs)["cmp_best_trial"]
    return runs[runs["cmp_best_trial"] == best] if not missing(best) else runs


def mean_of(runs: pd.DataFrame, column: str) -> float:
    values = runs[column].astype(float)
    return float(values.mean()) if values.notna().any() else math.nan


def ranking(groups: dict[str, pd.DataFrame], metric: str) -> dict[str, int]:
    """Rank 1 the highest mean test figure; strategies without runs are not ranked."""
    means = {s: mean_of(g, metric) for s, g in groups.items() if len(g)}
    scored = sorted((s for s, m in means.items() if not math.isnan(m)), key=lambda s: (-means[s], s))
    return {s: i + 1 for i, s in enumerate(scored)}


def tied_set(dataset: str, groups: dict[str, pd.DataFrame], metric: str, variant: str) -> dict[str, Any] | None:
    """The best strategy and those the paired tests cannot tell from it (Holm-corrected), or None."""
    if not groups:
        return None
    if len(groups) == 1:
        (only, g), = groups.items()
        return {"best": only, "best_mean": mean_of(g, metric), "tied": [only], "unknown": [], "pairs": []}
    members = [((s, str(g["model"].iloc[0]), variant), g) for s, g in sorted(groups.items())]
    block = compare_block(dataset, "", members, metric, lambda row: str(row["strategy"]))
    return {k: block[k] for k in ("best", "best_mean", "tied", "unknown", "pairs")}


def best_chances(groups: dict[str, pd.DataFrame], metric: str) -> tuple[dict[str, float], str]:
    """P(best) per tuned strategy on the seeds where every one of them scored the same test rows."""
    if len(groups) < 2:
        return {}, "P(best) needs two or more strategies with tuned test runs"
    by_seed = {s: {seed: row for seed, row in zip(g["seed"], g.to_dict("records"))} for s, g in groups.items()}
    common = []
    for seed in sorted(set.intersection(*(set(d) for d in by_seed.values()))):
        rows = [by_seed[s][seed] for s in groups]
        keys = {r["eval_key"] for r in rows}
        if len(keys) == 1 and None not in keys and all(r["predictions"] and r["truth"] == rows[0]["truth"]
                                                       and len(r["predictions"]) == len(r["truth"]) for r in rows):
            common.append(seed)
    if not common:
        return {}, "P(best) not computed: no seed where every tuned strategy scored the same test rows"
    first = next(iter(groups))
    truth = [np.asarray(by_seed[first][seed]["truth"]) for seed in common]
    preds = {s: [np.asarray(by_seed[s][seed]["predictions"]) for seed in common] for s in groups}
    n_classes = max(len(by_seed[first][seed]["labels"]) for seed in common) or 1
    chances = stats.p_best(truth, preds, metric, n_classes)
    return chances, (f"P(best): the share of {stats.N_RESAMPLES} bootstrap resamples (seeds drawn with "
                     f"replacement, then each seed's test rows, the same rows for every strategy) in which a strategy "
                     f"has the highest mean test {METRIC_NAMES.get(metric, metric)}; over seed(s) "
                     f"{', '.join(str(int(s)) for s in common)}")


def interval_text(runs: pd.DataFrame, metric: str) -> tuple[str, str]:
    """("0.940", "[0.895, 0.965]") for a group's mean and its 95% interval (t over seeds, or one run's bootstrap)."""
    if runs.empty:
        return "—", ""
    low, high, _ = summary.group_interval(runs, metric)
    mean = mean_of(runs, metric)
    return ("—" if math.isnan(mean) else fmt_score(mean)), ("" if math.isnan(low) else f"[{low:.3f}, {high:.3f}]")


def changed_params(default: pd.DataFrame, tuned: pd.DataFrame) -> list[tuple[str, str, str]]:
    """(param, tuned value, default value) for every param the best trial set differently."""
    if default.empty or tuned.empty:
        return []
    d, t = default["params"].iloc[-1], tuned["params"].iloc[-1]
    return [(k, summary.short_value(t.get(k)), summary.short_value(d.get(k))) for k in sorted(set(d) | set(t))
            if t.get(k) != d.get(k)]


def trial_rows(trials: pd.DataFrame) -> list[dict[str, Any]]:
    """The strategy's trial records by trial number: state, validation figure, seconds spent."""
    out = []
    for _, row in trials.iterrows():
        number = summary.number(row["trial"])
        state = trial_state(row)
        value = summary.number(summary.dig(row["metrics"], OBJECTIVE)) if state == "COMPLETE" else math.nan
        out.append({"number": number, "state": state, "status": row["status"], "value": value,
                    "spent": summary.number(row["spent_s"])})
    return sorted(out, key=lambda r: (math.isnan(r["number"]), r["number"]))


def strategy_row(strategy: str, default: pd.DataFrame, tuned: pd.DataFrame, trials: pd.DataFrame, metric: str,
                 budget, ranks: dict) -> dict[str, Any]:
    records = trial_rows(trials)
    counted = [r for r in records if r["status"] in budgets.COUNTED]
    n_used, seconds = budgets.used((r["status"], r["spent"]) for r in records)
    values = [r["value"] for r in counted if not math.isnan(r["value"])]
    states = {s: sum(r["state"] == s for r in counted) for s in ("COMPLETE", "PRUNED", "FAIL")}
    cumulative = np.cumsum([0.0 if math.isnan(r["spent"]) else r["spent"] for r in counted]).tolist()
    d_mean, d_ci = interval_text(default, metric)
    t_mean, t_ci = interval_text(tuned, metric)
    rank_d, rank_t = ranks["default"].get(strategy), ranks["tuned"].get(strategy)
    gain = mean_of(tuned, metric) - mean_of(default, metric) if len(tuned) and len(default) else math.nan
    return {
        "strategy": strategy, "default": d_mean, "default_ci": d_ci, "tuned": t_mean, "tuned_ci": t_ci,
        "gain": "—" if math.isnan(gain) else f"{gain:+.3f}",
        "rank_default": rank_d, "rank_tuned": rank_t, "rank_change": rank_change(rank_d, rank_t),
        "n_seeds": f"{len(default)} / {len(tuned)}",
        "best_trial": None if tuned.empty else summary.number(tuned["cmp_best_trial"].iloc[-1]),
        "params": changed_params(default, tuned),
        "budget_used": budget.use_words(n_used, seconds),
        "states": states, "cancelled": sum(r["status"] == "cancelled" for r in records),
        "spread": spread_text(values),
        "curve": {"strategy": strategy, "label": strategy, "numbers": [r["number"] for r in counted],
                  "seconds": cumulative, "values": [r["value"] for r in counted],
                  "best": best_so_far([r["value"] for r in counted])},
    }


def rank_change(before: int | None, after: int | None) -> str:
    if before is None or after is None:
        return "—"
    if before == after:
        return f"{after} (=)"
    return f"{before} → {after} ({'up' if after < before else 'down'} {abs(before - after)})"


def spread_text(values: list[float]) -> str:
    """The validation figure over complete trials: range, median and std (how much tuning matters)."""
    if not values:
        return "no complete trial"
    if len(values) == 1:
        return f"{values[0]:.3f} (one complete trial)"
    arr = np.asarray(values)
    return (f"{arr.min():.3f}–{arr.max():.3f} (range {arr.max() - arr.min():.3f}; median {np.median(arr):.3f}, "
            f"std {arr.std(ddof=1):.3f}; {len(arr)} trials)")


def cheapest(names: list[str], tuned: dict[str, pd.DataFrame], prefer: str) -> tuple[str | None, str]:
    """The tied strategy with the lowest mean cost of `prefer` over its tuned runs, and that cost written."""
    column, _, fmt = PREFER_COSTS[prefer]
    costs = [(mean_of(tuned[n], column), n) for n in names if n in tuned and len(tuned[n])]
    costs = [(c, n) for c, n in costs if not math.isnan(c)]
    if not costs:
        return None, ""
    cost, name = min(costs)
    return name, fmt(cost)


def answer_sentence(view: dict[str, Any], tuned: dict[str, pd.DataFrame], prefer: str) -> str:
    """The answer in one plain sentence: who ties with the best tuned strategy, and the cheapest of them."""
    after = view["after"]
    head = f"Tuned with {view['budget_words']} each on {view['dataset']}'s validation split"
    if after is None:
        return (f"{head}, no strategy has tuned test runs yet ({len(view['no_tuned'])} of {len(view['rows'])} "
                "without): rerun the comparison to finish it.")
    metric, cost_words = view["metric"], PREFER_COSTS[prefer][1]
    best, tied = after["best"], after["tied"]
    name, cost = cheapest(tied, tuned, prefer)
    if len(tied) > 1:
        text = (f"{head}, {join_names(tied)} are statistically tied for the best test {metric} (best {best}, "
                f"{after['best_mean']:.3f}; Holm-corrected p ≥ 0.05)")
        text += (f", and the cheapest of them by {cost_words} is {name} ({cost})" if name
                 else f", and none of them records its {cost_words}")
    elif len(view["rows"]) - len(view["no_tuned"]) > 1:
        text = (f"{head}, {best} has the best test {metric} ({after['best_mean']:.3f}), significantly ahead of "
                "every other tuned strategy (Holm-corrected p < 0.05)" + (f", at {cost} {cost_words}" if name else ""))
    else:
        text = f"{head}, {best} is the only strategy with tuned test runs (test {metric} {after['best_mean']:.3f})"
    if after["unknown"]:
        text += f"; not comparable on the same test rows: {join_names(after['unknown'])}"
    return text + "."


def tied_words(tied: dict[str, Any] | None, metric: str) -> str:
    if tied is None:
        return "no test runs"
    others = [t for t in tied["tied"] if t != tied["best"]]
    return (f"best {tied['best']} ({tied['best_mean']:.3f})" + (f", tied with {join_names(others)}" if others
                                                                else ", every other significantly worse"))


def ranking_line(ranks: dict[str, dict[str, int]]) -> str:
    def order(r: dict[str, int]) -> str:
        return " > ".join(s for s, _ in sorted(r.items(), key=lambda kv: kv[1])) or "—"

    d, t = ranks["default"], ranks["tuned"]
    common = set(d) & set(t)
    same = [s for s in sorted(d, key=d.get) if s in common] == [s for s in sorted(t, key=t.get) if s in common]
    verdict = "tuning did not change the ranking" if same else "tuning changed the ranking"
    return f"Mean test figure at defaults: {order(d)}; tuned: {order(t)}: {verdict}."


def join_names(names: list[str]) -> str:
    names = list(names)
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def curves_chart(rows: list[dict[str, Any]], name: str) -> Markup | None:
    curves = [r["curve"] for r in rows if r["curve"]["numbers"]]
    if not curves:
        return None
    return Markup(charts_tuning.tuning_curves(curves, "balanced accuracy", f"tuning-{name}"))

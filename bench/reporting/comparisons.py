"""Is the difference real? Every pair of strategies compared on the same test rows.

Within one dataset and training-set size, each group (strategy, model, variant) has a run per
seed. Two groups pair up on the seeds where both evaluated the same rows (equal row ids). Per
pair: the difference in the headline figure (mean over paired seeds) with a paired bootstrap 95%
interval; the test behind the verdict (McNemar's exact test on the discordant rows pooled over
seeds for accuracy: under the null each discordant row is a fair coin in every seed, so the pooled
count is binomial too; a paired permutation test for balanced accuracy); McNemar per seed; a paired
t-test over seeds from three seeds on; Holm's correction over all pairs of the block. The tied set
is the best group and every group not significantly worse than it."""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
import pandas as pd

from bench.core import stats
from bench.reporting.summary import GROUP_KEYS, headline_metrics, size_order, summary_mask

MEMBER_KEYS = ["strategy", "model", "variant"]
# why a pair was not tested; nothing is claimed about it
NOT_COMPARABLE = "not comparable: different seeds/splits"
NOT_RECORDED = "not compared: the same test rows, but their predictions are not recorded"


def comparison_blocks(runs: pd.DataFrame, label) -> list[dict[str, Any]]:
    """One block per (dataset, training-set size) with two or more groups."""
    counted = runs[summary_mask(runs)]
    headline = headline_metrics(runs)
    blocks = []
    for (dataset, size), block in counted.groupby(["dataset", "train_size"], sort=True):
        groups = [(key, g) for key, g in block.groupby(MEMBER_KEYS, sort=True)]
        if len(groups) < 2:
            continue
        blocks.append(compare_block(dataset, size, groups, headline.get(dataset, "accuracy"), label))
    # by dataset, then training-set size by value with the full split last
    return sorted(blocks, key=lambda b: (b["dataset"], size_order(b["train_size"])))


def compare_block(dataset: str, size: str, groups: list, metric: str, label) -> dict[str, Any]:
    names = {key: label(dict(zip(MEMBER_KEYS, key), dataset=dataset, train_size=size)) for key, _ in groups}
    means = {key: float(g[metric].mean()) for key, g in groups}
    pairs = []
    for (key_a, a), (key_b, b) in itertools.combinations(groups, 2):
        pair = compare_pair(a, b, metric)
        if pair.get("swapped"):  # b is ahead on the rows both ran: it reads first
            key_a, key_b = key_b, key_a
        pair.update(a=names[key_a], b=names[key_b], key_a=key_a, key_b=key_b)
        pairs.append(pair)
    tested = [p for p in pairs if p.get("p") is not None]
    for pair, adjusted in zip(tested, stats.holm([p["p"] for p in tested])):
        pair["p_holm"] = adjusted
    for pair in pairs:
        pair["verdict"] = verdict(pair)
    best = max(means, key=lambda k: (means[k], -len(names[k])))
    tied, worse, unknown = [names[best]], [], {}
    for pair in pairs:
        if best not in (pair["key_a"], pair["key_b"]):
            continue
        other = pair["key_b"] if pair["key_a"] == best else pair["key_a"]
        if pair.get("p_holm") is None:  # never tested: said as such, never counted as worse
            unknown.setdefault(pair.get("why", NOT_COMPARABLE), []).append(names[other])
        elif pair["p_holm"] >= stats.ALPHA:
            tied.append(names[other])
        else:
            worse.append(names[other])
    return {"dataset": dataset, "train_size": size, "metric": metric, "best": names[best],
            "best_mean": means[best], "tied": tied, "worse": worse, "unknown": unknown, "pairs": pairs}


def compare_pair(a: pd.DataFrame, b: pd.DataFrame, metric: str) -> dict[str, Any]:
    """The two groups' runs matched by seed on equal test rows, then the tests described above, with
    the one ahead on those rows as A (`swapped` says b was)."""
    matched, same_rows = [], False
    last_a, last_b = (g.dropna(subset=["seed"]).drop_duplicates("seed", keep="last").set_index("seed", drop=False)
                      for g in (a, b))  # one row per seed, looked up by seed (a scan per seed is quadratic)
    for seed in sorted(set(last_a.index) & set(last_b.index)):
        ra, rb = last_a.loc[seed], last_b.loc[seed]
        rows_equal = ra["eval_key"] is not None and ra["eval_key"] == rb["eval_key"]
        same_rows = same_rows or rows_equal
        usable = (rows_equal and ra["truth"] is not None
                  and rb["truth"] == ra["truth"] and ra["predictions"] is not None and rb["predictions"] is not None
                  and len(ra["predictions"]) == len(rb["predictions"]) == len(ra["truth"]))
        if usable:
            matched.append((seed, ra, rb))
    if not matched:
        return {"n_seeds": 0, "why": NOT_RECORDED if same_rows else NOT_COMPARABLE}
    n_classes = max(len(ra["labels"]) for _, ra, _ in matched) or 1
    truth = np.concatenate([ra["truth"] for _, ra, _ in matched])
    pred_a = np.concatenate([ra["predictions"] for _, ra, _ in matched])
    pred_b = np.concatenate([rb["predictions"] for _, _, rb in matched])
    groups = np.concatenate([np.full(len(ra["truth"]), i) for i, (_, ra, _) in enumerate(matched)])
    swapped = stats.mean_difference(truth, pred_a, pred_b, groups, metric, n_classes) < 0
    if swapped:
        pred_a, pred_b = pred_b, pred_a
        matched = [(seed, rb, ra) for seed, ra, rb in matched]
    per_seed = []
    for i, (seed, ra, rb) in enumerate(matched):
        rows = groups == i
        mc = stats.mcnemar_exact(pred_a[rows] == truth[rows], pred_b[rows] == truth[rows])
        diff = stats.paired_difference(truth[rows], pred_a[rows], pred_b[rows], np.zeros(rows.sum()), metric,
                                       n_classes, seed=int(seed), test=False)
        per_seed.append({"seed": seed, "difference": diff["difference"], "ci": diff["ci"], "mcnemar_p": mc["p"],
                         "only_a": mc["only_a"], "only_b": mc["only_b"]})
    pooled = stats.paired_difference(truth, pred_a, pred_b, groups, metric, n_classes,
                                     test=metric != "accuracy")
    if metric == "accuracy":
        mc = stats.mcnemar_exact(pred_a == truth, pred_b == truth)
        p, test = mc["p"], "McNemar exact, discordant rows pooled over seeds"
    else:
        p, test = pooled["p"], "paired permutation test (rows' predictions swapped), mean over seeds"
    seed_a = [float(ra[metric]) for _, ra, _ in matched]
    seed_b = [float(rb[metric]) for _, _, rb in matched]
    return {"n_seeds": len(matched), "difference": pooled["difference"], "ci": pooled["ci"], "p": p,
            "test": test, "per_seed": per_seed, "t_p": stats.paired_t_over_seeds(seed_a, seed_b),
            "swapped": swapped}


def verdict(pair: dict[str, Any]) -> str:
    if pair.get("p_holm") is None:
        return pair.get("why", NOT_COMPARABLE)
    if pair["p_holm"] < stats.ALPHA:
        return f"{pair['a']} is better"
    return "no significant difference"


def fmt_p(p: float | None) -> str:
    if p is None or (isinstance(p, float) and math.isnan(p)):
        return "—"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


__all__ = ["comparison_blocks", "compare_pair", "verdict", "fmt_p", "GROUP_KEYS"]

"""The report's tuning section from trial records: trials per study, best-so-far, and Optuna's
parameter importances on a study rebuilt in memory from the records."""

from __future__ import annotations

import json
import math
from typing import Any, Sequence

import pandas as pd

from bench.reporting.summary import dig, number


def trial_state(row: pd.Series) -> str:
    state = row.get("trial_state")
    if isinstance(state, str) and state:
        return state.upper()
    return {"ok": "COMPLETE", "pruned": "PRUNED"}.get(row["status"], "FAIL")


def study_trials(runs: pd.DataFrame) -> dict[str, pd.DataFrame]:
    """Per study name, its trials sorted by trial number with columns number, state, value, params."""
    trials = runs[runs["is_trial"] & runs["study"].notna()]
    studies = {}
    for name, group in trials.groupby("study", sort=True):
        rows = []
        for position, (_, row) in enumerate(group.iterrows()):
            state = trial_state(row)
            value = number(dig(row["metrics"], row["objective"])) if state == "COMPLETE" else math.nan
            trial = number(row["trial"])
            rows.append({"number": int(trial) if not math.isnan(trial) else position, "state": state,
                         "value": value, "params": row["params"], "objective": row["objective"],
                         "strategy": row["strategy"], "run_id": row["run_id"]})
        studies[str(name)] = pd.DataFrame(rows).sort_values("number", kind="stable").reset_index(drop=True)
    return studies


def best_so_far(values: Sequence[float]) -> list[float]:
    """Running maximum, NaN until the first finite value."""
    out, best = [], math.nan
    for v in values:
        if not math.isnan(v) and (math.isnan(best) or v > best):
            best = v
        out.append(best)
    return out


def infer_distributions(param_sets: list[dict]) -> dict[str, Any]:
    """Optuna distributions for the params that vary across trials (constant ones were not searched):
    numbers become Int/Float ranges (log scale when they span two decades), anything else a
    categorical of the values seen. Params with list/dict values are left out."""
    from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution

    names = sorted({k for p in param_sets for k in p})
    distributions = {}
    for name in names:
        values = [p.get(name) for p in param_sets]
        if any(isinstance(v, (list, dict)) for v in values) or len({json.dumps(v, default=str) for v in values}) < 2:
            continue
        if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in values):
            low, high = min(values), max(values)
            log = low > 0 and high / low >= 100
            if all(isinstance(v, int) for v in values):
                distributions[name] = IntDistribution(int(low), int(high), log=log)
            else:
                distributions[name] = FloatDistribution(float(low), float(high), log=log)
        else:
            choices = sorted({v for v in values if v is not None}, key=lambda v: (type(v).__name__, str(v)))
            distributions[name] = CategoricalDistribution(choices + ([None] if None in values else []))
    return distributions


def param_importances(trials: pd.DataFrame) -> tuple[dict[str, float], str]:
    """(importance per searched param, a note saying how it was computed or why it was not).

    The study is rebuilt in memory from the trial records and handed to Optuna's
    `get_param_importances` (fANOVA, fixed seed so the report is reproducible)."""
    complete = trials[(trials["state"] == "COMPLETE") & trials["value"].notna()]
    if len(complete) < 2:
        return {}, f"parameter importances need at least 2 complete trials; this study has {len(complete)}"
    try:
        import optuna

        optuna.logging.set_verbosity(optuna.logging.WARNING)
        distributions = infer_distributions(list(complete["params"]))
        if not distributions:
            return {}, "parameter importances not computed: no parameter varies across the complete trials"
        study = optuna.create_study(direction="maximize")
        for _, row in complete.iterrows():
            params = {k: row["params"].get(k) for k in distributions}
            study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                      value=float(row["value"])))
        evaluator = optuna.importance.FanovaImportanceEvaluator(seed=0)
        importances = optuna.importance.get_param_importances(study, evaluator=evaluator)
    except Exception as exc:  # an odd study must not take the whole report down
        return {}, f"parameter importances not computed: {type(exc).__name__}: {exc}"
    note = (f"Optuna fANOVA importances (optuna.importance.get_param_importances) over {len(complete)} "
            f"complete trials, on a study rebuilt from the trial records with inferred search ranges")
    return {str(k): float(v) for k, v in importances.items()}, note

"""What `bench compare` prints: each study's budget use when its tuning stops, and at the end one
table of every strategy's budget, validation and test figures, default against tuned."""

from __future__ import annotations

import math

from bench.commands.compare.protocol import DEFAULT, TUNED
from bench.commands.tune.output import fmt_params
from bench.core.budget import Budget


def study_line(out, budget: Budget) -> str:
    states = ", ".join(f"{n} {s.lower()}" for s, n in out.states.items())
    best = (f"best trial {out.best_number}: validation balanced accuracy {out.best_value:.4f}"
            + (f" (defaults, trial 0: {out.start_value:.4f})" if out.start_value is not None else "")
            + f"; params {fmt_params(out.best_params) or '(the defaults)'}"
            if out.best_number is not None else "no complete trial: its defaults alone go to the test")
    stopped = f"\n  stopped early: {out.stopped_why}" if out.stopped_why else ""
    return f"{out.strategy}: used {budget.use_words(out.n_used, out.seconds_used)}; trials {states}\n  {best}{stopped}"


def test_means(run_outcomes, strategy: str, variant: str) -> tuple[float, int, int]:
    """(mean test accuracy over this variant's ok runs, ok runs, runs) from the matrix's outcomes."""
    mine = [o for o in run_outcomes if o.spec.strategy == strategy and (o.spec.comparison or {}).get("variant") == variant]
    scores = [o.record.metrics.accuracy for o in mine if o.record is not None and o.record.status == "ok"
              and o.record.metrics is not None and o.record.metrics.accuracy is not None]
    return (sum(scores) / len(scores) if scores else math.nan), len(scores), len(mine)


def final_table(study_outcomes: list, run_outcomes: list, budget: Budget) -> list[str]:
    rows = [("strategy", "budget used", "trials c/p/f", "val bal. acc. default", "val best", "test acc. default",
             "test tuned")]
    for out in study_outcomes:
        cells = []
        for variant in (DEFAULT, TUNED):
            mean, ok, n = test_means(run_outcomes, out.strategy, variant)
            cells.append("-" if n == 0 else f"{mean:.3f} ({ok}/{n} ok)" if ok else f"- (0/{n} ok)")
        used = (f"{out.n_used}/{int(budget.amount)}" if budget.kind == "trials"
                else f"{out.seconds_used:.0f}/{budget.amount:.0f} s")
        rows.append((out.strategy, used, "/".join(str(out.states[s]) for s in ("COMPLETE", "PRUNED", "FAIL")),
                     _fmt(out.start_value), _fmt(out.best_value), *cells))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return [lines[0], "  ".join("-" * w for w in widths)] + lines[1:]


def _fmt(value: float | None) -> str:
    return "-" if value is None else f"{value:.4f}"

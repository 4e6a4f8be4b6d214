"""A comparison's tuning budget, the same for every strategy's study, and how much of it a study
has used. `bench compare` counts it from the study's trials; the report from the trial records;
both through `used` and `met` here, so the two never disagree on what counts.

    trials:N       N finished trials; pruned and failed ones count as used
    time:DURATION  the strategy's own trial time, summed: each trial's record clock (load, prepare,
                   train, eval, every phase it states), not the machine's clock while the study ran

A trial that was cancelled (Ctrl-C) or left behind by a killed process uses nothing: it is not a
result of the strategy, and the rerun gets its slot back.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable

from bench.core.errors import BenchError

# what a trial's run ended as (its record status) for it to use budget; a combination the strategy's
# own check refused before anything ran ("refused") uses none: nothing ran, and it has no record
COUNTED = ("ok", "pruned", "failed", "oom")
UNITS = {"s": 1, "m": 60, "h": 3600}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)([smh])")


@dataclass(frozen=True)
class Budget:
    kind: str  # "trials" | "time"
    amount: float  # trials, or seconds

    def text(self) -> str:
        """The canonical form a record keeps: trials:6, time:300s."""
        return f"trials:{int(self.amount)}" if self.kind == "trials" else f"time:{self.amount:g}s"

    def words(self) -> str:
        return f"{int(self.amount)} trials" if self.kind == "trials" else f"{fmt_duration(self.amount)} of trial time"

    def met(self, n_used: int, seconds_used: float) -> bool:
        if self.kind == "trials":
            return n_used >= self.amount
        return seconds_used >= self.amount

    def use_words(self, n_used: int, seconds_used: float) -> str:
        """"6 of 6 trials" / "4 min 52 s of 5 min (7 trials)"; the part past the budget said as such."""
        if self.kind == "trials":
            return f"{n_used} of {int(self.amount)} trials ({fmt_duration(seconds_used)} of trial time)"
        over = seconds_used - self.amount
        tail = f"; the last trial started within it and ran {fmt_duration(over)} past" if over > 0 else ""
        return f"{fmt_duration(seconds_used)} of {fmt_duration(self.amount)} ({n_used} trials{tail})"


def parse_budget(text: str) -> Budget:
    """trials:N (N >= 1) or time:DURATION (90s, 5m, 1h, 1h30m, 2.5m); one clear error otherwise."""
    kind, sep, value = str(text).strip().partition(":")
    if kind == "trials" and sep:
        try:
            n = int(value)
        except ValueError:
            n = 0
        if n >= 1:
            return Budget("trials", n)
    if kind == "time" and sep:
        seconds = parse_duration(value)
        if seconds is not None and seconds > 0:
            return Budget("time", seconds)
    raise BenchError(f"--budget {text!r}: use trials:N (finished trials per strategy, e.g. trials:6) or "
                     "time:DURATION (each strategy's own trial time, e.g. time:5m, time:90s, time:1h30m)")


def parse_duration(text: str) -> float | None:
    text = text.strip().lower()
    if not text or _DURATION.sub("", text):
        return None
    return sum(float(n) * UNITS[u] for n, u in _DURATION.findall(text))


def fmt_duration(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "?"
    seconds = max(0.0, seconds)
    if seconds < 60:
        return f"{seconds:.0f} s"
    minutes, sec = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min" + (f" {sec} s" if sec else "")
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h" + (f" {minutes} min" if minutes else "")


def used(trials: Iterable[tuple[str | None, float | None]]) -> tuple[int, float]:
    """(trials that count, their summed seconds) from (status, spent seconds) per finished trial."""
    n, seconds = 0, 0.0
    for status, spent in trials:
        if status in COUNTED:
            n += 1
            seconds += float(spent) if spent is not None and math.isfinite(spent) else 0.0
    return n, seconds

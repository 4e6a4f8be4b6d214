"""A study's budget as `bench tune`'s trial loops take it (`take()` before each trial, `close()` to
stop): counted from the study itself, so a rerun, a second process or another machine on the same
storage continues where the study stands instead of starting the budget over.

- A trial starts while what the study has used, plus what its running trials will use, is under the
  budget: with trials:N the running trials count one each; with time:DURATION each counts the mean
  time of the study's finished trials (nothing before the first has finished). With time:DURATION
  the trial is told the seconds left as it starts (`time_left`), and its worker stops it at the end
  of an epoch past them (recorded pruned, its time counted): a slow strategy's last trial overshoots
  by one epoch, not by all of its epochs.
- A trial running in another process holds its slot. When only such trials stand between the study
  and its budget, the loop waits for them: for their end, or, for one left by a killed process, for
  Optuna to fail it as stale (no heartbeat for study_storage.GRACE_S), which gives its slot back.
- A trial left RUNNING whose run did finish (its parent was killed between the record and telling
  Optuna) is told from its record before anything is failed as stale: its result is not lost.
- A study whose last trials all ended without a result (failed, or refused by the strategy's own
  check) stops after MAX_WITHOUT_RESULT of them: its budget would otherwise go to repeating an error.
"""

from __future__ import annotations

import threading
import time
import warnings

from bench.core import budget as budgets
from bench.core.budget import Budget
from bench.running.study_storage import GRACE_S, HEARTBEAT_S

POLL_S = 5  # how often a loop waiting on another process's trial looks again
WAIT_LIMIT_S = GRACE_S + 3 * HEARTBEAT_S  # past this, a trial that neither ends nor goes stale holds nothing
MAX_WITHOUT_RESULT = 5


def trial_usage(trial) -> tuple[str | None, float | None]:
    """(what the trial's run ended as, the seconds it spent) from a finished trial's attributes;
    trials told before these were kept: their state, and their wall time."""
    from optuna.trial import TrialState

    attrs = trial.user_attrs
    status = attrs.get("record_status")
    if status is None:
        status = {TrialState.COMPLETE: "ok", TrialState.PRUNED: "pruned"}.get(trial.state)
    spent = attrs.get("spent_s")
    if spent is None and trial.duration is not None:
        spent = trial.duration.total_seconds()
    return status, spent


def study_usage(study) -> tuple[int, float]:
    """(trials that used budget, their seconds) of the study as it stands."""
    return budgets.used(trial_usage(t) for t in study.get_trials(deepcopy=False) if t.state.is_finished())


class StudyBudget:
    """take()/close() for tune.run_loops, over one study and its budget."""

    def __init__(self, study, budget: Budget, results: list, say=print, storage=None, results_dir=None):
        self.study, self.budget, self.results, self.say = study, budget, results, say
        self.storage, self.results_dir = storage, results_dir  # to tell finished runs' trials (adopt_finished)
        self.taken = 0  # trials this process took a slot for; finished ones are in `results`
        self.closed = False
        self.stopped_why: str | None = None
        self._lock = threading.Lock()
        self._left = threading.local()  # per trial loop: the seconds left as its trial was taken

    def take(self) -> bool:
        waited_since = None
        while True:
            with self._lock:
                if self.closed:
                    return False
                verdict = self._verdict(ignore_elsewhere=waited_since is not None
                                        and time.monotonic() - waited_since > WAIT_LIMIT_S)
                if verdict == "start":
                    self.taken += 1
                    return True
                if verdict == "done":
                    return False
            if waited_since is None:
                waited_since = time.monotonic()
                self.say(f"  waiting for a trial of study '{self.study.study_name}' running elsewhere (or left by "
                         f"a stopped process: failed after {GRACE_S} s without a heartbeat) before the budget is "
                         "known to be used", flush=True)
            time.sleep(POLL_S)

    def close(self) -> None:
        with self._lock:
            self.closed = True

    def time_left(self) -> float | None:
        """With time:DURATION, the seconds the trial this loop last took may run before its worker
        stops it at an epoch's end (the budget less what the study used and our other running
        trials will use); None with trials:N."""
        return getattr(self._left, "seconds", None)

    def _verdict(self, ignore_elsewhere: bool) -> str:
        """"start" a trial, "done" (the budget is used, or will be by our own running trials), or
        "wait" for trials running in another process."""
        from optuna.trial import TrialState

        if self.storage is not None and self.results_dir is not None:
            adopt_finished(self.study, self.storage, self.results_dir, self.say)
        self._fail_stale()
        trials = self.study.get_trials(deepcopy=False)
        finished = [t for t in trials if t.state.is_finished()]
        n_used, seconds = budgets.used(trial_usage(t) for t in finished)
        if self._without_result(finished):
            self.stopped_why = (f"its last {MAX_WITHOUT_RESULT} trials all ended without a result (failed or "
                                "refused); see their records")
            return "done"
        here = max(0, self.taken - len(self.results))
        running = sum(t.state == TrialState.RUNNING for t in trials)
        elsewhere = 0 if ignore_elsewhere else max(0, running - here)
        each = 1.0 if self.budget.kind == "trials" else (seconds / n_used if n_used else 0.0)
        ours = (n_used if self.budget.kind == "trials" else seconds) + here * each
        if ours >= self.budget.amount:
            return "done"
        if ours + elsewhere * each >= self.budget.amount:
            return "wait"
        if self.budget.kind == "time":
            self._left.seconds = self.budget.amount - ours - elsewhere * each
        return "start"

    def _without_result(self, finished) -> bool:
        tail = sorted(finished, key=lambda t: t.number)[-MAX_WITHOUT_RESULT:]
        return len(tail) == MAX_WITHOUT_RESULT and all(
            trial_usage(t)[0] in ("failed", "oom", "refused") for t in tail)

    def _fail_stale(self) -> None:
        import optuna

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            optuna.storages.fail_stale_trials(self.study)


def adopt_finished(study, storage, results_dir, say=print) -> int:
    """Tell every RUNNING trial whose run's record is final (ok, pruned, failed, oom) what the record
    says, as its own process would have; how many were told. A process still alive that tells it too
    finds it told (tune's tell skips finished trials) with the same values."""
    from optuna.trial import TrialState

    from bench.commands.tune import OBJECTIVES, PRIMARY
    from bench.core.records import read_record, record_path
    from bench.running.study_storage import trial_id_of

    told = 0
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        run_id = trial.user_attrs.get("run_id")
        rec = read_record(record_path(results_dir, run_id)) if run_id else None
        if rec is None or rec.status not in budgets.COUNTED:
            continue
        value = OBJECTIVES[PRIMARY][1](rec) if rec.status == "ok" and rec.metrics is not None else None
        trial_id = trial_id_of(storage, study.study_name, trial.number)
        try:
            storage.set_trial_user_attr(trial_id, "record_status", rec.status)
            spent = rec.cost.spent_seconds() if rec.cost is not None else None
            storage.set_trial_user_attr(trial_id, "spent_s", round(float(spent or 0.0), 3))
            storage.set_trial_user_attr(trial_id, "spent_basis", "record")
        except Exception:  # noqa: BLE001 - told meanwhile by its own process: nothing to adopt
            continue
        if value is not None:
            study.tell(trial.number, float(value), skip_if_finished=True)
        else:
            study.tell(trial.number, state=TrialState.PRUNED if rec.status == "pruned" else TrialState.FAIL,
                       skip_if_finished=True)
        told += 1
        say(f"  trial {trial.number} of study '{study.study_name}': its run finished ({rec.status}) but its process "
            "stopped before telling Optuna; told from its record", flush=True)
    return told

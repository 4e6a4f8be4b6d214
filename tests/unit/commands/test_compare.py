"""`bench compare`: the whole protocol with a fake runner (studies to their budget, then defaults and
best parameters on every seed, every record carrying the protocol), resuming after a stop (nothing
lost, nothing repeated), the budget arithmetic on real Optuna studies, bad input, and a plug-in
strategy that records the row ids it is given: the proof that the tuning never sees a test row.

The runs of the fake-runner tests never start a process; the plug-in's do (through the CLI), and
its strategy loads no model, so each is a second or two of process start-up."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import IntDistribution
from optuna.trial import TrialState, create_trial

from bench.commands import cli
from bench.commands.compare.budget import StudyBudget, study_usage
from bench.commands.compare.studies import sampler_seed_for
from bench.core.budget import Budget
from bench.core.errors import Stopped
from bench.core.record import Cost, DatasetInfo, Metrics
from bench.core.records import iter_records, record_path, write_record
from bench.data.sources import DatasetOptions, load_raw
from bench.data.task import hold_out_test_rows, prepare
from bench.running.results import base_record
from bench.running.runner import Outcome
from tests.conftest import ROOT, run_bench

optuna.logging.set_verbosity(optuna.logging.WARNING)
SMALL = ["--per-class", "6,2,4", "-q"]
LABELS = ["business", "entertainment", "politics", "sport", "tech"]


def compare_args(results: Path, model: Path, *extra: str, strategies: str = "feature-extract,full-ft") -> list[str]:
    return ["compare", "--strategies", strategies, "--model", str(model), "--results-dir", str(results),
            "-o", str(results.parent / "report.html"), *SMALL, *extra]


def quality(spec) -> float:
    """A run's made-up score, a function of its strategy and params only (the same on val and test)."""
    digest = hashlib.sha256(json.dumps([spec.strategy, spec.params], sort_keys=True, default=str).encode())
    return 0.3 + 0.6 * (int(digest.hexdigest()[:8], 16) % 1000) / 1000


class FakeRunner:
    """runner.run_one stand-in: an ok record scored by `quality` (20 rows, right on the first
    round(quality x 20)), written where the runner writes it; `stop_when(spec)` true: behaves as
    Ctrl-C during that run (a cancelled record, errors.Stopped)."""

    def __init__(self, stop_when=None):
        self.calls, self.stop_when = [], stop_when

    def __call__(self, spec, results_dir, quiet=False, **_):
        self.calls.append(spec)
        if self.stop_when is not None and self.stop_when(spec):
            self.stop_when = None
            rec = base_record(spec, "cancelled", "interrupted (Ctrl-C, SIGINT) during the run")
            write_record(record_path(results_dir, spec.run_id), rec)
            raise Stopped(2, Outcome(spec, "cancelled", rec, 0.1))
        n, right = 20, round(quality(spec) * 20)
        truth = [i % 5 for i in range(n)]
        rec = base_record(spec, "ok")
        rec.metrics = Metrics(accuracy=right / n, balanced_accuracy=right / n, macro_f1=right / n)
        rec.cost = Cost(time_s={"train": 2.0, "eval": 1.0, "total": 4.0}, peak_rss_mb=500.0,
                        headline_memory="peak_rss_mb", trainable_params=10, total_params=100)
        rec.dataset = DatasetInfo(name="bbc-news", labels=LABELS,
                                  split_ids={spec.eval_split: [f"{spec.seed}-{i}" for i in range(n)]})
        rec.truth = truth
        rec.predictions = [t if i < right else (t + 1) % 5 for i, t in enumerate(truth)]
        write_record(record_path(results_dir, spec.run_id), rec)
        return Outcome(spec, "ok", rec, 0.1)


def comparison_records(results: Path) -> list:
    return [r for r in iter_records(results) if r.comparison is not None]


def studies_of(results: Path) -> dict[str, optuna.Study]:
    storage = optuna.storages.RDBStorage(f"sqlite:///{results / 'optuna.db'}")
    return {name: optuna.load_study(study_name=name, storage=storage) for name in optuna.get_all_study_names(storage)}


# ---------------------------------------------------------------- the whole protocol

def test_the_whole_protocol_with_a_fake_runner(tmp_path, tiny_bert, monkeypatch, capsys):
    runner = FakeRunner()
    monkeypatch.setattr("bench.running.runner.run_one", runner)
    results = tmp_path / "results"
    assert cli.main(compare_args(results, tiny_bert, "--budget", "trials:3", "--seeds", "0,1")) == 0
    out = capsys.readouterr().out
    trials = [s for s in runner.calls if s.eval_split == "val"]
    tests = [s for s in runner.calls if s.eval_split == "test"]
    assert len(trials) == 2 * 3 and len(tests) == 2 * 2 * 2  # 3 trials a strategy; defaults and tuned on 2 seeds
    name = trials[0].comparison["name"]
    assert name.startswith("cmp-bbc-news-")
    for spec in trials:
        assert spec.comparison == {"name": name, "budget": "trials:3", "role": "trial", "variant": None,
                                   "prefer": "train-time", "study": f"{name}-{spec.strategy}", "holdout_seeds": [0, 1]}
        assert spec.holdout_seeds == [0, 1] and spec.study["name"] == f"{name}-{spec.strategy}"
        assert "time_left_s" not in spec.study  # a trials budget never stops a trial early
    studies = studies_of(results)
    assert sorted(studies) == [f"{name}-feature-extract", f"{name}-full-ft"]
    for strategy in ("feature-extract", "full-ft"):
        study = studies[f"{name}-{strategy}"]
        assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
        defaults = [s for s in tests if s.strategy == strategy and s.comparison["variant"] == "default"]
        tuned = [s for s in tests if s.strategy == strategy and s.comparison["variant"] == "tuned"]
        assert sorted(s.seed for s in defaults) == sorted(s.seed for s in tuned) == [0, 1]
        assert all(s.params == trials_of(trials, strategy)[0].params for s in defaults)  # trial 0 ran the defaults
        best = study.best_trial
        assert all(s.comparison["best_trial"] == best.number for s in tuned)
        assert all(s.params == trials_of(trials, strategy)[best.number].params for s in tuned)
        assert all(s.holdout_seeds is None for s in defaults + tuned)  # test runs draw the ordinary splits
        assert "used 3 of 3 trials" in out
    records = comparison_records(results)
    assert len(records) == 6 + 8 and {r.run_id for r in records} == {s.run_id for s in runner.calls}
    assert all(r.comparison.role == ("trial" if r.eval_split == "val" else "test") for r in records)
    assert "report:" in out and "tie-break by train-time" in out
    html = (tmp_path / "report.html").read_text()
    assert "Comparison: each strategy at its best" in html and ("statistically tied" in html or "significantly" in html)

    # the same command again: every study is at its budget and every test run is done
    before = len(runner.calls)
    assert cli.main(compare_args(results, tiny_bert, "--budget", "trials:3", "--seeds", "0,1")) == 0
    assert len(runner.calls) == before
    assert "skipped (an ok record exists" in capsys.readouterr().out

    # a larger budget continues the same studies: one more trial each, numbered on
    assert cli.main(compare_args(results, tiny_bert, "--budget", "trials:4", "--seeds", "0,1")) == 0
    added = runner.calls[before:]
    assert sorted((s.strategy, s.study["trial"]) for s in added if s.study) == [("feature-extract", 3), ("full-ft", 3)]


def test_a_time_budget_comparison_tells_each_trial_the_seconds_its_study_has_left(tmp_path, tiny_bert, monkeypatch):
    runner = FakeRunner()  # each trial's record spends its 4 s
    monkeypatch.setattr("bench.running.runner.run_one", runner)
    assert cli.main(compare_args(tmp_path / "results", tiny_bert, "--budget", "time:10s", "--seeds", "0")) == 0
    for strategy in ("feature-extract", "full-ft"):
        lefts = [s.study["time_left_s"] for s in runner.calls if s.eval_split == "val" and s.strategy == strategy]
        assert lefts == [10.0, 6.0, 2.0]


def trials_of(specs, strategy):
    return {s.study["trial"]: s for s in specs if s.strategy == strategy}


def test_a_stopped_comparison_resumes_losing_and_repeating_nothing(tmp_path, tiny_bert, monkeypatch):
    """Ctrl-C in full-ft's second trial, then again in the third test run: each rerun continues."""
    results = tmp_path / "results"
    args = compare_args(results, tiny_bert, "--budget", "trials:3", "--seeds", "0,1")
    first = FakeRunner(stop_when=lambda s: s.strategy == "full-ft" and s.study and s.study["trial"] == 1)
    monkeypatch.setattr("bench.running.runner.run_one", first)
    assert cli.main(args) == 130
    assert not [s for s in first.calls if s.eval_split == "test"]

    started = []
    second = FakeRunner(stop_when=lambda s: s.eval_split == "test" and started.append(s) is None and len(started) == 3)
    monkeypatch.setattr("bench.running.runner.run_one", second)
    assert cli.main(args) == 130
    third = FakeRunner()
    monkeypatch.setattr("bench.running.runner.run_one", third)
    assert cli.main(args) == 0

    everything = first.calls + second.calls + third.calls
    name = everything[0].comparison["name"]
    study = studies_of(results)[f"{name}-full-ft"]
    states = [(t.number, t.state, t.user_attrs.get("record_status")) for t in study.trials]
    # the cancelled trial is FAIL and used nothing: three trials still completed, numbered on
    assert states == [(0, TrialState.COMPLETE, "ok"), (1, TrialState.FAIL, "cancelled"),
                      (2, TrialState.COMPLETE, "ok"), (3, TrialState.COMPLETE, "ok")]
    assert study_usage(study) == (3, 12.0)
    fe_trials = [s for s in everything if s.strategy == "feature-extract" and s.study]
    assert len(fe_trials) == 3  # feature-extract's study finished in the first run and was not touched again
    searched = [json.dumps(t.params, sort_keys=True) for t in study.trials if t.number > 0]
    assert len(set(searched)) == len(searched)  # the resumed sampler proposed no point again
    tests = [s for s in everything if s.eval_split == "test"]
    ok_tests = [r for r in comparison_records(results) if r.eval_split == "test" and r.status == "ok"]
    assert len(ok_tests) == 8 and len({r.run_id for r in ok_tests}) == 8
    # each test run ran once, except the one stopped mid-run, which ran again
    counts = {}
    for s in tests:
        counts[s.run_id] = counts.get(s.run_id, 0) + 1
    assert sorted(counts.values()) == [1] * 7 + [2]
    assert counts[started[2].run_id] == 2


def test_the_sampler_seed_moves_on_as_a_study_grows():
    assert sampler_seed_for(0, 0) == sampler_seed_for(0, 0)
    assert len({sampler_seed_for(0, n) for n in range(10)}) == 10
    assert sampler_seed_for(0, 3) != sampler_seed_for(1, 3)


# ---------------------------------------------------------------- the budget arithmetic

def study_with(*trials) -> optuna.Study:
    """A study holding finished trials given as (state, record status, seconds spent)."""
    study = optuna.create_study(direction="maximize")
    dist = {"x": IntDistribution(0, 100)}
    for i, (state, status, spent) in enumerate(trials):
        attrs = {} if status is None else {"record_status": status, "spent_s": spent}
        study.add_trial(create_trial(state=state, value=0.5 if state == TrialState.COMPLETE else None, params={"x": i},
                                     distributions=dist, user_attrs=attrs))
    return study


def test_pruned_and_failed_trials_use_budget_cancelled_and_killed_ones_do_not():
    study = study_with((TrialState.COMPLETE, "ok", 10.0), (TrialState.PRUNED, "pruned", 4.0),
                       (TrialState.FAIL, "failed", 1.0), (TrialState.FAIL, "oom", 2.0),
                       (TrialState.FAIL, "cancelled", 7.0),  # Ctrl-C: not the strategy's doing
                       (TrialState.FAIL, None, None),  # failed as stale: its process was killed
                       (TrialState.FAIL, "refused", 0.0))  # the strategy's check refused the combination
    assert study_usage(study) == (4, 17.0)
    assert not StudyBudget(study, Budget("trials", 4), []).take()
    budget = StudyBudget(study, Budget("trials", 6), [])
    assert budget.take() and budget.take() and not budget.take()  # two slots left; both taken, none running yet
    assert StudyBudget(study, Budget("time", 17.5), []).take()
    assert not StudyBudget(study, Budget("time", 17.0), []).take()


def test_a_time_budget_counts_running_trials_at_the_mean_trial_time():
    study = study_with((TrialState.COMPLETE, "ok", 10.0), (TrialState.COMPLETE, "ok", 20.0))
    results: list = []
    budget = StudyBudget(study, Budget("time", 50.0), results)
    assert budget.take()  # 30 s used
    assert budget.take()  # 30 s used and one trial of the mean 15 s running: 45 s
    assert not budget.take()  # 30 s and two running: 60 s, past the budget
    results.append("the first finished")  # (and told nothing: the study still says 30 s)
    assert budget.take()


def test_a_time_budget_tells_each_trial_the_seconds_left_as_it_starts():
    study = study_with((TrialState.COMPLETE, "ok", 10.0), (TrialState.COMPLETE, "ok", 20.0))
    budget = StudyBudget(study, Budget("time", 50.0), [])
    assert budget.take() and budget.time_left() == 20.0  # 30 s used
    assert budget.take() and budget.time_left() == 5.0  # and one of ours running at the mean 15 s
    counted = StudyBudget(study, Budget("trials", 6), [])
    assert counted.take() and counted.time_left() is None


def test_a_trial_past_its_studys_time_left_stops_at_an_epochs_end_but_never_at_its_last(tmp_path):
    from bench.core.errors import Pruned
    from bench.running.study_storage import epoch_reporter

    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    study = optuna.create_study(study_name="s", storage=url, direction="maximize")
    trial = study.ask()
    info = {"name": "s", "trial": trial.number, "pruner": "none", "storage": url}
    assert epoch_reporter(info, 3) is None  # no pruner and no time budget: nothing to report
    on_epoch = epoch_reporter({**info, "time_left_s": 0.0}, 3)
    on_epoch({"epoch": 3, "val_balanced_accuracy": 0.5})  # the last epoch: the work is done, keep it
    with pytest.raises(Pruned, match="stopped after epoch 1.*time budget"):
        on_epoch({"epoch": 1, "val_balanced_accuracy": 0.4})
    assert optuna.load_study(study_name="s", storage=url).trials[0].intermediate_values == {1: 0.4, 3: 0.5}
    epoch_reporter({**info, "time_left_s": 3600.0}, 3)({"epoch": 1, "val_balanced_accuracy": 0.4})  # time to go on


def test_trials_told_before_the_budget_attributes_count_by_state_and_wall_time():
    study = optuna.create_study(direction="maximize")
    study.optimize(lambda t: t.suggest_int("x", 0, 3), n_trials=2)
    n, seconds = study_usage(study)
    assert n == 2 and seconds >= 0


def test_a_trial_running_elsewhere_holds_its_slot_until_it_ends_or_goes_stale(monkeypatch):
    monkeypatch.setattr("bench.commands.compare.budget.POLL_S", 0.05)
    monkeypatch.setattr("bench.commands.compare.budget.WAIT_LIMIT_S", 0.3)
    study = study_with((TrialState.COMPLETE, "ok", 1.0))
    study.ask()  # RUNNING, asked by no trial loop of ours: another process's, or a killed one's
    said = []
    budget = StudyBudget(study, Budget("trials", 2), [], say=lambda *a, **k: said.append(a[0]))
    t0 = time.monotonic()
    assert budget.take()  # it waited for the other trial, which neither ended nor went stale: then took it
    assert time.monotonic() - t0 >= 0.3 and "waiting for a trial" in said[0]
    assert StudyBudget(study, Budget("trials", 3), []).take()  # a slot beyond the running trial: no wait


def test_a_finished_run_whose_process_died_before_telling_is_told_from_its_record(tmp_path, tiny_bert):
    """kill -9 between the worker's record and the tell: the trial is RUNNING, its run is done."""
    from bench.running.config import RunSpec

    study = study_with((TrialState.COMPLETE, "ok", 1.0))
    orphan, pruned = study.ask(), study.ask()
    for trial, status in ((orphan, "ok"), (pruned, "pruned")):
        spec = RunSpec("feature-extract", str(tiny_bert), "bbc-news", {}, [6, 2, 4], "pool", 0, {}, "cpu",
                       eval_split="val", study={"name": study.study_name, "trial": trial.number})
        rec = base_record(spec, status)
        rec.metrics = Metrics(accuracy=0.75, balanced_accuracy=0.7) if status == "ok" else None
        rec.cost = Cost(time_s={"total": 6.0})
        write_record(record_path(tmp_path, spec.run_id), rec)
        trial.set_user_attr("run_id", spec.run_id)
    said = []
    budget = StudyBudget(study, Budget("trials", 3), [], say=lambda *a, **k: said.append(a[0]),
                         storage=study._storage, results_dir=tmp_path)
    assert not budget.take()  # both told from their records: three trials used, none waited for
    told = {t.number: (t.state, t.value, t.user_attrs.get("record_status")) for t in study.trials}
    assert told[orphan.number] == (TrialState.COMPLETE, 0.7, "ok")
    assert told[pruned.number] == (TrialState.PRUNED, None, "pruned")
    assert study_usage(study) == (3, 13.0) and len(said) == 2


def test_a_study_whose_trials_keep_failing_stops(capsys):
    study = study_with(*[(TrialState.FAIL, "failed", 0.5)] * 5)
    budget = StudyBudget(study, Budget("time", 3600), [])
    assert not budget.take() and "ended without a result" in budget.stopped_why


# ---------------------------------------------------------------- bad input

@pytest.mark.parametrize("extra, message", [
    (["--budget", "trials:0"], "--budget 'trials:0': use trials:N"),
    (["--budget", "time:5 minutes"], "--budget 'time:5 minutes'"),
    (["--budget", "epochs:3"], "--budget 'epochs:3'"),
    (["--workers", "0"], "--workers 0: give at least 1"),
    (["--name", "my comparison"], "--name 'my comparison': use letters"),
    (["--strategies", "lroa"], "unknown strategy 'lroa'"),
])
def test_bad_input_is_one_clear_error_before_anything_runs(tmp_path, tiny_bert, monkeypatch, capsys, extra, message):
    runner = FakeRunner()
    monkeypatch.setattr("bench.running.runner.run_one", runner)
    assert cli.main(compare_args(tmp_path / "r", tiny_bert, *extra)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and message in err[-1]
    assert runner.calls == [] and not (tmp_path / "r" / "optuna.db").exists()


def test_test_seeds_beyond_those_held_out_are_refused(tmp_path, tiny_bert, monkeypatch, capsys):
    monkeypatch.setattr("bench.running.runner.run_one", FakeRunner())
    results = tmp_path / "results"
    assert cli.main(compare_args(results, tiny_bert, "--budget", "trials:1", "--seeds", "0",
                                 strategies="feature-extract")) == 0
    assert cli.main(compare_args(results, tiny_bert, "--budget", "trials:1", "--seeds", "0,1",
                                 strategies="feature-extract")) == 2
    assert "held out, not those of seed(s) 1" in capsys.readouterr().err


# ---------------------------------------------------------------- the tuning never sees a test row

SPY = textwrap.dedent('''
    """A strategy that records the row ids it is given (no model; optionally naps first)."""
    import time
    from dataclasses import dataclass

    import strategies
    from bench.core.params import param
    from strategies.shared.base import Strategy, StrategyResult


    @dataclass
    class SpyParams:
        offset: int = param(0, ge=0)
        nap: float = param(0.0, ge=0)


    class RowSpy(Strategy):
        name = "row-spy"
        description = "records the row ids it is given"
        default_model = "minilm"
        Params = SpyParams
        flops_kind = "forward"

        def search_space(self, trial):
            return {"offset": trial.suggest_int("offset", 0, 4)}

        def run(self, ctx, p):
            time.sleep(p.nap)
            n = len(ctx.data.labels)
            preds = [(len(text) + p.offset) % n for text in ctx.eval.texts]
            given = {name: list(ctx.data.split(name).ids) for name in ("train", "val", "test")}
            return StrategyResult(predictions=preds, trainable_params=0, total_params=1,
                                  extra_cost={"given_ids": {**given, "eval": list(ctx.eval.ids)}})


    strategies.REGISTRY["row-spy"] = f"{__name__}:RowSpy"
''')


def spy_env(tmp_path: Path) -> dict:
    (tmp_path / "row_spy_plugin.py").write_text(SPY)
    return {"FTBENCH_PLUGINS": "row_spy_plugin", "PYTHONPATH": str(tmp_path)}


def test_the_tuning_never_sees_a_test_row(tmp_path):
    results = tmp_path / "results"
    out = run_bench("compare", "--strategies", "row-spy", "--budget", "trials:1", "--seeds", "0,1", "--results-dir",
                    str(results), "-o", str(tmp_path / "report.html"), "-q", env=spy_env(tmp_path))
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-3000:]
    records = comparison_records(results)
    trials = [r for r in records if r.comparison.role == "trial"]
    tests = [r for r in records if r.comparison.role == "test"]
    assert len(trials) == 1 and len(tests) == 4 and all(r.status == "ok" for r in records)
    seen_by_tuning = set()
    for rec in trials:
        given = rec.cost.strategy["given_ids"]
        assert given["test"] == [] and given["eval"] == given["val"]  # a trial has no test split at all
        seen_by_tuning |= set(given["train"]) | set(given["val"])
    scored = set()
    for rec in tests:
        given = rec.cost.strategy["given_ids"]
        assert given["eval"] == given["test"] and len(given["test"]) == 200
        scored |= set(given["test"])
    assert not seen_by_tuning & scored
    raw = load_raw("bbc-news", DatasetOptions())
    # the trial drew its train and validation rows from the pool without both seeds' test rows
    tuning_pool = prepare(hold_out_test_rows(raw, "per-class:60,20,40", [0, 1]), "per-class:60,20,40", 0)
    assert seen_by_tuning == set(tuning_pool.train.ids) | set(tuning_pool.val.ids)
    # without the hold-out, seed 0's train and validation rows would include rows seed 1 tests on
    plain, other = prepare(raw, "per-class:60,20,40", 0), prepare(raw, "per-class:60,20,40", 1)
    assert (set(plain.train.ids) | set(plain.val.ids)) & set(other.test.ids)


@pytest.mark.slow  # a real kill -9 of `bench compare` mid-study and again mid-test-runs
def test_a_killed_comparison_resumes(tmp_path):
    results = tmp_path / "results"
    env = dict(os.environ, FTBENCH_QUIET="1", PYTHONWARNINGS="ignore", **spy_env(tmp_path))
    cmd = [sys.executable, "-m", "bench.commands.cli", "compare", "--strategies", "row-spy", "--budget", "trials:3",
           "--seeds", "0,1", "--param", "row-spy.nap=6", "--results-dir", str(results), "--no-report", "-q"]

    def run_until(ready) -> None:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                start_new_session=True)
        deadline = time.time() + 300
        while time.time() < deadline and not ready():
            time.sleep(0.3)
        os.killpg(proc.pid, signal.SIGKILL)  # parent and worker, no chance to clean up
        proc.wait()

    def db_trials() -> list[tuple[int, str]]:
        if not (results / "optuna.db").exists():
            return []
        with sqlite3.connect(results / "optuna.db") as db:
            return list(db.execute("SELECT number, state FROM trials ORDER BY number"))

    def ok_tests():
        return {r.run_id: r.finished_at for r in comparison_records(results)
                if r.comparison.role == "test" and r.status == "ok"}

    def unrecorded_running() -> list[int]:  # trials mid-run: RUNNING, no record of their run yet
        recorded = {r.study.trial for r in comparison_records(results) if r.study is not None}
        return [n for n, state in db_trials() if state == "RUNNING" and n not in recorded]

    run_until(lambda: len([r for r in comparison_records(results) if r.comparison.role == "trial"]) >= 1
              and unrecorded_running())
    killed = unrecorded_running()
    assert len(killed) == 1
    with sqlite3.connect(results / "optuna.db") as db:  # as if GRACE_S had passed since its last heartbeat
        db.execute("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-1 hour')")
    run_until(lambda: len(ok_tests()) >= 1)  # the rerun finishes the study, then is killed mid-test-runs
    states = dict(db_trials())
    assert states[killed[0]] == "FAIL" and sum(s == "COMPLETE" for s in states.values()) == 3
    done = ok_tests()
    assert 1 <= len(done) < 4
    out = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stderr[-3000:]
    assert dict(db_trials()) == states  # the study was at its budget: no trial added
    final = ok_tests()
    assert len(final) == 4 and all(final[k] == v for k, v in done.items())  # finished test runs not redone


@pytest.mark.slow  # real runs: two studies of two trials, then four test runs, each its own worker process
def test_the_whole_protocol_on_tiny_models(tmp_path, tiny_bert, tiny_llama, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(f"models:\n  feature-extract: {tiny_bert}\n  lora: {tiny_llama}\n"
                      "params:\n  lora: {max_length: 32, batch_size: 8}\n")
    results = tmp_path / "results"
    args = ["compare", "--config", str(config), "--strategies", "feature-extract,lora", "--budget", "trials:2",
            "--seeds", "0", "--per-class", "6,2,4", "--results-dir", str(results), "-o", str(tmp_path / "r.html"), "-q"]
    assert cli.main(args) == 0
    out = capsys.readouterr().out
    records = comparison_records(results)
    trials = [r for r in records if r.comparison.role == "trial"]
    tests = [r for r in records if r.comparison.role == "test"]
    assert sorted(r.strategy for r in trials) == ["feature-extract"] * 2 + ["lora"] * 2
    assert sorted((r.strategy, r.comparison.variant) for r in tests) == [
        ("feature-extract", "default"), ("feature-extract", "tuned"), ("lora", "default"), ("lora", "tuned")]
    assert all(r.eval_split == "val" and r.dataset.n_test == 0 and r.cost.spent_seconds() > 0 for r in trials)
    assert all(r.status == "ok" and r.eval_split == "test" and r.dataset.n_test == 20 for r in tests)
    assert out.count("used 2 of 2 trials") == 2
    html = (tmp_path / "r.html").read_text()
    assert "Comparison: each strategy at its best" in html and "could not be built" not in html
    assert cli.main(args) == 0 and "skipped (an ok record exists" in capsys.readouterr().out
    assert len(comparison_records(results)) == len(records)  # the rerun added nothing

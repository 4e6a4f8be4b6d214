"""`bench tune`: every strategy's search space, the trial-state bookkeeping (with a fake runner),
pruning through the worker's epoch reporter, resuming a study (including a trial left RUNNING by
a killed process), two processes on one SQLite study, and the best parameters fed to `bench run`.

Real trials use feature-extract on a tiny random BERT (conftest's `tiny_bert`), so each is a few
seconds, mostly process start-up."""

from __future__ import annotations

import dataclasses
import os
import signal
import sqlite3
import subprocess
import sys
import time
import warnings
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution
from optuna.trial import TrialState, create_trial

from bench.commands import cli, tune
from bench.core.errors import BenchError, Pruned, Stopped
from bench.core.record import Cost, Metrics
from bench.core.records import iter_records, record_path, write_record
from bench.running import study_storage
from bench.running.results import base_record
from bench.running.runner import Outcome
from strategies import get_strategy
from tests.conftest import ROOT

optuna.logging.set_verbosity(optuna.logging.WARNING)


SMALL = ["--per-class", "6,2,4", "-q"]


def tune_args(results: Path, model: Path, *extra: str, strategy: str = "feature-extract") -> list[str]:
    return ["tune", "--strategy", strategy, "--model", str(model), "--results-dir", str(results),
            *SMALL, *extra]


def load(results: Path, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=tune.open_storage(tune.default_storage(results)))


def study_name(model: Path) -> str:
    return f"feature-extract-bbc-news-{model}"


def trial_records(results: Path) -> dict[int, dict]:
    return {r.study.trial: r.to_dict() for r in iter_records(results) if r.study}


def fake_history(study: optuna.Study, per_epoch: float, epochs: int = 5, n: int = 3) -> None:
    for _ in range(n):
        study.add_trial(create_trial(value=per_epoch, intermediate_values={e: per_epoch for e in range(1, epochs + 1)},
                                     params={}, distributions={}))


def test_epoch_reporter_prunes_a_run_below_the_median(tmp_path):
    url = tune.default_storage(tmp_path)
    study = optuna.create_study(study_name="s", storage=tune.open_storage(url), direction="maximize")
    fake_history(study, 0.9)
    bad, good = study.ask(), study.ask()
    info = {"name": "s", "storage": url, "pruner": "median"}
    report_bad = study_storage.epoch_reporter({**info, "trial": bad.number})
    report_good = study_storage.epoch_reporter({**info, "trial": good.number})
    report_bad({"epoch": 1, "val_balanced_accuracy": 0.1})  # the first epoch is never judged
    report_bad({"epoch": 2, "val_accuracy": 0.1})  # no balanced figure: nothing reported
    with pytest.raises(Pruned, match="epoch 2"):
        report_bad({"epoch": 2, "val_balanced_accuracy": 0.1})
    for epoch in (1, 2, 3):
        report_good({"epoch": epoch, "val_balanced_accuracy": 0.95})
    fresh = {t.number: t for t in load_fresh(url, "s").trials}
    assert fresh[bad.number].intermediate_values == {1: 0.1, 2: 0.1}
    assert fresh[good.number].intermediate_values == {1: 0.95, 2: 0.95, 3: 0.95}
    assert study_storage.epoch_reporter({**info, "trial": bad.number, "pruner": "none"}) is None


def test_epoch_reporter_never_prunes_at_the_last_epoch(tmp_path):
    """Pruning a trial at its last epoch saves no work; its value is recorded instead."""
    url = tune.default_storage(tmp_path)
    study = optuna.create_study(study_name="s", storage=tune.open_storage(url), direction="maximize")
    fake_history(study, 0.9)
    bad = study.ask()
    report = study_storage.epoch_reporter({"name": "s", "storage": url, "pruner": "median", "trial": bad.number},
                                          epochs=2)
    report({"epoch": 1, "val_balanced_accuracy": 0.1})
    report({"epoch": 2, "val_balanced_accuracy": 0.1})  # below the median, but the last epoch
    assert load_fresh(url, "s").trials[bad.number].intermediate_values == {1: 0.1, 2: 0.1}


def load_fresh(url: str, name: str) -> optuna.Study:
    return optuna.load_study(study_name=name, storage=tune.open_storage(url))


@pytest.mark.slow  # two real `bench tune` runs
def test_a_pruned_run_gets_a_pruned_record_and_a_pruned_trial(tmp_path, tiny_bert):
    assert cli.main(tune_args(tmp_path, tiny_bert, "--trials", "1")) == 0  # creates the study
    study = load(tmp_path, study_name(tiny_bert))
    fake_history(study, 1.0, epochs=20)  # a perfect history: any real run falls below it
    study.enqueue_trial({"head": "mlp", "pooling": "mean", "hidden": 64, "lr": 1e-3, "epochs": 20})
    assert cli.main(tune_args(tmp_path, tiny_bert, "--trials", "1")) == 0
    trial = load(tmp_path, study_name(tiny_bert)).trials[-1]
    assert trial.state == TrialState.PRUNED and trial.params["head"] == "mlp"
    record = trial_records(tmp_path)[trial.number]
    assert record["status"] == "pruned" and "pruned at epoch 2" in record["error"]
    assert record["run_id"] == trial.user_attrs["run_id"] and record["eval_split"] == "val"


def fake_runner(statuses: dict[int, str]):
    """run_one stand-in: trial N gets statuses[N]; "interrupt" behaves as Ctrl-C during the run."""
    seen = []

    def run_one(spec, results_dir, quiet=False, **_):  # secret_env: the storage URL
        seen.append(spec)
        status = statuses[spec.study["trial"]]
        rec = base_record(spec, "cancelled" if status == "interrupt" else status, None if status == "ok" else "x")
        if status == "ok":
            rec.metrics = Metrics(balanced_accuracy=0.5 + spec.study["trial"] / 10)
            rec.cost = Cost(time_s={"train": 2.0}, peak_rss_mb=900.0, headline_memory="peak_rss_mb")
        write_record(record_path(results_dir, spec.run_id), rec)
        outcome = Outcome(spec, rec.status, rec, 0.1)
        if status == "interrupt":
            raise Stopped(2, outcome)
        return outcome

    return run_one, seen


def test_each_record_status_becomes_a_trial_state(tmp_path, tiny_bert, monkeypatch, capsys):
    run_one, seen = fake_runner({0: "ok", 1: "failed", 2: "pruned", 3: "oom", 4: "ok"})
    monkeypatch.setattr("bench.running.runner.run_one", run_one)
    user_params = ["--param", "feature-extract.max_length=128", "--param", "feature-extract.pooling=cls"]
    assert cli.main(tune_args(tmp_path, tiny_bert, "--trials", "5", "--seed", "3", *user_params)) == 0
    trials = load(tmp_path, study_name(tiny_bert)).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL, TrialState.PRUNED,
                                         TrialState.FAIL, TrialState.COMPLETE]
    assert [t.value for t in trials if t.value is not None] == [0.5, 0.9]
    assert all(s.eval_split == "val" and s.seed == 3 and s.study["objective"] == "balanced_accuracy" for s in seen)
    assert [t.user_attrs["run_id"] for t in trials] == [s.run_id for s in seen]
    tuned = trials[4].user_attrs["params"]  # what --params-from will set: searched and user-set params
    assert set(tuned) >= set(trials[4].params) and tuned["max_length"] == 128
    assert all(s.params["max_length"] == 128 for s in seen)
    out = capsys.readouterr().out
    assert out.count("note: 'pooling' is in feature-extract's search space") == 1 and "'max_length' is in" not in out
    assert "best of 2 complete trial(s): trial 4" in out
    assert f"bench run --strategies feature-extract --params-from {study_name(tiny_bert)}" in out
    assert "--seeds 0,1,2" in out


def test_ctrl_c_tells_the_running_trial_fail_and_exits_130(tmp_path, tiny_bert, monkeypatch):
    run_one, _ = fake_runner({0: "ok", 1: "interrupt"})
    monkeypatch.setattr("bench.running.runner.run_one", run_one)
    assert cli.main(tune_args(tmp_path, tiny_bert, "--trials", "5")) == 130
    trials = load(tmp_path, study_name(tiny_bert)).trials
    assert [t.state for t in trials] == [TrialState.COMPLETE, TrialState.FAIL]


def test_two_objectives_give_a_pareto_front_and_never_prune(tmp_path, tiny_bert, monkeypatch, capsys):
    run_one, seen = fake_runner({0: "ok", 1: "ok"})
    monkeypatch.setattr("bench.running.runner.run_one", run_one)
    args = tune_args(tmp_path, tiny_bert, "--trials", "2", "--objectives", "balanced_accuracy,train_time")
    assert cli.main(args) == 0
    study = load(tmp_path, study_name(tiny_bert) + "-train_time")
    assert [t.values for t in study.trials] == [[0.5, 2.0], [0.6, 2.0]]
    assert all(s.study["pruner"] == "none" for s in seen)
    out = capsys.readouterr().out
    assert "Pareto front of balanced_accuracy (maximize), train_time (minimize): 1 trial(s)" in out
    assert tune.best_params_for(study.study_name, None, tmp_path)[0] == "feature-extract"


def backdate_heartbeats(results: Path) -> None:
    """As if the processes beating for RUNNING trials had stopped an hour ago."""
    with sqlite3.connect(results / "optuna.db") as db:
        db.execute("UPDATE trial_heartbeats SET heartbeat = datetime('now', '-1 hour')")


def test_trial_0_of_a_new_study_runs_the_starting_parameters(tmp_path, tiny_bert, monkeypatch):
    run_one, _ = fake_runner(dict.fromkeys(range(4), "ok"))
    monkeypatch.setattr("bench.running.runner.run_one", run_one)
    assert cli.main(tune_args(tmp_path, tiny_bert, "--trials", "2", "--param", "C=3.0")) == 0
    assert cli.main(tune_args(tmp_path, tiny_bert, "--trials", "1", "--param", "C=3.0")) == 0
    trials = load(tmp_path, study_name(tiny_bert)).trials
    defaults = dataclasses.asdict(get_strategy("feature-extract").Params())
    first = trials[0].params
    assert first == {k: (3.0 if k == "C" else defaults[k]) for k in first} and "C" in first
    # resuming does not enqueue it again: later trials are sampled
    assert len(trials) == 3 and all(t.params != first for t in trials[1:])


def test_a_study_resumes_with_numbering_continued_and_a_killed_trial_failed(tmp_path, tiny_bert, monkeypatch):
    run_one, _ = fake_runner(dict.fromkeys(range(6), "ok"))
    monkeypatch.setattr("bench.running.runner.run_one", run_one)
    assert cli.main(tune_args(tmp_path, tiny_bert, "--trials", "2")) == 0
    assert cli.main(tune_args(tmp_path, tiny_bert, "--trials", "2")) == 0
    study = load(tmp_path, study_name(tiny_bert))
    assert [t.number for t in study.trials] == [0, 1, 2, 3]
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    records = trial_records(tmp_path)
    assert sorted(records) == [0, 1, 2, 3]
    assert {r["run_id"] for r in records.values()} == {t.user_attrs["run_id"] for t in study.trials}

    # a process killed mid-trial: its trial stays RUNNING and its heartbeat stops
    storage = tune.open_storage(tune.default_storage(tmp_path), heartbeat=True)
    with warnings.catch_warnings():  # "heartbeat is meant for optimize()"
        warnings.simplefilter("ignore")
        orphan = optuna.load_study(study_name=study.study_name, storage=storage).ask()
    storage.record_heartbeat(study_storage.trial_id_of(storage, study.study_name, orphan.number))
    backdate_heartbeats(tmp_path)
    assert cli.main(tune_args(tmp_path, tiny_bert, "--trials", "1")) == 0
    states = {t.number: t.state for t in load(tmp_path, study.study_name).trials}
    assert states == {0: TrialState.COMPLETE, 1: TrialState.COMPLETE, 2: TrialState.COMPLETE,
                      3: TrialState.COMPLETE, 4: TrialState.FAIL, 5: TrialState.COMPLETE}


@pytest.mark.slow  # real trials, and a real kill -9 of `bench tune` and its worker mid-trial
def test_a_killed_bench_tune_resumes(tmp_path, tiny_bert):
    env = dict(os.environ, FTBENCH_QUIET="1", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "bench.commands.cli", *tune_args(tmp_path, tiny_bert, "--trials", "5", "--pruner", "none")]
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                            start_new_session=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (trial_records(tmp_path) and running_trials(tmp_path)):
        time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)  # parent and worker, no chance to clean up
    proc.wait()
    killed = running_trials(tmp_path)
    assert len(killed) == 1
    backdate_heartbeats(tmp_path)  # instead of waiting GRACE_S
    assert cli.main(tune_args(tmp_path, tiny_bert, "--trials", "1", "--pruner", "none")) == 0
    trials = load(tmp_path, study_name(tiny_bert)).trials
    assert trials[killed[0]].state == TrialState.FAIL
    assert trials[-1].number == killed[0] + 1 and trials[-1].state == TrialState.COMPLETE
    assert trials[-1].number in trial_records(tmp_path)


def running_trials(results: Path) -> list[int]:
    if not (results / "optuna.db").exists():
        return []
    with sqlite3.connect(results / "optuna.db") as db:
        return [n for (n,) in db.execute("SELECT number FROM trials WHERE state = 'RUNNING'")]


@pytest.mark.slow  # two processes of two real trials each
def test_two_processes_work_on_one_sqlite_study(tmp_path, tiny_bert):
    env = dict(os.environ, FTBENCH_QUIET="1", PYTHONWARNINGS="ignore")
    cmd = [sys.executable, "-m", "bench.commands.cli", *tune_args(tmp_path, tiny_bert, "--trials", "2")]
    procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
             for _ in range(2)]
    outputs = [p.communicate(timeout=600)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert not any("Traceback" in o or "locked" in o for o in outputs), outputs
    study = load(tmp_path, study_name(tiny_bert))
    assert sorted(t.number for t in study.trials) == [0, 1, 2, 3]
    # the median pruner may legitimately stop a trial the other process made look weak; none may fail
    assert all(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials), study.trials
    assert sum(t.state == TrialState.COMPLETE for t in study.trials) >= 2
    assert sorted(trial_records(tmp_path)) == [0, 1, 2, 3]


def made_study(results: Path, name: str, strategy: str = "feature-extract", objectives=("balanced_accuracy",)):
    setup = {"strategy": strategy, "dataset": "bbc-news", "model": "minilm", "per_class": [6, 2, 4],
             "test_from": "pool", "seed": 0, "objectives": list(objectives)}
    storage = tune.open_storage(tune.default_storage(results))
    return tune.open_study(name, storage, setup, tune.make_pruner("none"))


def test_best_params_round_trip_into_bench_run(tmp_path, tiny_bert, monkeypatch, capsys):
    study = made_study(tmp_path, "fe")
    dists = {"head": CategoricalDistribution(["logreg", "mlp"]), "C": FloatDistribution(0.01, 100, log=True)}
    for c, value in ((0.5, 0.7), (12.5, 0.9), (3.0, 0.8)):
        study.add_trial(create_trial(params={"head": "logreg", "C": c}, distributions=dists, value=value,
                                     user_attrs={"params": {"head": "logreg", "C": c, "max_length": 128}}))
    assert tune.best_params_for("fe", None, tmp_path) == ("feature-extract",
                                                          {"head": "logreg", "C": 12.5, "max_length": 128})
    planned = []
    monkeypatch.setattr("bench.running.matrix.run_matrix", lambda launcher, specs, *a, **k: planned.extend(specs) or [])
    code = cli.main(["run", "--strategies", "feature-extract", "--params-from", "fe", "--results-dir", str(tmp_path),
                     "--model", str(tiny_bert), "--per-class", "6,2,4", "--seeds", "0,1", "--no-report"])
    assert code == 0 and len(planned) == 2
    assert all(s.params["C"] == 12.5 and s.params["max_length"] == 128 and s.eval_split == "test" for s in planned)


def test_best_of_a_pareto_front_is_the_best_balanced_accuracy(tmp_path):
    study = made_study(tmp_path, "mo", objectives=("balanced_accuracy", "train_time"))
    dist = {"C": FloatDistribution(0.01, 100, log=True)}
    for c, values in ((1.0, [0.8, 1.0]), (2.0, [0.9, 5.0]), (3.0, [0.7, 9.0])):
        study.add_trial(create_trial(params={"C": c}, distributions=dist, values=values))
    assert tune.best_params_for("mo", None, tmp_path) == ("feature-extract", {"C": 2.0})  # no params attr: by name


@pytest.mark.parametrize("strategy, extra, message", [
    ("lroa", [], "unknown strategy 'lroa'"),
    ("feature-extract", ["--trials", "0"], "--trials 0: give at least 1"),
    ("feature-extract", ["--timeout", "-5"], "--timeout -5.0: give a positive number"),
    ("feature-extract", ["--objectives", "accuracy"], "--objectives 'accuracy': use balanced_accuracy"),
    ("feature-extract", ["--objectives", "balanced_accuracy,train_time,peak_memory"], "optionally with a second"),
    ("feature-extract", ["--study-name", "taken"], "was made with strategy 'full-ft', not 'feature-extract'"),
    ("feature-extract", ["--storage", "nosuchdb://x"], "cannot open Optuna storage"),
])
def test_bad_input_is_one_clear_error(tmp_path, tiny_bert, capsys, strategy, extra, message):
    made_study(tmp_path, "taken", strategy="full-ft")
    assert cli.main(tune_args(tmp_path, tiny_bert, "--trials", "1", *extra, strategy=strategy)) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1


def test_params_from_a_missing_study_says_what_to_do(tmp_path):
    with pytest.raises(BenchError, match=r"no study 'nope' in sqlite:.*; run `bench tune --strategy"):
        tune.best_params_for("nope", None, tmp_path)
    assert not (tmp_path / "optuna.db").exists()  # looking did not create a database
    made_study(tmp_path, "other")
    with pytest.raises(BenchError, match=r"studies there: other"):
        tune.best_params_for("nope", None, tmp_path)

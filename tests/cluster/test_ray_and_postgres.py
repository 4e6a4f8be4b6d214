"""Beyond one machine: the launcher choice, a matrix on a local Ray cluster (the same run
ids and accuracies as the local launcher, a killed worker, Ctrl-C), `bench tune --workers 2` on one
study, and a two-worker study on a PostgreSQL server these tests start (tests/cluster/clusterkit.py)."""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from pathlib import Path

import optuna
import pytest
from optuna.distributions import CategoricalDistribution, FloatDistribution, IntDistribution
from optuna.trial import TrialState

from bench.commands import cli, tune
from bench.commands.tune.study import contains
from bench.core.errors import Stopped
from bench.core.record import Cost, Metrics
from bench.core.records import iter_records, record_path, write_record
from bench.running.results import base_record
from bench.running.runner import Outcome
from tests.cluster.clusterkit import free_port, postgres_server, ray_cluster
from tests.conftest import run_bench

SMALL = ["--per-class", "6,2,4", "-q"]


@pytest.fixture(autouse=True)
def _own_signal_handlers():
    """cli.main installs SIGINT/SIGTERM handlers, and after a stop sets both to ignored: each test
    here starts and ends with the handlers it found, so a later Ctrl-C test still gets its signal."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    # and Python's own handlers while it runs, whatever an earlier test left (cli.main now puts back
    # what it found; before, one that stopped left both ignored and the Ctrl-C tests here hung)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def run_args(results: Path, model: Path, *extra: str, strategies: str = "feature-extract,full-ft") -> list[str]:
    return ["run", "--strategies", strategies, "--model", str(model), "--results-dir", str(results), *SMALL,
            "--no-report", *extra]


def records(results: Path) -> dict[str, dict]:
    return {r.run_id: r.to_dict() for r in iter_records(results)}


# ---------------------------------------------------------------- the launcher flags: bad input

def test_an_unknown_launcher_is_one_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main(["run", "--launcher", "slurm"])
    err = capsys.readouterr().err
    assert stop.value.code == 2 and "invalid choice: 'slurm'" in err and len(err.strip().splitlines()) == 1


@pytest.mark.parametrize("extra, message", [
    (["--address", "auto"], "--address only mean something with --launcher ray"),
    (["--launcher", "ray", "--retries", "-1"], "--retries -1: give 0 or more"),
    (["--launcher", "ray", "--cpus-per-run", "-2"], "--cpus-per-run -2: give a number of at least 0"),
])
def test_bad_launcher_flags_are_one_error_before_anything_runs(tmp_path, tiny_bert, capsys, extra, message):
    assert cli.main(run_args(tmp_path / "r", tiny_bert, *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r").exists()  # nothing written


def test_an_unreachable_ray_cluster_is_one_error_naming_the_fix(tmp_path, tiny_bert, capsys):
    pytest.importorskip("ray")
    address = f"127.0.0.1:{free_port()}"  # nothing listens there
    t0 = time.monotonic()
    assert cli.main(run_args(tmp_path, tiny_bert, "--launcher", "ray", "--address", address)) == 2
    err = capsys.readouterr().err
    assert f"cannot reach Ray at {address}" in err and "ray start --head" in err
    assert len(err.strip().splitlines()) == 1 and time.monotonic() - t0 < 60
    assert not list(iter_records(tmp_path))


def test_ray_not_installed_is_one_error_naming_the_fix(tmp_path, tiny_bert, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now fails as where it is not installed
    assert cli.main(run_args(tmp_path, tiny_bert, "--launcher", "ray")) == 2
    err = capsys.readouterr().err
    assert "--launcher ray needs Ray, which is not installed here: `pip install" in err
    assert len(err.strip().splitlines()) == 1


# ---------------------------------------------------------------- the start probe on public distribution fields

@pytest.mark.parametrize("dist, inside, outside", [
    (FloatDistribution(1e-5, 1e-3, log=True), [1e-5, 2e-4, 1e-3], [1e-2, "x", None]),
    (FloatDistribution(0.0, 0.5, step=0.1), [0.0, 0.3, 0.5], [0.25, 0.6]),
    (IntDistribution(8, 64, step=8), [8, 32, 64], [12, 72, 4]),
    (CategoricalDistribution(["cls", "mean"]), ["cls", "mean"], ["auto", 3]),
])
def test_contains_reads_only_public_distribution_fields(dist, inside, outside):
    assert all(contains(dist, v) for v in inside) and not any(contains(dist, v) for v in outside)


# ---------------------------------------------------------------- --workers N: trial loops on one study (stand-in runs)

def waiting_runner(seconds: float = 0.3, started: list | None = None):
    """run_one stand-in: an ok run after `seconds`, or, once `stop` is set, a cancelled one (Stopped);
    each run's id is appended to `started` as it begins."""
    def run_one(spec, results_dir, quiet=False, secret_env=None, stop=None):
        if started is not None:
            started.append(spec.run_id)
        t0 = time.monotonic()
        while time.monotonic() - t0 < seconds:
            if stop is not None and stop.is_set():
                rec = base_record(spec, "cancelled", "interrupted")
                write_record(record_path(results_dir, spec.run_id), rec)
                raise Stopped(stop.signum, Outcome(spec, "cancelled", rec, 0.1))
            time.sleep(0.05)
        rec = base_record(spec, "ok")
        rec.metrics, rec.cost = Metrics(balanced_accuracy=0.5), Cost(time_s={"train": 1.0})
        write_record(record_path(results_dir, spec.run_id), rec)
        return Outcome(spec, "ok", rec, seconds)

    return run_one


def tune_args(results: Path, model: Path, *extra: str) -> list[str]:
    return ["tune", "--strategy", "feature-extract", "--model", str(model), "--results-dir", str(results), *SMALL,
            "--pruner", "none", *extra]


def test_two_workers_share_one_study_with_unique_trial_numbers(tmp_path, tiny_bert, monkeypatch, capsys):
    monkeypatch.setattr("bench.running.runner.run_one", waiting_runner())
    assert cli.main(tune_args(tmp_path, tiny_bert, "--trials", "6", "--workers", "2")) == 0
    study = optuna.load_study(study_name=f"feature-extract-bbc-news-{tiny_bert}",
                              storage=tune.open_storage(tune.default_storage(tmp_path)))
    assert sorted(t.number for t in study.trials) == list(range(6))
    assert all(t.state == TrialState.COMPLETE for t in study.trials)
    assert {t.user_attrs["worker"].rsplit("/", 1)[1] for t in study.trials} == {"0", "1"}
    assert "[worker 1]" in capsys.readouterr().out


def test_ctrl_c_cancels_every_workers_trial_and_exits_130(tmp_path, tiny_bert, monkeypatch):
    started: list[str] = []
    monkeypatch.setattr("bench.running.runner.run_one", waiting_runner(seconds=120, started=started))

    def interrupt_once_both_run():  # not after a fixed delay: on a loaded machine start-up takes longer
        deadline = time.monotonic() + 90
        while len(started) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=interrupt_once_both_run, daemon=True).start()
    assert cli.main(tune_args(tmp_path, tiny_bert, "--trials", "6", "--workers", "2")) == 130
    study = optuna.load_study(study_name=f"feature-extract-bbc-news-{tiny_bert}",
                              storage=tune.open_storage(tune.default_storage(tmp_path)))
    assert [t.state for t in study.trials] == [TrialState.FAIL, TrialState.FAIL]
    assert sorted(r.status for r in iter_records(tmp_path)) == ["cancelled", "cancelled"]


# ---------------------------------------------------------------- a matrix on a local Ray cluster

@pytest.fixture(scope="module")
def ray_here():
    with ray_cluster(num_cpus=2) as ray:
        yield ray


def worker_pids(run_id: str) -> list[int]:
    """This test's run worker processes (their command line names the run's record), wherever they run."""
    pids = []
    for proc in Path("/proc").iterdir():
        try:
            cmd = (proc / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if b"bench.running.worker" in cmd and any(run_id.encode() in part for part in cmd):
            pids.append(int(proc.name))
    return pids


def kill_when_started(run_id: str, sig: int, delay: float = 0.0, deadline: float = 120) -> threading.Thread:
    def watch() -> None:
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            pids = worker_pids(run_id)
            if pids:
                time.sleep(delay)
                for pid in pids:
                    os.kill(pid, sig)
                return
            time.sleep(0.05)

    thread = threading.Thread(target=watch, daemon=True)
    thread.start()
    return thread


@pytest.mark.slow  # real runs on a real (local) Ray cluster
def test_a_ray_matrix_gives_the_local_launchers_run_ids_and_results(tmp_path, tiny_bert, ray_here, capsys):
    quick = ["--param", "full-ft.epochs=1", "--param", "max_length=32"]  # a trained run, a short one
    assert cli.main(run_args(tmp_path / "local", tiny_bert, *quick)) == 0
    assert cli.main(run_args(tmp_path / "ray", tiny_bert, "--launcher", "ray", *quick)) == 0
    local, on_ray = records(tmp_path / "local"), records(tmp_path / "ray")
    assert sorted(local) == sorted(on_ray) and len(local) == 2
    for run_id, rec in local.items():
        assert on_ray[run_id]["status"] == rec["status"] == "ok"
        assert on_ray[run_id]["metrics"]["accuracy"] == rec["metrics"]["accuracy"]
        assert on_ray[run_id]["predictions"] == rec["predictions"]
    assert "submitted to Ray (1 CPU, 0 GPU)" in capsys.readouterr().out
    # resume: every ok record is skipped, nothing is submitted
    assert cli.main(run_args(tmp_path / "ray", tiny_bert, "--launcher", "ray", *quick)) == 0
    out = capsys.readouterr().out
    assert out.count("skipped (an ok record exists") == 2 and "submitted" not in out


@pytest.mark.slow
def test_a_worker_killed_on_ray_leaves_a_failed_record_and_a_rerun_finishes(tmp_path, tiny_bert, ray_here, capsys):
    from bench.commands.cli import build_parser, experiment_from_args
    from bench.running.plan import plan

    args = run_args(tmp_path, tiny_bert, "--launcher", "ray", "--seeds", "0,1", strategies="feature-extract")
    victim = plan(experiment_from_args(build_parser().parse_args(args)))[0].run_id
    killer = kill_when_started(victim, signal.SIGKILL)
    assert cli.main(args) == 1  # one run failed
    killer.join()
    recs = records(tmp_path)
    assert recs[victim]["status"] == "failed" and "SIGKILL" in recs[victim]["error"]
    assert [r["status"] for k, r in recs.items() if k != victim] == ["ok"]
    capsys.readouterr()
    assert cli.main(args) == 0  # the rerun runs the failed one, skips the finished one
    out = capsys.readouterr().out
    assert out.count("skipped (an ok record exists") == 1
    assert records(tmp_path)[victim]["status"] == "ok"


@pytest.mark.slow
@pytest.mark.timeout(300)  # the run is endless by design: a Ctrl-C that does not land must fail, not hang CI
def test_ctrl_c_on_ray_cancels_the_running_runs_and_keeps_the_rest(tmp_path, tiny_bert, ray_here):
    signal.signal(signal.SIGINT, signal.default_int_handler)  # whatever an earlier test left installed
    from bench.commands.cli import build_parser, experiment_from_args
    from bench.running.plan import plan

    endless = ["--param", "feature-extract.head=mlp", "--param", "feature-extract.epochs=1000000"]
    args = run_args(tmp_path, tiny_bert, "--launcher", "ray", *endless, strategies="feature-extract")
    run_id = plan(experiment_from_args(build_parser().parse_args(args)))[0].run_id
    done = threading.Event()

    def interrupt_once_running() -> None:
        end = time.monotonic() + 120
        while time.monotonic() < end and not done.is_set():
            if worker_pids(run_id):
                time.sleep(3)  # in its training loop by now
                os.kill(os.getpid(), signal.SIGINT)
                return
            time.sleep(0.1)

    threading.Thread(target=interrupt_once_running, daemon=True).start()
    t0 = time.monotonic()
    try:
        assert cli.main(args) == 130
    finally:
        done.set()
    rec = records(tmp_path)[run_id]
    assert rec["status"] == "cancelled" and "interrupted (Ctrl-C, SIGINT)" in rec["error"]
    assert time.monotonic() - t0 < 100
    # the cancelled worker goes down too; on a loaded machine it may take a few seconds to exit
    end = time.monotonic() + 20
    while worker_pids(run_id) and time.monotonic() < end:
        time.sleep(0.5)
    assert not worker_pids(run_id)


# ---------------------------------------------------------------- a two-worker study on PostgreSQL

@pytest.mark.slow  # a real server and real trials
def test_two_workers_tune_one_study_on_postgresql_and_its_best_reruns(tmp_path, tiny_bert):
    with postgres_server() as url:
        password = url.split(":")[2].split("@")[0]
        tuned = run_bench(*tune_args(tmp_path, tiny_bert, "--trials", "2", "--workers", "2", "--storage", url,
                                     "--study-name", "pg-study"))
        assert tuned.returncode == 0, tuned.stdout + tuned.stderr
        study = optuna.load_study(study_name="pg-study", storage=tune.open_storage(url))
        numbers = [t.number for t in study.trials]
        assert sorted(numbers) == [0, 1]  # no number twice
        assert all(t.state == TrialState.COMPLETE for t in study.trials), study.trials
        assert len({t.user_attrs["worker"] for t in study.trials}) == 2  # both loops took trials
        assert sorted(r.study.trial for r in iter_records(tmp_path)) == [0, 1]
        rerun = run_bench("run", "--strategies", "feature-extract", "--params-from", "pg-study", "--storage", url,
                          "--model", str(tiny_bert), "--results-dir", str(tmp_path / "test"), *SMALL, "--no-report")
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        best = tune.best_trial(study)
        (rec,) = [r.to_dict() for r in iter_records(tmp_path / "test")]
        assert rec["status"] == "ok" and rec["eval_split"] == "test"
        assert all(rec["params"][k] == v for k, v in best.user_attrs["params"].items())
        # the password: never printed, never in a record
        shown = tuned.stdout + tuned.stderr + rerun.stdout + rerun.stderr
        assert password not in shown and "bench:***@127.0.0.1" in shown
        for folder in (tmp_path, tmp_path / "test"):
            assert all(password not in p.read_text() for p in folder.glob("*.json"))

"""Workers forked from the preloaded server (bench/running/preloaded.py): a fork's record, exit code,
output and environment are a fresh worker's; the server holds no secret and follows the
environment; runs forked and fresh give the same figures. Its signals and parent-death are in
tests/faults/test_processes.py (both kinds of worker)."""

from __future__ import annotations

import json
import os
import signal

import pytest

from bench.core.records import iter_records, read_record, record_path
from bench.running import preloaded, runner
from bench.running.config import RunSpec
from tests.conftest import run_bench


@pytest.fixture(scope="module")
def server():
    s = preloaded.Server()
    yield s
    s.close()


def spawn(server, folder, strategy="tfidf", extra_env=None, send=True):
    spec = RunSpec(strategy, "none", "bbc-news", {}, [5, 2, 5], "pool", 0, {}, "cpu")
    out = record_path(folder, spec.run_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    proc = server.spawn(str(out), runner.worker_env(False, extra_env), secret_keys=set(extra_env or ()))
    if send:
        proc.stdin.write((json.dumps(spec.to_dict()) + "\n").encode())
    return proc, out


def test_a_forked_worker_writes_its_record_and_its_exit_code_comes_back(server, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the worker works where its parent is now, not where the server started
    proc, out = spawn(server, "results")
    assert proc.wait(timeout=300) == 0 and proc.poll() == 0
    rec = read_record(tmp_path / out)
    assert rec.status == "ok" and rec.env["worker_start"] == "forked" and 0 <= rec.metrics.accuracy <= 1


def test_a_forked_worker_says_its_error_on_the_callers_stderr_and_records_it(server, tmp_path, capfd):
    proc, out = spawn(server, tmp_path, strategy="no-such-strategy")
    assert proc.wait(timeout=120) == 1
    assert "error:" in capfd.readouterr().err and "no-such-strategy" in read_record(out).error


def test_a_killed_fork_reports_sigkill_and_one_whose_parent_pipe_closes_exits(server, tmp_path):
    proc, _ = spawn(server, tmp_path, send=False)
    proc.kill()
    assert proc.wait(timeout=30) == -signal.SIGKILL
    proc, out = spawn(server, tmp_path, send=False)
    proc.stdin.close()  # what the parent's death looks like from the worker: EOF before its spec
    assert proc.wait(timeout=30) == 1 and not out.exists()


class InterruptedOnce:
    """The server's socket, with Ctrl-C arriving in the first wait for the server's reply."""

    def __init__(self, sock):
        self.sock, self.interrupted = sock, False

    def __getattr__(self, name):
        return getattr(self.sock, name)

    def recv(self, size):
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt
        return self.sock.recv(size)


def test_a_spawn_interrupted_before_its_reply_leaves_the_next_one_its_own_worker(server, tmp_path):
    spawn(server, tmp_path / "warm")[0].wait(timeout=300)  # the server is up
    server._sock = InterruptedOnce(server._sock)
    with pytest.raises(KeyboardInterrupt):
        spawn(server, tmp_path / "a")
    proc, out = spawn(server, tmp_path / "b")  # its reply comes after the unread one
    assert proc.wait(timeout=300) == 0 and read_record(out).status == "ok"
    server._sock = server._sock.sock


def test_the_server_holds_no_secret_and_restarts_when_the_environment_changes(server, tmp_path, monkeypatch):
    url = "postgresql://user:s3cret-pw@localhost/studies"
    proc, _ = spawn(server, tmp_path / "a", extra_env={"FTBENCH_OPTUNA_STORAGE": url})
    assert proc.wait(timeout=300) == 0
    first = server._proc.pid
    with open(f"/proc/{first}/environ", "rb") as fh:
        assert b"s3cret-pw" not in fh.read()
    proc, _ = spawn(server, tmp_path / "b")
    assert proc.wait(timeout=300) == 0 and server._proc.pid == first  # the same environment: the same server
    monkeypatch.setenv("HF_DATASETS_CACHE", str(tmp_path / "datasets"))  # read by datasets on import
    proc, _ = spawn(server, tmp_path / "c")
    assert proc.wait(timeout=300) == 0 and server._proc.pid != first


def test_only_model_runs_without_bitsandbytes_on_cpu_suit(monkeypatch):
    def spec(strategy, device="auto"):
        return RunSpec(strategy, "minilm", "bbc-news", {}, [5, 2, 5], "pool", 0, {}, device)

    assert preloaded.suits(spec("lora")) and preloaded.suits(spec("full-ft", "cpu"))
    assert not preloaded.suits(spec("qlora")) and not preloaded.suits(spec("tfidf"))
    assert not preloaded.suits(spec("lora", "cuda")) and not preloaded.suits(spec("a-plugin-not-loaded"))
    monkeypatch.setenv("FTBENCH_PRELOAD", "off")
    assert not preloaded.suits(spec("lora"))


def test_runs_forked_and_fresh_give_the_same_figures(tmp_path, tiny_bert):
    args = ["run", "--strategies", "full-ft,feature-extract", "--model", str(tiny_bert), "--per-class", "6,2,4",
            "--param", "epochs=2", "--param", "max_length=32", "--no-report"]
    by_kind = {}
    for kind in ("off", "on"):
        out = run_bench(*args, "--results-dir", str(tmp_path / kind), env={"FTBENCH_PRELOAD": kind})
        assert out.returncode == 0, out.stderr[-2000:]
        by_kind[kind] = {r.strategy: r for r in iter_records(tmp_path / kind)}
    for strategy, fresh in by_kind["off"].items():
        forked = by_kind["on"][strategy]
        assert (fresh.env["worker_start"], forked.env["worker_start"]) == ("fresh", "forked")
        assert forked.predictions == fresh.predictions and forked.metrics.accuracy == fresh.metrics.accuracy
        assert [h.get("train_loss") for h in forked.history] == [h.get("train_loss") for h in fresh.history]

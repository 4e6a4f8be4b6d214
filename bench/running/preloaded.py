"""Workers forked from one process that imported torch, transformers and peft once (a fork server).

A fresh worker spends ~10-13 s of a 2-core CPU importing its libraries; a comparison or a tuning
study starts dozens of workers. When one `bench` process expects two or more runs that suit it
(`expect`), it starts this server once: `python -m bench.running.preloaded FD` imports the
libraries, then forks one child per run. The child is the usual worker (bench/running/worker.py
`main`, its spec on stdin) with the parent's stdin pipe, stdout, stderr, working folder and
environment of the moment, so what a worker promises holds: a process of its own, a record for
every outcome it lives to see, SIGINT and SIGTERM cancel it, and it dies with `bench` (the server
exits when the parent's socket closes, each child has SIGKILL as its parent-death signal, and the
stdin watch ties it to `bench` itself).

Fresh workers (`FTBENCH_PRELOAD=off` for all) remain for runs that use bitsandbytes (the server
hides it, as workers that never quantize do), strategies without a model, the Ray launcher, and
machines with a GPU: CUDA cannot be used in a process forked after it initialised. Both kinds
import the same libraries before the run's clock starts (`import_shared`), so run times compare;
a record's `env.worker_start` says which kind ran it. Peak memory differs a little: a forked
worker's counts the library pages its run touches, a fresh one's also those only its imports
touched (about 90 MB more for torch, transformers and peft)."""

from __future__ import annotations

import atexit
import json
import os
import select
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

from bench.core.switches import switch

PRELOAD_ENV = "FTBENCH_PRELOAD"
GPU_NODES = ("/dev/nvidiactl", "/dev/kfd")  # an NVIDIA or AMD driver: runs may initialise CUDA / ROCm
PER_RUN_ENV = ("FTBENCH_QUIET", "FTBENCH_PARENT_PID")  # what differs between the runs of one bench process
MAX_MESSAGE = 1 << 20
# imported before the run's clock starts in either kind of worker (the energy meter's start, a trial's
# storage), so only the server needs them: a fresh worker that does not use them never pays for them
SERVER_ONLY = ("codecarbon", "optuna", "bench.running.study_storage")


# --- the parent's side ------------------------------------------------------------------------------

_expected = 0  # the most runs that suit a preloaded worker this process has said it will start


def expect(count: int) -> None:
    """Say how many runs that `suits` this process is about to start; two or more start the server
    (one would pay its imports with nothing to share them with)."""
    global _expected
    _expected = max(_expected, count)


def mode() -> str:
    """$FTBENCH_PRELOAD: on (the default: where several runs suit), off, or always (even one run:
    the tests of the forked path, and timing it)."""
    value = switch(PRELOAD_ENV)
    return value if value in ("off", "always") else "on"


def suits(spec) -> bool:
    """Whether `spec`'s worker may be forked from the preloaded server."""
    if mode() == "off":
        return False
    if spec.device not in ("auto", "cpu") or any(Path(p).exists() for p in GPU_NODES):
        return False
    try:
        from strategies import get_strategy

        strategy = get_strategy(spec.strategy)
    except Exception:  # noqa: BLE001 - a plugin strategy the parent cannot see: start it fresh
        return False
    return bool(strategy.uses_model) and not strategy.uses_bitsandbytes


def wanted(spec) -> bool:
    return (_expected >= 2 or mode() == "always") and suits(spec)


class ForkedWorker:
    """The part of subprocess.Popen that runner.run_one uses, for a worker the server forked: its
    exit code comes back on a pipe of its own (it is the server's child, not ours)."""

    def __init__(self, pid: int, stdin_fd: int, status_fd: int):
        self.pid = pid
        self.stdin = os.fdopen(stdin_fd, "wb", buffering=0)
        self._status = status_fd
        self.returncode: int | None = None

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            poller = select.poll()  # not select(): a busy parent's descriptors may pass FD_SETSIZE
            poller.register(self._status, select.POLLIN)
            if not poller.poll(None if timeout is None else max(0, int(timeout * 1000))):
                raise subprocess.TimeoutExpired("bench.running.worker", timeout)
            data = os.read(self._status, 64)
            os.close(self._status)
            # no code: the server died, and its children with it (their parent-death signal)
            self.returncode = int(data) if data.strip() else -signal.SIGKILL
        return self.returncode

    def poll(self) -> int | None:
        try:
            return self.wait(0)
        except subprocess.TimeoutExpired:
            return None

    def send_signal(self, signum: int) -> None:
        if self.poll() is None:  # never signal a pid the server has reaped (it may be reused)
            os.kill(self.pid, signum)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class Server:
    """The parent's handle on its fork server: started on first use, again when the environment it
    was started with has changed (libraries read some of it on import; the old server's running
    workers go with it, which only in-process callers that change os.environ between runs meet),
    shut down at exit."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._sock: socket.socket | None = None
        self._env: dict | None = None
        self._asked = 0  # requests sent: a reply names its request, so one left unread by Ctrl-C is skipped

    def spawn(self, record_path: str, env: dict, secret_keys=()) -> ForkedWorker:
        """Fork a worker for `record_path` with `env` (the environment a fresh worker would get);
        `secret_keys` of it reach that worker alone, never the server's own environment."""
        stdin_r, stdin_w = os.pipe()
        status_r, status_w = os.pipe()
        try:
            with self._lock:
                self._ensure({k: v for k, v in env.items() if k not in PER_RUN_ENV and k not in secret_keys})
                self._asked += 1
                message = json.dumps({"id": self._asked, "record": record_path, "env": env,
                                      "cwd": os.getcwd()}).encode()
                pid = None
                try:
                    socket.send_fds(self._sock, [message], [stdin_r, 1, 2, status_w])
                    while pid is None:
                        reply = self._sock.recv(MAX_MESSAGE)  # after the server's imports, on the first run
                        if not reply:
                            break
                        answer = json.loads(reply)
                        if answer["id"] == self._asked:
                            pid = answer["pid"]
                except OSError:
                    pass
                if pid is None:
                    self._stop()
                    raise OSError("the preloaded worker server exited")
        except BaseException:
            for fd in (stdin_w, status_r):
                os.close(fd)
            raise
        finally:
            for fd in (stdin_r, status_w):  # the server holds its copies
                os.close(fd)
        return ForkedWorker(pid, stdin_w, status_r)

    def _ensure(self, base: dict) -> None:
        if self._proc is not None and (self._proc.poll() is not None or base != self._env):
            self._stop()
        if self._proc is None:
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
            try:
                self._proc = subprocess.Popen([sys.executable, "-m", "bench.running.preloaded", str(theirs.fileno())],
                                              stdin=subprocess.DEVNULL, pass_fds=(theirs.fileno(),), env=base)
            finally:
                theirs.close()
            self._sock, self._env = ours, base

    def _stop(self) -> None:
        """Close the socket (the server exits on its EOF) and reap it."""
        if self._sock is not None:
            self._sock.close()
        if self._proc is not None:
            try:
                self._proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        self._proc = self._sock = self._env = None

    def close(self) -> None:
        with self._lock:
            self._stop()


SERVER = Server()
atexit.register(SERVER.close)


# --- the server's side --------------------------------------------------------------------------------

def preload() -> None:
    from bench.engine.four_bit import hide_bitsandbytes
    from bench.running.shared_imports import import_shared
    from bench.running.worker import quiet_library_noise

    hide_bitsandbytes()  # the runs forked from here are those that never quantize
    quiet_library_noise()
    import_shared(SERVER_ONLY)


def serve(sock: socket.socket) -> None:
    """Fork a worker per request until the parent's socket closes; report each one's exit code."""
    sigint = signal.getsignal(signal.SIGINT)  # a background bench's workers keep ignoring SIGINT
    # the parent and each worker act on Ctrl-C and SIGTERM; we live as long as the parent's socket
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    children: dict[int, int] = {}  # pid -> the write end of its exit-code pipe
    while True:
        _reap(children)
        ready, _, _ = select.select([sock], [], [], 0.05 if children else None)
        if not ready:
            continue
        message, fds, _, _ = socket.recv_fds(sock, MAX_MESSAGE, 4)
        if not message:
            return  # the parent is gone or done; our children die with us (their parent-death signal)
        request = json.loads(message)
        pid = os.fork()
        if pid == 0:
            sock.close()
            for fd in children.values():
                os.close(fd)
            _child(request, fds, sigint)
        children[pid] = fds[3]
        for fd in fds[:3]:
            os.close(fd)
        sock.send(json.dumps({"id": request["id"], "pid": pid}).encode())


def _reap(children: dict[int, int]) -> None:
    while children:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return
        if pid == 0:
            return
        fd = children.pop(pid, None)
        if fd is None:
            continue
        try:
            os.write(fd, f"{os.waitstatus_to_exitcode(status)}\n".encode())
        except OSError:  # its parent stopped waiting for it (Ctrl-C while it was being forked)
            pass
        os.close(fd)


def _child(request: dict, fds: list[int], sigint) -> None:
    """The forked worker: the parent's stdio and environment of the moment, then the worker's main."""
    code = 1
    try:
        for target, fd in enumerate(fds[:3]):
            os.dup2(fd, target)
        for fd in fds:
            os.close(fd)
        signal.signal(signal.SIGINT, sigint)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        # tie_to_parent checks the parent it was forked by: this server, which lives as long as bench
        os.environ.update(request["env"], FTBENCH_PARENT_PID=str(os.getppid()), FTBENCH_WORKER_START="forked")
        from bench.running.worker import main

        code = main(["-", request["record"]]) or 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else 1
    except BaseException:  # noqa: BLE001 - main records every run's outcome; this is a bug of ours
        import traceback

        traceback.print_exc()
    finally:
        try:
            atexit._run_exitfuncs()  # what a worker's interpreter exit would have run
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)


def main(argv: list[str] | None = None) -> None:
    argv = sys.argv[1:] if argv is None else argv
    sock = socket.socket(fileno=int(argv[0]))
    preload()
    serve(sock)


if __name__ == "__main__":
    main()

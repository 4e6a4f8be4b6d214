"""What a launcher is: the thing that executes runs somewhere and hands their records back.

The driver (bench/running/matrix.py for `bench run`, the trial loops of `bench tune`) plans the runs,
decides what to skip, claims them and logs them; a launcher only says where and how many at once the
runs execute, and sees that every record lands in the results folder. Every launcher executes a run
the same way: `bench.running.worker` in its own subprocess (`runner.run_one`), so a record means the
same whatever ran it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.running.config import RunSpec
from bench.running.runner import Outcome, StopFlag


@dataclass(frozen=True)
class LaunchOptions:
    """The launcher flags of `bench run` and `bench tune`; a launcher ignores those it has no use for."""

    address: str | None = None  # a cluster to join (ray: auto, HOST:PORT or ray://HOST:PORT); None: this machine
    cpus_per_run: float | None = None  # what one run asks the cluster for; None: the launcher's default
    gpus_per_run: float | None = None
    retries: int = 1  # times a run whose node or worker process died is started again


class Launcher(ABC):
    name: str = ""
    description: str = ""

    def __init__(self, options: LaunchOptions):
        self.options = options

    def run_matrix(self, specs: list[RunSpec], results_dir: str | Path, force: bool = False, quiet: bool = False,
                   log=print) -> list[Outcome]:
        """Every spec whose `ok` record is missing (all of them with `force`), through the one driver;
        Ctrl-C / SIGTERM cancels what runs, keeps what finished, and propagates."""
        from bench.running.matrix import run_matrix

        return run_matrix(self, specs, results_dir, force=force, quiet=quiet, log=log)

    @abstractmethod
    def start(self, spec: RunSpec, results_dir: str | Path, quiet: bool) -> Any:
        """Begin one run; returns a ticket that `finished` and `cancel` know. A launcher that runs one
        at a time may run it to its end here (a Stopped raised meanwhile carries the cancelled outcome)."""

    @abstractmethod
    def finished(self, tickets: list, timeout: float) -> list[tuple[Any, Outcome]]:
        """The runs among `tickets` that have ended (their records written), waiting up to `timeout` s
        for at least one."""

    def cancel(self, tickets: list, signum: int) -> list[tuple[Any, Outcome]]:
        """Cancel the runs among `tickets` still going; their outcomes, records written. None by
        default: a launcher whose `start` waits has nothing left to cancel."""
        return []

    def starting(self, spec: RunSpec) -> str:
        """What the log says as a run starts, after its numbered label."""
        return " ..."

    @abstractmethod
    def run_one(self, spec: RunSpec, results_dir: str | Path, quiet: bool = False, secret_env: dict | None = None,
                stop: StopFlag | None = None) -> Outcome:
        """One run, waited for (a tuning trial). `secret_env` reaches the worker's environment only;
        a set `stop` cancels it as Ctrl-C would (raises errors.Stopped with the cancelled outcome)."""

    def close(self) -> None:
        """Let go of whatever the launcher started or joined."""

    def __enter__(self) -> "Launcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""What a launcher is: the thing that executes runs somewhere and hands their records back.

The driver (`bench run`, `bench tune`) plans the runs, decides what to skip, claims them and writes
every record into the results folder itself; a launcher only says where and how many at once the
runs execute. Every launcher executes a run the same way: `bench.running.worker` in its own
subprocess (`runner.run_one`), so a record means the same whatever ran it."""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path

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

    @abstractmethod
    def run_matrix(self, specs: list[RunSpec], results_dir: str | Path, force: bool = False, quiet: bool = False,
                   log=print) -> list[Outcome]:
        """Every spec whose `ok` record is missing (all of them with `force`), as many at once as the
        launcher runs; Ctrl-C / SIGTERM (KeyboardInterrupt) cancels what runs, keeps what finished, and
        propagates."""

    @abstractmethod
    def run_one(self, spec: RunSpec, results_dir: str | Path, quiet: bool = False, secret_env: dict | None = None,
                stop: StopFlag | None = None) -> Outcome:
        """One run, waited for (a tuning trial). `secret_env` reaches the worker's environment only;
        a set `stop` cancels it as Ctrl-C would (raises runner.Interrupted with the cancelled outcome)."""

    def close(self) -> None:
        """Let go of whatever the launcher started or joined."""

    def __enter__(self) -> "Launcher":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

"""`--launcher local` (the default): one worker subprocess per run on this machine, in order
(`bench.running.runner.run_one`, each run waited for)."""

from __future__ import annotations

from pathlib import Path

from bench.running import runner
from bench.running.config import RunSpec
from bench.running.launchers.base import Launcher
from bench.running.runner import Outcome, StopFlag


class LocalLauncher(Launcher):
    name = "local"
    description = "one run at a time on this machine, each in its own subprocess (the default)"

    def start(self, spec: RunSpec, results_dir: str | Path, quiet: bool) -> "Ended":
        return Ended(runner.run_one(spec, results_dir, quiet=quiet))  # run to its end

    def finished(self, tickets: list, timeout: float) -> list[tuple["Ended", Outcome]]:
        return [(ticket, ticket.outcome) for ticket in tickets]

    def run_one(self, spec: RunSpec, results_dir: str | Path, quiet: bool = False, secret_env: dict | None = None,
                stop: StopFlag | None = None) -> Outcome:
        # looked up at call time, so a test's stand-in for runner.run_one is what runs
        return runner.run_one(spec, results_dir, quiet=quiet, secret_env=secret_env, stop=stop)


class Ended:
    """The ticket of a run that `start` ran to its end."""

    __slots__ = ("outcome",)

    def __init__(self, outcome: Outcome):
        self.outcome = outcome

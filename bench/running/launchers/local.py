"""`--launcher local` (the default): one worker subprocess per run on this machine, in order --
exactly `bench.running.runner`, which also holds the skip, resume, claim and Ctrl-C handling."""

from __future__ import annotations

from pathlib import Path

from bench.running import runner
from bench.running.config import RunSpec
from bench.running.launchers.base import Launcher
from bench.running.runner import Outcome, StopFlag


class LocalLauncher(Launcher):
    name = "local"
    description = "one run at a time on this machine, each in its own subprocess (the default)"

    def run_matrix(self, specs: list[RunSpec], results_dir: str | Path, force: bool = False, quiet: bool = False,
                   log=print) -> list[Outcome]:
        return runner.run_matrix(specs, results_dir, force=force, quiet=quiet, log=log)

    def run_one(self, spec: RunSpec, results_dir: str | Path, quiet: bool = False, secret_env: dict | None = None,
                stop: StopFlag | None = None) -> Outcome:
        # looked up at call time, so a test's stand-in for runner.run_one is what runs
        return runner.run_one(spec, results_dir, quiet=quiet, secret_env=secret_env, stop=stop)

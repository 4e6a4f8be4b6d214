"""Launchers: where the runs of a matrix or a tuning study execute. One module per launcher and one
line in LAUNCHERS; a Slurm one (submitit) would be a third module with the same two methods
(see launchers/base.py and docs/cluster.md)."""

from __future__ import annotations

import importlib

from bench.core.errors import BenchError, echoed
from bench.running.launchers.base import LaunchOptions, Launcher

# name -> "module:class", imported only when chosen: Ray is not imported by a local run
LAUNCHERS = {
    "local": "bench.running.launchers.local:LocalLauncher",
    "ray": "bench.running.launchers.ray:RayLauncher",
}


def make_launcher(name: str, options: LaunchOptions | None = None) -> Launcher:
    """The launcher `name` with `options`; one clear error for an unknown name or one that cannot start."""
    if name not in LAUNCHERS:
        raise BenchError(f"--launcher {echoed(name)}: use one of {', '.join(LAUNCHERS)}")
    module, cls = LAUNCHERS[name].split(":")
    return getattr(importlib.import_module(module), cls)(options or LaunchOptions())


__all__ = ["LAUNCHERS", "LaunchOptions", "Launcher", "make_launcher"]

"""The launcher flags `bench run` and `bench tune` share, and the launcher they pick."""

from __future__ import annotations

import argparse

from bench.core.errors import BenchError
from bench.running.launchers import LAUNCHERS, LaunchOptions, Launcher, make_launcher


def add_launcher_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument("--launcher", choices=sorted(LAUNCHERS), default="local",
                   help="local: one run at a time here (default); ray: every run a Ray task on whichever node "
                   "has its resources free")
    p.add_argument("--address", help="ray: the cluster to join (auto, HOST:PORT or ray://HOST:PORT); without it "
                   "Ray starts on this machine for this command")
    p.add_argument("--cpus-per-run", type=float, help="ray: CPUs one run asks for (default 1)")
    p.add_argument("--gpus-per-run", type=float, help="ray: GPUs one run asks for (default 1 on cuda, else 0)")
    p.add_argument("--retries", type=int, default=1, help="ray: times a run whose worker or node died is started "
                   "again before it is recorded failed (default 1)")


def check_launcher_flags(args) -> None:
    """Bad launcher flags are one error before anything is written or started."""
    if args.launcher == "local":
        ray_only = [f"--{flag.replace('_', '-')}" for flag in ("address", "cpus_per_run", "gpus_per_run")
                    if getattr(args, flag) is not None]
        if ray_only:
            raise BenchError(f"{', '.join(ray_only)} only mean something with --launcher ray; add it or drop them")
    for flag in ("cpus_per_run", "gpus_per_run"):
        value = getattr(args, flag)
        if value is not None and not 0 <= value < 1e6:
            raise BenchError(f"--{flag.replace('_', '-')} {value:g}: give a number of at least 0")
    if args.retries < 0:
        raise BenchError(f"--retries {args.retries}: give 0 or more")


def launcher_from_args(args) -> Launcher:
    """The launcher, started or joined (Ray): a missing or unreachable Ray is one error."""
    check_launcher_flags(args)
    return make_launcher(args.launcher, LaunchOptions(address=args.address, cpus_per_run=args.cpus_per_run,
                                                      gpus_per_run=args.gpus_per_run, retries=args.retries))

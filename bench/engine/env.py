"""Provenance: what ran where (versions, device, threads, the suite's git commit)."""

from __future__ import annotations

import importlib.metadata
import platform
import subprocess
from pathlib import Path

from bench.core import cpuinfo
from bench.engine.trackers import cpu_threads

RECORDS_IN_TREE = "experiments/records"  # where the repository keeps the records its docs publish

PACKAGES = ("torch", "transformers", "peft", "bitsandbytes", "accelerate", "datasets", "scikit-learn",
            "optuna", "numpy")


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def cpu_name() -> str:
    return cpuinfo.read().model_name or platform.processor() or platform.machine()


def git_commit() -> str | None:
    """The suite's own commit (+dirty), or None where ftbench is not itself a git checkout: git would
    otherwise walk up and report whatever repository encloses the folder it was copied into."""
    root = Path(__file__).resolve().parents[2]
    try:
        top = subprocess.run(["git", "rev-parse", "--show-toplevel"], cwd=root, capture_output=True,
                             text=True, timeout=5)
        if top.returncode != 0 or Path(top.stdout.strip()).resolve() != root:
            return None
        out = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=5)
        # committed run records are data, not code: an experiment re-run into experiments/records/
        # replaces them as it goes, which must not mark its own later runs +dirty
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                f":(exclude){RECORDS_IN_TREE}"], cwd=root, capture_output=True, text=True,
                               timeout=5).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return (out.stdout.strip() + ("+dirty" if dirty else "")) if out.returncode == 0 else None


def environment(device: str) -> dict:
    import torch

    from bench.engine.device import cpu_has_bf16

    env = {"python": platform.python_version(), "platform": platform.platform(),
           **{name: _version(name) for name in PACKAGES},
           "device": device, "cpu": cpu_name(), "cpu_bf16": cpu_has_bf16(), "threads": torch.get_num_threads(),
           "cpus_available": cpu_threads(), "git_commit": git_commit(), "hostname": platform.node()}
    if device.startswith("cuda") and torch.cuda.is_available():
        env["gpu"] = torch.cuda.get_device_name(torch.device(device))
        env["cuda"] = torch.version.cuda
    return env

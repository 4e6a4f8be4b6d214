"""Fixtures of the fault-injection suite."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tests.faults.faultkit import QUICK, bench


@pytest.fixture(scope="session")
def finished(tmp_path_factory) -> Path:
    """A results folder holding one finished (ok) quick run, made once; tests copy it."""
    folder = tmp_path_factory.mktemp("finished") / "results"
    out = bench("run", *QUICK, "--results-dir", str(folder), "--no-report")
    assert out.returncode == 0, out.stderr[-2000:]
    return folder


@pytest.fixture
def copy_finished(finished):
    def copy(to: Path) -> tuple[Path, dict]:
        shutil.copytree(finished, to)
        return to, {p.name: p.read_bytes() for p in to.glob("*.json")}

    return copy

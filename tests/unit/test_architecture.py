"""The layers in pyproject.toml's [tool.importlinter] hold, and breaking one is caught."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]  # the checkout (this file is tests/unit/...)
LINT = [sys.executable, "-c", "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())"]


def lint(cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(cwd)}
    return subprocess.run(LINT, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_are_kept():
    out = lint(ROOT)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 kept, 0 broken" in out.stdout


def copy_tree(dst: Path) -> None:
    for name in ("bench", "strategies", "pyproject.toml"):
        src = ROOT / name
        if src.is_dir():
            shutil.copytree(src, dst / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, dst / name)


def test_an_import_from_a_lower_layer_up_breaks_the_layers_contract(tmp_path):
    copy_tree(tmp_path)
    errors = tmp_path / "bench" / "core" / "errors.py"
    errors.write_text(errors.read_text() + "\nfrom bench.engine import models  # deliberately wrong: core imports engine\n")
    out = lint(tmp_path)
    assert out.returncode != 0
    assert "bench.core.errors -> bench.engine.models" in out.stdout, out.stdout


def test_a_loop_between_siblings_breaks_the_acyclic_contract(tmp_path):
    copy_tree(tmp_path)
    # stats -> metrics and metrics -> stats: both in bench.core, so the layers contract cannot see it
    for a, b in (("stats", "metrics"), ("metrics", "stats")):
        path = tmp_path / "bench" / "core" / f"{a}.py"
        path.write_text(path.read_text() + f"\nfrom bench.core import {b}  # deliberately a loop\n")
    out = lint(tmp_path)
    assert out.returncode != 0
    assert "no import loops between sibling modules BROKEN" in out.stdout, out.stdout

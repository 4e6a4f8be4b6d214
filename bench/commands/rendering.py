"""Rendering the report at the end of a command that ran runs."""

from __future__ import annotations

import sys

from bench.core.errors import BenchError
from bench.core.secrets import mask_secrets


def render_after_runs(results_dir: str, output: str) -> None:
    """The report after a matrix (`bench run`, `bench compare`): a failure to render is one line, never
    the command's failure, since every record is already written."""
    from bench.reporting.report import render_report

    try:
        path = render_report(results_dir, output)
        print(f"report: {path}")
    except BenchError as exc:
        print(f"report not written: {mask_secrets(str(exc))}", file=sys.stderr)
    except OSError as exc:
        print(f"report not written: cannot write {output} ({exc.strerror or exc}); pass -o with a writable path",
              file=sys.stderr)

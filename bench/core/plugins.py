"""Plug-ins from outside the repository: modules named in $FTBENCH_PLUGINS (comma-separated, on
PYTHONPATH) are imported before any registry is read, in the `bench` process and in every worker
(which inherits the variable). A plug-in module adds its lines to the registries itself, e.g.
`strategies.REGISTRY["mine"] = "my_module:Mine"` or `bench.data.sources.REGISTRY["my-data"] = ...`."""

from __future__ import annotations

import importlib
import os

from bench.core.errors import BenchError

ENV_VAR = "FTBENCH_PLUGINS"


def load_plugins() -> list[str]:
    """Import every plug-in module named in $FTBENCH_PLUGINS; one clear error for one that fails."""
    names = [n.strip() for n in os.environ.get(ENV_VAR, "").split(",") if n.strip()]
    for name in names:
        try:
            importlib.import_module(name)
        except ImportError as exc:
            raise BenchError(f"${ENV_VAR}: cannot import plug-in module '{name}' ({exc}); put its folder on "
                             "PYTHONPATH or fix the name") from None
    return names

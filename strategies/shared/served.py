"""What every kind of served model shares: the settings it predicts under (device, precision, a quiet
tracker, so the engine's batched forward loops run as in the run), its `ftbench-model.json`, the bytes
it ships, and `load_served(folder)`, which reads that file and hands the folder to its kind's loader.

The kinds (one module each in strategies/shared/): `classifier` (full-ft, bitfit and every peft
adapter on a sequence classifier), `features` (feature-extract: a frozen encoder and a fitted head),
`prompted` (zero-shot and instruct-ft: a causal LM, its prompt, label words and calibration), `setfit`;
and `tfidf`, whose loader is in strategies/tfidf.py.
"""

from __future__ import annotations

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from bench.core.errors import BenchError

MANIFEST = "ftbench-model.json"
FORMAT = 1  # bumped when what `load` reads changes meaning
# kind -> "module:loader"; a loader takes (folder, manifest, device) and returns a Served
KINDS = {
    "classifier": "strategies.shared.served_classifier:load",
    "features": "strategies.shared.served_features:load",
    "prompted": "strategies.shared.served_prompted:load",
    "setfit": "strategies.shared.served_setfit:load",
    "tfidf": "strategies.tfidf:load",  # its own module: nothing else serves a scikit-learn pipeline
}


@dataclass
class ServeContext:
    """What the engine's forward loops read off a RunContext (device, precision, tracker), for a model
    served outside any run. The tracker is quiet: serving draws no progress bars."""

    device: str = "cpu"
    precision: str = "auto"
    tracker: Any = field(default=None)

    def __post_init__(self) -> None:
        if self.tracker is None:
            from bench.engine.trackers import Tracker

            self.tracker = Tracker(quiet=True)


def serve_context(ctx) -> ServeContext:
    """The run's device and precision, so a served model predicts as the run evaluated."""
    return ServeContext(ctx.device, ctx.precision)


def write_manifest(folder: Path, kind: str, strategy: str, labels: list[str], base: str | None,
                   **load_args: Any) -> None:
    """`ftbench-model.json`: the kind (which loader), the strategy, the frozen base's path (None where
    the folder holds the whole model), the label names and whatever that kind's loader needs."""
    data = {"format": FORMAT, "kind": kind, "strategy": strategy, "base_model": base, "labels": list(labels),
            **load_args}
    (Path(folder) / MANIFEST).write_text(json.dumps(data, indent=2, default=str) + "\n", encoding="utf-8")


def read_manifest(folder: str | Path) -> dict:
    """The folder's `ftbench-model.json`, checked enough to say what is wrong in one line."""
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise BenchError(f"{folder} holds no saved model ({MANIFEST} missing); save one with "
                         "`bench run --save-models`")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BenchError(f"{path} is not readable JSON ({exc}); save the model again with --save-models") from None
    if not isinstance(data, dict) or data.get("kind") not in KINDS:
        kind = data.get("kind") if isinstance(data, dict) else None
        raise BenchError(f"{path}: unknown kind {kind!r}; known: {', '.join(KINDS)}")
    if not isinstance(data.get("format", 0), int):
        raise BenchError(f"{path}: format {str(data['format'])[:40]!r} is not one ftbench writes; save the model "
                         "again with --save-models")
    if data.get("format", 0) > FORMAT:
        raise BenchError(f"{path} was written by a newer ftbench (format {data['format']}); upgrade ftbench")
    base = data.get("base_model")
    if base and Path(base).is_absolute() and not Path(base).exists():
        raise BenchError(f"{path}: its base model {base} is not on this machine; the saved folder references the "
                         "frozen base by path: install it there")
    return data


def load_served(folder: str | Path, device: str = "cpu"):
    """The Served saved in `folder` (by any kind's `save`), on `device`."""
    from bench.engine.four_bit import silence_kernel_notice

    manifest = read_manifest(folder)
    silence_kernel_notice()  # bitsandbytes' notice about a kernel nothing here uses (peft imports it)
    module, name = KINDS[manifest["kind"]].split(":")
    return getattr(importlib.import_module(module), name)(Path(folder), manifest, device)


def base_reference(path: str) -> str:
    """How a saved folder names its frozen base: the absolute path of a local folder, a Hub id as is."""
    return str(Path(path).resolve()) if Path(path).exists() else path


def files_bytes(paths) -> int:
    return sum(Path(p).stat().st_size for p in paths if Path(p).is_file())


def folder_bytes(folder: Path, leave_out: set[str] = frozenset()) -> int:
    """Bytes of the files under `folder`, but those named in `leave_out` (names relative to it)."""
    folder = Path(folder)
    return sum(f.stat().st_size for f in folder.rglob("*")
               if f.is_file() and str(f.relative_to(folder)) not in leave_out)


def checkpoint_bytes(base: str | Path) -> int:
    """A frozen base's size on disk: the files at the top of its folder (weights, config, tokenizer),
    what a deployment of the base holds."""
    path = Path(base)
    if path.is_file():
        return path.stat().st_size
    return sum(f.stat().st_size for f in path.iterdir() if f.is_file()) if path.is_dir() else 0


def save_tokenizer(tokenizer, folder: Path) -> set[str]:
    """The tokenizer's files in `folder`; their names (relative), which are the base's and not
    this run's own bytes where a base is shared."""
    written = tokenizer.save_pretrained(str(folder))
    return {str(Path(p).relative_to(folder)) for p in written if Path(p).is_file()}


def save_logreg(clf, path: Path) -> None:
    """A fitted scikit-learn LogisticRegression as its arrays (safetensors: data, never code, where a
    pickle would run whatever it holds on load)."""
    from safetensors.numpy import save_file

    save_file({"coef": np.ascontiguousarray(clf.coef_), "intercept": np.ascontiguousarray(clf.intercept_),
               "classes": np.asarray(clf.classes_, dtype=np.int64)}, str(path))


def load_logreg(path: Path):
    """The LogisticRegression `save_logreg` wrote: its fitted arrays set back (all predict and
    predict_proba read)."""
    from safetensors.numpy import load_file
    from sklearn.linear_model import LogisticRegression

    arrays = load_file(str(path))
    clf = LogisticRegression()
    clf.coef_, clf.intercept_, clf.classes_ = arrays["coef"], arrays["intercept"], arrays["classes"]
    clf.n_features_in_ = clf.coef_.shape[1]
    return clf


def prepared_folder(folder: Path) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    return folder

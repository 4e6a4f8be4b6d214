"""`--save-models`: an ok run's trained model kept under RESULTS/models/RUN_ID/ (its Served's `save`,
then a MODEL_CARD.md built from the record), written in a hidden folder first and renamed, so a folder
under that name is always whole. A model that cannot be saved costs the run its model, never its
record: the failure is one error line, a warning in the record and `saved_model.error`."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from bench.core.record import Record
from bench.core.records import MODELS_DIR

MODELS = MODELS_DIR  # the record readers skip it
CARD = "MODEL_CARD.md"


def model_folder(results_dir: str | Path, run_id: str) -> Path:
    return Path(results_dir) / MODELS / run_id


def save_run_model(rec: Record, served, results_dir: str | Path) -> dict:
    """Save `served` for the ok record `rec`; what the record's `saved_model` block states (where, how
    many bytes ship, how long saving took), or `{"error": ...}`."""
    final = model_folder(results_dir, rec.run_id)
    if served is None:
        return {"error": f"strategy {rec.strategy} builds no servable model"}
    partial = final.parent / f".{rec.run_id}.partial"
    t0 = time.perf_counter()
    try:
        shutil.rmtree(partial, ignore_errors=True)
        partial.mkdir(parents=True)
        size = served.save(partial)
        block = {"path": f"{MODELS}/{rec.run_id}", "specific_bytes": size.specific_bytes,
                 "base_bytes": size.base_bytes, "total_bytes": size.total_bytes,
                 "save_s": round(time.perf_counter() - t0, 3)}
        (partial / CARD).write_text(model_card(rec, block), encoding="utf-8")
        if final.exists():  # a --force rerun replaces the model of the same run id
            shutil.rmtree(final)
        partial.rename(final)
    except OSError as exc:
        shutil.rmtree(partial, ignore_errors=True)
        return {"error": f"cannot save the model to {final} ({exc.strerror or exc}); the record is kept: free space "
                         "there or pass --results-dir with a writable folder, then rerun with --save-models"}
    except Exception as exc:  # noqa: BLE001 - a library's save failing must not cost the run its record
        shutil.rmtree(partial, ignore_errors=True)
        return {"error": f"saving the model to {final} failed ({type(exc).__name__}: {str(exc)[:200]}); the record "
                         "is kept"}
    return block


def megabytes(n: int | None) -> str:
    if n is None:
        return "?"
    return f"{n / 1e6:.1f} MB" if n >= 1e6 else f"{n / 1e3:.1f} kB"


def size_words(block: dict) -> str:
    """`12.3 MB` or `1.2 MB, with the base (90.9 MB) by reference`."""
    own = megabytes(block.get("specific_bytes"))
    return own + (f", with the base ({megabytes(block['base_bytes'])}) by reference" if block.get("base_bytes") else "")


def model_card(rec: Record, block: dict) -> str:
    """A short card from the record: what was trained on what, how well (with intervals), at what cost."""
    d, m, c = rec.dataset, rec.metrics, rec.cost
    split = d.split if isinstance(d.split, str) else (d.split or {}).get("spec", "?")
    lines = [f"# {rec.strategy} on {d.name} (run {rec.run_id})", "",
             f"- model: {rec.model.name} ({rec.model.source})",
             f"- data: {d.name}, split {split} (seed {rec.seed}): {d.n_train} train, {d.n_val} validation, "
             f"{d.n_test} test rows",
             f"- labels: {', '.join(d.labels or [])}",
             f"- params: {', '.join(f'{k}={v}' for k, v in sorted(rec.params.items())) or 'the defaults'}", "",
             f"## Test metrics ({rec.eval_split} split, 95% bootstrap intervals)", ""]
    ci = (m.ci or {}) if m else {}
    for name in ("accuracy", "balanced_accuracy", "macro_f1"):
        value = getattr(m, name, None) if m else None
        low_high = ci.get(name)
        interval = f" [{low_high[0]:.3f}, {low_high[1]:.3f}]" if isinstance(low_high, list) and len(low_high) == 2 else ""
        lines.append(f"- {name}: {value:.3f}{interval}" if isinstance(value, float) else f"- {name}: not measured")
    time_s = (c.time_s if c else {}) or {}
    total = time_s.get("total")
    lines += ["", "## Cost", "",
              f"- time: {total:.1f} s in all" if isinstance(total, (int, float)) else "- time: not measured",
              f"- peak memory: {c.peak_rss_mb:.0f} MB RSS" if c and c.peak_rss_mb is not None else "- peak memory: ?",
              f"- trainable parameters: {c.trainable_params:,} of {c.total_params:,}" if c and c.trainable_params is not None
              and c.total_params else "- trainable parameters: ?",
              f"- this folder: {size_words(block)}", "",
              "## Use", "",
              f"    bench predict {rec.run_id} --input texts.csv --output predictions.csv",
              "", "`ftbench-model.json` says how the folder loads (strategies.shared.served.load_served); the frozen "
              "base, where there is one, is referenced by path, not copied.", ""]
    return "\n".join(lines)

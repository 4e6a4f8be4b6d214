"""Checks before any model loads of what a model's sequence-classification class can take (prompt
tuning feeds input embeddings, prefix tuning past keys and values), read from its config.json, GGUF
header or random-architecture spec: classes are inspected, never built, and no weights are loaded."""

from __future__ import annotations

import contextlib
import inspect
import json
from pathlib import Path

from bench.core.errors import BenchError


def model_type_of(model_ref) -> str | None:
    """The model's `model_type` without loading weights: a folder's config.json, a GGUF header, or a
    random architecture's spec; None where it cannot be had cheaply (a Hub id not yet cached)."""
    extra = getattr(model_ref, "extra", {}) or {}
    if extra.get("random_weights"):
        from bench.engine.models import RANDOM_ARCHITECTURES

        return RANDOM_ARCHITECTURES.get(extra.get("architecture_name"), {}).get("model_type")
    source = Path(str(getattr(model_ref, "source", "")))
    if getattr(model_ref, "gguf", False) and source.is_file():
        from bench.engine.models import gguf_metadata_value

        return gguf_metadata_value(source, "general.architecture")  # None: unreadable, left to the load
    config = source / "config.json"
    if config.is_file():
        with contextlib.suppress(OSError, ValueError):
            return json.loads(config.read_text()).get("model_type")
    return None


def forward_arguments(model_type: str, strategy: str) -> set[str]:
    """The arguments that reach the backbone of `model_type`'s sequence-classification model: those of
    the classification class's forward, plus the backbone's where the class passes **kwargs on (BERT
    in transformers 5). Classes are inspected, not built; an error where there is no such class.
    Kept per transformers release (bench.engine.memo): inspecting them imports the modeling code, the
    seconds `bench list` and a plan would otherwise spend before any run."""
    import importlib.metadata

    from bench.engine.memo import remembered

    key = [model_type, importlib.metadata.version("transformers")]
    return set(remembered("forward-arguments", key, lambda: sorted(_forward_arguments(model_type, strategy))))


def _forward_arguments(model_type: str, strategy: str) -> set[str]:
    import transformers
    from transformers.models.auto.modeling_auto import (
        MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
        MODEL_MAPPING_NAMES,
    )

    name = MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES.get(model_type)
    cls = getattr(transformers, name, None) if name else None
    if cls is None:
        raise BenchError(f"{strategy}: transformers has no sequence-classification model for model_type "
                         f"'{model_type}'; use a model that has one (e.g. --model smollm2 or minilm)")
    arguments = inspect.signature(cls.forward).parameters
    names = {n for n, a in arguments.items() if a.kind is not inspect.Parameter.VAR_KEYWORD}
    backbone = getattr(transformers, str(MODEL_MAPPING_NAMES.get(model_type)), None)
    if backbone is not None and any(a.kind is inspect.Parameter.VAR_KEYWORD for a in arguments.values()):
        names |= set(inspect.signature(backbone.forward).parameters)
    return names


def require_forward_argument(model_ref, arguments: tuple[str, ...], strategy: str, why: str) -> None:
    """One error before loading where the model's classification forward takes none of `arguments`
    (one argument's names across transformers releases, newest first)."""
    model_type = model_type_of(model_ref)
    if model_type is None:
        return  # unknown until loaded: wrap_peft's error covers it then
    if not set(arguments) & forward_arguments(model_type, strategy):
        raise BenchError(f"{strategy} cannot do sequence classification with model_type '{model_type}': its "
                         f"classification forward takes no {' or '.join(arguments)} ({why}); use a Llama- or "
                         "BERT-style model (--model smollm2 or minilm), or the strategy lora")

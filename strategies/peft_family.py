"""What the PEFT-family strategies (dora, ia3, prompt-tuning, prefix-tuning, adalora, vera, bitfit,
lora-8bit) share beyond lora's machinery in peft_common: a training-parameters base without LoRA's
rank fields, wrapping a model in any peft config with one clear error, the load-wrap-train sequence,
and the pre-load check that a model's sequence-classification class can take what a method feeds it
(prompt tuning: input embeddings; prefix tuning: past key/values)."""

from __future__ import annotations

import contextlib
import inspect
import json
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import BenchError
from bench.engine.compat import peft_calls
from bench.engine.context import RunContext
from bench.engine.four_bit import import_bitsandbytes
from bench.engine.kernels import apply_speed_params, load_kwargs
from bench.engine.training import TrainParams, retuned
from strategies.common import TrainedStrategy, load_classifier, load_tokenizer
from strategies.peft_common import adapter_cost, classifier_head_names


# SWEEPS: the family's learning rates were chosen by the validation accuracy (100 rows; ties by
# validation loss) of one-epoch runs (bitfit: two) on the default BBC News split, seed 0, a quiet
# 2-core CPU, 2026-11-23: `bench run --strategies NAME --param NAME.lr=X --seeds 0`. Each module's
# Params docstring gives its figures; the README's PEFT-family table gives the test results of the
# chosen defaults. dora and lora-8bit keep lora's measured defaults. `bench tune --strategy NAME`
# searches each method's whole space.


@dataclass
class AdapterTrainParams(TrainParams):
    """The shared training fields at lora's measured CPU defaults (lr 3e-3, 64 tokens, 1 epoch);
    subclasses give their own with `retuned`."""

    lr: float = retuned("lr", 3e-3)
    max_length: int = retuned("max_length", 64)


def training_search_space(trial, lr_low: float, lr_high: float, max_epochs: int = 3) -> dict:
    """lr (log scale), epochs and warmup: the part of every family member's search space."""
    return {"lr": trial.suggest_float("lr", lr_low, lr_high, log=True),
            "epochs": trial.suggest_int("epochs", 1, max_epochs),
            "warmup_ratio": trial.suggest_float("warmup_ratio", 0.0, 0.2)}


def wrap_peft(model, config, strategy: str, log=print):
    """`get_peft_model(model, config)`, with the classification head trained in full
    (modules_to_save), as one clear error where peft cannot place the method on this model."""
    import_bitsandbytes()  # first, quietly: peft imports it on its own import
    from peft import get_peft_model

    heads = classifier_head_names(model)
    if hasattr(config, "modules_to_save"):
        config.modules_to_save = list(heads)  # a copy: peft appends its own default names for SEQ_CLS
    model.config.use_cache = False  # training: no key/value cache to keep
    try:
        with peft_calls():
            peft_model = get_peft_model(model, config)
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise BenchError(f"{strategy}: peft cannot apply {type(config).__name__} to this model "
                         f"({str(exc).splitlines()[0][:200]}); try another --model or target_modules") from None
    trainable, total = peft_model.get_nb_trainable_parameters()
    log(f"{strategy}: {type(config).__name__} placed; {trainable:,} of {total:,} parameters train "
        f"(head in full: {heads})")
    return peft_model


def load_base(ctx: RunContext, p: AdapterTrainParams):
    """The tokenizer and the sequence-classification model (fresh head), frozen base in lora's dtype."""
    from strategies.lora import frozen_dtype

    path = ctx.model_path()
    tokenizer = load_tokenizer(path)
    model = load_classifier(path, ctx, tokenizer, dtype=frozen_dtype(ctx), **load_kwargs(p)).to(ctx.device)
    return model, tokenizer


class PeftMethod(TrainedStrategy):
    """A peft method on the shared training loop: a member says which peft config to place
    (`peft_config`); the base is loaded, wrapped (head trained in full) and trained as every
    TrainedStrategy is, and the record gets the adapter's bytes on disk."""

    flops_kind = "adapter"

    def peft_config(self, ctx: RunContext, p, model):
        raise NotImplementedError

    def build(self, ctx: RunContext, p):
        import_bitsandbytes()  # first, quietly: peft_config imports peft, which imports it
        model, tokenizer = load_base(ctx, p)
        model = wrap_peft(model, self.peft_config(ctx, p, model), self.name, log=ctx.tracker.log)
        return apply_speed_params(model, p, log=ctx.tracker.log), tokenizer

    def extra_cost(self, model) -> dict:
        return adapter_cost(model)


# ---------------------------------------------------------------- checks before any model loads


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
    from transformers.models.auto.modeling_auto import (MODEL_FOR_SEQUENCE_CLASSIFICATION_MAPPING_NAMES,
                                                         MODEL_MAPPING_NAMES)

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

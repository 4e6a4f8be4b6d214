"""Placing a peft adapter on a frozen base: the one way every adapter strategy does it (lora, qlora,
lora-8bit and the PEFT family; instruct-ft on a causal LM). A strategy subclasses `AdapterStrategy`
and says only which base to load (`base`: "full", "4bit" or "8bit", bases.py) and which peft config to
place (`peft_config`); the classification head trains in full (modules_to_save)."""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from bench.core.errors import BenchError
from bench.engine.compat import peft_calls, prefix_tuning_through_cache
from bench.engine.context import RunContext
from bench.engine.four_bit import import_bitsandbytes
from bench.engine.kernels import apply_speed_params
from bench.engine.training import TrainParams, retuned
from strategies.shared.bases import load_base, require_bitsandbytes
from strategies.shared.trained import Built, TrainedStrategy, classifier_head_names

# Attention projections by naming family, tried in order: Llama/Mistral/Qwen-like decoders, then
# BERT-like encoders. A model with neither falls back to peft's own per-model_type defaults.
ATTENTION_PROJECTIONS = (("q_proj", "k_proj", "v_proj", "o_proj"), ("query", "key", "value"))


@dataclass
class AdapterTrainParams(TrainParams):
    """The shared training fields at lora's CPU defaults (lr 3e-3, 64 tokens, 1 epoch); subclasses
    give their own with `retuned`."""

    lr: float = retuned("lr", 3e-3)
    max_length: int = retuned("max_length", 64)


def training_search_space(trial, lr_low: float, lr_high: float, max_epochs: int = 3) -> dict:
    """lr (log scale), epochs and warmup: the part of every adapter method's search space."""
    return {"lr": trial.suggest_float("lr", lr_low, lr_high, log=True),
            "epochs": trial.suggest_int("epochs", 1, max_epochs),
            "warmup_ratio": trial.suggest_float("warmup_ratio", 0.0, 0.2)}


def target_module_list(value) -> list[str] | None:
    """target_modules as given in YAML (a list) or on the command line ("q_proj,v_proj")."""
    if value is None:
        return None
    names = value.split(",") if isinstance(value, str) else value
    if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
        raise BenchError(f"target_modules {value!r}: give module names, e.g. [q_proj, v_proj] or q_proj,v_proj")
    names = [n.strip() for n in names if n.strip()]
    if not names:
        raise BenchError("target_modules is empty: name at least one module, or leave it unset for the default")
    return names


def default_target_modules(model) -> list[str] | None:
    """The attention projections present among the model's linear layers (k-bit ones included:
    bitsandbytes' Linear4bit and Linear8bitLt subclass nn.Linear); None lets peft pick by model_type."""
    import torch

    leaves = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
              if isinstance(module, torch.nn.Linear)}
    for family in ATTENTION_PROJECTIONS:
        if set(family) <= leaves:
            return list(family)
    return None


def place_adapter(model, config, strategy: str, log=print):
    """`get_peft_model(model, config)` as one clear error where peft cannot place the method on this
    model. On a sequence classifier the head trains in full (modules_to_save); a causal LM keeps its
    LM head frozen (it writes the label with the vocabulary it has)."""
    import_bitsandbytes()  # first, quietly: peft imports it on its own import
    from peft import PeftType, TaskType, get_peft_model

    heads = classifier_head_names(model) if config.task_type == TaskType.SEQ_CLS else []
    if heads and hasattr(config, "modules_to_save"):
        config.modules_to_save = list(heads)  # a copy: peft appends its own default names for SEQ_CLS
    model.config.use_cache = False  # training: no key/value cache to keep
    try:
        with peft_calls():
            peft_model = get_peft_model(model, config)
    except (ValueError, TypeError, NotImplementedError) as exc:
        raise BenchError(f"{strategy}: peft cannot place {type(config).__name__} on this model "
                         f"({str(exc).splitlines()[0][:200]}); set target_modules to this model's linear layer "
                         f"names (e.g. --param {strategy}.target_modules=q_proj,v_proj) or use another --model"
                         ) from None
    if config.peft_type == PeftType.PREFIX_TUNING:
        prefix_tuning_through_cache(peft_model)
    trainable, total = peft_model.get_nb_trainable_parameters()
    targets = getattr(peft_model.peft_config["default"], "target_modules", None)
    where = f" on {sorted(targets)}" if targets else ""
    log(f"{strategy}: {type(config).__name__}{where}; {trainable:,} of {total:,} parameters train"
        + (f" (head in full: {heads})" if heads else ""))
    return peft_model


def adapter_bytes(peft_model) -> int:
    """Bytes that save_pretrained writes for the adapter and the trained head (the model card
    README peft adds is left out: it is not part of the adapter)."""
    with tempfile.TemporaryDirectory(prefix="ftbench-adapter-") as folder, warnings.catch_warnings():
        # adalora prunes some matrices to rank 0, which peft takes for unsharded ZeRO-3/FSDP tensors
        warnings.filterwarnings("ignore", message=r".*LoRA tensor\(s\) have invalid shape")
        peft_model.save_pretrained(folder)
        return sum(f.stat().st_size for f in Path(folder).rglob("*") if f.is_file() and f.name != "README.md")


def adapter_cost(peft_model) -> dict:
    """The cost figures an adapter strategy adds: its size on disk."""
    return {"adapter_bytes": adapter_bytes(peft_model)}


class AdapterStrategy(TrainedStrategy):
    """A peft adapter on a frozen base, trained with the shared loop."""

    flops_kind = "adapter"
    base: ClassVar[str] = "full"  # which frozen base to load: a key of bases.BASES

    @property
    def uses_bitsandbytes(self) -> bool:  # type: ignore[override]  # only a quantized base does
        return self.base != "full"

    def check(self, params: Any, model: Any) -> None:
        if self.uses_bitsandbytes:
            require_bitsandbytes(self.name, self.base)

    def peft_config(self, ctx: RunContext, p, model):
        """The peft config to place on `model` (the loaded base)."""
        raise NotImplementedError

    def build(self, ctx: RunContext, p) -> Built:
        import_bitsandbytes()  # first, quietly: peft_config imports peft, which imports it
        base = load_base(self.base, ctx, p)
        model = place_adapter(base.model, self.peft_config(ctx, p, base.model), self.name, log=ctx.tracker.log)
        return Built(apply_speed_params(model, p, log=ctx.tracker.log), base.tokenizer, base.cost)

    def extra_cost(self, model) -> dict:
        return adapter_cost(model)

    def served(self, ctx: RunContext, built: Built, p):
        """The adapter and head (peft's save_pretrained form) on the frozen base, referenced by path."""
        from strategies.shared.served_classifier import served_classifier

        return served_classifier(self.name, ctx, built, p, "peft", self.base)

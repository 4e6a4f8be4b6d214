"""What lora and qlora (and the PEFT family) share: their hyperparameters, which modules get adapters
and which module is the head, the peft config, and the adapter's size on disk."""

from __future__ import annotations

import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core.errors import BenchError
from bench.core.params import param
from bench.engine.compat import peft_calls
from bench.engine.four_bit import import_bitsandbytes
from bench.engine.training import TrainParams, retuned

# Attention projections by naming family, tried in order: Llama/Mistral/Qwen-like decoders, then
# BERT-like encoders. A model with neither falls back to peft's own per-model_type defaults.
ATTENTION_PROJECTIONS = (("q_proj", "k_proj", "v_proj", "o_proj"), ("query", "key", "value"))


@dataclass
class LoRAParams(TrainParams):
    """CPU-sized defaults, so that a default `bench run` fits in ~10 minutes on 2 cores. Measured on
    SmolLM2 with the default BBC News split (300 train rows; test accuracy, whole run time):
    1 epoch at 64 tokens: lr 1e-3 0.785 (147 s), 2e-3 0.910 (132 s), 3e-3 0.935 (141 s);
    2 epochs at lr 1e-3: 64 tokens 0.940 (255 s), 128 tokens 0.930 (495 s). The seed's lr 1e-4 with
    alpha 8 (tuned for Llama 3 8B and 8,000 rows) stays near 0.4 in 2 epochs. On a GPU, or with
    time to spare, more epochs at a lower lr are the safer choice (`bench tune` searches them)."""

    r: int = param(16, ge=1)
    alpha: int = param(32, ge=1)
    dropout: float = param(0.05, ge=0, lt=1)
    target_modules: list[str] | None = None  # None: the model's attention projections
    lr: float = retuned("lr", 3e-3)
    max_length: int = retuned("max_length", 64)


# Applied where the run's device is CUDA and the user set no value (bench.running.plan): the seed's 512-token
# limit, and batches of up to 4,096 padded tokens instead of 8 rows. Provisional, from the plain HF
# stack on an H100 (issue 11: throughput stops rising at about 4,096 tokens a step; 8 rows of ~56
# AG News tokens leave the GPU waiting); not yet measured with the suite itself.
GPU_DEFAULTS = {"max_length": 512, "max_tokens_per_batch": 4096}


def lora_search_space(trial) -> dict[str, Any]:
    return {
        "r": trial.suggest_categorical("r", [4, 8, 16, 32]),
        "alpha": trial.suggest_categorical("alpha", [8, 16, 32, 64]),
        "dropout": trial.suggest_float("dropout", 0.0, 0.1),
        "lr": trial.suggest_float("lr", 1e-4, 5e-3, log=True),
        "epochs": trial.suggest_int("epochs", 1, 3),
        "warmup_ratio": trial.suggest_float("warmup_ratio", 0.0, 0.2),
    }


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


def check_lora_params(p: LoRAParams, strategy: str) -> None:
    """Before any model loads (the numeric bounds are checked already, from the fields' `param`)."""
    target_module_list(p.target_modules)


def default_target_modules(model) -> list[str] | None:
    """The attention projections present among the model's linear layers (4-bit ones included:
    bitsandbytes' Linear4bit subclasses nn.Linear); None lets peft pick by model_type."""
    import torch

    leaves = {name.rsplit(".", 1)[-1] for name, module in model.named_modules()
              if isinstance(module, torch.nn.Linear)}
    for family in ATTENTION_PROJECTIONS:
        if set(family) <= leaves:
            return list(family)
    return None


def classifier_head_names(model) -> list[str]:
    """Top-level modules with weights outside the backbone: `score` on Llama-like models,
    `classifier` on BERT-like ones. They are trained in full and never quantized."""
    base = model.base_model_prefix
    return [name for name, child in model.named_children()
            if name != base and next(child.parameters(), None) is not None]


def add_lora(model, p: LoRAParams, log=print):
    """Wrap `model` in peft LoRA adapters; the head is trained in full through modules_to_save."""
    import_bitsandbytes()  # first, quietly: peft imports it on its own import
    from peft import LoraConfig, TaskType, get_peft_model

    targets = target_module_list(p.target_modules) or default_target_modules(model)
    heads = classifier_head_names(model)
    # a copy: for SEQ_CLS peft appends its own default head names to the list it is given
    config = LoraConfig(task_type=TaskType.SEQ_CLS, r=p.r, lora_alpha=p.alpha, lora_dropout=p.dropout,
                        target_modules=targets, modules_to_save=list(heads), bias="none")
    model.config.use_cache = False  # training: no key/value cache to keep
    try:
        with peft_calls():
            peft_model = get_peft_model(model, config)
    except ValueError as exc:  # unknown module names, or a model_type peft has no default for
        raise BenchError(f"cannot place LoRA adapters ({exc}); set target_modules to this model's "
                         "linear layer names, e.g. --param lora.target_modules=q_proj,v_proj") from None
    log(f"LoRA r={p.r} alpha={p.alpha} on {sorted(peft_model.peft_config['default'].target_modules)}; "
        f"trained in full: {heads}")
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

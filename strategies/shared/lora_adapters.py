"""LoRA as the strategies that place it share it (lora, qlora, lora-8bit, dora; instruct-ft on a
causal LM): its hyperparameters, search space and peft config, and `LoRAMethod`, the adapter
strategy whose members differ only in their base (full, 4-bit, 8-bit) and what they add to the config."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bench.core.params import param
from bench.engine.context import RunContext
from bench.engine.four_bit import import_bitsandbytes
from bench.engine.training import TrainParams, retuned
from strategies.shared.adapters import AdapterStrategy, default_target_modules, target_module_list


@dataclass
class LoRAParams(TrainParams):
    """CPU-sized defaults, so that a default `bench run` fits in about ten minutes on 2 cores: one
    epoch at 64 tokens needs lr 3e-3 to learn from a few hundred rows (the seed's lr 1e-4 with alpha 8
    was tuned for Llama 3 8B and 8,000 rows); on a GPU, or with time to spare, more epochs at a lower
    lr are the safer choice (`bench tune` and `bench compare` search them)."""

    r: int = param(16, ge=1)
    alpha: int = param(32, ge=1)
    dropout: float = param(0.05, ge=0, lt=1)
    target_modules: list[str] | None = None  # None: the model's attention projections
    lr: float = retuned("lr", 3e-3)
    max_length: int = retuned("max_length", 64)


@dataclass
class QuantizedLoRAParams(LoRAParams):
    # Recompute activations in the backward pass instead of keeping them (QLoRA's usual setting, and
    # peft's prepare_model_for_kbit_training default): without it a k-bit base saves no memory on the
    # CPU, since the backward keeps the de-quantized weights and every activation.
    gradient_checkpointing: bool = True


# Applied where the run's device is CUDA and the user set no value (bench.running.plan): the seed's
# 512-token limit, and batches of up to 4,096 padded tokens instead of 8 rows (docs/performance.md).
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


def check_lora_params(p: LoRAParams, strategy: str) -> None:
    """Before any model loads (the numeric bounds are checked already, from the fields' `param`)."""
    target_module_list(p.target_modules)


def lora_config(p: LoRAParams, model, task: str = "SEQ_CLS", **extra):
    """peft's LoraConfig from the params: adapters on `target_modules`, else the model's attention
    projections; `extra` adds what a member changes (dora: use_dora)."""
    import_bitsandbytes()  # first, quietly: peft imports it on its own import
    from peft import LoraConfig, TaskType

    return LoraConfig(task_type=TaskType[task], r=p.r, lora_alpha=p.alpha, lora_dropout=p.dropout,
                      target_modules=target_module_list(p.target_modules) or default_target_modules(model),
                      bias="none", **extra)


class LoRAMethod(AdapterStrategy):
    """LoRA adapters plus a trained head on the base `base`; a member sets its name, base and Params."""

    default_model = "smollm2"
    Params = LoRAParams
    gpu_defaults = GPU_DEFAULTS

    def search_space(self, trial):
        return lora_search_space(trial)

    def check(self, params: LoRAParams, model) -> None:
        check_lora_params(params, self.name)
        super().check(params, model)

    def peft_config(self, ctx: RunContext, p: LoRAParams, model):
        return lora_config(p, model)

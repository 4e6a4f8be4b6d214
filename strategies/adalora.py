"""adalora: LoRA in SVD form whose rank budget is reallocated during training to the weight
matrices that matter most (peft AdaLoRA, Zhang et al. 2023), plus a trained head.

AdaLoRA needs two things inside the training loop that the shared loop (bench.engine.training.fit)
does not know about: its orthogonality penalty on the singular vectors, and a budget update after
every optimizer step. Both are attached to the optimizer's step through torch's global step hooks,
only while this run trains."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass

from bench.core.errors import BenchError
from bench.core.params import param
from bench.engine.context import RunContext
from bench.engine.training import retuned
from strategies.shared.adapters import (
    AdapterStrategy,
    default_target_modules,
    target_module_list,
    training_search_space,
)
from strategies.shared.lora_adapters import LoRAParams, check_lora_params


@dataclass
class AdaLoRAParams(LoRAParams):
    """lora's CPU defaults with a rank budget: every adapted matrix starts at `init_r` and the total is
    pruned towards `target_r` per matrix between the first `tinit_ratio` and the last `tfinal_ratio`
    of the steps (init_r 12 -> target_r 8 as in peft's examples). Its lr is 10x lora's (the learning-rate
    sweep in experiments/, docs/strategies.md). `r` is unused (AdaLoRA's ranks are init_r and target_r)."""

    lr: float = retuned("lr", 3e-2)

    init_r: int = param(12, ge=1)
    target_r: int = param(8, ge=1)
    tinit_ratio: float = param(0.1, ge=0, lt=1)
    tfinal_ratio: float = param(0.3, ge=0, lt=1)
    orth_reg_weight: float = param(0.5, ge=0)


def total_steps(n_train: int, p: AdaLoRAParams) -> int:
    return p.epochs * math.ceil(n_train / p.batch_size)


def adalora_config(model, p: AdaLoRAParams, n_train: int):
    from peft import AdaLoraConfig, TaskType

    steps = total_steps(n_train, p)
    return AdaLoraConfig(task_type=TaskType.SEQ_CLS, init_r=p.init_r, target_r=p.target_r, lora_alpha=p.alpha,
                         lora_dropout=p.dropout, total_step=steps, tinit=int(p.tinit_ratio * steps),
                         tfinal=int(p.tfinal_ratio * steps), deltaT=1, orth_reg_weight=p.orth_reg_weight,
                         target_modules=target_module_list(p.target_modules) or default_target_modules(model))


def orthogonality_penalty(peft_model, weight: float):
    """AdaLoRA's regularizer (peft's AdaLoraModel adds it only to a loss the model computes itself):
    the mean Frobenius distance of P P^T and Q^T Q from the identity, over the adapted matrices."""
    import torch

    terms = []
    for name, tensor in peft_model.named_parameters():
        if tensor.requires_grad and ("lora_A" in name or "lora_B" in name):
            cov = tensor @ tensor.T if "lora_A" in name else tensor.T @ tensor
            terms.append(torch.norm(cov - torch.eye(*cov.shape, device=cov.device, dtype=cov.dtype), p="fro"))
    return weight * torch.stack(terms).mean() if terms else None


@contextlib.contextmanager
def budget_updates(peft_model, p: AdaLoRAParams):
    """While training: before each optimizer step, add the orthogonality penalty's gradient (after
    the loop's gradient clipping, a small unclipped term); after it, the rank budget update
    (`update_and_allocate` reads the gradients, which the loop zeroes only after the step)."""
    from torch.optim.optimizer import register_optimizer_step_post_hook, register_optimizer_step_pre_hook

    step = 0

    def add_penalty(optimizer, args, kwargs):
        if p.orth_reg_weight > 0:
            penalty = orthogonality_penalty(peft_model, p.orth_reg_weight)
            if penalty is not None:
                penalty.backward()

    def update_budget(optimizer, args, kwargs):
        nonlocal step
        peft_model.base_model.update_and_allocate(step)
        step += 1

    handles = [register_optimizer_step_pre_hook(add_penalty), register_optimizer_step_post_hook(update_budget)]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


class AdaLoRA(AdapterStrategy):
    name = "adalora"
    description = "LoRA in SVD form with its rank budget reallocated to the most important matrices, plus a trained head"
    default_model = "smollm2"
    Params = AdaLoRAParams

    def search_space(self, trial):
        return {**training_search_space(trial, 1e-3, 1e-1),
                "init_r": trial.suggest_categorical("init_r", [8, 12, 16]),
                "target_r": trial.suggest_categorical("target_r", [2, 4, 8])}

    def check(self, params: AdaLoRAParams, model) -> None:
        check_lora_params(params, self.name)
        if params.target_r > params.init_r:
            raise BenchError(f"adalora: target_r {params.target_r} is above init_r {params.init_r}; "
                             "the budget only shrinks: set --param adalora.target_r=N with N <= init_r")
        if params.tinit_ratio + params.tfinal_ratio >= 1:
            raise BenchError("adalora: tinit_ratio + tfinal_ratio must be below 1 (they leave no steps to "
                             "reallocate ranks in)")
        if getattr(params, "max_tokens_per_batch", 0):
            raise BenchError("adalora needs its step count up front and token-budget batches vary it; "
                             "leave max_tokens_per_batch unset (batch_size rows a step)")

    def peft_config(self, ctx: RunContext, p: AdaLoRAParams, model):
        return adalora_config(model, p, len(ctx.data.train))

    def training(self, model, p: AdaLoRAParams):
        return budget_updates(model, p)

    def extra_cost(self, model) -> dict:
        return {**super().extra_cost(model), "adalora_ranks": kept_ranks(model)}


def kept_ranks(peft_model) -> dict:
    """Ranks summed over the adapted matrices: at the start (init_r each) and kept by the budget."""
    singular = [t for n, t in peft_model.named_parameters() if "lora_E" in n]
    return {"initial": sum(t.shape[0] for t in singular), "kept": sum(int((t != 0).sum()) for t in singular),
            "matrices": len(singular)}

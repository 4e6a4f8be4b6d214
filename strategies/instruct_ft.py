"""instruct-ft: instruction fine-tuning. A causal LM learns to *write* the label after zero-shot's
own prompt (same templates, verbalizers and answer prefix; LoRA adapters on the attention
projections, no new head), the loss on the label's tokens only. It is evaluated as zero-shot is:
every label's continuation scored by log-likelihood, so every prediction is a valid class. The
record's baseline is the untrained model scored the same way, i.e. zero-shot on the very same
prompt: the difference is what training that prompt buys."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from bench.core.errors import BenchError
from bench.engine.context import RunContext
from bench.engine.device import autocast, use_bf16
from bench.engine.training import Objective, fit, pad_id_of, retuned
from strategies.shared.adapters import adapter_bytes, place_adapter
from strategies.shared.base import Strategy, StrategyResult
from strategies.shared.label_scoring import Scored, load_causal_lm, log_softmax, score_prompts
from strategies.shared.lora_adapters import LoRAParams, check_lora_params, lora_config, lora_search_space
from strategies.shared.prompt_params import PromptParams, check_prompt_params, label_words_for
from strategies.shared.prompts import TEMPLATES, PromptBuilder, resolve_template
from strategies.shared.served_prompted import served_prompted
from strategies.shared.trained import keep_trainable_fp32

IGNORE = -100  # transformers' label id for positions without loss (the prompt, the padding)


@dataclass
class InstructFTParams(LoRAParams, PromptParams):
    """LoRA's fields and zero-shot's prompt fields (prompt_params.PromptParams). max_length caps each
    text's tokens inside the prompt (the chat template and instructions come on top), as zero-shot's
    does. lr 1e-3, below lora's 3e-3: the LM already knows the label words, where lora trains a fresh
    head (`bench tune` and `bench compare` search it)."""

    lr: float = retuned("lr", 1e-3)


class InstructFineTune(Strategy):
    name = "instruct-ft"
    uses_bitsandbytes = False
    description = "a causal LM fine-tuned (LoRA) to write the label after zero-shot's prompt; labels scored as zero-shot"
    default_model = "smollm2"
    flops_kind = "adapter"
    Params = InstructFTParams

    def search_space(self, trial):
        return {**lora_search_space(trial), "template": trial.suggest_categorical("template", list(TEMPLATES))}

    def check(self, params: InstructFTParams, model) -> None:
        check_prompt_params(params, model, self.name)
        check_lora_params(params, self.name)
        if params.compile_layers or params.liger_kernels:
            raise BenchError("instruct-ft: compile_layers and liger_kernels are not supported here; leave them off")

    def run(self, ctx: RunContext, p: InstructFTParams) -> StrategyResult:
        with ctx.tracker.phase("load"):
            tokenizer, model = load_causal_lm(ctx)
        with ctx.tracker.phase("prepare"):
            template, answer_prefix = resolve_template(p.template, p.answer_prefix)

            def make_prompts(words):
                return PromptBuilder(tokenizer, template, answer_prefix, words, [], p.max_length)

            words = label_words_for(p, model, tokenizer, make_prompts, ctx)
            prompts = make_prompts(words)
            label_ids = prompts.label_ids()
            train_rows = [(ids, label_ids[y]) for ids, y in
                          zip(prompts.encode_all(ctx.data.train.texts), ctx.data.train.labels)]
            val_ids = prompts.encode_all(ctx.data.val.texts)
            eval_ids = prompts.encode_all(ctx.eval.texts)
        with ctx.tracker.phase("baseline"):  # zero-shot on this very prompt
            baseline = score_prompts(model, prompts, eval_ids, ctx, p.prior(), count_as=None,
                                     desc="baseline (untrained: zero-shot)")
        import torch

        torch.manual_seed(ctx.seed)  # the adapters' initialization is part of the run
        model = place_adapter(model, lora_config(p, model, task="CAUSAL_LM"), self.name, ctx.tracker.log)
        keep_trainable_fp32(model)  # adapters train in fp32 whatever the base's dtype
        fit(model, label_token_objective(train_rows, val_ids, ctx, p, prompts), ctx, p)
        model.eval()
        with ctx.tracker.phase("eval"):
            scored = score_prompts(model, prompts, eval_ids, ctx, p.prior())
        trainable, total = (int(x) for x in model.get_nb_trainable_parameters())
        return StrategyResult(scored.scores.argmax(1).tolist(), trainable, total,
                              baseline_predictions=baseline.scores.argmax(1).tolist(),
                              extra_cost={"adapter_bytes": adapter_bytes(model),
                                          "shared_prefix_tokens": scored.prefix_tokens,
                                          "verbalizers": dict(zip(ctx.data.labels, words))},
                              served=served_prompted(self.name, ctx, model, tokenizer, prompts, scored.prior,
                                                     adapter=True))


def label_batch(rows: list[tuple[list[int], list[int]]], pad_id: int, device: str):
    """Prompt + label ids, left-padded so every row's label ends at the last position; the loss
    targets are the label tokens alone. Position ids count real tokens only, as they would unpadded."""
    import torch

    width = max(len(prompt) + len(label) for prompt, label in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    targets = torch.full((len(rows), width), IGNORE, dtype=torch.long)
    for i, (prompt, label) in enumerate(rows):
        start = width - len(prompt) - len(label)
        ids[i, start:] = torch.tensor(prompt + label)
        mask[i, start:] = 1
        targets[i, width - len(label):] = torch.tensor(label)
    positions = (mask.cumsum(1) - 1).clamp(min=0)
    return ids.to(device), mask.to(device), targets.to(device), positions.to(device)


def label_logits(model, ids, mask, positions, label_width: int):
    """The LM's logits at the last `label_width + 1` positions only, the ones that predict label
    tokens: the vocabulary projection of every prompt position (49k columns for SmolLM2) would be
    most of a step's activation memory, for no loss."""
    keep = {"logits_to_keep": label_width + 1} if accepts_logits_to_keep(model) else {}
    return model(input_ids=ids, attention_mask=mask, position_ids=positions, **keep).logits


def accepts_logits_to_keep(model) -> bool:
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "logits_to_keep" in inspect.signature(base.forward).parameters


def label_token_objective(rows, val_ids, ctx: RunContext, p: InstructFTParams, prompts: PromptBuilder) -> Objective:
    """The shared loop's objective for instruct-ft: the loss on the label tokens after each prompt;
    after each epoch, validation is zero-shot's scoring of the val split (the curve, the pruner, the
    best epoch)."""
    device, bf16 = ctx.device, use_bf16(ctx.device, ctx.precision)
    weights = class_loss_weights(ctx) if p.class_weights else None
    pad = pad_id_of(prompts.tokenizer)

    def loss(model, idx):
        batch = [rows[i] for i in idx]
        ids, mask, targets, positions = label_batch(batch, pad, device)
        with autocast(device, bf16):
            logits = label_logits(model, ids, mask, positions, max(len(label) for _, label in batch))
        targets = targets[:, targets.shape[1] - logits.shape[1]:]  # the positions the logits cover
        return label_token_loss(logits, targets, None if weights is None else weights[idx])

    def validate(model) -> dict[str, float]:
        model.eval()
        scored = score_prompts(model, prompts, val_ids, ctx, p.prior(), count_as=None, desc="validating")
        return scored_validation_figures(scored, ctx.data.val.labels)

    return Objective(np.array([len(a) + len(b) for a, b in rows]), loss, validate if val_ids else None)


def label_token_loss(logits, targets, row_weights=None):
    """Mean cross-entropy of the label tokens (each predicted from the position before it); with
    row weights, each row's tokens weigh its class weight."""
    import torch.nn.functional as F

    shifted, goal = logits[:, :-1].float(), targets[:, 1:]
    per_token = F.cross_entropy(shifted.transpose(1, 2), goal, ignore_index=IGNORE, reduction="none")
    real = (goal != IGNORE).float()
    if row_weights is not None:
        real = real * row_weights.to(real.device)[:, None]
    return (per_token * real).sum() / real.sum().clamp(min=1e-9)


def class_loss_weights(ctx: RunContext):
    """Each train row's inverse-frequency class weight, in train order."""
    import torch

    per_class = np.asarray(ctx.data.class_weights(), dtype=np.float32)
    return torch.from_numpy(per_class[np.asarray(ctx.data.train.labels)])


def scored_validation_figures(scored: Scored, truth: np.ndarray) -> dict[str, float]:
    """The shared validation figures of the scored labels; the loss is the cross-entropy of the
    label distribution (normalized over the labels)."""
    from bench.engine.training import validation_figures

    logp = log_softmax(scored.scores)
    return validation_figures(truth, scored.scores.argmax(1), float(-logp[np.arange(len(truth)), truth].mean()))

"""Scoring every label's continuation after a prompt, shared by zero-shot and instruct-ft: the
log-likelihood of each label's tokens (one shared prompt pass, all labels batched from its key/value
cache) and contextual calibration against content-free inputs (Zhao et al. 2021)."""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from bench.engine.compat import forward_with_cache
from bench.engine.context import RunContext

if TYPE_CHECKING:
    from strategies.shared.prompts import PromptBuilder

CONTENT_FREE_TEXTS = ("N/A", "", "[MASK]")
# Where calibration's label prior comes from: "batch", the mean label probability over the evaluated
# texts themselves (Zhou et al. 2023, "Batch Calibration"); "content-free", the texts above (Zhao et
# al. 2021). "batch" assumes the evaluated rows are not far from balanced: on a skewed test split
# it pulls predictions towards equal shares.
PRIORS = ("batch", "content-free")


def load_causal_lm(ctx: RunContext):
    """Tokenizer and causal LM for inference: bf16 where the device computes it natively, else fp32."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bench.engine.device import use_bf16

    path = ctx.model_path()
    tokenizer = AutoTokenizer.from_pretrained(path)
    dtype = torch.bfloat16 if use_bf16(ctx.device, ctx.precision) else torch.float32
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(ctx.device).eval()
    return tokenizer, model


def score_examples(scorer: "LabelScorer", example_ids: list[list[int]], ctx: RunContext,
                   count_as: str | None = "eval", desc: str = "scoring labels") -> np.ndarray:
    """(examples, labels) scores; counted as `count_as` examples and prompt tokens (None: not counted,
    e.g. validation, whose time is not the evaluation's)."""
    bar = ctx.tracker.progress(total=len(example_ids), desc=desc, unit="ex")
    scores = []
    for ids in example_ids:
        scores.append(scorer.score(ids))
        if count_as:
            ctx.tracker.count(f"{count_as}_examples", 1)
            ctx.tracker.count(f"{count_as}_tokens", len(ids))
        bar.update(1)
    bar.close()
    return np.stack(scores)


@dataclass
class Scored:
    scores: np.ndarray  # (examples, labels): calibrated log-probabilities where `prior` is set
    prior: np.ndarray | None  # the content-free label probabilities calibration divided by
    prefix_tokens: int  # prompt tokens shared by every example, run once


def score_prompts(model, prompts: "PromptBuilder", example_ids: list[list[int]], ctx: RunContext,
                  prior_from: str | None, count_as: str | None = "eval", desc: str = "scoring labels") -> Scored:
    """Every example's label scores under `model` (a fresh scorer: the shared prefix's cache is the
    model's own), calibrated against the prior from `prior_from` (one of PRIORS; None: raw scores)."""
    scorer = LabelScorer(model, prompts.label_ids(), prompts.shared_prefix_ids())
    scores = score_examples(scorer, example_ids, ctx, count_as, desc)
    prior = None
    if prior_from == "content-free":
        prior = content_free_prior(np.stack([scorer.score(ids) for ids in prompts.encode_all(CONTENT_FREE_TEXTS)]))
    elif prior_from == "batch":
        prior = content_free_prior(scores)  # the same mean of p(label | text), over the evaluated texts
    elif prior_from is not None:
        raise ValueError(f"unknown calibration prior {prior_from!r}")
    if prior is not None:
        scores = calibrate(scores, prior)
    return Scored(scores, prior, len(scorer.prefix_ids))


class LabelScorer:
    """Sum of each label's token log-probabilities after a prompt. The shared prefix runs once;
    per example, the rest of the prompt runs once with use_cache=True, then every label is scored
    in one forward pass from that cache repeated to one row per label."""

    def __init__(self, model, label_ids: list[list[int]], prefix_ids: list[int]):
        import torch

        self.model = model
        self.device = next(model.parameters()).device
        width = max(len(x) for x in label_ids)
        # right-padded with token 0: a padded position comes after its label's last token, so
        # causal attention keeps it from changing any real token's logits; it is masked out below
        self.labels = torch.zeros((len(label_ids), width), dtype=torch.long, device=self.device)
        self.real = torch.zeros((len(label_ids), width), dtype=torch.bool, device=self.device)
        for i, x in enumerate(label_ids):
            self.labels[i, : len(x)] = torch.tensor(x)
            self.real[i, : len(x)] = True
        self.prefix_ids = prefix_ids
        self.prefix_cache = None
        if prefix_ids:
            with torch.inference_mode():
                self.prefix_cache = self._forward(self._row(prefix_ids), None)[1]

    def _forward(self, input_ids, cache, logits_to_keep: int = 1):
        out, cache = forward_with_cache(self.model, cache, input_ids=input_ids, use_cache=True,
                                        logits_to_keep=logits_to_keep)
        return out.logits, cache

    def _row(self, ids: list[int]):
        import torch

        return torch.tensor([ids], dtype=torch.long, device=self.device)

    def _cache_for(self, ids: list[int]):
        """A private copy of the prefix cache, cut to the tokens this prompt really shares (at
        least one token of the prompt must still run, to predict the label's first token)."""
        shared = 0
        limit = min(len(self.prefix_ids), len(ids) - 1)
        while shared < limit and ids[shared] == self.prefix_ids[shared]:
            shared += 1
        if shared == 0:
            return 0, None
        cache = copy.deepcopy(self.prefix_cache)
        if shared < len(self.prefix_ids):  # a negative count drops that many tokens (transformers 4 and 5)
            cache.crop(shared - len(self.prefix_ids))
        return shared, cache

    def score(self, ids: list[int]) -> np.ndarray:
        import torch

        with torch.inference_mode():
            shared, cache = self._cache_for(ids)
            logits, cache = self._forward(self._row(ids[shared:]), cache)
            first = torch.log_softmax(logits[0, -1].float(), -1)[self.labels[:, 0]]
            if self.labels.shape[1] == 1:
                return first.cpu().numpy()
            cache.batch_repeat_interleave(len(self.labels))
            rest_logits, _ = self._forward(self.labels[:, :-1], cache, logits_to_keep=0)
            rest = torch.log_softmax(rest_logits.float(), -1).gather(-1, self.labels[:, 1:, None])[..., 0]
            return (first + (rest * self.real[:, 1:]).sum(1)).cpu().numpy()


def log_softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def content_free_prior(content_free: np.ndarray) -> np.ndarray:
    """The mean over the given texts (content-free ones, or the evaluated batch) of p(label | text),
    normalized over the labels."""
    return np.exp(log_softmax(content_free)).mean(axis=0)


def calibrate(scores: np.ndarray, prior: np.ndarray) -> np.ndarray:
    """Zhao et al.'s contextual calibration in log space: log p(label | text), normalized over the
    labels, minus log of the content-free prior."""
    return log_softmax(scores) - np.log(prior)

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


# Prompts scored together: one prompt at a time leaves the CPU's matmuls narrow, and took several
# times the CPU time of batches of 32 on SmolLM2. Labels of several tokens are then scored from
# a copy of the cache per prompt and label: LABEL_ROWS bounds those copies.
PROMPT_BATCH = 32
LABEL_ROWS = 64


def score_examples(scorer: "LabelScorer", example_ids: list[list[int]], ctx: RunContext,
                   count_as: str | None = "eval", desc: str = "scoring labels",
                   batch_size: int | None = None) -> np.ndarray:
    """(examples, labels) scores, in `example_ids`' order; prompts of similar length are scored
    together (little padding); counted as `count_as` examples and prompt tokens (None: not counted,
    e.g. validation, whose time is not the evaluation's)."""
    bar = ctx.tracker.progress(total=len(example_ids), desc=desc, unit="ex")
    scores = np.empty((len(example_ids), len(scorer.labels)), dtype=np.float32)
    order = sorted(range(len(example_ids)), key=lambda i: -len(example_ids[i]))
    batch_size = batch_size or scorer.prompts_per_batch()
    for start in range(0, len(order), batch_size):
        rows = order[start: start + batch_size]
        scores[rows] = scorer.score_batch([example_ids[i] for i in rows])
        if count_as:
            ctx.tracker.count(f"{count_as}_examples", len(rows))
            ctx.tracker.count(f"{count_as}_tokens", sum(len(example_ids[i]) for i in rows))
        bar.update(len(rows))
    bar.close()
    return scores


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
        prior = content_free_prior(scorer.score_batch(prompts.encode_all(CONTENT_FREE_TEXTS)))
    elif prior_from == "batch":
        prior = content_free_prior(scores)  # the same mean of p(label | text), over the evaluated texts
    elif prior_from is not None:
        raise ValueError(f"unknown calibration prior {prior_from!r}")
    if prior is not None:
        scores = calibrate(scores, prior)
    return Scored(scores, prior, len(scorer.prefix_ids))


class LabelScorer:
    """Sum of each label's token log-probabilities after a prompt. The shared prefix runs once;
    the rest of a batch of prompts runs once, right-padded, with use_cache=True; then every label
    of every prompt is scored in one forward pass from that cache, repeated to one row per prompt
    and label. Padding is masked out and positions are each prompt's own, so a prompt's scores are
    those it gets alone (up to float rounding)."""

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
                row = torch.tensor([prefix_ids], dtype=torch.long, device=self.device)
                self.prefix_cache = self._forward(row, None)[1]

    def _forward(self, input_ids, cache, logits_to_keep=1, **inputs):
        out, cache = forward_with_cache(self.model, cache, input_ids=input_ids, use_cache=True,
                                        logits_to_keep=logits_to_keep, **inputs)
        return out.logits, cache

    def _shared(self, ids: list[int]) -> int:
        """Tokens of the prefix this prompt really shares (at least one token of the prompt must
        still run, to predict the label's first token)."""
        shared = 0
        limit = min(len(self.prefix_ids), len(ids) - 1)
        while shared < limit and ids[shared] == self.prefix_ids[shared]:
            shared += 1
        return shared

    def _prefix_cache(self, shared: int, rows: int):
        """A private copy of the prefix cache cut to `shared` tokens, one row per prompt."""
        if shared == 0:
            return None
        cache = copy.deepcopy(self.prefix_cache)
        if shared < len(self.prefix_ids):  # a negative count drops that many tokens (transformers 4 and 5)
            cache.crop(shared - len(self.prefix_ids))
        if rows > 1:
            cache.batch_repeat_interleave(rows)
        return cache

    def prompts_per_batch(self) -> int:
        if self.labels.shape[1] == 1:  # one token a label: no label pass, no cache copies
            return PROMPT_BATCH
        return max(1, min(PROMPT_BATCH, LABEL_ROWS // len(self.labels)))

    def score(self, ids: list[int]) -> np.ndarray:
        return self.score_batch([ids])[0]

    def score_batch(self, prompts: list[list[int]]) -> np.ndarray:
        """(prompts, labels) scores, all prompts in one batch (score_examples cuts the batches);
        prompts that share different lengths of the prefix run apart."""
        out = np.empty((len(prompts), len(self.labels)), dtype=np.float32)
        groups: dict[int, list[int]] = {}
        for i, ids in enumerate(prompts):
            groups.setdefault(self._shared(ids), []).append(i)
        for shared, rows in groups.items():
            out[rows] = self._score_group([prompts[i][shared:] for i in rows], shared)
        return out

    def _score_group(self, rests: list[list[int]], shared: int) -> np.ndarray:
        import torch

        n, width = len(rests), max(len(r) for r in rests)
        lengths = torch.tensor([len(r) for r in rests], device=self.device)
        ids = torch.zeros((n, width), dtype=torch.long, device=self.device)
        for i, r in enumerate(rests):  # right padding, masked: every prompt's last token is at lengths - 1
            ids[i, : len(r)] = torch.tensor(r)
        steps = torch.arange(width, device=self.device)
        mask = torch.cat([torch.ones((n, shared), dtype=torch.long, device=self.device),
                          (steps < lengths[:, None]).long()], 1)
        with torch.inference_mode():
            cache = self._prefix_cache(shared, n)
            # logits only where some prompt ends: the vocabulary projection is a large matmul
            ends, where = torch.unique(lengths - 1, return_inverse=True)
            logits, cache = self._forward(ids, cache, logits_to_keep=ends, attention_mask=mask,
                                          position_ids=(shared + steps).expand(n, -1))
            last = logits[torch.arange(n, device=self.device), where].float()
            first = torch.log_softmax(last, -1)[:, self.labels[:, 0]]  # (prompts, labels)
            if self.labels.shape[1] == 1:
                return first.cpu().numpy()
            k, w = self.labels.shape
            cache.batch_repeat_interleave(k)  # row i * k + j: prompt i, label j
            label_steps = torch.arange(w - 1, device=self.device)
            rest_logits, _ = self._forward(
                self.labels[:, :-1].repeat(n, 1), cache, logits_to_keep=0,
                attention_mask=torch.cat([mask.repeat_interleave(k, 0),
                                          torch.ones((n * k, w - 1), dtype=torch.long, device=self.device)], 1),
                position_ids=(shared + lengths.repeat_interleave(k))[:, None] + label_steps)
            targets = self.labels[:, 1:].repeat(n, 1)
            rest = torch.log_softmax(rest_logits.float(), -1).gather(-1, targets[..., None])[..., 0]
            rest = (rest * self.real[:, 1:].repeat(n, 1)).sum(1).view(n, k)
            return (first + rest).cpu().numpy()


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

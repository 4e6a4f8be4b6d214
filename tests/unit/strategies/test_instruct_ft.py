"""instruct-ft on a tiny random Llama: only its adapters train, on the label tokens, and its
baseline is zero-shot on the very same prompt; the batch prior is the mean label probability."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.core.errors import BenchError
from bench.engine.models import ModelRef
from strategies.instruct_ft import (
    IGNORE,
    InstructFineTune,
    InstructFTParams,
    label_batch,
    label_logits,
    label_token_loss,
)
from strategies.shared.label_scoring import calibrate, content_free_prior, log_softmax, score_prompts
from strategies.shared.prompts import TEMPLATES, PromptBuilder
from strategies.shared.trained import load_tokenizer
from strategies.zero_shot import ZeroShot, ZeroShotParams
from tests.tiny import LABELS, context

TINY_INSTRUCT = dict(max_length=12, epochs=2, batch_size=8, lr=5e-3)


def test_label_batch_left_pads_and_targets_only_the_label_tokens():
    ids, mask, targets, positions = label_batch([([5, 6, 7], [9]), ([5, 6], [10, 11])], pad_id=0, device="cpu")
    assert ids.tolist() == [[5, 6, 7, 9], [5, 6, 10, 11]]
    assert mask.tolist() == [[1, 1, 1, 1], [1, 1, 1, 1]]
    assert targets.tolist() == [[IGNORE, IGNORE, IGNORE, 9], [IGNORE, IGNORE, 10, 11]]
    ids, mask, targets, positions = label_batch([([5], [9]), ([5, 6, 7], [9])], pad_id=0, device="cpu")
    assert ids[0].tolist() == [0, 0, 5, 9] and mask[0].tolist() == [0, 0, 1, 1]
    assert targets[0].tolist() == [IGNORE, IGNORE, IGNORE, 9]  # padding carries no loss
    assert positions[0].tolist() == [0, 0, 0, 1] and positions[1].tolist() == [0, 1, 2, 3]


def test_label_token_loss_equals_transformers_causal_loss(tiny_llama):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    ids, mask, targets, _ = label_batch([([5, 6, 7], [9]), ([5, 6], [10, 11])], pad_id=0, device="cpu")
    with torch.no_grad():
        out = model(input_ids=ids, attention_mask=mask, labels=targets)
        ours = label_token_loss(out.logits, targets)
    assert ours.item() == pytest.approx(out.loss.item(), rel=1e-5)
    # row weights scale each row's tokens: weight 0 on the second row leaves the first row's one token
    first = label_token_loss(out.logits, targets, torch.tensor([1.0, 0.0]))
    logp = torch.log_softmax(out.logits[0, 2], -1)[9]
    assert first.item() == pytest.approx(-logp.item(), rel=1e-5)


def test_padded_batch_with_kept_label_logits_gives_each_rows_unpadded_loss(tiny_llama):
    """Left padding, position ids and logits_to_keep change nothing: the batch's loss is the mean of
    the label tokens' losses computed row by row without padding over every position."""
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    rows = [([5, 6, 7, 8, 12, 13], [9]), ([5, 6], [10, 11]), ([7, 7, 7], [14, 15, 16])]
    ids, mask, targets, positions = label_batch(rows, pad_id=0, device="cpu")
    with torch.no_grad():
        logits = label_logits(model, ids, mask, positions, label_width=3)
        assert logits.shape[1] == 4  # the vocabulary projection of 4 positions, not all 9
        batched = label_token_loss(logits, targets[:, targets.shape[1] - logits.shape[1]:])
        token_losses = []
        for prompt, label in rows:
            alone = torch.tensor([prompt + label])
            logp = torch.log_softmax(model(input_ids=alone).logits[0], -1)
            token_losses += [-logp[len(prompt) - 1 + j, t] for j, t in enumerate(label)]
    assert batched.item() == pytest.approx(torch.stack(token_losses).mean().item(), rel=1e-4)


def test_instruct_ft_trains_only_adapters_and_its_baseline_is_zero_shot_on_the_same_prompt(task, tiny_llama):
    ctx = context(task, tiny_llama)
    result = InstructFineTune().run(ctx, InstructFTParams(**TINY_INSTRUCT))
    assert len(result.predictions) == len(task.test) and set(result.predictions) <= {0, 1, 2}
    from transformers import AutoModelForCausalLM

    base_total = AutoModelForCausalLM.from_pretrained(tiny_llama).num_parameters()
    assert 0 < result.trainable_params < base_total < result.total_params
    assert result.extra_cost["adapter_bytes"] > 0
    assert result.extra_cost["verbalizers"] == dict(zip(LABELS, LABELS))
    assert [h["epoch"] for h in ctx.tracker.history] == [1, 2]
    assert all(0 <= h["val_accuracy"] <= 1 and h["val_loss"] > 0 for h in ctx.tracker.history)
    assert ctx.tracker.history[1]["train_loss"] < ctx.tracker.history[0]["train_loss"]  # it learns
    assert ctx.tracker.counters["train_examples"] == 2 * len(task.train)
    assert ctx.tracker.counters["eval_examples"] == len(task.test)  # baseline and validation not counted
    zero_shot = ZeroShot().run(context(task, tiny_llama), ZeroShotParams(max_length=12))
    assert result.baseline_predictions == zero_shot.predictions
    # a seed fixes the run: the adapters' initialization included
    again = context(task, tiny_llama)
    InstructFineTune().run(again, InstructFTParams(**TINY_INSTRUCT))
    assert [h["train_loss"] for h in again.tracker.history] == [h["train_loss"] for h in ctx.tracker.history]


def test_instruct_ft_checks_before_loading(tiny_bert):
    encoder = ModelRef(name="tiny-bert", source=str(tiny_bert), provenance="test", architecture="encoder")
    with pytest.raises(BenchError, match="causal"):
        InstructFineTune().check(InstructFTParams(), encoder)
    with pytest.raises(BenchError, match="template"):
        InstructFineTune().check(InstructFTParams(template="no text slot"), None)
    with pytest.raises(BenchError, match="compile_layers"):
        InstructFineTune().check(InstructFTParams(compile_layers=True), None)


def test_batch_prior_is_the_mean_label_probability_of_the_scored_texts(task, tiny_llama):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_llama).eval()
    prompts = PromptBuilder(load_tokenizer(str(tiny_llama)), *TEMPLATES["terse"], LABELS, [], max_length=12)
    ids = prompts.encode_all(task.test.texts)
    ctx = context(task, tiny_llama)
    raw = score_prompts(model, prompts, ids, ctx, None).scores
    batch = score_prompts(model, prompts, ids, ctx, "batch")
    np.testing.assert_allclose(batch.prior, np.exp(log_softmax(raw)).mean(0), rtol=1e-5)
    np.testing.assert_allclose(batch.scores, calibrate(raw, batch.prior), rtol=1e-5)
    # a model that prefers the first label for every text: the batch prior takes that preference out
    skewed = np.log(np.array([[0.9, 0.05, 0.05], [0.7, 0.25, 0.05], [0.8, 0.05, 0.15]]))
    prior = content_free_prior(skewed)  # what "batch" computes from the scored texts
    np.testing.assert_allclose(prior, [0.8, 0.35 / 3, 0.25 / 3])
    assert skewed.argmax(1).tolist() == [0, 0, 0]
    assert calibrate(skewed, prior).argmax(1).tolist() == [0, 1, 2]
    with pytest.raises(ValueError, match="prior"):
        score_prompts(model, prompts, ids[:1], ctx, "uniform")

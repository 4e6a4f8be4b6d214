"""zero-shot on a tiny random Llama: the shared-prompt key/value cache scores equal scoring
full sequences, calibration and demonstrations behave, checks come before loading."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from bench.core.errors import BenchError
from bench.engine.models import ModelRef
from strategies.shared.trained import load_tokenizer
from strategies.zero_shot import (
    CUSTOM_ANSWER_PREFIX,
    TEMPLATES,
    LabelScorer,
    PromptBuilder,
    ZeroShot,
    ZeroShotParams,
    calibrate,
    content_free_prior,
    draw_demonstrations,
    resolve_template,
    verbalizer_list,
)
from tests.tiny import LABELS, context, save_tiny_llama


def full_sequence_scores(model, prompt_ids, label_ids):
    """The slow reference: each label appended to the whole prompt, run from scratch."""
    out = []
    with torch.no_grad():
        for lab in label_ids:
            logp = torch.log_softmax(model(torch.tensor([prompt_ids + lab])).logits[0].float(), -1)
            out.append(sum(logp[len(prompt_ids) - 1 + j, t].item() for j, t in enumerate(lab)))
    return np.array(out)


@pytest.mark.parametrize("chat", [True, False])
def test_shared_prompt_kv_cache_scores_equal_full_sequences(tmp_path, task, chat):
    from transformers import AutoModelForCausalLM

    folder = save_tiny_llama(tmp_path, chat=chat)
    tok = load_tokenizer(str(folder))
    model = AutoModelForCausalLM.from_pretrained(folder).eval()
    # multi-token labels of different lengths, so the batched label pass pads and masks
    words = ["team match goal", "chip", "market shares"]
    demos = draw_demonstrations(task.train, 2, seed=0)
    builder = PromptBuilder(tok, *TEMPLATES["question"], words, demos, max_length=8)
    prompts = builder.encode_all(task.test.texts[:3] + [""])
    # prompts of different lengths, and one that shares only the prefix's first 4 tokens
    prompts.append(builder.shared_prefix_ids()[:4] + prompts[0][-3:])
    assert len({len(ids) for ids in prompts}) > 2
    reference = np.stack([full_sequence_scores(model, ids, builder.label_ids()) for ids in prompts])
    for prefix in (builder.shared_prefix_ids(), []):  # with the run-wide prefix cache, and without
        scorer = LabelScorer(model, builder.label_ids(), prefix)
        for ids, expected in zip(prompts, reference):
            np.testing.assert_allclose(scorer.score(ids), expected, atol=1e-4)
        # all at once (right-padded, each at its own positions): the scores each prompt gets alone
        np.testing.assert_allclose(scorer.score_batch(prompts), reference, atol=1e-4)
    assert len(builder.shared_prefix_ids()) > 10  # demonstrations and instructions are shared


def test_texts_are_truncated_to_max_length(task, tiny_llama):
    tok = load_tokenizer(str(tiny_llama))
    builder = PromptBuilder(tok, "{text}", "Category:", LABELS, [], max_length=3)
    assert [len(tok(t, add_special_tokens=False)["input_ids"]) for t in builder.truncate(task.test.texts)] == \
        [3] * len(task.test)


def test_prompt_ends_with_the_answer_prefix_and_labels_follow_a_space(task, tiny_llama):
    assert resolve_template("news", None) == TEMPLATES["news"]
    assert resolve_template("news", "Label:") == (TEMPLATES["news"][0], "Label:")
    assert resolve_template("Text: {text}", None) == ("Text: {text}", CUSTOM_ANSWER_PREFIX)
    tok = load_tokenizer(str(tiny_llama))
    builder = PromptBuilder(tok, "Text: {text}", "Answer:", LABELS, [(task.train.texts[0], 1)], max_length=64)
    prompt = builder.render("goal team")
    assert prompt.endswith("<|im_start|>assistant\nAnswer:")  # through the chat template
    assert "<|im_start|>assistant\nAnswer: tech<|im_end|>" in prompt  # the demonstration, answered
    assert builder.label_ids() == [tok(" " + w, add_special_tokens=False)["input_ids"] for w in LABELS]


def test_calibration_removes_the_content_free_bias():
    # the model prefers label 0 for everything, content-free texts included
    scores = np.log(np.array([[0.6, 0.3, 0.1], [0.9, 0.05, 0.05]]))
    content_free = np.log(np.array([[0.7, 0.2, 0.1], [0.8, 0.1, 0.1]]))
    assert scores.argmax(1).tolist() == [0, 0]
    prior = content_free_prior(content_free)
    np.testing.assert_allclose(prior, [0.75, 0.15, 0.1])
    # 0.6/0.75 < 0.3/0.15: the first example's evidence is for label 1; the second stays label 0
    assert calibrate(scores, prior).argmax(1).tolist() == [1, 0]
    # a flat prior changes nothing
    assert calibrate(scores, np.full(3, 1 / 3)).argmax(1).tolist() == [0, 0]


def test_demonstrations_are_seeded_and_cover_every_class_first(task):
    first = draw_demonstrations(task.train, 4, seed=3)
    assert first == draw_demonstrations(task.train, 4, seed=3)
    assert first != draw_demonstrations(task.train, 4, seed=4)
    assert sorted(y for _, y in first[:3]) == [0, 1, 2]
    assert all(text in task.train.texts for text, _ in first)
    assert draw_demonstrations(task.train, 0, seed=0) == []
    with pytest.raises(BenchError, match="k_shot"):
        draw_demonstrations(task.train, len(task.train) + 1, seed=0)


def test_verbalizers_must_name_every_label_once():
    assert verbalizer_list(LABELS, None) == LABELS
    assert verbalizer_list(LABELS, {"sports": "sport", "tech": "technology", "business": "money"}) == \
        ["sport", "technology", "money"]
    with pytest.raises(BenchError, match="missing"):
        verbalizer_list(LABELS, {"sports": "sport"})
    with pytest.raises(BenchError, match="repeat"):
        verbalizer_list(LABELS, {"sports": "x", "tech": "x", "business": "y"})


def test_zero_shot_run(task, tiny_llama):
    ctx = context(task, tiny_llama)
    result = ZeroShot().run(ctx, ZeroShotParams(k_shot=2, max_length=16))
    assert len(result.predictions) == len(task.test)
    assert set(result.predictions) <= {0, 1, 2}
    assert result.trainable_params == 0 and result.baseline_predictions is None
    from transformers import AutoModelForCausalLM

    assert result.total_params == AutoModelForCausalLM.from_pretrained(tiny_llama).num_parameters()
    assert ctx.tracker.counters["eval_examples"] == len(task.test)
    assert ctx.tracker.counters["eval_tokens"] > len(task.test) * 16
    assert {"load", "prepare", "eval"} <= set(ctx.tracker.time_s)


def test_zero_shot_checks_before_loading():
    zs = ZeroShot()
    encoder = ModelRef(name="minilm", source="/x", provenance="test", architecture="encoder")
    with pytest.raises(BenchError, match="decoder"):
        zs.check(ZeroShotParams(), encoder)
    decoder = ModelRef(name="tiny", source="/x", provenance="test", architecture="decoder")
    with pytest.raises(BenchError, match="template"):
        zs.check(ZeroShotParams(template="no placeholder here"), decoder)
    zs.check(ZeroShotParams(template="Text: {text}\nTopic ({labels}):"), decoder)

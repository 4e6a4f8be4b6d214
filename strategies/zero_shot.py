"""zero-shot: a causal LM prompted with the task and the label names; each label is scored by the
log-likelihood of its verbalized continuation, and the best-scoring label is the prediction (no
generated text is parsed).

Prompt: the filled template is the user's turn (through the chat template where the tokenizer has
one), the answer prefix (e.g. "Category:") opens the answer, and each label is scored as the next
word, after a space: " sports" is one common token where "sports" right after the assistant
header splits oddly (on a small model that alone is worth a large share of its accuracy).

Scoring: a label's score is the sum of its tokens' log-probabilities (the probability of the whole
label). Sums favour short labels; calibration removes that bias along with the model's prior for
each label: each example's label probabilities (normalized over the labels) are divided by a prior,
in log space. The prior is, by default, the mean label probability over the evaluated texts
themselves ("batch", Zhou et al. 2023), or that of content-free texts ("N/A", "", "[MASK]";
"content-free", Zhao et al. 2021). With label names that are not words of the task (fresh / rotten
on movie reviews) the content-free prior can leave a small model predicting one class for nearly
every text; the batch prior does not (docs/strategies.md has the measurements).

Speed: the part of the prompt before the text (system prompt, demonstrations, instructions) runs
once per run; each example's remaining prompt runs once, and all its labels are then scored in one
batched forward pass from the prompt's key/value cache, expanded to one row per label."""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.errors import BenchError
from bench.core.params import param
from bench.engine.context import RunContext
from strategies.shared.base import Strategy, StrategyResult
from strategies.shared.label_scoring import (
    PRIORS,
    LabelScorer,
    calibrate,
    content_free_prior,
    load_causal_lm,
    score_prompts,
)
from strategies.shared.prompt_params import PromptParams, check_prompt_params, label_words_for
from strategies.shared.prompts import (
    CUSTOM_ANSWER_PREFIX,
    TEMPLATES,
    PromptBuilder,
    draw_demonstrations,
    resolve_template,
    verbalizer_list,
)
from strategies.shared.served_prompted import served_prompted

__all__ = ["ZeroShot", "ZeroShotParams", "CUSTOM_ANSWER_PREFIX", "TEMPLATES", "LabelScorer", "PromptBuilder",
           "calibrate", "content_free_prior", "draw_demonstrations", "resolve_template", "verbalizer_list"]


@dataclass
class ZeroShotParams(PromptParams):
    """The prompt fields (prompt_params.PromptParams), the text's length and the demonstrations."""

    # tokens of each text kept in the prompt (demonstrations included): twice as many cost a third
    # more time for a small gain
    max_length: int = param(128, ge=8)
    k_shot: int = param(0, ge=0, le=32)  # demonstrations from the train split, drawn with the run's seed


class ZeroShot(Strategy):
    name = "zero-shot"
    uses_bitsandbytes = False
    description = "a causal LM scores each label's continuation after a prompt; optional k-shot and calibration"
    default_model = "smollm2"
    flops_kind = "forward"
    in_default_run = True
    Params = ZeroShotParams
    collapse_advice = ("demonstrations help most where label names are not words of the task: "
                       "--param zero-shot.k_shot=4, or name words with --param zero-shot.verbalizers='{label: word}'")

    def search_space(self, trial):
        return {"template": trial.suggest_categorical("template", list(TEMPLATES)),
                "k_shot": trial.suggest_int("k_shot", 0, 4),
                "calibrate": trial.suggest_categorical("calibrate", [True, False]),
                "calibration_prior": trial.suggest_categorical("calibration_prior", list(PRIORS))}

    def check(self, params: ZeroShotParams, model) -> None:
        check_prompt_params(params, model, self.name)
        if params.k_shot < 0 or params.max_length < 1:
            raise BenchError("zero-shot: k_shot must be >= 0 and max_length >= 1")

    def run(self, ctx: RunContext, p: ZeroShotParams) -> StrategyResult:
        with ctx.tracker.phase("load"):
            tokenizer, model = load_causal_lm(ctx)
        with ctx.tracker.phase("prepare"):
            demos = draw_demonstrations(ctx.data.train, p.k_shot, ctx.seed)
            template, answer_prefix = resolve_template(p.template, p.answer_prefix)

            def make_prompts(words):
                return PromptBuilder(tokenizer, template, answer_prefix, words, demos, p.max_length)

            words = label_words_for(p, model, tokenizer, make_prompts, ctx)
            prompts = make_prompts(words)
            example_ids = prompts.encode_all(ctx.eval.texts)
        with ctx.tracker.phase("eval"):
            scored = score_prompts(model, prompts, example_ids, ctx, p.prior())
        if scored.prior is not None:
            ctx.tracker.log(f"{p.calibration_prior} label prior: " + ", ".join(
                f"{w}={q:.3f}" for w, q in zip(words, scored.prior)))
        scores = scored.scores
        total = sum(t.numel() for t in model.parameters())
        return StrategyResult(scores.argmax(1).tolist(), 0, total,
                              extra_cost={"shared_prefix_tokens": scored.prefix_tokens,
                                          "verbalizers": dict(zip(ctx.data.labels, words))},
                              served=served_prompted(self.name, ctx, model, tokenizer, prompts, scored.prior,
                                                     adapter=False))

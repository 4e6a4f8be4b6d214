"""What zero-shot and instruct-ft share about their prompt: its parameters, their checks before any
model loads, and the label words a run scores (given, the label names, or chosen on train rows)."""

from __future__ import annotations

from dataclasses import dataclass

from bench.core.errors import BenchError
from bench.core.params import param
from bench.engine.context import RunContext
from strategies.shared.label_scoring import PRIORS
from strategies.shared.label_words import is_auto, search_label_words
from strategies.shared.prompts import resolve_template, verbalizer_list


@dataclass
class PromptParams:
    template: str = "terse"  # a name in prompts.TEMPLATES, or a template text with {text} (and {labels})
    answer_prefix: str | None = None  # opens the answer; None: the preset's (CUSTOM_ANSWER_PREFIX for a text)
    # label name -> the words scored; None: the label names; "auto": chosen on 16 train rows per class
    # (label_words.py; then no longer zero-shot)
    verbalizers: dict[str, str] | str | None = None
    calibrate: bool = True  # a small model's raw label scores mostly reflect its prior for each label
    # the calibration's label prior (label_scoring.PRIORS); "batch" by default: "content-free" can
    # leave one class predicted for every row where label names are not words of the task
    calibration_prior: str = param("batch", choices=PRIORS)

    def prior(self) -> str | None:
        """The calibration prior to score with; None: raw scores."""
        return self.calibration_prior if self.calibrate else None


def check_prompt_params(p: PromptParams, model, strategy: str) -> None:
    """A causal LM, a template that resolves, verbalizers that are words or auto: one error each."""
    if getattr(model, "architecture", None) == "encoder":
        raise BenchError(f"{strategy} needs a causal (decoder) language model; '{model.name}' is an encoder: "
                         "use --model smollm2 or another causal LM")
    resolve_template(p.template, p.answer_prefix)
    if p.verbalizers is not None and not is_auto(p.verbalizers) and not (
            isinstance(p.verbalizers, dict) and all(isinstance(v, str) and v.strip() for v in p.verbalizers.values())):
        raise BenchError(f"{strategy} verbalizers must map label names to non-empty words, "
                         "e.g. {sports: sport, tech: technology}, or be auto (chosen on train rows)")


def label_words_for(p: PromptParams, model, tokenizer, make_prompts, ctx: RunContext) -> list[str]:
    """The words scored for each class, in class-id order; `make_prompts(words)` builds the prompts
    the auto search scores (see label_words.search_label_words)."""
    if is_auto(p.verbalizers):
        return search_label_words(model, tokenizer, make_prompts, ctx)
    return verbalizer_list(ctx.data.labels, p.verbalizers)

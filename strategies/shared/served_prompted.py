"""The served prompted causal LM: zero-shot (the frozen base, by path) and instruct-ft (its LoRA adapter
on that base, or merged into it), with the run's prompt (template, answer prefix, label words,
demonstrations, text length) and calibration.

Calibration keeps the run's own label prior: the one measured on the evaluated split (the "batch"
prior) or on content-free texts. A served model does not re-estimate it on each request, so a text's
label never depends on the other texts sent with it, and the run's own test texts get the run's own
predictions. Labels are scored in the batches the run scored them in (label_scoring.score_examples)."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from strategies.shared.base import ShipSize
from strategies.shared.served import (ServeContext, base_reference, checkpoint_bytes, folder_bytes, prepared_folder,
                                      save_tokenizer, serve_context, write_manifest)


class ServedPrompted:
    def __init__(self, model, tokenizer, labels: list[str], strategy: str, prompt: dict, prior, env: ServeContext,
                 layout: str = "base", base: str | None = None):
        self.model, self.tokenizer, self.labels, self.strategy = model, tokenizer, list(labels), strategy
        self.prompt = prompt  # template, answer_prefix, words, demos [(text, class id)], max_length
        self.prior = None if prior is None else np.asarray(prior, dtype=np.float64)
        self.env, self.layout, self.base = env, layout, base
        self._scoring = None  # (prompts, scorer), built on first use: the shared prefix runs once

    def _scorer(self):
        from strategies.shared.label_scoring import LabelScorer
        from strategies.shared.prompts import PromptBuilder

        if self._scoring is None:
            p = self.prompt
            prompts = PromptBuilder(self.tokenizer, p["template"], p["answer_prefix"], p["words"],
                                    [(text, int(y)) for text, y in p["demos"]], p["max_length"])
            self._scoring = prompts, LabelScorer(self.model, prompts.label_ids(), prompts.shared_prefix_ids())
        return self._scoring

    def predict(self, texts: list[str]) -> tuple[list[int], list[list[float]] | None]:
        from strategies.shared.label_scoring import calibrate, log_softmax, score_examples

        if not len(texts):
            return [], []
        prompts, scorer = self._scorer()
        scores = score_examples(scorer, prompts.encode_all(list(texts)), self.env, count_as=None, desc="predicting")
        if self.prior is not None:
            scores = calibrate(scores, self.prior)
        return scores.argmax(1).astype(int).tolist(), np.exp(log_softmax(scores)).tolist()

    def save(self, folder: Path) -> ShipSize:
        folder = prepared_folder(folder)
        if self.layout == "peft":
            self.model.save_pretrained(str(folder))
            (folder / "README.md").unlink(missing_ok=True)  # peft's empty card; ours is MODEL_CARD.md
        elif self.layout == "full":
            self.model.save_pretrained(str(folder))
        tokenizer_files = save_tokenizer(self.tokenizer, folder)
        write_manifest(folder, "prompted", self.strategy, self.labels, self.base, layout=self.layout,
                       prompt=self.prompt, prior=None if self.prior is None else self.prior.tolist(),
                       precision=self.env.precision, merge_blocked=self._merge_blocked())
        if self.base is None:
            return ShipSize(folder_bytes(folder))
        return ShipSize(folder_bytes(folder, tokenizer_files), checkpoint_bytes(self.base))

    def _merge_blocked(self) -> str | None:
        if self.layout == "base":
            return f"{self.strategy} trains nothing: the base model is served as it is, with its prompt"
        return "already merged" if self.layout == "full" else None

    def merged(self) -> "ServedPrompted | str":
        why = self._merge_blocked()
        if why:
            return why
        from bench.engine.compat import peft_calls

        with peft_calls():
            model = copy.deepcopy(self.model).merge_and_unload()
        return ServedPrompted(model, self.tokenizer, self.labels, self.strategy, self.prompt, self.prior, self.env,
                              layout="full")


def served_prompted(strategy: str, ctx, model, tokenizer, prompts, prior, adapter: bool) -> ServedPrompted:
    """The run's model and prompt as served; `prompts` is the run's PromptBuilder."""
    prompt = {"template": prompts.template_text, "answer_prefix": prompts.answer_prefix, "words": list(prompts.words),
              "demos": [[text, int(y)] for text, y in prompts.demo_rows], "max_length": prompts.max_length}
    return ServedPrompted(model, tokenizer, ctx.data.labels, strategy, prompt, prior, serve_context(ctx),
                          "peft" if adapter else "base", base_reference(ctx.model_path()))


def load(folder: Path, manifest: dict, device: str) -> ServedPrompted:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from bench.engine.device import use_bf16

    env = ServeContext(device, manifest.get("precision", "auto"))
    layout = manifest.get("layout", "base")
    dtype = torch.bfloat16 if use_bf16(device, env.precision) else torch.float32  # as label_scoring.load_causal_lm
    source = str(folder) if layout == "full" else manifest["base_model"]
    model = AutoModelForCausalLM.from_pretrained(source, dtype=dtype).to(device).eval()
    if layout == "peft":
        from peft import PeftModel

        from bench.engine.compat import peft_calls

        with peft_calls():
            model = PeftModel.from_pretrained(model, str(folder), is_trainable=False).eval()
    tokenizer = AutoTokenizer.from_pretrained(str(folder))
    return ServedPrompted(model, tokenizer, manifest["labels"], manifest["strategy"], manifest["prompt"],
                          manifest.get("prior"), env, layout, manifest.get("base_model"))

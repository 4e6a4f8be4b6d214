"""The served sequence classifier: full-ft, bitfit and every peft adapter on a classifier (lora, qlora,
dora, ia3, prompt- and prefix-tuning, adalora, vera, lora-8bit).

Three layouts on disk: `full` (the whole model in save_pretrained form: full-ft, a merged adapter),
`peft` (peft's save_pretrained of the adapter and the trained head; the frozen base by path) and
`tensors` (bitfit: the trained biases and head as one safetensors file beside the base by path).
`predict` runs the engine's length-sorted forward loop at the evaluation batch size, as the run's
evaluation did, so the run's own test texts get the run's own predictions."""

from __future__ import annotations

import copy
import logging
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np

from bench.core.errors import BenchError
from strategies.shared.base import ShipSize
from strategies.shared.served import (ServeContext, base_reference, checkpoint_bytes, folder_bytes, prepared_folder,
                                      save_tokenizer, serve_context, write_manifest)

TENSORS_FILE = "trained.safetensors"
QUANTIZED = {"4bit": "4-bit NF4", "8bit": "LLM.int8"}


class ServedClassifier:
    def __init__(self, model, tokenizer, labels: list[str], strategy: str, max_length: int, env: ServeContext,
                 layout: str = "full", base: str | None = None, base_kind: str = "full",
                 int8_threshold: float | None = None, merge_blocked: str | None = None):
        self.model, self.tokenizer, self.labels = model, tokenizer, list(labels)
        self.strategy, self.max_length, self.env = strategy, max_length, env
        self.layout, self.base, self.base_kind = layout, base, base_kind
        self.int8_threshold = int8_threshold
        self.merge_blocked = merge_blocked if merge_blocked is not None else self._merge_blocked()

    def _merge_blocked(self) -> str | None:
        if self.layout == "full":
            return (f"{self.strategy} trains every weight: the saved model is already whole, with no adapter to merge"
                    if self.base is None else "already one model")
        if self.layout == "tensors":
            return f"{self.strategy} trains the base's own tensors (biases, head): there is no adapter to merge"
        if self.base_kind in QUANTIZED:
            return (f"the base is {QUANTIZED[self.base_kind]}: merging would round the adapter into quantized weights "
                    "(peft can only dequantize, add and quantize again), so it is served unmerged")
        if getattr(self.model, "peft_config", {}) and self.model.peft_config["default"].is_prompt_learning:
            return (f"peft cannot merge {self.strategy}: its virtual tokens are inputs to the model, not a change of "
                    "its weights")
        return None

    def predict(self, texts: list[str]) -> tuple[list[int], list[list[float]] | None]:
        import torch

        from bench.engine.tokens import encode
        from bench.engine.training import forward_sorted, pad_id_of

        if not len(texts):
            return [], []
        enc = encode(self.tokenizer, list(texts), np.zeros(len(texts)), self.max_length, cache=False)
        logits = forward_sorted(self.model, enc, self.env, pad_id_of(self.tokenizer), lambda out, batch: out.logits,
                                desc="predicting", count_as=None)
        probs = torch.softmax(torch.from_numpy(logits), -1).numpy()
        return logits.argmax(-1).astype(int).tolist(), probs.tolist()

    def save(self, folder: Path) -> ShipSize:
        folder = prepared_folder(folder)
        if self.layout == "peft":
            with warnings.catch_warnings():  # adalora's rank-0 matrices (see adapters.adapter_bytes)
                warnings.filterwarnings("ignore", message=r".*LoRA tensor\(s\) have invalid shape")
                self.model.save_pretrained(str(folder))
            (folder / "README.md").unlink(missing_ok=True)  # peft's empty card; ours is MODEL_CARD.md
        elif self.layout == "tensors":
            from safetensors.torch import save_file

            save_file({n: t.detach().float().contiguous() for n, t in self.model.named_parameters() if t.requires_grad},
                      str(folder / TENSORS_FILE))
        else:
            self.model.save_pretrained(str(folder))
        tokenizer_files = save_tokenizer(self.tokenizer, folder)
        write_manifest(folder, "classifier", self.strategy, self.labels, self.base, layout=self.layout,
                       base_kind=self.base_kind, int8_threshold=self.int8_threshold, max_length=self.max_length,
                       precision=self.env.precision, merge_blocked=self.merge_blocked,
                       left_pad_prompt=self._left_pads())
        if self.base is None:
            return ShipSize(folder_bytes(folder))
        # the tokenizer's files are the base's own: a deployment of the base already has them
        return ShipSize(folder_bytes(folder, tokenizer_files), checkpoint_bytes(self.base))

    def _left_pads(self) -> bool:
        from strategies.shared.soft_prompts import left_pad_prompted_rows

        inner = self.model.get_base_model() if hasattr(self.model, "get_base_model") else self.model
        return any(hook is left_pad_prompted_rows for hook in getattr(inner, "_forward_pre_hooks", {}).values())

    def merged(self) -> "ServedClassifier | str":
        if self.merge_blocked:
            return self.merge_blocked
        from bench.engine.compat import peft_calls

        with peft_calls():
            model = copy.deepcopy(self.model).merge_and_unload()
        return ServedClassifier(model, self.tokenizer, self.labels, self.strategy, self.max_length, self.env,
                                merge_blocked=f"already merged ({self.strategy} into its base)")


def served_classifier(strategy: str, ctx, built, p, layout: str, base_kind: str = "full") -> ServedClassifier:
    """The run's trained classifier as served: on the run's device, at its precision and max length."""
    base = None if layout == "full" else base_reference(ctx.model_path())
    return ServedClassifier(built.model, built.tokenizer, ctx.data.labels, strategy, p.max_length, serve_context(ctx),
                            layout, base, base_kind, getattr(p, "int8_threshold", None))


def load(folder: Path, manifest: dict, device: str) -> ServedClassifier:
    from transformers import AutoModelForSequenceClassification

    import torch

    env = ServeContext(device, manifest.get("precision", "auto"))
    labels, layout = manifest["labels"], manifest.get("layout", "full")
    tokenizer = load_tokenizer_of(folder)
    if layout == "full":
        model = AutoModelForSequenceClassification.from_pretrained(str(folder), dtype=torch.float32).to(device)
    else:
        model = load_frozen_base(manifest, labels, env)
        if layout == "peft":
            model = attach_adapter(model, folder, manifest)
        elif layout == "tensors":
            load_trained_tensors(model, folder / TENSORS_FILE)
        else:
            raise BenchError(f"{folder}: unknown classifier layout {layout!r}")
    model.eval()
    return ServedClassifier(model, tokenizer, labels, manifest["strategy"], manifest["max_length"], env, layout,
                            manifest.get("base_model"), manifest.get("base_kind", "full"),
                            manifest.get("int8_threshold"), manifest.get("merge_blocked"))


def load_tokenizer_of(folder: Path):
    from strategies.shared.trained import load_tokenizer

    return load_tokenizer(str(folder))


def load_frozen_base(manifest: dict, labels: list[str], env: ServeContext):
    """The base as the run loaded it (bases.load_base: same kind, dtype and k-bit preparation), with the
    head cast to fp32 before the trained head's weights land in it, as the run trained it."""
    from bench.engine.trackers import Tracker
    from strategies.shared.bases import load_base
    from strategies.shared.trained import classifier_head_names

    base = manifest["base_model"]
    ctx = SimpleNamespace(data=SimpleNamespace(labels=labels), device=env.device, precision=env.precision, seed=0,
                          tracker=Tracker(quiet=True), model_path=lambda: base)
    params = SimpleNamespace(gradient_checkpointing=False, int8_threshold=manifest.get("int8_threshold") or 6.0,
                             attn_implementation="")
    model = load_base(manifest.get("base_kind", "full"), ctx, params).model
    for name in classifier_head_names(model):
        getattr(model, name).float()
    return model


def attach_adapter(model, folder: Path, manifest: dict):
    from peft import PeftModel, PeftType

    from bench.engine.compat import peft_calls, prefix_tuning_through_cache
    from bench.engine.four_bit import import_bitsandbytes
    from strategies.shared.soft_prompts import left_pad_prompted_rows, not_the_inputs_embeds_notice

    import_bitsandbytes()
    if manifest.get("left_pad_prompt"):
        model.register_forward_pre_hook(left_pad_prompted_rows, with_kwargs=True)
        logging.getLogger("transformers.modeling_layers").addFilter(not_the_inputs_embeds_notice)
    with peft_calls(), warnings.catch_warnings():
        # AdaLoRA keeps its rank pattern by parameter name (`...q_proj.lora_E`), which peft's generic
        # key check compares with module names and calls unmatched; AdaLoRA's own loader applies it
        # (the reloaded adapter predicts as the trained one: tests/unit/strategies/test_served.py)
        warnings.filterwarnings("ignore", message=r"The following rank_pattern keys did not match")
        peft_model = PeftModel.from_pretrained(model, str(folder), is_trainable=False)
    if peft_model.peft_config["default"].peft_type == PeftType.PREFIX_TUNING:
        prefix_tuning_through_cache(peft_model)
    return peft_model


def load_trained_tensors(model, path: Path) -> None:
    from safetensors.torch import load_file

    state = load_file(str(path))
    missing_here = sorted(set(state) - {n for n, _ in model.named_parameters()})
    if missing_here:
        raise BenchError(f"{path}: tensors {missing_here[:3]} are not in the base model; is it the same base?")
    params = dict(model.named_parameters())
    import torch

    with torch.no_grad():
        for name, tensor in state.items():
            params[name].data = tensor.to(params[name].device)

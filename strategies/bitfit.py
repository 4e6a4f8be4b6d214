"""bitfit: only the bias terms of a frozen model and its classification head train (Ben Zaken et
al. 2022). Not a peft method: the freezing is done here, the training loop is the shared one."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

from bench.core.errors import BenchError
from bench.engine.context import RunContext
from bench.engine.kernels import apply_speed_params
from bench.engine.training import retuned
from strategies.shared.adapters import AdapterTrainParams, training_search_space
from strategies.shared.bases import load_base
from strategies.shared.model_checks import model_type_of
from strategies.shared.served_classifier import served_classifier
from strategies.shared.trained import Built, TrainedStrategy, classifier_head_names


@dataclass
class BitFitParams(AdapterTrainParams):
    """On MiniLM (SmolLM2, like every Llama, has no bias terms at all), with full-ft's measured
    length and epochs (128 tokens, 2 epochs, 16 rows a step). Biases need an lr well above full
    fine-tuning's (the BitFit paper used 1e-4 to 1e-3 on BERT-base with more epochs; ours comes from the
    learning-rate sweep in experiments/, docs/strategies.md)."""

    lr: float = retuned("lr", 1e-2)
    epochs: int = retuned("epochs", 2)
    batch_size: int = retuned("batch_size", 16)
    max_length: int = retuned("max_length", 128)


def backbone_biases(model) -> list[str]:
    """Names of the bias parameters outside the classification head."""
    heads = tuple(f"{h}." for h in classifier_head_names(model))
    return [n for n, _ in model.named_parameters() if n.endswith(".bias") and not n.startswith(heads)]


def train_only_biases_and_head(model) -> int:
    """Freeze everything but the backbone's biases and the head; returns how many biases train."""
    biases = set(backbone_biases(model))
    heads = tuple(f"{h}." for h in classifier_head_names(model))
    for name, tensor in model.named_parameters():
        tensor.requires_grad = name in biases or name.startswith(heads)
    return len(biases)


def trainable_bytes(model) -> int:
    """Bytes of a safetensors file holding what trained (the biases and the head): BitFit's adapter."""
    from safetensors.torch import save_file

    state = {n: t.detach().contiguous() for n, t in model.named_parameters() if t.requires_grad}
    with tempfile.TemporaryDirectory(prefix="ftbench-bitfit-") as folder:
        save_file(state, Path(folder) / "bitfit.safetensors")
        return (Path(folder) / "bitfit.safetensors").stat().st_size


def has_backbone_biases(model_ref) -> bool | None:
    """Whether the model has bias terms, from a weightless (meta-device) copy built from its config;
    None where the config cannot be had without loading. Kept per config and transformers release
    (bench.engine.memo): building the copy imports the modeling code, seconds before any run."""
    import importlib.metadata

    from bench.engine.memo import remembered

    model_type = model_type_of(model_ref)
    if model_type is None:
        return None
    config_file = Path(str(model_ref.source)) / "config.json"
    config_text = config_file.read_text() if config_file.is_file() else None
    key = [model_type, config_text, importlib.metadata.version("transformers")]
    return remembered("backbone-biases", key, lambda: _has_backbone_biases(model_ref, model_type, config_file))


def _has_backbone_biases(model_ref, model_type: str, config_file: Path) -> bool:
    import torch
    from transformers import AutoConfig, AutoModelForSequenceClassification

    config = (AutoConfig.from_pretrained(str(model_ref.source)) if config_file.is_file()
              else AutoConfig.for_model(model_type))  # a GGUF's or random model's type: its defaults
    config.num_labels = 2
    with torch.device("meta"):
        skeleton = AutoModelForSequenceClassification.from_config(config)
    return bool(backbone_biases(skeleton))


def no_bias_error(model_name: str) -> BenchError:
    return BenchError(f"bitfit: model '{model_name}' has no bias terms (Llama-style models have none), so "
                      "only the head would train; use --model minilm or another model with biases")


class BitFit(TrainedStrategy):
    name = "bitfit"
    uses_bitsandbytes = False
    description = "only the bias terms and the classification head train (BitFit)"
    default_model = "minilm"
    flops_kind = "adapter"
    Params = BitFitParams

    def search_space(self, trial):
        return {**training_search_space(trial, 1e-4, 3e-2, max_epochs=4),
                "batch_size": trial.suggest_categorical("batch_size", [8, 16, 32])}

    def check(self, params: BitFitParams, model) -> None:
        if has_backbone_biases(model) is False:
            raise no_bias_error(model.name)

    def build(self, ctx: RunContext, p: BitFitParams):
        base = load_base("full", ctx, p)
        if not train_only_biases_and_head(base.model):
            raise no_bias_error(ctx.model.name)
        return Built(apply_speed_params(base.model, p, log=ctx.tracker.log), base.tokenizer)

    def extra_cost(self, model) -> dict:
        return {"adapter_bytes": trainable_bytes(model)}

    def served(self, ctx: RunContext, built: Built, p: BitFitParams):
        return served_classifier(self.name, ctx, built, p, "tensors")  # the biases and head beside the base

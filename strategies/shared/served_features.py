"""The served feature-extract model: the frozen encoder (referenced by path, loaded on first use: a run
whose embeddings were all cached never loaded it), its pooling, and the fitted head: scikit-learn's
logistic regression or the MLP, both as safetensors (data, not a pickle). Embeddings go through the engine's
length-sorted forward loop at the evaluation batch size, as the run's did."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from strategies.shared.base import ShipSize
from strategies.shared.served import (ServeContext, base_reference, checkpoint_bytes, folder_bytes, load_logreg,
                                      prepared_folder, save_logreg, save_tokenizer, serve_context, write_manifest)

if TYPE_CHECKING:
    import torch

LOGREG_FILE, MLP_FILE = "logreg_head.safetensors", "mlp_head.safetensors"


def pool(output, batch: dict, pooling: str) -> "torch.Tensor":
    """mean over real tokens, the first ([CLS]) token, or the last real token (right padding)."""
    import torch

    hidden = output.last_hidden_state.float()
    mask = batch["attention_mask"].unsqueeze(-1).float()
    if pooling == "mean":
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
    if pooling == "cls":
        return hidden[:, 0]
    last = batch["attention_mask"].sum(1) - 1
    return hidden[torch.arange(len(hidden)), last]


def normalized(x: np.ndarray) -> np.ndarray:
    """L2-normalized rows (sentence encoders are trained so)."""
    return x / np.linalg.norm(x, axis=1, keepdims=True).clip(1e-12)


def mlp_head(dim: int, hidden: int, n_classes: int):
    """The MLP head's shape: one hidden layer (its dropout is off when serving)."""
    import torch

    return torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.ReLU(), torch.nn.Dropout(0.1),
                               torch.nn.Linear(hidden, n_classes))


class ServedFeatures:
    def __init__(self, base: str, tokenizer, labels: list[str], pooling: str, max_length: int, normalize: bool,
                 head_kind: str, head, env: ServeContext, encoder=None, strategy: str = "feature-extract"):
        self.base, self.tokenizer, self.labels = base, tokenizer, list(labels)
        self.pooling, self.max_length, self.normalize = pooling, max_length, normalize
        self.head_kind, self.head, self.env, self.encoder, self.strategy = head_kind, head, env, encoder, strategy

    def _encoder(self):
        if self.encoder is None:
            from transformers import AutoModel

            self.encoder = AutoModel.from_pretrained(self.base).to(self.env.device).eval()
            self.encoder.requires_grad_(False)
        return self.encoder

    def embed(self, texts: list[str]) -> np.ndarray:
        from bench.engine.tokens import encode
        from bench.engine.training import forward_sorted, pad_id_of

        enc = encode(self.tokenizer, list(texts), np.zeros(len(texts)), self.max_length, cache=False)
        x = forward_sorted(self._encoder(), enc, self.env, pad_id_of(self.tokenizer),
                           lambda out, batch: pool(out, batch, self.pooling), desc="embedding", count_as=None)
        return normalized(x) if self.normalize else x

    def predict(self, texts: list[str]) -> tuple[list[int], list[list[float]] | None]:
        if not len(texts):
            return [], []
        return self.predict_embedded(self.embed(texts))

    def predict_embedded(self, x: np.ndarray) -> tuple[list[int], list[list[float]]]:
        """Class ids and probabilities from embeddings (the run's own, or `embed`'s)."""
        import torch

        if self.head_kind == "logreg":
            probs = np.zeros((len(x), len(self.labels)))
            probs[:, self.head.classes_] = self.head.predict_proba(x)  # a class absent from train: 0
            return [int(y) for y in self.head.predict(x)], probs.tolist()
        self.head.eval()
        with torch.no_grad():
            logits = self.head(torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32)))
        return logits.argmax(-1).tolist(), torch.softmax(logits, -1).tolist()

    def save(self, folder: Path) -> ShipSize:
        folder = prepared_folder(folder)
        if self.head_kind == "logreg":
            save_logreg(self.head, folder / LOGREG_FILE)
            shape = {}
        else:
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in self.head.state_dict().items()}, str(folder / MLP_FILE))
            shape = {"dim": self.head[0].in_features, "hidden": self.head[0].out_features}
        tokenizer_files = save_tokenizer(self.tokenizer, folder)
        write_manifest(folder, "features", self.strategy, self.labels, self.base, pooling=self.pooling,
                       max_length=self.max_length, normalize=self.normalize, head=self.head_kind,
                       precision=self.env.precision, merge_blocked=self.merged(), **shape)
        return ShipSize(folder_bytes(folder, tokenizer_files), checkpoint_bytes(self.base))

    def merged(self) -> str:
        return "feature-extract trains a head on a frozen encoder: there is no adapter to merge"


def served_features(ctx, tokenizer, p, pooling: str, head_kind: str, head, encoder) -> ServedFeatures:
    """The run's head on its frozen encoder (the loaded one, or None where every split was cached)."""
    return ServedFeatures(base_reference(ctx.model_path()), tokenizer, ctx.data.labels, pooling, p.max_length,
                          p.normalize, head_kind, head, serve_context(ctx), encoder)


def load(folder: Path, manifest: dict, device: str) -> ServedFeatures:
    from strategies.shared.trained import load_tokenizer

    if manifest["head"] == "logreg":
        head = load_logreg(folder / LOGREG_FILE)
    else:
        from safetensors.torch import load_file

        head = mlp_head(manifest["dim"], manifest["hidden"], len(manifest["labels"]))
        head.load_state_dict(load_file(str(folder / MLP_FILE)))
    tokenizer = load_tokenizer(str(folder))
    return ServedFeatures(manifest["base_model"], tokenizer, manifest["labels"], manifest["pooling"],
                          manifest["max_length"], manifest["normalize"], manifest["head"], head,
                          ServeContext(device, manifest.get("precision", "auto")), strategy=manifest["strategy"])

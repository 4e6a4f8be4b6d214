"""The served SetFit model: the package's own SetFitModel (the fine-tuned sentence encoder and its
logistic-regression head), saved and loaded with its own save_pretrained / from_pretrained. The whole
encoder trained, so nothing is shared with a base: all of it ships."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from strategies.shared.base import ShipSize
from strategies.shared.served import folder_bytes, prepared_folder, write_manifest


class ServedSetFit:
    def __init__(self, model, labels: list[str], max_length: int, strategy: str = "setfit"):
        self.model, self.labels, self.max_length, self.strategy = model, list(labels), max_length, strategy

    def predict(self, texts: list[str]) -> tuple[list[int], list[list[float]] | None]:
        if not len(texts):
            return [], []
        ids = np.asarray(self.model.predict(list(texts), as_numpy=True))
        probs = np.zeros((len(texts), len(self.labels)))
        probs[:, self.model.model_head.classes_] = np.asarray(self.model.predict_proba(list(texts), as_numpy=True))
        return [int(y) for y in ids], probs.tolist()

    def save(self, folder: Path) -> ShipSize:
        folder = prepared_folder(folder)
        self.model.save_pretrained(str(folder))
        (folder / "README.md").unlink(missing_ok=True)  # setfit's generated card; ours is MODEL_CARD.md
        write_manifest(folder, "setfit", self.strategy, self.labels, None, max_length=self.max_length,
                       merge_blocked=self.merged())
        return ShipSize(folder_bytes(folder))

    def merged(self) -> str:
        return "setfit fine-tunes the whole encoder: the saved model is already whole, with no adapter to merge"


def load(folder: Path, manifest: dict, device: str) -> ServedSetFit:
    from setfit import SetFitModel

    model = SetFitModel.from_pretrained(str(folder), device=device)  # its head is a pickle: trusted folders only
    model.model_body.max_seq_length = manifest["max_length"]
    return ServedSetFit(model, manifest["labels"], manifest["max_length"], manifest["strategy"])

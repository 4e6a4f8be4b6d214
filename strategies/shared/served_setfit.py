"""The served SetFit model: the package's SetFitModel, its fine-tuned sentence encoder saved in
sentence-transformers form and its logistic-regression head as safetensors arrays (setfit's own
save_pretrained pickles the head, and a pickle runs whatever it holds on load). The whole encoder
trained, so nothing is shared with a base: all of it ships."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from strategies.shared.base import ShipSize
from strategies.shared.served import folder_bytes, load_logreg, prepared_folder, save_logreg, write_manifest

BODY, HEAD = "encoder", "logreg_head.safetensors"


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
        self.model.model_body.save(str(folder / BODY), create_model_card=False)
        save_logreg(self.model.model_head, folder / HEAD)
        write_manifest(folder, "setfit", self.strategy, self.labels, None, max_length=self.max_length,
                       merge_blocked=self.merged())
        return ShipSize(folder_bytes(folder))

    def merged(self) -> str:
        return "setfit fine-tunes the whole encoder: the saved model is already whole, with no adapter to merge"


def load(folder: Path, manifest: dict, device: str) -> ServedSetFit:
    from sentence_transformers import SentenceTransformer
    from setfit import SetFitModel

    body = SentenceTransformer(str(folder / BODY), device=device)
    body.max_seq_length = manifest["max_length"]
    model = SetFitModel(model_body=body, model_head=load_logreg(folder / HEAD))
    return ServedSetFit(model, manifest["labels"], manifest["max_length"], manifest["strategy"])

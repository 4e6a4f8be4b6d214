"""`bench predict` and `bench export` in-process on a tiny LoRA run saved as `--save-models` saves it
(seconds): the CSV holds the run's labels and each class's probability, a folder works as a run id does,
and the merged export is a plain transformers model with the same labels."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from bench.commands import cli
from bench.core.record import Record
from bench.running.saved_models import save_run_model
from strategies import get_strategy
from tests.faults.test_bad_input import keep_signals  # noqa: F401 - fixture
from tests.tiny import context


def test_predict_and_export_a_saved_lora_run(task, tiny_llama, tmp_path, keep_signals):  # noqa: F811
    strategy = get_strategy("lora")
    result = strategy.run(context(task, tiny_llama), strategy.Params(epochs=1, batch_size=8, max_length=16))
    results = tmp_path / "results"
    rec = Record.from_dict({"run_id": "tinylora", "status": "ok", "strategy": "lora"})
    block = save_run_model(rec, result.served, results)
    assert block["path"] == "models/tinylora", block
    (results / "tinylora.json").write_text(json.dumps({"run_id": "tinylora", "status": "ok"}))
    pd.DataFrame({"body": task.test.texts}).to_csv(tmp_path / "in.csv", index=False)

    for target in ("tinylora", str(results / "models" / "tinylora")):
        out = tmp_path / "out" / "predictions.csv"
        code = cli.main(["predict", target, "--results", str(results), "--input", str(tmp_path / "in.csv"),
                         "--text-col", "body", "--output", str(out)])
        table = pd.read_csv(out)
        assert code == 0 and table["label_id"].tolist() == result.predictions
        assert table["label"].tolist() == [task.labels[i] for i in result.predictions]
        probs = table[[f"p_{x}" for x in task.labels]].to_numpy()
        assert np.allclose(probs.sum(1), 1, atol=1e-4) and (probs.argmax(1) == table["label_id"]).all()

    code = cli.main(["export", "tinylora", "--results", str(results), "--merged", str(tmp_path / "merged")])
    assert code == 0
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tok = AutoTokenizer.from_pretrained(tmp_path / "merged")
    model = AutoModelForSequenceClassification.from_pretrained(tmp_path / "merged").eval()
    with torch.no_grad():
        labels = [int(model(**tok(t, truncation=True, max_length=16, return_tensors="pt")).logits.argmax(-1))
                  for t in task.test.texts]
    assert labels == result.predictions

"""End-to-end with the real shipped models: `bench run --save-models` keeps feature-extract, lora and
zero-shot, with their serving cost measured (the suite's other runs skip it); `bench predict` on the run's own
test texts gives the record's own predictions; `bench export` of lora, loaded with plain transformers in a
fresh Python, gives the same labels. Slow (~3 minutes)."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import textwrap

import pandas as pd
import pytest

from bench.commands import cli
from bench.core.records import iter_records
from bench.running.config import RunSpec
from bench.running.worker import prepare_data
from tests.conftest import run_bench
from tests.faults.test_bad_input import keep_signals  # noqa: F401 - fixture

pytestmark = pytest.mark.slow


def test_saved_models_predict_and_export(tmp_path, keep_signals):  # noqa: F811
    results = tmp_path / "r"
    out = run_bench("run", "--strategies", "feature-extract,lora,zero-shot", "--per-class", "8,4,6", "--save-models",
                    "--results-dir", str(results), "--no-report", env={"FTBENCH_SERVING": "on"})
    assert out.returncode == 0, out.stderr[-3000:]
    recs = {r.strategy: r for r in iter_records(results)}
    assert set(recs) == {"feature-extract", "lora", "zero-shot"} and "model saved" in out.stdout
    for name, rec in recs.items():  # the real models served: timed, sized, never zeros
        s = rec.serving
        assert s.measured and s.error is None and 0 < s.latency_p50_ms <= s.latency_p95_ms, (name, s)
        assert s.throughput_per_s > 0 and s.ship_total_bytes == s.ship_specific_bytes + s.ship_base_bytes, name
    # lora merges into its base: one piece to ship, the whole model, no base beside it
    merged = recs["lora"].serving.merged
    assert merged is not None and merged.measured and merged.ship_base_bytes == 0, recs["lora"].serving
    assert merged.ship_total_bytes > 10 * recs["lora"].serving.ship_specific_bytes
    assert recs["zero-shot"].serving.ship_specific_bytes < recs["lora"].serving.ship_specific_bytes
    texts = prepare_data(RunSpec(**recs["lora"].config)).test.texts  # one split: the same test rows for all
    with open(tmp_path / "texts.csv", "w", newline="") as fh:
        csv.writer(fh).writerows([["text"], *[[t] for t in texts]])
    for name, rec in recs.items():
        assert rec.saved_model["path"] == f"models/{rec.run_id}" and rec.saved_model["base_bytes"] > 0, name
        assert (results / "models" / rec.run_id / "MODEL_CARD.md").is_file()
        output = tmp_path / f"{name}.csv"
        code = cli.main(["predict", rec.run_id, "--results", str(results), "--input", str(tmp_path / "texts.csv"),
                         "--output", str(output)])
        table = pd.read_csv(output)
        assert code == 0 and table["label_id"].tolist() == rec.predictions, name
        assert table["label"].tolist() == [rec.dataset.labels[i] for i in rec.predictions]
        assert [f"p_{x}" for x in rec.dataset.labels] == [c for c in table.columns if c.startswith("p_")]

    merged = tmp_path / "merged"
    code = cli.main(["export", recs["lora"].run_id, "--results", str(results), "--merged", str(merged)])
    assert code == 0 and (merged / "config.json").is_file() and not (merged / "adapter_config.json").exists()
    plain = textwrap.dedent(f"""
        import json, sys, torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer
        tok = AutoTokenizer.from_pretrained({str(merged)!r})
        model = AutoModelForSequenceClassification.from_pretrained({str(merged)!r}).eval()
        texts = json.load(sys.stdin)
        with torch.no_grad():  # one text at a time: no padding, nothing of ftbench
            labels = [int(model(**tok(t, truncation=True, max_length={recs['lora'].params['max_length']},
                                      return_tensors="pt")).logits.argmax(-1)) for t in texts]
        print(json.dumps(labels))
    """)
    fresh = subprocess.run([sys.executable, "-c", plain], input=json.dumps(list(texts)), capture_output=True,
                           text=True, timeout=300, cwd=tmp_path)
    assert fresh.returncode == 0, fresh.stderr[-3000:]
    assert json.loads(fresh.stdout.strip().splitlines()[-1]) == recs["lora"].predictions

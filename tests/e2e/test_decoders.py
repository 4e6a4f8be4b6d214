"""End-to-end through the CLI with the real shipped SmolLM2-135M-Instruct (Llama architecture):
zero-shot, LoRA and 4-bit QLoRA on the CPU, on a small BBC News split. Slow: `-m 'not slow'` skips."""

import pytest

from bench.core.records import iter_records
from tests.conftest import run_bench

pytestmark = pytest.mark.slow  # ~3 min of SmolLM2 on 2 CPU cores


def test_zero_shot_lora_qlora_with_smollm2(tmp_path):
    out = run_bench("run", "--strategies", "zero-shot,lora,qlora", "--dataset", "bbc-news", "--seeds", "0",
                    "--per-class", "8,4,6", "--param", "epochs=1", "--param", "max_length=64",
                    "--results-dir", str(tmp_path / "r"), "-o", str(tmp_path / "index.html"), timeout=1500)
    assert out.returncode == 0, out.stderr[-3000:]
    recs = {r.strategy: r.to_dict() for r in iter_records(tmp_path / "r")}
    zs, lora, qlora = recs["zero-shot"], recs["lora"], recs["qlora"]
    assert {r["status"] for r in recs.values()} == {"ok"}
    assert "4-bit-rounded" in lora["model"]["provenance"]
    # zero-shot trains nothing and scores all 5 labels; it must beat chance (0.2) on topics
    assert zs["cost"]["trainable_params"] == 0 and zs["baseline"] is None
    assert zs["metrics"]["balanced_accuracy"] > 0.3, zs["metrics"]
    for rec in (lora, qlora):
        assert rec["baseline"] is not None and len(rec["history"]) == 1
        assert rec["cost"]["adapter_bytes"] > 0
        assert 0 < rec["cost"]["trainable_params"] < rec["cost"]["total_params"]
        assert rec["metrics"]["accuracy"] > rec["baseline"]["accuracy"], (rec["metrics"], rec["baseline"])
    # the same adapters and head on the same model: the same trainable count, 4-bit or not
    assert qlora["cost"]["trainable_params"] == lora["cost"]["trainable_params"]
    assert abs(qlora["cost"]["total_params"] - lora["cost"]["total_params"]) < 0.01 * lora["cost"]["total_params"]
    assert qlora["cost"]["strategy"]["quantized_footprint_mb"] < 0.5 * lora["cost"]["total_params"] * 4 / 2**20
    # 4-bit weights and recomputed activations: the qlora process peaks lower (default split: 1.7 vs 2.6 GB)
    assert qlora["cost"]["peak_rss_mb"] < lora["cost"]["peak_rss_mb"], (qlora["cost"], lora["cost"])

"""End-to-end through the CLI with the real shipped models: ia3 and LoRA on an LLM.int8 base (SmolLM2),
and bitfit (MiniLM), on a tiny BBC News split. Slow: `-m 'not slow'` skips."""

import pytest

from bench.core.records import iter_records
from tests.conftest import run_bench

pytestmark = pytest.mark.slow

# MiniLM (6 BERT layers, hidden 384, feed-forward 1536): the biases of q, k, v, attention output,
# two LayerNorms, intermediate and output per layer, the embeddings' LayerNorm and the pooler
MINILM_BIASES = 6 * (4 * 384 + 2 * 384 + 1536 + 384) + 384 + 384
MINILM_PARAMS = 22_713_216


def test_peft_family_through_the_cli_with_the_shipped_models(tmp_path):
    out = run_bench("run", "--strategies", "ia3,lora-8bit,bitfit", "--dataset", "bbc-news",
                    "--seeds", "0", "--per-class", "8,4,4", "--param", "epochs=1", "--param", "max_length=32",
                    "--results-dir", str(tmp_path / "r"), "-o", str(tmp_path / "index.html"), timeout=1500)
    assert out.returncode == 0, out.stderr[-3000:]
    # no library notice a user cannot act on (the first import of bitsandbytes came through peft here)
    assert "gemm_4bit" not in out.stderr and "Warning" not in out.stderr, out.stderr[-3000:]
    recs = {r.strategy: r.to_dict() for r in iter_records(tmp_path / "r")}
    assert set(recs) == {"ia3", "lora-8bit", "bitfit"}
    assert {r["status"] for r in recs.values()} == {"ok"}, {s: r["error"] for s, r in recs.items()}
    for rec in recs.values():
        assert rec["baseline"] is not None and len(rec["history"]) == 1
        assert 0 < rec["cost"]["trainable_params"] < rec["cost"]["total_params"]
        assert rec["cost"]["adapter_bytes"] >= 4 * rec["cost"]["trainable_params"]
    assert recs["bitfit"]["model"]["name"] == "minilm"
    assert recs["bitfit"]["cost"]["trainable_params"] == MINILM_BIASES + 5 * 384 + 5  # biases + 5-class head
    assert recs["bitfit"]["cost"]["total_params"] == MINILM_PARAMS + 5 * 384 + 5
    ia3, int8 = recs["ia3"]["cost"], recs["lora-8bit"]["cost"]
    assert ia3["trainable_params"] < int8["trainable_params"] / 10  # rescaling vectors, not matrices
    # SmolLM2 in LLM.int8: its linear layers one byte a weight, the embeddings and head fp32
    assert int8["strategy"]["quantized_footprint_mb"] < 0.6 * int8["total_params"] * 4 / 2**20
    html = (tmp_path / "index.html").read_text()
    assert all(name in html for name in recs)

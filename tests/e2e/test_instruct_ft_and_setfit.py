"""End-to-end through the CLI with the real shipped models at a tiny BBC News split: instruct-ft on
SmolLM2 (its baseline is zero-shot on the same prompt) and setfit on MiniLM. Slow: `-m 'not slow'`
skips."""

import pytest

from bench.core.records import iter_records
from tests.conftest import run_bench

pytestmark = pytest.mark.slow


def test_instruct_ft_and_setfit_with_the_shipped_models(tmp_path):
    out = run_bench("run", "--strategies", "instruct-ft,setfit", "--dataset", "bbc-news", "--seeds", "0",
                    "--per-class", "8,2,4", "--param", "instruct-ft.max_length=32", "--param", "setfit.max_steps=4",
                    "--param", "setfit.max_length=64", "--results-dir", str(tmp_path / "r"),
                    "-o", str(tmp_path / "index.html"), timeout=1200)
    assert out.returncode == 0, out.stderr[-3000:]
    recs = {r.strategy: r.to_dict() for r in iter_records(tmp_path / "r")}
    assert {r["status"] for r in recs.values()} == {"ok"}
    ift, setfit = recs["instruct-ft"], recs["setfit"]
    # instruct-ft: adapters only, scored over the 5 labels like zero-shot (chance is 0.2)
    assert 0 < ift["cost"]["trainable_params"] < 0.05 * ift["cost"]["total_params"]
    assert ift["cost"]["adapter_bytes"] > 0 and len(ift["history"]) == 1
    assert ift["baseline"]["accuracy"] > 0.3 and ift["metrics"]["accuracy"] > 0.3, (ift["metrics"], ift["baseline"])
    assert set(ift["predictions"]) <= set(range(5)) and isinstance(ift["warnings"], list)
    # setfit: all of MiniLM (22.7M) and a 5-class head train; MiniLM's embeddings separate topics well
    assert setfit["cost"]["trainable_params"] == setfit["cost"]["total_params"] > 22_000_000
    assert setfit["metrics"]["accuracy"] > 0.6 > setfit["baseline"]["accuracy"], (setfit["metrics"], setfit["baseline"])
    assert "instruct-ft" in (tmp_path / "index.html").read_text() and "setfit" in (tmp_path / "index.html").read_text()

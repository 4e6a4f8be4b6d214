"""Faults of the results folder and of what is in it: read-only, full, corrupt and wrong-shape
records, a storage URL with a password (which must reach no file), NaN losses, the token cache."""

from __future__ import annotations

import json
import math
import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from tests.faults.faultkit import (
    QUICK,
    bench,
    clean_failure,
    files_under,
    records,
    start,
    wait_for,
    workers_of,
)

SECRET = "SEKRET-7f3a"


@pytest.fixture
def tmpfs(tmp_path):
    """Mount a small tmpfs (root only); skip with the reason where that is not allowed."""
    mounted = []

    def mount(name: str, size: str = "1m") -> Path:
        where = tmp_path / name
        where.mkdir()
        out = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            pytest.skip(f"cannot mount a tmpfs here ({out.stderr.strip() or 'mount failed'}); needs root")
        mounted.append(where)
        return where

    yield mount
    for where in mounted:
        subprocess.run(["umount", "-l", str(where)], capture_output=True)


def test_read_only_results_folder_is_one_error_up_front_and_the_report_still_renders(tmp_path, tmpfs, copy_finished):
    disk = tmpfs("ro")
    folder, _ = copy_finished(disk / "results")
    before = {p: p.read_bytes() for p in folder.glob("*.json")}
    remount = subprocess.run(["mount", "-o", "remount,ro", str(disk)], capture_output=True, text=True)
    if remount.returncode != 0:
        pytest.skip(f"cannot remount the tmpfs read-only: {remount.stderr.strip()}")
    out = bench("run", *QUICK, "--seeds", "0,1", "--results-dir", str(folder), "--no-report")
    assert out.returncode == 2
    errors = clean_failure(out.stderr)
    assert len(errors) == 1 and "not writable" in errors[0] and "Read-only" in errors[0], out.stderr
    assert "run(s)" not in out.stdout  # stopped before the matrix, before any model loaded
    report = bench("report", str(folder), "-o", str(tmp_path / "report.html"))
    assert report.returncode == 0 and (tmp_path / "report.html").exists(), report.stderr
    assert {p: p.read_bytes() for p in folder.glob("*.json")} == before


def test_a_disk_that_fills_mid_matrix_stops_cleanly_with_the_report_of_what_exists(tmp_path, tmpfs, copy_finished):
    disk = tmpfs("full", size="1m")
    folder, _ = copy_finished(disk / "results")
    (done,) = records(folder)
    proc = start("run", *QUICK, "--seeds", "0,1,2", "--results-dir", str(folder), "-o", str(tmp_path / "r.html"))
    wait_for(lambda: workers_of(proc.pid), 120, what="the worker of seed 1")
    with open(disk / "filler", "wb") as fh:  # fill the disk while seed 1 runs
        try:
            while True:
                fh.write(b"\0" * 65536)
        except OSError:
            pass
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 1, err
    errors = clean_failure(err)
    assert errors and any("No space left" in e for e in errors), err
    assert "seed 2 ..." not in out  # the matrix stopped instead of failing every later run
    assert "report:" in out and done["run_id"] in (tmp_path / "r.html").read_text()
    assert [r["run_id"] for r in records(folder)] == [done["run_id"]]  # the finished record is intact
    assert not list(folder.glob(".*.tmp"))  # no half-written record left behind


def test_corrupt_and_wrong_shape_records_are_named_and_the_report_renders(tmp_path):
    from bench.core.records import write_record
    from bench.running.config import RunSpec
    from bench.running.results import base_record

    folder = tmp_path / "results"
    spec = RunSpec("feature-extract", "minilm", "bbc-news", {}, [5, 2, 5], "pool", 0, {"C": 1.0}, "cpu")
    ok = base_record(spec, "ok").to_dict()
    ok.update(metrics={"accuracy": 0.9, "balanced_accuracy": 0.9, "macro_f1": 0.9}, cost=None)
    write_record(folder / "ok-without-cost.json", ok)
    odd = dict(base_record(spec, "failed", "boom").to_dict(), run_id="odd1", cost="lots", history=7, metrics=[1])
    write_record(folder / "odd-types.json", odd)
    bad = {"truncated.json": b'{"run_id": "x", "status": "o', "list.json": b"[1, 2]",
           "binary.json": b"\xff\xfe\x00garbage", "no-status.json": b'{"run_id": "y"}',
           "weird-status.json": b'{"run_id": "z", "status": "exploded"}', "empty.json": b""}
    for name, content in bad.items():
        (folder / name).write_bytes(content)
    out = bench("report", str(folder), "-o", str(tmp_path / "report.html"))
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    warnings = [ln for ln in out.stderr.splitlines() if ln.startswith("warning:")]
    for name in bad:
        assert sum(name in w for w in warnings) == 1, (name, out.stderr)
    assert any("ok-without-cost.json" in w and "cost" in w for w in warnings)
    html = (tmp_path / "report.html").read_text()
    assert f"{len(bad)} files in the results folder skipped" in html and "truncated.json" in html
    # `bench run` with such an ok record in the folder: it is skipped, described, no crash
    rerun = bench("run", "--strategies", "feature-extract", "--results-dir", str(folder), "--no-report",
                  "--per-class", "5,2,5", "--dataset", "bbc-news")
    assert "Traceback" not in rerun.stderr


def test_a_storage_url_password_reaches_no_file_and_no_output(tmp_path):
    results, reports = tmp_path / "results", tmp_path / "reports"
    db = tmp_path / "db" / "optuna.db"
    db.parent.mkdir()
    url = f"sqlite:///file:{db}?mode=rwc&uri=true&token={SECRET}"  # sqlite ignores the token: a real run
    before = set(Path(tempfile.gettempdir()).glob("ftbench-*"))
    out = bench("tune", "--strategy", "feature-extract", "--trials", "1", "--per-class", "5,2,5", "--pruner", "none",
                "--storage", url, "--results-dir", str(results), "-q", timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert "token=***" in out.stdout
    rep = bench("report", str(results), "-o", str(reports / "index.html"))
    assert rep.returncode == 0, rep.stderr
    written = files_under(results) + files_under(reports) + [
        p for p in set(Path(tempfile.gettempdir()).glob("ftbench-*")) - before if p.is_file()]
    assert any(p.suffix == ".json" for p in written) and (reports / "index.html") in written
    leaks = [p for p in written if SECRET.encode() in p.read_bytes()]
    assert not leaks, leaks
    for text in (out.stdout, out.stderr, rep.stdout, rep.stderr):
        assert SECRET not in text
    # a password in the userinfo, on an error path: masked in the one error line
    bad = bench("tune", "--strategy", "feature-extract", "--trials", "1", "--per-class", "5,2,5",
                "--storage", f"postgresql://ftbench:{SECRET}@127.0.0.1:9/nodb", "--results-dir", str(results))
    assert bad.returncode == 2 and SECRET not in bad.stderr + bad.stdout and "ftbench:***@" in bad.stderr
    assert len(clean_failure(bad.stderr)) == 1


def test_mask_secrets_covers_userinfo_and_query_credentials():
    from bench.core.secrets import mask_secrets

    assert mask_secrets("postgresql://u:pw@h/db") == "postgresql://u:***@h/db"
    assert mask_secrets("mysql://h/db?password=pw&sslmode=require") == "mysql://h/db?password=***&sslmode=require"
    assert mask_secrets("x https://h/p?api_key=abc&access_token=t y") == "x https://h/p?api_key=***&access_token=*** y"
    assert mask_secrets("sqlite:///results/optuna.db") == "sqlite:///results/optuna.db"


def test_a_diverging_loss_fails_the_run_and_no_nan_reaches_disk(tmp_path):
    import torch

    from bench.core.errors import Diverged
    from bench.core.record import Record
    from bench.core.records import write_record
    from bench.engine.context import RunContext
    from bench.engine.tokens import Encoded
    from bench.engine.trackers import Tracker
    from bench.engine.training import TrainParams, classifier_objective, fit
    from bench.running.worker import finish

    class Exploding(torch.nn.Module):  # a classifier whose logits overflow once trained one step
        def __init__(self):
            super().__init__()
            self.w = torch.nn.Parameter(torch.ones(1))
            self.calls = 0

        def forward(self, input_ids, attention_mask):
            self.calls += 1
            scale = 1.0 if self.calls < 3 else math.inf
            return type("Out", (), {"logits": self.w * scale * torch.ones(len(input_ids), 2)})()

    class Data:
        labels = ["a", "b"]

        @staticmethod
        def class_weights():
            return [1.0, 1.0]

    enc = Encoded([[1, 2, 3]] * 8, torch.tensor([0, 1] * 4).numpy())
    ctx = RunContext(Data(), None, 0, "cpu", Tracker(quiet=True), precision="fp32")
    with pytest.raises(Diverged, match=r"loss became NaN at step 3 \(epoch 2\); lower lr"):
        p = TrainParams(lr=1e-3, epochs=3, batch_size=4)
        fit(Exploding(), classifier_objective(enc, Encoded([], enc.labels[:0]), ctx, p, 0), ctx, p)
    with pytest.raises(ValueError):  # strict JSON: write_record refuses NaN
        write_record(tmp_path / "x.json", {"run_id": "x", "status": "ok", "loss": math.nan})
    rec = {"run_id": "x", "status": "ok", "error": None, "history": [{"train_loss": math.nan}]}
    assert finish(str(tmp_path / "y.json"), Record.from_dict(rec)) is None
    stored = json.loads((tmp_path / "y.json").read_text())
    assert stored["status"] == "failed" and "history[0].train_loss" in stored["error"]


def test_the_token_cache_runs_no_code(tmp_path, monkeypatch):
    """A planted file in the cache is data at worst: a pickle payload is not executed, just rebuilt."""
    import pickle

    from bench.engine import tokens

    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path / "cache"))
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    class Tok:
        name_or_path = "tok"

        def get_vocab(self):
            return {"a": 0, "b": 1}

        def __call__(self, texts, truncation, max_length):
            return {"input_ids": [[0, 1][: max_length] for _ in texts]}

    first = tokens.encode(Tok(), ["x", "y"], [0, 1], 8)
    (entry,) = (tmp_path / "cache" / "tokens").glob("*.npz")
    entry.write_bytes(pickle.dumps(Payload()))
    again = tokens.encode(Tok(), ["x", "y"], [0, 1], 8)
    assert not marker.exists() and again.input_ids == first.input_ids == [[0, 1], [0, 1]]


# generated passwords hold what URL syntax means; each must reach no output and no file
PASSWORDS = ["PASS/WORD-7f3a", "p@ss-7f3a", "a#b%c-7f3a", "two words 7f3a", "x/y@z#1%2 3-7f3a"]


@pytest.mark.parametrize("password", PASSWORDS)
def test_a_storage_password_of_any_shape_is_masked_in_the_error_line(tmp_path, password):
    results = tmp_path / "results"
    url = f"postgresql://ftbench:{password}@127.0.0.1:1/nodb"
    out = bench("tune", "--strategy", "feature-extract", "--trials", "1", "--per-class", "5,2,5",
                "--storage", url, "--results-dir", str(results), timeout=120)
    assert out.returncode == 2, out.stderr[-2000:]
    (line,) = clean_failure(out.stderr)
    said = out.stdout + out.stderr
    pieces = {password} | {p for p in password.replace("@", " ").replace("/", " ").split() if len(p) >= 4}
    assert not [p for p in pieces if p in said], said
    assert "ftbench:***@" in line
    if "@" in password:  # refused before any driver splits it (a DNS query carrying its tail, an echo of it)
        assert "percent-encode it as %40" in line and "psycopg" not in line
    assert not [p for p in files_under(results) if b"7f3a" in p.read_bytes()]
    # the same URL behind `bench run --params-from`
    run = bench("run", "--strategies", "feature-extract", "--params-from", "nostudy", "--storage", url,
                "--results-dir", str(results), "--no-report", timeout=120)
    assert run.returncode == 2 and not [p for p in pieces if p in run.stdout + run.stderr], run.stderr


def damage_caches(cache: Path) -> dict[str, str]:
    """Truncate one embedding entry, plant a valid array file of the wrong shape for another, zero the
    third keeping its metadata, and overwrite a token entry with bytes: {entry name: what was done}."""
    import numpy as np

    done = {}
    first, second, third = sorted((cache / "embeddings").glob("*.npz"))[:3]
    first.write_bytes(first.read_bytes()[:300])
    done[first.name] = "truncated"
    np.savez(second, embeddings=np.ones((3, 384), dtype=np.float32))
    done[second.name] = "wrong shape"
    z = dict(np.load(third))
    np.savez(third, __meta__=z["__meta__"], embeddings=np.zeros_like(z["embeddings"]))
    done[third.name] = "zeros"
    token = sorted((cache / "tokens").glob("*.npz"))[0]
    token.write_bytes(b"\x93NUMPY garbage")
    done[token.name] = "garbage"
    return done


def test_damaged_caches_are_rebuilt_with_one_warning_each_and_the_run_stays_right(tmp_path):
    cache, folder = tmp_path / "cache", tmp_path / "results"
    first = bench("run", *QUICK, "--results-dir", str(folder), "--no-report", extra_env={"FTBENCH_CACHE": str(cache)})
    assert first.returncode == 0, first.stderr[-2000:]
    (good,) = records(folder)
    damaged = damage_caches(cache)
    again = bench("run", *QUICK, "--force", "--results-dir", str(folder), "--no-report",
                  extra_env={"FTBENCH_CACHE": str(cache)})
    assert again.returncode == 0 and "Traceback" not in again.stderr, again.stderr[-3000:]
    warnings = [ln for ln in again.stderr.splitlines() if ln.startswith("warning: cache entry")]
    for name in damaged:
        assert sum(name in w for w in warnings) == 1, (name, again.stderr)
    assert len(warnings) == len(damaged) and all(w.endswith("rebuilding it") for w in warnings)
    (rerun,) = records(folder)
    assert rerun["status"] == "ok" and rerun["metrics"]["accuracy"] == good["metrics"]["accuracy"]
    assert rerun["predictions"] == good["predictions"]  # not chance-level from zeroed embeddings
    healed = bench("run", *QUICK, "--force", "--results-dir", str(folder), "--no-report",
                   extra_env={"FTBENCH_CACHE": str(cache)})
    assert healed.returncode == 0 and "warning: cache entry" not in healed.stderr
    assert not [p for p in cache.rglob("*") if p.name.endswith(".tmp")]  # nothing half-written left


def test_a_damaged_model_folder_is_rebuilt_once(tmp_path, monkeypatch, capsys):
    from bench.engine import cache_entries
    from bench.engine.models import random_model_folder

    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path / "cache"))
    folder = random_model_folder("llama-tiny", log=lambda line: None)
    weights = next(folder.glob("*.safetensors"))
    size = weights.stat().st_size
    weights.write_bytes(b"\0" * size)  # the right size, wrong content
    cache_entries._verified.clear()  # as a fresh process sees it
    again = random_model_folder("llama-tiny", log=lambda line: None)
    err = capsys.readouterr().err
    assert again == folder and "changed since it was written" in err and err.count("warning:") == 1
    assert weights.read_bytes() != b"\0" * size and cache_entries.folder_problem(folder, "random:llama-tiny|" +
                                                                              folder.name.rsplit("-", 1)[1]) is None

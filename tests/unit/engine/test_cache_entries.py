"""Cache entries that heal: an array entry or a folder is used only when it is what was written for its
key; anything else (truncated, planted, zeroed, another key's) is one warning and a rebuild, and a
write that fails leaves nothing visible."""

from __future__ import annotations

import json

import numpy as np
import pytest

from bench.engine import cache_entries as ce


def rows_check(n):
    return lambda a: None if len(a.get("x", [])) == n else f"holds {len(a.get('x', []))} rows"


def test_an_entry_round_trips_with_its_key_and_checksum(tmp_path):
    path = tmp_path / "e.npz"
    x = np.arange(12, dtype=np.float32).reshape(4, 3)
    assert ce.save_arrays(path, "k1", x=x) is None
    got = ce.load_arrays(path, "k1", rows_check(4))
    assert np.array_equal(got["x"], x) and ce.META not in got
    assert [p.name for p in tmp_path.iterdir()] == ["e.npz"]  # no temporary file left


@pytest.mark.parametrize("damage,said", [
    ("truncate", "not a readable array file"),
    ("zeros-same-meta", "does not match the checksum"),
    ("plain-npz", "carries no key or checksum"),
    ("pickle", "not a readable array file"),
    ("other-key", "built for other data"),
    ("wrong-rows", "holds 3 rows"),
])
def test_a_damaged_entry_is_one_warning_and_not_used(tmp_path, capsys, damage, said):
    path = tmp_path / "e.npz"
    x = np.ones((4, 3), dtype=np.float32)
    ce.save_arrays(path, "k1", x=x)
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:200])
    elif damage == "zeros-same-meta":  # right shape, right metadata, wrong content
        z = dict(np.load(path))
        np.savez(path, **{ce.META: z[ce.META], "x": np.zeros_like(x)})
    elif damage == "plain-npz":
        np.savez(path, x=x)
    elif damage == "pickle":
        import pickle

        path.write_bytes(pickle.dumps({"x": x}))
    elif damage == "wrong-rows":
        ce.save_arrays(path, "k1", x=np.ones((3, 3), dtype=np.float32))
    key = "k2" if damage == "other-key" else "k1"
    assert ce.load_arrays(path, key, rows_check(4)) is None
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("warning: cache entry ") and said in lines[0], lines
    assert lines[0].endswith("rebuilding it")


def test_an_absent_entry_is_silent(tmp_path, capsys):
    assert ce.load_arrays(tmp_path / "none.npz", "k", rows_check(1)) is None
    assert capsys.readouterr().err == ""


def test_a_write_that_fails_midway_leaves_nothing_visible(tmp_path, monkeypatch):
    path = tmp_path / "e.npz"

    def explode(fh, **arrays):
        fh.write(b"PK\x03\x04 half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "savez", explode)
    assert "No space left" in ce.save_arrays(path, "k", x=np.ones(3))
    assert list(tmp_path.iterdir()) == []


def build(target, key, content=b"weights" * 1000):
    with ce.building(target, key) as tmp:
        (tmp / "config.json").write_text("{}")
        (tmp / "model.safetensors").write_bytes(content)


@pytest.mark.parametrize("damage,said", [
    ("truncate", "not the"), ("zero", "changed since it was written"), ("delete", "lacks model.safetensors"),
    ("no-manifest", "no manifest"), ("other-key", "another source"),
])
def test_a_damaged_model_folder_is_moved_away_with_one_warning(tmp_path, capsys, damage, said):
    ce._verified.clear()
    target = tmp_path / "models" / "m"
    build(target, "k1")
    assert ce.ready_folder(target, "k1") and json.loads((target / ce.MANIFEST).read_text())["key"] == "k1"
    ce._verified.clear()  # a fresh process
    weights = target / "model.safetensors"
    if damage == "truncate":
        weights.write_bytes(weights.read_bytes()[:100])
    elif damage == "zero":
        weights.write_bytes(b"\0" * weights.stat().st_size)
    elif damage == "delete":
        weights.unlink()
    elif damage == "no-manifest":
        (target / ce.MANIFEST).unlink()
    assert not ce.ready_folder(target, "k2" if damage == "other-key" else "k1")
    assert not target.exists() and [p for p in target.parent.iterdir()] == []  # gone whole, nothing half-deleted
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln]
    assert len(lines) == 1 and lines[0].startswith("warning: cache entry ") and said in lines[0], lines
    build(target, "k1")
    assert ce.ready_folder(target, "k1")


def test_a_large_file_is_checked_by_sampled_blocks(tmp_path, monkeypatch):
    monkeypatch.setattr(ce, "WHOLE_HASH_BYTES", 1000)
    monkeypatch.setattr(ce, "SAMPLE_BYTES", 64)
    p = tmp_path / "big"
    p.write_bytes(bytes(range(256)) * 100)
    first = ce.file_digest(p, p.stat().st_size)
    p.write_bytes(b"\0" * 25600)
    assert ce.file_digest(p, 25600) != first

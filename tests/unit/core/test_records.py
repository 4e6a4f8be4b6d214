"""The record store: atomic writes, and an ok record is skipped."""

from __future__ import annotations

import os

from bench.core.record import Record
from bench.core.records import is_done, iter_records, read_record, record_path, write_record


def test_records_are_written_atomically_and_skipped_when_ok(tmp_path):
    rec = {"run_id": "abc", "status": "failed", "error": "x"}
    path = write_record(record_path(tmp_path, "abc"), rec)
    assert read_record(path) == Record.from_dict(rec) and not is_done(tmp_path, "abc")
    write_record(path, {**rec, "status": "ok"})
    assert is_done(tmp_path, "abc")
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    (tmp_path / "junk.json").write_text("{not json")
    assert [r.run_id for r in iter_records(tmp_path)] == ["abc"]


def test_a_run_that_did_not_finish_never_replaces_an_ok_record(tmp_path):
    from bench.core.records import attempt_path, last_written

    path = record_path(tmp_path, "abc")
    ok = {"run_id": "abc", "status": "ok", "error": None, "finished_at": "1"}
    write_record(path, ok)
    good = path.read_bytes()
    for status in ("failed", "oom", "cancelled"):
        written = write_record(path, {"run_id": "abc", "status": status, "error": "boom", "finished_at": status})
        assert written == attempt_path(path) == tmp_path / ".attempts" / "abc.json"
        assert path.read_bytes() == good and is_done(tmp_path, "abc")
        assert last_written(path).status == status  # what the runner reports for this attempt
    assert [r.status for r in iter_records(tmp_path)] == ["ok"]  # readers see the good record alone
    write_record(path, {**ok, "finished_at": "2"})  # a new ok run replaces the old ok one
    assert read_record(path).finished_at == "2" and last_written(path).status == "ok"
    # a failure with no ok record before it is the record itself
    other = record_path(tmp_path, "def")
    assert write_record(other, {"run_id": "def", "status": "failed", "error": "x"}) == other


def test_saved_models_beside_the_records_are_not_read_as_records(tmp_path):
    write_record(record_path(tmp_path, "abc"), Record(run_id="abc", status="ok"))
    model = tmp_path / "models" / "abc"  # what --save-models keeps: config and tokenizer JSON
    model.mkdir(parents=True)
    (model / "config.json").write_text('{"architectures": ["BertModel"]}')
    (model / "ftbench-model.json").write_text('{"kind": "features"}')
    said: list[str] = []
    assert [r.run_id for r in iter_records(tmp_path, warn=said.append)] == ["abc"]
    assert not [line for line in said if "skipped" in line]  # no "not a record" line per model file

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

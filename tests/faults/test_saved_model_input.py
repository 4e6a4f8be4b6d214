"""Bad input to `bench predict`, `bench export` and `bench run --save-models`: every case is exit 2,
exactly one `error:` line naming what is wrong, no traceback, no model loaded (load_served is made to
fail the test if reached) and no output written."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.commands import cli
from tests.faults.faultkit import bench, clean_failure
from tests.faults.test_bad_input import keep_signals  # noqa: F401 - fixture

RUN_ID, BARE_ID, LORA_ID = "0123456789abcdef", "fedcba9876543210", "00112233aabbccdd"


def saved_results(root: Path) -> Path:
    """A results folder with a run saved with its model (feature-extract: nothing to merge), a LoRA run
    saved with its model, and a run saved without one; the texts and folders the cases name."""
    results = root / "results"
    for run_id in (RUN_ID, BARE_ID, LORA_ID):
        results.mkdir(parents=True, exist_ok=True)
        (results / f"{run_id}.json").write_text(json.dumps({"run_id": run_id, "status": "ok"}))
    manifests = {RUN_ID: {"kind": "features", "strategy": "feature-extract", "merge_blocked": "a head on a frozen encoder"},
                 LORA_ID: {"kind": "classifier", "strategy": "lora", "merge_blocked": None}}
    for run_id, manifest in manifests.items():
        (results / "models" / run_id).mkdir(parents=True)
        (results / "models" / run_id / "ftbench-model.json").write_text(json.dumps(
            {"format": 1, "base_model": None, "labels": ["a", "b"], **manifest}))
    (root / "texts.csv").write_text("text,id\nhello,1\nworld,2\n")
    (root / "latin1.csv").write_bytes("text\ncaf\xe9\n".encode("latin-1"))
    (root / "empty.csv").write_text("")
    (root / "blank-row.csv").write_text("text\nhello\n\"\"\n")
    (root / "a-file").write_text("not a folder")
    (root / "broken").mkdir()
    (root / "broken" / "ftbench-model.json").write_text("{not json")
    (root / "odd-format").mkdir()
    (root / "odd-format" / "ftbench-model.json").write_text(json.dumps(
        {"format": "joblib", "kind": "tfidf", "strategy": "tfidf", "base_model": None, "labels": ["a"]}))
    (root / "full").mkdir()
    (root / "full" / "something").write_text("x")
    (root / "gone-base").mkdir()
    (root / "gone-base" / "ftbench-model.json").write_text(json.dumps(
        {"format": 1, "kind": "classifier", "strategy": "lora", "base_model": "/no/such/base", "labels": ["a"]}))
    return results


PREDICT = ["--input", "%/texts.csv", "--output", "%/out/predictions.csv"]
CASES = [  # (id, args after `bench` with % for the test's folder, a word the error line must hold)
    ("predict-unknown-run", ["predict", "nosuchrun", *PREDICT], "unknown run"),
    ("predict-run-without-model", ["predict", BARE_ID, *PREDICT], "without --save-models"),
    ("predict-missing-column", ["predict", RUN_ID, *PREDICT, "--text-col", "body"], "no column 'body'"),
    ("predict-missing-input", ["predict", RUN_ID, "--input", "%/nope.csv", "--output", "%/o.csv"], "does not exist"),
    ("predict-latin1-input", ["predict", RUN_ID, "--input", "%/latin1.csv", "--output", "%/o.csv"], "not a readable CSV"),
    ("predict-empty-input", ["predict", RUN_ID, "--input", "%/empty.csv", "--output", "%/o.csv"], "not a readable CSV"),
    ("predict-blank-text", ["predict", RUN_ID, "--input", "%/blank-row.csv", "--output", "%/o.csv"], "empty on line(s) 3"),
    ("predict-output-unwritable", ["predict", RUN_ID, "--input", "%/texts.csv", "--output", "%/a-file/o.csv"],
     "not writable"),
    ("predict-broken-manifest", ["predict", "%/broken", *PREDICT], "not readable JSON"),
    ("predict-odd-format", ["predict", "%/odd-format", *PREDICT], "not one ftbench writes"),
    ("predict-base-gone", ["predict", "%/gone-base", *PREDICT], "not on this machine"),
    ("predict-folder-without-model", ["predict", "%/full", *PREDICT], "holds no saved model"),
    ("predict-no-input-flag", ["predict", RUN_ID, "--output", "%/o.csv"], "--input"),
    ("export-not-lora", ["export", RUN_ID, "--merged", "%/merged"], "has no merged form"),
    ("export-unknown-run", ["export", "nosuchrun", "--merged", "%/merged"], "unknown run"),
    ("export-run-without-model", ["export", BARE_ID, "--merged", "%/merged"], "without --save-models"),
    ("export-into-a-full-folder", ["export", LORA_ID, "--merged", "%/full"], "not an empty folder"),
    ("export-unwritable", ["export", LORA_ID, "--merged", "%/a-file/merged"], "not writable"),
    ("run-save-models-folder-is-a-file", ["run", "--strategies", "feature-extract", "--save-models",
                                          "--results-dir", "%/fileresults", "--no-report"], "models folder"),
    ("run-save-models-on-ray", ["run", "--strategies", "feature-extract", "--save-models", "--launcher", "ray",
                                "--results-dir", "%/r", "--no-report"], "--launcher local"),
]


def argv_for(args: list[str], root: Path, results: Path) -> list[str]:
    out = [a.replace("%", str(root)) for a in args]
    return out + (["--results", str(results)] if out[0] in ("predict", "export") else [])


@pytest.mark.parametrize("case,args,word", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_error_line_before_any_model_loads(case, args, word, tmp_path, capsys, monkeypatch,
                                                            keep_signals):  # noqa: F811
    import strategies.shared.served as served

    results = saved_results(tmp_path)
    (tmp_path / "fileresults").mkdir()
    (tmp_path / "fileresults" / "models").write_text("a file where the models folder goes")
    monkeypatch.setattr(served, "load_served", lambda *a, **k: pytest.fail("a model was loaded"))
    try:
        code = cli.main(argv_for(args, tmp_path, results))
    except SystemExit as exc:  # argparse's own exit, with our one-line error
        code = exc.code
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("error: "), err[:3000]
    assert word in lines[0], lines[0]
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists() and not (tmp_path / "merged").exists()


def test_a_sample_through_the_real_cli(tmp_path):
    results = saved_results(tmp_path)
    for case in ("predict-missing-column", "export-not-lora", "predict-run-without-model"):
        _, args, word = next(c for c in CASES if c[0] == case)
        out = bench(*argv_for(args, tmp_path, results), timeout=120)
        lines = clean_failure(out.stderr)
        assert out.returncode == 2 and len(lines) == 1 and word in lines[0], out.stderr

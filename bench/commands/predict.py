"""`bench predict RUN_ID|FOLDER --input texts.csv --output predictions.csv` and `bench export RUN_ID
--merged DIR`: a model kept by `bench run --save-models` used again. Every input is checked (the run,
its saved model, the CSV and its column, the output's folder) before any model loads."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.core.errors import BenchError, echoed
from bench.core.records import record_path
from bench.running.runner import check_writable
from bench.running.saved_models import model_folder, size_words
from strategies.shared.served import read_manifest


def add_arguments(predict: argparse.ArgumentParser, export: argparse.ArgumentParser) -> None:
    for p in (predict, export):
        p.add_argument("--results", default="results", metavar="DIR", help="results folder of the run (default results/)")
        p.add_argument("--device", default="cpu", help="cpu (default), cuda or cuda:N")
    predict.add_argument("model", metavar="RUN_ID|FOLDER", help="a run saved with --save-models, or a saved model's folder")
    predict.add_argument("--input", required=True, help="CSV file with one text per row")
    predict.add_argument("--text-col", default="text", help="the input's text column (default text)")
    predict.add_argument("--output", required=True, help="CSV to write: the label (and each class's probability)")
    export.add_argument("model", metavar="RUN_ID|FOLDER", help="a LoRA-family run saved with --save-models")
    export.add_argument("--merged", required=True, metavar="DIR",
                        help="write the adapter merged into its base, as a stand-alone Hugging Face model")


def saved_folder(target: str, results: str) -> tuple[Path, dict]:
    """The saved model's folder and manifest for a run id (under RESULTS/models/) or a folder."""
    path = Path(target)
    if path.is_dir():
        return path, read_manifest(path)
    if not record_path(results, target).is_file():
        raise BenchError(f"unknown run {echoed(target)}: no record {record_path(results, target)} and no such folder; "
                         "give a run id from the results folder (--results) or a saved model's folder")
    folder = model_folder(results, target)
    if not folder.is_dir():
        raise BenchError(f"run {target} was run without --save-models, so it kept no model; run it again with "
                         "`bench run ... --save-models` (the same flags: its record is rerun to keep the model)")
    return folder, read_manifest(folder)


def read_texts(path: str, column: str) -> list[str]:
    import pandas as pd

    try:
        table = pd.read_csv(path, dtype=str, keep_default_na=False)
    except FileNotFoundError:
        raise BenchError(f"input {echoed(path)} does not exist; pass --input with a CSV file") from None
    except (OSError, UnicodeDecodeError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        first = str(exc).strip().splitlines()[0][:160] if str(exc).strip() else type(exc).__name__
        raise BenchError(f"input {echoed(path)} is not a readable CSV ({first}); give a UTF-8 CSV with a header row") from None
    if column not in table.columns:
        raise BenchError(f"input {path} has no column {echoed(column)}; its columns: "
                         f"{', '.join(map(str, table.columns)) or 'none'} (pick one with --text-col)")
    texts = table[column].tolist()
    blank = [i + 2 for i, t in enumerate(texts) if not t.strip()]  # line numbers, the header being line 1
    if blank:
        raise BenchError(f"input {path}: column {echoed(column)} is empty on line(s) {', '.join(map(str, blank[:5]))}"
                         f"{' ...' if len(blank) > 5 else ''}; give every row a text, or leave those rows out")
    return texts


def checked_output(output: str, what: str, flag: str) -> Path:
    out = Path(output)
    check_writable(out.parent if what == "output folder" else out, what, flag)
    return out


def run_predict(args) -> int:
    folder, manifest = saved_folder(args.model, args.results)
    texts = read_texts(args.input, args.text_col)
    out = checked_output(args.output, "output folder", "--output")
    from strategies.shared.served import load_served

    labels = manifest["labels"]
    ids, probs = load_served(folder, args.device).predict(texts)
    import pandas as pd

    table = pd.DataFrame({args.text_col: texts, "label": [labels[i] for i in ids], "label_id": ids})
    if probs is not None:
        for j, name in enumerate(labels):
            table[f"p_{name}"] = [row[j] for row in probs]
    try:
        table.to_csv(out, index=False)
    except OSError as exc:
        raise BenchError(f"cannot write {out} ({exc.strerror or exc}); pass --output with a writable path") from None
    print(f"{len(texts)} prediction(s) by {manifest['strategy']} -> {out}")
    return 0


def run_export(args) -> int:
    folder, manifest = saved_folder(args.model, args.results)
    why = manifest.get("merge_blocked")
    if why:
        raise BenchError(f"{args.model} ({manifest['strategy']}) has no merged form: {why}")
    out = Path(args.merged)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise BenchError(f"--merged {out} exists and is not an empty folder; give a new or empty folder")
    check_writable(out, "export folder", "--merged")
    from strategies.shared.served import load_served

    merged = load_served(folder, args.device).merged()
    if isinstance(merged, str):  # the manifest said mergeable, the loaded model says otherwise
        raise BenchError(f"{args.model} ({manifest['strategy']}) has no merged form: {merged}")
    size = merged.save(out)
    print(f"exported {manifest['strategy']} merged into its base: {out} "
          f"({size_words({'specific_bytes': size.specific_bytes})}, stand-alone)")
    return 0

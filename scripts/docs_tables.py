#!/usr/bin/env python3
"""Write the result tables of README.md and docs/*.md from the records committed in the repository.

A generated block sits between two markers and is replaced whole:

    <!-- table: NAME -->
    (written here from experiments/records/NAME/, the records of experiments/NAME.yaml)
    <!-- /table -->

    scripts/docs_tables.py           rewrite every block from its records
    scripts/docs_tables.py --check   change nothing; exit 1 naming each block that differs

A published record must be fit to commit (`problems_of`): the run finished `ok`, is no tuning trial,
names the commit it ran at with a clean tree (no `+dirty`), sits in a file of its own run id, is small
(predictions and truth kept; no model or cache belongs there); the records of one experiment come from
one commit and are exactly the runs its file asks for. Any breach is an `error:` line (exit 2) and
nothing is written. An experiment with no records yet gets a block that says so.

A script of the repository, not a `bench` command: it rewrites this checkout's own docs, which an
installed ftbench does not have; `bench report --format md RESULTS_DIR` is the same table for any folder.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's code, whatever else is installed

from bench.core.errors import BenchError  # noqa: E402
from bench.core.record import Record  # noqa: E402
from bench.core.records import load_record  # noqa: E402

# each marker alone on its line, so a page may mention one in its prose
BLOCK = re.compile(r"^<!-- table: (?P<name>[^\s>]*) -->\n(?P<body>.*?)^<!-- /table -->$", re.S | re.M)
OPENING = re.compile(r"^<!-- table: ", re.M)
RECORDS = "experiments/records"
MAX_RECORD_BYTES = 512 * 1024  # a record of a few thousand test rows is far below; a model is far above


class Unfit(BenchError):
    """Records or blocks that cannot be published; one line per problem."""


def doc_files(root: Path) -> list[Path]:
    return [p for p in [root / "README.md", *sorted((root / "docs").glob("*.md"))] if p.is_file()]


def blocks_of(path: Path, text: str) -> list[re.Match]:
    found = list(BLOCK.finditer(text))
    if len(found) != len(OPENING.findall(text)):
        raise Unfit(f"{path}: a `<!-- table: NAME -->` line without its `<!-- /table -->` line (or one inside "
                    "another); close each block")
    for match in found:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", match["name"]):
            raise Unfit(f"{path}: table {match['name']!r}: name it as its experiment file is named, "
                        "e.g. <!-- table: default-run -->")
    return found


def experiment_of(root: Path, name: str):
    from bench.running.config import Experiment

    path = root / "experiments" / f"{name}.yaml"
    if not path.is_file():
        raise Unfit(f"table '{name}': experiments/{name}.yaml does not exist; write it or fix the table's name")
    exp = Experiment.from_yaml(path)
    if Path(exp.results_dir) != Path(RECORDS) / name:
        raise Unfit(f"experiments/{name}.yaml: results_dir is {exp.results_dir!r}; set it to {RECORDS}/{name}, "
                    "where its published records live")
    return exp


def problems_of(path: Path, size: int, record: Record | None, why: str | None) -> list[str]:
    """What keeps one record file (`path`, of `size` bytes) from being published (empty: fit)."""
    if record is None:
        return [f"{path}: not a usable record ({why})"]
    out = []
    if record.status != "ok":
        out.append(f"{path}: status {record.status}; re-run the experiment until every run is ok")
    if record.study is not None or (record.eval_split or "test") != "test":
        out.append(f"{path}: a tuning trial (scored on {record.eval_split}); publish test-split runs only")
    commit = (record.env or {}).get("git_commit")
    if not commit:
        out.append(f"{path}: names no git commit; run it from a git checkout of ftbench")
    elif str(commit).endswith("+dirty"):
        out.append(f"{path}: ran at {commit}: uncommitted changes to the code; commit them, then re-run")
    if path.stem != record.run_id:
        out.append(f"{path}: holds run {record.run_id}; keep each record as `bench run` wrote it "
                   f"({record.run_id}.json)")
    if size > MAX_RECORD_BYTES:
        out.append(f"{path}: {size:,} bytes, over {MAX_RECORD_BYTES:,}; a record holds figures, "
                   "predictions and truth, never a model or a cache")
    return out


def coverage_problems(name: str, exp, records: list[tuple[Path, Record]]) -> list[str]:
    """The records must be exactly the runs the experiment asks for: strategy x seed x training-set size."""
    from bench.reporting.summary import size_label
    from strategies import strategy_names

    asked = {(s, seed, size_label(size)) for s in strategy_names(exp.strategies) for seed in exp.seeds
             for size in (exp.train_sizes or [None])}
    out, have = [], set()
    for path, rec in records:
        key = (rec.strategy, rec.seed, size_label(rec.train_size))
        have.add(key)
        if key not in asked or rec.config.get("dataset", exp.dataset) != exp.dataset:
            out.append(f"{path}: {rec.strategy} seed {rec.seed} on {rec.config.get('dataset')} is not a run of "
                       f"experiments/{name}.yaml; remove it, or re-run the experiment it belongs to")
    for strategy, seed, size in sorted(asked - have, key=str):
        out.append(f"{RECORDS}/{name}/: no record of {strategy} seed {seed}"
                   + (f" at train size {size}" if size else "")
                   + f"; run `bench run --config experiments/{name}.yaml` and commit what it writes")
    return out


def published(root: Path, name: str, exp) -> list[Record]:
    """The experiment's records, each checked fit; Unfit with every problem found."""
    folder = root / RECORDS / name
    entries = sorted(folder.iterdir()) if folder.is_dir() else []
    problems, records = [], []
    for path in entries:
        if path.name.startswith("."):  # .gitkeep, and .claims (the run matrix's locks; not committed)
            continue
        if path.suffix != ".json" or not path.is_file():
            problems.append(f"{path.relative_to(root)}: only run records (RUN_ID.json) belong in {RECORDS}/{name}/")
            continue
        rec, why = load_record(path)
        problems += problems_of(path.relative_to(root), path.stat().st_size, rec, why)
        if rec is not None:
            records.append((path.relative_to(root), rec))
    commits = sorted({str((r.env or {}).get("git_commit")) for _, r in records})
    if len(commits) > 1:
        problems.append(f"{RECORDS}/{name}/: records of several commits ({', '.join(commits)}); re-run the whole "
                        f"experiment at one commit (`bench run --config experiments/{name}.yaml --force`)")
    if records:
        problems += coverage_problems(name, exp, records)
    if problems:
        raise Unfit("\n".join(problems))
    return [r for _, r in records]


def block_body(root: Path, name: str) -> str:
    from bench.reporting.markdown import markdown_summary

    exp = experiment_of(root, name)
    records = published(root, name, exp)
    head = (f"<!-- generated by scripts/docs_tables.py from {RECORDS}/{name}/ (experiments/{name}.yaml): "
            "edit the experiment or its records, then re-run the script, never this text -->\n")
    if not records:
        where = " on a CUDA GPU" if str(exp.device).startswith("cuda") else ""
        return head + (f"*Not measured yet.* Run `bench run --config experiments/{name}.yaml`{where} from the "
                       f"repository root, commit `{RECORDS}/{name}/`, then run `scripts/docs_tables.py`.\n")
    return head + markdown_summary(records)


def regenerate(root: Path) -> tuple[dict[Path, str], list[str]]:
    """Each doc file's text with every block written from its records, and the blocks that changed
    ("FILE: table NAME"). Every records folder is checked, whether a block shows it or not."""
    bodies: dict[str, str] = {}
    problems: list[str] = []

    def body(name: str) -> str:
        if name not in bodies:
            try:
                bodies[name] = block_body(root, name)
            except BenchError as exc:
                problems.append(str(exc))
                bodies[name] = ""
        return bodies[name]

    texts, changed = {}, []
    for path in doc_files(root):
        text = path.read_text(encoding="utf-8")
        try:
            found = blocks_of(path.relative_to(root), text)
        except Unfit as exc:
            problems.append(str(exc))
            continue
        out, at = [], 0
        for match in found:
            new = body(match["name"])
            if new != match["body"]:
                changed.append(f"{path.relative_to(root)}: table {match['name']}")
            out += [text[at:match.start("body")], new]
            at = match.end("body")
        texts[path] = "".join(out) + text[at:]
    for folder in sorted((root / RECORDS).iterdir()) if (root / RECORDS).is_dir() else []:
        if folder.is_dir() and not folder.name.startswith("."):
            body(folder.name)  # published records are checked even where no page shows them yet
    if problems:
        raise Unfit("\n".join(problems))
    return texts, changed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true",
                        help="write nothing; exit 1 if a table differs from its records")
    parser.add_argument("--root", type=Path, default=ROOT, help="the repository to work on (default: this one)")
    args = parser.parse_args(argv)
    try:
        texts, changed = regenerate(args.root.resolve())
    except BenchError as exc:
        for line in str(exc).splitlines():
            print(f"error: {line}", file=sys.stderr)
        return 2
    if args.check:
        for block in changed:
            print(f"out of date: {block} (run scripts/docs_tables.py and commit the result)", file=sys.stderr)
        return 1 if changed else 0
    for path, text in texts.items():
        if text != path.read_text(encoding="utf-8"):
            path.write_text(text, encoding="utf-8")
    print("\n".join(f"updated {block}" for block in changed) or "every table matches its records")
    return 0


if __name__ == "__main__":
    sys.exit(main())

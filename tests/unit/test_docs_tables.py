"""The docs' generated tables (scripts/docs_tables.py): the repository's tables match its committed
records, and on a tree of its own an edited table, an edited record or a record unfit to publish is
caught, by name."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from tests.conftest import ROOT
from tests.report_records import not_finished_record, predicted_record, write_all

SPEC = importlib.util.spec_from_file_location("docs_tables", ROOT / "scripts" / "docs_tables.py")
docs_tables = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(docs_tables)

PAGE = """# Results

A page may name a block in its prose: `<!-- table: NAME -->`.

<!-- table: tiny -->
<!-- /table -->

Text after the block stays.
"""


def test_the_committed_tables_match_the_committed_records(capsys):
    assert docs_tables.main(["--check"]) == 0, capsys.readouterr().err


def records():
    rng = np.random.default_rng(0)
    truth = np.repeat([0, 1, 2], 20)
    return [predicted_record(name, seed, truth, np.where(rng.random(60) < acc, truth, (truth + 1) % 3))
            for seed in (0, 1) for name, acc in (("full-ft", 0.9), ("lora", 0.6))]


@pytest.fixture
def tree(tmp_path):
    """A repository of its own: one experiment, its records, a README and a docs page showing its table."""
    (tmp_path / "experiments").mkdir()
    (tmp_path / "experiments" / "tiny.yaml").write_text(
        "strategies: [full-ft, lora]\nseeds: [0, 1]\nresults_dir: experiments/records/tiny\n")
    write_all(tmp_path / "experiments" / "records" / "tiny", records())
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "results.md").write_text(PAGE)
    (tmp_path / "README.md").write_text("# ftbench\n\n<!-- table: tiny -->\nhand-typed figures\n<!-- /table -->\n")
    return tmp_path


def run(tree, *flags) -> int:
    return docs_tables.main([*flags, "--root", str(tree)])


def test_tables_are_written_from_the_records(tree, capsys):
    assert run(tree, "--check") == 1  # the README's hand-typed figures and the page's empty block
    err = capsys.readouterr().err
    assert "out of date: README.md: table tiny" in err and "out of date: docs/results.md: table tiny" in err
    assert run(tree) == 0 and run(tree, "--check") == 0
    page = (tree / "docs" / "results.md").read_text()
    assert page.startswith(PAGE.split("<!-- table: tiny -->\n")[0]) and page.endswith("Text after the block stays.\n")
    assert "| full-ft | minilm | 0.892 ± 0.035 [0.574, 1.000] |" in page and "seeds 0, 1" in page
    assert "hand-typed" not in (tree / "README.md").read_text()
    assert body((tree / "README.md").read_text()) == body(page)  # one table, wherever it is shown


def body(text: str) -> str:
    return text.split("<!-- table: tiny -->\n")[1].split("<!-- /table -->")[0]


def test_an_edited_table_is_caught_and_named(tree, capsys):
    assert run(tree) == 0
    page = tree / "docs" / "results.md"
    edited = page.read_text().replace("| full-ft | minilm | 0.892", "| full-ft | minilm | 0.893", 1)
    page.write_text(edited)
    assert run(tree, "--check") == 1
    assert capsys.readouterr().err.strip() == ("out of date: docs/results.md: table tiny (run scripts/docs_tables.py "
                                               "and commit the result)")
    assert page.read_text() == edited  # --check writes nothing
    assert run(tree) == 0 and run(tree, "--check") == 0


def test_an_edited_record_is_caught(tree, capsys):
    assert run(tree) == 0
    path = tree / "experiments" / "records" / "tiny" / "lora-1.json"
    rec = json.loads(path.read_text())
    rec["metrics"]["accuracy"] = 0.99
    path.write_text(json.dumps(rec))
    assert run(tree, "--check") == 1
    assert "out of date: README.md: table tiny" in capsys.readouterr().err


@pytest.mark.parametrize("spoil, problem", [
    (lambda folder: write_all(folder, [not_finished_record("lora", 2, "failed", "boom")]),
     "lora-2-failed.json: status failed"),
    (lambda folder: rewrite(folder / "lora-0.json", lambda r: r["env"].update(git_commit="abc1234+dirty")),
     "lora-0.json: ran at abc1234+dirty: uncommitted changes"),
    (lambda folder: rewrite(folder / "lora-0.json", lambda r: r["env"].update(git_commit="def5678")),
     "records of several commits (abc1234, def5678)"),
    (lambda folder: rewrite(folder / "lora-0.json", lambda r: r["env"].pop("git_commit")),
     "lora-0.json: names no git commit"),
    (lambda folder: (folder / "lora-1.json").unlink(), "no record of lora seed 1"),
    (lambda folder: (folder / "lora-1.json").rename(folder / "copy.json"), "copy.json: holds run lora-1"),
    (lambda folder: (folder / "model.safetensors").write_bytes(b"0"), "model.safetensors: only run records"),
    (lambda folder: (folder / "junk.json").write_text("{"), "junk.json: not a usable record"),
    (lambda folder: rewrite(folder / "lora-0.json", lambda r: r.update(strategy="dora")),
     "lora-0.json: dora seed 0 on bbc-news is not a run of experiments/tiny.yaml"),
    (lambda folder: rewrite(folder / "lora-0.json", lambda r: r.update(blob="x" * 600_000)), "over 524,288"),
])
def test_a_record_unfit_to_publish_is_refused(tree, capsys, spoil, problem):
    spoil(tree / "experiments" / "records" / "tiny")
    before = (tree / "README.md").read_text()
    assert run(tree) == 2
    err = capsys.readouterr().err
    assert problem in err and err.startswith("error: ")
    assert (tree / "README.md").read_text() == before  # nothing written


def rewrite(path, change):
    rec = json.loads(path.read_text())
    change(rec)
    path.write_text(json.dumps(rec))


@pytest.mark.parametrize("spoil, problem", [
    (lambda t: (t / "docs" / "results.md").write_text("<!-- table: tiny -->\nno end\n"),
     "docs/results.md: a `<!-- table: NAME -->` line without its `<!-- /table -->` line"),
    (lambda t: (t / "docs" / "results.md").write_text("<!-- table: other -->\n<!-- /table -->\n"),
     "table 'other': experiments/other.yaml does not exist"),
    (lambda t: (t / "experiments" / "tiny.yaml").write_text("strategies: [lora]\nresults_dir: results\n"),
     "experiments/tiny.yaml: results_dir is 'results'; set it to experiments/records/tiny"),
    (lambda t: (t / "experiments" / "records" / "stray").mkdir(), "experiments/stray.yaml does not exist"),
])
def test_a_block_or_folder_without_its_experiment_is_refused(tree, capsys, spoil, problem):
    spoil(tree)
    assert run(tree, "--check") == 2
    assert problem in capsys.readouterr().err


def test_an_experiment_without_records_says_it_is_not_measured(tree):
    for path in (tree / "experiments" / "records" / "tiny").iterdir():
        path.unlink()
    (tree / "experiments" / "records" / "tiny" / ".gitkeep").touch()
    (tree / "experiments" / "tiny.yaml").write_text("strategies: [lora]\ndevice: cuda\n"
                                                    "results_dir: experiments/records/tiny\n")
    assert run(tree) == 0
    page = (tree / "docs" / "results.md").read_text()
    assert ("*Not measured yet.* Run `bench run --config experiments/tiny.yaml` on a CUDA GPU from the repository "
            "root, commit `experiments/records/tiny/`") in page
    assert "|" not in page

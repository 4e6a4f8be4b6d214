"""Bad input, the table: every case is exit 2, exactly one short `error:` line on stderr (a long value
is echoed cut), no traceback, and nothing written to the results folder -- all before any model loads.

The table runs the real `bench.commands.cli.main` in-process (the same code path as the console script,
argument parsing included), so 70+ cases take seconds; a sample also runs as real subprocesses."""

from __future__ import annotations

import signal
import time
from pathlib import Path

import pytest

from bench.commands import cli
from tests.faults.faultkit import bench, clean_failure, files_under

CONFIGS = {  # name -> YAML text of a config file with a wrong type or shape
    "strategies-int": "strategies: 5\n",
    "seeds-words": "seeds: [a, b]\n",
    "seeds-float": "seeds: [0.5]\n",
    "params-text": "params: lora\n",
    "params-inner-int": "params: {lora: 5}\n",
    "params-bad-value": "strategies: [full-ft]\nparams: {full-ft: {epochs: 0}}\n",
    "models-int": "models: {lora: 3}\n",
    "dataset-list": "dataset: [1]\n",
    "device-int": "device: 5\n",
    "per-class-mapping": "per_class: {a: 1}\n",
    "text-cols-int": "text_cols: 5\n",
    "results-dir-list": "results_dir: [x]\n",
    "unknown-key": "strategy: lora\n",
    "top-level-list": "- lora\n- qlora\n",
    "invalid-yaml": "strategies: [lora\n",
    "precision-word": "precision: fp16\n",
    "test-from-int": "test_from: 3\n",
    # values no check caught before: each must be one line naming it
    "seeds-negative": "seeds: [-1]\n",
    "seeds-2-to-70": f"seeds: [{2**70}]\n",
    "latin1-comment": "seeds: [0]  # caf\xe9 (saved as latin-1)\n".encode("latin-1"),
    "alias-bomb": "\n".join(['a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]'] + [
        f"{n}: &{n} [{','.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi")]) + "\nseeds: *i\n",
    "two-megabytes": "seeds: [0]\n#" + "x" * (2 << 20) + "\n",
    "number-of-50000-digits": "seeds: [" + "9" * 50000 + "]\n",
    "tfidf-given-a-model": "strategies: [tfidf]\nmodels: {tfidf: minilm}\n",
    "serve-batch-in-yaml-zero": "strategies: [tfidf]\nparams: {'*': {serve_batch: 0}}\n",
}
CONFIG_WORDS = {"seeds-negative": "out of range", "seeds-2-to-70": "out of range", "latin1-comment": "UTF-8",
                "alias-bomb": "expands to more than", "two-megabytes": "a few lines",
                "number-of-50000-digits": "too long", "tfidf-given-a-model": "loads no pretrained model",
                "serve-batch-in-yaml-zero": "serve_batch"}

DATA_FILES = {  # name -> file content, for --dataset FORMAT:%NAME
    "label-list.jsonl": "".join(f'{{"text": "row {i}", "label": ["a", "b"]}}\n' if i == 3 else
                                f'{{"text": "row {i}", "label": "{"ab"[i % 2]}"}}\n' for i in range(40)),
    "label-case.csv": "text,label\n" + "".join(f"message {i},{['spam', 'spam ', 'Spam', 'ham'][i % 4]}\n"
                                               for i in range(80)),
}

FE = ["--strategies", "feature-extract"]
FT = ["--strategies", "full-ft"]
LORA = ["--strategies", "lora"]
ZS = ["--strategies", "zero-shot"]

CASES = [  # (id, args after `bench`, a word the error line must hold)
    ("unknown-strategy", ["run", "--strategies", "lroa"], "unknown strategy"),
    ("no-strategies", ["run", "--strategies", ","], "no strategies"),
    ("unknown-dataset", ["run", "--dataset", "imdb"], "unknown dataset"),
    ("missing-csv", ["run", "--dataset", "csv:/no/such.csv"], "does not exist"),
    ("missing-jsonl", ["run", "--dataset", "jsonl:/no/such.jsonl"], "does not exist"),
    ("missing-model", ["run", "--model", "./nowhere"], "does not exist"),
    ("encoder-for-zero-shot", ["run", *ZS, "--model", "minilm"], "decoder"),
    ("per-class-too-big", ["run", *FE, "--per-class", "600,10,10"], "per-class"),
    ("per-class-words", ["run", *FE, "--per-class", "a,b,c"], "per-class"),
    ("per-class-two", ["run", *FE, "--per-class", "5,2"], "per-class"),
    ("per-class-negative", ["run", *FE, "--per-class", "-1,2,5"], "per-class"),
    ("per-class-zero-test", ["run", *FE, "--per-class", "5,2,0"], "per-class"),
    ("split-unknown-mode", ["run", *FE, "--split", "random:1,2,3"], "split"),
    ("split-fractions-over-one", ["run", *FE, "--split", "stratified:0.8,0.3,0.1"], "stratified"),
    ("split-official-no-test", ["run", *FE, "--split", "official"], "official test split"),
    ("split-and-per-class", ["run", *FE, "--split", "per-class:5,2,5", "--per-class", "5,2,5"], "--per-class"),
    ("split-col-without-official", ["run", *FE, "--split-col", "part"], "--split official"),
    ("max-rows-per-class", ["run", *FE, "--max-rows", "50"], "--max-rows"),
    ("train-sizes-words", ["run", *FE, "--train-sizes", "a,b"], "--train-sizes"),
    ("train-sizes-too-big", ["run", *FE, "--train-sizes", "8,900"], "give smaller sizes"),
    ("seeds-words", ["run", "--seeds", "a,b"], "--seeds"),
    ("seeds-empty", ["run", "--seeds", ","], "--seeds"),
    ("missing-config", ["run", "--config", "/no/such.yaml"], "does not exist"),
    ("device-tpu", ["run", *FE, "--device", "tpu"], "--device"),
    ("device-cuda-x", ["run", *FE, "--device", "cuda:x"], "--device"),
    ("device-empty-gpu-index", ["run", *FE, "--device", "cuda:"], "--device"),
    ("precision-fp16", ["run", "--precision", "fp16"], "precision"),
    ("test-from-word", ["run", "--test-from", "train"], "test-from"),
    ("unknown-flag", ["run", "--nosuch"], "unrecognized"),
    ("no-command", [], "required"),
    ("unknown-command", ["fly"], "invalid choice"),
    ("epochs-zero", ["run", *FT, "--param", "full-ft.epochs=0"], "epochs"),
    ("epochs-words", ["run", *FT, "--param", "full-ft.epochs=many"], "must be int"),
    ("epochs-fraction", ["run", *FT, "--param", "full-ft.epochs=2.5"], "epochs"),
    ("mlp-epochs-negative", ["run", *FE, "--param", "feature-extract.epochs=-3"], ">= 1"),
    ("lr-inf", ["run", *FT, "--param", "full-ft.lr=inf"], "finite"),
    ("lr-nan", ["run", *FT, "--param", "full-ft.lr=nan"], "finite"),
    ("lr-negative", ["run", *FT, "--param", "full-ft.lr=-1"], "> 0"),
    ("lr-zero", ["run", *FE, "--param", "feature-extract.lr=0"], "> 0"),
    ("lora-lr-inf", ["run", *LORA, "--param", "lora.lr=inf"], "lr"),
    ("lr-text", ["run", *FT, "--param", "full-ft.lr=fast"], "lr"),
    ("batch-size-zero", ["run", *FT, "--param", "full-ft.batch_size=0"], "batch_size"),
    ("batch-size-negative", ["run", *FE, "--param", "feature-extract.batch_size=-8"], "batch_size"),
    ("max-length-zero", ["run", *FT, "--param", "full-ft.max_length=0"], "max_length"),
    ("warmup-above-one", ["run", *FT, "--param", "full-ft.warmup_ratio=2"], "warmup_ratio"),
    ("weight-decay-negative", ["run", *FT, "--param", "full-ft.weight_decay=-0.1"], "weight_decay"),
    ("class-weights-maybe", ["run", *FT, "--param", "full-ft.class_weights=maybe"], "class_weights"),
    ("lora-r-zero", ["run", *LORA, "--param", "lora.r=0"], "'r'"),
    ("lora-alpha-zero", ["run", *LORA, "--param", "lora.alpha=0"], "alpha"),
    ("lora-dropout-one", ["run", *LORA, "--param", "lora.dropout=1"], "dropout"),
    ("lora-target-bad-yaml", ["run", *LORA, "--param", "lora.target_modules=[q_proj,v_proj"], "YAML"),
    ("lora-target-int", ["run", *LORA, "--param", "lora.target_modules=5"], "target_modules"),
    ("qlora-checkpointing-2", ["run", "--strategies", "qlora", "--param", "qlora.gradient_checkpointing=2"],
     "gradient_checkpointing"),
    ("pooling-max", ["run", *FE, "--param", "feature-extract.pooling=max"], "one of"),
    ("head-svm", ["run", *FE, "--param", "feature-extract.head=svm"], "one of"),
    ("C-zero", ["run", *FE, "--param", "feature-extract.C=0"], "'C'"),
    ("hidden-zero", ["run", *FE, "--param", "feature-extract.hidden=0"], "hidden"),
    ("k-shot-negative", ["run", *ZS, "--param", "zero-shot.k_shot=-1"], "k_shot"),
    ("zs-max-length-zero", ["run", *ZS, "--param", "zero-shot.max_length=0"], "max_length"),
    ("verbalizers-list", ["run", *ZS, "--param", "zero-shot.verbalizers=[a, b]"], "verbalizers"),
    ("verbalizers-bad-yaml", ["run", *ZS, "--param", "zero-shot.verbalizers={a: b"], "YAML"),
    ("template-no-text", ["run", *ZS, "--param", "zero-shot.template=Classify this."], "{text}"),
    ("serve-batch-zero", ["run", *FE, "--param", "serve_batch=0"], "serve_batch"),
    ("serve-batch-words", ["run", *FE, "--param", "serve_batch=many"], "serve_batch"),
    ("serve-batch-fraction", ["run", *FE, "--param", "serve_batch=2.5"], "serve_batch"),
    ("serve-batch-huge", ["run", *FE, "--param", "feature-extract.serve_batch=100000"], "<= 4096"),
    ("tfidf-C-zero", ["run", "--strategies", "tfidf", "--param", "tfidf.C=0"], "'C'"),
    ("tfidf-ngram-four", ["run", "--strategies", "tfidf", "--param", "tfidf.ngram_max=4"], "ngram_max"),
    ("unknown-param-prefixed", ["run", *LORA, "--param", "lora.rank=4"], "unknown parameter"),
    ("unknown-param-unprefixed", ["run", *FE, "--param", "nosuch=1"], "nosuch"),
    ("param-of-absent-strategy", ["run", *FE, "--param", "lora.r=4"], "not in this run"),
    ("param-no-equals", ["run", "--param", "lr"], "STRATEGY.NAME=VALUE"),
    ("param-no-name", ["run", "--param", "=3"], "STRATEGY.NAME=VALUE"),
    ("param-empty-strategy", ["run", "--param", ".lr=3"], "STRATEGY.NAME=VALUE"),
    ("params-from-missing-study", ["run", *FE, "--params-from", "nosuch"], "nosuch"),
    ("report-no-records", ["report", "/no/such/folder"], "no run records"),
    ("tune-unknown-strategy", ["tune", "--strategy", "nosuch"], "unknown strategy"),
    ("tune-no-strategy", ["tune"], "--strategy"),
    ("tune-trials-zero", ["tune", "--strategy", "feature-extract", "--trials", "0"], "--trials"),
    ("tune-trials-word", ["tune", "--strategy", "feature-extract", "--trials", "x"], "--trials"),
    ("tune-timeout-negative", ["tune", "--strategy", "feature-extract", "--timeout", "-1"], "--timeout"),
    ("tune-objective-unknown", ["tune", "--strategy", "feature-extract", "--objectives", "speed"], "speed"),
    ("tune-bad-param", ["tune", "--strategy", "full-ft", "--param", "full-ft.epochs=0"], "epochs"),
    ("tune-device-tpu", ["tune", "--strategy", "feature-extract", "--device", "tpu"], "--device"),
    # out-of-range and undecodable values, data that cannot be classes, lengths past the model, long values
    ("seeds-negative", ["run", *FE, "--seeds", "-1"], "out of range"),
    ("seeds-2-to-70", ["run", *FE, "--seeds", str(2**70)], "out of range"),
    ("tune-seed-negative", ["tune", "--strategy", "feature-extract", "--seed", "-5"], "out of range"),
    ("max-length-beyond-positions", ["run", *FE, "--param", "feature-extract.max_length=600"], "beyond the 512"),
    ("zs-max-length-beyond-positions", ["run", *ZS, "--param", "zero-shot.max_length=9000"], "beyond the 8192"),
    ("label-is-a-list", ["run", *FE, "--dataset", "jsonl:%label-list.jsonl"], "not single values"),
    ("labels-differ-by-case", ["run", *FE, "--dataset", "csv:%label-case.csv"], "differ only by case"),
    ("merge-labels-maybe", ["run", *FE, "--dataset", "csv:%label-case.csv", "--data-opt", "merge_labels=maybe"],
     "merge_labels"),
    ("strategy-of-100k-characters", ["run", "--strategies", "x" * 100_000], "unknown strategy"),
    ("epochs-of-50000-digits", ["run", *FT, "--param", "full-ft.epochs=" + "9" * 50_000], "thousands of digits"),
    ("dataset-of-100k-characters", ["run", *FE, "--dataset", "y" * 100_000], "unknown dataset"),
] + [(f"config-{name}", ["run", "--config", f"@{name}"], CONFIG_WORDS.get(name, "")) for name in CONFIGS]
LINE_LIMIT = 800  # an error line echoes a long value cut, never whole


def materialize(args: list[str], tmp_path: Path) -> list[str]:
    """Config cases name their file as @NAME, data cases as FORMAT:%NAME; the file is written here
    (outside the results folder)."""
    out = []
    for a in args:
        if a.startswith("@"):
            path = tmp_path / f"{a[1:]}.yaml"
            content = CONFIGS[a[1:]]
            path.write_bytes(content if isinstance(content, bytes) else content.encode())
            a = str(path)
        elif ":%" in a:
            kind, name = a.split(":%")
            (tmp_path / name).write_text(DATA_FILES[name])
            a = f"{kind}:{tmp_path / name}"
        out.append(a)
    return out


def with_results(args: list[str], results: Path) -> list[str]:
    if args and args[0] in ("run", "tune"):
        return [args[0], "--results-dir", str(results), *args[1:]] + (["--no-report"] if args[0] == "run" else [])
    return args


@pytest.fixture
def keep_signals():
    """cli.main installs its SIGINT/SIGTERM handlers; give pytest its own back."""
    saved = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, h in saved.items():
        signal.signal(s, h)


def test_the_table_has_at_least_60_cases():
    assert len(CASES) >= 60 and len({c[0] for c in CASES}) == len(CASES)


def test_an_alias_bomb_fails_fast_with_a_short_line(tmp_path, capsys, keep_signals):
    t0 = time.perf_counter()
    code = cli.main(with_results(materialize(["run", "--config", "@alias-bomb"], tmp_path), tmp_path / "results"))
    err = capsys.readouterr().err
    assert code == 2 and time.perf_counter() - t0 < 5 and len(err) < 300, err[:500]


@pytest.mark.parametrize("case,args,word", CASES, ids=[c[0] for c in CASES])
def test_bad_input_is_one_error_line_and_writes_nothing(case, args, word, tmp_path, capsys, keep_signals):
    results = tmp_path / "results"
    argv = with_results(materialize(args, tmp_path), results)
    t0 = time.perf_counter()
    try:
        code = cli.main(argv)
    except SystemExit as exc:  # argparse's own exit, with our one-line error
        code = exc.code
    err = capsys.readouterr().err
    assert code == 2, err
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), err[:3000]
    assert word in lines[0], lines[0][:3000]
    assert len(lines[0]) <= LINE_LIMIT, lines[0][:3000]
    assert "Traceback" not in err
    assert not files_under(results), files_under(results)
    assert time.perf_counter() - t0 < 30  # no model was loaded


SAMPLE = ["device-tpu", "lr-inf", "lora-target-bad-yaml", "config-strategies-int", "unknown-param-unprefixed",
          "precision-fp16", "epochs-zero", "config-seeds-words", "config-alias-bomb", "config-latin1-comment",
          "seeds-negative", "label-is-a-list", "labels-differ-by-case", "max-length-beyond-positions"]


@pytest.mark.parametrize("case", SAMPLE)
def test_a_sample_through_the_real_cli(case, tmp_path):
    _, args, word = next(c for c in CASES if c[0] == case)
    results = tmp_path / "results"
    out = bench(*with_results(materialize(args, tmp_path), results), timeout=120)
    assert out.returncode == 2, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and clean_failure(out.stderr) == lines and word in lines[0], out.stderr
    assert not files_under(results)


def test_a_text_param_that_yaml_reads_as_a_mapping_is_taken_verbatim(keep_signals):
    from bench.running.config import Experiment, parse_param_flags
    from bench.running.plan import plan

    exp = Experiment(strategies=["zero-shot"], per_class=[5, 2, 5],
                     params=parse_param_flags(["zero-shot.template=Text: {text}", "zero-shot.answer_prefix=Topic:"]))
    spec = plan(exp, check_data=False)[0]
    assert spec.params["template"] == "Text: {text}" and spec.params["answer_prefix"] == "Topic:"


def test_bad_input_and_the_plan_import_no_torch(tmp_path):
    """The CLI's own process checks flags, parameters and data and plans the runs without torch
    (seconds of start-up): only the workers import it. On the CPU, that is (`auto` on a machine with
    a GPU driver asks torch)."""
    import subprocess
    import sys

    from tests.faults.faultkit import env

    cases = [c for c in CASES if c[0] in ("epochs-zero", "lora-r-zero", "unknown-param-prefixed", "C-zero",
                                          "template-no-text", "qlora-checkpointing-2", "per-class-too-big")]
    script = "\n".join([
        "import sys",
        "from bench.commands import cli",
        "from bench.running.config import Experiment",
        "from bench.running.plan import plan",
        f"for argv in {[with_results(args, tmp_path / 'r') + ['--device', 'cpu'] for _, args, _ in cases]!r}:",
        "    assert cli.main(argv) == 2, argv",
        "specs = plan(Experiment(per_class='5,2,5', device='cpu'))  # every default strategy, data checked",
        "assert len(specs) == 6",  # zero-shot, feature-extract, full-ft, lora, qlora, tfidf
        "print(sorted(m for m in ('torch', 'transformers', 'peft', 'bitsandbytes') if m in sys.modules))",
    ])
    out = subprocess.run([sys.executable, "-c", script], env=env(), capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]", out.stdout
    assert out.stderr.count("error: ") == len(cases), out.stderr

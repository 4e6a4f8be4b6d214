"""The CLI on bad input (one line, before any model loads), `bench list`, and the signal handlers
an in-process call leaves as it found them."""

from __future__ import annotations

import signal
import time

import pytest

from tests.conftest import run_bench


@pytest.mark.parametrize("args,message", [
    (["--strategies", "lroa"], "unknown strategy 'lroa'"),
    (["--dataset", "imdb"], "unknown dataset 'imdb'"),
    (["--model", "./nowhere"], "does not exist"),
    (["--dataset", "csv:/no/such.csv"], "does not exist"),
    (["--per-class", "600,10,10"], "lower --per-class"),
    (["--param", "full-ft.epochs=many"], "must be int"),
    (["--param", "lora.rank=4", "--strategies", "lora"], "unknown parameter"),
    (["--seeds", "a,b"], "--seeds"),
    (["--config", "/no/such.yaml"], "does not exist"),
])
def test_bad_input_is_one_line_and_nonzero_before_any_model_loads(tmp_path, args, message):
    t = time.perf_counter()
    out = run_bench("run", "--results-dir", str(tmp_path), "--no-report", *args)
    assert out.returncode == 2, out.stderr
    lines = [ln for ln in out.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and message in lines[0], out.stderr
    assert "Traceback" not in out.stderr
    assert time.perf_counter() - t < 60  # no model was loaded
    assert not list(tmp_path.glob("*.json"))


def test_bad_file_columns_and_classes(tmp_path):
    csv = tmp_path / "d.csv"
    csv.write_text("sentence,label\n" + "".join(f"s{i},a\n" for i in range(10)))
    out = run_bench("run", "--dataset", f"csv:{csv}", "--results-dir", str(tmp_path), "--no-report")
    assert out.returncode == 2 and "--text-col" in out.stderr
    out = run_bench("run", "--dataset", f"csv:{csv}", "--text-col", "sentence", "--per-class", "2,1,2",
                    "--results-dir", str(tmp_path), "--no-report")
    assert out.returncode == 2 and "single class" in out.stderr


def test_list_marks_what_is_available(tmp_path):
    out = run_bench("list")
    assert out.returncode == 0, out.stderr
    for name in ("zero-shot", "feature-extract", "full-ft", "lora", "qlora", "bbc-news", "ag_news", "minilm",
                 "smollm2"):
        assert name in out.stdout
    assert "yes bbc-news" in out.stdout.replace("  ", " ")


def test_in_process_main_puts_back_the_signal_handlers_it_found_even_after_a_stop(monkeypatch):
    """A stop sets both signals to ignored (the cleanup runs once); called in-process, main must not
    leave them so: a later Ctrl-C in the same interpreter (the cluster tests) would go unheard."""
    from bench.commands import cli
    from bench.core.errors import stop_on_signal

    def stopped_by_sigterm(args):
        stop_on_signal(signal.SIGTERM, None)  # what the handler does when SIGTERM arrives

    monkeypatch.setitem(cli.COMMANDS, "list", stopped_by_sigterm)
    found = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        assert cli.main(["list"]) == 128 + signal.SIGTERM
        assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
        assert signal.getsignal(signal.SIGTERM) is found[signal.SIGTERM]
    finally:
        for sig, handler in found.items():
            signal.signal(sig, handler)

"""The `bench` command: run, report, tune, compare, list, perf."""

from __future__ import annotations

import argparse
import signal
import sys
from pathlib import Path

from bench.commands.flags import (add_config_flag, add_data_flags, add_report_flags, add_matrix_flags,
                                  add_storage_flag, add_study_flags)
from bench.commands.launching import add_launcher_flags, check_launcher_flags, launcher_from_args
from bench.commands.rendering import render_after_runs
from bench.core.errors import BenchError, cut, stop_on_signal
from bench.core.plugins import load_plugins
from bench.core.secrets import mask_secrets, register_url


class OneLineParser(argparse.ArgumentParser):
    """Usage mistakes as one `error:` line (exit 2), like every other input error."""

    def error(self, message: str):
        self.exit(2, f"error: {cut(mask_secrets(message))} (see `{self.prog} --help`)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="bench", description="Compare fine-tuning strategies for text "
                                     "classification on one data and evaluation harness.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=OneLineParser)

    run = sub.add_parser("run", help="run strategies, write one record per run, render the report")
    add_config_flag(run)
    add_matrix_flags(run)
    run.add_argument("--train-sizes", help="a data-efficiency curve: every strategy at each training-set size, "
                     "rows per class (8,16,32,64) or fractions of the train split (0.1,0.5,1); validation and "
                     "test rows stay the same")
    add_data_flags(run)
    run.add_argument("--params-from", metavar="STUDY", help="use the best parameters of an Optuna study "
                     "(from `bench tune`) for its strategy")
    add_storage_flag(run, "Optuna storage URL for --params-from (default: the results folder's SQLite)")
    add_report_flags(run)
    run.add_argument("--save-models", action="store_true", default=None,
                     help="keep each ok run's trained model under RESULTS/models/RUN_ID/ (save_pretrained form, a "
                     "model card) for `bench predict` and `bench export`; off by default")
    add_launcher_flags(run)

    rep = sub.add_parser("report", help="render the HTML comparison report from stored records")
    rep.add_argument("results", nargs="?", default=None, help="results folder (default results/)")
    rep.add_argument("--results-dir", dest="results_opt", metavar="DIR",
                     help="the same, as a flag (as `bench run` takes it)")
    rep.add_argument("--format", choices=["html", "md"], default="html",
                     help="html: the full report (default); md: the result table as Markdown, for docs")
    rep.add_argument("-o", "--output", help="report path (html: default reports/index.html, the CSV goes beside "
                     "it; md: default the standard output)")

    tune = sub.add_parser("tune", help="Optuna search over one strategy's hyperparameters (validation split)")
    tune.add_argument("--strategy", required=True)
    tune.add_argument("--trials", type=int, default=20, help="trials to add in this invocation; a resumed "
                      "study keeps its earlier trials and numbering (default 20)")
    tune.add_argument("--timeout", type=float, help="seconds; stop starting new trials after this")
    tune.add_argument("--study-name", help="default: STRATEGY-DATASET-MODEL (-OBJECTIVE2 added for two objectives)")
    tune.add_argument("--objectives", default="balanced_accuracy",
                      help="balanced_accuracy, optionally a second: balanced_accuracy,train_time or ,peak_memory")
    add_study_flags(tune)
    add_config_flag(tune, "experiment file (YAML) for data/model defaults")
    add_data_flags(tune)
    add_launcher_flags(tune)

    from bench.commands.compare import HELP as compare_help, add_arguments as add_compare_arguments

    compare = sub.add_parser("compare", help=compare_help.splitlines()[0], description=compare_help,
                             formatter_class=argparse.RawDescriptionHelpFormatter)
    add_compare_arguments(compare)

    sub.add_parser("list", help="strategies, datasets and models, and whether each is available here")

    from bench.commands.predict import add_arguments as add_predict_arguments

    predict = sub.add_parser("predict", help="labels (and class probabilities) for new texts from a model kept by "
                             "`bench run --save-models`")
    export = sub.add_parser("export", help="a LoRA-family run's adapter merged into its base, as a stand-alone "
                            "Hugging Face model")
    add_predict_arguments(predict, export)

    from bench.commands.perf import __doc__ as perf_doc, add_arguments as add_perf_arguments

    perf = sub.add_parser("perf", help="time the suite against hand-written scripts doing the same job",
                          description=perf_doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_perf_arguments(perf)
    return parser


def experiment_from_args(args) -> "Experiment":
    from bench.running.config import PARSED, Experiment, parse_data_opts, parse_int_list, parse_param_flags

    exp = Experiment.from_yaml(args.config) if getattr(args, "config", None) else Experiment()
    if getattr(args, "strategies", None):
        exp.strategies = [s.strip() for s in args.strategies.split(",") if s.strip()]
    if getattr(args, "seeds", None):
        exp.seeds = parse_int_list(args.seeds, "seeds")
    if args.dataset:
        exp.dataset = args.dataset
    if args.text_col:
        exp.text_cols = [c.strip() for c in args.text_col.split(",") if c.strip()]
    exp.data_opts.update(parse_data_opts(getattr(args, "data_opt", None)))
    for attr in ("label_col", "split_col", "test_from", "device", "precision", "results_dir"):
        value = getattr(args, attr, None)
        if value:
            setattr(exp, attr, value)
    for attr, parse in PARSED.items():  # typed once, here, as a config file's values are
        if getattr(args, attr, None):
            setattr(exp, attr, parse(getattr(args, attr)))
    if getattr(args, "max_rows", None) is not None:
        exp.max_rows = args.max_rows
    if getattr(args, "save_models", None):
        exp.save_models = True
    if getattr(args, "per_class", None) and getattr(args, "split", None):
        raise BenchError("--per-class and --split both given; --per-class X is --split per-class:X, give one")
    if getattr(args, "per_class", None):
        exp.split = None  # the flag beats a config file's split
    if args.model:
        exp.model, exp.models = args.model, {}
    for strat, values in parse_param_flags(args.param).items():
        exp.params.setdefault(strat, {}).update(values)
    return exp


def cmd_run(args) -> int:
    from bench.running.plan import plan
    from bench.running.runner import ResultsUnwritable, check_writable

    check_launcher_flags(args)
    exp = experiment_from_args(args)
    if args.params_from:
        from bench.commands.tune import best_params_for

        strategy, best = best_params_for(args.params_from, args.storage, exp.results_dir)
        exp.params.setdefault(strategy, {}).update(best)
        print(f"using the best parameters of study '{args.params_from}' for {strategy}: {best}")
    if exp.save_models and args.launcher != "local":
        raise BenchError(f"--save-models keeps models in the results folder of the machine that trains; with "
                         f"--launcher {args.launcher} they would stay on the nodes: use --launcher local")
    specs = plan(exp)
    check_writable(exp.results_dir)  # after every input check, so bad input writes nothing
    if exp.save_models:
        check_writable(Path(exp.results_dir) / "models", "models folder")
    if not args.no_report:
        check_writable(Path(args.output).parent, "report folder", "-o")
    launcher = launcher_from_args(args)  # Ray started or joined here, still before any model loads
    print(f"{len(specs)} run(s) -> {exp.results_dir}/" + ("" if args.launcher == "local" else f" on {args.launcher}"))
    stopped, outcomes, code = None, [], 0
    try:
        with launcher:
            outcomes = launcher.run_matrix(specs, exp.results_dir, force=args.force, quiet=args.quiet)
    except KeyboardInterrupt as exc:
        stopped = getattr(exc, "signum", signal.SIGINT)
        words = "terminated (SIGTERM)" if stopped == signal.SIGTERM else "interrupted"
        print(f"{words}: the running run is recorded as cancelled; finished records are kept", file=sys.stderr)
    except ResultsUnwritable as exc:  # the folder went read-only or full mid-matrix: stop, report what exists
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    if not args.no_report:
        render_after_runs(exp.results_dir, args.output)
    if stopped:
        return 128 + stopped  # 130 after SIGINT (Ctrl-C), 143 after SIGTERM
    bad = [o for o in outcomes if o.status not in ("ok", "skipped")]
    unsaved = [o for o in outcomes if o.record is not None and "error" in (o.record.saved_model or {})]
    return 1 if bad or unsaved or code else 0


def cmd_report(args) -> int:
    from bench.reporting.report import render_report

    results = args.results or args.results_opt or "results"
    if args.format == "md":
        return markdown_to(results, args.output)
    output = args.output or "reports/index.html"
    try:
        path = render_report(results, output)
    except OSError as exc:
        raise BenchError(f"cannot write the report {output} ({exc.strerror or exc}); pass -o with a "
                         "writable path") from None
    print(f"report: {path} (and {Path(path).with_suffix('.csv')})")
    return 0


def markdown_to(results: str, output: str | None) -> int:
    from bench.reporting.markdown import markdown_report

    text = markdown_report(results)
    if not output:
        sys.stdout.write(text)
        return 0
    try:
        Path(output).parent.mkdir(parents=True, exist_ok=True)
        Path(output).write_text(text, encoding="utf-8")
    except OSError as exc:
        raise BenchError(f"cannot write {output} ({exc.strerror or exc}); pass -o with a writable path") from None
    print(f"report: {output}")
    return 0


def cmd_tune(args) -> int:
    from bench.commands.tune import run_tune

    check_launcher_flags(args)
    return run_tune(args, experiment_from_args(args))


def cmd_compare(args) -> int:
    from bench.commands.compare import run_compare

    check_launcher_flags(args)
    return run_compare(args, experiment_from_args(args))


def cmd_perf(args) -> int:
    from bench.commands.perf import main as perf_main

    return perf_main(args)


def cmd_predict(args) -> int:
    from bench.commands.predict import run_predict

    return run_predict(args)


def cmd_export(args) -> int:
    from bench.commands.predict import run_export

    return run_export(args)


def cmd_list(args) -> int:
    from bench.data.sources import dataset_status
    from bench.engine.models import alias_status
    from strategies import REGISTRY, get_strategy

    def mark(ok: bool) -> str:
        return "yes" if ok else "no "

    print("strategies:")
    for name in REGISTRY:
        s = get_strategy(name)
        ok, how = True, f"default model {s.default_model}"
        try:
            from bench.engine.models import resolve_model

            s.check(s.Params(), resolve_model(s.default_model))
        except BenchError as exc:
            ok, how = False, str(exc)
        print(f"  {mark(ok)} {name:16s} {s.description}  [{how}]")
    print("datasets:")
    for name, ok, how, desc, options in dataset_status():
        print(f"  {mark(ok)} {name:16s} {desc}  [{how}]")
        for option, text in options.items():
            print(f"      --data-opt {option}=...  {text}")
    print("  yes csv:/jsonl:/parquet:PATH  a local table, with --text-col/--label-col")
    print("  ?   hf:NAME          a Hugging Face dataset (needs the Hub or its cache)")
    print("models (offline aliases):")
    for alias, ok, how, desc in alias_status():
        print(f"  {mark(ok)} {alias:16s} {desc}  [{how}]")
    print("  ?   any Hub id or local folder (the Hub is needed for ids not in the local cache)")
    return 0


COMMANDS = {"run": cmd_run, "report": cmd_report, "tune": cmd_tune, "compare": cmd_compare, "list": cmd_list,
            "perf": cmd_perf, "predict": cmd_predict, "export": cmd_export}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    register_url(getattr(args, "storage", None))  # its password masked verbatim, whatever it holds
    # put back on return what was found: called in-process (tests, a notebook), a stop would
    # otherwise leave both signals ignored for whatever runs next in this interpreter
    found = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    signal.signal(signal.SIGTERM, stop_on_signal)
    if found[signal.SIGINT] is signal.default_int_handler:  # not where the shell made us ignore it
        signal.signal(signal.SIGINT, stop_on_signal)
    try:
        load_plugins()
        return COMMANDS[args.command](args)
    except BenchError as exc:
        print(f"error: {cut(mask_secrets(str(exc)))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt as exc:
        signum = getattr(exc, "signum", signal.SIGINT)
        print("terminated" if signum == signal.SIGTERM else "interrupted", file=sys.stderr)
        return 128 + signum
    finally:
        for sig, handler in found.items():
            if handler is not None:  # None: set outside Python, cannot be put back from here
                signal.signal(sig, handler)


if __name__ == "__main__":
    sys.exit(main())

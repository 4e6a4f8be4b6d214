"""The flags several `bench` commands share (`run`, `tune`, `compare`), defined once here so their
names, defaults and help never drift apart."""

from __future__ import annotations

import argparse


def add_data_flags(p: argparse.ArgumentParser) -> None:
    """The data, model, hyperparameter, device and results flags of every command that runs models."""
    p.add_argument("--dataset", help="bbc-news (default), ag_news, csv:PATH, jsonl:PATH, parquet:PATH, hf:NAME")
    p.add_argument("--text-col", help="text column(s), comma-separated; several are joined line by line")
    p.add_argument("--label-col", help="label column")
    p.add_argument("--data-opt", action="append", default=[], metavar="NAME=VALUE",
                   help="an option of the dataset's own (repeatable), e.g. --data-opt dir=DIR for ag_news's local "
                   "CSV folder; `bench list` names each dataset's options")
    p.add_argument("--split", help="per-class:TRAIN,VAL,TEST (rows per class; the default), stratified:0.8,0.1,0.1 "
                   "(fractions of all rows, class shares kept) or official (the dataset's own splits)")
    p.add_argument("--per-class", help="TRAIN,VAL,TEST rows sampled per class, e.g. 2000,500,500 "
                   "(the same as --split per-class:...)")
    p.add_argument("--max-rows", type=int, help="cap the pool at N rows, class shares kept (stratified, official)")
    p.add_argument("--split-col", help="a file's column that names each row's split (train/validation/test), "
                   "for --split official")
    p.add_argument("--test-from", choices=["pool", "official"], help="sample test rows from the pool "
                   "(default) or from the dataset's own test split")
    p.add_argument("--model", help="one model for every strategy: an alias (minilm, smollm2), a Hub id or a path")
    p.add_argument("--param", action="append", default=[], metavar="STRATEGY.NAME=VALUE",
                   help="override a hyperparameter, e.g. --param lora.lr=1e-4 (repeatable)")
    p.add_argument("--device", help="auto (default), cpu, cuda or cuda:N")
    p.add_argument("--precision", choices=["auto", "bf16", "fp32"], help="auto: bf16 where the device does it natively")
    p.add_argument("--results-dir", help="where run records go (default results/)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bars")


def add_config_flag(p: argparse.ArgumentParser, help: str = "experiment file (YAML); flags override it") -> None:
    p.add_argument("--config", help=help)


def add_matrix_flags(p: argparse.ArgumentParser,
                     strategies_help: str = "comma-separated, or all (every registered strategy); default: those "
                                            "of the default run (`bench list`)",
                     seeds_help: str = "comma-separated, e.g. 0,1,2 (default 0)") -> None:
    p.add_argument("--strategies", help=strategies_help)
    p.add_argument("--seeds", help=seeds_help)


def add_storage_flag(p: argparse.ArgumentParser,
                     help: str = "Optuna storage URL (default sqlite:///RESULTS_DIR/optuna.db)") -> None:
    p.add_argument("--storage", help=help)


def add_study_flags(p: argparse.ArgumentParser, seed_help: str = "data split and training seed of every trial") -> None:
    """A tuning study's storage, trial seed, pruner and trial loops (`bench tune`, `bench compare`)."""
    add_storage_flag(p)
    p.add_argument("--seed", type=int, default=0, help=seed_help)
    p.add_argument("--pruner", choices=["median", "none"], default="median")
    p.add_argument("--workers", type=int, default=1, help="trial loops at once against the study (default 1); "
                   "with --launcher ray their runs spread over the cluster")


def add_report_flags(p: argparse.ArgumentParser) -> None:
    """What a command that runs a matrix does with finished records and the report (`run`, `compare`)."""
    p.add_argument("--force", action="store_true", help="rerun runs whose ok record exists")
    p.add_argument("--no-report", action="store_true", help="do not render reports/index.html at the end")
    p.add_argument("-o", "--output", default="reports/index.html", help="report path")

"""AG News (4 topics): a local folder of the original CSV files (`--data-opt dir=DIR` or
$FTBENCH_AG_NEWS_DIR: train.csv and/or test.csv of "class index (1-4)","title","description",
no header, and classes.txt), else the Hub's `fancyzhx/ag_news`."""

from __future__ import annotations

import os
from pathlib import Path

import pandas as pd

from bench.data.task import RawDataset
from bench.data.sources.hub import load_hub_splits
from bench.core.errors import BenchError

HUB_ID = "fancyzhx/ag_news"
ENV_VAR = "FTBENCH_AG_NEWS_DIR"
LABELS = ["World", "Sports", "Business", "Sci/Tech"]


def _local_dir(options) -> Path | None:
    d = options.get("dir") or os.environ.get(ENV_VAR)
    return Path(d).expanduser() if d else None


def _read_csv(path: Path) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, header=None, names=["label", "title", "description"], dtype={"label": "Int64"})
    except Exception as exc:  # noqa: BLE001
        raise BenchError(f"cannot read AG News file '{path}' ({type(exc).__name__}); expected the original "
                         '"class index (1-4)","title","description" CSV without a header') from None
    if df["label"].isna().any() or not df["label"].between(1, 4).all():
        raise BenchError(f"'{path}' has class indexes outside 1-4; expected the original AG News CSV")
    return df


class AGNews:
    description = f"AG News, 4 topics: local folder (--data-opt dir=DIR or ${ENV_VAR}) or Hub {HUB_ID}"
    options = {"dir": f"a local folder of the original CSV files; else ${ENV_VAR}, else the Hub"}

    def default_per_class(self, options) -> tuple[int, int, int]:
        """The seed article's 2000/500/500 where a train file exists; the official test file alone
        (1,900 rows per class) gives 1000/200/500."""
        d = _local_dir(options)
        if d is not None and not (d / "train.csv").is_file():
            return (1000, 200, 500)
        return (2000, 500, 500)

    def available(self, options) -> tuple[bool, str]:
        d = _local_dir(options)
        if d is not None:
            ok = (d / "train.csv").is_file() or (d / "test.csv").is_file()
            return ok, f"local folder {d}" if ok else f"no train.csv/test.csv in {d}"
        return False, f"set --data-opt dir=DIR or ${ENV_VAR}, or reach the Hub ({HUB_ID})"

    def load(self, options) -> RawDataset:
        d = _local_dir(options)
        if d is None:
            return self._from_hub()
        if not d.is_dir():
            raise BenchError(f"AG News folder '{d}' does not exist; fix --data-opt dir=DIR or ${ENV_VAR}")
        labels = LABELS
        if (d / "classes.txt").is_file():
            labels = [x.strip() for x in (d / "classes.txt").read_text().splitlines() if x.strip()]
        frames = {}
        for split in ("train", "test"):
            if (d / f"{split}.csv").is_file():
                df = _read_csv(d / f"{split}.csv")
                frames[split] = pd.DataFrame({
                    "id": [f"{split}:{i}" for i in range(len(df))],
                    "text": (df["title"].fillna("") + "\n" + df["description"].fillna("")).str.strip(),
                    "label": df["label"].map(lambda i: labels[int(i) - 1]),
                })
        if not frames:
            raise BenchError(f"AG News folder '{d}' has neither train.csv nor test.csv")
        # with only the official test file (as on machines without the Hub), every split comes from it
        pool = frames.get("train", frames.get("test"))
        test = frames.get("test") if "train" in frames else None
        return RawDataset("ag_news", pool, labels, test, provenance=f"AG News CSV files in {d.resolve()}")

    def _from_hub(self) -> RawDataset:
        ds = load_hub_splits(HUB_ID, f"AG News ({HUB_ID}); or pass --data-opt dir=DIR or set ${ENV_VAR}")
        names = list(ds["train"].features["label"].names)

        def frame(split: str) -> pd.DataFrame:
            df = ds[split].to_pandas()
            return pd.DataFrame({"id": [f"{split}:{i}" for i in range(len(df))], "text": df["text"],
                                 "label": df["label"].map(lambda i: names[int(i)])})

        return RawDataset("ag_news", frame("train"), names, frame("test"), provenance=f"Hugging Face {HUB_ID}")


SOURCE = AGNews()

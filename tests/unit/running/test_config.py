"""Experiments and run ids: a run id is a hash of the resolved config, params are coerced and
checked, --param flags and YAML errors."""

from __future__ import annotations

import pytest

from bench.core.errors import BenchError
from bench.core.params import validate_params
from bench.running.config import Experiment, RunSpec, parse_param_flags
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


def test_ids_of_runs_outside_a_comparison_are_the_ids_they_always_had():
    assert spec().run_id == "e7af18dc75ca8b0c"  # the id this spec had before comparisons existed
    assert spec(eval_split="val", study={"name": "s", "trial": 3}).run_id == "8bafade4a33703d1"


def test_a_comparisons_role_and_variant_make_another_run_its_budget_does_not():
    block = {"name": "cmp-x", "budget": "trials:6", "role": "test", "variant": "default", "prefer": "train-time"}
    default = spec(comparison=block)
    assert default.run_id != spec().run_id  # not the plain `bench run` run of the same config
    assert spec(comparison={**block, "variant": "tuned"}).run_id != default.run_id
    assert spec(comparison={**block, "budget": "trials:9", "prefer": "memory"}).run_id == default.run_id
    assert spec(holdout_seeds=[0, 1]).run_id != spec().run_id


def test_params_are_coerced_and_checked():
    s = get_strategy("full-ft")
    p = validate_params(s, {"lr": "3e-4", "epochs": "2", "class_weights": "true"})
    assert p["lr"] == 3e-4 and p["epochs"] == 2 and p["class_weights"] is True
    with pytest.raises(BenchError, match="unknown parameter.*lrr"):
        validate_params(s, {"lrr": 1})
    with pytest.raises(BenchError, match="must be int"):
        validate_params(s, {"epochs": 2.5})


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


def test_a_config_file_is_utf8_small_and_not_an_alias_bomb(tmp_path):
    import time

    from bench.running.config import expanded_size

    latin1 = tmp_path / "latin1.yaml"
    latin1.write_bytes("seeds: [0]\n# caf\xe9\n".encode("latin-1"))
    with pytest.raises(BenchError, match=r"not UTF-8 text \(byte 0xe9 at line 2\); save it as UTF-8"):
        Experiment.from_yaml(latin1)
    bom = tmp_path / "bom.yaml"
    bom.write_bytes(b"\xef\xbb\xbfseeds: [3]\n")
    assert Experiment.from_yaml(bom).seeds == [3]
    levels = ['a: &a ["x","x","x","x","x","x","x","x","x"]']
    levels += [f"{n}: &{n} [{','.join(['*' + p] * 9)}]" for p, n in zip("abcdefgh", "bcdefghi")]
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("\n".join(levels) + "\nseeds: *i\n")
    t0 = time.perf_counter()
    with pytest.raises(BenchError, match="expands to more than 100,000 values") as err:
        Experiment.from_yaml(bomb)
    assert time.perf_counter() - t0 < 5 and len(str(err.value)) < 300
    big = tmp_path / "big.yaml"
    big.write_text("seeds: [0]\n#" + "x" * (2 << 20))
    with pytest.raises(BenchError, match="an experiment file is a few lines"):
        Experiment.from_yaml(big)
    shared = [1, 2]
    assert expanded_size({"a": [shared, shared]}, 100) == 9  # a shared value counts each time it appears

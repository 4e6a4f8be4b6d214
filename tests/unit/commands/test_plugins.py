"""A strategy and a dataset added from outside the repository (one module, a registry line each)
run through the CLI like the built-in ones: the proof that no harness edit is needed."""

from __future__ import annotations

import json
import textwrap

from tests.conftest import run_bench

PLUGIN = textwrap.dedent('''
    """A throw-away plug-in: a strategy that always says the most frequent training class, and a
    dataset of three made-up topics."""
    from dataclasses import dataclass

    import numpy as np
    import pandas as pd

    import strategies
    from bench.core.params import param
    from bench.data import sources
    from bench.data.task import RawDataset
    from strategies.shared.base import Strategy, StrategyResult


    @dataclass
    class MajorityParams:
        offset: int = param(0, ge=0)  # added to the chosen class id, to prove params reach the run


    class Majority(Strategy):
        name = "majority"
        description = "always the most frequent training class"
        default_model = "minilm"
        Params = MajorityParams
        flops_kind = "forward"

        def run(self, ctx, p):
            n = len(ctx.data.labels)
            guess = (int(np.bincount(ctx.data.train.labels, minlength=n).argmax()) + p.offset) % n
            return StrategyResult(predictions=[guess] * len(ctx.eval.labels), trainable_params=0, total_params=1,
                                  extra_cost={"guess": guess})


    class Topics:
        description = "three made-up topics, 30 rows each"
        options = {"words": "how many words a text has (default 4)"}

        def available(self, options):
            return True, "generated"

        def load(self, options):
            words = int(options.get("words") or 4)
            rows = [{"id": f"{t}:{i}", "text": " ".join([t] * words) + f" {i}", "label": t}
                    for t in ("cats", "cars", "cakes") for i in range(30)]
            return RawDataset("topics", pd.DataFrame(rows), ["cakes", "cars", "cats"], None, provenance="made up")


    SOURCE = Topics()
    strategies.REGISTRY["majority"] = f"{__name__}:Majority"  # a class: one instance per run
    sources.REGISTRY["topics"] = f"{__name__}:SOURCE"  # a source object
''')


def test_a_strategy_and_a_dataset_from_a_plugin_run_through_the_cli(tmp_path):
    (tmp_path / "throwaway_plugin.py").write_text(PLUGIN)
    env = {"FTBENCH_PLUGINS": "throwaway_plugin", "PYTHONPATH": str(tmp_path)}
    listed = run_bench("list", env=env)
    assert listed.returncode == 0, listed.stderr
    assert "majority" in listed.stdout and "topics" in listed.stdout and "--data-opt words=" in listed.stdout

    results = tmp_path / "results"
    out = run_bench("run", "--strategies", "majority", "--dataset", "topics", "--data-opt", "words=3",
                    "--per-class", "10,5,10", "--seeds", "0,1", "--param", "majority.offset=1",
                    "--results-dir", str(results), "-o", str(tmp_path / "report.html"), env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    records = [json.loads(p.read_text()) for p in sorted(results.glob("*.json"))]
    assert [r["status"] for r in records] == ["ok", "ok"]
    for rec in records:
        assert rec["strategy"] == "majority" and rec["dataset"]["name"] == "topics"
        assert rec["params"] == {"offset": 1} and rec["config"]["dataset_options"]["source"] == {"words": "3"}
        assert rec["metrics"]["accuracy"] == 1 / 3  # one class of three, 10 test rows each
        assert rec["cost"]["strategy"]["guess"] in (0, 1, 2) and rec["cost"]["flops_kind"] == "forward"
    assert "majority" in (tmp_path / "report.html").read_text()

    bad = run_bench("run", "--strategies", "majority", "--dataset", "topics", "--data-opt", "colour=red",
                    "--results-dir", str(results), env=env)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines()[-1] == (
        "error: dataset 'topics' takes no option 'colour'; its options: words (how many words a text has (default 4))")


def test_a_plugin_that_cannot_be_imported_is_one_clear_error(tmp_path):
    out = run_bench("list", env={"FTBENCH_PLUGINS": "no_such_plugin_module"})
    assert out.returncode == 2
    assert "cannot import plug-in module 'no_such_plugin_module'" in out.stderr

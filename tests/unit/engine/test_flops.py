"""FLOPs-per-token formulas, peak FLOP/s, and the MFU fields of a run record."""

from __future__ import annotations

import pytest

from bench.core import cpuinfo
from bench.core.records import iter_records
from bench.engine import flops
from strategies import get_strategy
from tests.conftest import run_bench

AVX2_FLAGS = "fpu sse sse2 ssse3 fma sse4_1 sse4_2 avx f16c avx2 bmi2"


AVX512_FLAGS = AVX2_FLAGS + " avx512f avx512bw avx512vl"


def fake_cpuinfo(flags: str, mhz: str = "2445.406", cpus: int = 2) -> str:
    return "\n\n".join(f"processor\t: {i}\nmodel name\t: Fake CPU\ncpu MHz\t\t: {mhz}\nflags\t\t: {flags}"
                       for i in range(cpus))


@pytest.fixture(scope="module")
def tiny_llama():
    from transformers import LlamaConfig, LlamaModel

    cfg = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
                      tie_word_embeddings=True)
    cfg.architectures = ["LlamaForCausalLM"]
    model = LlamaModel(cfg)
    non_embedding = sum(p.numel() for n, p in model.named_parameters() if not n.startswith("embed_tokens"))
    return cfg, non_embedding


def test_forward_flops_of_a_tiny_llama_are_2n_plus_the_attention_term(tiny_llama):
    cfg, n = tiny_llama
    shape = flops.model_shape(cfg)
    assert shape.n_nonembedding == n and shape.causal and (shape.n_layers, shape.d_model) == (2, 32)
    seq = 10.0
    forward = flops.forward_flops_per_token(shape, seq)
    assert forward == 2 * n + 2 * 2 * seq * 32
    assert flops.train_flops_per_token(shape, seq, "full") == 3 * forward
    lora = flops.train_flops_per_token(shape, seq, "adapter", n_trainable=100)
    assert forward < 2 * forward <= lora < 3 * forward
    assert lora == 2 * forward + 6 * 100
    assert flops.train_flops_per_token(shape, seq, "forward") is None
    assert flops.eval_flops_per_token(shape, seq, "full") == forward
    assert flops.eval_flops_per_token(shape, seq, "adapter", 100) == forward + 200
    assert flops.model_shape(cfg, n_labels=5).n_nonembedding == n + 5 * 32  # the head


def test_an_encoder_counts_bidirectional_attention_and_leaves_out_embeddings_and_pooler():
    from transformers import BertConfig, BertModel

    cfg = BertConfig(vocab_size=200, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=64, max_position_embeddings=64)
    model = BertModel(cfg)
    n = sum(p.numel() for name, p in model.named_parameters()
            if not name.startswith(("embeddings.word", "embeddings.position", "embeddings.token_type", "pooler.")))
    shape = flops.model_shape(cfg)
    assert shape.n_nonembedding == n and not shape.causal
    assert flops.forward_flops_per_token(shape, 8) == 2 * n + 4 * 2 * 8 * 32


@pytest.mark.parametrize("strategy,trainable,total,kind", [
    ("full-ft", 100, 100, "full"), ("lora", 5, 100, "adapter"), ("qlora", 5, 100, "adapter"),
    ("zero-shot", 0, 100, "forward"), ("feature-extract", 10, 100, "forward")])
def test_the_kind_of_work_comes_from_the_strategy_and_the_trainable_fraction(strategy, trainable, total, kind):
    assert flops.strategy_kind(get_strategy(strategy).flops_kind, trainable, total) == kind


@pytest.mark.parametrize("declared,trainable,total,kind", [
    ("adapter", 1, 100, "adapter"), ("adapter", 90, 100, "full"), ("full", 0, 100, "forward")])
def test_the_parameter_counts_overrule_a_declared_kind_they_contradict(declared, trainable, total, kind):
    assert flops.strategy_kind(declared, trainable, total) == kind


def test_cpu_peak_from_cpuinfo_flags_cores_and_clock():
    info = cpuinfo.parse(fake_cpuinfo(AVX2_FLAGS))
    flags, mhz = info.flags, info.max_mhz
    assert "avx2" in flags and mhz == pytest.approx(2445.406)
    peak, basis = flops.cpu_peak(2, flags, mhz)
    assert peak == pytest.approx(2 * 2 * 2 * 8 * 2.445406e9)  # cores x FMA units x 2 x lanes x clock
    assert "AVX2" in basis and "2 core" in basis and "cpu MHz" in basis and "assumed" in basis
    assert flops.cpu_peak(2, flags, mhz, bf16=True)[0] == peak  # no native bf16: the fp32 peak
    assert flops.cpu_peak(2, flags, mhz, max_freq_khz=3.0e6)[0] == pytest.approx(2 * 32 * 3.0e9)  # cpufreq wins
    assert flops.cpu_peak(4, flags, mhz, cores=2)[0] == peak  # SMT threads share the FMA units
    no_clock, why = flops.cpu_peak(1, flags)
    assert no_clock == pytest.approx(32 * flops.DEFAULT_CPU_GHZ * 1e9) and "assumed" in why
    f512 = cpuinfo.parse(fake_cpuinfo(AVX512_FLAGS)).flags
    assert flops.cpu_peak(2, f512, mhz)[0] == pytest.approx(2 * peak)
    fbf16 = cpuinfo.parse(fake_cpuinfo(AVX512_FLAGS + " avx512_bf16")).flags
    assert flops.cpu_peak(2, fbf16, mhz, bf16=True)[0] == pytest.approx(4 * peak)
    assert flops.cpu_peak(2, fbf16, mhz, bf16=False)[0] == pytest.approx(2 * peak)
    famx = cpuinfo.parse(fake_cpuinfo(AVX512_FLAGS + " avx512_bf16 amx_bf16 amx_tile")).flags
    assert flops.cpu_peak(1, famx, 2000.0, bf16=True)[0] == pytest.approx(1024 * 2.0e9)
    no_fma = cpuinfo.parse(fake_cpuinfo("sse sse2 avx")).flags
    assert flops.cpu_peak(1, no_fma, 1000.0)[0] == pytest.approx(16 * 1e9)


def test_physical_cores_count_smt_siblings_once(tmp_path):
    for cpu, core in ((0, 0), (1, 0), (2, 1), (3, 1)):  # two cores with two hyperthreads each
        topo = tmp_path / f"cpu{cpu}" / "topology"
        topo.mkdir(parents=True)
        (topo / "physical_package_id").write_text("0\n")
        (topo / "core_id").write_text(f"{core}\n")
    assert flops.physical_cores({0, 1, 2, 3}, str(tmp_path)) == 2
    assert flops.physical_cores({0, 2}, str(tmp_path)) == 2
    assert flops.physical_cores({0, 1}, str(tmp_path)) == 1
    assert flops.physical_cores({7, 8}, str(tmp_path / "missing")) == 2  # unreadable: one core per CPU


@pytest.mark.parametrize("name,bf16,tflops", [
    ("NVIDIA H100 80GB HBM3", True, 989), ("NVIDIA H100 PCIe", True, 756), ("NVIDIA H200", True, 989),
    ("NVIDIA A100-SXM4-80GB", True, 312), ("NVIDIA L4", True, 121), ("Tesla T4", True, 65),
    ("NVIDIA GeForce RTX 4090", True, 165), ("NVIDIA L40S", True, 362), ("NVIDIA H100 80GB HBM3", False, 67),
    ("NVIDIA A100-SXM4-80GB", False, 19.5)])
def test_gpu_peak_table(name, bf16, tflops):
    peak, basis = flops.gpu_peak(name, bf16)
    assert peak == pytest.approx(tflops * 1e12) and name in basis


def test_unknown_gpu_has_no_peak():
    peak, basis = flops.gpu_peak("Some Future Accelerator", True)
    assert peak is None and "not in" in basis


def test_utilization_figures_arithmetic(tiny_bert):
    cost = {"trainable_params": 1000, "total_params": 1000, "train_tokens_per_s": 500.0, "eval_tokens_per_s": 2000.0,
            "counters": {"train_examples": 10, "train_tokens": 320, "eval_examples": 4, "eval_tokens": 64}}
    out = flops.utilization_figures("full", str(tiny_bert), cost, "cpu", "fp32", n_labels=5)
    shape = flops.model_shape(str(tiny_bert), 5)
    assert out["flops_kind"] == "full" and out["n_nonembedding_params"] == shape.n_nonembedding
    assert out["flops_per_train_token"] == round(3 * flops.forward_flops_per_token(shape, 32.0))
    assert out["flops_per_eval_token"] == round(flops.forward_flops_per_token(shape, 16.0))
    assert out["peak_flops"] > 0 and out["peak_flops_basis"].startswith("CPU")
    assert out["train_mfu"] == pytest.approx(out["flops_per_train_token"] * 500.0 / out["peak_flops"], rel=1e-3)
    none = flops.utilization_figures("forward", str(tiny_bert), {"counters": {}}, "cpu")
    assert none["train_mfu"] is None and none["eval_mfu"] is None and none["flops_kind"] == "forward"
    broken = flops.utilization_figures("full-ft", "/nonexistent/model", cost, "cpu")
    assert broken["train_mfu"] is None and "not computed" in broken["peak_flops_basis"]  # never raises


def test_a_run_record_carries_the_mfu_figures(tmp_path, tiny_bert):
    out = run_bench("run", "--strategies", "full-ft", "--model", str(tiny_bert), "--per-class", "4,2,3",
                    "--param", "epochs=1", "--param", "max_length=24", "--results-dir", str(tmp_path / "r"),
                    "--no-report", timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    (rec,) = [r.to_dict() for r in iter_records(tmp_path / "r")]
    cost = rec["cost"]
    for key in ("flops_per_train_token", "flops_per_eval_token", "peak_flops", "peak_flops_basis",
                "train_mfu", "eval_mfu"):
        assert key in cost, key
    assert cost["flops_kind"] == "full"
    assert cost["flops_per_train_token"] > 3 * 2 * cost["n_nonembedding_params"] > 0
    assert 0 < cost["train_mfu"] < 1 and 0 < cost["eval_mfu"] < 1 and cost["peak_flops"] > 1e9
    # time_s is rounded to the millisecond: on a run this tiny that alone moves the rate by several percent
    tokens, t = cost["counters"]["train_tokens"], cost["time_s"]["train"]
    assert tokens / (t + 0.0006) <= cost["train_tokens_per_s"] <= tokens / max(t - 0.0006, 1e-6)


def cpuinfo_of(vendor: str, family: int, model: int, flags: str) -> str:
    return (f"processor\t: 0\nvendor_id\t: {vendor}\ncpu family\t: {family}\nmodel\t\t: {model}\n"
            f"model name\t: Some CPU\ncpu MHz\t\t: 2000.000\nflags\t\t: {flags}\n")


ZEN4_OR_5 = AVX512_FLAGS + " avx512_bf16"


@pytest.mark.parametrize("vendor,family,model,flags,per_cycle,name", [
    ("AuthenticAMD", 25, 17, ZEN4_OR_5, 32, "Zen 4"),  # EPYC Genoa: AVX-512 on 256-bit units
    ("AuthenticAMD", 25, 97, ZEN4_OR_5, 32, "Zen 4"),  # Ryzen 7000
    ("AuthenticAMD", 26, 2, ZEN4_OR_5, 64, "Zen 5"),  # EPYC Turin: full 512-bit units
    ("AuthenticAMD", 26, 36, ZEN4_OR_5, 32, "Zen 5"),  # Strix Point: 256-bit units
    ("AuthenticAMD", 25, 1, AVX2_FLAGS, 32, "Zen 3"),
    ("AuthenticAMD", 23, 49, AVX2_FLAGS, 32, "Zen 2"),
    ("AuthenticAMD", 23, 1, AVX2_FLAGS, 16, "Zen /"),  # two 128-bit units run AVX2 at half rate
    ("GenuineIntel", 6, 143, AVX512_FLAGS, 64, "Sapphire"),
    ("GenuineIntel", 6, 140, AVX512_FLAGS, 32, "client AVX-512"),  # Tiger Lake: one 512-bit unit
])
def test_the_peak_follows_the_microarchitecture(vendor, family, model, flags, per_cycle, name):
    info = cpuinfo.parse(cpuinfo_of(vendor, family, model, flags))
    assert (info.vendor, info.family, info.model) == (vendor, family, model)
    peak, basis = flops.cpu_peak(2, info.flags, info.max_mhz, info=info)
    assert peak == pytest.approx(2 * per_cycle * 2.0e9)
    assert basis.startswith("CPU: modelled") and name in basis and "assumed" not in basis


def test_zen4_bf16_doubles_its_own_fp32_peak_not_a_512_bit_one():
    info = cpuinfo.parse(cpuinfo_of("AuthenticAMD", 25, 17, ZEN4_OR_5))
    assert flops.cpu_peak(1, info.flags, info.max_mhz, bf16=True, info=info)[0] == pytest.approx(64 * 2.0e9)


def test_an_unknown_microarchitecture_is_said_to_be_assumed():
    info = cpuinfo.parse(cpuinfo_of("GenuineIntel", 6, 999, AVX512_FLAGS))
    peak, basis = flops.cpu_peak(1, info.flags, info.max_mhz, info=info)
    assert peak == pytest.approx(64 * 2.0e9) and "assumed" in basis


def test_the_measured_peak_times_a_matmul_once_and_reads_it_back(tmp_path, monkeypatch):
    import torch

    from bench.engine import cpu_peak

    info = cpuinfo.parse(cpuinfo_of("AuthenticAMD", 25, 17, ZEN4_OR_5))
    peak, basis = cpu_peak.measured_peak(info, 1, False, tmp_path, n=64, repeats=2)
    assert 1e6 < peak < 1e14 and basis.startswith("CPU: measured") and "64x64" in basis
    assert len(list(tmp_path.glob("*.json"))) == 1

    def no_matmul(*args, **kwargs):
        raise AssertionError("measured again")

    monkeypatch.setattr(torch, "matmul", no_matmul)
    assert cpu_peak.measured_peak(info, 1, False, tmp_path, n=64, repeats=2) == (peak, basis)  # cached
    with pytest.raises(AssertionError, match="measured again"):  # another thread count is another figure
        cpu_peak.measured_peak(info, 2, False, tmp_path, n=64, repeats=2)


def test_ftbench_peak_chooses_the_basis_and_an_unknown_one_is_an_error(tmp_path, monkeypatch):
    from bench.core.errors import BenchError
    from bench.engine import cpu_peak

    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path))
    monkeypatch.setattr(cpu_peak, "MEASURE_N", 64)  # a tiny matmul
    monkeypatch.setenv("FTBENCH_PEAK", "measured")
    assert flops.device_peak("cpu", False)[1].startswith("CPU: measured")
    assert list((tmp_path / "peak").glob("*.json"))
    monkeypatch.setenv("FTBENCH_PEAK", "model")
    assert flops.device_peak("cpu", False)[1].startswith("CPU: modelled")
    monkeypatch.setenv("FTBENCH_PEAK", "guess")
    with pytest.raises(BenchError, match="FTBENCH_PEAK"):
        flops.peak_basis_setting()


def test_a_model_folders_shape_is_counted_once_and_kept(tiny_bert, tmp_path, monkeypatch):
    monkeypatch.setenv("FTBENCH_CACHE", str(tmp_path))
    shape = flops.saved_model_shape(str(tiny_bert), 5)
    assert shape == flops.model_shape(str(tiny_bert), 5) and list((tmp_path / "shapes").glob("*.json"))

    def no_count(*args, **kwargs):
        raise AssertionError("counted again")

    monkeypatch.setattr(flops, "model_shape", no_count)
    assert flops.saved_model_shape(str(tiny_bert), 5) == shape  # read back, no modeling code imported
    with pytest.raises(AssertionError, match="counted again"):  # another head is another count
        flops.saved_model_shape(str(tiny_bert), 3)


def test_a_strategy_without_a_network_has_no_flops_or_mfu_not_zeros():
    out = flops.utilization_figures("none", "/nonexistent", {"trainable_params": 10, "total_params": 10,
                                                             "counters": {"train_examples": 5}}, "cpu")
    assert out["flops_kind"] == "none" and "do not apply" in out["peak_flops_basis"]
    assert all(out[k] is None for k in ("flops_per_train_token", "flops_per_eval_token", "train_mfu", "eval_mfu",
                                        "peak_flops", "n_nonembedding_params"))

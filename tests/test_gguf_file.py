"""GGUF files: the lean reader against gguf's own GGUFReader and dequantizer (a small file written here,
and SmolLM2-135M's real one), the Hugging Face view against transformers' loader, and hostile files."""

from __future__ import annotations

import os
import re
import struct
import tracemalloc
from pathlib import Path

import gguf
import numpy as np
import pytest

from attnviz_cli.errors import AttnvizError, quoted
from attnviz_cli.models.gguf_file import DEQUANTIZED, MAX_ITEMS, MAX_STRING, open_gguf
from tests.conftest import REAL_GGUF, need_module, need_real


def plain(value):
    """A metadata value as GGUFReader's contents() gives it: NumPy arrays as lists."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, list):
        return [plain(v) for v in value]
    return value


def reader_view(path: Path):
    """gguf's own reading of a file: metadata (GGUFReader's contents()), tensor infos and dequantized tensors."""
    reader = gguf.GGUFReader(path)
    metadata = {key: field.contents() for key, field in reader.fields.items() if not key.startswith("GGUF.")}
    infos = {t.name: (tuple(reversed(t.shape.tolist())), int(t.tensor_type), t.data_offset, t.data_offset + t.n_bytes) for t in reader.tensors}
    return reader, metadata, infos


def assert_same_as_reader(path: Path) -> None:
    """open_gguf's metadata, tensor infos and every dequantized tensor equal gguf's, exactly."""
    ours = open_gguf(path)
    reader, metadata, infos = reader_view(path)
    assert {k: plain(v) for k, v in ours.metadata.items()} == metadata
    assert {n: (t.shape, t.ggml_type, t.begin, t.end) for n, t in ours.tensors.items()} == infos
    for tensor in reader.tensors:
        want = gguf.dequantize(tensor.data, tensor.tensor_type)
        got = ours.read(tensor.name)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, want.reshape(got.shape), err_msg=tensor.name)


# --- a small file of every metadata type and every ggml type read, written by gguf's own writer --------

TYPES = [getattr(gguf.GGMLQuantizationType, name) for name in DEQUANTIZED]


def stored_bytes(rng: np.random.Generator, qtype, rows: int, row_values: int) -> np.ndarray:
    """Random stored bytes of a (rows, row_values) tensor of ``qtype``. Bytes below 0x7C make every f16,
    bf16 and f32 among them (scales, values) finite: their exponent bits are never all ones."""
    block, type_size = gguf.GGML_QUANT_SIZES[qtype]
    return rng.integers(0, 0x7C, size=(rows, row_values // block * type_size), dtype=np.uint8)


@pytest.fixture(scope="module")
def small_gguf(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("gguf") / "small.gguf"
    rng = np.random.default_rng(28)
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(2)
    writer.add_uint8("test.u8", 200)
    writer.add_int8("test.i8", -100)
    writer.add_uint16("test.u16", 60000)
    writer.add_int16("test.i16", -30000)
    writer.add_uint32("test.u32", 4_000_000_000)
    writer.add_int32("test.i32", -2_000_000_000)
    writer.add_float32("test.f32", 0.1)
    writer.add_uint64("test.u64", 2**63 + 5)
    writer.add_int64("test.i64", -(2**62))
    writer.add_float64("test.f64", 0.1)
    writer.add_bool("test.bool", True)
    writer.add_string("test.str", "Grüße, 世界 \x00 \U0001f999")
    writer.add_array("test.strings", ["a", "", "ĠHello", "<0x0A>"])
    writer.add_array("test.ints", [1, -2, 3])
    writer.add_array("test.floats", [0.5, -1.25])
    writer.add_array("test.bools", [True, False])
    for i, qtype in enumerate(TYPES):
        block = gguf.GGML_QUANT_SIZES[qtype][0]
        writer.add_tensor(f"t{i}.{qtype.name}", stored_bytes(rng, qtype, 3, 2 * block), raw_dtype=qtype)
    writer.add_tensor("f32.real", rng.standard_normal((2, 3, 5)).astype(np.float32))
    writer.add_tensor("f16.real", rng.standard_normal(7).astype(np.float16))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_small_file_is_read_as_gguf_reads_it(small_gguf):
    assert_same_as_reader(small_gguf)


def test_metadata_is_plain_python_and_arrays_are_compact(small_gguf):
    meta = open_gguf(small_gguf).metadata
    assert meta["test.u64"] == 2**63 + 5 and meta["test.i8"] == -100
    assert meta["test.f32"] == float(np.float32(0.1)) and meta["test.f64"] == 0.1
    assert meta["test.bool"] is True
    assert meta["test.str"] == "Grüße, 世界 \x00 \U0001f999"
    assert meta["test.strings"] == ["a", "", "ĠHello", "<0x0A>"]
    ints = meta["test.ints"]
    assert isinstance(ints, np.ndarray) and ints.dtype == np.int32 and ints.tolist() == [1, -2, 3]
    assert not ints.flags.writeable
    assert meta["test.bools"].tolist() == [True, False] and meta["test.floats"].tolist() == [0.5, -1.25]
    assert meta["general.architecture"] == "llama"
    assert open_gguf(small_gguf).architecture == "llama"


def test_rows_dequantize_only_what_is_asked_and_equal_the_whole(small_gguf):
    opened = open_gguf(small_gguf)
    for name, info in opened.tensors.items():
        if len(info.shape) < 2:
            continue
        whole = opened.read(name)
        rows = np.array([2, 0, 2]) if info.shape[0] == 3 else np.array([1, 0])
        np.testing.assert_array_equal(opened.read(name, rows), whole[rows], err_msg=name)
        assert opened.read(name, np.array([], np.int64)).shape == (0, *info.shape[1:])


def test_nested_arrays(tmp_path):
    path = tmp_path / "nested.gguf"
    item = struct.pack("<I", 5) + struct.pack("<Q", 2) + struct.pack("<ii", 7, -8)
    value = struct.pack("<I", 9) + struct.pack("<Q", 2) + item + struct.pack("<I", 5) + struct.pack("<Q", 0)
    path.write_bytes(header(n_kv=1) + kv("a.nested", 9, value))
    assert plain(open_gguf(path).metadata["a.nested"]) == [[7, -8], []]


# --- real files: SmolLM2-135M (llama, Q4_1) and Gemma 3 270M (gemma3, Q4_K_M) -----------------------------

@pytest.mark.slow  # GGUFReader takes 2 s on SmolLM2's vocabulary (10 s on Gemma's); every tensor twice, 10 s more
@pytest.mark.parametrize("model", REAL_GGUF)
def test_real_files_are_read_as_gguf_reads_them(model):
    assert_same_as_reader(need_real(model))


# config.json as transformers 4.57.6 derives it from each file (AutoConfig.from_pretrained(folder,
# gguf_file=...); recorded 2026-12-06), on the keys config() gives
REAL_CONFIGS = {
    "smollm2": {
        "model_type": "llama", "hidden_size": 576, "num_hidden_layers": 30, "num_attention_heads": 9,
        "num_key_value_heads": 3, "head_dim": 64, "intermediate_size": 1536, "rms_norm_eps": 9.999999747378752e-06,
        "rope_theta": 100000.0, "max_position_embeddings": 8192, "vocab_size": 49152, "tie_word_embeddings": True,
        "sliding_window": None,  # not a LlamaConfig key: Llama has no window
        "attention_bias": False, "bos_token_id": 1, "eos_token_id": 2, "unk_token_id": 0, "pad_token_id": 2,
    },
    "gemma3": {
        "model_type": "gemma3_text", "hidden_size": 640, "num_hidden_layers": 18, "num_attention_heads": 4,
        "num_key_value_heads": 1, "head_dim": 256, "intermediate_size": 2048, "rms_norm_eps": 9.999999974752427e-07,
        "rope_theta": 1000000.0, "max_position_embeddings": 32768, "vocab_size": 262144, "tie_word_embeddings": True,
        "sliding_window": 512, "attention_bias": False, "query_pre_attn_scalar": 256, "attn_logit_softcapping": None,
        "final_logit_softcapping": None, "rope_local_base_freq": 10000.0,
        "layer_types": (["sliding_attention"] * 5 + ["full_attention"]) * 3,
        "bos_token_id": 2, "eos_token_id": 1, "unk_token_id": 3, "pad_token_id": 0,
    },
}


@pytest.mark.parametrize("model", REAL_GGUF)
def test_real_configs_are_transformers(model):
    assert open_gguf(need_real(model)).config() == REAL_CONFIGS[model]


@pytest.mark.slow  # importing transformers, whose GGUFReader reads the vocabulary
@pytest.mark.parametrize("model", REAL_GGUF)
def test_real_configs_live_against_transformers(model):
    path = need_real(model)
    transformers = need_module("transformers")
    theirs = transformers.AutoConfig.from_pretrained(path.parent, gguf_file=path.name).to_dict()
    ours = open_gguf(path).config()
    for key in ("rope_scaling", "partial_rotary_factor", *ours):
        if key != "sliding_window" or model != "smollm2":
            assert ours.get(key) == theirs.get(key), key


def test_smollm2_tensors_under_hugging_face_names():
    path = need_real("smollm2")
    opened = open_gguf(path)
    source = opened.tensor_source()
    stored = {name: opened.read(name) for name in opened.tensors if name.startswith(("token_embd", "blk.0.", "blk.29.", "output_norm"))}  # gguf's values: see the test above
    assert len(source.names) == 272  # 30 layers x 9 tensors, the embedding table and the final norm
    assert "lm_head.weight" not in source.names  # tied
    assert source.shape("model.layers.0.self_attn.k_proj.weight") == (192, 576)
    # q and k un-permuted per head (9 query heads, 3 key/value heads) as transformers' loader does
    for name, heads, layer in (("attn_q", 9, 0), ("attn_k", 3, 0), ("attn_q", 9, 29)):
        hf = {"attn_q": "q_proj", "attn_k": "k_proj"}[name]
        out = np.empty(source.shape(f"model.layers.{layer}.self_attn.{hf}.weight"), np.float64)
        source.load(f"model.layers.{layer}.self_attn.{hf}.weight", out)
        np.testing.assert_array_equal(out, reverse_permute(stored[f"blk.{layer}.{name}.weight"], heads))
    for gguf_name, hf_name in (("blk.0.attn_v.weight", "model.layers.0.self_attn.v_proj.weight"),
                               ("blk.29.ffn_down.weight", "model.layers.29.mlp.down_proj.weight"),
                               ("blk.0.ffn_norm.weight", "model.layers.0.post_attention_layernorm.weight"),
                               ("output_norm.weight", "model.norm.weight")):
        out = np.empty(source.shape(hf_name), np.float32)
        source.load(hf_name, out)
        np.testing.assert_array_equal(out, stored[gguf_name])
    ids = np.array([[1, 49151], [0, 1]])
    np.testing.assert_array_equal(source.rows("model.embed_tokens.weight", ids), stored["token_embd.weight"][ids])


@pytest.mark.slow  # transformers loads and dequantizes the file: ~20 s and 1.2 GB each
@pytest.mark.parametrize("model", REAL_GGUF)
def test_real_tensors_equal_transformers_loader(model):
    path = need_real(model)
    torch = need_module("torch")
    transformers = need_module("transformers")
    loaded = transformers.AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, torch_dtype=torch.float32)
    state = {name: tensor.numpy() for name, tensor in loaded.state_dict().items()}
    del loaded
    source = open_gguf(path).tensor_source()
    assert source.names == set(state) - {"lm_head.weight"}  # tied: transformers' lm_head is the embedding table
    for name in sorted(source.names):
        out = np.empty(source.shape(name), np.float32)
        source.load(name, out)
        np.testing.assert_array_equal(out, state[name], err_msg=name)


def test_gemma3_norms_and_rows_of_the_real_file():
    opened = open_gguf(need_real("gemma3"))
    source = opened.tensor_source()
    for gguf_name, hf_name in (("blk.0.attn_norm.weight", "model.layers.0.input_layernorm.weight"),
                               ("blk.5.attn_k_norm.weight", "model.layers.5.self_attn.k_norm.weight"),
                               ("blk.17.post_ffw_norm.weight", "model.layers.17.post_feedforward_layernorm.weight"),
                               ("output_norm.weight", "model.norm.weight")):
        out = np.empty(source.shape(hf_name), np.float32)
        source.load(hf_name, out)
        np.testing.assert_array_equal(out, opened.read(gguf_name) - np.float32(1), err_msg=hf_name)
    q = np.empty((1024, 640), np.float32)
    source.load("model.layers.3.self_attn.q_proj.weight", q)
    np.testing.assert_array_equal(q, opened.read("blk.3.attn_q.weight"))  # Gemma is not permuted
    ids = np.array([2, 262143, 818])
    np.testing.assert_array_equal(source.rows("model.embed_tokens.weight", ids), opened.read("token_embd.weight", ids))


def reverse_permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """transformers' LlamaTensorProcessor._reverse_permute_weights (modeling_gguf_pytorch_utils.py), as written there."""
    dim = weights.shape[0] // n_head // 2
    w = weights.reshape(n_head, dim, 2, *weights.shape[1:])
    return w.swapaxes(2, 1).reshape(weights.shape)


# --- the Hugging Face view of small files made here -------------------------------------------------------

def write_model(path: Path, arch: str, tensors: dict[str, np.ndarray], heads: int = 2, kv_heads: int = 1, layers: int = 1, **keys) -> Path:
    """A tiny model file of ``arch``: the keys config() needs, any others, and float32 ``tensors``."""
    writer = gguf.GGUFWriter(str(path), arch)
    writer.add_block_count(layers)
    writer.add_context_length(64)
    writer.add_embedding_length(12)
    writer.add_feed_forward_length(8)
    writer.add_head_count(heads)
    writer.add_head_count_kv(kv_heads)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_vocab_size(4)
    for key, value in keys.items():
        if isinstance(value, list):
            writer.add_array(f"{arch}.{key}", value)
        elif isinstance(value, float):
            writer.add_float32(f"{arch}.{key}", value)
        elif isinstance(value, str):
            writer.add_string(f"{arch}.{key}", value)
        else:
            writer.add_uint32(f"{arch}.{key}", value)
    for name, array in tensors.items():
        writer.add_tensor(name, array)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def test_llama_q_and_k_rows_are_unpermuted_per_head(tmp_path):
    # head_dim 6: llama.cpp's converter stores head h's rows (rotate-half pairs i, i + 3) interleaved as
    # 0, 3, 1, 4, 2, 5; a file row holding the number of the Hugging Face row it came from shows the undoing
    file_order = np.array([0, 3, 1, 4, 2, 5])
    q_file = np.concatenate([file_order, 6 + file_order]).astype(np.float32)[:, None] * np.ones((1, 12), np.float32)
    k_file = file_order.astype(np.float32)[:, None] * np.ones((1, 12), np.float32)
    bias_file = np.concatenate([file_order, 6 + file_order]).astype(np.float32)
    path = write_model(tmp_path / "llama.gguf", "llama", {
        "blk.0.attn_q.weight": q_file, "blk.0.attn_k.weight": k_file, "blk.0.attn_q.bias": bias_file,
        "blk.0.attn_v.weight": k_file,
    }, **{"attention.key_length": 6})
    source = open_gguf(path).tensor_source()
    q = np.empty((12, 12), np.float32)
    source.load("model.layers.0.self_attn.q_proj.weight", q)
    np.testing.assert_array_equal(q[:, 0], np.arange(12))
    k = np.empty((6, 12), np.float64)
    source.load("model.layers.0.self_attn.k_proj.weight", k)
    np.testing.assert_array_equal(k[:, 0], np.arange(6))
    bias = np.empty(12, np.float32)
    source.load("model.layers.0.self_attn.q_proj.bias", bias)
    np.testing.assert_array_equal(bias, np.arange(12))
    v = np.empty((6, 12), np.float32)
    source.load("model.layers.0.self_attn.v_proj.weight", v)
    np.testing.assert_array_equal(v[:, 0], file_order)  # v is stored as it is
    np.testing.assert_array_equal(source.rows("model.layers.0.self_attn.q_proj.weight", np.array([7, 0])), q[[7, 0]])
    np.testing.assert_array_equal(q, reverse_permute(q_file, 2))  # transformers' own undoing, on the same rows


@pytest.mark.slow  # importing transformers
def test_transformers_reverse_permute_is_ours_when_installed(tmp_path):
    rng = np.random.default_rng(5)
    q_file = rng.standard_normal((8 * 3, 12)).astype(np.float32)
    k_file = rng.standard_normal((8, 12)).astype(np.float32)
    utils = need_module("transformers.modeling_gguf_pytorch_utils")
    processor = utils.LlamaTensorProcessor(config={"num_attention_heads": 3, "num_key_value_heads": 1})
    path = write_model(tmp_path / "llama.gguf", "llama", {"blk.0.attn_q.weight": q_file, "blk.0.attn_k.weight": k_file}, heads=3, kv_heads=1, **{"attention.key_length": 8})
    source = open_gguf(path).tensor_source()
    for gguf_name, hf_name in (("blk.0.attn_q.weight", "model.layers.0.self_attn.q_proj.weight"), ("blk.0.attn_k.weight", "model.layers.0.self_attn.k_proj.weight")):
        out = np.empty(source.shape(hf_name), np.float32)
        source.load(hf_name, out)
        np.testing.assert_array_equal(out, processor.process({"blk.0.attn_q.weight": q_file, "blk.0.attn_k.weight": k_file}[gguf_name], gguf_name).weights)


def test_gemma_norms_lose_the_one_llama_cpp_added(tmp_path):
    norm = np.array([1.5, 0.25, 1.0, 2.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 3.0], np.float32)
    q = np.arange(24 * 12, dtype=np.float32).reshape(24, 12)
    path = write_model(tmp_path / "gemma.gguf", "gemma3", {
        "blk.0.attn_norm.weight": norm, "blk.0.ffn_norm.weight": norm, "blk.0.post_ffw_norm.weight": norm,
        "blk.0.attn_q_norm.weight": norm[:6], "blk.0.attn_q.weight": q, "output_norm.weight": norm,
    }, heads=2, kv_heads=1, **{"attention.key_length": 12, "attention.sliding_window": 16})
    source = open_gguf(path).tensor_source()
    assert source.names == {
        "model.layers.0.input_layernorm.weight", "model.layers.0.pre_feedforward_layernorm.weight",
        "model.layers.0.post_feedforward_layernorm.weight", "model.layers.0.self_attn.q_norm.weight",
        "model.layers.0.self_attn.q_proj.weight", "model.norm.weight",
    }
    for name in ("model.layers.0.input_layernorm.weight", "model.layers.0.pre_feedforward_layernorm.weight", "model.norm.weight"):
        out = np.empty(12, np.float64)
        source.load(name, out)
        np.testing.assert_array_equal(out, norm - np.float32(1))  # in float32, as transformers subtracts
    out = np.empty((24, 12), np.float32)
    source.load("model.layers.0.self_attn.q_proj.weight", out)
    np.testing.assert_array_equal(out, q)  # Gemma is not permuted


def test_phi3_keeps_its_fused_projections(tmp_path):
    qkv, gate_up = np.ones((12 + 2 * 6, 12), np.float32), np.ones((16, 12), np.float32)
    path = write_model(tmp_path / "phi3.gguf", "phi3", {"blk.0.attn_qkv.weight": qkv, "blk.0.ffn_up.weight": gate_up, "blk.0.ffn_norm.weight": np.ones(12, np.float32)},
                       heads=2, kv_heads=1, **{"rope.dimension_count": 3})
    source = open_gguf(path).tensor_source()
    assert source.names == {"model.layers.0.self_attn.qkv_proj.weight", "model.layers.0.mlp.gate_up_proj.weight", "model.layers.0.post_attention_layernorm.weight"}
    assert source.shape("model.layers.0.mlp.gate_up_proj.weight") == (16, 12)
    config = open_gguf(path).config()
    assert config["model_type"] == "phi3" and config["head_dim"] == 6 and config["partial_rotary_factor"] == 0.5


def test_config_of_each_architecture(tmp_path):
    gemma2 = write_model(tmp_path / "g2.gguf", "gemma2", {}, heads=2, kv_heads=1, attn_logit_softcapping=50.0, final_logit_softcapping=30.0, **{"attention.key_length": 16, "attention.sliding_window": 8})
    config = open_gguf(gemma2).config()
    assert (config["model_type"], config["head_dim"], config["query_pre_attn_scalar"]) == ("gemma2", 16, 16)
    assert (config["attn_logit_softcapping"], config["final_logit_softcapping"], config["sliding_window"]) == (50.0, 30.0, 8)
    assert config["layer_types"] == ["sliding_attention"]
    gemma3 = write_model(tmp_path / "g3.gguf", "gemma3", {}, **{"attention.key_length": 16, "attention.sliding_window": 8, "rope.freq_base": 1e6, "rope.scaling.type": "linear", "rope.scaling.factor": 8.0})
    config = open_gguf(gemma3).config()
    assert (config["model_type"], config["rope_theta"], config["rope_local_base_freq"]) == ("gemma3_text", 1e6, 10000.0)
    assert config["rope_scaling"] == {"rope_type": "linear", "factor": 8.0}
    gemma3 = write_model(tmp_path / "g3.gguf", "gemma3", {}, layers=7, **{"attention.sliding_window": 8})
    assert open_gguf(gemma3).config()["layer_types"] == ["sliding_attention"] * 5 + ["full_attention", "sliding_attention"]
    gemma3 = write_model(tmp_path / "g3.gguf", "gemma3", {}, layers=3)  # no window: every layer global
    assert open_gguf(gemma3).config()["layer_types"] == ["full_attention"] * 3
    mistral = write_model(tmp_path / "m.gguf", "llama", {"output.weight": np.ones((4, 12), np.float32)}, **{"attention.sliding_window": 4096})
    config = open_gguf(mistral).config()
    assert (config["model_type"], config["sliding_window"], config["tie_word_embeddings"]) == ("mistral", 4096, False)
    assert config["head_dim"] == 6 and config["num_key_value_heads"] == 1
    qwen3 = write_model(tmp_path / "q3.gguf", "qwen3", {"blk.0.attn_q.bias": np.ones(24, np.float32)}, **{"attention.key_length": 12})
    config = open_gguf(qwen3).config()
    assert (config["model_type"], config["head_dim"], config["attention_bias"]) == ("qwen3", 12, True)
    qwen2 = write_model(tmp_path / "q2.gguf", "qwen2", {"blk.0.attn_q.bias": np.ones(12, np.float32), "blk.0.attn_rot_embd.weight": np.ones(4, np.float32)})
    config = open_gguf(qwen2).config()
    assert (config["model_type"], config["use_sliding_window"], config["sliding_window"], config["attention_bias"]) == ("qwen2", False, None, True)
    assert open_gguf(qwen2).tensor_source().names == {"model.layers.0.self_attn.q_proj.bias"}  # no page reads attn_rot_embd
    olmo2 = write_model(tmp_path / "o2.gguf", "olmo2", {})
    assert open_gguf(olmo2).config()["model_type"] == "olmo2"
    gpt2 = write_model(tmp_path / "gpt2.gguf", "gpt2", {})
    with pytest.raises(AttnvizError, match="holds a 'gpt2' model; attnviz runs llama, mistral, qwen2"):
        open_gguf(gpt2).config()


def test_sliding_window_patterns_and_longrope(tmp_path):
    gemma3 = write_model(tmp_path / "g3.gguf", "gemma3", {}, layers=3, **{"attention.sliding_window": 8, "attention.sliding_window_pattern": [True, False, True]})
    assert open_gguf(gemma3).config()["layer_types"] == ["sliding_attention", "full_attention", "sliding_attention"]
    gemma2 = write_model(tmp_path / "g2.gguf", "gemma2", {}, layers=4, **{"attention.sliding_window": 8, "attention.sliding_window_pattern": 4})
    assert open_gguf(gemma2).config()["layer_types"] == ["sliding_attention"] * 3 + ["full_attention"]
    wrong = write_model(tmp_path / "g.gguf", "gemma3", {}, layers=2, **{"attention.sliding_window": 8, "attention.sliding_window_pattern": [True]})
    with pytest.raises(AttnvizError, match=re.escape("gives gemma3.attention.sliding_window_pattern for 1 layers, where it has 2")):
        open_gguf(wrong).config()
    long, short = np.array([1.0, 2.5, 4.0], np.float32), np.array([1.0, 1.0, 1.5], np.float32)
    phi3 = write_model(tmp_path / "phi3.gguf", "phi3", {"rope_factors_long.weight": long, "rope_factors_short.weight": short},
                       **{"rope.dimension_count": 6, "rope.scaling.original_context_length": 4096})
    assert open_gguf(phi3).config()["rope_scaling"] == {"rope_type": "longrope", "long_factor": [1.0, 2.5, 4.0], "short_factor": [1.0, 1.0, 1.5], "original_max_position_embeddings": 4096}


@pytest.mark.parametrize(("keys", "message"), [
    ({"attention.head_count": [2, 2]}, "gives llama.attention.head_count a ndarray, where a whole number from 1 to 2147483648 belongs"),
    ({"attention.head_count": 0}, "gives llama.attention.head_count 0, where"),
    ({"block_count": 10**9}, "gives llama.block_count 1000000000, where a whole number from 1 to 65536 belongs"),
    ({"attention.layer_norm_rms_epsilon": -1.0}, "gives llama.attention.layer_norm_rms_epsilon -1.0, where a number from 0"),
    ({"rope.freq_base": "fast"}, "gives llama.rope.freq_base a str"),
    ({"vocab_size": 0}, "gives llama.vocab_size 0"),
])
def test_config_values_are_checked(tmp_path, keys, message):
    path = write_model(tmp_path / "bad.gguf", "llama", {}, **keys)
    with pytest.raises(AttnvizError, match=re.escape(message)):
        open_gguf(path).config()


def test_llama3_rope_freqs_are_kept(tmp_path):
    freqs = np.array([1.0, 2.0, 8.0], np.float32)
    path = write_model(tmp_path / "l3.gguf", "llama", {"rope_freqs.weight": freqs})
    source = open_gguf(path).tensor_source()
    out = np.empty(3, np.float32)
    source.load("rope_freqs", out)
    np.testing.assert_array_equal(out, freqs)


def test_bad_requests_of_a_source(tmp_path):
    path = write_model(tmp_path / "l.gguf", "llama", {"token_embd.weight": np.ones((5, 12), np.float32)})
    source = open_gguf(path).tensor_source()
    with pytest.raises(AttnvizError, match=r"has no tensor 'lm_head.weight'"):
        source.shape("lm_head.weight")
    with pytest.raises(AttnvizError, match=r"has shape \(5, 12\), where \(6, 12\) was expected"):
        source.load("model.embed_tokens.weight", np.empty((6, 12), np.float32))
    with pytest.raises(AttnvizError, match="has no row 5"):
        source.rows("model.embed_tokens.weight", np.array([0, 5]))


# --- hostile files --------------------------------------------------------------------------------------

def string(text: str | bytes) -> bytes:
    raw = text.encode() if isinstance(text, str) else text
    return struct.pack("<Q", len(raw)) + raw


def header(n_tensors: int = 0, n_kv: int = 0, version: int = 3, magic: bytes = b"GGUF") -> bytes:
    return magic + struct.pack("<IQQ", version, n_tensors, n_kv)


def kv(key: str, kind: int, payload: bytes) -> bytes:
    return string(key) + struct.pack("<I", kind) + payload


def tensor_info(name: str, dims: tuple[int, ...], ggml_type: int = 0, offset: int = 0) -> bytes:
    return string(name) + struct.pack("<I", len(dims)) + struct.pack(f"<{len(dims)}Q", *dims) + struct.pack("<IQ", ggml_type, offset)


INFOS_END = 198  # where valid_file's tensor infos end


def valid_file() -> bytes:
    """A well-formed file: two metadata entries, two f32 tensors of 4 values, aligned to 32."""
    head = header(2, 2) + kv("general.architecture", 8, string("llama")) + kv("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 2) + string("a") + string("b"))
    head += tensor_info("a", (4,)) + tensor_info("b", (4,), offset=32)
    assert len(head) == INFOS_END
    head += b"\0" * (-len(head) % 32)
    return head + np.arange(4, dtype=np.float32).tobytes() + b"\0" * 16 + np.ones(4, np.float32).tobytes()


def assert_refused(path: Path, message: str) -> None:
    """Opening ``path`` is a one-line AttnvizError naming the file and the problem (``message``, a regular
    expression), allocating < 50 MB."""
    tracemalloc.start()
    try:
        with pytest.raises(AttnvizError) as raised:
            open_gguf(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    text = str(raised.value)
    assert "\n" not in text and quoted(str(path)) in text and re.search(message, text), text
    assert peak < 50_000_000


def test_the_valid_file_is_read(tmp_path):
    path = tmp_path / "ok.gguf"
    path.write_bytes(valid_file())
    opened = open_gguf(path)
    assert opened.metadata["tokenizer.ggml.tokens"] == ["a", "b"]
    np.testing.assert_array_equal(opened.read("b"), np.ones(4, np.float32))
    with pytest.raises(AttnvizError, match=re.escape("lacks llama.embedding_length")):
        opened.config()


@pytest.mark.parametrize("cut", [0, 3, 10, 23, 30, 60, 100, 140, 170, 200, 250])
def test_truncated_files(tmp_path, cut):
    whole = valid_file()
    assert cut < len(whole)
    path = tmp_path / "cut.gguf"
    path.write_bytes(whole[:cut])
    assert_refused(path, "is too short" if cut < 24 else "is cut short|claims" if cut < INFOS_END else "past its end")


CASES = {  # name -> (the file's bytes, what the message says)
    "bad magic": (b"GGML" + valid_file()[4:], "is not a GGUF file"),
    "version 1": (header(version=1) + b"\0" * 8, "is GGUF version 1"),
    "big-endian": (header(version=3 << 24) + b"\0" * 8, "big-endian"),
    "huge tensor count": (header(2**40, 0) + b"\0" * 64, "claims 1099511627776 tensors, more than the 65536"),
    "huge metadata count": (header(0, 2**40) + b"\0" * 64, "claims 1099511627776 metadata entries, more than the 65536"),
    "more tensors than the file can describe": (header(1000, 0) + b"\0" * 64, "claims 1000 tensors, more than its 88 bytes can describe"),
    "more metadata than the file can hold": (header(0, 1000) + b"\0" * 64, "claims 1000 metadata entries, more than its 88 bytes can hold"),
    "one metadata entry too many": (header(0, 2) + kv("a", 4, struct.pack("<I", 1)) + b"\0" * 12, "cut short"),
    "one tensor too many": (header(2, 0) + tensor_info("a", (4,)) + b"\0" * 64, "dimensions"),
    "unknown value type": (header(0, 1) + kv("a", 13, b"\0" * 8), "value of unknown type 13"),
    "unknown array item type": (header(0, 1) + kv("a", 9, struct.pack("<IQ", 99, 1)) + b"\0" * 8, "value of unknown type 99"),
    "a vocabulary of 10^8": (header(0, 1) + kv("tokenizer.ggml.tokens", 9, struct.pack("<IQ", 8, 10**8)) + string("a") * 4, f"claims 100000000 items for metadata 'tokenizer.ggml.tokens', more than the {MAX_ITEMS}"),
    "an array longer than the file": (header(0, 1) + kv("a", 9, struct.pack("<IQ", 5, 1000)) + b"\0" * 64, "more than the rest of the file holds"),
    "a string of 2^40 bytes": (header(0, 1) + kv("a", 8, struct.pack("<Q", 2**40)) + b"x" * 64, f"claims 1099511627776 bytes for metadata 'a', more than the {MAX_STRING}"),
    "a string in an array of 2^40 bytes": (header(0, 1) + kv("a", 9, struct.pack("<IQ", 8, 2) + string("x") + struct.pack("<Q", 2**40)) + b"x" * 64, "item 1 of metadata 'a'"),
    "a key of 2^40 bytes": (header(0, 1) + struct.pack("<Q", 2**40) + b"x" * 64, "claims 1099511627776 bytes for a metadata key"),
    "a key that is not UTF-8": (header(0, 1) + string(b"\xff\xfe") + struct.pack("<IB", 0, 0), "not UTF-8"),
    "a token that is not UTF-8": (header(0, 1) + kv("t", 9, struct.pack("<IQ", 8, 2) + string("ok") + string(b"\xc3")), "item 1 of metadata 't' that is not UTF-8"),
    "a key twice": (header(0, 2) + kv("a", 0, b"\1") + kv("a", 0, b"\2"), "holds metadata 'a' twice"),
    "arrays nested too deep": (header(0, 1) + kv("a", 9, struct.pack("<IQ", 9, 1) * 4 + struct.pack("<IQ", 0, 0)), "deeper than"),
    "a bad alignment": (header(0, 1) + kv("general.alignment", 4, struct.pack("<I", 48)), "general.alignment 48"),
    "an unknown quantization type": (header(1, 0) + tensor_info("w", (32,), ggml_type=99) + b"\0" * 200, "ggml type 99 (an unknown type)"),
    "a type gguf cannot dequantize": (header(1, 0) + tensor_info("w", (32,), ggml_type=28) + b"\0" * 300, "ggml type 28 (F64), which attnviz cannot dequantize"),
    "a partial block": (header(1, 0) + tensor_info("w", (31,), ggml_type=2) + b"\0" * 200, "the first a multiple of 32"),
    "five dimensions": (header(1, 0) + tensor_info("w", (1, 1, 1, 1, 1)) + b"\0" * 200, "5 dimensions"),
    "a zero dimension": (header(1, 0) + tensor_info("w", (4, 0)) + b"\0" * 200, "each must be at least 1"),
    "dims of 2^60 values": (header(1, 0) + tensor_info("w", (2**60, 2**60)) + b"\0" * 200, "past its end"),
    "an offset past the end": (header(1, 0) + tensor_info("w", (4,), offset=2**40) + b"\0" * 200, "past its end"),
    "an unaligned offset": (header(1, 0) + tensor_info("w", (4,), offset=4) + b"\0" * 200, "not a multiple of its alignment 32"),
    "a tensor twice": (header(2, 0) + tensor_info("w", (4,)) + tensor_info("w", (4,)) + b"\0" * 200, "holds tensor 'w' twice"),
}


@pytest.mark.parametrize("case", CASES)
def test_hostile_files(tmp_path, case):
    data, message = CASES[case]
    path = tmp_path / "hostile.gguf"
    path.write_bytes(data)
    assert_refused(path, re.escape(message))


def test_not_regular_files(tmp_path):
    os.mkfifo(tmp_path / "fifo")
    assert_refused(tmp_path / "fifo", "is not a regular file")  # refused without opening: a FIFO would block
    assert_refused(Path("/dev/zero"), "is not a regular file")
    assert_refused(tmp_path, "is a directory")
    (tmp_path / "empty.gguf").write_bytes(b"")
    assert_refused(tmp_path / "empty.gguf", re.escape("too short to be a GGUF file (0 bytes)"))
    assert_refused(tmp_path / "missing.gguf", "cannot be read: No such file or directory")


def test_a_file_that_changed_since_it_was_opened(tmp_path):
    path = tmp_path / "ok.gguf"
    path.write_bytes(valid_file())
    opened = open_gguf(path)
    path.write_bytes(valid_file()[:100])
    with pytest.raises(AttnvizError, match="changed since it was opened"):
        opened.read("a")


def test_nan_weights_are_refused(tmp_path):
    path = write_model(tmp_path / "nan.gguf", "llama", {"blk.0.attn_v.weight": np.full((6, 12), np.nan, np.float32)})
    with pytest.raises(AttnvizError, match=re.escape("'model.layers.0.self_attn.v_proj.weight' holds NaN or infinite values")):
        open_gguf(path).tensor_source().load("model.layers.0.self_attn.v_proj.weight", np.empty((6, 12), np.float32))

"""Writes GGUF copies of every tiny decoder (tests/models/make_tiny_decoders.py) the way llama.cpp's
convert_hf_to_gguf.py does, and records transformers' attentions and hidden states for each copy, so
attnviz's GGUF reader is tested without torch and without llama.cpp.

    pip install torch "transformers>=4.57,<5" gguf accelerate
    python tests/models/make_tiny_decoders.py && python tests/models/make_tiny_gguf.py [llama ...]

Two copies each: tiny-<arch>.f32.gguf (every tensor F32) and tiny-<arch>.q8_0.gguf (2-D tensors Q8_0, norms,
biases and rope_freqs F32, as the converter's --outtype q8_0 writes them). What the converter does, done here
too: tensor names from gguf's TensorNameMap; Llama's q and k rows permuted per head for llama.cpp's
interleaved rotation (LlamaModel.permute; Mistral is written as a llama file too); Phi-3's fused qkv_proj and
gate_up_proj as attn_qkv and ffn_up, its rotary dimensions as rope.dimension_count; Gemma's norm weights
stored with the + 1 its RMSNorm adds; Llama 3's RoPE scaling as a `rope_freqs` tensor of divisors; Gemma 2's
soft-caps as metadata; no output tensor when embeddings are tied; the tokenizer as `tokenizer.ggml.*` ("gpt2"
byte-level BPE: tokens, token_type, merges, bos/eos ids, add_bos_token). The pre-tokenizer is named "gpt2"
(the converter would stop: it knows pre-tokenizers by a hash of real ones; ours is GPT-2's regex), and the
Gemma files get the same "gpt2" vocabulary (real Gemma files have a SentencePiece one, tokenizer.ggml.model
"llama").

What a GGUF file cannot say, so its model differs from the safetensors one and the record says so:
- qwen2: GGUF has no sliding window for qwen2 (llama.cpp runs every layer full), so the copy is tiny-qwen2
  with use_sliding_window off.
- gemma2, gemma3: no query_pre_attn_scalar (llama.cpp scales by head_dim ** -0.5, except for the 27B
  models), so the copies use head_dim; no layer types (llama.cpp: Gemma 2 alternates sliding and full,
  Gemma 3 has five sliding to one full, as the tiny models do) and no local RoPE base for Gemma 3
  (llama.cpp: 1e4, as tiny-gemma3 has).
- mistral: written as a llama file, which has no window: the copy is tiny-mistral without it (a Llama).
- phi3: the window is in the file and the record keeps it, as transformers runs Phi-3 (llama.cpp turns
  it off, "Phi SWA is currently disabled", llama.cpp#13676; attnviz runs the model as its config says).
- llama, qwen3, olmo2: nothing lost; Llama 3's scaling is in rope_freqs.

reference-<f32|q8_0>-gguf.npz: transformers 4.57 loads each file's tensors itself (from_pretrained(folder,
gguf_file=..., attn_implementation="eager"): dequantizing, undoing the permutation and the + 1), with the
config as llama.cpp reads the file passed explicitly (OLMo 2, which transformers 4.57 cannot read from GGUF:
the file's tensors dequantized by gguf and loaded into Olmo2ForCausalLM by hand), because transformers' own
reading of the metadata loses Llama 3's rope_freqs (it ignores the tensor) and takes Gemma's
query_pre_attn_scalar as 256. That config has the file's float32 rms_norm_eps and rope_theta, and for llama
the inverse frequencies theta ** (-2i / d) / rope_freqs from the file's float32 divisors (transformers' own,
from the config, differ by 2e-7 in the attentions). A NumPy reader of tiny-llama's files agrees with these
records to 2e-14 in float64. Ids: transformers' GGUF tokenizer for llama, mistral, qwen2 and qwen3 (checked
equal to tokenizer.json's); for the others tokenizer.json's (what llama.cpp's "gpt2" tokenizer gives), because
transformers builds a SentencePiece tokenizer from any Gemma or Phi-3 GGUF, which a "gpt2" vocabulary is not
(Phi-3's fails to load), and reads no OLMo 2 GGUF. Same keys as reference.npz, float64 made as there.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from make_tiny_decoders import DECODER_TEXTS, WITH_BOS, record_outputs  # noqa: E402

ARCHS = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "olmo2")
TRANSFORMERS_TOKENIZES = {"llama", "mistral", "qwen2", "qwen3"}  # the others: see the docstring
KINDS = ("f32", "q8_0")


def model_arch(arch: str):
    """llama.cpp's architecture for a transformers one: its converter writes Mistral as Llama."""
    import gguf

    return {"llama": gguf.MODEL_ARCH.LLAMA, "mistral": gguf.MODEL_ARCH.LLAMA, "qwen2": gguf.MODEL_ARCH.QWEN2,
            "qwen3": gguf.MODEL_ARCH.QWEN3, "gemma2": gguf.MODEL_ARCH.GEMMA2, "gemma3": gguf.MODEL_ARCH.GEMMA3,
            "phi3": gguf.MODEL_ARCH.PHI3, "olmo2": gguf.MODEL_ARCH.OLMO2}[arch]


def permute(w: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's LlamaModel.permute: each head's rows from rotate-half pairs (i, i + d/2) to adjacent pairs."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def llama3_rope_freqs(config: dict[str, Any]) -> np.ndarray:
    """The rope_freqs tensor LlamaModel.generate_extra_tensors writes: what each inverse frequency is divided by."""
    scaling = config["rope_scaling"]
    dim = config["head_dim"]
    freqs = 1.0 / (config["rope_theta"] ** (np.arange(0, dim, 2, dtype=np.float32) / dim))
    factor, low, high = scaling["factor"], scaling["low_freq_factor"], scaling["high_freq_factor"]
    old = scaling["original_max_position_embeddings"]
    factors = []
    for freq in freqs:
        wavelen = 2 * np.pi / float(freq)
        if wavelen < old / high:
            factors.append(1.0)
        elif wavelen > old / low:
            factors.append(factor)
        else:
            smooth = (old / wavelen - low) / (high - low)
            factors.append(1 / ((1 - smooth) / factor + smooth))
    return np.array(factors, dtype=np.float32)


def write_tokenizer(writer, folder: Path, config: dict[str, Any], add_bos: bool) -> None:
    """tokenizer.ggml.* as _set_vocab_gpt2 and gguf.SpecialVocab write them from tokenizer.json and config.json."""
    import gguf

    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    vocab = dict(tokenizer["model"]["vocab"])
    special = {t["content"] for t in tokenizer["added_tokens"] if t["special"]}
    vocab.update({t["content"]: t["id"] for t in tokenizer["added_tokens"]})
    by_id = {i: token for token, i in vocab.items()}
    tokens = [by_id[i] for i in range(config["vocab_size"])]
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("gpt2")
    writer.add_token_list(tokens)
    writer.add_token_types([gguf.TokenType.CONTROL if t in special else gguf.TokenType.NORMAL for t in tokens])
    merges = tokenizer["model"]["merges"]
    writer.add_token_merges([" ".join(m) if isinstance(m, list) else m for m in merges])
    writer.add_bos_token_id(config["bos_token_id"])
    writer.add_eos_token_id(config["eos_token_id"])
    writer.add_add_bos_token(add_bos)


def write_parameters(writer, arch: str, config: dict[str, Any], kind: str) -> None:
    """The hyperparameters TextModel.set_gguf_parameters writes and what each model's class adds (Phi3MiniModel
    writes its own set)."""
    import gguf

    writer.add_name(f"tiny-{arch}")
    if arch == "phi3":
        rope_dims = int(config["partial_rotary_factor"] * config["hidden_size"]) // config["num_attention_heads"]
        writer.add_context_length(config["max_position_embeddings"])
        writer.add_rope_scaling_orig_ctx_len(config["original_max_position_embeddings"])
        writer.add_embedding_length(config["hidden_size"])
        writer.add_feed_forward_length(config["intermediate_size"])
        writer.add_block_count(config["num_hidden_layers"])
        writer.add_head_count(config["num_attention_heads"])
        writer.add_head_count_kv(config["num_key_value_heads"])
        writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
        writer.add_rope_dimension_count(rope_dims)
        writer.add_rope_freq_base(config["rope_theta"])
        writer.add_sliding_window(config["sliding_window"])
        write_file_type(writer, kind)
        return
    writer.add_block_count(config["num_hidden_layers"])
    writer.add_context_length(config["max_position_embeddings"])
    writer.add_embedding_length(config["hidden_size"])
    writer.add_feed_forward_length(config["intermediate_size"])
    writer.add_head_count(config["num_attention_heads"])
    writer.add_head_count_kv(config["num_key_value_heads"])
    writer.add_rope_freq_base(config["rope_theta"])
    writer.add_layer_norm_rms_eps(config["rms_norm_eps"])
    if "head_dim" in config:
        writer.add_key_length(config["head_dim"])
        writer.add_value_length(config["head_dim"])
    if model_arch(arch) == gguf.MODEL_ARCH.LLAMA:
        writer.add_vocab_size(config["vocab_size"])
        writer.add_rope_dimension_count(config["head_dim"])
    if arch == "gemma2":
        writer.add_attn_logit_softcapping(config["attn_logit_softcapping"])
        writer.add_final_logit_softcapping(config["final_logit_softcapping"])
    if arch.startswith("gemma"):
        writer.add_sliding_window(config["sliding_window"])
    write_file_type(writer, kind)


def write_file_type(writer, kind: str) -> None:
    import gguf

    writer.add_file_type(gguf.LlamaFileType.ALL_F32 if kind == "f32" else gguf.LlamaFileType.MOSTLY_Q8_0)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)


def gguf_tensors(arch: str, folder: Path, config: dict[str, Any]) -> dict[str, np.ndarray]:
    """The checkpoint's tensors under llama.cpp's names, with the converter's fix-ups, float32."""
    import gguf
    from safetensors.numpy import load_file

    names = gguf.get_tensor_name_map(model_arch(arch), config["num_hidden_layers"])
    out: dict[str, np.ndarray] = {}
    for name, tensor in sorted(load_file(folder / "model.safetensors").items()):
        w = tensor.astype(np.float32)
        if model_arch(arch) == gguf.MODEL_ARCH.LLAMA and name.endswith("q_proj.weight"):
            w = permute(w, config["num_attention_heads"])
        if model_arch(arch) == gguf.MODEL_ARCH.LLAMA and name.endswith("k_proj.weight"):
            w = permute(w, config["num_key_value_heads"])
        if arch.startswith("gemma") and name.endswith("norm.weight"):
            w = w + np.float32(1)
        new = names.get_name(name, try_suffixes=(".weight", ".bias"))
        assert new is not None, name
        out[new] = w
    if (config.get("rope_scaling") or {}).get("rope_type") == "llama3":
        out[gguf.TENSOR_NAMES[gguf.MODEL_TENSOR.ROPE_FREQS] + ".weight"] = llama3_rope_freqs(config)
    return out


def write_gguf(arch: str, kind: str) -> Path:
    import gguf

    folder = HERE / f"tiny-{arch}"
    config = json.loads((folder / "config.json").read_text())
    path = folder / f"tiny-{arch}.{kind}.gguf"
    writer = gguf.GGUFWriter(path, gguf.MODEL_ARCH_NAMES[model_arch(arch)])
    write_parameters(writer, arch, config, kind)
    write_tokenizer(writer, folder, config, add_bos=arch in WITH_BOS)
    for name, w in gguf_tensors(arch, folder, config).items():
        if kind == "q8_0" and w.ndim == 2:  # norms and rope_freqs stay F32, as the converter keeps 1-D tensors
            writer.add_tensor(name, gguf.quants.quantize(w, gguf.GGMLQuantizationType.Q8_0), raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(name, w)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def file_inv_freq(path: Path) -> np.ndarray:
    """RoPE's inverse frequencies as llama.cpp makes them from a Llama 3 file: theta ** (-2i / d) divided by
    its float32 rope_freqs (transformers recomputes the divisors from the config in float64 instead, which
    differs by ~1e-8 relative: 2e-7 in the attentions)."""
    import gguf

    reader = gguf.GGUFReader(path)
    field = reader.fields
    theta = float(field["llama.rope.freq_base"].parts[-1][0])
    dim = int(field["llama.rope.dimension_count"].parts[-1][0])
    rope_freqs = next(t for t in reader.tensors if t.name == "rope_freqs.weight").data
    return 1.0 / theta ** (np.arange(0, dim, 2) / dim) / rope_freqs.astype(np.float64)


def config_as_read(arch: str, folder: Path):
    """The transformers config of what llama.cpp reads from the file (see the module's docstring)."""
    from transformers import AutoConfig, LlamaConfig

    config = AutoConfig.from_pretrained(folder)
    config.rms_norm_eps = float(np.float32(config.rms_norm_eps))  # GGUF keeps its floats as float32
    config.rope_theta = float(np.float32(config.rope_theta))
    if arch == "qwen2":
        config.use_sliding_window = False
        config.sliding_window = None
        config.layer_types = ["full_attention"] * config.num_hidden_layers
    if arch == "mistral":  # a llama file: no window
        kept = {k: v for k, v in config.to_dict().items() if k not in ("model_type", "architectures", "sliding_window")}
        config = LlamaConfig(**kept)
    if arch.startswith("gemma"):
        config.query_pre_attn_scalar = config.head_dim
    config._attn_implementation = "eager"
    return config


def state_dict_from_gguf(path: Path, arch: str, model) -> dict[str, Any]:
    """The model's parameters from a GGUF file of an architecture the converter writes without fix-ups."""
    import gguf
    import torch

    names = gguf.get_tensor_name_map(model_arch(arch), model.config.num_hidden_layers)
    tensors = {t.name: t for t in gguf.GGUFReader(path).tensors}
    state = {}
    for name, param in model.state_dict().items():
        t = tensors[names.get_name(name, try_suffixes=(".weight", ".bias"))]
        state[name] = torch.from_numpy(gguf.quants.dequantize(t.data, t.tensor_type).reshape(param.shape).copy())
    return state


def record_gguf(arch: str, kind: str) -> None:
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = HERE / f"tiny-{arch}"
    name = f"tiny-{arch}.{kind}.gguf"
    reference = Tokenizer.from_file(str(folder / "tokenizer.json"))
    ids = [reference.encode(text).ids for text in DECODER_TEXTS]
    if arch in TRANSFORMERS_TOKENIZES:
        tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=name)
        from_gguf = [tokenizer(text)["input_ids"] for text in DECODER_TEXTS]
        assert from_gguf == ids, (arch, from_gguf, ids)
    config = config_as_read(arch, folder)
    if arch == "olmo2":  # transformers 4.57 reads no OLMo 2 GGUF: the file's tensors, dequantized by gguf
        model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.float32).eval()
        model.load_state_dict(state_dict_from_gguf(folder / name, arch, model), strict=True)
    else:
        model = AutoModelForCausalLM.from_pretrained(folder, gguf_file=name, config=config,
                                                     torch_dtype=torch.float32).eval()
    record = record_outputs(model, ids, inv_freq=file_inv_freq(folder / name) if arch == "llama" else None)
    np.savez_compressed(folder / f"reference-{kind}-gguf.npz", **record)


if __name__ == "__main__":
    for arch in sys.argv[1:] or ARCHS:
        for kind in KINDS:
            print(f"wrote {write_gguf(arch, kind)}")
            record_gguf(arch, kind)

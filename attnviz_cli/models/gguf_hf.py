"""A GGUF file seen as a Hugging Face checkpoint: its config.json (:func:`hf_config`) and its tensors under
the ``*ForCausalLM`` names, in Hugging Face's layout (:class:`GGUFTensors`), with the fix-ups transformers'
GGUF loader makes (``modeling_gguf_pytorch_utils.py``): llama.cpp's converter permuted the rows of Llama's
and Mistral's q and k per head for its interleaved rotation (undone here), and added 1 to every Gemma norm
weight (taken off here). Qwen, Phi-3 and OLMo 2 are stored as they are; Phi-3 keeps its fused ``qkv_proj``
and ``gate_up_proj``. Llama 3's RoPE scaling is a tensor, kept as ``"rope_freqs"`` (divide the rotary
frequencies by it); Phi-3's LongRoPE factors become config's ``rope_scaling``.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np

from ..errors import AttnvizError, quoted

if TYPE_CHECKING:
    from .gguf_file import GGUFFile, TensorInfo

# general.architecture -> config.json's model_type ("llama" may be Mistral: see hf_config)
MODEL_TYPES = {
    "llama": "llama", "mistral": "mistral", "qwen2": "qwen2", "qwen3": "qwen3", "gemma2": "gemma2",
    "gemma3": "gemma3_text", "phi3": "phi3", "olmo2": "olmo2",
}
PERMUTED = ("llama", "mistral")  # q and k rows permuted by llama.cpp's converter
GEMMA = ("gemma2", "gemma3")  # norm weights stored plus 1
GLOBAL_NAMES = {
    "token_embd.weight": "model.embed_tokens.weight",
    "output_norm.weight": "model.norm.weight",
    "output.weight": "lm_head.weight",
    "rope_freqs.weight": "rope_freqs",  # Llama 3's per-frequency divisors of inv_freq
}
LAYER_NAMES = {  # blk.{i}.<GGUF> -> model.layers.{i}.<Hugging Face>, for every architecture here
    "attn_norm": "input_layernorm",
    "attn_q": "self_attn.q_proj", "attn_k": "self_attn.k_proj", "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj", "attn_qkv": "self_attn.qkv_proj",
    "attn_q_norm": "self_attn.q_norm", "attn_k_norm": "self_attn.k_norm",
    "ffn_norm": "post_attention_layernorm",
    "post_attention_norm": "post_attention_layernorm", "post_ffw_norm": "post_feedforward_layernorm",
    "ffn_gate": "mlp.gate_proj", "ffn_up": "mlp.up_proj", "ffn_down": "mlp.down_proj",
}
LAYER_NAMES_OF = {  # where an architecture names a GGUF tensor otherwise
    "gemma2": {"ffn_norm": "pre_feedforward_layernorm"},
    "gemma3": {"ffn_norm": "pre_feedforward_layernorm"},
    "phi3": {"ffn_up": "mlp.gate_up_proj"},  # gate and up, fused, as Phi-3's checkpoints hold them
}
LAYER = re.compile(r"blk\.(\d+)\.(\w+)\.(weight|bias)")
MAX_SIZE = 1 << 31  # a size, a count or a token id in a config (Llama 4: 10M positions)
MAX_LAYERS = 1 << 16  # Llama 3.1 405B has 126
MAX_ROTARY = 1 << 16  # LongRoPE factors: one per rotary frequency (Phi-3: 48)


def supported(gguf: GGUFFile) -> str:
    """The file's architecture, which must be one attnviz runs."""
    arch = gguf.architecture
    if arch not in MODEL_TYPES:
        raise AttnvizError(f"GGUF file {quoted(str(gguf.path))} holds a {quoted(arch)} model; attnviz runs {', '.join(MODEL_TYPES)}")
    return arch


def hf_config(gguf: GGUFFile) -> dict[str, Any]:
    """What the model's config.json would say, in Hugging Face's names, from the file's metadata: the
    sizes, norms' epsilon, RoPE (theta, scaling, partial rotary), sliding windows, Gemma's scales and
    soft-caps, and the special token ids. Keys the file does not give and no default fills are left out;
    values are plain Python (no NumPy)."""
    arch = supported(gguf)
    meta = gguf.metadata

    def size(key: str, default: int | None = None, least: int = 1, most: int = MAX_SIZE) -> int:
        return int(_number(gguf, f"{arch}.{key}", default, least, most, whole=True))

    def real(key: str, default: float | None = None) -> float:
        return float(_number(gguf, f"{arch}.{key}", default, 0, float("inf"), whole=False))

    hidden, heads = size("embedding_length"), size("attention.head_count")
    head_dim = size("attention.key_length", hidden // heads)
    window = size("attention.sliding_window", 0, least=0) or None  # 0: none (Phi-4 writes 0)
    model_type = "mistral" if arch == "llama" and window else MODEL_TYPES[arch]
    config: dict[str, Any] = {
        "model_type": model_type,
        "hidden_size": hidden,
        "num_hidden_layers": size("block_count", most=MAX_LAYERS),
        "num_attention_heads": heads,
        "num_key_value_heads": size("attention.head_count_kv", heads),
        "head_dim": head_dim,
        "intermediate_size": size("feed_forward_length"),
        "rms_norm_eps": real("attention.layer_norm_rms_epsilon"),
        "rope_theta": real("rope.freq_base", 10000.0),
        "max_position_embeddings": size("context_length"),
        "vocab_size": size("vocab_size", _vocab_size(gguf)),
        "tie_word_embeddings": "output.weight" not in gguf.tensors,
        "sliding_window": window,
        "attention_bias": "blk.0.attn_q.bias" in gguf.tensors or "blk.0.attn_qkv.bias" in gguf.tensors,
    }
    rotary = size("rope.dimension_count", head_dim)
    if rotary != head_dim:
        config["partial_rotary_factor"] = rotary / head_dim
    scaling = _rope_scaling(gguf, arch)
    if scaling:
        config["rope_scaling"] = scaling
    if arch == "qwen2":
        config["use_sliding_window"] = window is not None
        config["max_window_layers"] = 0  # llama.cpp keeps no per-layer window: every layer, if any
    if arch in GEMMA:
        config.update(_gemma(gguf, arch, config))
    for key, name in (("bos_token_id", "bos"), ("eos_token_id", "eos"), ("unk_token_id", "unknown"), ("pad_token_id", "padding")):
        if f"tokenizer.ggml.{name}_token_id" in meta:
            config[key] = int(_number(gguf, f"tokenizer.ggml.{name}_token_id", None, 0, MAX_SIZE, whole=True))
    return config


def _number(gguf: GGUFFile, key: str, default: float | None, least: float, most: float, whole: bool) -> float:
    """Metadata ``key``, a number from ``least`` to ``most`` (a whole one if ``whole``); ``default``
    where the file does not give it (None: it must)."""
    value = gguf.metadata.get(key, default)
    if value is None:
        raise AttnvizError(f"GGUF file {quoted(str(gguf.path))} lacks {key}")
    if isinstance(value, bool) or not isinstance(value, int | float) or not least <= value <= most or (whole and value != int(value)):
        shown = repr(value) if isinstance(value, int | float) else f"a {type(value).__name__}"
        raise AttnvizError(f"GGUF file {quoted(str(gguf.path))} gives {key} {shown}, where a {'whole ' if whole else ''}number from {least} to {most} belongs")
    return value


def _vocab_size(gguf: GGUFFile) -> int | None:
    """The vocabulary's size where the file gives no {arch}.vocab_size: its tokens, else its table's rows."""
    tokens = gguf.metadata.get("tokenizer.ggml.tokens")
    if isinstance(tokens, list):
        return len(tokens)
    table = gguf.tensors.get("token_embd.weight")
    return None if table is None else table.shape[0]


def _optional(gguf: GGUFFile, key: str, whole: bool = False) -> float | None:
    """Metadata ``key``, a number from 0 (a whole one if ``whole``), or None where the file does not give it."""
    return None if key not in gguf.metadata else _number(gguf, key, None, 0, MAX_SIZE if whole else float("inf"), whole)


def _rope_scaling(gguf: GGUFFile, arch: str) -> dict[str, Any] | None:
    """config.json's rope_scaling from rope.scaling.* (linear, yarn) or Phi-3's LongRoPE factor tensors.
    Llama 3's scaling is not a key but the ``rope_freqs`` tensor (see :class:`GGUFTensors`)."""
    kind = gguf.metadata.get(f"{arch}.rope.scaling.type")
    kind = kind if isinstance(kind, str) else None
    factor = _optional(gguf, f"{arch}.rope.scaling.factor")
    original = _optional(gguf, f"{arch}.rope.scaling.original_context_length", whole=True)
    if "rope_factors_long.weight" in gguf.tensors and "rope_factors_short.weight" in gguf.tensors:
        scaling: dict[str, Any] = {"rope_type": "longrope"}
        for key, name in (("long_factor", "rope_factors_long.weight"), ("short_factor", "rope_factors_short.weight")):
            shape = gguf.tensors[name].shape
            if len(shape) != 1 or shape[0] > MAX_ROTARY:
                raise AttnvizError(f"GGUF file {quoted(str(gguf.path))} has {name!r} of shape {shape}, not a list of at most {MAX_ROTARY} factors")
            scaling[key] = gguf.read(name).tolist()
    elif kind in ("linear", "yarn") and factor is not None:
        scaling = {"rope_type": kind, "factor": factor}
    else:
        return None
    if original is not None:
        scaling["original_max_position_embeddings"] = int(original)
    return scaling


def _gemma(gguf: GGUFFile, arch: str, config: dict[str, Any]) -> dict[str, Any]:
    """Gemma 2's and 3's own keys. llama.cpp stores no query_pre_attn_scalar: like llama.cpp, it is
    head_dim, except in the 27B models (46 layers for Gemma 2, 62 for Gemma 3), hidden_size / heads."""
    layers = config["num_hidden_layers"]
    big = layers == (46 if arch == "gemma2" else 62)
    extra: dict[str, Any] = {
        "query_pre_attn_scalar": config["hidden_size"] // config["num_attention_heads"] if big else config["head_dim"],
        "attn_logit_softcapping": _optional(gguf, f"{arch}.attn_logit_softcapping"),
        "final_logit_softcapping": _optional(gguf, f"{arch}.final_logit_softcapping"),
    }
    if arch == "gemma3":
        extra["rope_local_base_freq"] = float(_number(gguf, "gemma3.rope.freq_base_swa", 10000.0, 0, float("inf"), whole=False))
    # which layers slide: Gemma 2 every other one, sliding first; Gemma 3 five in six (llama.cpp's
    # defaults), unless the file gives sliding_window_pattern (a flag per layer, or a period)
    key = f"{arch}.attention.sliding_window_pattern"
    flags = gguf.metadata.get(key)
    if config["sliding_window"] is None:
        slides = [False] * layers
    elif isinstance(flags, np.ndarray) and flags.dtype == np.bool_:
        slides = flags.tolist()
        if len(slides) != layers:
            raise AttnvizError(f"GGUF file {quoted(str(gguf.path))} gives {key} for {len(slides)} layers, where it has {layers}")
    else:
        period = int(_number(gguf, key, 2 if arch == "gemma2" else 6, 1, MAX_LAYERS, whole=True))
        slides = [(i + 1) % period != 0 for i in range(layers)]
    extra["layer_types"] = ["sliding_attention" if s else "full_attention" for s in slides]
    return extra


class Stored(NamedTuple):
    """Where a Hugging Face tensor comes from in the file, and what is done to it on the way."""

    info: TensorInfo
    rows: np.ndarray | None  # Hugging Face row i is the file's row rows[i] (llama.cpp's q/k permutation undone)
    shift: float  # added to every value (Gemma's norms: -1)


class GGUFTensors:
    """A GGUF file's tensors as a checkpoint reads them: Hugging Face names ("model.layers.0.self_attn.
    q_proj.weight", shape (out, in)), each dequantized to float32 by gguf from the memory-mapped file,
    one tensor (or a block of its rows) at a time, then fixed up as transformers' loader does."""

    def __init__(self, gguf: GGUFFile) -> None:
        arch = supported(gguf)
        self.path: Path = gguf.path
        self._gguf = gguf
        config = hf_config(gguf) if arch in PERMUTED else {}
        renamed = {**LAYER_NAMES, **LAYER_NAMES_OF.get(arch, {})}
        self._stored: dict[str, Stored] = {}
        for name, info in gguf.tensors.items():
            layer = LAYER.fullmatch(name)
            if name in GLOBAL_NAMES:
                hf_name = GLOBAL_NAMES[name]
            elif layer and layer[2] in renamed:
                hf_name = f"model.layers.{layer[1]}.{renamed[layer[2]]}.{layer[3]}"
            else:
                continue  # a tensor no page reads (llama.cpp's attn_rot_embd, a vision tower's)
            rows = None
            if config and layer and layer[2] in ("attn_q", "attn_k"):
                heads = config["num_attention_heads" if layer[2] == "attn_q" else "num_key_value_heads"]
                rows = self._unpermuted(info, heads)
            shift = -1.0 if arch in GEMMA and name.endswith("norm.weight") else 0.0
            self._stored[hf_name] = Stored(info, rows, shift)
        self.names: set[str] = set(self._stored)

    def _unpermuted(self, info: TensorInfo, heads: int) -> np.ndarray:
        """Which file row each Hugging Face row of a llama q or k (weight or bias) is: llama.cpp stored
        head h's rows as (d_head/2, 2) pairs interleaved; Hugging Face has (2, d_head/2) halves."""
        rows = info.shape[0]
        if heads < 1 or rows % (2 * heads):
            raise AttnvizError(f"GGUF file {quoted(str(self.path))}: {info.name!r} has {rows} rows, not a whole number of heads for {heads} heads")
        return np.arange(rows).reshape(heads, rows // heads // 2, 2).swapaxes(1, 2).reshape(rows)

    def _get(self, name: str) -> Stored:
        if name not in self._stored:
            raise AttnvizError(f"GGUF file {quoted(str(self.path))} has no tensor {name!r}")
        return self._stored[name]

    def shape(self, name: str) -> tuple[int, ...]:
        """Tensor ``name``'s shape in Hugging Face's layout (the file's NumPy shape: (out, in) for a Linear)."""
        return self._get(name).info.shape

    def load(self, name: str, out: np.ndarray) -> None:
        """Tensor ``name``'s values, fixed up, into ``out`` (its shape; float32 or float64), a block of
        rows at a time. Fix-ups happen in float32, as transformers makes them, before the cast."""
        from .gguf_file import CHUNK_BYTES

        stored = self._get(name)
        info = stored.info
        if out.shape != info.shape:
            raise AttnvizError(f"GGUF file {quoted(str(self.path))}: {name!r} has shape {info.shape}, where {out.shape} was expected")
        if len(info.shape) == 1:
            out[...] = self._fixed(stored, self._gguf.read(info.name), name)
            return
        rows = stored.rows if stored.rows is not None else np.arange(info.shape[0])
        step = max(1, CHUNK_BYTES // ((info.end - info.begin) // info.shape[0]))
        for start in range(0, info.shape[0], step):
            out[start:start + step] = self._fixed(stored, self._gguf.read(info.name, rows[start:start + step]), name)

    def rows(self, name: str, ids: np.ndarray) -> np.ndarray:
        """Rows ``ids`` (integers of any shape) of 2-D tensor ``name``, fixed up, float32:
        (*ids.shape, d). Only those rows' blocks are dequantized (an embedding table's few rows)."""
        stored = self._get(name)
        info = stored.info
        if len(info.shape) != 2:
            raise AttnvizError(f"GGUF file {quoted(str(self.path))}: {name!r} of shape {info.shape} is not a table of rows")
        ids = np.asarray(ids)
        if ids.size and (ids.min() < 0 or ids.max() >= info.shape[0]):
            raise AttnvizError(f"GGUF file {quoted(str(self.path))}: {name!r} of shape {info.shape} has no row {int(ids.max() if ids.max() >= info.shape[0] else ids.min())}")
        flat = ids.reshape(-1)
        values = self._gguf.read(info.name, flat if stored.rows is None else stored.rows[flat])
        return self._fixed(stored, values, name).reshape(*ids.shape, info.shape[1])

    def _fixed(self, stored: Stored, values: np.ndarray, name: str) -> np.ndarray:
        """Dequantized float32 ``values`` with the tensor's fix-ups (1-D: its row order too), checked finite."""
        if values.ndim == 1 and stored.rows is not None:
            values = values[stored.rows]
        if stored.shift:
            values = values + np.float32(stored.shift)
        if not np.isfinite(values).all():
            raise AttnvizError(f"GGUF file {quoted(str(self.path))}: {name!r} holds NaN or infinite values")
        return values

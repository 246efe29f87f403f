"""Llama and the decoders built like it: Mistral, Qwen2 (Qwen2.5) and Qwen3; so also SmolLM2, TinyLlama,
Llama 2 and Llama 3.x. Token embeddings, then pre-norm blocks of grouped-query causal self-attention with
rotary positions and a SwiGLU feed-forward block, RMSNorm throughout, then a last norm.

What the others change, all read from config.json:
- Mistral: each layer sees only the latest ``sliding_window`` keys.
- Qwen2: biases on the query, key and value maps; a sliding window on layers from ``max_window_layers``
  on, if ``use_sliding_window``.
- Qwen3: each head's queries and keys RMS-normed (``q_norm``, ``k_norm``) before they are turned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .architecture import Architecture, Linear, Params, RMSNorm
from .layers import Attended, KeyValues, gated_ffn, heads_of, linear, rms_norm, rotated_attention, silu
from .rope import Rope, rope_of
from .weights import Checkpoint

if TYPE_CHECKING:
    from .model import ModelConfig


def llama_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """config.json's names -> ModelConfig's fields; what the blocks need besides in ``settings``."""
    heads, d = int(raw["num_attention_heads"]), int(raw["hidden_size"])
    d_head = d // heads if raw.get("head_dim") is None else int(raw["head_dim"])
    layers = int(raw["num_hidden_layers"])
    types = layer_types(raw, layers)
    return {
        "layers": layers, "heads": heads, "kv_heads": heads if raw.get("num_key_value_heads") is None else int(raw["num_key_value_heads"]), "d_model": d,
        "d_head": d_head, "max_positions": int(raw["max_position_embeddings"]), "eps": epsilon(raw["rms_norm_eps"]),
        "settings": {
            "ff": int(raw["intermediate_size"]),
            "bias": raw.get("model_type") == "qwen2" or bool(raw.get("attention_bias", False)),  # Qwen2's q, k, v always have one
            "out_bias": raw.get("model_type") != "qwen2" and bool(raw.get("attention_bias", False)),
            "mlp_bias": bool(raw.get("mlp_bias", False)),
            "qk_norm": raw.get("model_type") == "qwen3",
            "ropes": [rope_of(raw, d_head, t) for t in types],
            "windows": [windows(raw, t) for t in types],
        },
    }


LAYER_TYPES = ("full_attention", "sliding_attention")


def epsilon(value: Any) -> float:
    """A norm's epsilon: a finite number, 0 or more."""
    eps = float(value)
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"a norm epsilon of {value!r}")
    return eps


def layer_types(raw: Mapping[str, Any], layers: int) -> list[str]:
    """Each layer's kind, "full_attention" or "sliding_attention": config.json's ``layer_types`` where
    it gives them (transformers writes them since 4.53), else as each model's config class makes them."""
    given = raw.get("layer_types")
    if given is not None:
        if not isinstance(given, list) or len(given) != layers:
            raise ValueError(f"layer_types for {len(given) if isinstance(given, list) else 'no'} layers, where there are {layers}")
        unknown = sorted({str(t) for t in given} - set(LAYER_TYPES))
        if unknown:
            raise ValueError(f"layer type {unknown[0]!r} (known: {', '.join(LAYER_TYPES)})")
        return [str(t) for t in given]
    if raw.get("sliding_window") is None or raw.get("model_type") not in ("mistral", "phi3", "qwen2", "qwen3"):
        return ["full_attention"] * layers  # Llama and OLMo 2 have no window, whatever the config holds
    if raw.get("model_type") in ("qwen2", "qwen3"):
        if not raw.get("use_sliding_window", False):
            return ["full_attention"] * layers
        first = int(raw.get("max_window_layers", layers))
        return ["sliding_attention" if i >= first else "full_attention" for i in range(layers)]
    return ["sliding_attention"] * layers  # Mistral, Phi-3: every layer


def windows(raw: Mapping[str, Any], layer_type: str) -> int | None:
    """The keys a layer of ``layer_type`` sees at most (its sliding window), or None for all before it."""
    if layer_type == "sliding_attention" and raw.get("sliding_window") is not None:
        if raw.get("model_type") in ("qwen2", "qwen3") and not raw.get("use_sliding_window", True):
            return None
        window = int(raw["sliding_window"])
        if window < 1:
            raise ValueError(f"a sliding window of {window} keys")
        return window
    return None


def llama_params(ckpt: Checkpoint, config: ModelConfig) -> Params:
    """Hugging Face's names -> the parameters of :func:`llama_embed`, :func:`llama_block` and
    :func:`llama_final`. The query, key and value maps are read side by side, and so are the gate and
    up maps of the feed-forward block."""
    d, h, kv, d_k, eps = config.d_model, config.heads, config.kv_heads, config.d_head, config.eps
    s = config.settings
    ropes = with_divisors(s["ropes"], ckpt.outside("rope_freqs", d_k // 2))

    def block(i: int) -> Params:
        p = f"layers.{i}."
        attn = [p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj"]
        params: Params = {
            "attn_norm": ckpt.rms_norm(p + "input_layernorm", d, eps),
            "qkv": ckpt.linears(attn, d, [h * d_k, kv * d_k, kv * d_k], bias=s["bias"]),
            "attn_out": ckpt.linear(p + "self_attn.o_proj", h * d_k, d, bias=s["out_bias"]),
            "mlp_norm": ckpt.rms_norm(p + "post_attention_layernorm", d, eps),
            "gate_up": ckpt.linears([p + "mlp.gate_proj", p + "mlp.up_proj"], d, s["ff"], bias=s["mlp_bias"]),
            "down": ckpt.linear(p + "mlp.down_proj", s["ff"], d, bias=s["mlp_bias"]),
            "rope": ropes[i], "window": s["windows"][i], "n_kv_head": kv,
        }
        if s["qk_norm"]:
            params |= {"q_norm": ckpt.rms_norm(p + "self_attn.q_norm", d_k, eps), "k_norm": ckpt.rms_norm(p + "self_attn.k_norm", d_k, eps)}
        return params

    return {
        "wte": ckpt.table("embed_tokens.weight", "vocab", d),
        "blocks": ckpt.blocks(block, config.layers),
        "norm": ckpt.rms_norm("norm", d, eps),
    }


def with_divisors(ropes: list[Rope], divisors: np.ndarray | None) -> list[Rope]:
    """Each layer's rotation with its frequencies divided by ``divisors`` (r/2,): Llama 3's scaling as a
    GGUF file holds it, the ``rope_freqs`` tensor llama.cpp's converter computes from the config."""
    if divisors is None:
        return ropes
    return [Rope(rope.inv_freq / divisors.astype(np.float64)) for rope in ropes]


def llama_embed(ids: np.ndarray, params: Params, start: int = 0) -> np.ndarray:
    """Token ``ids`` (T,), or a batch of texts of one length (B, T), -> their embeddings (T, d): positions
    (from ``start``) enter later, as the rotation of each layer's queries and keys."""
    return params["wte"][ids]


def llama_block(
    x: np.ndarray, attn_norm: RMSNorm, qkv: Linear, attn_out: Linear, mlp_norm: RMSNorm, gate_up: Linear, down: Linear,
    rope: Rope, window: int | None, n_kv_head: int, n_head: int, q_norm: RMSNorm | None = None, k_norm: RMSNorm | None = None,
    cache: KeyValues | None = None,
) -> tuple[np.ndarray, Attended]:
    """One block of x (T, d): norm, attention, add; norm, SwiGLU feed-forward, add. ``cache``: the keys
    and values of the tokens before x, which the block adds its own to (decoding a token at a time)."""
    attended, heads = llama_attention(rms_norm(x, **attn_norm), qkv, rope, window, n_head, n_kv_head, q_norm, k_norm, cache)
    x = x + linear(heads, **attn_out)  # (T, d)
    x = x + gated_ffn(rms_norm(x, **mlp_norm), gate_up, down, silu)  # (T, d): (T, 2 d_ff) in the middle
    return x, attended


def llama_attention(
    x: np.ndarray, qkv: Linear, rope: Rope, window: int | None, n_head: int, n_kv_head: int,
    q_norm: RMSNorm | None = None, k_norm: RMSNorm | None = None, cache: KeyValues | None = None,
) -> tuple[Attended, np.ndarray]:
    """Causal grouped-query attention of x (T, d), normed already: queries and keys turned by their
    positions, each query seeing the keys up to itself (the latest ``window`` of them, if given), and
    those ``cache`` holds."""
    q, k, v = heads_of(linear(x, **qkv), n_head, n_kv_head)  # (h, T, d_k), (h_kv, T, d_k), (h_kv, T, d_k)
    if q_norm is not None and k_norm is not None:  # Qwen3: each head's queries and keys normed
        q, k = rms_norm(q, **q_norm), rms_norm(k, **k_norm)
    return rotated_attention(q, k, v, rope, window, cache=cache)


def llama_attend(x: np.ndarray, block: Params, n_head: int) -> Attended:
    """The attention of :func:`llama_block` alone."""
    return llama_attention(
        rms_norm(x, **block["attn_norm"]), block["qkv"], block["rope"], block["window"], n_head, block["n_kv_head"],
        block.get("q_norm"), block.get("k_norm"),
    )[0]


def llama_final(x: np.ndarray, params: Params) -> np.ndarray:
    """The last block's output (T, d), normed: Hugging Face's last hidden state."""
    return rms_norm(x, **params["norm"])


LLAMA = Architecture(
    model_types=("llama",), config=llama_config, prefix="model.", marker="embed_tokens.weight",
    params=llama_params, embed=llama_embed, layer=llama_block, attend=llama_attend, final=llama_final, causal=True,
)
MISTRAL = replace(LLAMA, model_types=("mistral",))
QWEN2 = replace(LLAMA, model_types=("qwen2",))
QWEN3 = replace(LLAMA, model_types=("qwen3",))

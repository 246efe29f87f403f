"""Gemma 2 and Gemma 3 (text models such as gemma-3-270m): Llama's decoder with Google's changes.

- Embeddings scaled by √d_model (rounded to the run's dtype, as transformers rounds it to the weights'; for
  Gemma 3 first to float32, the dtype of the buffer transformers keeps it in).
- RMSNorm as x̂ · (1 + w): the checkpoint stores w, and 1 is added once, at load.
- Four norms per block: before and after the attention, before and after the feed-forward block.
- The feed-forward block gated by GELU (tanh approximation): GeGLU.
- Scores scaled by ``query_pre_attn_scalar``^-½, not d_k^-½; Gemma 2 soft-caps them (cap · tanh(s / cap),
  before the mask).
- Sliding-window (local) and full (global) layers by the config's layer types: Gemma 2 alternates them,
  local first; Gemma 3 has five local layers to one global, and a RoPE base of its own for each kind.
- Gemma 3 RMS-norms each head's queries and keys before they are turned.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .architecture import Architecture, Linear, Params, RMSNorm
from .layers import Attended, KeyValues, gated_ffn, gelu_tanh, heads_of, linear, rms_norm, rotated_attention
from .llama import llama_config, llama_final  # its last norm is Llama's (its weights already 1 + w)
from .rope import Rope, positive
from .weights import Checkpoint

if TYPE_CHECKING:
    from .model import ModelConfig


def gemma_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """Llama's reading of config.json, with Gemma's layer kinds, scale and soft-cap."""
    layers = int(raw["num_hidden_layers"])
    if raw.get("layer_types") is None:  # as Gemma2Config and Gemma3TextConfig make them
        every = 2 if raw["model_type"] == "gemma2" else int(raw.get("sliding_window_pattern", 6))
        raw = {**raw, "layer_types": ["sliding_attention" if (i + 1) % every else "full_attention" for i in range(layers)]}
    config = llama_config(raw)
    cap = raw.get("attn_logit_softcapping")
    scalar = raw.get("query_pre_attn_scalar", 256)  # Gemma2Config's and Gemma3TextConfig's default
    return config | {"settings": {
        **config["settings"], "qk_norm": raw["model_type"] != "gemma2",
        "scale": positive(scalar, "query_pre_attn_scalar") ** -0.5,
        "softcap": positive(cap, "an attention soft-cap") if cap is not None else None,
        "final_softcap": positive(final, "a final logit soft-cap") if (final := raw.get("final_logit_softcapping")) is not None else None,
    }}


def gemma_params(ckpt: Checkpoint, config: ModelConfig) -> Params:
    """Hugging Face's names -> the parameters of :func:`gemma_embed` and :func:`gemma_block`, every norm
    weight as 1 + w."""
    d, h, kv, d_k, eps = config.d_model, config.heads, config.kv_heads, config.d_head, config.eps
    s = config.settings

    def norm(name: str, width: int = d) -> RMSNorm:
        return ckpt.rms_norm(name, width, eps, plus_one=True)

    def block(i: int) -> Params:
        p = f"layers.{i}."
        attn = [p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj"]
        params: Params = {
            "norm_1": norm(p + "input_layernorm"), "norm_2": norm(p + "post_attention_layernorm"),
            "qkv": ckpt.linears(attn, d, [h * d_k, kv * d_k, kv * d_k], bias=s["bias"]),
            "attn_out": ckpt.linear(p + "self_attn.o_proj", h * d_k, d, bias=s["bias"]),
            "norm_3": norm(p + "pre_feedforward_layernorm"), "norm_4": norm(p + "post_feedforward_layernorm"),
            "gate_up": ckpt.linears([p + "mlp.gate_proj", p + "mlp.up_proj"], d, s["ff"], bias=False),
            "down": ckpt.linear(p + "mlp.down_proj", s["ff"], d, bias=False),
            "rope": s["ropes"][i], "window": s["windows"][i], "n_kv_head": kv, "scale": s["scale"], "softcap": s["softcap"],
        }
        if s["qk_norm"]:
            params |= {"q_norm": norm(p + "self_attn.q_norm", d_k), "k_norm": norm(p + "self_attn.k_norm", d_k)}
        return params

    return {
        "wte": ckpt.table("embed_tokens.weight", "vocab", d),
        # Gemma 3 keeps √d in a float32 buffer, cast to the weights' dtype: a float64 run scales by float32's √d too
        "scale": ckpt.dtype.type(np.float32(math.sqrt(d)) if config.architecture == "gemma3_text" else math.sqrt(d)),
        "blocks": ckpt.blocks(block, config.layers),
        "norm": norm("norm"),
    }


def gemma_embed(ids: np.ndarray, params: Params, start: int = 0) -> np.ndarray:
    """Token ``ids`` (T,), or a batch (B, T), -> their embeddings times √d_model (T, d)."""
    return params["wte"][ids] * params["scale"]


def gemma_block(
    x: np.ndarray, norm_1: RMSNorm, qkv: Linear, attn_out: Linear, norm_2: RMSNorm, norm_3: RMSNorm, gate_up: Linear,
    down: Linear, norm_4: RMSNorm, rope: Rope, window: int | None, n_kv_head: int, scale: float, softcap: float | None,
    n_head: int, q_norm: RMSNorm | None = None, k_norm: RMSNorm | None = None, cache: KeyValues | None = None,
) -> tuple[np.ndarray, Attended]:
    """One block of x (T, d): norm, attention, norm, add; norm, GeGLU feed-forward, norm, add. ``cache``:
    as :func:`.llama.llama_block`'s."""
    attended, heads = gemma_attention(rms_norm(x, **norm_1), qkv, rope, window, n_head, n_kv_head, scale, softcap, q_norm, k_norm, cache)
    x = x + rms_norm(linear(heads, **attn_out), **norm_2)  # (T, d)
    x = x + rms_norm(gated_ffn(rms_norm(x, **norm_3), gate_up, down, gelu_tanh), **norm_4)
    return x, attended


def gemma_attention(
    x: np.ndarray, qkv: Linear, rope: Rope, window: int | None, n_head: int, n_kv_head: int, scale: float,
    softcap: float | None, q_norm: RMSNorm | None = None, k_norm: RMSNorm | None = None, cache: KeyValues | None = None,
) -> tuple[Attended, np.ndarray]:
    """Causal grouped-query attention of x (T, d), normed already, scaled and capped as Gemma's."""
    q, k, v = heads_of(linear(x, **qkv), n_head, n_kv_head)
    if q_norm is not None and k_norm is not None:  # Gemma 3
        q, k = rms_norm(q, **q_norm), rms_norm(k, **k_norm)
    return rotated_attention(q, k, v, rope, window, scale, softcap, cache)


def gemma_attend(x: np.ndarray, block: Params, n_head: int) -> Attended:
    """The attention of :func:`gemma_block` alone."""
    b = block
    return gemma_attention(
        rms_norm(x, **b["norm_1"]), b["qkv"], b["rope"], b["window"], n_head, b["n_kv_head"], b["scale"], b["softcap"],
        b.get("q_norm"), b.get("k_norm"),
    )[0]


GEMMA2 = Architecture(
    model_types=("gemma2",), config=gemma_config, prefix="model.", marker="embed_tokens.weight",
    params=gemma_params, embed=gemma_embed, layer=gemma_block, attend=gemma_attend, final=llama_final, causal=True,
)
GEMMA3 = replace(GEMMA2, model_types=("gemma3_text",))

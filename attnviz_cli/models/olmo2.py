"""OLMo 2: Llama's decoder with its norms moved after each sublayer (the attention's and the feed-forward
block's outputs are normed before they are added; nothing is normed before them), and the queries and
keys RMS-normed over the whole projection (every head at once) before they are split into heads."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .architecture import Architecture, Linear, Params, RMSNorm
from .layers import Attended, KeyValues, gated_ffn, heads_of, linear, rms_norm, rotated_attention, silu
from .llama import llama_config, llama_embed, llama_final
from .rope import Rope
from .weights import Checkpoint

if TYPE_CHECKING:
    from .model import ModelConfig


def olmo2_params(ckpt: Checkpoint, config: ModelConfig) -> Params:
    """Hugging Face's names -> the parameters of :func:`olmo2_block`."""
    d, h, kv, d_k, eps = config.d_model, config.heads, config.kv_heads, config.d_head, config.eps
    s = config.settings

    def block(i: int) -> Params:
        p = f"layers.{i}."
        attn = [p + "self_attn.q_proj", p + "self_attn.k_proj", p + "self_attn.v_proj"]
        return {
            "qkv": ckpt.linears(attn, d, [h * d_k, kv * d_k, kv * d_k], bias=s["bias"]),
            "q_norm": ckpt.rms_norm(p + "self_attn.q_norm", h * d_k, eps),
            "k_norm": ckpt.rms_norm(p + "self_attn.k_norm", kv * d_k, eps),
            "attn_out": ckpt.linear(p + "self_attn.o_proj", h * d_k, d, bias=s["out_bias"]),
            "attn_norm": ckpt.rms_norm(p + "post_attention_layernorm", d, eps),
            "gate_up": ckpt.linears([p + "mlp.gate_proj", p + "mlp.up_proj"], d, s["ff"], bias=False),
            "down": ckpt.linear(p + "mlp.down_proj", s["ff"], d, bias=False),
            "mlp_norm": ckpt.rms_norm(p + "post_feedforward_layernorm", d, eps),
            "rope": s["ropes"][i], "window": s["windows"][i], "n_kv_head": kv,
        }

    return {
        "wte": ckpt.table("embed_tokens.weight", "vocab", d),
        "blocks": ckpt.blocks(block, config.layers),
        "norm": ckpt.rms_norm("norm", d, eps),
    }


def olmo2_block(
    x: np.ndarray, qkv: Linear, q_norm: RMSNorm, k_norm: RMSNorm, attn_out: Linear, attn_norm: RMSNorm, gate_up: Linear,
    down: Linear, mlp_norm: RMSNorm, rope: Rope, window: int | None, n_kv_head: int, n_head: int, cache: KeyValues | None = None,
) -> tuple[np.ndarray, Attended]:
    """One block of x (T, d): attention, norm, add; SwiGLU feed-forward, norm, add. ``cache``: as
    :func:`.llama.llama_block`'s."""
    attended, heads = olmo2_attention(x, qkv, q_norm, k_norm, rope, window, n_head, n_kv_head, cache)
    x = x + rms_norm(linear(heads, **attn_out), **attn_norm)
    x = x + rms_norm(gated_ffn(x, gate_up, down, silu), **mlp_norm)
    return x, attended


def olmo2_attention(
    x: np.ndarray, qkv: Linear, q_norm: RMSNorm, k_norm: RMSNorm, rope: Rope, window: int | None, n_head: int, n_kv_head: int,
    cache: KeyValues | None = None,
) -> tuple[Attended, np.ndarray]:
    """Causal grouped-query attention of x (T, d), its queries and keys normed across all heads first."""
    both = linear(x, **qkv)  # (T, (h + 2 h_kv) d_k)
    q_width = q_norm["g"].shape[0]
    k_width = k_norm["g"].shape[0]
    both[..., :q_width] = rms_norm(both[..., :q_width], **q_norm)
    both[..., q_width:q_width + k_width] = rms_norm(both[..., q_width:q_width + k_width], **k_norm)
    q, k, v = heads_of(both, n_head, n_kv_head)
    return rotated_attention(q, k, v, rope, window, cache=cache)


def olmo2_attend(x: np.ndarray, block: Params, n_head: int) -> Attended:
    """The attention of :func:`olmo2_block` alone."""
    b = block
    return olmo2_attention(x, b["qkv"], b["q_norm"], b["k_norm"], b["rope"], b["window"], n_head, b["n_kv_head"])[0]


OLMO2 = Architecture(
    model_types=("olmo2",), config=llama_config, prefix="model.", marker="embed_tokens.weight",
    params=olmo2_params, embed=llama_embed, layer=olmo2_block, attend=olmo2_attend, final=llama_final, causal=True,
)

"""GPT-2: token and position embeddings, then pre-LN blocks with causal self-attention, then a last norm."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .architecture import Architecture, Linear, Norm, Params
from .layers import Attended, KeyValues, ffn, gelu_tanh, layer_norm, linear, self_attention
from .weights import Checkpoint

if TYPE_CHECKING:
    from .model import ModelConfig


def gpt2_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """config.json's names -> ModelConfig's fields."""
    return {
        "layers": int(raw["n_layer"]), "heads": int(raw["n_head"]), "d_model": int(raw["n_embd"]),
        "max_positions": int(raw["n_positions"]), "eps": float(raw["layer_norm_epsilon"]),
    }


def gpt2_params(ckpt: Checkpoint, config: ModelConfig) -> Params:
    """Hugging Face's names -> the parameters of :func:`gpt2_embed`, :func:`gpt2_block` and
    :func:`gpt2_final`, read once, at load. GPT-2's Conv1D weights are stored (in, out) already, its
    query, key and value side by side."""
    d, eps = config.d_model, config.eps

    def block(p: str) -> Params:
        return {
            "attn": ckpt.conv1d(p + "attn.c_attn", d, 3 * d),
            "attn_out": ckpt.conv1d(p + "attn.c_proj", d, d),
            "ln_1": ckpt.norm(p + "ln_1", d, eps),
            "mlp_in": ckpt.conv1d(p + "mlp.c_fc", d, "ff"),
            "mlp_out": ckpt.conv1d(p + "mlp.c_proj", "ff", d),
            "ln_2": ckpt.norm(p + "ln_2", d, eps),
        }

    return {
        "wte": ckpt.table("wte.weight", "vocab", d),
        "wpe": ckpt.table("wpe.weight", "positions", d),
        "blocks": [block(f"h.{i}.") for i in range(config.layers)],
        "ln_f": ckpt.norm("ln_f", d, eps),
    }


def gpt2_embed(ids: np.ndarray, params: Params, start: int = 0) -> np.ndarray:
    """Token ``ids`` (T,), or a batch of texts of one length (B, T), -> the sum of their token and
    position embeddings (T, d), positions from ``start`` (the tokens before them, decoding)."""
    return params["wte"][ids] + params["wpe"][np.arange(start, start + ids.shape[-1])]  # (T, d)


def gpt2_block(
    x: np.ndarray, attn: Linear, attn_out: Linear, ln_1: Norm, mlp_in: Linear, mlp_out: Linear, ln_2: Norm, n_head: int,
    cache: KeyValues | None = None,
) -> tuple[np.ndarray, Attended]:
    """One block of x (T, d): norm, causal self-attention, add; norm, feed-forward, add. ``cache``: the
    keys and values of the tokens before x, which the block adds its own to (decoding a token at a time)."""
    attended, heads = self_attention(layer_norm(x, **ln_1), **attn, n_head=n_head, causal=True, cache=cache)  # (h, T, ·); (T, d)
    x = x + linear(heads, **attn_out)  # (T, d)
    x = x + ffn(layer_norm(x, **ln_2), mlp_in, mlp_out, gelu_tanh)  # (T, d): (T, 4d) in the middle
    return x, attended


def gpt2_attend(x: np.ndarray, block: Params, n_head: int) -> Attended:
    """The attention of :func:`gpt2_block` alone."""
    return self_attention(layer_norm(x, **block["ln_1"]), **block["attn"], n_head=n_head, causal=True)[0]


def gpt2_final(x: np.ndarray, params: Params) -> np.ndarray:
    """The last block's output (T, d), normed: Hugging Face's last hidden state."""
    return layer_norm(x, **params["ln_f"])


GPT2 = Architecture(
    model_types=("gpt2",), config=gpt2_config, prefix="transformer.", marker="wte.weight",
    params=gpt2_params, embed=gpt2_embed, layer=gpt2_block, attend=gpt2_attend, final=gpt2_final, causal=True,
)

"""GPT-2: token and position embeddings, then pre-LN blocks with causal self-attention, then a last norm."""

from __future__ import annotations

from typing import Any

import numpy as np

from .layers import Attended, Linear, Norm, ffn, gelu_tanh, layer_norm, linear, self_attention
from .weights import Checkpoint, Table


def gpt2_params(ckpt: Checkpoint, n_layer: int, d: int, eps: float) -> dict[str, Any]:
    """Hugging Face's names -> the parameters of :func:`gpt2_forward`, read once, at load. GPT-2's
    Conv1D weights are stored (in, out) already, its query, key and value side by side."""

    def block(p: str) -> dict[str, Any]:
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
        "blocks": [block(f"h.{i}.") for i in range(n_layer)],
        "ln_f": ckpt.norm("ln_f", d, eps),
    }


def gpt2_forward(
    ids: np.ndarray, wte: Table, wpe: Table, blocks: list[dict[str, Any]], ln_f: Norm, n_head: int,
    attention_only: bool = False,
) -> tuple[list[np.ndarray], list[Attended]]:
    """Hidden states as Hugging Face gives them (the embeddings, the input of each later block, and
    the last block's output after the final norm: L + 1 arrays of (T, d)) and each block's attention
    (L :class:`Attended`) of token ``ids`` (T,), or of a batch of texts of one length (B, T): then each
    array has B first. ``attention_only``: the last block stops after its attention, and the hidden
    states lack its output."""
    x = wte[ids] + wpe[np.arange(ids.shape[-1])]  # (T, d)
    hidden, attentions = [x], []
    for i, block in enumerate(blocks):
        if attention_only and i == len(blocks) - 1:
            attentions.append(self_attention(layer_norm(x, **block["ln_1"]), **block["attn"], n_head=n_head, causal=True)[0])
            return hidden, attentions
        x, attended = gpt2_block(x, **block, n_head=n_head)
        hidden.append(x)
        attentions.append(attended)
    hidden[-1] = layer_norm(x, **ln_f)
    return hidden, attentions


def gpt2_block(
    x: np.ndarray, attn: Linear, attn_out: Linear, ln_1: Norm, mlp_in: Linear, mlp_out: Linear, ln_2: Norm, n_head: int,
) -> tuple[np.ndarray, Attended]:
    """One block of x (T, d): norm, causal self-attention, add; norm, feed-forward, add."""
    attended, heads = self_attention(layer_norm(x, **ln_1), **attn, n_head=n_head, causal=True)  # (h, T, ·); (T, d)
    x = x + linear(heads, **attn_out)  # (T, d)
    x = x + ffn(layer_norm(x, **ln_2), mlp_in, mlp_out, gelu_tanh)  # (T, d): (T, 4d) in the middle
    return x, attended

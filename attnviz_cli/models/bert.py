"""BERT and RoBERTa (so MiniLM and the other BERT checkpoints): embeddings, then post-LN encoder layers.

RoBERTa is BERT with other names for its base model and positions that start after its padding id;
DistilBERT's layer is this one under other names (:mod:`.distilbert`).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .layers import Attended, Linear, Norm, ffn, gelu, layer_norm, linear, self_attention
from .weights import Checkpoint, Table


def bert_params(ckpt: Checkpoint, n_layer: int, d: int, eps: float, position_offset: int = 0) -> dict[str, Any]:
    """Hugging Face's names -> the parameters of :func:`bert_forward`, read once, at load.
    ``position_offset``: RoBERTa's first position rows, which stand for padding and are skipped."""

    def layer(p: str) -> dict[str, Any]:
        return {
            "attn": ckpt.linears([p + "attention.self.query", p + "attention.self.key", p + "attention.self.value"], d, d),
            "attn_out": ckpt.linear(p + "attention.output.dense", d, d),
            "ln_1": ckpt.norm(p + "attention.output.LayerNorm", d, eps),
            "ffn_in": ckpt.linear(p + "intermediate.dense", d, "ff"),
            "ffn_out": ckpt.linear(p + "output.dense", "ff", d),
            "ln_2": ckpt.norm(p + "output.LayerNorm", d, eps),
        }

    return {
        "wte": ckpt.table("embeddings.word_embeddings.weight", "vocab", d),
        "wpe": ckpt.table("embeddings.position_embeddings.weight", "positions", d, skip=position_offset),
        "wtt": ckpt.table("embeddings.token_type_embeddings.weight", "types", d),
        "ln_emb": ckpt.norm("embeddings.LayerNorm", d, eps),
        "blocks": [layer(f"encoder.layer.{i}.") for i in range(n_layer)],
    }


def bert_forward(
    ids: np.ndarray, wte: Table, wpe: Table, wtt: Table, ln_emb: Norm, blocks: list[dict[str, Any]], n_head: int,
    attention_only: bool = False,
) -> tuple[list[np.ndarray], list[Attended]]:
    """Hidden states (the embeddings, then after each layer: L + 1 arrays of (T, d)) and each layer's
    attention, head by head (L :class:`Attended`) of token ``ids`` (T,), or of a batch of texts of one
    length (B, T): then each array has B first."""
    x = wte[ids] + wpe[np.arange(ids.shape[-1])] + wtt[np.zeros(1, np.int64)]  # (T, d): one segment, type 0
    return encoder(layer_norm(x, **ln_emb), blocks, n_head, attention_only)


def encoder(
    x: np.ndarray, blocks: list[dict[str, Any]], n_head: int, attention_only: bool = False,
) -> tuple[list[np.ndarray], list[Attended]]:
    """The layers one after the other: hidden states (x, then after each) and each layer's attention.
    ``attention_only``: only the attentions are wanted, so the last layer stops after its attention
    (and the hidden states lack its output): a sixth of the work of a 6-layer model saved."""
    hidden, attentions = [x], []
    for i, block in enumerate(blocks):
        if attention_only and i == len(blocks) - 1:
            attentions.append(self_attention(x, **block["attn"], n_head=n_head)[0])
            break
        x, attended = bert_layer(x, **block, n_head=n_head)
        hidden.append(x)
        attentions.append(attended)
    return hidden, attentions


def bert_layer(
    x: np.ndarray, attn: Linear, attn_out: Linear, ln_1: Norm, ffn_in: Linear, ffn_out: Linear, ln_2: Norm, n_head: int,
) -> tuple[np.ndarray, Attended]:
    """One encoder layer of x (T, d): self-attention, add and norm; feed-forward, add and norm."""
    attended, heads = self_attention(x, **attn, n_head=n_head)  # (h, T, ·) each; (T, d) side by side
    x = layer_norm(x + linear(heads, **attn_out), **ln_1)  # (T, d)
    x = layer_norm(x + ffn(x, ffn_in, ffn_out, gelu), **ln_2)  # (T, d): (T, d_ff) in the middle
    return x, attended

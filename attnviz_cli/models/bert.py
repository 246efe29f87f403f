"""BERT and RoBERTa (so MiniLM and the other BERT checkpoints): embeddings, then post-LN encoder layers.

Hugging Face names, Linear weights stored (out, in) and applied here as x @ W.T. RoBERTa is BERT with
other names and positions that start after its padding id.
"""

from __future__ import annotations

import numpy as np

from .layers import Attended, gelu_erf, layer_norm, self_attention_layer
from .weights import Weights


def bert_forward(
    ids: np.ndarray, w: Weights, *, layers: int, heads: int, eps: float, position_offset: int = 0,
) -> tuple[list[np.ndarray], list[Attended]]:
    """Hidden states (the embeddings, then after each layer: L + 1 arrays of (T, d)) and each layer's
    attention, head by head (L :class:`Attended`) of token ``ids`` (T,)."""
    e = w.prefix + "embeddings."
    positions = np.arange(len(ids)) + position_offset
    x = w.rows(e + "word_embeddings.weight", ids) + w.rows(e + "position_embeddings.weight", positions)
    x = x + w.rows(e + "token_type_embeddings.weight", np.zeros(1, np.int64))  # one segment: type 0
    x = layer_norm(x, w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"], eps)  # (T, d)
    hidden, attentions = [x], []
    for i in range(layers):
        x, attended = bert_layer(x, w, f"{w.prefix}encoder.layer.{i}.", heads, eps)
        hidden.append(x)
        attentions.append(attended)
    return hidden, attentions


def bert_layer(x: np.ndarray, w: Weights, p: str, heads: int, eps: float) -> tuple[np.ndarray, Attended]:
    """One encoder layer: self-attention, add and norm, feed-forward, add and norm."""
    a = p + "attention.self."
    attended, mixed = self_attention_layer(
        x, w.linear(a + "query"), w[a + "query.bias"], w.linear(a + "key"), w[a + "key.bias"],
        w.linear(a + "value"), w[a + "value.bias"], heads,
    )
    o = p + "attention.output."
    x = layer_norm(x + mixed @ w.linear(o + "dense") + w[o + "dense.bias"], w[o + "LayerNorm.weight"], w[o + "LayerNorm.bias"], eps)
    h = gelu_erf(x @ w.linear(p + "intermediate.dense") + w[p + "intermediate.dense.bias"])  # (T, d_ff)
    o = p + "output."
    x = layer_norm(x + h @ w.linear(o + "dense") + w[o + "dense.bias"], w[o + "LayerNorm.weight"], w[o + "LayerNorm.bias"], eps)
    return x, attended

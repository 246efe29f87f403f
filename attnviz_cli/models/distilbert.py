"""DistilBERT: BERT distilled to half its layers, with other names, no segment embeddings, and layer
norms of epsilon 1e-12 fixed in its code. Linear weights stored (out, in), applied as x @ W.T."""

from __future__ import annotations

import numpy as np

from .layers import Attended, gelu_erf, layer_norm, self_attention_layer
from .weights import Weights


def distilbert_forward(
    ids: np.ndarray, w: Weights, *, layers: int, heads: int, eps: float,
) -> tuple[list[np.ndarray], list[Attended]]:
    """Hidden states (the embeddings, then after each layer: L + 1 arrays of (T, d)) and each layer's
    attention, head by head (L :class:`Attended`) of token ``ids`` (T,)."""
    e = w.prefix + "embeddings."
    x = w.rows(e + "word_embeddings.weight", ids) + w.rows(e + "position_embeddings.weight", np.arange(len(ids)))
    x = layer_norm(x, w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"], eps)  # (T, d)
    hidden, attentions = [x], []
    for i in range(layers):
        x, attended = distilbert_layer(x, w, f"{w.prefix}transformer.layer.{i}.", heads, eps)
        hidden.append(x)
        attentions.append(attended)
    return hidden, attentions


def distilbert_layer(x: np.ndarray, w: Weights, p: str, heads: int, eps: float) -> tuple[np.ndarray, Attended]:
    """One layer: self-attention, add and norm, feed-forward, add and norm (post-LN, as BERT)."""
    a = p + "attention."
    attended, mixed = self_attention_layer(
        x, w.linear(a + "q_lin"), w[a + "q_lin.bias"], w.linear(a + "k_lin"), w[a + "k_lin.bias"],
        w.linear(a + "v_lin"), w[a + "v_lin.bias"], heads,
    )
    x = layer_norm(x + mixed @ w.linear(a + "out_lin") + w[a + "out_lin.bias"], w[p + "sa_layer_norm.weight"], w[p + "sa_layer_norm.bias"], eps)
    h = gelu_erf(x @ w.linear(p + "ffn.lin1") + w[p + "ffn.lin1.bias"])  # (T, hidden_dim)
    out = x + h @ w.linear(p + "ffn.lin2") + w[p + "ffn.lin2.bias"]
    return layer_norm(out, w[p + "output_layer_norm.weight"], w[p + "output_layer_norm.bias"], eps), attended

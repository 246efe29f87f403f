"""BERT and RoBERTa (so MiniLM and the other BERT checkpoints): embeddings, then post-LN encoder layers.

Hugging Face names, Linear weights stored (out, in) and applied here as x @ W.T. RoBERTa is BERT with
other names and positions that start after its padding id; DistilBERT's layer is this one under the
names of :data:`DISTILBERT_NAMES`.
"""

from __future__ import annotations

import numpy as np

from ..engine import Runner
from .erf import gelu_erf
from .layers import Attended, by_rows, dense, layer_norm, self_attention_layer
from .weights import Weights

LAYERS = "encoder.layer."  # where BERT's and RoBERTa's layers are, after the base model's prefix
BERT_NAMES = {  # the parts of one layer, by their names in a checkpoint
    "query": "attention.self.query", "key": "attention.self.key", "value": "attention.self.value",
    "out": "attention.output.dense", "norm1": "attention.output.LayerNorm",
    "ff_in": "intermediate.dense", "ff_out": "output.dense", "norm2": "output.LayerNorm",
}
DISTILBERT_NAMES = {
    "query": "attention.q_lin", "key": "attention.k_lin", "value": "attention.v_lin",
    "out": "attention.out_lin", "norm1": "sa_layer_norm",
    "ff_in": "ffn.lin1", "ff_out": "ffn.lin2", "norm2": "output_layer_norm",
}


def bert_shapes(
    w: Weights, layers: int, d: int, names: dict[str, str] = BERT_NAMES, base: str = LAYERS, segments: bool = True,
) -> dict[str, tuple[int | str, ...]]:
    """The shape of every tensor a BERT-family forward pass reads, with "ff" for the feed-forward
    width and "vocab", "positions" and "types" for the tables' rows (whatever they are, the same
    throughout). ``base``: where the layers are, after the model's prefix; ``segments``: whether it
    has segment (token type) embeddings, as all but DistilBERT do."""
    e = w.prefix + "embeddings."
    shapes: dict[str, tuple[int | str, ...]] = {
        e + "word_embeddings.weight": ("vocab", d), e + "position_embeddings.weight": ("positions", d),
        **({e + "token_type_embeddings.weight": ("types", d)} if segments else {}),
        e + "LayerNorm.weight": (d,), e + "LayerNorm.bias": (d,),
    }
    for i in range(layers):
        n = {part: f"{w.prefix}{base}{i}.{name}" for part, name in names.items()}
        for part in ("query", "key", "value", "out"):
            shapes |= {n[part] + ".weight": (d, d), n[part] + ".bias": (d,)}
        for part in ("norm1", "norm2"):
            shapes |= {n[part] + ".weight": (d,), n[part] + ".bias": (d,)}
        shapes |= {n["ff_in"] + ".weight": ("ff", d), n["ff_in"] + ".bias": ("ff",), n["ff_out"] + ".weight": (d, "ff"), n["ff_out"] + ".bias": (d,)}
    return shapes


def bert_forward(
    ids: np.ndarray, w: Weights, *, layers: int, heads: int, eps: float, position_offset: int = 0,
    attention_only: bool = False, run: Runner | None = None,
) -> tuple[list[np.ndarray], list[Attended]]:
    """Hidden states (the embeddings, then after each layer: L + 1 arrays of (T, d)) and each layer's
    attention, head by head (L :class:`Attended`) of token ``ids`` (T,), or of a batch of texts of one
    length (B, T): then each array has B first. ``run``: the threads to share the work among."""
    e = w.prefix + "embeddings."
    positions = np.arange(ids.shape[-1]) + position_offset
    x = w.rows(e + "word_embeddings.weight", ids) + w.rows(e + "position_embeddings.weight", positions)
    x = x + w.rows(e + "token_type_embeddings.weight", np.zeros(1, np.int64))  # one segment: type 0
    x = layer_norm(x, w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"], eps)  # (T, d)
    return encoder(x, w, w.prefix + LAYERS, layers, heads, eps, BERT_NAMES, attention_only, run)


def encoder(
    x: np.ndarray, w: Weights, prefix: str, layers: int, heads: int, eps: float, names: dict[str, str],
    attention_only: bool = False, run: Runner | None = None,
) -> tuple[list[np.ndarray], list[Attended]]:
    """The layers one after the other: hidden states (x, then after each) and each layer's attention.
    ``attention_only``: only the attentions are wanted, so the last layer stops after its attention
    (and the hidden states lack its output): a sixth of the work of a 6-layer model saved."""
    hidden, attentions = [x], []
    for i in range(layers):
        if attention_only and i == layers - 1:
            attentions.append(bert_attention(x, w, f"{prefix}{i}.", heads, names, run)[0])
            break
        x, attended = bert_layer(x, w, f"{prefix}{i}.", heads, eps, names, run)
        hidden.append(x)
        attentions.append(attended)
    return hidden, attentions


def bert_layer(
    x: np.ndarray, w: Weights, p: str, heads: int, eps: float, names: dict[str, str] = BERT_NAMES,
    run: Runner | None = None,
) -> tuple[np.ndarray, Attended]:
    """One encoder layer: self-attention, add and norm, feed-forward, add and norm."""
    n = {part: p + name for part, name in names.items()}
    attended, mixed = bert_attention(x, w, p, heads, names, run)

    def after_attention(x: np.ndarray, mixed: np.ndarray) -> np.ndarray:  # row by row
        x = layer_norm(x + dense(mixed, w.linear(n["out"]), w[n["out"] + ".bias"]), w[n["norm1"] + ".weight"], w[n["norm1"] + ".bias"], eps)
        h = gelu_erf(dense(x, w.linear(n["ff_in"]), w[n["ff_in"] + ".bias"]))  # (T, d_ff)
        return layer_norm(x + dense(h, w.linear(n["ff_out"]), w[n["ff_out"] + ".bias"]), w[n["norm2"] + ".weight"], w[n["norm2"] + ".bias"], eps)

    return by_rows(run, after_attention, x, mixed, width=x.shape[-1]), attended


def bert_attention(
    x: np.ndarray, w: Weights, p: str, heads: int, names: dict[str, str], run: Runner | None = None,
) -> tuple[Attended, np.ndarray]:
    """A layer's multi-head self-attention: its heads, and their outputs side by side."""
    n = {part: p + name for part, name in names.items()}
    return self_attention_layer(x, *w.linears(n["query"], n["key"], n["value"]), heads, run=run)

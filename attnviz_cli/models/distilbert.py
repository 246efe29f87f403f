"""DistilBERT: BERT distilled to half its layers, with other names (:data:`.bert.DISTILBERT_NAMES`), no
segment embeddings, and layer norms of epsilon 1e-12 fixed in its code. Its layer is BERT's."""

from __future__ import annotations

import numpy as np

from ..engine import Runner
from .bert import DISTILBERT_NAMES, bert_shapes, encoder
from .layers import Attended, layer_norm
from .weights import Weights

LAYERS = "transformer.layer."  # where its layers are, after the base model's prefix


def distilbert_shapes(w: Weights, layers: int, d: int) -> dict[str, tuple[int | str, ...]]:
    """The shape of every tensor DistilBERT's forward pass reads: BERT's, without segment embeddings."""
    return bert_shapes(w, layers, d, DISTILBERT_NAMES, base=LAYERS, segments=False)


def distilbert_forward(
    ids: np.ndarray, w: Weights, *, layers: int, heads: int, eps: float, attention_only: bool = False,
    run: Runner | None = None,
) -> tuple[list[np.ndarray], list[Attended]]:
    """Hidden states (the embeddings, then after each layer: L + 1 arrays of (T, d)) and each layer's
    attention, head by head (L :class:`Attended`) of token ``ids`` (T,), or of a batch of texts of one
    length (B, T): then each array has B first. ``run``: the threads to share the work among."""
    e = w.prefix + "embeddings."
    x = w.rows(e + "word_embeddings.weight", ids) + w.rows(e + "position_embeddings.weight", np.arange(ids.shape[-1]))
    x = layer_norm(x, w[e + "LayerNorm.weight"], w[e + "LayerNorm.bias"], eps)  # (T, d)
    return encoder(x, w, w.prefix + LAYERS, layers, heads, eps, DISTILBERT_NAMES, attention_only, run)

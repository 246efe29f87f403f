"""DistilBERT: BERT distilled to half its layers, with other names, no segment embeddings, and layer
norms of epsilon 1e-12 fixed in its code. Its layer is BERT's: this page is its names."""

from __future__ import annotations

from typing import Any

import numpy as np

from .bert import encoder
from .layers import Attended, Norm, layer_norm
from .weights import Checkpoint, Table


def distilbert_params(ckpt: Checkpoint, n_layer: int, d: int, eps: float) -> dict[str, Any]:
    """Hugging Face's names -> the parameters of :func:`distilbert_forward` (its layers: those of
    :func:`.bert.bert_layer`), read once, at load."""

    def layer(p: str) -> dict[str, Any]:
        return {
            "attn": ckpt.linears([p + "attention.q_lin", p + "attention.k_lin", p + "attention.v_lin"], d, d),
            "attn_out": ckpt.linear(p + "attention.out_lin", d, d),
            "ln_1": ckpt.norm(p + "sa_layer_norm", d, eps),
            "ffn_in": ckpt.linear(p + "ffn.lin1", d, "ff"),
            "ffn_out": ckpt.linear(p + "ffn.lin2", "ff", d),
            "ln_2": ckpt.norm(p + "output_layer_norm", d, eps),
        }

    return {
        "wte": ckpt.table("embeddings.word_embeddings.weight", "vocab", d),
        "wpe": ckpt.table("embeddings.position_embeddings.weight", "positions", d),
        "ln_emb": ckpt.norm("embeddings.LayerNorm", d, eps),
        "blocks": [layer(f"transformer.layer.{i}.") for i in range(n_layer)],
    }


def distilbert_forward(
    ids: np.ndarray, wte: Table, wpe: Table, ln_emb: Norm, blocks: list[dict[str, Any]], n_head: int,
    attention_only: bool = False,
) -> tuple[list[np.ndarray], list[Attended]]:
    """As :func:`.bert.bert_forward`, without segment embeddings."""
    x = wte[ids] + wpe[np.arange(ids.shape[-1])]  # (T, d)
    return encoder(layer_norm(x, **ln_emb), blocks, n_head, attention_only)

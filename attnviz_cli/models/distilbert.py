"""DistilBERT: BERT distilled to half its layers, with other names, no segment embeddings, and layer
norms of epsilon 1e-12 fixed in its code. Its layer is BERT's: this page is its names."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .architecture import Architecture, Params
from .bert import bert_attend, bert_layer
from .layers import layer_norm
from .weights import Checkpoint

if TYPE_CHECKING:
    from .model import ModelConfig


def distilbert_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """config.json's names -> ModelConfig's fields; the epsilon is its code's."""
    return {
        "layers": int(raw["n_layers"]), "heads": int(raw["n_heads"]), "d_model": int(raw["dim"]),
        "max_positions": int(raw["max_position_embeddings"]), "eps": 1e-12,
    }


def distilbert_params(ckpt: Checkpoint, config: ModelConfig) -> Params:
    """Hugging Face's names -> the parameters of :func:`distilbert_embed` and of its layers, those of
    :func:`.bert.bert_layer`, read once, at load."""
    d, eps = config.d_model, config.eps

    def layer(p: str) -> Params:
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
        "blocks": [layer(f"transformer.layer.{i}.") for i in range(config.layers)],
    }


def distilbert_embed(ids: np.ndarray, params: Params) -> np.ndarray:
    """As :func:`.bert.bert_embed`, without segment embeddings."""
    x = params["wte"][ids] + params["wpe"][np.arange(ids.shape[-1])]  # (T, d)
    return layer_norm(x, **params["ln_emb"])


DISTILBERT = Architecture(
    model_types=("distilbert",), config=distilbert_config, prefix="distilbert.", marker="embeddings.word_embeddings.weight",
    params=distilbert_params, embed=distilbert_embed, layer=bert_layer, attend=bert_attend,
)

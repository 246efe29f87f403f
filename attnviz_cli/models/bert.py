"""BERT and RoBERTa (so MiniLM and the other BERT checkpoints): embeddings, then post-LN encoder layers.

RoBERTa is BERT with other names for its base model and positions that start after its padding id;
DistilBERT's layer is this one under other names (:mod:`.distilbert`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from .architecture import Architecture, Linear, Norm, Params
from .config_fields import FieldError
from .layers import Attended, ffn, gelu, layer_norm, linear, self_attention
from .weights import Checkpoint

if TYPE_CHECKING:
    from .model import ModelConfig


def bert_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """config.json's names -> ModelConfig's fields."""
    return {
        "layers": int(raw["num_hidden_layers"]), "heads": int(raw["num_attention_heads"]), "d_model": int(raw["hidden_size"]),
        "max_positions": int(raw["max_position_embeddings"]), "eps": float(raw["layer_norm_eps"]),
    }


def roberta_config(raw: Mapping[str, Any]) -> dict[str, Any]:
    """BERT's, its positions starting just after its padding id: the table's first rows stand for padding."""
    pad = raw.get("pad_token_id", 1)
    if pad is None or pad < 0:  # config_fields lets other models leave it null or -1; RoBERTa's positions start after it
        raise FieldError("pad_token_id", pad, "RoBERTa's padding id, a whole number from 0")
    offset = int(pad) + 1
    config = bert_config(raw)
    return config | {"max_positions": config["max_positions"] - offset, "position_offset": offset}


def bert_params(ckpt: Checkpoint, config: ModelConfig) -> Params:
    """Hugging Face's names -> the parameters of :func:`bert_embed` and :func:`bert_layer`, read once, at
    load. RoBERTa's first position rows (``position_offset``), which stand for padding, are skipped."""
    d, eps = config.d_model, config.eps

    def layer(p: str) -> Params:
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
        "wpe": ckpt.table("embeddings.position_embeddings.weight", "positions", d, skip=config.position_offset),
        "wtt": ckpt.table("embeddings.token_type_embeddings.weight", "types", d),
        "ln_emb": ckpt.norm("embeddings.LayerNorm", d, eps),
        "blocks": [layer(f"encoder.layer.{i}.") for i in range(config.layers)],
    }


def bert_embed(ids: np.ndarray, params: Params) -> np.ndarray:
    """Token ``ids`` (T,), or a batch of texts of one length (B, T), -> the first layer's input (T, d):
    the sum of their token, position and segment embeddings (one segment, type 0), normed."""
    wte, wpe, wtt = params["wte"], params["wpe"], params["wtt"]
    x = wte[ids] + wpe[np.arange(ids.shape[-1])] + wtt[np.zeros(1, np.int64)]  # (T, d)
    return layer_norm(x, **params["ln_emb"])


def bert_layer(
    x: np.ndarray, attn: Linear, attn_out: Linear, ln_1: Norm, ffn_in: Linear, ffn_out: Linear, ln_2: Norm, n_head: int,
) -> tuple[np.ndarray, Attended]:
    """One encoder layer of x (T, d): self-attention, add and norm; feed-forward, add and norm."""
    attended, heads = self_attention(x, **attn, n_head=n_head)  # (h, T, ·) each; (T, d) side by side
    x = layer_norm(x + linear(heads, **attn_out), **ln_1)  # (T, d)
    x = layer_norm(x + ffn(x, ffn_in, ffn_out, gelu), **ln_2)  # (T, d): (T, d_ff) in the middle
    return x, attended


def bert_attend(x: np.ndarray, block: Params, n_head: int) -> Attended:
    """The attention of :func:`bert_layer` alone."""
    return self_attention(x, **block["attn"], n_head=n_head)[0]


BERT = Architecture(
    model_types=("bert",), config=bert_config, prefix="bert.", marker="embeddings.word_embeddings.weight",
    params=bert_params, embed=bert_embed, layer=bert_layer, attend=bert_attend,
)
ROBERTA = replace(BERT, model_types=("roberta",), config=roberta_config, prefix="roberta.")

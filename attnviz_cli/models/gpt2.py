"""GPT-2: token and position embeddings, then pre-LN blocks with causal self-attention, then a last norm.

Hugging Face names; GPT-2's Conv1D weights are stored (in, out) and applied as x @ W.
"""

from __future__ import annotations

import numpy as np

from ..engine import Runner
from .layers import Attended, by_rows, dense, gelu_tanh, layer_norm, self_attention_layer
from .weights import Weights


def gpt2_shapes(w: Weights, layers: int, d: int) -> dict[str, tuple[int | str, ...]]:
    """The shape of every tensor GPT-2's forward pass reads (Conv1D weights are (in, out)), with "ff"
    for the feed-forward width and "vocab" and "positions" for the tables' rows."""
    p = w.prefix
    shapes: dict[str, tuple[int | str, ...]] = {
        p + "wte.weight": ("vocab", d), p + "wpe.weight": ("positions", d), p + "ln_f.weight": (d,), p + "ln_f.bias": (d,),
    }
    for i in range(layers):
        b = f"{p}h.{i}."
        shapes |= {
            b + "ln_1.weight": (d,), b + "ln_1.bias": (d,), b + "ln_2.weight": (d,), b + "ln_2.bias": (d,),
            b + "attn.c_attn.weight": (d, 3 * d), b + "attn.c_attn.bias": (3 * d,),
            b + "attn.c_proj.weight": (d, d), b + "attn.c_proj.bias": (d,),
            b + "mlp.c_fc.weight": (d, "ff"), b + "mlp.c_fc.bias": ("ff",),
            b + "mlp.c_proj.weight": ("ff", d), b + "mlp.c_proj.bias": (d,),
        }
    return shapes


def gpt2_forward(
    ids: np.ndarray, w: Weights, *, layers: int, heads: int, eps: float, attention_only: bool = False,
    run: Runner | None = None,
) -> tuple[list[np.ndarray], list[Attended]]:
    """Hidden states as Hugging Face gives them (the embeddings, the input of each later block, and
    the last block's output after the final norm: L + 1 arrays of (T, d)) and each block's attention
    scores (-inf where masked) and weights (L pairs of (h, T, T)) of token ``ids`` (T,), or of a batch
    of texts of one length (B, T): then each array has B first. ``run``: the threads to share the work among."""
    p = w.prefix
    x = w.rows(p + "wte.weight", ids) + w.rows(p + "wpe.weight", np.arange(ids.shape[-1]))  # (T, d)
    hidden, attentions = [x], []
    for i in range(layers):
        if attention_only and i == layers - 1:  # only the attentions are wanted: the last block stops there
            attentions.append(gpt2_attention(x, w, f"{p}h.{i}.", heads, eps, run)[0])
            return hidden, attentions
        x, attended = gpt2_block(x, w, f"{p}h.{i}.", heads, eps, run)
        attentions.append(attended)
        hidden.append(x)
    hidden[-1] = layer_norm(x, w[p + "ln_f.weight"], w[p + "ln_f.bias"], eps)
    return hidden, attentions


def gpt2_block(x: np.ndarray, w: Weights, p: str, heads: int, eps: float, run: Runner | None = None) -> tuple[np.ndarray, Attended]:
    """One block: norm, causal self-attention, add; norm, feed-forward, add."""
    attended, mixed = gpt2_attention(x, w, p, heads, eps, run)

    def after_attention(x: np.ndarray, mixed: np.ndarray) -> np.ndarray:  # row by row
        x = x + dense(mixed, w[p + "attn.c_proj.weight"], w[p + "attn.c_proj.bias"])
        m = layer_norm(x, w[p + "ln_2.weight"], w[p + "ln_2.bias"], eps)
        h = gelu_tanh(dense(m, w[p + "mlp.c_fc.weight"], w[p + "mlp.c_fc.bias"]))  # (T, 4d)
        return x + dense(h, w[p + "mlp.c_proj.weight"], w[p + "mlp.c_proj.bias"])

    return by_rows(run, after_attention, x, mixed, width=x.shape[-1]), attended


def gpt2_attention(
    x: np.ndarray, w: Weights, p: str, heads: int, eps: float, run: Runner | None = None,
) -> tuple[Attended, np.ndarray]:
    """A block's norm and causal multi-head self-attention: its heads, and their outputs side by side."""
    a = layer_norm(x, w[p + "ln_1.weight"], w[p + "ln_1.bias"], eps)
    return self_attention_layer(a, w[p + "attn.c_attn.weight"], w[p + "attn.c_attn.bias"], heads, causal=True, run=run)  # (d, 3d)

"""An independent self-attention written as plain Python loops over lists, for checking the core.

It shares no code with attnviz_cli.core: no NumPy matmul, no broadcasting, math.exp on Python floats.
"""

from __future__ import annotations

import math

import numpy as np


def _matmul(a: list[list[float]], b: list[list[float]]) -> list[list[float]]:
    return [[sum(a[i][t] * b[t][j] for t in range(len(b))) for j in range(len(b[0]))] for i in range(len(a))]


def _identity(n: int) -> list[list[float]]:
    return [[1.0 if i == j else 0.0 for j in range(n)] for i in range(n)]


def reference_attention(x, *, heads=1, wq=None, wk=None, wv=None, wo=None, scale=True, causal=False):
    """(scores, weights, head_outputs, output) as nested lists, with None for masked scores."""
    xs = np.asarray(x, dtype=np.float64).tolist()
    d_model = len(xs[0])
    mats = [np.asarray(w, dtype=np.float64).tolist() if w is not None else _identity(d_model) for w in (wq, wk, wv)]
    q_all, k_all, v_all = (_matmul(xs, m) for m in mats)
    d_k = len(q_all[0]) // heads
    d_v = len(v_all[0]) // heads
    T = len(xs)
    all_scores, all_weights, all_outputs = [], [], []
    for h in range(heads):
        q = [row[h * d_k : (h + 1) * d_k] for row in q_all]
        k = [row[h * d_k : (h + 1) * d_k] for row in k_all]
        v = [row[h * d_v : (h + 1) * d_v] for row in v_all]
        scores, weights, outputs = [], [], []
        for i in range(T):
            row = []
            for j in range(T):
                if causal and j > i:
                    row.append(None)
                    continue
                s = sum(q[i][t] * k[j][t] for t in range(d_k))
                row.append(s / math.sqrt(d_k) if scale else s)
            top = max(s for s in row if s is not None)
            exps = [0.0 if s is None else math.exp(s - top) for s in row]
            total = sum(exps)
            w = [e / total for e in exps]
            scores.append(row)
            weights.append(w)
            outputs.append([sum(w[j] * v[j][t] for j in range(T)) for t in range(d_v)])
        all_scores.append(scores)
        all_weights.append(weights)
        all_outputs.append(outputs)
    concat = [[value for h in range(heads) for value in all_outputs[h][i]] for i in range(T)]
    output = concat if wo is None else _matmul(concat, np.asarray(wo, dtype=np.float64).tolist())
    return all_scores, all_weights, all_outputs, output


def masked_to_inf(scores) -> np.ndarray:
    """Reference scores with None (masked) as -inf, as the core stores them."""
    return np.array([[[-math.inf if s is None else s for s in row] for row in head] for head in scores])

"""Gemma 3 270M from its real GGUF file (Q4_K_M: Q4_K, Q5_0, Q6_K and Q8_0 tensors; 18 layers of 4 query heads
sharing 1 key/value head of 256; five sliding-window layers of 512 to one global layer, RoPE bases 1e4 and 1e6),
checked against what transformers computes from the same file (tests/models/record_gemma3.py)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from attnviz_cli.models import load_model

from .conftest import need_real, run

MODELS = Path(__file__).resolve().parent / "models"
sys.path.insert(0, str(MODELS))
from record_gemma3 import LONG, TEXTS  # noqa: E402

WINDOW = 512
GLOBAL = (5, 11, 17)  # transformers' layer_types for this file: full_attention every sixth layer, the rest sliding
# float32 through 18 layers, against transformers' float32 sums in another order: attention weights differ by
# at most 3.2e-6 (measured); hidden states by at most 2.2e-6 of their layer's largest value (massive activations
# of ~1e5 on <bos> from layer 5 on; the last, after the final norm, at most ~70)
RTOL, ATOL = 1e-4, 1e-5


@pytest.fixture(scope="module")
def gemma3():
    return load_model(need_real("gemma3"), keep=True)


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    with np.load(MODELS / "gemma3-270m-q4_k_m-reference.npz") as data:
        return dict(data)


def test_the_config_is_the_one_transformers_derives_from_the_file(gemma3):
    """transformers' Gemma3TextConfig from this file (record_gemma3.py prints it): query_pre_attn_scalar 256
    (head_dim; no GGUF key), full attention every sixth layer, sliding_window 512, rope_theta 1e6 for the
    global layers and rope_local_base_freq 1e4 (the default; the file has no freq_base_swa), no soft-cap."""
    config = gemma3.config
    assert (config.architecture, config.layers, config.heads, config.kv_heads, config.d_head, config.d_model) == ("gemma3_text", 18, 4, 1, 256, 640)
    s = config.settings
    assert s["windows"] == [None if i in GLOBAL else WINDOW for i in range(18)]
    assert s["scale"] == 256 ** -0.5 and s["softcap"] is None and s["qk_norm"]
    for i, rope in enumerate(s["ropes"]):
        base = 1e6 if i in GLOBAL else 1e4
        assert_allclose(rope.inv_freq, base ** -(np.arange(0, 256, 2) / 256), rtol=1e-12)


def test_gemma3_q4_k_m_runs_as_transformers_runs_it(gemma3, reference):
    for t, text in enumerate(TEXTS):
        run_ = gemma3.run(text)
        assert_array_equal(run_.token_ids, reference[f"{t}/ids"])  # transformers' Unigram reading of the vocabulary
        assert_allclose(run_.attentions, reference[f"{t}/float32/attentions"], rtol=RTOL, atol=ATOL)
        for ours, theirs in zip(run_.hidden_states, reference[f"{t}/float32/hidden_states"], strict=True):  # 19 x (T, 640)
            assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL * float(np.abs(theirs).max()))


def test_the_sliding_layers_see_the_last_512_tokens_as_transformers_does(gemma3, reference):
    """A text of 638 tokens: in a sliding layer, query q keeps keys q - 512 < k <= q; the global layers keep all."""
    run_ = gemma3.run(LONG)
    assert_array_equal(run_.token_ids, reference["long/ids"])
    last = run_.attentions[:, :, -1]  # (L, h, T): the last query's weights
    assert_allclose(last, reference["long/float32/last_rows"], rtol=RTOL, atol=ATOL)
    T = len(run_.token_ids)
    q, k = np.arange(T)[:, None], np.arange(T)[None, :]
    outside = k <= q - WINDOW  # (T, T)
    for layer in range(18):
        weights = run_.attentions[layer]  # (h, T, T)
        if layer in GLOBAL:
            assert (last[layer, :, :T - WINDOW].sum(axis=-1) > 0.05).all()  # measured 0.07-0.79 in layer 5
        else:
            assert not weights[:, outside].any()
            assert (last[layer, :, T - WINDOW] > 0).all()  # the oldest key inside the window


def test_the_cli_says_all_four_heads_share_kv_head_0():
    record = json.loads(run("inspect", "I sat on the river bank", "--model", str(need_real("gemma3")), "-f", "json").stdout)
    assert record["config"]["model"]["architecture"] == "gemma3_text"
    assert len(record["layers"]) == 18
    assert all([h["kv_head"] for h in layer["heads"]] == [0, 0, 0, 0] for layer in record["layers"])

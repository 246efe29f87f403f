"""Generation (attnviz_cli/models/generate.py) against transformers' greedy generate, recorded by
tests/models/record_generate.py, and the key/value cache against whole runs of the same tokens."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from attnviz_cli.errors import AttnvizError
from attnviz_cli.models.generate import Sampling, generate
from attnviz_cli.models.layers import KeyValues, window_mask, window_rows
from attnviz_cli.models.model import load_model

from .conftest import need_smollm2

MODELS = Path(__file__).resolve().parent / "models"
TINY = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "olmo2", "gpt2")


@pytest.fixture(scope="module")
def recorded() -> dict[str, np.ndarray]:
    with np.load(MODELS / "generate.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def prompt() -> str:
    sys.path.insert(0, str(MODELS))
    from record_generate import PROMPT

    return PROMPT


@pytest.mark.parametrize("kind", TINY)
def test_greedy_decoding_is_transformers_token_for_token(kind, recorded, prompt):
    name = f"tiny-{kind}"
    model = load_model(MODELS / name)
    ids = model.encode(prompt)[0].ids
    assert_array_equal(ids, recorded[f"{name}/ids"])
    steps = list(generate(model, ids, 20, eos_ids=()))
    assert_array_equal([s.id for s in steps], recorded[f"{name}/all/new"])
    logits = recorded[f"{name}/all/logits"]
    # float32 through 2-6 layers, summed in another order than torch's: up to 7e-6 of the largest logit
    assert_allclose(np.stack([s.logits for s in steps]), logits, rtol=0, atol=2e-5 * np.abs(logits).max())
    for i, step in enumerate(steps):
        # float32 sums in another order: these random models' scores reach 25-31, and 1e-7 of them moves a weight ~1e-5
        assert_allclose(step.weights, recorded[f"{name}/all/attention/{i}"], rtol=0, atol=3e-5)
    stopped = [s.id for s in generate(model, ids, 20)]  # at the model's end-of-text token, as generate stops
    assert_array_equal(stopped, recorded[f"{name}/eos/new"])


@pytest.mark.parametrize("kind", TINY)
def test_the_cache_changes_nothing_but_rounding(kind):
    model = load_model(MODELS / f"tiny-{kind}", dtype="float64")
    ids = model.encode("the quick brown fox jumps over the lazy dog")[0].ids
    cached = list(generate(model, ids, 12, eos_ids=()))
    whole = list(generate(model, ids, 12, eos_ids=(), cached=False))
    assert [s.id for s in cached] == [s.id for s in whole]
    for a, b in zip(cached, whole, strict=True):
        assert a.weights.shape == b.weights.shape == (model.config.layers, model.config.heads, a.weights.shape[-1])
        assert_allclose(a.logits, b.logits, rtol=0, atol=1e-10)  # float64: the same sums in another order
        assert_allclose(a.weights, b.weights, rtol=0, atol=1e-12)
        assert_array_equal(np.isinf(a.scores), np.isinf(b.scores))  # the same keys masked (windows)
    assert [s.weights.shape[-1] for s in cached] == list(range(len(ids), len(ids) + 12))


@pytest.mark.parametrize("kind", ["llama", "mistral", "gemma2", "gpt2"])
def test_the_cache_changes_no_float32_logit_beyond_1e_5(kind):
    model = load_model(MODELS / f"tiny-{kind}")
    ids = model.encode("the quick brown fox jumps over the lazy dog")[0].ids
    for a, b in zip(generate(model, ids, 12, eos_ids=()), generate(model, ids, 12, eos_ids=(), cached=False), strict=True):
        scale = np.abs(b.logits).max()
        assert_allclose(a.logits / scale, b.logits / scale, rtol=0, atol=1e-5)  # one row's products against many rows' (gemv, gemm)
        assert_allclose(a.weights, b.weights, rtol=0, atol=1e-5)


def test_smollm2_makes_transformers_20_greedy_tokens(recorded):
    model = load_model(need_smollm2(), keep=True)
    ids = recorded["smollm2/ids"]
    steps = list(generate(model, ids, 20, eos_ids=()))
    assert_array_equal([s.id for s in steps], recorded["smollm2/all/new"])
    top = np.stack([np.argsort(-s.logits, kind="stable")[:5] for s in steps])
    assert_array_equal(top[:, 0], recorded["smollm2/all/top"][:, 0])
    got = np.take_along_axis(np.stack([s.logits for s in steps]), recorded["smollm2/all/top"], axis=-1)
    assert_allclose(got, recorded["smollm2/all/top_logits"], rtol=0, atol=2e-3)  # float32 through 30 layers, logits ~25
    assert_array_equal([s.id for s in generate(model, ids, 20)], recorded["smollm2/eos/new"])


def test_smollm2_with_the_cache_as_without(recorded):
    model = load_model(need_smollm2(), keep=True)
    ids = recorded["smollm2/ids"]
    for a, b in zip(generate(model, ids, 4, eos_ids=()), generate(model, ids, 4, eos_ids=(), cached=False), strict=True):
        assert a.id == b.id
        assert_allclose(a.logits / 25, b.logits / 25, rtol=0, atol=1e-5)  # logits up to ~25
        assert_allclose(a.weights, b.weights, rtol=0, atol=1e-5)


def test_generation_stops_at_an_end_of_text_token_it_makes():
    model = load_model(MODELS / "tiny-llama")
    ids = model.encode("the quick brown fox")[0].ids
    made = [s.id for s in generate(model, ids, 10, eos_ids=())]
    steps = [s.id for s in generate(model, ids, 10, eos_ids=(made[3],))]
    assert steps == made[:4]


def test_generation_ends_at_the_models_last_position():
    model = load_model(MODELS / "tiny-gpt2")  # 64 positions
    ids = model.encode("the quick brown fox jumps over the lazy dog")[0].ids
    steps = list(generate(model, ids, 100, eos_ids=()))
    assert len(steps) == 64 - len(ids)


def test_sampling_draws_from_the_top_k_at_the_temperature():
    logits = np.array([1.0, 3.0, 2.0, 3.0, -1.0])
    assert Sampling().choose(logits) == 1  # greedy: the first of the largest
    rng = np.random.default_rng(0)
    drawn = [Sampling(1.0, top_k=2, rng=rng).choose(logits) for _ in range(400)]
    assert set(drawn) == {1, 3}  # the two largest, tied: either, never another
    p = np.exp(logits / 0.5) / np.exp(logits / 0.5).sum()
    counts = np.bincount([Sampling(0.5, rng=rng).choose(logits) for _ in range(4000)], minlength=5) / 4000
    assert_allclose(counts, p, atol=0.03)  # 4,000 draws: a few standard errors (≤ 0.008)
    first = [s.id for s in generate(load_model(MODELS / "tiny-llama"), [1, 5, 9], 8, Sampling(1.0, rng=np.random.default_rng(7)), eos_ids=())]
    again = [s.id for s in generate(load_model(MODELS / "tiny-llama"), [1, 5, 9], 8, Sampling(1.0, rng=np.random.default_rng(7)), eos_ids=())]
    assert first == again


def test_a_cache_holds_what_it_was_given_in_order():
    cache, rng = KeyValues(), np.random.default_rng(0)
    parts = [rng.normal(size=(2, n, 3)) for n in (5, 1, 1, 20, 1)]
    for part in parts:
        keys, values = cache.extend(part, -part)
    assert cache.length == 28
    assert_array_equal(keys, np.concatenate(parts, axis=1))
    assert_array_equal(values, -keys)


@pytest.mark.parametrize("window", [None, 1, 3])
def test_window_rows_are_the_last_rows_of_the_window_mask(window):
    whole = window_mask(9, window, np.dtype(np.float32))
    assert_array_equal(window_rows(6, 3, window, np.dtype(np.float32)), whole[6:])
    assert_array_equal(window_rows(0, 9, window, np.dtype(np.float32)), whole)


def test_an_encoder_does_not_generate():
    with pytest.raises(AttnvizError, match="generating needs a decoder"):
        next(generate(load_model(MODELS / "tiny-bert"), [1, 2], 3))


def test_a_prompt_id_outside_the_vocabulary_is_refused():
    with pytest.raises(AttnvizError, match="outside the 300 tokens"):
        next(generate(load_model(MODELS / "tiny-llama"), [1, 300], 3))

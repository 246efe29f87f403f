"""Projection matrices: identity, seeded Xavier-uniform as PyTorch draws it, and .npz files."""

from __future__ import annotations

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from attnviz_cli.errors import AttnvizError
from attnviz_cli.projections import identity, load_weights, random_xavier


def test_identity_has_no_matrices():
    p = identity()
    assert (p.kind, p.wq, p.wk, p.wv, p.wo, p.seed) == ("identity", None, None, None, None, None)


def test_random_is_reproducible_by_seed_and_differs_across_seeds():
    a, b, c = random_xavier(50, 7), random_xavier(50, 7), random_xavier(50, 8)
    for name in ("wq", "wk", "wv", "wo"):
        assert_array_equal(getattr(a, name), getattr(b, name))
        assert not np.array_equal(getattr(a, name), getattr(c, name))
    assert (a.kind, a.seed) == ("random", 7)


def test_random_follows_pytorch_bounds_and_layout():
    d = 64
    p = random_xavier(d, 0)
    bound_in, bound_out = np.sqrt(6 / (4 * d)), 1 / np.sqrt(d)  # xavier on (3d, d); nn.Linear on (d, d)
    for w in (p.wq, p.wk, p.wv):
        assert w.shape == (d, d) and np.abs(w).max() <= bound_in
        assert np.abs(w).max() > 0.95 * bound_in  # uniform over the whole interval
        assert abs(w.var() - bound_in**2 / 3) < 0.1 * bound_in**2 / 3  # Var U(-b, b) = b^2 / 3
    assert np.abs(p.wo).max() <= bound_out and np.abs(p.wo).max() > 0.95 * bound_out
    # q, k, v are the transposed row blocks of one (3d, d) draw, as in PyTorch's in_proj_weight
    rng = np.random.default_rng(0)
    in_proj = rng.uniform(-bound_in, bound_in, size=(3 * d, d))
    assert_array_equal(p.wk, in_proj[d : 2 * d].T)


def test_random_matches_pytorch_initialisation_statistics():
    from .conftest import need_module

    torch = need_module("torch")
    torch.manual_seed(0)
    mha = torch.nn.MultiheadAttention(64, 4)
    theirs = mha.in_proj_weight.detach().numpy()
    ours = np.concatenate([w.T for w in (random_xavier(64, 0).wq, random_xavier(64, 0).wk, random_xavier(64, 0).wv)])
    assert abs(np.abs(theirs).max() - np.abs(ours).max()) < 0.01
    assert abs(theirs.std() - ours.std()) < 0.01 * theirs.std() * 5


def _npz(tmp_path, **arrays):
    path = tmp_path / "w.npz"
    np.savez(path, **arrays)
    return path


def test_weights_file_is_loaded(tmp_path):
    rng = np.random.default_rng(0)
    wq, wk, wv, wo = rng.standard_normal((4, 6)), rng.standard_normal((4, 6)), rng.standard_normal((4, 4)), rng.standard_normal((4, 3))
    p = load_weights(_npz(tmp_path, wq=wq, wk=wk, wv=wv, wo=wo), d_model=4, heads=2)
    assert p.kind == "weights" and p.seed is None
    assert_array_equal(p.wq, wq)
    assert_array_equal(p.wo, wo)
    assert load_weights(_npz(tmp_path, wq=wq, wk=wk, wv=wv), d_model=4, heads=2).wo is None


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"wq": np.ones((4, 4)), "wk": np.ones((4, 4))}, "lacks wv"),
        ({"wq": np.ones((4, 4)), "wk": np.ones((4, 4)), "wv": np.ones((4, 4)), "bias": np.ones(4)}, "holds unexpected arrays bias"),
        ({"wq": np.ones((5, 4)), "wk": np.ones((5, 4)), "wv": np.ones((5, 4))}, r"wq must have shape \(4, h\*d\), got \(5, 4\) \(d_model 4, 2 heads\)"),
        ({"wq": np.ones((4, 3)), "wk": np.ones((4, 3)), "wv": np.ones((4, 4))}, r"2 heads do not divide wq's width \(3\)"),
        ({"wq": np.ones((4, 4)), "wk": np.ones((4, 4)), "wv": np.ones((4, 4)), "wo": np.ones((3, 4))}, r"wo must have shape \(4, d_out\)"),
        ({"wq": np.full((4, 4), np.inf), "wk": np.ones((4, 4)), "wv": np.ones((4, 4))}, "wq holds NaN or infinite"),
        ({"wq": np.array([["a"] * 4] * 4), "wk": np.ones((4, 4)), "wv": np.ones((4, 4))}, "array wq has dtype <U1; it must hold real numbers"),
        ({"wq": np.array([[{}] * 4] * 4, dtype=object), "wk": np.ones((4, 4)), "wv": np.ones((4, 4))}, "array wq holds Python objects, which attnviz never unpickles"),
    ],
)
def test_bad_weights_files_are_refused(tmp_path, arrays, message):
    with pytest.raises(AttnvizError, match=message):
        load_weights(_npz(tmp_path, **arrays), d_model=4, heads=2)


def test_weights_file_that_is_not_an_npz(tmp_path):
    plain = tmp_path / "w.npy"
    np.save(plain, np.ones((4, 4)))
    with pytest.raises(AttnvizError, match=r"is not an \.npz archive"):
        load_weights(plain, d_model=4, heads=1)
    with pytest.raises(AttnvizError, match="does not exist"):
        load_weights(tmp_path / "missing.npz", d_model=4, heads=1)

"""Query/key/value/output matrices: the identity, seeded random (as PyTorch initialises them), or a file.

Shapes follow :mod:`attnviz_cli.core`: ``wq``, ``wk`` are (d_model, h*d_k), ``wv`` (d_model, h*d_v),
``wo`` (h*d_v, d_out); row vectors, ``Q = x @ wq``.
"""

from __future__ import annotations

from pathlib import Path
from typing import NamedTuple

import numpy as np

from .core import AttentionInputError, check_projections
from .errors import AttnvizError, counted, quoted, usable_path

WEIGHT_NAMES = ("wq", "wk", "wv", "wo")


class Projections(NamedTuple):
    """The matrices one attention pass uses; None means the identity (or, for ``wo``, no projection)."""

    kind: str  # "identity", "random" or "weights"
    wq: np.ndarray | None = None
    wk: np.ndarray | None = None
    wv: np.ndarray | None = None
    wo: np.ndarray | None = None
    seed: int | None = None  # the seed of random projections


def identity() -> Projections:
    """No projection: Q = K = V = x, and the concatenated heads are the output."""
    return Projections(kind="identity")


def random_xavier(d_model: int, seed: int) -> Projections:
    """Random matrices drawn as ``torch.nn.MultiheadAttention`` initialises its own, from ``seed``.

    PyTorch draws its fused (3*d_model, d_model) input projection from Xavier-uniform, i.e. uniform in
    +-sqrt(6 / (d_model + 3*d_model)), and its output projection as ``nn.Linear`` does, uniform in
    +-1/sqrt(d_model). Its matrices act as ``x @ W.T``, so ours are their transposes.
    """
    rng = np.random.default_rng(seed)
    bound_in = np.sqrt(6.0 / (d_model + 3 * d_model))
    in_proj = rng.uniform(-bound_in, bound_in, size=(3 * d_model, d_model))  # (3*d_model, d_model), as PyTorch
    out_proj = rng.uniform(-1 / np.sqrt(d_model), 1 / np.sqrt(d_model), size=(d_model, d_model))
    w_q, w_k, w_v = np.split(in_proj, 3)
    return Projections(kind="random", wq=w_q.T.copy(), wk=w_k.T.copy(), wv=w_v.T.copy(), wo=out_proj.T.copy(), seed=seed)


def load_weights(path: Path, *, d_model: int, heads: int) -> Projections:
    """Matrices from an .npz holding ``wq``, ``wk``, ``wv`` and optionally ``wo``, read without pickle."""
    import zipfile  # only --weights pays for it (1.7 ms of every start)

    name = quoted(str(usable_path(path, "weights file")))
    if not path.is_file():
        raise AttnvizError(f"weights file {name} does not exist" if not path.exists() else f"weights file {name} is not a file")
    try:
        if not zipfile.is_zipfile(path):
            raise AttnvizError(f"weights file {name} is not an .npz archive (save one with numpy.savez)")
        _check_member_sizes(path, name, d_model)
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: _read_array(archive, key, name) for key in archive.files}
    except (OSError, zipfile.BadZipFile) as error:
        raise AttnvizError(f"weights file {name} cannot be read: {error}") from error
    unknown = sorted(set(arrays) - set(WEIGHT_NAMES))
    missing = [key for key in WEIGHT_NAMES[:3] if key not in arrays]
    if unknown or missing:
        problem = f"lacks {', '.join(missing)}" if missing else f"holds unexpected arrays {', '.join(unknown)}"
        raise AttnvizError(f"weights file {name} {problem}; it must hold wq, wk, wv and optionally wo")
    try:
        check_projections(d_model, heads, arrays["wq"], arrays["wk"], arrays["wv"], arrays.get("wo"))
    except AttentionInputError as error:
        raise AttnvizError(f"weights file {name}: {error} (d_model {d_model}, {counted(heads, 'head')})") from error
    return Projections(kind="weights", wq=arrays["wq"], wk=arrays["wk"], wv=arrays["wv"], wo=arrays.get("wo"))


def _check_member_sizes(path: Path, name: str, d_model: int) -> None:
    """Refuse an archive whose arrays would unpack to more than projections for ``d_model`` can take
    (64 x d_model columns of float64 each), before anything is decompressed: no zip bomb gets read."""
    import zipfile

    limit = 8 * d_model * 64 * d_model + 4096
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            if info.file_size > limit:
                raise AttnvizError(
                    f"weights file {name}: {info.filename} unpacks to {info.file_size:,} bytes, more than projections "
                    f"for d_model {d_model} can take ({limit:,})"
                )


def _read_array(archive, key: str, name: str) -> np.ndarray:
    """One array of an .npz, refused unless it is real-valued numbers."""
    try:
        array = archive[key]
    except ValueError as error:
        if "allow_pickle" in str(error):  # object arrays need pickle, which we never allow
            raise AttnvizError(f"weights file {name}: array {key} holds Python objects, which attnviz never unpickles") from error
        raise AttnvizError(f"weights file {name}: array {key} cannot be read: {error}") from error
    except (EOFError, OSError, MemoryError) as error:  # truncated, or a shape larger than its data
        raise AttnvizError(f"weights file {name}: array {key} cannot be read: {error or type(error).__name__}") from error
    if not isinstance(array, np.ndarray):  # numpy hands back the raw bytes of a member that is not .npy
        raise AttnvizError(f"weights file {name}: {key} is not an .npy array")
    if not (np.issubdtype(array.dtype, np.floating) or np.issubdtype(array.dtype, np.integer)):
        raise AttnvizError(f"weights file {name}: array {key} has dtype {array.dtype}; it must hold real numbers")
    return array

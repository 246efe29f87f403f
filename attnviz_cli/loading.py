"""What ``--vectors`` names -> Embeddings: the one place names and paths are resolved.

A name or path is, in this order: nothing or the shipped set's name (the default); a path that exists
(a vectors set folder, or a file gensim reads); a named set in the cache (the full GloVe is built there
on first use). :mod:`attnviz_cli.store`, which knows sets and the cache, is imported only when a set or
a name needs it, so a run on the shipped vectors never pays for it.
"""

from __future__ import annotations

import os
import time
from typing import NamedTuple

from .errors import AttnvizError, quoted, usable_path
from .shipped import DEFAULT_NAME
from .vector_files import load_file
from .vectors import Embeddings, load_default


def load(spec: str | None = None, *, fmt: str | None = None, trust_pickle: bool = False) -> Embeddings:
    """Embeddings named by ``spec``: None or a set's name (the shipped default, a cached set, the full
    GloVe), a folder holding a vectors set (``attn vectors convert``), or a file gensim reads. A path
    that exists wins over a name."""
    if spec is None or spec == DEFAULT_NAME:
        return load_default()
    path = usable_path(spec, "vectors file")
    if not path.exists() and path.parent.is_dir():  # a replace of this set that was killed half-way?
        from .store import recover

        recover(path)
    if path.exists() or fmt is not None:
        if path.is_dir() and fmt is None:
            from .store import is_set, load_set

            if is_set(path):
                return load_set(path)
        return load_file(path, fmt=fmt, trust_pickle=trust_pickle)
    from .store import load_named

    named = load_named(spec)
    if named is not None:
        return named
    if os.sep in spec or "." in spec:
        raise AttnvizError(f"vectors file {quoted(spec)} does not exist")
    raise AttnvizError(f"no vectors file or named set {quoted(spec)}; 'attn vectors list' shows the names")


class VectorsReport(NamedTuple):
    """What ``attn vectors info`` tells about a set of vectors."""

    name: str
    format: str
    location: str
    dim: int
    vocab_size: int
    dtype: str
    size_bytes: int  # on disk: the file, or the set's files together
    load_seconds: float
    subwords: bool  # whether unknown words get vectors from their subwords (fastText .bin)
    lowercase: bool
    sample: tuple[str, ...]


def describe(spec: str | None, *, fmt: str | None = None, trust_pickle: bool = False, samples: int = 8) -> VectorsReport:
    """Load the vectors ``spec`` names (as ``--vectors`` does), timing it, and describe them."""
    start = time.perf_counter()
    embeddings = load(spec, fmt=fmt, trust_pickle=trust_pickle)
    seconds = time.perf_counter() - start
    files = embeddings.files
    return VectorsReport(
        name=embeddings.name, format=embeddings.format, location=str(files[0] if len(files) == 1 else files[0].parent),
        dim=embeddings.dim, vocab_size=len(embeddings.words), dtype=str(embeddings.vectors.dtype),
        size_bytes=sum(f.stat().st_size for f in files), load_seconds=seconds,
        subwords=embeddings.subword is not None, lowercase=embeddings.lowercase,
        sample=tuple(embeddings.words[:samples]),
    )

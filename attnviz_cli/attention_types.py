"""The results :mod:`attnviz_cli.core` gives: :class:`AttentionOutputs` and :class:`Attention`, frozen
dataclasses whose arrays are read-only, and the freezing itself, which :mod:`attnviz_cli.results` uses
for every other result. Here, below both, so that core imports nothing above it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Self

import numpy as np


def freeze(*arrays: np.ndarray | None) -> None:
    """Make ``arrays`` read-only (None is skipped)."""
    for array in arrays:
        if array is not None:
            array.flags.writeable = False


def view_of(cls, values: dict) -> object:
    """An instance of the frozen dataclass ``cls`` holding views of an instance's (read-only) arrays.

    It skips ``__init__`` and ``__post_init__``: views of read-only arrays are read-only already, and
    a stream takes several views per sentence, where freezing them again costs more than the rest.
    """
    instance = object.__new__(cls)
    for name, value in values.items():
        object.__setattr__(instance, name, value)  # frozen: the one way to set a field past __init__
    return instance


@dataclass(frozen=True, slots=True, eq=False)  # arrays inside: compared by identity
class AttentionOutputs:
    """What every self-attention pass gives, for h heads over T tokens: the queries, keys and values,
    each head's value mix, and the output (the heads concatenated and, when there is an output
    projection, projected).

    :func:`attnviz_cli.analysis.attention_summary` gives just this: it keeps no (h, T, T) matrix. Code
    that needs the scores and weights takes an :class:`Attention`, so the type checker sees the
    difference (see :meth:`Inspection.matrices`).
    """

    queries: np.ndarray  # (..., h, T, d_k); leading batch dimensions when computed for many sequences
    keys: np.ndarray  # (..., h, T, d_k)
    values: np.ndarray  # (..., h, T, d_v)
    head_outputs: np.ndarray  # (..., h, T, d_v)
    output: np.ndarray  # (..., T, d_out)
    scale: bool  # whether scores were divided by sqrt(d_k)
    causal: bool  # whether positions j > i were masked

    ARRAYS: ClassVar[tuple[str, ...]] = ("queries", "keys", "values", "head_outputs", "output")  # with batch axes

    def __post_init__(self) -> None:
        freeze(*(getattr(self, name) for name in self.ARRAYS))

    def select(self, index: int) -> Self:
        """The attention of sequence ``index`` of a batched result (views, no copies)."""
        views = {name: getattr(self, name)[index] for name in self.ARRAYS}
        return view_of(type(self), {**views, "scale": self.scale, "causal": self.causal})  # type: ignore[return-value]

    def batch_of_one(self) -> Self:
        """This result with a batch axis of one in front of every array (views)."""
        views = {name: getattr(self, name)[None] for name in self.ARRAYS}
        return type(self)(**views, scale=self.scale, causal=self.causal)

    @property
    def heads(self) -> int:
        return self.queries.shape[-3]

    @property
    def d_k(self) -> int:
        return self.queries.shape[-1]

    @property
    def d_v(self) -> int:
        return self.values.shape[-1]


@dataclass(frozen=True, slots=True, eq=False)  # arrays inside: compared by identity
class Attention(AttentionOutputs):
    """Every intermediate of one self-attention pass, the full matrices included.

    ``scores`` are what enters the softmax (after scaling and masking: masked entries are -inf);
    ``weights`` are the softmax of the scores.
    """

    scores: np.ndarray  # (..., h, T, T)
    weights: np.ndarray  # (..., h, T, T)

    ARRAYS: ClassVar[tuple[str, ...]] = (*AttentionOutputs.ARRAYS, "scores", "weights")

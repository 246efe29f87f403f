"""Frozen dataclasses for what attnviz computes: attention results and a whole inspection.

Arrays stored here are made read-only, so a result can be shared between renderers without a copy and
without one renderer changing what another shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _freeze(*arrays: np.ndarray | None) -> None:
    for array in arrays:
        if array is not None:
            array.flags.writeable = False


@dataclass(frozen=True)
class Attention:
    """Every intermediate of one self-attention pass, for h heads over T tokens.

    ``scores`` are what enters the softmax (after scaling and masking: masked entries are -inf);
    ``weights`` are the softmax of the scores; ``head_outputs`` are each head's value mix; ``output``
    is the heads concatenated and, when there is an output projection, projected.
    """

    queries: np.ndarray  # (h, T, d_k)
    keys: np.ndarray  # (h, T, d_k)
    values: np.ndarray  # (h, T, d_v)
    scores: np.ndarray  # (h, T, T)
    weights: np.ndarray  # (h, T, T)
    head_outputs: np.ndarray  # (h, T, d_v)
    output: np.ndarray  # (T, d_out)
    scale: bool  # whether scores were divided by sqrt(d_k)
    causal: bool  # whether positions j > i were masked

    def __post_init__(self) -> None:
        _freeze(self.queries, self.keys, self.values, self.scores, self.weights, self.head_outputs, self.output)

    @property
    def heads(self) -> int:
        return self.scores.shape[0]

    @property
    def d_k(self) -> int:
        return self.queries.shape[-1]

    @property
    def d_v(self) -> int:
        return self.values.shape[-1]


@dataclass(frozen=True)
class Dropped:
    """A token that was left out of the attention, where it stood, and why."""

    token: str
    position: int  # index in the tokenized sentence, before anything was dropped
    reason: str  # "oov": not in the vocabulary


@dataclass(frozen=True)
class VectorsInfo:
    """What the JSON and tables say about the embedding used."""

    name: str
    dim: int
    vocab_size: int


@dataclass(frozen=True)
class InspectConfig:
    """The options an inspection ran with, as reported in its output."""

    heads: int
    d_model: int
    d_k: int
    d_v: int
    d_out: int
    scale: bool
    causal: bool
    projections: str  # "identity", "random" or "weights"
    seed: int | None  # the seed of random projections, else None
    vectors: VectorsInfo


@dataclass(frozen=True)
class Inspection:
    """One sentence run through attention: what went in, how, and what came out."""

    sentence: str
    tokens: tuple[str, ...]  # the tokens attended over, in order
    dropped: tuple[Dropped, ...]
    config: InspectConfig
    inputs: np.ndarray  # (T, d_model)
    attention: Attention
    notes: tuple[str, ...] = field(default=())  # messages for stderr (unknown words and the like)

    def __post_init__(self) -> None:
        _freeze(self.inputs)

"""Massive activations (Sun et al. 2024, "Massive Activations in Large Language Models"): a few entries of
a decoder's hidden state, at fixed dimensions and usually on the first token, thousands of times larger
than the rest. Pure NumPy over hidden states: arrays in, arrays out."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, slots=True)
class MassiveActivations:
    """Per layer (L,): the hidden state's entry of largest magnitude and where it is, against the median
    magnitude of that layer's whole (T, d) state."""

    value: np.ndarray  # (L,) the entry, with its sign
    median: np.ndarray  # (L,) the median |entry| of the layer's state
    ratio: np.ndarray  # (L,) |value| / median (inf where the median is 0, NaN where the state is all 0)
    position: np.ndarray  # (L,) int: its token's position
    dim: np.ndarray  # (L,) int: its dimension


def massive_activations(hidden: np.ndarray) -> MassiveActivations:
    """The largest-magnitude entry of each layer's hidden state ``hidden`` (L, T, d), where it is, and
    its ratio to the median magnitude (Sun et al. call one massive at 100x and above)."""
    magnitude = np.abs(hidden).reshape(hidden.shape[0], -1)  # (L, T * d)
    where = magnitude.argmax(axis=-1)  # (L,): the first of equal ones
    position, dim = np.divmod(where, hidden.shape[-1])
    top = magnitude[np.arange(len(where)), where]
    median = np.median(magnitude, axis=-1)
    with np.errstate(divide="ignore", invalid="ignore"):  # a median of 0: inf, or NaN for an all-zero state
        ratio = top / median
    value = hidden.reshape(hidden.shape[0], -1)[np.arange(len(where)), where]
    return MassiveActivations(value, median, ratio, position, dim)

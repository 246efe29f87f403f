"""Rotary position embeddings as a decoder's config.json describes them: the frequencies θ_i each pair of
a head's dims turns by, per token (Su et al. 2021), and the RoPE scalings attnviz runs.

config.json says it in one of two forms: ``rope_theta`` and ``rope_scaling`` (most checkpoints on the Hub,
written by transformers 4), or ``rope_parameters`` (what transformers 5 writes), one set for the whole
model or one per layer type (Gemma 3's "full_attention" and "sliding_attention"). Both read the same.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any, NamedTuple

import numpy as np

from ..errors import AttnvizError, quoted

KINDS = ("default", "linear", "llama3")  # the RoPE types attnviz runs


class Rope(NamedTuple):
    """A layer's rotation: the inverse frequencies θ_i (r/2,) of its r rotated dims, float64."""

    inv_freq: np.ndarray


def rope_settings(raw: Mapping[str, Any], layer_type: str = "full_attention") -> tuple[float, Mapping[str, Any]]:
    """The base θ and the scaling (a dict with "rope_type", or {} for none) of layers of ``layer_type``,
    from either form of config.json."""
    params = raw.get("rope_parameters")
    if isinstance(params, Mapping) and params:
        if layer_type in params and isinstance(params[layer_type], Mapping):  # one set per layer type
            params = params[layer_type]
        return float(params["rope_theta"]), params
    if layer_type == "sliding_attention" and raw.get("rope_local_base_freq") is not None:  # Gemma 3, transformers 4
        return float(raw["rope_local_base_freq"]), {}
    return float(raw.get("rope_theta", 10000.0)), raw.get("rope_scaling") or {}


def rope_of(raw: Mapping[str, Any], rotated: int, layer_type: str = "full_attention") -> Rope:
    """The :class:`Rope` of layers of ``layer_type`` that turn ``rotated`` dims of each head."""
    theta, scaling = rope_settings(raw, layer_type)
    if not isinstance(scaling, Mapping):
        raise ValueError(f"rope scaling {scaling!r} is not a mapping")
    if not (math.isfinite(theta) and theta > 0):
        raise ValueError(f"a RoPE base of {theta}")
    kind = scaling.get("rope_type", scaling.get("type", "default")) if scaling else "default"
    inv_freq = 1.0 / theta ** (np.arange(0, rotated, 2, dtype=np.float64) / rotated)  # (r/2,)
    if kind == "default":
        return Rope(inv_freq)
    if kind == "linear":  # positions slowed down by the factor (Chen et al. 2023)
        return Rope(inv_freq / positive(scaling["factor"], "a linear RoPE factor"))
    if kind == "llama3":
        return Rope(llama3_frequencies(inv_freq, scaling))
    raise AttnvizError(f"the model's RoPE scaling is {quoted(str(kind))}; attnviz runs {', '.join(KINDS)}")


def llama3_frequencies(inv_freq: np.ndarray, scaling: Mapping[str, Any]) -> np.ndarray:
    """Llama 3.1's frequencies (transformers' _compute_llama3_parameters): wavelengths longer than the
    original context / low_freq_factor are slowed by ``factor``, those shorter than it / high_freq_factor
    kept, and those between blended smoothly."""
    factor = positive(scaling["factor"], "a llama3 RoPE factor")
    low, high = positive(scaling["low_freq_factor"], "low_freq_factor"), positive(scaling["high_freq_factor"], "high_freq_factor")
    context = positive(scaling["original_max_position_embeddings"], "original_max_position_embeddings")
    if high <= low:
        raise ValueError(f"high_freq_factor {high} not above low_freq_factor {low}")
    wavelength = 2 * math.pi / inv_freq
    slowed = np.where(wavelength > context / low, inv_freq / factor, inv_freq)
    smooth = (context / wavelength - low) / (high - low)
    blended = (1 - smooth) * slowed / factor + smooth * slowed
    between = (wavelength >= context / high) & (wavelength <= context / low)
    return np.where(between, blended, slowed)


def positive(value: Any, what: str) -> float:
    """``value`` as a finite number above 0, else a ValueError naming ``what``."""
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise ValueError(f"{what} of {value!r}")
    return number

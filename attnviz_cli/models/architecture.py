"""What a page is written against: the plain parameter dicts its layers take, and the
:class:`Architecture` record by which :mod:`.model` reads its config and weights and runs it.

Parameters arrive named for the maths: a :class:`Linear` ``{"w": (d_in, d_out), "b": (d_out,)}``, a
:class:`Norm` ``{"g": (d,), "b": (d,), "eps": ε}`` and an :class:`RMSNorm` ``{"g": (d,), "eps": ε}``; a page
applies them as ``linear(x, **ffn_in)``, ``layer_norm(x, **ln_1)`` and ``rms_norm(x, **attn_norm)``. Both the weight reader and the maths import them from here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np

if TYPE_CHECKING:  # for the annotations only: those modules are built on this one
    from .layers import Attended
    from .model import ModelConfig
    from .weights import Checkpoint


class Linear(TypedDict):
    w: np.ndarray  # (d_in, d_out): applied as x @ w + b, laid out row by row for BLAS
    b: np.ndarray | None  # (d_out,), or None for a map without a bias (Llama's)


class Norm(TypedDict):
    g: np.ndarray  # (d,) gain
    b: np.ndarray  # (d,) bias
    eps: float  # added to the variance


class RMSNorm(TypedDict):
    g: np.ndarray  # (d,) gain
    eps: float  # added to the mean square


Params = dict[str, Any]  # a model's parameters as its page names them; "blocks": one dict per layer


@dataclass(frozen=True, slots=True)
class Architecture:
    """One page's model: how its config.json and checkpoint map to its parameters, and its forward pass
    in the parts that :func:`.model.run_layers` puts together (it owns the loop over the layers, and
    stopping after the last attention when nothing else is wanted)."""

    model_types: tuple[str, ...]  # the config.json model_type it runs
    config: Callable[[Mapping[str, Any]], dict[str, Any]]  # config.json -> ModelConfig's layers, heads, d_model, max_positions, eps (and position_offset)
    prefix: str  # the base model's in checkpoint names ("bert.", "transformer."): each name is found with it or without
    marker: str  # a tensor every checkpoint of it holds (named without the prefix): where the prefix is found
    params: Callable[[Checkpoint, ModelConfig], Params]  # checkpoint names -> its parameters, read once, at load
    embed: Callable[..., np.ndarray]  # embed(ids, params): token ids (T,) -> x (T, d), the first layer's input; a decoder's also takes start= (its first position)
    layer: Callable[..., tuple[np.ndarray, Attended]]  # layer(x, **block, n_head=h) -> (x, its attention): (T, d) -> (T, d); a decoder's also takes cache= (layers.KeyValues)
    attend: Callable[[np.ndarray, Params, int], Attended]  # attend(x, block, h): layer's attention alone, for the last layer
    final: Callable[[np.ndarray, Params], np.ndarray] | None = None  # final(x, params): the last hidden state (GPT-2's ln_f)
    causal: bool = False  # each token sees only those up to itself (GPT-2), not the whole text (BERT's family)

"""config.json's numbers, checked once for every architecture before any page reads them: each a
finite number of the right kind and range (a bool is not a count, and Infinity, null, a string or a list
is no size), so a page's ``int(raw["num_hidden_layers"])`` only ever sees what it can use. A config
from a GGUF file's metadata (:mod:`.gguf_hf`) goes through the same checks."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from ..errors import quoted

MAX_LAYERS = 1024  # layers a config may claim (the largest models have ~130): checked again against the checkpoint
MAX_SIZE = 1 << 31  # any other count or size: heads, widths, positions, vocabulary, windows

# field -> (kind, least value, whether null is allowed): "count" a whole number from the least value up
# to MAX_SIZE; "number" a finite float above the least value ("eps" one of at least it, "fraction" one
# above it and at most 1: the share of each head's dims a rotation turns)
COUNTS = {
    **dict.fromkeys(("num_hidden_layers", "n_layer", "n_layers"), ("count", 1, False)),
    **dict.fromkeys(("num_attention_heads", "n_head", "n_heads"), ("count", 1, False)),
    **dict.fromkeys(("hidden_size", "n_embd", "dim", "intermediate_size", "hidden_dim"), ("count", 1, False)),
    **dict.fromkeys(("max_position_embeddings", "n_positions"), ("count", 1, False)),
    "vocab_size": ("count", 1, True),  # read by no page: the checkpoint's tables say it
    **dict.fromkeys(("num_key_value_heads", "head_dim", "n_inner"), ("count", 1, True)),
    "sliding_window": ("count", 0, True),  # a page that reads it refuses 0; Llama's configs may hold anything unread
    "sliding_window_pattern": ("count", 1, False),
    "max_window_layers": ("count", 0, False),
    "pad_token_id": ("count", -1, True),  # -1: none, in older Llama configs
    **dict.fromkeys(("layer_norm_eps", "layer_norm_epsilon", "rms_norm_eps"), ("eps", 0, False)),
    **dict.fromkeys(("rope_theta", "rope_local_base_freq", "query_pre_attn_scalar"), ("number", 0, False)),
    "partial_rotary_factor": ("fraction", 0, False),
    **dict.fromkeys(("attn_logit_softcapping", "final_logit_softcapping"), ("number", 0, True)),
}
FLAGS = ("attention_bias", "mlp_bias", "use_sliding_window")  # true or false (or null: false)
ROPE_COUNTS = {  # inside rope_scaling or rope_parameters (or one of its per-layer-type sets)
    "original_max_position_embeddings": ("count", 1, False),
    **dict.fromkeys(("rope_theta", "factor", "low_freq_factor", "high_freq_factor"), ("number", 0, False)),
    "partial_rotary_factor": ("fraction", 0, False),
}
LAYER_COUNTS = ("num_hidden_layers", "n_layer", "n_layers")


class FieldError(ValueError):
    """A field of config.json that no run can use: its name, its value as JSON writes it, and what it must be."""

    def __init__(self, field: str, value: Any, need: str) -> None:
        super().__init__(f"{field} is {shown(value)}; it must be {need}")


def check_fields(raw: Mapping[str, Any]) -> None:
    """Every number of ``raw`` (a config.json's contents) that some architecture reads, checked for
    its kind and range; a FieldError naming the first that is wrong."""
    for field, rule in COUNTS.items():
        if field in raw:
            check(field, raw[field], rule)
    for field in LAYER_COUNTS:
        if isinstance(raw.get(field), int) and raw[field] > MAX_LAYERS:
            raise FieldError(field, raw[field], f"at most {MAX_LAYERS:,} layers")
    for field in FLAGS:
        if field in raw and raw[field] is not None and not isinstance(raw[field], bool):
            raise FieldError(field, raw[field], "true or false")
    for field in ("rope_scaling", "rope_parameters"):
        value = raw.get(field)
        if value is None:
            continue
        if not isinstance(value, Mapping):
            raise FieldError(field, value, "an object")
        sets = [value, *(v for v in value.values() if isinstance(v, Mapping))]  # one set, or one per layer type
        for rope in sets:
            for key, rule in ROPE_COUNTS.items():
                if key in rope:
                    check(f"{field}.{key}", rope[key], rule)


def check(field: str, value: Any, rule: tuple[str, int, bool]) -> None:
    """``value`` of ``field`` against ``rule`` (kind, least value, null allowed)."""
    kind, least, nullable = rule
    if value is None and nullable:
        return
    if kind == "count":
        if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= MAX_SIZE:
            raise FieldError(field, value, f"a whole number from {least} to {MAX_SIZE:,}")
        return
    number_ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not number_ok or (value < least if kind == "eps" else value <= least) or (kind == "fraction" and value > 1):
        need = {"eps": "a finite number, 0 or more", "fraction": "a number above 0, at most 1"}.get(kind, "a finite number above 0")
        raise FieldError(field, value, need)


def shown(value: Any) -> str:
    """``value`` as config.json would have it, short: 1e999 and Infinity are Infinity, a list is "a list"."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and not math.isfinite(value):
        return "NaN" if math.isnan(value) else "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, (int, float)):
        text = repr(value)
        return text if len(text) <= 40 else f"a number of {len(text):,} digits"
    if isinstance(value, str):
        return f"the string {quoted(value[:60])}"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return type(value).__name__

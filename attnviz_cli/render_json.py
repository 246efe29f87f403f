"""Inspection -> the JSON record of schema ``attnviz.inspect/1`` (and JSON Lines). Never imports Rich.

orjson writes NumPy arrays directly: float32 values in their shortest round-trip form (GloVe's 0.418 stays
0.418), float64 as Python's repr; nothing is rounded. Masked scores (-inf inside) become null; the core
guarantees nothing else is non-finite, so NaN and Infinity never appear.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import orjson

from .attention_types import Attention
from .results import (
    Comparison,
    Focus,
    HeadSummary,
    InspectConfig,
    Inspection,
    InspectionBatch,
    TokenNeighbors,
    with_matrices,
)

SCHEMA = "attnviz.inspect/1"
COMPARE_SCHEMA = "attnviz.compare/1"
TOP_FIELDS = ("sentence", "tokens", "dropped", "config", "inputs", "heads", "output", "subword", "focus", "neighbors")
HEAD_FIELDS = ("scores", "weights", "summary", "heads.output")  # heads.output: each head's own output
QKV_FIELDS = ("queries", "keys", "values")  # heads.queries...: each head's Q, K and V, only when asked for
_OPTIONS = orjson.OPT_SERIALIZE_NUMPY
# JSON escapes C0 controls itself; these (C1 controls, bidi and zero-width marks) it would write raw.
_INVISIBLE_UTF8 = re.compile(rb"\xc2[\x80-\x9f]|\xe2\x80[\x8b-\x8f\xaa-\xae]|\xe2\x81[\xa6-\xa9]|\xef\xbb\xbf")


def _array(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a)  # orjson needs C order; a no-op for the core's own arrays


def config_record(config: InspectConfig) -> dict[str, Any]:
    """The ``config`` object of the record (written out, not ``dataclasses.asdict``, which deep-copies)."""
    vectors = config.vectors
    record = {
        "heads": config.heads, "d_model": config.d_model, "d_k": config.d_k, "d_v": config.d_v,
        "d_out": config.d_out, "scale": config.scale, "causal": config.causal,
        "projections": config.projections, "seed": config.seed, "positions": config.positions,
        "vectors": {"name": vectors.name, "dim": vectors.dim, "vocab_size": vectors.vocab_size},
    }
    if config.layer_heads is not None:  # some heads of a model's layer (--head): the first one's number, of how many
        record |= {"first_head": config.first_head, "layer_heads": config.layer_heads}
    if config.weighting != "attention":  # a model's layer, --weighting norm: the weights are value-weighted
        record["weighting"] = config.weighting
    return record


def summary_records(summaries: HeadSummary, h: int) -> list[dict[str, Any]]:
    """Head ``h``'s ``summary`` object for each sentence of (B, h, T, ...) summaries: entropies,
    strongest keys, top keys (each array taken for all B sentences at once)."""
    entropies = list(_array(summaries.entropy_bits[:, h]))
    means = summaries.mean_entropy_bits[:, h].tolist()
    strongest_keys = list(_array(summaries.top_keys[:, h, :, 0]))
    strongest_weights = list(_array(summaries.top_weights[:, h, :, 0]))
    tops = _top_records(summaries, h)
    return [
        {
            "entropy_bits": entropies[b], "mean_entropy_bits": means[b],
            "strongest": {"keys": strongest_keys[b], "weights": strongest_weights[b]}, "top": tops[b],
        }
        for b in range(len(entropies))
    ]


def _top_records(summaries: HeadSummary, h: int) -> list[dict[str, Any]]:
    """Per sentence, each query's top keys and weights: one matrix when no key is masked, else ragged
    rows (causal: query i sees i + 1 keys, so its row ends at its count)."""
    keys, weights, counts = summaries.top_keys[:, h], summaries.top_weights[:, h], summaries.top_counts[:, h]
    complete = (counts == keys.shape[-1]).all(axis=-1).tolist()
    records = []
    for full, k, w, count in zip(complete, _array(keys), _array(weights), counts.tolist(), strict=True):
        if full:
            records.append({"keys": k, "weights": w})
        else:
            records.append({
                "keys": [_array(k[i, :n]) for i, n in enumerate(count)],
                "weights": [_array(w[i, :n]) for i, n in enumerate(count)],
            })
    return records


def focus_record(focus: Focus) -> dict[str, Any]:
    """One ``focus`` entry: the query's computation in every head, step by step."""
    return {
        "position": focus.position,
        "token": focus.token,
        "heads": [
            {
                "head": step.head, "query": _array(step.query), "keys": _array(step.keys),
                "dots": _array(step.dots), "scores": _array(step.scores), "weights": _array(step.weights),
                "values": _array(step.values), "contributions": _array(step.contributions),
                "output": _array(step.output),
            }
            for step in focus.heads
        ],
    }


def neighbors_record(neighbors: tuple[TokenNeighbors, ...]) -> list[dict[str, Any]]:
    """The ``neighbors`` list: nearest words before and after attention, per token."""

    def words(found) -> list[dict[str, Any]]:
        return [{"word": n.word, "cosine": n.cosine} for n in found]

    return [
        {"position": t.position, "token": t.token, "before": words(t.before), "after": words(t.after), "moved_cosine": t.moved_cosine}
        for t in neighbors
    ]


def inspection_record(inspection: Inspection, fields: tuple[str, ...] = ()) -> dict[str, Any]:
    """The JSON-ready record of one inspection (arrays left as NumPy arrays for orjson).

    With ``fields``, only those keys (and ``schema``); head fields (``weights``, ``heads.output``...)
    keep ``heads`` with just those keys. Only what is kept is built: a small record costs little.
    """
    return batch_records(InspectionBatch.of(inspection), fields)[0]


def batch_records(batch: InspectionBatch, fields: tuple[str, ...] = ()) -> list[dict[str, Any]]:
    """The records of a batch's sentences, in its order (see :func:`inspection_record`).

    Each field is built for every sentence in one pass over the batch's arrays; a record's arrays are
    views of them.
    """
    if not fields:
        fields = TOP_FIELDS
    records: list[dict[str, Any]] = [{"schema": SCHEMA} for _ in range(len(batch))]
    for name in fields:
        if name in TOP_FIELDS:
            for record, value in zip(records, _TOP_COLUMNS[name](batch), strict=True):
                if value is not _ABSENT:
                    record[name] = value
    head_keys = [f.removeprefix("heads.") for f in fields if f in HEAD_FIELDS or f.startswith("heads.")]
    if "heads" in fields:  # every part a head has by default, and the opt-in ones named beside it (in its place)
        opt_in = [key for key in head_keys if key in QKV_FIELDS]
        head_keys = [*_all_head_keys(batch), *opt_in] if opt_in else []
    if head_keys:
        for record, heads in zip(records, _heads(batch, head_keys), strict=True):
            record["heads"] = heads
    return records


_ABSENT = object()  # a column's value for a record that does not have the key (no subword tokens, say)


def _per_sentence(array: np.ndarray) -> list[np.ndarray]:
    """The sentences of a (B, ...) array as C-ordered views (orjson needs C order; one copy at most)."""
    return list(_array(array))


def _heads(batch: InspectionBatch, keys: Iterable[str]) -> list[list[dict[str, Any]]]:
    """``heads`` of each record: per head, its number and the parts named by ``keys``."""
    columns = [{key: _HEAD_COLUMNS[key](batch, h) for key in keys} for h in range(batch.config.heads)]
    return [
        [{"head": batch.config.head_number(h), **{key: column[b] for key, column in parts.items()}} for h, parts in enumerate(columns)]
        for b in range(len(batch))
    ]


def _all_head_keys(batch: InspectionBatch) -> tuple[str, ...]:
    """What a head of the whole ``heads`` field holds: no scores and weights when they were not kept (row blocks)."""
    return ("scores", "weights", "output", "summary") if isinstance(batch.attention, Attention) else ("output", "summary")


def _all_heads(batch: InspectionBatch) -> list[list[dict[str, Any]]]:
    """The whole ``heads`` field."""
    return _heads(batch, _all_head_keys(batch))


_HEAD_COLUMNS: dict[str, Callable[[InspectionBatch, int], list[Any]]] = {
    "scores": lambda batch, h: _per_sentence(with_matrices(batch.attention, "JSON scores").scores[:, h]),
    "weights": lambda batch, h: _per_sentence(with_matrices(batch.attention, "JSON weights").weights[:, h]),
    "output": lambda batch, h: _per_sentence(batch.attention.head_outputs[:, h]),
    "queries": lambda batch, h: _per_sentence(batch.attention.queries[:, h]),  # (T, d_k): x W_Q, this head's columns
    "keys": lambda batch, h: _per_sentence(batch.attention.keys[:, h]),
    "values": lambda batch, h: _per_sentence(batch.attention.values[:, h]),
    "summary": lambda batch, h: summary_records(batch.summaries, h),
}

_TOP_COLUMNS = {
    "sentence": lambda batch: batch.sentences,
    "tokens": lambda batch: [list(tokens) for tokens in batch.tokens],
    "dropped": lambda batch: [
        [{"token": d.token, "position": d.position, "reason": d.reason} for d in dropped] for dropped in batch.dropped
    ],
    "config": lambda batch: [config_record(batch.config)] * len(batch),  # one dict, shared: records are read, not changed
    "inputs": lambda batch: _per_sentence(batch.inputs),
    "heads": _all_heads,
    "output": lambda batch: _per_sentence(batch.attention.output),
    "subword": lambda batch: [list(subword) if subword else _ABSENT for subword in batch.subword],
    "focus": lambda batch: [[focus_record(f) for f in focus] if focus else _ABSENT for focus in batch.focus],
    "neighbors": lambda batch: [_ABSENT if n is None else neighbors_record(n) for n in batch.neighbors],
}


def comparison_record(comparison: Comparison) -> dict[str, Any]:
    """The ``attnviz.compare/1`` record: the focus word in each sentence, and how far apart it ends up."""
    sides = []
    for inspection, position in zip(comparison.sides, comparison.positions, strict=True):
        attention = inspection.matrices("a comparison")
        neighbors = inspection.neighbors
        sides.append({
            "sentence": inspection.sentence,
            "tokens": list(inspection.tokens),
            "position": position,
            "token": inspection.tokens[position],
            "weights": [_array(attention.weights[h, position]) for h in range(attention.heads)],
            "input": _array(inspection.inputs[position]),
            "output": _array(attention.output[position]),
            "neighbors": neighbors_record(neighbors)[0] if neighbors else None,
        })
    return {
        "schema": COMPARE_SCHEMA,
        "focus": comparison.focus,
        "config": config_record(comparison.sides[0].config),
        "sentences": sides,
        "input_cosine": comparison.input_cosine,
        "output_cosine": comparison.output_cosine,
    }


def check_fields(fields: tuple[str, ...]) -> None:
    """Refuse a field name no record has (ValueError naming the valid ones)."""
    valid = TOP_FIELDS + HEAD_FIELDS + tuple(f"heads.{name}" for name in ("scores", "weights", "summary", *QKV_FIELDS))
    unknown = [f for f in fields if f not in valid]
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}; choose from {', '.join(valid)}")


def _escape_invisible(data: bytes) -> bytes:
    """Write C1 controls and bidi/zero-width marks as \\uXXXX escapes: same JSON, safe on a terminal."""
    if data.isascii():  # numbers and almost every sentence: nothing to look for
        return data
    return _INVISIBLE_UTF8.sub(lambda m: b"\\u%04x" % ord(m.group().decode("utf-8")), data)


ROW_TEXTS_BYTES = 16 << 20  # memory a RecordWriter may spend on remembered rows before it starts over


class RecordWriter:
    """Compact records (JSON Lines) of many inspections, the bytes of ``dumps(inspection_record(...))``
    for less work: what repeats is formatted once.

    Formatting numbers is most of a record's cost. A word's input vector is the same in every sentence,
    so the text of each input row is remembered (keyed by the row's bytes: identical bits, identical
    text; at most ``ROW_TEXTS_BYTES``, then it starts over, so memory stays flat). Within a record, a
    head output whose bits equal the attention output (one head, no output projection) reuses its text.
    One writer per process: it is not shared between threads.
    """

    def __init__(self, fields: tuple[str, ...] = ()) -> None:
        self.fields = fields
        self._rows: dict[bytes, bytes] = {}
        self._rows_kind: tuple[str, int] | None = None  # (dtype, width) of the remembered rows
        self._rows_bytes = 0

    def records(self, batch: InspectionBatch) -> list[bytes]:
        """Each sentence's record as one line of JSON, in the batch's order."""
        lines = []
        for record in batch_records(batch, self.fields):
            if "inputs" in record:
                record["inputs"] = orjson.Fragment(self._matrix_text(record["inputs"]))
            _share_output_text(record)
            lines.append(dumps(record))
        return lines

    def _matrix_text(self, matrix: np.ndarray) -> bytes:
        """``orjson.dumps(matrix)`` for a (T, d) matrix, from remembered row texts where it can."""
        kind = (matrix.dtype.str, matrix.shape[1])
        if kind != self._rows_kind or self._rows_bytes > ROW_TEXTS_BYTES:
            self._rows, self._rows_kind, self._rows_bytes = {}, kind, 0
        rows, width = self._rows, matrix.shape[1] * matrix.itemsize
        data = matrix.tobytes()
        keys = [data[start : start + width] for start in range(0, len(data), width)]
        texts = [rows.get(key) or self._remember(key, matrix[i], width) for i, key in enumerate(keys)]
        return b"[" + b",".join(texts) + b"]"

    def _remember(self, key: bytes, row: np.ndarray, width: int) -> bytes:
        """The text of a row not seen before, kept under its bytes."""
        text = self._rows[key] = orjson.dumps(row, option=_OPTIONS)
        self._rows_bytes += 2 * len(text) + width + 100  # text, key, and the dict's share
        return text


def _share_output_text(record: dict[str, Any]) -> None:
    """Give the record's ``output`` and each head ``output`` with the same shape, dtype and bits one
    formatted text (with one head and no output projection they are the same numbers)."""
    output = record.get("output")
    if output is None:
        return
    alike = [
        head for head in record.get("heads", ())
        if "output" in head and head["output"].shape == output.shape and head["output"].dtype == output.dtype
    ]
    if not alike:
        return
    bits = output.tobytes()
    text = orjson.Fragment(orjson.dumps(output, option=_OPTIONS))
    record["output"] = text
    for head in alike:
        if head["output"].tobytes() == bits:
            head["output"] = text


def dumps(record: dict[str, Any], *, pretty: bool = False) -> bytes:
    """One record as JSON bytes ending in a newline: indented if ``pretty``, else a single line."""
    options = _OPTIONS | orjson.OPT_APPEND_NEWLINE | (orjson.OPT_INDENT_2 if pretty else 0)
    return _escape_invisible(orjson.dumps(record, option=options))


_PLACEHOLDER = rb'"\u0000attnviz-parts\u0000"'  # a JSON string no record holds: where the parts go


def dumps_in_parts(record: dict[str, Any], key: str, *, pretty: bool = False) -> Iterator[bytes]:
    """The bytes of :func:`dumps` of ``record``, the list under ``key`` one element at a time: the
    text of a large model's every layer is never whole in memory (a 512-token run of a 1.5B model's
    record is 4.4 GB of text), only one layer's. The same bytes as :func:`dumps`, checked by the tests."""
    parts = record.get(key)
    if not isinstance(parts, list) or not parts:
        yield dumps(record, pretty=pretty)
        return
    outer = dumps({**record, key: orjson.Fragment(_PLACEHOLDER)}, pretty=pretty)
    before, after = outer.split(_PLACEHOLDER)
    yield before + b"["
    options = _OPTIONS | (orjson.OPT_INDENT_2 if pretty else 0)
    for i, part in enumerate(parts):
        text = _escape_invisible(orjson.dumps(part, option=options))
        if pretty:  # an element of a list that is a key's value at the record's top: 4 spaces in
            text = b"\n    " + text.replace(b"\n", b"\n    ")
        yield text + (b"," if i < len(parts) - 1 else b"")
    yield (b"\n  ]" if pretty else b"]") + after

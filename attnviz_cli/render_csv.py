"""Inspection -> CSV in long form: one row per (sentence, head, query, key), for pandas or a spreadsheet;
a model run the same, with a row per (layer, head, query, key).

Numbers are written exactly (float32 in its shortest round-trip form); a masked score is an empty
field, its weight 0. Fields are quoted as CSV needs (RFC 4180), and control and bidi characters in the
sentence and tokens are written as escapes (\x1b, \u202e), as in every format, because CSV is read in
terminals too: no text of the user's can move the cursor, set the clipboard or reorder a line.
"""

from __future__ import annotations

import csv
import io

import numpy as np
import orjson

from .errors import printable
from .results import Inspection

HEADER = ("line", "sentence", "head", "query", "query_token", "key", "key_token", "score", "weight")


def _numbers(row: np.ndarray) -> list[str]:
    """Shortest round-trip text of each number ('' for -inf), as orjson writes them."""
    return [("" if text == "null" else text) for text in orjson.dumps(np.ascontiguousarray(row), option=orjson.OPT_SERIALIZE_NUMPY).decode()[1:-1].split(",")]


def header_csv() -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow(HEADER)
    return buffer.getvalue()


def inspection_csv(inspection: Inspection, line: int = 1) -> str:
    """The CSV rows of one inspection (no header); ``line`` is its line of input."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    attention = inspection.matrices("CSV")
    heads = [inspection.config.head_number(h) for h in range(attention.heads)]
    _write_heads(writer, (line, printable(inspection.sentence)), heads, attention.scores, attention.weights, inspection.tokens)
    return buffer.getvalue()


def _write_heads(
    writer, before: tuple, heads: list[int], scores: np.ndarray, weights: np.ndarray, tokens: tuple[str, ...], norms: np.ndarray | None = None,
) -> None:
    """A row per (head, query, key) of ``scores`` and ``weights`` (h, T, T), each row starting with
    ``before`` and numbered as ``heads`` says (a model's --head keeps its number in its layer); with
    ``norms`` (h, T), each row ends with its key's."""
    shown = [printable(t) for t in tokens]
    for h, number in enumerate(heads):
        key_norms = None if norms is None else _numbers(norms[h])
        for i, query in enumerate(shown):
            row_scores, row_weights = _numbers(scores[h, i]), _numbers(weights[h, i])
            writer.writerows(
                (*before, number, i, query, j, key, row_scores[j], row_weights[j], *(() if key_norms is None else (key_norms[j],)))
                for j, key in enumerate(shown)
            )


MODEL_HEADER = ("line", "sentence", "layer", "head", "query", "query_token", "key", "key_token", "score", "weight")


def model_csv(
    text: str, tokens: tuple[str, ...], scores: np.ndarray, weights: np.ndarray, layers: list[int], heads: list[int], norms: np.ndarray | None = None,
) -> str:
    """A model run as long-form CSV, header first: a row per (layer, head, query, key) of ``layers``
    and ``heads``, from its (L, h, T, T) ``scores`` and ``weights``, so one ``pandas.read_csv`` holds
    every head of every layer; a masked score is an empty field, its weight 0. With ``norms`` (L, h, T),
    --weighting norm: the weights are value-weighted, and a last column, value_norm, holds the key's ||v W_O||."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(MODEL_HEADER if norms is None else (*MODEL_HEADER, "value_norm"))
    sentence = printable(text)
    for layer in layers:
        _write_heads(writer, (1, sentence, layer), heads, scores[layer, heads], weights[layer, heads], tokens,
                     None if norms is None else norms[layer, heads])
    return buffer.getvalue()

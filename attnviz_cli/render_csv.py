"""Inspection -> CSV in long form: one row per (sentence, head, query, key), for pandas or a spreadsheet.

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
    sentence, tokens = printable(inspection.sentence), [printable(t) for t in inspection.tokens]
    for h in range(attention.heads):
        number = inspection.config.head_number(h)
        for i, query in enumerate(tokens):
            scores, weights = _numbers(attention.scores[h, i]), _numbers(attention.weights[h, i])
            writer.writerows(
                (line, sentence, number, i, query, j, key, scores[j], weights[j]) for j, key in enumerate(tokens)
            )
    return buffer.getvalue()

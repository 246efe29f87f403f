"""Inspected sentences -> records of a record format (JSON, JSON Lines, CSV rows, Markdown sections).

The one place a format picks its renderer, for one sentence (a batch of one) and for a stream's
batches alike. Works from an :class:`InspectionBatch`, so a JSON record is built straight from the
batch's arrays; the CSV and Markdown renderers are imported only by the formats that use them.
"""

from __future__ import annotations

from collections.abc import Sequence

from .render_json import RecordWriter, batch_records, dumps
from .results import InspectionBatch

RECORD_FORMATS = ("json", "jsonl", "csv", "markdown")


class RecordRenderer:
    """Renders batches in ``fmt``: ``json`` (a pretty document per sentence), ``jsonl`` (a compact line
    per sentence; one writer remembers the text of input rows from record to record), ``csv`` (the
    rows of each sentence, after :meth:`header`) or ``markdown`` (a section per sentence)."""

    def __init__(self, fmt: str, fields: tuple[str, ...] = (), dims: int = 6) -> None:
        if fmt not in RECORD_FORMATS:
            raise ValueError(f"not a record format: {fmt!r}")
        self.fmt, self.fields, self.dims = fmt, fields, dims
        self._writer = RecordWriter(fields) if fmt == "jsonl" else None

    def header(self) -> bytes:
        """What comes once before the records: CSV's header row; nothing for the other formats."""
        if self.fmt != "csv":
            return b""
        from .render_csv import header_csv

        return header_csv().encode()

    def records(self, batch: InspectionBatch, lines: Sequence[int]) -> list[bytes]:
        """The record of each sentence of ``batch``, in its order; ``lines`` are their input line numbers
        (CSV writes them in every row)."""
        if self._writer is not None:
            return self._writer.records(batch)
        if self.fmt == "json":
            return [dumps(record, pretty=True) for record in batch_records(batch, self.fields)]
        if self.fmt == "csv":
            from .render_csv import inspection_csv

            return [inspection_csv(batch.inspection(b), line).encode() for b, line in enumerate(lines)]
        from .render_markdown import inspection_markdown

        return [inspection_markdown(batch.inspection(b), dims=self.dims).encode() for b in range(len(batch))]

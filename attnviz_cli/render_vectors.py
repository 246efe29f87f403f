"""``attn vectors`` results as JSON-ready records and as Rich tables. User text (words, paths) is
escaped on the way to the terminal."""

from __future__ import annotations

import math
from typing import Any

from .errors import printable, quoted
from .loading import VectorsReport
from .store import NamedSet

VECTORS_SCHEMA = "attnviz.vectors/1"


class _Titled:
    """A table under a title line of its own: a title inside a Rich table wraps to the table's width."""

    def __init__(self, title: str, table) -> None:
        self.title, self.table = title, table

    def add_row(self, *cells: str) -> None:
        """A row of plain text: a cell is never read as Rich markup ("[link=...]" in a model's name
        stays those characters)."""
        from rich.text import Text

        self.table.add_row(*(Text(cell) for cell in cells))

    def __rich__(self):
        from rich.console import Group
        from rich.text import Text

        return Group(Text(printable(self.title), style="bold"), self.table)


def titled_table(title: str, *columns: tuple[str, str], header: bool = True) -> _Titled:
    """A table of ``columns`` (name, justify) under ``title``; a cell too long for its column is folded
    onto more lines, never cut: names and paths are there to be copied."""
    from rich.table import Table

    table = Table(show_header=header)
    for name, justify in columns:
        table.add_column(name, justify=justify, overflow="fold")  # type: ignore[arg-type]
    return _Titled(title, table)


def human_size(size_bytes: int) -> str:
    """1,023 B, 9.9 MiB, 1.2 GiB."""
    if size_bytes < 1024:
        return f"{size_bytes:,} B"
    power = min(3, int(math.log(size_bytes, 1024)))
    return f"{size_bytes / 1024**power:,.1f} {('KiB', 'MiB', 'GiB')[power - 1]}"


def report_record(report: VectorsReport) -> dict[str, Any]:
    return {
        "schema": VECTORS_SCHEMA, "kind": "info", "name": report.name, "format": report.format,
        "location": report.location, "dim": report.dim, "vocab_size": report.vocab_size, "dtype": report.dtype,
        "size_bytes": report.size_bytes, "load_seconds": round(report.load_seconds, 4),
        "subwords": report.subwords, "lowercase": report.lowercase, "sample": list(report.sample),
    }


def report_table(report: VectorsReport):
    table = titled_table(f"vectors {report.name}", ("", "left"), ("", "left"), header=False)
    rows = [
        ("format", report.format), ("location", report.location), ("dimension", str(report.dim)),
        ("words", f"{report.vocab_size:,}"), ("dtype", report.dtype), ("size on disk", human_size(report.size_bytes)),
        ("load time", f"{report.load_seconds * 1000:,.0f} ms"),
        ("unknown words", "built from subwords (fastText)" if report.subwords else "no vector (see --oov)"),
        ("case", "lower-case vocabulary" if report.lowercase else "cased vocabulary"),
        ("sample", " ".join(report.sample)),
    ]
    for key, value in rows:
        table.add_row(key, printable(value))
    return table


def neighbors_record(name: str, word: str, found: list[tuple[str, float]]) -> dict[str, Any]:
    return {
        "schema": VECTORS_SCHEMA, "kind": "neighbors", "vectors": name, "word": word,
        "neighbors": [{"word": w, "cosine": c} for w, c in found],
    }


def neighbors_table(name: str, word: str, found: list[tuple[str, float]]):
    table = titled_table(f"nearest to {quoted(word)} in {quoted(name)} (cosine)", ("#", "right"), ("word", "left"), ("cosine", "right"))
    for rank, (w, c) in enumerate(found, 1):
        table.add_row(str(rank), printable(w), f"{c:.3f}")
    return table


def named_sets_record(found: list[NamedSet]) -> dict[str, Any]:
    return {
        "schema": VECTORS_SCHEMA, "kind": "list",
        "sets": [{"name": s.name, "status": s.status, "location": s.location, "vocab_size": s.vocab_size, "dim": s.dim} for s in found],
    }


def named_sets_table(found: list[NamedSet]):
    table = titled_table("vectors --vectors NAME can load", ("name", "left"), ("words", "right"), ("dim", "right"), ("status", "left"), ("where", "left"))
    for s in found:
        words = f"{s.vocab_size:,}" if s.vocab_size is not None else "?"
        table.add_row(printable(s.name), words, str(s.dim or "?"), s.status, printable(s.location))
    return table

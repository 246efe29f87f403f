"""The pieces every Rich view shares: escaped text, row labels, number cells, and how
columns are laid out in runs that fit the width. Imports nothing of the other renderers."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from rich.style import Style
from rich.text import Text

from .errors import printable

if TYPE_CHECKING:
    from rich.console import Console, ConsoleOptions, RenderResult
    from rich.measure import Measurement

MASKED = "·"  # shown for masked scores and weights, so a mask never reads as a tiny number
LABEL_WIDTH = 9  # the narrowest row label: position and token ("0 river", "12 bank…")
MAX_LABEL_WIDTH = 20  # a wider label is shortened with an ellipsis
MAX_HEADER_WIDTH = 12  # a key column widens to show its token up to this, when that costs no extra run
MIN_FIELD_ROOM = 12  # Fields: below this many columns past the labels, values wrap back under them
SUBWORD_MARK = "~"  # between position and token, for a token built from subwords (fastText)


def safe(text: str, style: str | Style = "") -> Text:
    """User text as a Text that Rich shows literally, with control characters escaped."""
    return Text(printable(text), style=style)


class Fields:
    """Labelled lines, a label and its value each ("sentence     I sat on the river bank"), with a
    value too long for the width wrapped under itself, not back under the labels."""

    def __init__(self, *rows: tuple[str, Text | str], indent: int = 13) -> None:
        self.rows = [(label, value if isinstance(value, Text) else Text(value)) for label, value in rows]
        self.indent = indent  # the values' column: "architecture " is 13 characters

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        room = options.max_width - self.indent
        for label, value in self.rows:
            if room < MIN_FIELD_ROOM:  # too narrow for a column of values: each row as one wrapped line
                yield Text(label.ljust(self.indent), style="bold") + value
                continue
            for i, line in enumerate(value.wrap(console, room, overflow="fold")):
                line.rstrip()
                yield Text(label.ljust(self.indent) if i == 0 else " " * self.indent, style="bold" if i == 0 else "") + line

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        """As narrow as the longest word of any value, as wide as the longest value, past the labels."""
        from rich.cells import cell_len
        from rich.measure import Measurement

        words = [cell_len(word) for _, value in self.rows for word in value.plain.split()] or [0]
        lines = [value.cell_len for _, value in self.rows] or [0]
        return Measurement(self.indent + max(words), self.indent + max(lines)).clamp(max_width=options.max_width)


def token_label(position: int, token: str, subword: tuple[int, ...] = ()) -> Text:
    """ "3 bank", or "3~bank" for a token built from subwords: the mark survives a cut-off token."""
    mark = (SUBWORD_MARK, "bold") if position in subword else (" ", "dim")
    return Text.assemble((str(position), "dim"), mark, safe(token))


def label_width(tokens: Sequence[str], width: int) -> int:
    """The row labels' width: the longest "position token", between LABEL_WIDTH and a fifth of the
    width (MAX_LABEL_WIDTH at most), so a label is cut only when it would crowd the numbers out."""
    longest = max((len(str(i)) + 1 + len(printable(t)) for i, t in enumerate(tokens)), default=0)
    return max(LABEL_WIDTH, min(longest, MAX_LABEL_WIDTH, width // 5))


def format_score(score: float, largest: float | None = None) -> str:
    """A score in five characters or so: two decimals below 10, one below 100, none below 10,000, then
    powers of ten ("2e+04"), by its own size or, in a table, by the ``largest`` magnitude there, so a
    table has one precision. Never cut: the tables size their columns to what these give."""
    if np.isneginf(score):
        return MASKED
    size = abs(score) if largest is None else largest
    if size < 9.995:
        return f"{score:.2f}"
    return f"{score:.1f}" if size < 99.95 else f"{score:.0f}" if size < 9999.5 else f"{score:.0e}"


def format_value(value: float, largest: float | None = None) -> str:
    """A vector component in six characters or so: three decimals below 10, fewer above, then powers of
    ten ("-1e+05"), by its own size or the table's ``largest``; like :func:`format_score`, never cut."""
    size = abs(value) if largest is None else largest
    if size < 9.9995:
        return f"{value:.3f}"
    if size < 99999.5:
        decimals = 2 if size < 99.995 else 1 if size < 999.95 else 0
        return f"{value:.{decimals}f}"
    return f"{value:.0e}"


def largest(values: np.ndarray) -> float:
    """The largest finite magnitude in ``values`` (0 if none): what sets a table's one precision."""
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size else 0.0


def cells_width(texts: list[str], least: int) -> int:
    """The width of a column of numbers: ``least``, or the longest of ``texts`` if longer."""
    return max([least, *map(len, texts)])


def column_chunks(count: int, cell: int, width: int, reserved: int = 0) -> list[range]:
    """Columns 0..count-1 in balanced runs that fit ``width`` beside a row label and ``reserved``.

    Each column costs its cell plus one space; runs are made as even as possible (12 -> 6 + 6).
    """
    fits = max(1, (width - LABEL_WIDTH - reserved) // (cell + 1))
    runs = max(1, math.ceil(count / fits))
    size = math.ceil(count / runs) if count else 0
    return [range(start, min(start + size, count)) for start in range(0, count, size or 1)]


def key_columns(tokens: Sequence[str], cell: int, room: int) -> tuple[list[int], list[range]]:
    """Widths of the key columns and their runs, in ``room`` columns (the width less the row label
    and anything ``reserved`` beside them).

    Each column is ``cell`` wide, or wide enough for its whole token (up to MAX_HEADER_WIDTH) when the
    wider columns need no more runs than the narrow ones: on a wide terminal tokens are shown whole,
    on a narrow one numbers keep their room and long tokens are shortened.
    """
    narrow = [cell] * len(tokens)
    wide = [max(cell, min(len(printable(t)), MAX_HEADER_WIDTH)) for t in tokens]
    narrow_runs, wide_runs = _runs(narrow, room), _runs(wide, room)
    return (wide, wide_runs) if len(wide_runs) <= len(narrow_runs) else (narrow, narrow_runs)


def _runs(widths: list[int], room: int) -> list[range]:
    """Columns of these widths (plus a space each) in as few runs as fit ``room``, as even as possible."""
    count = len(widths)
    if not count:
        return []
    needed, used = 1, 0
    for w in widths:  # greedily, to learn how many runs are needed
        if used and used + w + 1 > room:
            needed, used = needed + 1, 0
        used += w + 1
    for runs in range(needed, count + 1):  # the most even split into that many runs that fits
        size = math.ceil(count / runs)
        cut = [range(start, min(start + size, count)) for start in range(0, count, size)]
        if all(sum(widths[j] + 1 for j in run) <= room or len(run) == 1 for run in cut):
            return cut
    return [range(j, j + 1) for j in range(count)]

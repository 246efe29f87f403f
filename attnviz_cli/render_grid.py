"""A table of fixed-width columns, drawn straight to Rich segments.

The matrices of ``attn inspect`` (scores, weights, vectors) are tables whose column widths we already
know: every number's width is computed before it is drawn, and headers and labels are cut to fit.
Rich's ``Table`` measures every cell before it lays it out, which made printing a ten-word sentence's
tables take 34-38 ms of ``attn inspect``'s start-up; a :class:`Grid` draws the same bytes as
``Table(box=SIMPLE_HEAD, padding=0, show_edge=False, header_style="bold")`` in 10 ms, each cell laid
out once by Rich's own ``Text.wrap`` (tested against Rich's Table in tests/test_render_grid.py).
Cells are plain strings or ``rich.text.Text`` (already made safe by the caller).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Literal, NamedTuple

from rich.console import Console, ConsoleOptions
from rich.segment import Segment
from rich.style import Style
from rich.text import Text

Justify = Literal["left", "right"]
_HEADER = Style(bold=True)
_SPACE = Segment(" ")


class Column(NamedTuple):
    """One column: its header, its width in cells, which side its cells keep to, and whether a cell
    too long for it wraps onto more lines (else it is cut with an ellipsis)."""

    header: str | Text
    width: int
    justify: Justify = "left"
    wrap: bool = False


class Grid:
    """Rows of cells under a bold header line and a rule, columns one space apart, each cell padded to
    its column's width, or cut to it with an ellipsis (in a wrapping column: folded onto more lines)."""

    def __init__(self) -> None:
        self.columns: list[Column] = []
        self.rows: list[tuple[str | Text, ...]] = []

    def add_column(self, header: str | Text, width: int, justify: Justify = "left", wrap: bool = False) -> None:
        self.columns.append(Column(header, width, justify, wrap))

    def add_row(self, *cells: str | Text) -> None:
        if len(cells) != len(self.columns):
            raise ValueError(f"a row of {len(cells)} cells for {len(self.columns)} columns")
        self.rows.append(cells)

    @property
    def width(self) -> int:
        """The width of every line: the columns and the spaces between them."""
        return sum(c.width for c in self.columns) + len(self.columns) - 1

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> Iterator[Segment]:
        yield from self._line([c.header for c in self.columns], console, _HEADER)
        yield Segment("─" * self.width)
        yield Segment.line()
        for row in self.rows:
            yield from self._line(row, console)

    def _line(self, cells: Sequence[str | Text], console: Console, style: Style | None = None) -> Iterator[Segment]:
        """One row: a line, or more where a wrapping column's cell needs them (the other cells blank).
        Each cell is laid out by Rich's own ``Text.wrap``, as a Table cell is, without the measuring."""
        columns = [
            (cell if isinstance(cell, Text) else Text(cell)).wrap(
                console, column.width, justify=column.justify, overflow="ellipsis", no_wrap=not column.wrap,
            )
            for cell, column in zip(cells, self.columns, strict=True)
        ]
        height = max(len(lines) for lines in columns)
        for n in range(height):
            for k, (lines, column) in enumerate(zip(columns, self.columns, strict=True)):
                if k:
                    yield _SPACE
                at = n - (height - len(lines)) if style is not None else n  # a header keeps to the bottom
                text = lines[at] if 0 <= at < len(lines) else Text(" " * column.width)
                if style is not None:  # the header's: over the padding too, as Rich's Table does
                    text.stylize(style)
                segments = text.render(console, end="")  # the spans' styles only
                yield from Segment.apply_style(segments, console.get_style(text.style)) if text.style else segments
            yield Segment.line()

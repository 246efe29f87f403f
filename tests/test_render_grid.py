"""render_grid.Grid against the independent implementation it stands in for: Rich's own Table, drawn
with the same box, padding, header style and column settings, must give the same bytes."""

from __future__ import annotations

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from attnviz_cli.render_grid import Column, Grid

WORDS = st.text(alphabet=st.sampled_from("ab·→é漢 0123.-"), max_size=12)
STYLES = st.sampled_from(["", "bold", "dim", "on #336699", "bold white on #fde725"])


def printed(renderable, color: bool) -> str:
    console = Console(width=200, file=io.StringIO(), color_system="truecolor" if color else None, force_terminal=color, highlight=False)
    console.print(renderable)
    return console.file.getvalue()


@st.composite
def grids(draw):
    n = draw(st.integers(1, 4))
    columns = [
        Column(draw(WORDS), draw(st.integers(1, 9)), draw(st.sampled_from(["left", "right"])), wrap=draw(st.booleans()) and k == n - 1)
        for k in range(n)
    ]
    rows = [[Text(draw(WORDS), style=draw(STYLES)) for _ in columns] for _ in range(draw(st.integers(0, 4)))]
    return columns, rows


@settings(max_examples=150, deadline=None)
@given(grids(), st.booleans())
def test_a_grid_draws_what_richs_table_draws(made, color):
    columns, rows = made
    grid, table = Grid(), Table(box=box.SIMPLE_HEAD, padding=0, show_edge=False, header_style="bold")
    for c in columns:
        grid.add_column(c.header, c.width, c.justify, c.wrap)
        table.add_column(c.header, width=c.width, justify=c.justify, no_wrap=not c.wrap, overflow="ellipsis")
    for row in rows:
        grid.add_row(*row)
        table.add_row(*row)
    assert printed(grid, color) == printed(table, color)


def test_a_row_must_fill_the_columns():
    grid = Grid()
    grid.add_column("a", 3)
    grid.add_column("b", 3)
    with pytest.raises(ValueError, match="a row of 1 cells for 2 columns"):
        grid.add_row("x")

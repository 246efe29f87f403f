"""Rich tables rendered into a fixed console and compared as exact text, as Rich's own tests do."""

from __future__ import annotations

import io

import numpy as np
from rich.console import Console

from attnviz_cli.pipeline import inspect_sentence
from attnviz_cli.projections import identity
from attnviz_cli.render_table import column_chunks, format_score, inspection_renderables
from attnviz_cli.results import InspectOptions


def render(inspection, width=80, dims=6, **console_options) -> str:
    options = {"color_system": None} | console_options
    console = Console(width=width, file=io.StringIO(), highlight=False, **options)
    console.print(inspection_renderables(inspection, dims=dims, width=width))
    return console.file.getvalue()


GOLDEN = """\
sentence     River bank!
tokens       2
vectors      tiny (2d, 4 words)
attention    1 head · d_k 2 · unscaled · causal
projections  identity
dropped      '!' (position 2)

head 0 of 1 scores (q·k)
query     river  bank
─────────────────────
0 river    1.00     ·
1 bank     1.00  2.00

head 0 of 1 weights (softmax, rows sum to 1)
query     river bank strongest
──────────────────────────────
0 river    1.00    · → river
1 bank     0.27 0.73 → bank

head 0 of 1 summary: mean entropy 0.42 bits
entropy: 0 = one key; all keys alike = log₂(i+1) for query i, 1.00 for the last
query     entropy top keys
────────────────────────────────────────────
0 river      0.00 0 river 1.00
1 bank       0.84 1 bank 0.73 · 0 river 0.27

contextualized vectors (attention output)
token        [0]    [1]   norm
──────────────────────────────
0 river    1.000  0.000  1.000
1 bank     1.000  0.731  1.239

"""


def without_trailing_spaces(text: str) -> str:
    return "\n".join(line.rstrip() for line in text.split("\n"))


def test_golden_tables_of_a_hand_computed_case(tiny):
    # weights row 2: 1/(1+e) = 0.27, e/(1+e) = 0.73; output of bank: [1, 0.731], norm sqrt(1 + 0.731^2) = 1.239
    rendered = render(inspect_sentence("River bank!", tiny, identity(), InspectOptions(scale=False, causal=True)))
    assert without_trailing_spaces(rendered) == GOLDEN  # Rich pads cells with spaces; editors strip them


def test_a_ten_word_sentence_fits_80_columns_without_cutting_numbers(glove):
    inspection = inspect_sentence("The bank raised its interest rates after the river flooded", glove, identity(), InspectOptions(heads=2))
    text = render(inspection)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "keys 0-" not in text  # all ten keys in one table
    numeric_cells = "".join(line[9:].split("→")[0] for line in text.splitlines() if line[:1].isdigit())
    assert "…" not in numeric_cells and "0." in numeric_cells  # every number whole
    assert text.count("head 1 of 2 weights") == 1


def test_long_sentences_are_split_into_runs_of_keys(glove):
    inspection = inspect_sentence(" ".join(["the river bank"] * 8), glove, identity())
    text = render(inspection)
    assert "keys 0-11" in text and "keys 12-23" in text
    assert max(len(line) for line in text.splitlines()) <= 80


def test_a_long_sentence_wraps_under_itself_in_the_header(tiny):
    inspection = inspect_sentence(" ".join(["river bank money"] * 6), tiny, identity())
    header = render(inspection, width=40).split("\n\n")[0]
    assert header.splitlines()[:5] == [  # 27 columns for the words, past the 13 of the labels
        "sentence     river bank money river bank",
        "             money river bank money",
        "             river bank money river bank",
        "             money river bank money",
        "tokens       18",
    ]


def test_labelled_fields_wrap_their_values_fold_long_words_and_measure_in_a_table():
    from rich.table import Table

    from attnviz_cli.render_parts import Fields

    fields = Fields(("before", "banks, securities, banking"), ("after", "x" * 30), indent=7)
    console = Console(width=20, file=io.StringIO(), color_system=None)
    console.print(fields)
    assert console.file.getvalue().splitlines() == [
        "before banks,", "       securities,", "       banking", "after  xxxxxxxxxxxxx", "       xxxxxxxxxxxxx", "       xxxx",
    ]
    table = Table.grid()
    table.add_column()
    table.add_row(fields)
    wide = Console(width=80, file=io.StringIO(), color_system=None)
    wide.print(table)  # measured: the longest value past the labels, so nothing wraps
    assert [line.rstrip() for line in wide.file.getvalue().splitlines()] == ["before banks, securities, banking", "after  " + "x" * 30]
    narrow = Console(width=20, file=io.StringIO(), color_system=None)
    narrow.print(Fields(("sentence", "river bank money")))  # 7 columns past the labels: too few for a column
    assert [line.rstrip() for line in narrow.file.getvalue().splitlines()] == ["sentence     river", "bank money"]


def test_column_chunks_are_balanced_and_fit():
    assert column_chunks(12, 5, 80) == [range(6), range(6, 12)]
    assert column_chunks(11, 5, 80) == [range(11)]
    assert column_chunks(3, 5, 10) == [range(1), range(1, 2), range(2, 3)]


def test_format_score_fits_five_characters():
    assert [format_score(s) for s in (0.123, -0.126, 9.994, 12.345, -45.67, 123.4)] == ["0.12", "-0.13", "9.99", "12.3", "-45.7", "123"]
    assert format_score(float("-inf")) == "·"


def test_markup_and_control_codes_in_user_text_are_shown_literally(tiny):
    inspection = inspect_sentence("[bold red]river[/] \x1b[2J bank", tiny, identity())
    text = render(inspection, color_system="truecolor", force_terminal=True)
    assert "[bold red]river[/] \\x1b[2J bank" in text
    assert "\x1b[2J" not in text


def test_colour_marks_the_heatmap_and_each_rows_strongest_weight(tiny):
    inspection = inspect_sentence("river bank money", tiny, identity())
    text = render(inspection, color_system="truecolor", force_terminal=True)
    assert text.count("48;2;") == 9  # a background colour in each of the 3 x 3 weight cells
    assert text.count("\x1b[1;") >= 3  # bold strongest weights (and bold headers)
    plain = render(inspection)
    assert "\x1b[" not in plain


RANDOM_NOTE = """\
random projections: untrained W_Q and W_K make small, similar scores of these
2-d vectors, so the weights are near uniform; learned projections (--weights,
--model) are what make a head pick out words.
"""


def test_random_projections_say_once_under_the_first_weights_table_why_weights_are_near_uniform(tiny):
    from attnviz_cli.projections import random_xavier

    inspection = inspect_sentence("the river bank", tiny, random_xavier(2, seed=0), InspectOptions(heads=2))
    text = without_trailing_spaces(render(inspection))
    assert text.count("random projections:") == 1
    first_weights = text.index("head 0 of 2 weights")
    table_end = text.index("\n\n", first_weights) + 2  # the table, then its blank line
    assert text[table_end:].startswith(RANDOM_NOTE + "\nhead 0 of 2 summary")
    assert "random projections:" not in render(inspect_sentence("the river bank", tiny, identity(), InspectOptions(heads=2)))


def test_a_table_has_one_precision_set_by_its_largest_number():
    from attnviz_cli.render_parts import format_score, format_value, largest

    scores = np.array([[2.0, 4.0, -np.inf], [4.0, 16.0, 12.0]])  # the demo's worked example: 16 sets one decimal
    top = largest(scores)
    assert top == 16.0 and [format_score(s, top) for s in scores.ravel()] == ["2.0", "4.0", "·", "4.0", "16.0", "12.0"]
    assert format_score(4.0) == "4.00" and format_score(16.0) == "16.0"  # alone, each by its own size
    assert [format_value(v, 123.4) for v in (0.4181, 123.4)] == ["0.4", "123.4"]
    assert largest(np.array([-np.inf, np.nan])) == 0.0
    # q·k: river·river 1, river·bank 10, bank·bank 200: no decimals for any; the output is ~bank, [10, 10], norm 14.14
    lines = without_trailing_spaces(render(inspect_sentence("river bank", tiny_scaled(), identity(), InspectOptions(scale=False)))).splitlines()
    assert lines[9:11] == ["0 river       1    10", "1 bank       10   200"]
    assert lines[-3:-1] == ["0 river    10.00  10.00  14.14", "1 bank     10.00  10.00  14.14"]


def tiny_scaled():
    """river = [1, 0], bank = [10, 10]."""
    from attnviz_cli.vectors import Embeddings

    return Embeddings(name="big", vectors=np.array([[1.0, 0.0], [10.0, 10.0]], np.float32), words=["river", "bank"],
                      index={"river": 0, "bank": 1}, lowercase=True)


def test_the_heatmap_steps_stay_apart_on_a_256_colour_terminal():
    from rich.color import ColorSystem

    from attnviz_cli.render_table import heat_style

    def xterm(weight: float) -> int | None:
        color = heat_style(weight).bgcolor
        assert color is not None
        return color.downgrade(ColorSystem.EIGHT_BIT).number

    assert xterm(0.01) != xterm(0.11)  # the case: both were colour 53 under the smooth viridis
    assert [xterm(w) for w in (0.0, 0.01, 0.03, 0.07, 0.11, 0.17, 0.25, 0.35, 0.45, 0.6, 0.7, 0.85, 1.0)] == [
        53, 53, 54, 24, 25, 31, 37, 72, 77, 113, 149, 184, 220,
    ]
    assert heat_style(0.11).color is not None and heat_style(0.11).color.name == "white"
    assert heat_style(0.95).color is not None and heat_style(0.95).color.name == "black"

"""The explaining views rendered into a fixed console and compared as exact text."""

from __future__ import annotations

import io

from rich.console import Console, Group

from attnviz_cli.pipeline import inspect_sentence
from attnviz_cli.projections import identity
from attnviz_cli.render_explain import bar, focus_renderables, neighbors_table, summary_table
from attnviz_cli.results import InspectOptions

from .test_render_table import render, without_trailing_spaces

# "River bank!" over river = [1, 0], bank = [1, 1], the = [.5, .5], money = [0, 1]; causal, unscaled.
# bank: q.k = [1, 2]; weights [1/(1+e), e/(1+e)] = [.269, .731]; entropy .269*1.894 + .731*.452 = .84 bits;
# output .269*[1, 0] + .731*[1, 1] = [1, .731]; nearest to [1, 1] but bank: the (cos 1), then river and
# money tie (.707) and river, the lower row, goes first; after: the .988, river .807; cos([1,1],[1,.731]) = .988
GOLDEN = """\
head 0 of 1 summary: mean entropy 0.42 bits
entropy: 0 = one key; all keys alike = log₂(i+1) for query i, 1.00 for the last
query     entropy top keys
────────────────────────────────────────────
0 river      0.00 0 river 1.00
1 bank       0.84 1 bank 0.73 · 0 river 0.27

focus 'bank' (position 1), head 0 of 1

1. the query of 'bank' and every key
  vector       [0]    [1]
─────────────────────────
q 1 bank     1.000  1.000
k 0 river    1.000  0.000
k 1 bank     1.000  1.000

2. q·k for every key, not scaled, later tokens masked; 3. softmax
key        q·k score weight
───────────────────────────────────────────
0 river   1.00  1.00  0.269 █████▍
1 bank    2.00  2.00  0.731 ██████████████▋
                 sum  1.000

4. weight × value, summed: the output of 'bank'
key       weight w·v[0] w·v[1]
──────────────────────────────
0 river    0.269  0.269  0.000
1 bank     0.731  0.731  0.731
= output          1.000  0.731

where the meaning moved: the 2 nearest words by cosine (own word left out)
bold: new after attention · cos: cosine of the token's input and output vectors
token     before attention after attention   cos
────────────────────────────────────────────────
1 bank    the, river       the, river      0.988

"""


def test_golden_summary_focus_and_neighbors_of_a_hand_computed_case(tiny):
    options = InspectOptions(scale=False, causal=True, focus="bank", neighbors=2)
    inspection = inspect_sentence("River bank!", tiny, identity(), options)
    console = Console(width=80, file=io.StringIO(), color_system=None, highlight=False)
    console.print(Group(*summary_table(inspection, 0), *focus_renderables(inspection, 6, 80), *neighbors_table(inspection)))
    assert without_trailing_spaces(console.file.getvalue()) == GOLDEN


def test_bars_are_drawn_to_an_eighth_of_a_cell():
    assert bar(0.0) == "" and bar(1.0) == "█" * 20 and bar(0.5) == "█" * 10
    assert bar(0.269) == "█████▍"  # 0.269 * 160 = 43 eighths = 5 cells and 3 eighths
    assert bar(0.731, width=4) == "██▉"


def test_a_long_focus_view_fits_80_columns(glove):
    options = InspectOptions(heads=2, causal=True, focus="bank", neighbors=5)
    text = render(inspect_sentence("The bank raised its interest rates after the river flooded", glove, identity(), options), dims=12)
    assert max(len(line) for line in text.splitlines()) <= 80
    assert text.count("focus 'bank' (position 1), head") == 2
    assert "components 0-" in text  # 12 components shown in runs that fit


# "the money river bank" and "River bank!" over the tiny vectors, unscaled, bidirectional. In the first,
# bank's q.k with the, money, river, bank = [1, 1, 1, 2]: weights [1, 1, 1, e] / (3 + e) = .175 x 3, .475;
# the output .175 * [1.5, 1.5] + .475 * [1, 1] points where bank does (cos 1). In the second [1, 2]:
# .269, .731, output [1, .731], cos with bank 1.731 / (1.414 * 1.239) = .988. Each section of the
# shorter side starts on the line of its fellow.
COMPARISON = """\
'bank' in two contexts
tiny · 1 head · identity projections

 first sentence                           second sentence
────────────────────────────────────────────────────────────────────────────────
 the money river bank                     River bank!

 head 0 of 1: weights of 'bank'           head 0 of 1: weights of 'bank'
 0 the     0.175 ██▏                      0 river   0.269 ███▎
 1 money   0.175 ██▏                      1 bank    0.731 ████████▊
 2 river   0.175 ██▏
 3 bank    0.475 █████▊

 before the, river                        before the, river
 after  the, river                        after  the, river
 cos(input, output) 1.0000                cos(input, output) 0.9881
cosine of the two contextualized 'bank' vectors: 0.9881  (their inputs: 1.0000)
"""


def test_compare_keeps_the_two_sentences_sections_side_by_side(tiny):
    from attnviz_cli.pipeline import compare_sentences
    from attnviz_cli.render_explain import comparison_renderables

    options = InspectOptions(scale=False, focus="bank", neighbors=2)
    comparison = compare_sentences("the money river bank", "River bank!", tiny, identity(), options)
    console = Console(width=80, file=io.StringIO(), color_system=None, highlight=False)
    console.print(comparison_renderables(comparison))
    assert without_trailing_spaces(console.file.getvalue()) == COMPARISON

"""``attn demo``: a guided, deterministic tour for classrooms and CI logs.

Three stops: one word in two contexts; a tiny example worked by hand (three 4-d inputs and 4x3 query,
key and value matrices, as in the article the tool grew from); two heads on a real sentence. The same
output every run: no randomness, only the shipped vectors.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from .analysis import cosine
from .errors import printable
from .pipeline import compare_sentences, inspect_sentence
from .projections import Projections, identity
from .render_explain import comparison_renderables, focus_renderables, summary_table
from .render_table import scores_tables, weights_tables
from .results import Comparison, Inspection, InspectOptions
from .vectors import Embeddings

if TYPE_CHECKING:
    from .models import Model
    from .models.pipeline import ModelInspection
    from .models.words import WordComparison

# The worked example of "Illustrated self-attention": three inputs and the three weight matrices.
TINY_INPUTS = np.array([[1, 0, 1, 0], [0, 2, 0, 2], [1, 1, 1, 1]], dtype=np.float64)
TINY_WQ = np.array([[1, 0, 1], [1, 0, 0], [0, 0, 1], [0, 1, 1]], dtype=np.float64)
TINY_WK = np.array([[0, 0, 1], [1, 1, 0], [0, 1, 0], [1, 1, 0]], dtype=np.float64)
TINY_WV = np.array([[0, 2, 0], [0, 3, 0], [1, 0, 3], [1, 1, 0]], dtype=np.float64)


def _heading(number: int, title: str, text: str) -> list[RenderableType]:
    return [Text(f"{number}. {title}", style="bold underline"), Text(text), Text()]


def _matrix(title: str, rows: list[str], matrix: np.ndarray) -> Table:
    table = Table(title=title, title_justify="left", box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False, show_header=False)
    table.add_column("", style="dim")
    for _ in range(matrix.shape[1]):
        table.add_column("", justify="right")
    for name, row in zip(rows, matrix, strict=True):
        table.add_row(name, *(f"{v:g}" for v in row))
    return table


TITLE = "attnviz demo: what self-attention does to a word"
STOPS = (  # each stop of the tour: its title and what it says, in the terminal and in Markdown alike
    ("One word, two contexts", (
        "'bank' goes into attention as one and the same GloVe vector in both sentences. Attention mixes in "
        "a little of every other word, weighted by similarity, so it comes out as two different vectors, "
        "each pulled towards its own context."
    )),
    ("A tiny example, by hand", (
        "Three inputs of 4 numbers, and 4x3 matrices that turn each input into a query, a key and a value "
        "(q = x Wq, ...). Scores are q·k (not scaled here, as in the article), the softmax turns a row of "
        "scores into weights that sum to 1, and the output is the weighted sum of the values."
    )),
    ("Several heads on a real sentence", (
        "With 2 heads each word's 50 GloVe numbers are split in two halves, and each head attends using its "
        "own half: the heads can weigh the context differently."
    )),
)
ROUNDED = "The article rounds these weights to [0, 0.5, 0.5] and the output to [2, 7, 1.5]."
TINY_NAMES = ["input 1", "input 2", "input 3"]
W_ROWS = [f"row {i}" for i in range(4)]


def tiny_matrices(tiny: Inspection) -> list[tuple[str, list[str], np.ndarray]]:
    """The worked example's matrices in the order the tour shows them: (title, row names, matrix)."""
    attention = tiny.matrices("the demo")
    return [
        ("inputs x", TINY_NAMES, TINY_INPUTS), ("Wq", W_ROWS, TINY_WQ), ("Wk", W_ROWS, TINY_WK), ("Wv", W_ROWS, TINY_WV),
        ("queries Q = x Wq", TINY_NAMES, attention.queries[0]), ("keys K = x Wk", TINY_NAMES, attention.keys[0]),
        ("values V = x Wv", TINY_NAMES, attention.values[0]),
    ]


PULLED = ("money", "river")  # the words whose cosine with 'bank' the first stop shows


@dataclass(frozen=True, slots=True, eq=False)
class Tour:
    """What ``attn demo`` shows, computed: 'bank' in two sentences and its cosine with a few words,
    the tiny worked example, and two heads on a real sentence."""

    comparison: Comparison  # 'bank' beside 'river' and beside 'money'
    pulls: tuple[tuple[str, tuple[float, ...]], ...]  # each of PULLED: its cosine with 'bank' as input, after sentence 1, after 2
    tiny: Inspection  # the worked example (its matrices kept)
    heads: Inspection  # two heads on a real sentence


def tour_of(glove: Embeddings) -> Tour:
    """Run the tour's sentences over ``glove`` and the tiny example."""
    comparison = compare_sentences(
        "I sat on the river bank", "I deposited money at the bank", glove, identity(), InspectOptions(focus="bank", neighbors=5)
    )
    (a, b), (pa, pb) = comparison.sides, comparison.positions
    vectors = [a.inputs[pa], a.attention.output[pa], b.attention.output[pb]]
    pulls = []
    for word in PULLED:
        other = glove.vectors[glove.index[word]].astype(np.float64)
        pulls.append((word, tuple(cosine(v.astype(np.float64), other) for v in vectors)))
    tiny_words = Embeddings(name="tiny", vectors=TINY_INPUTS, words=["x1", "x2", "x3"], index={"x1": 0, "x2": 1, "x3": 2}, lowercase=True)
    weights = Projections(kind="weights", wq=TINY_WQ, wk=TINY_WK, wv=TINY_WV)
    tiny = inspect_sentence("x1 x2 x3", tiny_words, weights, InspectOptions(scale=False, focus="x1"))
    heads = inspect_sentence("The bank raised interest rates after the river flooded", glove, identity(), InspectOptions(heads=2))
    return Tour(comparison, tuple(pulls), tiny, heads)


def _pull_table(pulls: tuple[tuple[str, tuple[float, ...]], ...]) -> Table:
    """The cosine of the focus word with a few words: as input, and after attention in each sentence."""
    table = Table(title="cosine of 'bank' with ...", title_justify="left", box=box.SIMPLE_HEAD, show_edge=False, header_style="bold")
    for label in ("", "as input", "after sentence 1", "after sentence 2"):
        table.add_column(label, justify="right" if label else "left")
    for word, cosines in pulls:
        table.add_row(word, *(f"{c:.3f}" for c in cosines))
    return table


def tour(computed: Tour, width: int = 80) -> Group:
    """Everything ``attn demo`` prints, in order."""
    parts: list[RenderableType] = [Text(TITLE, style="bold reverse"), Text()]

    parts += _heading(1, *STOPS[0])
    parts += [comparison_renderables(computed.comparison), Text(), _pull_table(computed.pulls), Text()]

    parts += _heading(2, *STOPS[1])
    inspection = computed.tiny
    matrices = [_matrix(*m) for m in tiny_matrices(inspection)]
    parts += [matrices[0], Text(), *matrices[1:4], Text(), *matrices[4:], Text()]
    parts += scores_tables(inspection, 0, width) + weights_tables(inspection, 0, width)
    parts += focus_renderables(inspection, dims=3, width=width)
    parts += [Text(ROUNDED, style="dim"), Text()]

    parts += _heading(3, *STOPS[2])
    for head in range(2):
        parts += weights_tables(computed.heads, head, width) + summary_table(computed.heads, head, width)
    return Group(*parts)


RIVER, MONEY = "I sat on the river bank", "I deposited money at the bank"


@dataclass(frozen=True, slots=True, eq=False)
class ModelTour:
    """What ``attn demo --model M`` shows, computed: the river sentence through the model, 'bank' in
    both sentences, and the head where 'bank' gives 'river' the most weight."""

    result: ModelInspection  # the river sentence, every head's patterns
    comparison: WordComparison  # 'bank' beside 'river' and beside 'money', 3 words listed a layer
    layer: int  # the head where 'bank' looks hardest at 'river'
    head: int
    share: float  # the weight it gives 'river'


def model_tour_of(model: Model) -> ModelTour:
    """Run the tour's sentences through ``model`` and find its head that reads 'river' for 'bank'."""
    from .models.pipeline import ModelShow, inspect_model
    from .models.words import compare_word

    result = inspect_model(RIVER, model, ModelShow())
    comparison = compare_word((result.run, model.run(MONEY)), (RIVER, MONEY), "bank", top_k=3)
    focused = comparison.sides[0]
    target = comparison.words[0].labels.index("river")
    layer, head = np.unravel_index(int(np.argmax(focused.weights[:, :, target])), focused.weights.shape[:2])
    return ModelTour(result, comparison, int(layer), int(head), float(focused.weights[layer, head, target]))


def model_tour(tour: ModelTour, width: int = 80) -> Group:
    """``attn demo --model M``: the same story in a trained transformer. 'bank' beside 'river' and
    beside 'money' drifts apart layer by layer; the head where 'bank' looks hardest at 'river'; and
    every head's sharpness at a glance."""
    from .render_model_table import comparison_renderables, overview
    from .render_table import weight_grid

    result, layer, head = tour.result, tour.layer, tour.head
    c = result.config
    title, stops = model_stops(tour)
    parts: list[RenderableType] = [Text(title, style="bold reverse"), Text()]
    parts += _heading(1, *stops[0])
    parts += [comparison_renderables(tour.comparison, c), Text()]
    parts += _heading(2, *stops[1])
    run = result.run
    parts += [Text(what_the_head_does(tour), style="italic"), Text()]
    parts += [Text("Its weights, each row a token as query:"), Text()]
    parts += weight_grid(run.tokens, run.scores[layer, head], run.attentions[layer, head], f"layer {layer}, head {head} of {c.heads}: weights", width)
    parts.append(Text())
    parts += _heading(3, *stops[2])
    parts += overview(result)
    return Group(*parts)


def model_stops(tour: ModelTour) -> tuple[str, tuple[tuple[str, str], ...]]:
    """The model tour's title and its stops (title, what it says), in the terminal and in Markdown alike."""
    c, layer, head = tour.result.config, tour.layer, tour.head
    return f"attnviz demo: what a trained transformer's attention does to a word ({printable(c.name)})", (
        ("One word, two contexts, layer by layer", (
            f"'bank' enters {c.architecture} as the same embedding in both sentences (cosine 1 at the embeddings). "
            f"Each of its {c.layers} layers lets every token take in the others through {c.heads} heads, and the "
            "two 'bank' vectors drift apart: context has changed what the word means."
        )),
        ("The head that reads 'river' for 'bank'", (
            f"Of all {c.layers * c.heads} heads, layer {layer}, head {head} gives 'river' the most weight from 'bank': "
            f"{tour.share:.2f} of it."
        )),
        ("Every head at a glance", (
            "What each head attends to over the river sentence, from its weights: the token before or after, itself, "
            "the first or last token, punctuation, or broadly. `attn inspect TEXT --model M --layer L --head H` opens one."
        )),
    )


def what_the_head_does(tour: ModelTour) -> str:
    """The tour's chosen head, said plainly (:func:`_what_the_head_does`)."""
    labelled = tour.result.heads
    return _what_the_head_does(str(labelled.labels[tour.layer, tour.head]), float(labelled.values[tour.layer, tour.head]), "river", "bank")


def _what_the_head_does(label: str, share: float, key: str, query: str) -> str:
    """A plain sentence on a head's pattern (:mod:`.models.heads`), so the tour does not overclaim: a
    head in which nearly every token looks at the one before it gives 'river' to 'bank' for its place,
    not its meaning."""
    if label == "previous":
        return (f"Look at the whole head: the tokens put {share:.2f} of their weight on the token just before "
                f"them (a 'previous-token' head, as Clark et al. 2019 found in BERT). '{query}' reads '{key}' here "
                f"because '{key}' comes right before it: position, learned, rather than meaning.")
    return f"Other tokens in this head look elsewhere (its pattern: {label}): it is '{query}' in particular that reads '{key}'."

"""Inspection -> Rich renderables: per-head score and weight tables, then the contextualized vectors.

Returns objects and prints nothing. Every piece of user text (sentence, tokens, file names) becomes a
``rich.text.Text`` after :func:`printable`, so it is never parsed as markup nor sent as control codes.
Cells have fixed widths, so numbers are never cut; a sentence too long for the width is shown in runs
of key columns (``keys 0-9``, ``keys 10-19``) rather than squeezed.
"""

from __future__ import annotations

import bisect
from collections.abc import Sequence

import numpy as np
from rich.color import Color
from rich.console import Group, RenderableType
from rich.style import Style
from rich.text import Text

from .render_explain import focus_renderables, neighbors_table, summary_table
from .render_grid import Grid
from .render_parts import (
    LABEL_WIDTH,
    MASKED,
    SUBWORD_MARK,
    Fields,
    cells_width,
    column_chunks,
    format_score,
    format_value,
    key_columns,
    label_width,
    largest,
    safe,
    token_label,
)
from .results import Inspection, hidden_weight, shown_positions

MATRIX_TOKENS = 60  # past this, tables leave out the T x T matrices (runs of columns nobody reads)
SCORE_WIDTH = 5  # "-0.12", "12.3"
WEIGHT_WIDTH = 4  # "0.43"
VALUE_WIDTH = 6  # "-0.418"
# The weights heatmap: twelve steps along viridis, each an xterm-256 colour, so a 256-colour terminal shows the
# same steps as a truecolor one (a smooth scale there collapses 0 to 0.14 into one purple). The steps are
# finer at the low end, where most attention weights are: 0.01 and 0.11 fall three steps apart.
HEAT_EDGES = (0.02, 0.05, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.65, 0.8, 0.9)  # a weight below edge k takes step k
HEAT_STEPS = (  # xterm-256 colours 53, 54, 24, 25, 31, 37, 72, 77, 113, 149, 184, 220: lighter step by step
    (95, 0, 95), (95, 0, 135), (0, 95, 135), (0, 95, 175), (0, 135, 175), (0, 175, 175),
    (95, 175, 135), (95, 215, 95), (135, 215, 95), (175, 215, 95), (215, 215, 0), (255, 215, 0),
)
DARK_STEPS = 5  # white text on the first five, black on the rest


def heat_style(weight: float) -> Style:
    """Background colour for a weight in [0, 1] (its step of HEAT_STEPS), with a foreground that stays
    readable on it."""
    step = bisect.bisect_right(HEAT_EDGES, weight)
    return Style(bgcolor=Color.from_rgb(*HEAT_STEPS[step]), color="white" if step < DARK_STEPS else "black")


def _table(label: str, width: int) -> Grid:
    """A grid whose first column holds the row labels."""
    table = Grid()
    table.add_column(label, width)
    return table


def _title(text: str, columns: Sequence[int], total: int, what: str = "keys") -> Text:
    """A table's title; with a run of its ``columns`` (positions) less than all ``total``, which run."""
    if len(columns) < total:
        text += f", {what} {columns[0]}-{columns[-1]}"
    return Text(text, style="bold")


def scores_tables(inspection: Inspection, head: int, width: int = 80) -> list[RenderableType]:
    """The scores of one head as they enter the softmax (scaled and masked)."""
    attention = inspection.matrices("the score tables")
    what = "q·k/√d_k" if attention.scale else "q·k"
    title = f"{inspection.config.head_label(head)} scores ({what})"
    return score_grid(inspection.tokens, attention.scores[head], title, width, inspection.subword, inspection.hidden)


def weights_tables(inspection: Inspection, head: int, width: int = 80) -> list[RenderableType]:
    """The softmax weights of one head as a heatmap (see :func:`weight_grid`)."""
    attention = inspection.matrices("the weight tables")
    title = f"{inspection.config.head_label(head)} weights ({inspection.config.weights_kind()}, rows sum to 1)"
    return weight_grid(inspection.tokens, attention.scores[head], attention.weights[head], title, width, inspection.subword, inspection.hidden)


def score_grid(
    tokens: tuple[str, ...], scores: np.ndarray, title: str, width: int = 80, subword: tuple[int, ...] = (),
    hidden: tuple[int, ...] = (),
) -> list[RenderableType]:
    """A (T, T) matrix of scores, queries down and keys across, in runs of key columns that fit; the
    ``hidden`` tokens' rows and columns left out."""
    shown = shown_positions(len(tokens), hidden)
    labels = label_width([tokens[i] for i in shown], width)
    kept = scores[np.ix_(shown, shown)]
    top = largest(kept)  # one precision for the whole table
    cells = [[format_score(score, top) for score in row] for row in kept.tolist()]
    widths, runs = key_columns([tokens[j] for j in shown], cells_width([c for row in cells for c in row], SCORE_WIDTH), width - labels)
    parts: list[RenderableType] = []
    for run in runs:
        table = _table("query", labels)
        for k in run:
            table.add_column(safe(tokens[shown[k]]), widths[k], "right")
        for n, i in enumerate(shown):
            table.add_row(token_label(i, tokens[i], subword), *(cells[n][k] for k in run))
        parts += [_title(title, [shown[k] for k in run], len(shown)), table, Text()]
    return parts


TO_HIDDEN_WIDTH = 7  # "to special tokens" over three lines, above "0.62"


def weight_grid(
    tokens: tuple[str, ...], scores: np.ndarray, weights: np.ndarray, title: str, width: int = 80,
    subword: tuple[int, ...] = (), hidden: tuple[int, ...] = (),
) -> list[RenderableType]:
    """A (T, T) matrix of softmax weights as a heatmap; each row's strongest weight is bold, and named in
    a last column so that it shows without colour too. Masked cells (-inf scores) show as ·. The
    ``hidden`` tokens' rows and columns are left out, nothing renormalised: a column "to special tokens"
    holds each row's weight on them; the strongest key is still the whole row's."""
    masked = np.isneginf(scores)
    strongest = weights.argmax(axis=1)
    shown = shown_positions(len(tokens), hidden)
    to_hidden = hidden_weight(weights, hidden).tolist() if hidden else []
    labels = label_width([tokens[i] for i in shown], width)
    reserved = 2 * labels + 1 + (TO_HIDDEN_WIDTH + 1 if hidden else 0)  # the row labels, strongest and to special
    widths, runs = key_columns([tokens[j] for j in shown], WEIGHT_WIDTH, width - reserved)
    parts: list[RenderableType] = []
    for run in runs:
        last = run is runs[-1]
        table = _table("query", labels)
        for k in run:
            table.add_column(safe(tokens[shown[k]]), widths[k], "right")
        if last and hidden:
            table.add_column("to special tokens", TO_HIDDEN_WIDTH, "right", wrap=True)
        if last:
            table.add_column("strongest", labels)
        for i in shown:
            cells = [_weight_cell(float(weights[i, shown[k]]), masked[i, shown[k]], shown[k] == strongest[i]) for k in run]
            extra: list[str | Text] = [f"{to_hidden[i]:.2f}"] if last and hidden else []
            extra += [Text.assemble("→ ", safe(tokens[strongest[i]]))] if last else []
            table.add_row(token_label(i, tokens[i], subword), *cells, *extra)
        parts += [_title(title, [shown[k] for k in run], len(shown)), table, Text()]
    return parts


def _weight_cell(weight: float, masked: bool, strongest: bool) -> Text:
    if masked:
        return Text(MASKED, style="dim")
    return Text(f"{weight:.2f}", style=heat_style(weight) + Style(bold=strongest))


def vectors_tables(inspection: Inspection, dims: int, width: int = 80) -> list[RenderableType]:
    """The contextualized vectors (the attention output): the first ``dims`` components and the norm."""
    return matrix_tables(inspection, inspection.attention.output, "contextualized vectors (attention output)", dims, width)


def qkv_tables(inspection: Inspection, head: int, dims: int, width: int = 80) -> list[RenderableType]:
    """One head's queries, keys and values (T, d_k) each, as the seed articles draw Q, K and V: the rows
    of the projected vectors that its scores (q·k) and its output (the weighted sum of v) are made of."""
    a, number = inspection.attention, inspection.config.head_label(head)
    return [
        part
        for name, what in (("queries", "Q"), ("keys", "K"), ("values", "V"))
        for part in matrix_tables(inspection, getattr(a, name)[head], f"{number} {name} {what} (the inputs times W_{what})", dims, width, norms=False)
    ]


def matrix_tables(
    inspection: Inspection, matrix: np.ndarray, title: str, dims: int, width: int = 80, norms: bool = True,
) -> list[RenderableType]:
    """Rows of ``matrix`` (T, d), one per token: its first ``dims`` components (and each row's norm), in
    chunks of columns that fit ``width``."""
    output = matrix
    shown = min(dims, output.shape[1])
    labels = label_width(inspection.tokens, width)
    norm = np.linalg.norm(output, axis=1) if norms else np.zeros(0)
    top = max(largest(output[:, :shown]), largest(norm) if norms else 0.0)  # one precision for the whole table
    values = [[format_value(v, top) for v in row] for row in output[:, :shown].tolist()]
    row_norms = [format_value(n, top) for n in norm.tolist()]
    cell = cells_width([v for row in values for v in row] + row_norms, VALUE_WIDTH)
    chunks = column_chunks(shown, cell, width - labels + LABEL_WIDTH, reserved=cell + 1)
    parts: list[RenderableType] = []
    for components in chunks:
        last = components is chunks[-1] and norms
        table = _table("token", labels)
        for k in components:
            table.add_column(f"[{k}]", cell, "right")
        if last:
            table.add_column("norm", cell, "right")
        for i, token in enumerate(inspection.tokens):
            norm = [row_norms[i]] if last else []
            table.add_row(token_label(i, token, inspection.subword), *(values[i][k] for k in components), *norm)
        titled = title if shown == output.shape[1] else f"{title}, {shown} of {output.shape[1]} components (--dims)"
        parts += [_title(titled, components, shown, what="components"), table, Text()]
    return parts


def random_note(dim: int) -> Text:
    """Said once, under the first weights table: why random projections give near-uniform weights."""
    return Text(
        f"random projections: untrained W_Q and W_K make small, similar scores of these {dim}-d vectors, so the "
        "weights are near uniform; learned projections (--weights, --model) are what make a head pick out words.",
        style="dim",
    )


def summary(inspection: Inspection) -> Fields:
    """The sentence, the vectors, and how attention ran over it, one labelled line each."""
    c = inspection.config
    rows: list[tuple[str, Text | str]] = [
        ("sentence", safe(" ".join(inspection.sentence.split()))),  # exact text: JSON
        ("tokens", str(len(inspection.tokens))),
        ("vectors", Text.assemble(safe(c.vectors.name), f" ({c.vectors.dim}d, {c.vectors.vocab_size:,} words)")),
        ("attention", " · ".join(c.attention_parts())),
        ("projections", c.projections_text()),
    ]
    if inspection.subword:
        words = Text(", ").join(safe(f"'{inspection.tokens[p]}' (position {p})") for p in inspection.subword)
        rows.append(("subwords", words.append(f": not in the vocabulary, built from subwords (marked {SUBWORD_MARK} after the position)")))
    if inspection.dropped:
        rows.append(("dropped", Text(", ").join(safe(f"'{d.token}' (position {d.position})") for d in inspection.dropped)))
    return Fields(*rows)


def inspection_renderables(inspection: Inspection, *, dims: int = 6, width: int = 80, qkv: bool = False) -> Group:
    """Everything ``attn inspect`` shows for one inspection, in reading order, laid out for ``width``;
    with ``qkv``, each head's queries, keys and values before its scores."""
    parts: list[RenderableType] = [summary(inspection), Text()]
    T = len(inspection.tokens)
    if T > MATRIX_TOKENS:
        parts += [Text(
            f"{T} tokens: the {T} × {T} score and weight tables are left out past {MATRIX_TOKENS} tokens, where "
            "nobody reads them; below are each query's entropy and top keys. For the full matrices: "
            "-f json (--fields to keep what you need), or --save page.html to explore them.", style="dim",
        ), Text()]
    for head in range(inspection.attention.heads):
        if qkv:
            parts += qkv_tables(inspection, head, dims, width)
        if T <= MATRIX_TOKENS:
            parts += scores_tables(inspection, head, width) + weights_tables(inspection, head, width)
        if head == 0 and inspection.config.projections == "random":
            parts += [random_note(inspection.config.vectors.dim), Text()]
        parts += summary_table(inspection, head, width)
    parts += vectors_tables(inspection, dims, width)
    parts += focus_renderables(inspection, dims, width)
    if inspection.neighbors is not None:
        parts += neighbors_table(inspection, width)
    return Group(*parts)

"""The explaining views as Rich renderables: head summaries, a focus token step by step, neighbours.

Like render_table, it returns objects and prints nothing, and shows user text only through ``safe``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from rich.console import Group, RenderableType
from rich.text import Text

from .errors import counted, printable
from .render_grid import Grid
from .render_parts import MASKED, Fields, cells_width, column_chunks, label_width, safe, token_label
from .results import Comparison, Focus, FocusHead, HeadSummary, Inspection, TokenNeighbors

if TYPE_CHECKING:
    from rich.table import Column, Table

BAR_WIDTH = 20
TABLE_NEIGHBORS = 50  # nearest words a table lists per token; more is for JSON, not for reading
_EIGHTHS = " ▏▎▍▌▋▊▉"


def bar(weight: float, width: int = BAR_WIDTH) -> str:
    """A horizontal bar of ``weight`` x ``width`` cells, drawn to an eighth of a cell."""
    eighths = round(min(max(weight, 0.0), 1.0) * width * 8)
    full, part = divmod(eighths, 8)
    return "█" * full + (_EIGHTHS[part] if part else "")


def _col(header: str, **settings) -> Column:
    """A column that does not wrap unless told to. (Rich's Table is imported only by the views that
    use it, --focus, neighbours and compare: the plain tables of attn inspect are Grids.)"""
    from rich.table import Column

    return Column(header, **({"no_wrap": True} | settings))


def _table(*columns: Column, show_header: bool = True) -> Table:
    from rich import box
    from rich.table import Table

    return Table(*columns, box=box.SIMPLE_HEAD, padding=0, show_edge=False, header_style="bold", show_header=show_header)


# ---- head summaries --------------------------------------------------------------------------------


def summary_table(inspection: Inspection, head: int, width: int = 80) -> list[RenderableType]:
    """Per query: how spread its weights are (entropy in bits) and the keys it weights most, each with
    its position, so that repeated words stay apart ("2 the 0.06 · 5 the 0.06")."""
    summary: HeadSummary = inspection.summaries[head]
    tokens = inspection.tokens
    T = len(tokens)
    title = f"{inspection.config.head_label(head)} summary: mean entropy {float(summary.mean_entropy_bits):.2f} bits"
    if inspection.config.causal:  # query i sees i + 1 keys, so "all alike" differs row by row
        legend = f"entropy: 0 = one key; all keys alike = log₂(i+1) for query i, {math.log2(T):.2f} for the last"
    else:
        legend = f"entropy: 0 = one key; {math.log2(T):.2f} = all {T} keys alike"
    labels = label_width(tokens, width)
    entropies = [f"{e:.2f}" for e in summary.entropy_bits.tolist()]
    tops = []
    for i in range(T):
        keys, weights = summary.top(i)
        tops.append(Text(" · ").join(
            Text.assemble((f"{j} ", "dim"), safe(tokens[j]), f" {w:.2f}") for j, w in zip(keys, weights, strict=True)
        ))
    entropy = cells_width(entropies, len("entropy"))
    room = max(1, width - labels - entropy - 2)  # the top keys wrap in what is left of the width
    table = Grid()
    table.add_column("query", labels)
    table.add_column("entropy", entropy, "right")
    table.add_column("top keys", min(room, max(len("top keys"), *(top.cell_len for top in tops))), wrap=True)
    for i, token in enumerate(tokens):
        table.add_row(token_label(i, token, inspection.subword), entropies[i], tops[i])
    return [Text(title, style="bold"), Text(legend, style="dim"), table, Text()]


# ---- one query, step by step -----------------------------------------------------------------------


def _vector_cells(vector: np.ndarray, components: Sequence[int]) -> list[str]:
    return [f"{vector[c]:.3f}" for c in components]


def focus_step_tables(inspection: Inspection, focus: Focus, step: FocusHead, dims: int, width: int) -> list[RenderableType]:
    """Steps 1 to 4 of one focus token in one head, with the real numbers."""
    tokens, config = inspection.tokens, inspection.config
    d_k, d_v = step.query.shape[0], step.values.shape[1]
    labels = label_width(tokens, width)
    parts: list[RenderableType] = [
        Text(f"focus {printable_token(focus)} (position {focus.position}), {config.head_label(step.head)}", style="bold reverse"),
        Text(),
    ]
    # 1. the query and every key
    rows = [(["q", token_label(focus.position, focus.token)], step.query, "bold")]
    rows += [(["k", token_label(j, token)], step.keys[j], "") for j, token in enumerate(tokens)]
    title = f"1. the query of {printable_token(focus)} and every key"
    parts += _component_tables(title, [_col(""), _col("vector", width=labels)], "[{}]", rows, d_k, dims, width, reserved=2)
    # 2 and 3. dot products, scaling, mask, softmax
    scaled = "÷√d_k" if config.scale else "score"
    table = _table(
        _col("key", width=labels), _col("q·k", justify="right"), _col(scaled, justify="right"),
        _col("weight", justify="right"), _col(""),
    )
    for j, token in enumerate(tokens):
        if step.masked[j]:
            table.add_row(token_label(j, token), f"{step.dots[j]:.2f}", "masked", MASKED, "")
        else:
            table.add_row(token_label(j, token), f"{step.dots[j]:.2f}", f"{step.scores[j]:.2f}", f"{step.weights[j]:.3f}", bar(float(step.weights[j])))
    table.add_row("", "", "sum", f"{step.weights.sum():.3f}", "", style="bold")
    how = f"divided by √{d_k} = {math.sqrt(d_k):.3f}" if config.scale else "not scaled"
    mask = ", later tokens masked" if config.causal else ""
    parts += [Text(f"2. q·k for every key, {how}{mask}; 3. softmax", style="bold"), table, Text()]
    # 4. the weighted sum of the values
    rows = [([token_label(j, token), MASKED if step.masked[j] else f"{step.weights[j]:.3f}"], step.contributions[j], "") for j, token in enumerate(tokens)]
    rows.append((["= output", ""], step.output, "bold"))
    title = f"4. weight × value, summed: the output of {printable_token(focus)}"
    columns = [_col("key", width=labels), _col("weight", justify="right")]
    parts += _component_tables(title, columns, "w·v[{}]", rows, d_v, dims, width, reserved=6)
    return parts


def _component_tables(
    title: str, lead: list[Column], header: str, rows: list[tuple[list, np.ndarray, str]],
    size: int, dims: int, width: int, reserved: int,
) -> list[RenderableType]:
    """Vectors as tables of their first ``dims`` components (of ``size``), in runs that fit ``width``:
    each row is (leading cells, vector, style); ``header`` names a component column ("[{}]")."""
    shown = range(min(dims, size))
    parts: list[RenderableType] = []
    for components in column_chunks(len(shown), 6, width, reserved=reserved):
        cols = [shown[c] for c in components]
        table = _table(*(column.copy() for column in lead), *(_col(header.format(c), justify="right", width=6) for c in cols))
        for cells, vector, style in rows:
            table.add_row(*cells, *_vector_cells(vector, cols), style=style)
        more = f" (components {cols[0]}-{cols[-1]} of {size})" if len(cols) < size else ""
        parts += [Text(title + more, style="bold"), table, Text()]
    return parts


def printable_token(focus: Focus) -> str:
    return "'" + safe(focus.token).plain + "'"


def focus_renderables(inspection: Inspection, dims: int, width: int) -> list[RenderableType]:
    parts: list[RenderableType] = []
    config = inspection.config
    for focus in inspection.focus:
        for step in focus.heads:
            parts += focus_step_tables(inspection, focus, step, dims, width)
        if config.heads > 1 or config.d_out != config.heads * config.d_v:
            parts += [Text("The final output concatenates the heads' outputs (then applies wo, if any).", style="dim"), Text()]
    return parts


# ---- where the meaning moved ------------------------------------------------------------------------


def neighbors_table(inspection: Inspection, width: int = 80) -> list[RenderableType]:
    """Nearest vocabulary words of each token before and after attention, and how far it moved."""
    neighbors: tuple[TokenNeighbors, ...] = inspection.neighbors or ()
    labels = label_width(inspection.tokens, width)
    k = len(neighbors[0].before) if neighbors else 0
    table = _table(
        _col("token", width=labels, overflow="ellipsis"), _col("before attention", no_wrap=False, ratio=1),
        _col("after attention", no_wrap=False, ratio=1), _col("cos", justify="right"),
    )
    shown = min(k, TABLE_NEIGHBORS)
    for t in neighbors:
        before = Text(", ").join(safe(n.word) for n in t.before[:shown])
        seen = {m.word for m in t.before[:shown]}  # once per token: the rendering stays linear in k
        after = Text(", ").join(safe(n.word) if n.word in seen else safe(n.word, "bold") for n in t.after[:shown])
        table.add_row(token_label(t.position, t.token), before, after, f"{t.moved_cosine:.3f}")
    title = Text(f"where the meaning moved: the {shown} nearest words by cosine (own word left out)", style="bold")
    legend = Text("bold: new after attention · cos: cosine of the token's input and output vectors", style="dim")
    more = [Text(f"the first {shown} of {k:,} per token: a table shows no more; -f json has all of them", style="dim")] if shown < k else []
    return [title, legend, *more, table, Text()]


# ---- one word in two sentences ----------------------------------------------------------------------


def _side(inspection: Inspection, position: int) -> list[list[RenderableType]]:
    """One sentence of a comparison, in sections: the sentence, the focus word's weights over its
    tokens in each head, then its neighbours. Each section is a row of the layout, so the two
    sentences' sections start on the same line however long either is."""
    attention, tokens = inspection.matrices("a comparison"), inspection.tokens
    labels = label_width(tokens, 80)  # each side has half of the terminal
    sections: list[list[RenderableType]] = [[safe(" ".join(inspection.sentence.split()), "italic")]]
    for h in range(attention.heads):
        table = _table(_col("key", width=labels, overflow="ellipsis"), _col("weight", justify="right"), _col(""), show_header=False)
        weights = attention.weights[h, position]
        strongest = int(np.argmax(weights))
        for j, token in enumerate(tokens):
            style = "bold" if j in (position, strongest) else ""
            shown = MASKED if np.isneginf(attention.scores[h, position, j]) else f"{weights[j]:.3f}"
            table.add_row(token_label(j, token), shown, bar(float(weights[j]), 12), style=style)
        sections.append([Text(f"{inspection.config.head_label(h)}: weights of '{safe(tokens[position]).plain}'", style="bold"), table])
    if inspection.neighbors:
        (moved,) = inspection.neighbors
        sections.append([
            Fields(
                ("before", Text(", ").join(safe(n.word) for n in moved.before)),
                ("after", Text(", ").join(safe(n.word) for n in moved.after)), indent=7,
            ),
            Text(f"cos(input, output) {moved.moved_cosine:.4f}", style="dim"),
        ])
    return sections


def comparison_renderables(comparison: Comparison) -> Group:
    """The two sentences side by side, section beside section, and how far apart the word ends up."""
    from rich import box
    from rich.table import Table

    a, b = comparison.sides
    word = safe(a.tokens[comparison.positions[0]]).plain
    layout = Table(box=box.SIMPLE_HEAD, show_edge=False, padding=(0, 1), expand=True, header_style="bold")
    layout.add_column("first sentence", ratio=1)
    layout.add_column("second sentence", ratio=1)
    first, second = _side(a, comparison.positions[0]), _side(b, comparison.positions[1])
    for n, (left, right) in enumerate(zip(first, second, strict=True)):  # the same heads, neighbours on both or neither
        gap = [Text()] if n + 1 < len(first) else []  # a blank line after each section but the last
        layout.add_row(Group(*left, *gap), Group(*right, *gap))
    c = a.config
    how = f"{printable(c.vectors.name)} · {counted(c.heads, 'head')} · {c.projections} projections" + (" · causal" if c.causal else "")
    verdict = Text.assemble(
        ("cosine of the two contextualized ", "bold"), (f"'{word}'", "bold"), (" vectors: ", "bold"),
        (f"{comparison.output_cosine:.4f}", "bold"), f"  (their inputs: {comparison.input_cosine:.4f})",
    )
    parts: list[RenderableType] = [Text(f"'{word}' in two contexts", style="bold reverse"), Text(how, style="dim"), Text(), layout, verdict]
    if a.neighbors is None:
        parts.append(Text("(nearest words need identity projections: the outputs are not in the embedding space)", style="dim"))
    return Group(*parts)

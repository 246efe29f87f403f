"""``attn demo -f markdown``: the tours of :mod:`.demo` (static, and --model's) as GitHub-flavoured
Markdown, stop by stop with the same words as in the terminal, for an issue or a CI job summary."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from .analysis import entropy_bits
from .demo import ROUNDED, STOPS, TITLE, Tour, model_stops, tiny_matrices, what_the_head_does
from .render_markdown import inspection_markdown, md_escape, md_row, weight_lines
from .render_markdown_views import HEADS_LEGEND, comparison_markdown, heads_lines, model_comparison_markdown

if TYPE_CHECKING:
    from .analysis import entropy_bits
from .demo import ModelTour


def _stop(number: int, title: str, text: str) -> list[str]:
    """A stop's heading and what it says (the tour's own words, Markdown already: `code` stays code)."""
    return [f"### {number}. {title}", "", text, ""]


def _matrix(title: str, rows: list[str], matrix: np.ndarray) -> list[str]:
    """A small matrix of the worked example, its title in the corner cell."""
    lines = [md_row([title, *(f"[{k}]" for k in range(matrix.shape[1]))]), md_row(["---", *(["---:"] * matrix.shape[1])])]
    return lines + [md_row([name, *(f"{v:g}" for v in row)]) for name, row in zip(rows, matrix, strict=True)] + [""]


def tour_markdown(tour: Tour) -> str:
    """``attn demo -f markdown``: the three stops of the static tour."""
    lines = [f"## {TITLE}", "", *_stop(1, *STOPS[0]), comparison_markdown(tour.comparison, level=4)]
    lines += [md_row(["cosine of 'bank' with", "as input", "after sentence 1", "after sentence 2"]), md_row(["---", "---:", "---:", "---:"])]
    lines += [md_row([word, *(f"{c:.3f}" for c in cosines)]) for word, cosines in tour.pulls] + [""]
    lines += _stop(2, *STOPS[1])
    for matrix in tiny_matrices(tour.tiny):
        lines += _matrix(*matrix)
    lines += [inspection_markdown(tour.tiny, dims=3, level=4) + ROUNDED, ""]
    lines += [*_stop(3, *STOPS[2]), inspection_markdown(tour.heads, dims=3, level=4)]
    return "\n".join(lines)


def model_tour_markdown(tour: ModelTour) -> str:
    """``attn demo --model M -f markdown``: the three stops of the model's tour."""
    from .render_model_json import patterns_records

    result, layer, head = tour.result, tour.layer, tour.head
    c, run = result.config, result.run
    title, stops = model_stops(tour)
    lines = [f"## {md_escape(title)}", "", *_stop(1, *stops[0]), model_comparison_markdown(tour.comparison, c, level=4)]
    lines += [*_stop(2, *stops[1]), f"*{md_escape(what_the_head_does(tour))}*", ""]
    lines += [f"#### Layer {layer}, head {head} of {c.heads}: weights, each row a token as query", ""]
    weights = run.attentions[layer, head]
    lines += [*weight_lines(run.tokens, run.scores[layer, head], weights, entropy_bits(weights)), ""]
    by_head = patterns_records(result.heads)
    lines += _stop(3, *stops[2])
    lines += [*heads_lines([{"layer": i, "head": h, **entry} for i, heads in enumerate(by_head) for h, entry in enumerate(heads)]), "", HEADS_LEGEND, ""]
    return "\n".join(lines)

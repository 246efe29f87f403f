"""``compare`` (static and --model) and ``heads`` as GitHub-flavoured Markdown, for issues and CI job
summaries: what their terminal tables say, as pipe tables. Numbers are rounded for reading as the
tables round them (JSON has them exact); user text is escaped as :func:`.render_markdown.md_escape` does.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from .render_markdown import MASKED, md_escape, md_label, md_row
from .results import NORM_HEADER, Comparison, Inspection, hidden_weight

if TYPE_CHECKING:
    from .models import ModelConfig
    from .models.words import FocusedWord, WordComparison, Words


def _one_line(text: str) -> str:
    return md_escape(" ".join(text.split()))


def comparison_markdown(comparison: Comparison, level: int = 3) -> str:
    """``attn compare -f markdown``: per sentence, the word's weight on each token in every head
    (the strongest in bold) and its nearest words; then how far apart its two vectors end up.
    ``level`` is the heading level of the title (the demo puts it under its own)."""
    a = comparison.sides[0]
    word = "'" + md_escape(a.tokens[comparison.positions[0]]) + "'"
    c = a.config
    how = [c.vectors.name, f"{c.heads} head{'s' if c.heads > 1 else ''}", f"{c.projections} projections", *(["causal"] if c.causal else [])]
    lines = [f"{'#' * level} {word} in two contexts", "", " · ".join(md_escape(part) for part in how), ""]
    for name, side, position in zip(("First", "Second"), comparison.sides, comparison.positions, strict=True):
        lines += [f"{'#' * (level + 1)} {name} sentence: {_one_line(side.sentence)}", "", *_side_lines(side, position), ""]
    lines.append(f"**Cosine of the two contextualized {word} vectors: {comparison.output_cosine:.4f}** "
                 f"(their inputs: {comparison.input_cosine:.4f})")
    if a.neighbors is None:
        lines += ["", "(Nearest words need identity projections: the outputs are not in the embedding space.)"]
    return "\n".join(lines) + "\n"


def _side_lines(inspection: Inspection, position: int) -> list[str]:
    """One sentence of a comparison: a row per key, a column per head of the word's weights."""
    attention, tokens = inspection.matrices("a comparison"), inspection.tokens
    c = inspection.config
    heads = range(attention.heads)
    lines = [md_row(["key", *(c.head_label(h) for h in heads)]), md_row(["---", *(["---:"] * attention.heads)])]
    strongest = [int(np.argmax(attention.weights[h, position])) for h in heads]
    for j, token in enumerate(tokens):
        cells = []
        for h in heads:
            weight = f"{attention.weights[h, position, j]:.3f}"
            cells.append(MASKED if np.isneginf(attention.scores[h, position, j]) else f"**{weight}**" if j == strongest[h] else weight)
        key = md_label(j, token, inspection.subword)
        lines.append(md_row([f"**{key}**" if j == position else key, *cells]))
    if inspection.neighbors:
        (moved,) = inspection.neighbors
        lines += [
            "", f"- nearest words before attention: {', '.join(md_escape(n.word) for n in moved.before)}",
            f"- after: {', '.join(md_escape(n.word) for n in moved.after)}", f"- cos(input, output) {moved.moved_cosine:.4f}",
        ]
    return lines


def model_comparison_markdown(comparison: WordComparison, config: ModelConfig, level: int = 3) -> str:
    """``attn compare --model -f markdown``: the two texts, then per layer the cosine between the word's
    two vectors and the words it looks at most in each text (its weights averaged over the layer's heads)."""
    a, b = comparison.sides
    lines = [f"{'#' * level} How far apart '{md_escape(a.label)}' ends up, layer by layer", ""]
    for name, text, side in zip(("First", "Second"), comparison.texts, comparison.sides, strict=True):
        lines.append(f"- {name}: {_one_line(text)} ({md_escape(side.label)} at token {', '.join(map(str, side.tokens))})")
    lines += [f"- Model: {md_escape(config.name)} · {config.architecture} · {config.layers} layers × {config.heads} heads"]
    if comparison.weighting != "attention":
        lines.append(f"- Weighting: {NORM_HEADER}: each weight times the norm of the vector its head moves from that key, rows renormalised to sum to 1")
    lines.append("")
    lines += ["Cosine: between its two vectors (1 = the same direction); words: where it looks in each text, "
              "mean over the layer's heads" + ("; special tokens are left out of the words (--hide-special), their weight said apart"
                                              if any(comparison.hidden) else "") + ".", ""]
    lines += [md_row(["layer", "cosine", "first text looks at", "second text looks at"]), md_row(["---:", "---:", "---", "---"])]
    lines.append(md_row(["emb", f"{comparison.cosines[0]:.3f}", "(before any attention)", ""]))
    for i in range(config.layers):
        lines.append(md_row([str(i), f"{comparison.cosines[i + 1]:.3f}", _looks(a, comparison.words[0], i, comparison.hidden[0]),
                                 _looks(b, comparison.words[1], i, comparison.hidden[1])]))
    return "\n".join(lines) + "\n"


def _looks(f: FocusedWord, words: Words, layer: int, hidden: tuple[int, ...] = ()) -> str:
    mean = f.head_mean[layer]
    listed = " · ".join(f"{md_escape(words.labels[u])} {mean[u]:.2f}" for u in f.top_of_mean[layer].tolist())
    return f"{listed} · to special tokens {hidden_weight(mean, hidden):.2f}" if hidden else listed


HEADS_COLUMNS = ("layer", "head", "label", "share", "prev", "next", "self", "first", "last", "punct", "bits", "spread", "dist")


HEADS_LEGEND = (
    "Prev … punct: the mean weight a query gives the token before it, after it, itself, the first and last tokens, "
    "and punctuation; label: the pattern with at least half the weight, else broad (spread ≥ 0.5) or other; "
    "bits: entropy; spread: entropy over its most (0 = one key, 1 = even); dist: tokens between query and key."
)


def heads_markdown(record: dict[str, Any]) -> str:
    """``attn heads -f markdown``: what went in, then per layer and head its label and every mean
    (of a :func:`~.render_model_json.heads_record`); no timing, so the same corpus gives the same bytes."""
    model = record["config"]["model"]
    skipped = f"; {record['skipped']:,} skipped" if record["skipped"] else ""
    lines = [
        f"### Heads of {md_escape(model['name'])}", "",
        f"{model['architecture']}, {model['layers']} layers × {model['heads']} heads · "
        f"{record['texts']:,} texts ({record['tokens']:,} tokens{skipped}); means over the texts, each text counting once", "",
        *heads_lines(record["heads"]), "", HEADS_LEGEND,
    ]
    return "\n".join(lines) + "\n"


def heads_lines(heads: list[dict[str, Any]]) -> list[str]:
    """A table row per head: its layer, number, label and the numbers behind it (entries as
    :func:`~.render_model_json.patterns_records` makes them, with ``layer`` and ``head``)."""
    from .models.heads import PATTERNS

    lines = [md_row(list(HEADS_COLUMNS)), md_row(["---:", "---:", "---", *(["---:"] * (len(HEADS_COLUMNS) - 3))])]
    for entry in heads:
        lines.append(md_row([
            str(entry["layer"]), str(entry["head"]), entry["label"],
            "" if entry["share"] is None else f"{entry['share']:.2f}",
            *(f"{entry['shares'][p]:.2f}" for p in PATTERNS),
            f"{entry['entropy_bits']:.2f}", f"{entry['spread']:.2f}", f"{entry['distance']:.2f}",
        ]))
    return lines

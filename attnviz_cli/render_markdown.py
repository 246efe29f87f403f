"""Inspection -> GitHub-flavoured Markdown: per head, the scores and weights; then the vectors.

For CI job summaries and docs. Numbers are rounded for reading (JSON has them exact); user text is
escaped so it can never become Markdown, HTML or a terminal control code.
"""

from __future__ import annotations

import re

import numpy as np

from .errors import printable
from .results import Focus, Inspection, TokenNeighbors, hidden_weight, shown_positions

MASKED = "·"
_SPECIAL = re.compile(r"([\\`*_\[\]<>|~])")  # what can start emphasis, code, links, HTML or a cell


def md_escape(text: str) -> str:
    """``text`` with control characters shown as escapes, & as an entity, and Markdown punctuation
    backslashed, so a token can never become emphasis, a link, HTML or a new table cell."""
    return _SPECIAL.sub(r"\\\1", printable(text).replace("&", "&amp;"))


def md_row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def md_label(i: int, token: str, subword: tuple[int, ...]) -> str:
    """ "3 bank", or "3\\~bank" for a token built from subwords, as the terminal tables mark it."""
    return f"{i}\\~{md_escape(token)}" if i in subword else f"{i} {md_escape(token)}"


def _matrix(
    tokens: tuple[str, ...], cells: list[list[str]], subword: tuple[int, ...] = (),
    extra_headers: tuple[str, ...] = (), extra: list[list[str]] | None = None, shown: list[int] | None = None,
) -> list[str]:
    """A table of ``cells`` (a row per shown query, a column per shown key: the ``shown`` positions, all
    when None) with ``extra`` columns at its end."""
    shown = list(range(len(tokens))) if shown is None else shown
    header = ["query \\\\ key", *(md_escape(tokens[j]) for j in shown), *extra_headers]
    lines = [md_row(header), md_row(["---", *(["---:"] * len(shown)), *("---" for _ in extra_headers)])]
    for n, i in enumerate(shown):
        lines.append(md_row([md_label(i, tokens[i], subword), *cells[n], *(extra[n] if extra else [])]))
    return lines


def weight_lines(
    tokens: tuple[str, ...], scores: np.ndarray, weights: np.ndarray, entropy: np.ndarray, subword: tuple[int, ...] = (),
    hidden: tuple[int, ...] = (),
) -> list[str]:
    """One head's (T, T) weights as a table: a row per query, the strongest key in bold, masked keys
    shown as ·, and each row's strongest key and entropy (bits) at its end. The ``hidden`` tokens' rows
    and columns are left out, nothing renormalised: a column "to special tokens" holds each row's weight
    on them; the strongest key and the entropy are still the whole row's."""
    masked = np.isneginf(scores)
    strongest = weights.argmax(axis=1)
    shown = shown_positions(len(tokens), hidden)
    cells = [
        [MASKED if masked[i, j] else (f"**{weights[i, j]:.2f}**" if j == strongest[i] else f"{weights[i, j]:.2f}") for j in shown]
        for i in shown
    ]
    to_hidden = hidden_weight(weights, hidden).tolist() if hidden else []
    extra = [[*([f"{to_hidden[i]:.2f}"] if hidden else []), f"{md_escape(tokens[strongest[i]])} ({entropy[i]:.2f} bits)"] for i in shown]
    headers = ("to special tokens", "strongest (entropy)") if hidden else ("strongest (entropy)",)
    return _matrix(tokens, cells, subword, headers, extra, shown)


def inspection_markdown(inspection: Inspection, *, dims: int = 6, level: int = 3) -> str:
    """The Markdown section for one inspection, ending with a blank line; its title a heading of
    ``level`` (its parts one below)."""
    c, tokens = inspection.config, inspection.tokens
    how = [*c.attention_parts(), f"{c.projections} projections" + (f" (seed {c.seed})" if c.seed is not None else "")]
    source = (  # a model's layer attends over that layer's input, not over a vocabulary's vectors
        f"Model {md_escape(c.vectors.name)} ({c.vectors.dim}d)" if c.projections == "learned"
        else f"Vectors {md_escape(c.vectors.name)} ({c.vectors.dim}d, {c.vectors.vocab_size:,} words)"
    )
    part = "#" * (level + 1)
    lines = [f"{'#' * level} {md_escape(' '.join(inspection.sentence.split()))}", "", source + " · " + " · ".join(how), ""]
    if inspection.subword:
        built = ", ".join(f"{md_escape(tokens[p])} at {p}" for p in inspection.subword)
        lines += [f"Built from subwords (not in the vocabulary; marked \\~): {built}", ""]
    if inspection.dropped:
        lines += ["Dropped (not in the vocabulary): " + ", ".join(f"{md_escape(d.token)} at {d.position}" for d in inspection.dropped), ""]
    if inspection.hidden:
        left_out = ", ".join(f"{md_escape(tokens[t])} at {t}" for t in inspection.hidden)
        lines += [f"Special tokens left out of the matrices (--hide-special): {left_out}; 'to special tokens' is each row's weight "
                  "on them, nothing renormalised; the strongest key and the entropy are over the whole row", ""]
    what = "q·k/√d_k" if c.scale else "q·k"
    kept = shown_positions(len(tokens), inspection.hidden)
    attention = inspection.matrices("Markdown")
    for h in range(attention.heads):
        scores, weights = attention.scores[h], attention.weights[h]
        masked = np.isneginf(scores)
        score_cells = [[MASKED if masked[i, j] else f"{scores[i, j]:.2f}" for j in kept] for i in kept]
        head = c.head_label(h).capitalize()
        lines += [f"{part} {head}: scores ({what})", "", *_matrix(tokens, score_cells, inspection.subword, shown=kept), ""]
        lines += [f"{part} {head}: weights ({c.weights_kind()}; strongest in bold)", ""]
        lines += [*weight_lines(tokens, scores, weights, inspection.summaries[h].entropy_bits, inspection.subword, inspection.hidden), ""]
    output = attention.output
    shown = min(dims, output.shape[1])
    lines += [f"{part} Contextualized vectors ({shown} of {output.shape[1]} components)", ""]
    lines.append(md_row(["token", *(f"[{k}]" for k in range(shown)), "norm"]))
    lines.append(md_row(["---", *(["---:"] * (shown + 1))]))
    for i, token in enumerate(tokens):
        lines.append(md_row([md_label(i, token, inspection.subword), *(f"{v:.3f}" for v in output[i, :shown]), f"{np.linalg.norm(output[i]):.3f}"]))
    lines.append("")
    for focus in inspection.focus:
        lines += _focus_lines(inspection, focus, part)
    if inspection.neighbors is not None:
        lines += _neighbors_lines(inspection.neighbors, part)
    return "\n".join(lines) + "\n"


def _focus_lines(inspection: Inspection, focus: Focus, part: str = "####") -> list[str]:
    """--focus: where the token's query looks in each head, key by key (JSON has every vector)."""
    c, tokens = inspection.config, inspection.tokens
    scaled = "÷√d_k" if c.scale else "score"
    lines = []
    for step in focus.heads:
        lines += [f"{part} Focus {md_escape(focus.token)} (position {focus.position}), {c.head_label(step.head)}", ""]
        lines += [md_row(["key", "q·k", scaled, "weight"]), md_row(["---", "---:", "---:", "---:"])]
        for j, token in enumerate(tokens):
            score, weight = (MASKED, MASKED) if step.masked[j] else (f"{step.scores[j]:.2f}", f"{step.weights[j]:.3f}")
            lines.append(md_row([md_label(j, token, inspection.subword), f"{step.dots[j]:.2f}", score, weight]))
        lines.append("")
    return lines


def _neighbors_lines(neighbors: tuple[TokenNeighbors, ...], part: str = "####") -> list[str]:
    """--neighbors: each token's nearest words before and after attention, and how far it moved."""
    k = len(neighbors[0].before) if neighbors else 0
    lines = [f"{part} Where the meaning moved ({k} nearest words by cosine)", ""]
    lines += [md_row(["token", "before attention", "after attention", "cos(input, output)"]), md_row(["---", "---", "---", "---:"])]
    for t in neighbors:
        before, after = (", ".join(md_escape(n.word) for n in found) for found in (t.before, t.after))
        lines.append(md_row([f"{t.position} {md_escape(t.token)}", before, after, f"{t.moved_cosine:.3f}"]))
    return [*lines, ""]

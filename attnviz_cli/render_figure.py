"""Inspection -> a matplotlib figure of the attention weights (SVG, PNG or PDF), one panel per head.

matplotlib is imported here and only here (``attn inspect --save``), through its object-oriented API
(``Figure``, no pyplot): no global figure state and no GUI backend. Output is reproducible byte for
byte: no dates in the metadata, fixed SVG ids, text kept as text in SVG and PDF so that it stays
editable in a paper.
"""

from __future__ import annotations

import math
import textwrap
from pathlib import Path

import numpy as np

from .errors import AttnvizError, printable
from .render_head_grid import inputs_text, probe_matrix
from .results import NORM_HEADER, Inspection, hidden_weight, shown_positions

VALUES_UP_TO = 12  # tokens: up to this many, each cell shows its weight
MAX_COLUMNS = 4  # panels per row for many heads
MAX_PANEL_INCHES = 12.0  # a panel never grows past this: at 200 dpi a figure stays far below 2^16 pixels
TITLE_CHARS = 90
TITLE_CHARS_PER_INCH = 12  # of the 10 pt title, with room to spare


def _matplotlib():
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError as error:
        raise AttnvizError("--save .svg/.png/.pdf needs matplotlib, which attnviz depends on but cannot import here: pip install matplotlib") from error
    return matplotlib, Figure


def grid(heads: int) -> tuple[int, int]:
    """(rows, columns) of panels: one row up to MAX_COLUMNS heads, then as few rows as that allows,
    their panels shared out evenly (5 heads: 2 rows of 3, 8 heads: 2 rows of 4)."""
    rows = math.ceil(heads / MAX_COLUMNS)
    return rows, math.ceil(heads / rows)


def shortened(text: str, limit: int = TITLE_CHARS) -> str:
    """``text`` on one line, printable (control characters shown as \x1b, never drawn), and cut to
    ``limit`` characters with an ellipsis."""
    line = printable(" ".join(text.split()))
    return line if len(line) <= limit else line[: limit - 1] + "…"


def _style(font_size: float) -> dict:
    """rc settings of every figure: text kept as text in SVG and PDF, fixed SVG ids."""
    return {"svg.fonttype": "none", "svg.hashsalt": "attnviz", "pdf.fonttype": 42, "font.size": font_size}


def _write(figure, path: Path, fmt: str, dpi: int) -> None:
    """Write ``figure`` with no dates and no version stamps beyond matplotlib's own: the same inputs
    give the same bytes."""
    metadata = {"svg": {"Date": None}, "pdf": {"CreationDate": None}, "png": {"Software": None}}[fmt]
    figure.savefig(path, format=fmt, dpi=dpi, metadata=metadata)


def title(inspection: Inspection, chars: int = TITLE_CHARS) -> str:
    """The sentence (shortened if long) and how attention ran over it, in lines of at most ``chars``
    characters, so that a narrow figure (one head) does not cut its title at the edges."""
    c = inspection.config
    parts = [*c.attention_parts(), f"projections {c.projections_text()}", c.vectors.name]
    if inspection.hidden:
        left_out = " ".join(inspection.tokens[t] for t in inspection.hidden)
        parts.append(f"special tokens left out ({left_out}), rows not renormalised")
    lines, line = [f"“{shortened(inspection.sentence, chars - 2)}”"], ""
    for part in parts:
        *whole, rest = textwrap.wrap(printable(part), chars, break_on_hyphens=False) or [""]  # a long path: lines of its own
        if whole or (line and len(line) + 3 + len(rest) > chars):
            lines += [line] if line else []
            lines += whole
            line = rest
        else:
            line = f"{line} · {rest}" if line else rest
    return "\n".join([*lines, line])


def save_figure(inspection: Inspection, path: Path, *, dpi: int = 200, fmt: str | None = None) -> None:
    """Draw the weights of every head and write them to ``path`` in ``fmt`` (else from its extension)."""
    matplotlib, Figure = _matplotlib()
    fmt = fmt or path.suffix.lower().lstrip(".")
    attention, tokens = inspection.attention, inspection.tokens
    T, heads = len(tokens) - len(inspection.hidden), attention.heads  # the rows and columns drawn
    rows, columns = grid(heads)
    cell = 0.42 if T <= VALUES_UP_TO else max(0.12, 5.0 / T)  # inches per cell
    panel = min(max(2.6, T * cell + 1.2), MAX_PANEL_INCHES)  # long inputs: smaller cells, not a huge figure
    width = columns * panel + 1.0
    heading = title(inspection, min(TITLE_CHARS, int(width * TITLE_CHARS_PER_INCH)))
    with matplotlib.rc_context(_style(9)):
        figure = Figure(figsize=(width, rows * panel + 0.9 + 0.175 * (heading.count("\n") - 1)), layout="constrained")
        axes = np.atleast_1d(figure.subplots(rows, columns, squeeze=False).ravel())
        colormap = matplotlib.colormaps["viridis"].with_extremes(bad="#d9d9d9")
        image = None
        for h in range(heads):
            image = _panel(axes[h], inspection, h, colormap)
        for unused in axes[heads:]:
            figure.delaxes(unused)
        bar = figure.colorbar(image, ax=list(axes[:heads]), shrink=0.8, label=f"weight ({inspection.config.weights_kind()}; grey: masked)")
        bar.ax.tick_params(labelsize=8)
        figure.suptitle(heading, fontsize=10, parse_math=False)
        _write(figure, path, fmt, dpi)


def panel_data(inspection: Inspection, h: int) -> tuple[list[int], np.ndarray, np.ndarray, np.ndarray | None]:
    """What one head's panel draws: the positions shown (all but a model's hidden special tokens), their
    weights (float64) and mask, and each shown row's weight on the hidden tokens (None when none are)."""
    attention = inspection.matrices("a figure")
    shown = shown_positions(len(inspection.tokens), inspection.hidden)
    weights = np.asarray(attention.weights[h], dtype=np.float64)
    to_hidden = hidden_weight(weights, inspection.hidden)[shown] if inspection.hidden else None
    return shown, weights[np.ix_(shown, shown)], np.isneginf(attention.scores[h])[np.ix_(shown, shown)], to_hidden


def _panel(ax, inspection: Inspection, h: int, colormap):
    """One head's weights as a heatmap: queries down, keys across, masked cells grey with a cross; with
    hidden special tokens, each row's weight on them at its right, under "to special tokens"."""
    shown, weights, masked, to_hidden = panel_data(inspection, h)
    T = len(shown)
    image = ax.imshow(np.ma.masked_array(weights, masked), cmap=colormap, vmin=0.0, vmax=1.0, interpolation="nearest")
    ax.set_title(inspection.config.head_label(h), fontsize=9)
    labels = [f"{i} {printable(inspection.tokens[i])}" for i in shown] if T <= 40 else None
    if labels:
        ax.set_xticks(range(T), labels, rotation=60, ha="right", rotation_mode="anchor", fontsize=8, parse_math=False)
        ax.set_yticks(range(T), labels, fontsize=8, parse_math=False)
    if to_hidden is not None and T <= 40:
        right = ax.secondary_yaxis("right")
        right.set_yticks(range(T), [f"{w:.2f}" for w in to_hidden.tolist()], fontsize=8)
        right.set_ylabel("to special tokens")
        right.tick_params(length=0)
    ax.set_xlabel("key")
    ax.set_ylabel("query")
    ax.tick_params(length=0)
    if T <= VALUES_UP_TO:
        for i in range(T):
            for j in range(T):
                if masked[i, j]:
                    ax.text(j, i, "×", ha="center", va="center", fontsize=8, color="#7f7f7f")
                else:
                    light = weights[i, j] > 0.55  # viridis turns light about here
                    ax.text(j, i, f"{weights[i, j]:.2f}", ha="center", va="center", fontsize=7,
                            color="black" if light else "white", parse_math=False)
    return image


def save_drift_figure(comparison, config, path: Path, *, dpi: int = 200, fmt: str | None = None) -> None:
    """``attn compare --focus W --model M --save``: the cosine between the word's two contextual vectors
    at the embeddings and after each layer, as a line, with both texts in the title."""
    matplotlib, Figure = _matplotlib()
    fmt = fmt or path.suffix.lower().lstrip(".")
    cosines = np.asarray(comparison.cosines, dtype=np.float64)
    labels = ["emb", *(str(i) for i in range(len(cosines) - 1))]
    texts = [shortened(t) for t in comparison.texts]
    word = printable(comparison.sides[0].label)
    with matplotlib.rc_context(_style(9)):
        figure = Figure(figsize=(6.4, 3.8), layout="constrained")
        ax = figure.subplots()
        ax.plot(range(len(cosines)), cosines, marker="o", color="#21918c")
        for x, y in enumerate(cosines):
            ax.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(0, 7), ha="center", fontsize=8)
        ax.set_xticks(range(len(cosines)), labels)
        ax.set_xlabel("layer (emb: the embeddings, before any attention)")
        ax.set_ylabel("cosine between the two vectors")
        ax.set_ylim(min(float(cosines.min()) - 0.05, 0.95), 1.02)
        ax.grid(True, alpha=0.3)
        figure.suptitle(
            f"“{word}” in two contexts, layer by layer · {printable(config.name)}\n“{texts[0]}” vs “{texts[1]}”",
            fontsize=9, parse_math=False,
        )
        _write(figure, path, fmt, dpi)


def save_model_figure(result, path: Path, *, dpi: int = 200, fmt: str | None = None) -> None:
    """``attn inspect TEXT --model M --layer all --save``: every layer x head as a small heatmap (rows:
    layers, columns: heads), each titled with its pattern and the share of weight behind it."""
    matplotlib, Figure = _matplotlib()
    fmt = fmt or path.suffix.lower().lstrip(".")
    run, config, text = result.run, result.config, result.text
    labels, values = result.heads.labels, result.heads.values
    shown = np.ix_(shown_positions(len(run.tokens), result.hidden), shown_positions(len(run.tokens), result.hidden))
    L, H, T = config.layers, config.heads, len(run.tokens)
    panel = 1.05  # inches: a thumbnail, not a matrix to read
    with matplotlib.rc_context(_style(7)):
        figure = Figure(figsize=(H * panel + 1.2, L * (panel + 0.15) + 1.0), layout="constrained")
        axes = figure.subplots(L, H, squeeze=False)
        colormap = matplotlib.colormaps["viridis"].with_extremes(bad="#d9d9d9")
        image = None
        for i in range(L):
            for h in range(H):
                ax = axes[i, h]
                masked = np.isneginf(run.scores[i, h][shown])
                weights = np.ma.masked_array(np.asarray(run.attentions[i, h][shown], dtype=np.float64), masked)
                image = ax.imshow(weights, cmap=colormap, vmin=0.0, vmax=1.0, interpolation="nearest")
                ax.set_xticks([])
                ax.set_yticks([])
                share = "" if np.isnan(values[i, h]) else f" {values[i, h]:.2f}"
                ax.set_title(f"{labels[i, h]}{share}", fontsize=6.5, pad=2)
                if h == 0:
                    ax.set_ylabel(f"layer {i}", fontsize=7)
                if i == L - 1:
                    ax.set_xlabel(f"head {h}", fontsize=7)
        weighting = "" if result.run.weighting == "attention" else "value-weighted; "  # the title names the paper
        figure.colorbar(image, ax=axes.ravel().tolist(), shrink=0.6, label=f"weight ({weighting}grey: masked)")
        figure.suptitle(
            f"“{shortened(text)}”\n{printable(config.name)} · {config.architecture} · {L} layers × {H} heads · {T} tokens · "
            "each head: queries down, keys across, its pattern above" + hidden_note(result)
            + ("" if result.run.weighting == "attention" else f"\nweights {NORM_HEADER}; patterns over these"),
            fontsize=8, parse_math=False,
        )
        _write(figure, path, fmt, dpi)


def hidden_note(result) -> str:
    """The thumbnails' title line on the special tokens --hide-special left out (none without it)."""
    if not result.hidden:
        return ""
    left_out = " ".join(printable(result.run.tokens[t]) for t in result.hidden)
    return f"\nspecial tokens left out ({left_out}), rows not renormalised; patterns over whole rows"


LABEL_COLOURS = {  # a head's label in the corpus grid: one colour each (tab10), grey for the two that name no key
    "previous": "#1f77b4", "next": "#17becf", "self": "#2ca02c", "first": "#9467bd", "last": "#bcbd22",
    "punctuation": "#d62728", "broad": "#c7c7c7", "other": "#7f7f7f", "sink": "#e377c2",
}


SHORT_LABELS = {"previous": "prev", "punctuation": "punct"}  # as the terminal's grid writes them, to fit a cell


def save_heads_figure(record: dict, path: Path, *, dpi: int = 200, fmt: str | None = None) -> None:
    """``attn heads --save grid.svg|png|pdf``: the layer x head grid of a corpus (an
    ``attnviz.heads/1`` record), each cell coloured by its head's label and showing the share behind it;
    with --probe, a grid of each probe's scores instead."""
    if record.get("probes"):
        save_probes_figure(record, path, dpi=dpi, fmt=fmt)
        return
    matplotlib, Figure = _matplotlib()
    from matplotlib.colors import to_rgb
    from matplotlib.patches import Patch

    fmt = fmt or path.suffix.lower().lstrip(".")
    model = record["config"]["model"]
    L, H = model["layers"], model["heads"]
    colours = np.zeros((L, H, 3))
    with matplotlib.rc_context(_style(7)):
        figure = Figure(figsize=(H * 0.62 + 2.4, L * 0.42 + 1.3), layout="constrained")
        ax = figure.subplots()
        for entry in record["heads"]:
            i, h, label = entry["layer"], entry["head"], entry["label"]
            colours[i, h] = to_rgb(LABEL_COLOURS[label])
            share = "" if entry["share"] is None else f"\n{entry['share']:.2f}"
            ax.text(h, i, f"{SHORT_LABELS.get(label, label)}{share}", ha="center", va="center", fontsize=5.5, color="white" if label != "broad" else "black")
        ax.imshow(colours, interpolation="nearest", aspect="auto")
        ax.set_xticks(range(H), [str(h) for h in range(H)])
        ax.set_yticks(range(L), [str(i) for i in range(L)])
        ax.set_xlabel("head")
        ax.set_ylabel("layer")
        seen = [label for label in LABEL_COLOURS if any(e["label"] == label for e in record["heads"])]
        ax.legend(handles=[Patch(color=LABEL_COLOURS[label], label=label) for label in seen], loc="upper left",
                  bbox_to_anchor=(1.01, 1.0), fontsize=6, frameon=False)
        figure.suptitle(
            f"{shortened(model['name'])} · {L} layers × {H} heads · {record['texts']:,} texts ({record['tokens']:,} tokens)\n"
            "each head's pattern over the corpus, and the share of weight behind it",
            fontsize=8, parse_math=False,
        )
        _write(figure, path, fmt, dpi)


def save_probes_figure(record: dict, path: Path, *, dpi: int = 200, fmt: str | None = None) -> None:
    """``attn heads --probe ... --save grid.svg|png|pdf``: for each probe, the layer x head grid of its
    scores (0 dark, 1 bright; each cell's score written in it)."""
    matplotlib, Figure = _matplotlib()
    fmt = fmt or path.suffix.lower().lstrip(".")
    model = record["config"]["model"]
    L, H = model["layers"], model["heads"]
    probes = record["probes"]
    with matplotlib.rc_context(_style(7)):
        figure = Figure(figsize=(len(probes) * (H * 0.42 + 1.2) + 1.0, L * 0.3 + 1.6), layout="constrained")
        axes = figure.subplots(1, len(probes), squeeze=False)[0]
        for ax, probe in zip(axes, probes, strict=True):
            scores = probe_matrix(record, probe)
            image = ax.imshow(scores, cmap="viridis", vmin=0, vmax=1, interpolation="nearest", aspect="auto")
            for i, h in np.ndindex(L, H):
                ax.text(h, i, f"{scores[i, h]:.2f}".removeprefix("0"), ha="center", va="center", fontsize=4.5,
                        color="black" if scores[i, h] > 0.6 else "white")
            ax.set_title(probe, fontsize=8)
            ax.set_xticks(range(H), [str(h) for h in range(H)])
            ax.set_yticks(range(L), [str(i) for i in range(L)])
            ax.set_xlabel("head")
            ax.set_ylabel("layer")
        figure.colorbar(image, ax=list(axes), shrink=0.6, label="score")
        figure.suptitle(f"{shortened(model['name'])} · {L} layers × {H} heads · {inputs_text(record)}\n"
                        "each head's head-detector score (TransformerLens' mul, BOS excluded)", fontsize=8, parse_math=False)
        _write(figure, path, fmt, dpi)

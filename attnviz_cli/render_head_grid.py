"""Every head of a deep model at 80 columns: a layer a line, a head a two-character cell (a character and a
space, coloured where there is colour), and the top heads listed with their numbers. ``attn heads
--probe`` draws each probe's scores this way. Rich renderables; they compute nothing but the layout."""

from __future__ import annotations

from typing import Any

import numpy as np

WIDTH = 80  # the grid fits this many columns up to 37 heads (6 + 2 a head)
TOP = 10  # heads listed under each grid
PER_LINE = 5  # of them on a line
GRID_PAST = 144  # attn heads' table lists a row a head up to this many heads (BERT-base's 12 x 12); past it, the grid
PATTERN_STYLES = {  # each label its own colour, so a column of alike heads stands out; the words carry it without colour
    "previous": "cyan", "next": "blue", "self": "green", "first": "magenta", "last": "yellow",
    "punctuation": "red", "broad": "dim", "other": "bold", "sink": "bright_magenta",
}
LABEL_CHARS = {  # a head's label in one character, in the grid of labels
    "previous": "p", "next": "n", "self": "s", "first": "f", "last": "l", "punctuation": ",", "sink": "S",
    "broad": "b", "other": "·",
}
STRONGEST = 3  # heads listed for each label under the grid of labels


def score_digit(score: float) -> str:
    """A score in [0, 1] as one character: its tenths (0.93 -> "9", 1.0 -> "9"), "·" under 0.1."""
    tenths = min(9, int(score * 10))
    return "·" if tenths == 0 else str(tenths)


def score_style(score: float) -> str:
    """The cell's colours: a ramp from dark (0) to bright yellow (1); the digit carries it without colour."""
    tenths = min(9, int(score * 10))
    shade = (30 + 22 * tenths, 30 + 19 * tenths, 40 - 4 * tenths)
    return f"{'black' if tenths >= 5 else 'white'} on rgb({shade[0]},{shade[1]},{shade[2]})"


def grid_lines(cells: list[list[tuple[str, str]]], group: int = 1) -> list[Any]:
    """Lines of Text: a header of head numbers (two lines past 10 heads: tens, then units), then one line a
    layer, each cell a (character, style). ``group``: query heads per key/value head; a space between
    groups when the grid still fits :data:`WIDTH`."""
    from rich.text import Text

    heads = len(cells[0]) if cells else 0
    gap = group > 1 and 6 + 2 * heads + heads // group - 1 <= WIDTH

    def line(start: str, parts: list[tuple[str, str]]) -> Any:
        text = Text(start)
        for h, (char, style) in enumerate(parts):
            if gap and h and h % group == 0:
                text.append(" ")
            text.append(char, style)
            text.append(" ")
        text.rstrip()
        return text

    header = [line("L\\H   ", [(str(h % 10), "bold") for h in range(heads)])]  # layers down, heads across
    if heads > 10:
        header.insert(0, line("      ", [(str(h // 10) if h % 10 == 0 else " ", "bold") for h in range(heads)]))
    return [*header, *(line(f"{i:>5} ", row) for i, row in enumerate(cells))]


def probe_matrix(record: dict[str, Any], probe: str) -> np.ndarray:
    """(L, h) each head's score for ``probe`` in an ``attnviz.heads/1`` record made with --probe."""
    model = record["config"]["model"]
    scores = np.zeros((model["layers"], model["heads"]))
    for entry in record["heads"]:
        scores[entry["layer"], entry["head"]] = entry["scores"][probe]
    return scores


def inputs_text(record: dict[str, Any]) -> str:
    """What went into an ``attnviz.heads/1`` record, in words: its texts and tokens (and those skipped), or
    with --probe and no FILE the random sequences the probes built."""
    inputs = record.get("inputs")
    if inputs is None:
        skipped = f"; {record['skipped']:,} skipped" if record["skipped"] else ""
        return f"{record['texts']:,} texts ({record['tokens']:,} tokens{skipped})"
    bos = " after the BOS" if inputs["bos"] else ""
    return (f"{inputs['sequences']:,} random sequences of {inputs['repeats']} × {inputs['length']} tokens{bos} "
            f"(seed {inputs['seed']}, from {inputs['vocabulary']:,} token ids)")


def top_heads(scores: np.ndarray, count: int = TOP) -> list[tuple[int, int, float]]:
    """The ``count`` highest (layer, head, score) of (L, h) ``scores``, highest first (ties: lower layer,
    then lower head)."""
    order = np.argsort(-scores, axis=None, kind="stable")[:count]
    return [(int(k) // scores.shape[1], int(k) % scores.shape[1], float(scores.flat[k])) for k in order]


def top_lines(top: list[tuple[int, int, float]]) -> list[Any]:
    """The top heads, :data:`PER_LINE` a line: "L18 H6  0.89"."""
    from rich.text import Text

    cells = [f"L{i} H{h} {s:.2f}".ljust(15) for i, h, s in top]
    return [Text("".join(cells[k:k + PER_LINE]).rstrip()) for k in range(0, len(cells), PER_LINE)]


def probes_view(record: dict[str, Any], seconds: float) -> Any:
    """``attn heads --probe`` for people: what went in, then for each probe the layer x head grid of
    scores and its top heads."""
    from rich.console import Group
    from rich.text import Text

    from .render_parts import Fields, safe

    model = record["config"]["model"]
    L, H = model["layers"], model["heads"]
    parts: list[Any] = [Fields(
        ("model", Text.assemble(safe(model["name"]), f" ({model['architecture']}, {L} layers × {H} heads)")),
        ("inputs", f"{inputs_text(record)} in {seconds:.1f} s"),
    )]
    group = model["heads"] // model["kv_heads"]
    for probe in record["probes"]:
        scores = probe_matrix(record, probe)
        cells = [[(score_digit(s), score_style(s)) for s in row.tolist()] for row in scores]
        parts += [Text(), Text(f"{probe}: each head's mean score in tenths (9: 0.9 or more; ·: under 0.1)", style="bold"),
                  *grid_lines(cells, group), Text(f"top {min(TOP, L * H)}", style="bold"), *top_lines(top_heads(scores))]
    parts += [Text(), Text(
        "Score: the share of a head's weight, outside the first token, on the keys the probe names (TransformerLens' "
        "head_detector, \"mul\", exclude_bos). induction: the token after an earlier copy of the query's token; "
        "previous: the token just before; duplicate: earlier copies of the query's token.", style="dim")]
    return Group(*parts)


def label_lines(labels: np.ndarray, values: np.ndarray, group: int = 1) -> list[Any]:
    """The layer x head grid of (L, h) ``labels`` (a character each, coloured by label), then for each label
    how many heads have it and its strongest by ``values`` (the share behind each label; NaN for other)."""
    from rich.text import Text

    L, H = labels.shape
    cells = [[(LABEL_CHARS[str(labels[i, h])], PATTERN_STYLES[str(labels[i, h])]) for h in range(H)] for i in range(L)]
    lines: list[Any] = [*grid_lines(cells, group), Text()]
    for label in LABEL_CHARS:
        heads = [(i, h, float(values[i, h])) for i, h in zip(*np.nonzero(labels == label), strict=True)]
        if not heads:
            continue
        strongest = sorted(heads, key=lambda e: (-e[2] if e[2] == e[2] else 1.0, e[0], e[1]))[:STRONGEST]
        listed = "" if label == "other" else ": " + ", ".join(f"L{i} H{h} {share:.2f}" for i, h, share in strongest)
        lines.append(Text.assemble((f"{LABEL_CHARS[label]} {label}", PATTERN_STYLES[label]), f" ({len(heads)}){listed}"))
    return lines


def labels_view(record: dict[str, Any], seconds: float) -> Any:
    """``attn heads`` for a model of more than :data:`GRID_PAST` heads: what went in, the layer x head grid
    of labels (a character each), and for each label how many heads have it and its strongest."""
    from rich.console import Group
    from rich.text import Text

    from .render_parts import Fields, safe

    model = record["config"]["model"]
    L, H = model["layers"], model["heads"]
    skipped = f"; {record['skipped']:,} skipped" if record["skipped"] else ""
    labels = np.full((L, H), "other", dtype="<U11")
    values = np.full((L, H), np.nan)
    for entry in record["heads"]:
        labels[entry["layer"], entry["head"]] = entry["label"]
        values[entry["layer"], entry["head"]] = np.nan if entry["share"] is None else entry["share"]
    return Group(
        Fields(
            ("model", Text.assemble(safe(model["name"]), f" ({model['architecture']}, {L} layers × {H} heads)")),
            ("texts", f"{record['texts']:,} ({record['tokens']:,} tokens{skipped}) in {seconds:.1f} s"),
        ),
        Text(),
        Text("what each head attends to, by label (every number: -f json or -f csv)", style="bold"),
        *label_lines(labels, values, H // model["kv_heads"]),
        Text(),
        Text("Labels as in the table of a smaller model: the pattern whose keys get at least half the weight (its share), "
             "sink when a decoder's later queries give the first token at least half, broad when rows spread at least "
             "halfway to even (its spread), else other; listed with the strongest heads of each.", style="dim"),
    )

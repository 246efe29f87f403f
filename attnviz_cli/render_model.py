"""A model run -> the JSON record of schema ``attnviz.model/1``, and Rich renderables: the run's
header, an overview of every layer and head, and one head's scores and weights."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .analysis import entropy_bits
from .errors import printable
from .models import ModelConfig, ModelRun
from .models.heads import PATTERNS, HeadPatterns, head_labels, run_patterns
from .models.heads import rollout as rolled_out
from .models.words import FocusedWord, WordComparison, Words, cosine, top_words

MODEL_SCHEMA = "attnviz.model/1"
MODEL_COMPARE_SCHEMA = "attnviz.model-compare/1"


def model_record(
    run: ModelRun, config: ModelConfig, text: str, layer: int | None = None, head: int | None = None, rollout: bool = False,
) -> dict[str, Any]:
    """The JSON-ready record of a run (arrays left as NumPy for orjson; masked scores, -inf, become
    null): each head's scores, weights and patterns, each layer's output and, with ``rollout``, its
    attention rollout. ``layer`` and ``head`` keep just that layer and head."""
    layers = range(config.layers) if layer is None else [layer]
    heads = range(config.heads) if head is None else [head]
    patterns = patterns_records(run_patterns(run, text, config.causal))
    rollouts = rolled_out(run.attentions) if rollout else None
    return {
        "schema": MODEL_SCHEMA,
        "text": text,
        "tokens": list(run.tokens),
        "token_ids": run.token_ids,
        "words": list(run.words),
        "special": list(run.special),
        "config": {"model": config_record(config)},
        "embeddings": run.hidden_states[0],
        "layers": [
            {
                "layer": i,
                "heads": [
                    {"head": h, "scores": run.scores[i, h], "weights": run.attentions[i, h], "patterns": patterns[i][h]}
                    for h in heads
                ],
                "output": run.hidden_states[i + 1],
                **({"rollout": rollouts[i]} if rollouts is not None else {}),
            }
            for i in layers
        ],
    }


def patterns_records(patterns: HeadPatterns) -> list[list[dict[str, Any]]]:
    """[layer][head] the JSON of each head's patterns: its label and the number behind it, every
    pattern's share, its entropy, spread and mean distance (``share`` null for "other")."""
    labels, values = head_labels(patterns)
    L, H = labels.shape
    return [
        [
            {
                "label": str(labels[i, h]),
                "share": None if math.isnan(values[i, h]) else float(values[i, h]),
                "shares": dict(zip(PATTERNS, patterns.shares[i, h].tolist(), strict=True)),
                "entropy_bits": float(patterns.entropy_bits[i, h]),
                "spread": float(patterns.spread[i, h]),
                "distance": float(patterns.distance[i, h]),
            }
            for h in range(H)
        ]
        for i in range(L)
    ]


MODEL_FIELDS = ("text", "tokens", "token_ids", "words", "special", "config", "embeddings", "layers", "units", "focus")
LAYER_FIELDS = ("heads.scores", "heads.weights", "heads.patterns", "layers.output", "layers.rollout")  # keep layers with just these


def check_model_fields(fields: tuple[str, ...]) -> None:
    """Refuse a --fields name no model record has (ValueError naming the valid ones)."""
    unknown = [f for f in fields if f not in MODEL_FIELDS + LAYER_FIELDS]
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}; a model record has {', '.join(MODEL_FIELDS + LAYER_FIELDS)}")


def keep_model_fields(record: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """``record`` with just ``fields`` (and its schema); all of it when ``fields`` is empty. A layer
    field (heads.weights, ...) keeps the layers with their numbers and just those parts."""
    if not fields:
        return record
    kept = {name: record[name] for name in ("schema", *fields) if name in record}
    inner = [f for f in fields if f in LAYER_FIELDS]
    if inner:
        head_keys = ["head", *(f.removeprefix("heads.") for f in inner if f.startswith("heads."))]
        kept["layers"] = [
            {"layer": entry["layer"],
             **({"heads": [{k: h[k] for k in head_keys} for h in entry["heads"]]} if len(head_keys) > 1 else {}),
             **({"output": entry["output"]} if "layers.output" in inner else {}),
             **({"rollout": entry["rollout"]} if "layers.rollout" in inner and "rollout" in entry else {})}
            for entry in record["layers"]
        ]
    return kept


def focus_record(focused: list[FocusedWord], words: Words, layer: int | None, head: int | None, top_k: int) -> dict[str, Any]:
    """The ``units`` (the run's words, each special token one of its own) and, per focused word, its
    weights over them in each layer and head, strongest first, and its vector's cosine with its embedding."""
    def entry(f: FocusedWord) -> dict[str, Any]:
        layers = range(f.weights.shape[0]) if layer is None else [layer]
        heads = range(f.weights.shape[1]) if head is None else [head]
        return {
            "word": f.label, "unit": f.unit, "tokens": list(f.tokens),
            "cosine_to_embedding": cosine(f.vectors, f.vectors[0]),
            "layers": [
                {"layer": i, "heads": [
                    {
                        "head": h, "weights": f.weights[i, h], "entropy_bits": float(entropy_bits(f.weights[i, h])),
                        "keys": [{"word": words.labels[u], "unit": u, "weight": float(f.weights[i, h, u])} for u in top_words(f.weights[i, h], top_k)],
                    }
                    for h in heads
                ]}
                for i in layers
            ],
        }

    return {
        "units": [{"word": label, "tokens": list(tokens)} for label, tokens in zip(words.labels, words.tokens, strict=True)],
        "focus": [entry(f) for f in focused],
    }


def focus_renderables(focused: list[FocusedWord], words: Words, layer: int | None, head: int | None, top_k: int) -> list[Any]:
    """For each focused word: in each layer and head, the words it gives most weight to, strongest
    first, and how sharp that head is for it; then how far its vector has moved from its embedding."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from .render_parts import safe

    parts: list[Any] = []
    for f in focused:
        layers = range(f.weights.shape[0]) if layer is None else [layer]
        heads = range(f.weights.shape[1]) if head is None else [head]
        where = ", ".join(str(t) for t in f.tokens)
        parts.append(Text.assemble(("where ", "bold"), safe(repr(f.label), "bold"), (f" (token{'s' if len(f.tokens) > 1 else ''} {where}) looks: its strongest words in each layer and head", "bold")))
        parts.append(Text("weights summed over each word's pieces; bits: the entropy of its weights (0 = all on one word)", style="dim"))
        table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False, header_style="bold")
        table.add_column("layer", justify="right")
        table.add_column("head", justify="right")
        table.add_column("strongest words", overflow="fold")
        table.add_column("bits", justify="right")
        for i in layers:
            for h in heads:
                w = f.weights[i, h]
                keys = Text(" · ").join(
                    Text.assemble(safe(words.labels[u], "bold" if n == 0 else ""), f" {w[u]:.2f}") for n, u in enumerate(top_words(w, top_k))
                )
                table.add_row(str(i) if h == heads[0] else "", str(h), keys, f"{entropy_bits(w):.2f}", end_section=h == heads[-1] and i != layers[-1])
        parts += [table, Text()]
        drift = " · ".join(f"{'emb' if i == 0 else f'L{i - 1}'} {c:.3f}" for i, c in enumerate(cosine(f.vectors, f.vectors[0]).tolist()))
        parts += [Text.assemble(("its vector's cosine with its embedding, layer by layer: ", "bold"), drift), Text()]
    return parts


def model_renderables(
    run: ModelRun, config: ModelConfig, text: str, layer: int | None, head: int | None, width: int = 80,
    focus: tuple[list[FocusedWord], Words, int] | None = None, rollout: bool = False,
):
    """What ``attn inspect --model`` shows: the header, then where the --focus word looks (``focus``:
    the focused words, the run's words and how many to list), one head's matrices (with --layer and
    --head), one layer's heads (with --layer), or an overview of every layer and head; with
    ``rollout``, then the attention rollout through the layer (the last without --layer)."""
    from rich.console import Group
    from rich.text import Text

    from .render_parts import Fields, safe
    from .render_table import score_grid, weight_grid

    marked = ", ".join(f"{i}:{t}" for i, t in enumerate(run.tokens))
    parts: list[Any] = [Fields(
        ("text", safe(" ".join(text.split()))),
        ("model", safe(config.name)),
        ("architecture", f"{config.architecture} · {config.layers} layers × {config.heads} heads · d_model {config.d_model} · {config.dtype}"),
        ("tokens", Text.assemble(f"{len(run.tokens)}: ", safe(marked))),
    ), Text()]
    if focus is not None:
        focused, words, top_k = focus
        parts += focus_renderables(focused, words, layer, head, top_k)
    elif layer is None:
        parts += overview(run, config, text)
    else:
        for h in range(config.heads) if head is None else [head]:
            where = f"layer {layer}, head {h} of {config.heads}"
            parts += score_grid(run.tokens, run.scores[layer, h], f"{where}: scores (q·k/√d_k)", width)
            parts += weight_grid(run.tokens, run.scores[layer, h], run.attentions[layer, h], f"{where}: weights (softmax, rows sum to 1)", width)
    if rollout:
        parts += rollout_renderables(run, config, layer, width)
    return Group(*parts)


PATTERN_STYLES = {  # each label its own colour, so a column of alike heads stands out; the words carry it without colour
    "previous": "cyan", "next": "blue", "self": "green", "first": "magenta", "last": "yellow",
    "punctuation": "red", "broad": "dim", "other": "bold",
}
SHORT_LABELS = {"previous": "prev", "punctuation": "punct"}  # five characters a cell, so 12 heads fit 80 columns


def overview(run: ModelRun, config: ModelConfig, text: str) -> list[Any]:
    """Every layer and head in one grid that fits a terminal: what each head mostly attends to (its
    pattern, :mod:`.models.heads`), the share of weight behind that, and its mean entropy in bits."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from .render_parts import safe

    patterns = run_patterns(run, text, config.causal)
    labels, values = head_labels(patterns)
    T = len(run.tokens)
    table = Table(box=box.SIMPLE_HEAD, padding=0, show_edge=False, header_style="bold")  # a space between columns
    table.add_column("layer", justify="right", width=5)
    for h in range(config.heads):
        table.add_column(f"h{h}", justify="right", width=5)
    for i in range(config.layers):
        cells = []
        for h in range(config.heads):
            label = str(labels[i, h])
            value = "" if math.isnan(values[i, h]) else f"{values[i, h]:.2f}"
            cells.append(Text.assemble(
                (SHORT_LABELS.get(label, label), PATTERN_STYLES[label]), "\n", value, "\n",
                (f"{patterns.entropy_bits[i, h]:.2f}", "dim"),
            ))
        table.add_row(str(i), *cells, end_section=i < config.layers - 1)
    title = Text("what each head attends to: its pattern, the share of weight behind it, its entropy in bits", style="bold")
    first, last = run.tokens[0], run.tokens[-1]
    legend = Text.assemble(
        "A head is named prev, next, self, first (", safe(first), "), last (", safe(last), ") or punct when those keys "
        "get at least half its weight (the number: that share); else broad if its rows spread at least halfway to even "
        f"(the number: how far), else other. Bits: 0 = one key, {math.log2(T):.2f} = all {T} tokens alike. "
        "docs/models.md defines each; --layer L --head H shows one head.",
        style="dim",
    )
    return [title, legend, table, Text()]


def rollout_renderables(run: ModelRun, config: ModelConfig, layer: int | None, width: int) -> list[Any]:
    """The attention rollout through ``layer`` (the last when None) as a heatmap: how much each token's
    vector after that layer draws on each input token, the residual path counted."""
    from rich.text import Text

    from .render_table import weight_grid

    shown = config.layers - 1 if layer is None else layer
    rolled = rolled_out(run.attentions)[shown]
    T = len(run.tokens)
    hidden = np.where(np.triu(np.ones((T, T), bool), 1) & config.causal, -np.inf, 0.0)  # GPT-2: later tokens, never drawn on
    parts: list[Any] = [Text(
        "attention rollout (Abnar and Zuidema 2020): each layer's heads averaged, mixed half and half with the "
        "identity for the residual path, multiplied through the layers; rows sum to 1", style="dim")]
    parts += weight_grid(run.tokens, hidden, rolled, f"rollout through layer {shown} of {config.layers}: input tokens each token draws on", width)
    return parts


def config_record(config: ModelConfig) -> dict[str, Any]:
    return {
        "name": config.name, "architecture": config.architecture, "layers": config.layers,
        "heads": config.heads, "d_model": config.d_model, "dtype": config.dtype,
    }


def comparison_record(comparison: WordComparison, config: ModelConfig, top_k: int) -> dict[str, Any]:
    """``attn compare --model -f json``: the word in both texts, the cosine between its two vectors at
    the embeddings and after each layer, and per layer the words it looks at most in each text (its
    weights averaged over the layer's heads)."""
    def side(f: FocusedWord, words: Words, text: str) -> dict[str, Any]:
        return {"text": text, "word": f.label, "unit": f.unit, "tokens": list(f.tokens),
                "units": [{"word": label, "tokens": list(t)} for label, t in zip(words.labels, words.tokens, strict=True)]}

    def looks(f: FocusedWord, words: Words, layer: int) -> dict[str, Any]:
        mean = f.weights[layer].mean(axis=0)  # (U,): over the heads
        return {"weights": mean, "keys": [{"word": words.labels[u], "unit": u, "weight": float(mean[u])} for u in top_words(mean, top_k)]}

    a, b = comparison.sides
    return {
        "schema": MODEL_COMPARE_SCHEMA,
        "focus": comparison.focus,
        "config": {"model": config_record(config)},
        "sentences": [side(f, w, t) for f, w, t in zip(comparison.sides, comparison.words, comparison.texts, strict=True)],
        "embedding_cosine": float(comparison.cosines[0]),
        "layers": [
            {"layer": i, "cosine": float(comparison.cosines[i + 1]),
             "first": looks(a, comparison.words[0], i), "second": looks(b, comparison.words[1], i)}
            for i in range(config.layers)
        ],
    }


def comparison_renderables(comparison: WordComparison, config: ModelConfig, top_k: int):
    """The two texts, then a table: per layer, the cosine between the word's two vectors and the words
    it looks at most in each text (weights averaged over the layer's heads)."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from .render_parts import Fields, safe

    a, b = comparison.sides
    header = Fields(
        ("first", Text.assemble(safe(" ".join(comparison.texts[0].split())), safe(f"   ({a.label} at token {', '.join(map(str, a.tokens))})"))),
        ("second", Text.assemble(safe(" ".join(comparison.texts[1].split())), safe(f"   ({b.label} at token {', '.join(map(str, b.tokens))})"))),
        ("model", Text.assemble(safe(config.name), f" · {config.architecture} · {config.layers} layers × {config.heads} heads")),
    )
    title = Text.assemble(("how far apart ", "bold"), safe(repr(a.label), "bold"), (" ends up, layer by layer", "bold"))
    legend = Text("cosine: between its two vectors (1 = the same direction); words: where it looks in each text, mean over the layer's heads", style="dim")
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False, header_style="bold")
    table.add_column("layer", justify="right")
    table.add_column("cosine", justify="right")
    table.add_column("first text looks at", overflow="fold")
    table.add_column("second text looks at", overflow="fold")

    def looks(f: FocusedWord, words: Words, layer: int) -> Text:
        mean = f.weights[layer].mean(axis=0)
        return Text(" · ").join(Text.assemble(safe(words.labels[u]), f" {mean[u]:.2f}") for u in top_words(mean, top_k))

    table.add_row("emb", f"{comparison.cosines[0]:.3f}", Text("(before any attention)", style="dim"), "")
    for i in range(config.layers):
        table.add_row(str(i), f"{comparison.cosines[i + 1]:.3f}", looks(a, comparison.words[0], i), looks(b, comparison.words[1], i))
    chart_title = Text.assemble(("the cosine, drawn: ", "bold"), "1 = the same vector; lower = context has pulled the two apart")
    return Group(header, Text(), title, legend, table, Text(), chart_title, cosine_chart(comparison.cosines))


CHART_ROWS = 8  # the terminal chart's height in lines
CHART_STEP = 0.05  # its lowest line: the lowest cosine rounded down to this


def cosine_chart(cosines: np.ndarray):
    """A small chart of the cosine at the embeddings and after each layer: a dot per layer on a scale
    from the lowest value (rounded down) to 1, as text, so that it shows in any terminal or log."""
    from rich.text import Text

    values = np.asarray(cosines, dtype=np.float64)
    high = 1.0
    low = min(math.floor(float(values.min()) / CHART_STEP + 1e-9) * CHART_STEP, high - CHART_STEP)
    rows = [math.floor((high - v) / (high - low) * (CHART_ROWS - 1) + 0.5) for v in values.tolist()]  # half up, always
    column = 5
    chart = Text()
    for r in range(CHART_ROWS):
        level = high - r * (high - low) / (CHART_ROWS - 1)
        axis = f"{level:5.2f} ┤" if r in (0, CHART_ROWS // 2, CHART_ROWS - 1) else "      │"
        chart.append(axis, style="dim")
        for n, row in enumerate(rows):
            mark = "●" if row == r else ("·" if row > r and n > 0 else " ")  # dots under the line read as its fall
            chart.append(mark.center(column), style="bold cyan" if row == r else "dim")
        chart.append("\n")
    labels = ["emb", *(f"L{i}" for i in range(len(values) - 1))]
    chart.append("      └" + "".join("─" * column for _ in labels) + "\n       " + "".join(lab.center(column) for lab in labels), style="dim")
    return chart


MODELS_SCHEMA = "attnviz.models/1"


def model_list_record(entries: list) -> dict[str, Any]:
    """``attn model list -f json``: the cache's models and whether attnviz runs each."""
    return {"schema": MODELS_SCHEMA, "kind": "list", "models": [
        {"name": e.name, "folder": str(e.folder) if e.folder else None, "status": e.status, "architecture": e.architecture,
         "layers": e.layers, "heads": e.heads, "d_model": e.d_model, "size_bytes": e.size_bytes}
        for e in entries
    ]}


def model_list_table(entries: list, cache: str):
    from rich.text import Text

    from .render_vectors import _size, _table

    if not entries:
        return Text(f"no models in the Hugging Face cache at {printable(cache)}; get one with: attn model download sentence-transformers/all-MiniLM-L6-v2")
    table = _table(f"models in the Hugging Face cache ({printable(cache)})", ("model", "left"), ("architecture", "left"),
                   ("layers × heads", "right"), ("d_model", "right"), ("size", "right"), ("status", "left"))
    for e in entries:
        shape = f"{e.layers} × {e.heads}" if e.layers else ""
        table.add_row(printable(e.name), printable(e.architecture or ""), shape, str(e.d_model or ""), _size(e.size_bytes) if e.size_bytes else "", printable(e.status))
    return table


def model_info_record(info) -> dict[str, Any]:
    """``attn model info -f json``: one model described from its files."""
    return {
        "schema": MODELS_SCHEMA, "kind": "info", "name": info.name, "folder": str(info.folder),
        "architecture": info.architecture, "layers": info.layers, "heads": info.heads, "d_model": info.d_model,
        "max_positions": info.max_positions, "parameters": info.parameters, "stored_dtypes": list(info.stored_dtypes),
        "size_bytes": info.size_bytes, "tokenizer": info.tokenizer, "vocab_size": info.vocab_size,
    }


def model_info_table(info):
    from .render_vectors import _size, _table

    table = _table(f"model {info.name}", ("", "left"), ("", "left"), header=False)
    rows = [
        ("folder", str(info.folder)), ("architecture", info.architecture),
        ("layers × heads", f"{info.layers} × {info.heads} (d_k {info.d_model // info.heads})"),
        ("d_model", str(info.d_model)), ("positions", f"{info.max_positions:,} tokens at most"),
        ("parameters", f"{info.parameters:,}"), ("stored as", ", ".join(info.stored_dtypes)),
        ("size on disk", _size(info.size_bytes)), ("tokenizer", f"{info.tokenizer}, {info.vocab_size:,} tokens"),
    ]
    for key, value in rows:
        table.add_row(key, printable(value))
    return table


def layer_inspection(run: ModelRun, config: ModelConfig, text: str, layer: int, top_k: int = 3, head: int | None = None):
    """One layer of a model run as an :class:`~attnviz_cli.results.Inspection`, so that every view of
    static attention (Markdown, CSV, figures, the HTML page) shows a model's layer the same way: its
    heads' scores and weights (or ``head``'s alone, still numbered as in its layer), what went in (the
    hidden state before the layer) and what came out (after it: the whole layer's output, every head
    mixed). The projections are the model's own, learned; the "vectors" are that layer's input."""
    from .analysis import head_summary
    from .results import Attention, InspectConfig, Inspection, VectorsInfo

    d_k = config.d_model // config.heads
    causal = config.causal
    kept = slice(None) if head is None else slice(head, head + 1)
    attention = Attention(
        queries=run.queries[layer][kept], keys=run.keys[layer][kept], values=run.values[layer][kept],
        head_outputs=run.head_outputs[layer][kept], output=run.hidden_states[layer + 1], scale=True, causal=causal,
        scores=run.scores[layer][kept], weights=run.attentions[layer][kept],
    )
    heads = attention.heads
    summary = head_summary(attention.weights, np.isneginf(attention.scores), top_k)
    where = f"{config.name}, layer {layer}" + (" (its embeddings)" if layer == 0 else f" (the output of layer {layer - 1})")
    inspect_config = InspectConfig(
        heads=heads, d_model=config.d_model, d_k=d_k, d_v=d_k, d_out=config.d_model, scale=True,
        causal=causal, projections="learned", seed=None, vectors=VectorsInfo(where, config.d_model, 0), positions="learned",
        first_head=head or 0, layer_heads=None if head is None else config.heads,
    )
    return Inspection(
        sentence=text, tokens=run.tokens, dropped=(), config=inspect_config, inputs=run.hidden_states[layer],
        attention=attention, summaries=tuple(summary.select(h) for h in range(heads)),
    )


HEADS_SCHEMA = "attnviz.heads/1"
HEADS_CSV_COLUMNS = ("layer", "head", "label", "share", *PATTERNS, "entropy_bits", "spread", "distance")


def heads_record(patterns: HeadPatterns, config: ModelConfig, texts: int, tokens: int, skipped: int) -> dict[str, Any]:
    """The JSON of ``attn heads``: each head's patterns averaged over a corpus, and what went in."""
    by_head = patterns_records(patterns)
    return {
        "schema": HEADS_SCHEMA,
        "config": {"model": config_record(config)},
        "texts": texts, "tokens": tokens, "skipped": skipped,
        "heads": [{"layer": i, "head": h, **entry} for i, layer in enumerate(by_head) for h, entry in enumerate(layer)],
    }


def heads_csv(record: dict[str, Any]) -> str:
    """One CSV row per head of a :func:`heads_record`: its label, share, each pattern's share, entropy,
    spread and distance (an empty share for "other")."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(HEADS_CSV_COLUMNS)
    for entry in record["heads"]:
        share = "" if entry["share"] is None else f"{entry['share']:.6g}"
        numbers = [f"{entry['shares'][p]:.6g}" for p in PATTERNS] + [f"{entry[k]:.6g}" for k in ("entropy_bits", "spread", "distance")]
        writer.writerow([entry["layer"], entry["head"], entry["label"], share, *numbers])
    return out.getvalue()


def heads_table(record: dict[str, Any], seconds: float):
    """``attn heads`` for people: what went in, then per layer and head its label and every number."""
    from rich import box
    from rich.console import Group
    from rich.table import Table
    from rich.text import Text

    from .render_parts import Fields, safe

    model = record["config"]["model"]
    skipped = f"; {record['skipped']:,} skipped" if record["skipped"] else ""
    header = Fields(
        ("model", Text.assemble(safe(model["name"]), f" ({model['architecture']}, {model['layers']} layers × {model['heads']} heads)")),
        ("texts", f"{record['texts']:,} ({record['tokens']:,} tokens{skipped}) in {seconds:.1f} s"),
    )
    table = Table(box=box.SIMPLE_HEAD, padding=0, show_edge=False, header_style="bold")
    for name, width in (("layer", 5), ("head", 4), ("label", 5), ("share", 5), ("prev", 5), ("next", 5), ("self", 5),
                        ("first", 5), ("last", 5), ("punct", 5), ("bits", 5), ("spread", 6), ("dist", 5)):
        table.add_column(name, justify="left" if name == "label" else "right", width=width, no_wrap=True)
    heads = record["heads"]
    for n, entry in enumerate(heads):
        label = entry["label"]
        last_of_layer = n + 1 == len(heads) or heads[n + 1]["layer"] != entry["layer"]
        table.add_row(
            str(entry["layer"]) if entry["head"] == 0 else "", str(entry["head"]),
            Text(SHORT_LABELS.get(label, label), style=PATTERN_STYLES[label]),
            "" if entry["share"] is None else f"{entry['share']:.2f}",
            *(f"{entry['shares'][p]:.2f}" for p in PATTERNS),
            f"{entry['entropy_bits']:.2f}", f"{entry['spread']:.2f}", f"{entry['distance']:.2f}",
            end_section=last_of_layer and n + 1 < len(heads),
        )
    legend = Text(
        "Means over the texts, each text counting once. prev … punct: the mean weight a query gives the token before it, "
        "after it, itself, the first and last tokens, and punctuation; label: the pattern with at least half the weight, "
        "else broad (spread ≥ 0.5) or other; bits: entropy; spread: entropy over its most (0 = one key, 1 = even); "
        "dist: tokens between query and key.", style="dim",
    )
    return Group(header, Text(), legend, table)

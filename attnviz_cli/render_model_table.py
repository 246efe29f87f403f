"""Model results -> Rich renderables: a run's header, an overview of every layer and head, one head's
scores and weights, the --focus word, the rollout, a comparison with its chart, the catalog and a
corpus's heads. They lay out what :mod:`.models.pipeline` computed, and compute nothing."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .errors import printable
from .models import ModelConfig
from .models.heads import PATTERNS
from .models.pipeline import ModelInspection, special_units
from .models.words import FocusedWord, WordComparison, Words
from .render_head_grid import PATTERN_STYLES, label_lines
from .results import NORM_HEADER, hidden_weight


def focus_renderables(
    focused: tuple[FocusedWord, ...], words: Words, layers: range | list[int], heads: range | list[int], hidden: tuple[int, ...] = (),
) -> list[Any]:
    """For each focused word: in each layer and head, the words it gives most weight to, strongest
    first, and how sharp that head is for it; then how far its vector has moved from its embedding.
    ``hidden``: the units (special tokens) left out of the listing, their weight in a column of its own."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from .render_parts import safe

    parts: list[Any] = []
    for f in focused:
        where = ", ".join(str(t) for t in f.tokens)
        parts.append(Text.assemble(("where ", "bold"), safe(repr(f.label), "bold"), (f" (token{'s' if len(f.tokens) > 1 else ''} {where}) looks: its strongest words in each layer and head", "bold")))
        parts.append(Text("weights summed over each word's pieces; bits: the entropy of its weights (0 = all on one word)"
                          + ("; to special tokens: its weight on the special tokens, left out of the words (bits count them)" if hidden else ""), style="dim"))
        table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False, header_style="bold")
        table.add_column("layer", justify="right")
        table.add_column("head", justify="right")
        table.add_column("strongest words", overflow="fold")
        if hidden:
            table.add_column("to special tokens", justify="right", width=7)
        table.add_column("bits", justify="right")
        to_hidden = hidden_weight(f.weights, hidden)
        for i in layers:
            for h in heads:
                w = f.weights[i, h]
                keys = Text(" · ").join(
                    Text.assemble(safe(words.labels[u], "bold" if n == 0 else ""), f" {w[u]:.2f}") for n, u in enumerate(f.top[i, h].tolist())
                )
                special = [f"{to_hidden[i, h]:.2f}"] if hidden else []
                table.add_row(str(i) if h == heads[0] else "", str(h), keys, *special, f"{f.entropy_bits[i, h]:.2f}",
                              end_section=h == heads[-1] and i != layers[-1])
        parts += [table, Text()]
        drift = " · ".join(f"{'emb' if i == 0 else f'L{i - 1}'} {c:.3f}" for i, c in enumerate(f.drift.tolist()))
        parts += [Text.assemble(("its vector's cosine with its embedding, layer by layer: ", "bold"), drift), Text()]
    return parts


def model_name(config: ModelConfig):
    """The model as a header names it: its folder or Hub id, and the revision a Hub id ran at."""
    from rich.text import Text

    from .render_parts import safe

    return Text.assemble(safe(config.name), *(() if config.revision is None else (" at revision ", safe(config.revision))))


def truncation(cut: str, config: ModelConfig) -> list[tuple[str, str]]:
    """The header's line saying what --truncate ``cut`` (none when nothing was)."""
    return [("truncated", f"{cut} (--truncate): the first {config.max_positions} kept, the model's positions")] if cut else []


def model_renderables(result: ModelInspection, width: int = 80):
    """What ``attn inspect --model`` shows: the header, then where the --focus word looks, one head's
    matrices (with --layer and --head), one layer's heads (with --layer), or an overview of every layer
    and head; with --rollout, then the attention rollout through the layer (the last without --layer)."""
    from rich.console import Group
    from rich.text import Text

    from .render_explain import summary_table
    from .render_parts import Fields, safe
    from .render_table import MATRIX_TOKENS, score_grid, weight_grid

    run, config, show = result.run, result.config, result.show
    marked = ", ".join(f"{i}:{t}" for i, t in enumerate(run.tokens))
    parts: list[Any] = [Fields(
        ("text", safe(" ".join(result.text.split()))),
        ("model", model_name(config)),
        ("architecture", f"{config.architecture} · {config.layers} layers × {config.heads} heads · d_model {config.d_model} · {config.dtype}"),
        ("tokens", Text.assemble(f"{len(run.tokens)}: ", safe(marked))),
        *truncation(f"{run.truncated} tokens cut" if run.truncated else "", config),
        *hidden_line(result),
        *weighting_line(run.weighting),
    ), Text()]
    heads = range(config.heads) if show.head is None else [show.head]
    if result.words is not None:
        layers = range(config.layers) if show.layer is None else [show.layer]
        parts += focus_renderables(result.focused, result.words, layers, heads, special_units(result.words, result.hidden))
    elif show.layer is None:
        parts += overview(result)
    elif len(run.tokens) > MATRIX_TOKENS and result.layer is not None:  # as for static vectors: the T x T tables nobody reads left out
        T = len(run.tokens)
        parts += [Text(
            f"{T} tokens: the {T} × {T} score and weight tables are left out past {MATRIX_TOKENS} tokens, where nobody "
            "reads them; below are each query's entropy and top keys. For the full matrices: -f json (--fields to keep "
            "what you need), or --save page.html to explore them.", style="dim",
        ), Text()]
        for i in range(len(heads)):
            parts += summary_table(result.layer, i, width)
    else:
        for h in heads:
            where = f"layer {show.layer}, head {h} of {config.heads}"
            parts += score_grid(run.tokens, run.scores[show.layer, h], f"{where}: scores ({score_formula(config)})", width, hidden=result.hidden)
            parts += weight_grid(run.tokens, run.scores[show.layer, h], run.attentions[show.layer, h], f"{where}: weights {weights_title(result.hidden, run.weighting)}",
                                 width, hidden=result.hidden)
    if result.show.rollout:
        parts += rollout_renderables(result, width)
    return Group(*parts)


def score_formula(config: ModelConfig) -> str:
    """What a model's scores are, as its page makes them: q·k/√d_k, or Gemma's q·k times its
    query_pre_attn_scalar^-½, soft-capped in Gemma 2."""
    scale, cap = config.settings.get("scale"), config.settings.get("softcap")
    formula = "q·k/√d_k" if scale is None else f"q·k × {scale:.4g}"
    return formula if cap is None else f"{cap:g}·tanh({formula} / {cap:g})"


def weights_title(hidden: tuple[int, ...], weighting: str = "attention") -> str:
    """A weights table's title: which weights (the softmax's, or value-weighted and renormalised) and that
    its rows sum to 1, or with --hide-special to 1 less their weight on the hidden tokens."""
    which = "softmax" if weighting == "attention" else NORM_HEADER
    return f"({which}, special tokens hidden)" if hidden else f"({which}, rows sum to 1)"


def weighting_line(weighting: str) -> list[tuple[str, str]]:
    """The header's line saying the weights shown are value-weighted (none for the softmax's own)."""
    if weighting == "attention":
        return []
    return [("weighting", f"{NORM_HEADER}: each weight times the norm of the vector its head moves from that key, "
                          "||v W_O||, rows renormalised to sum to 1; patterns, labels, entropy, --focus and the rollout are over these")]


def hidden_line(result: ModelInspection) -> list[tuple[str, Any]]:
    """The header's line saying what --hide-special left out (and that summaries are over whole rows)."""
    from rich.text import Text

    from .render_parts import safe

    if not result.show.hide_special:
        return []
    if not result.hidden:
        return [("hidden", "nothing: this model's tokenizer adds no special tokens to this text")]
    tokens = result.run.tokens
    where = Text(", ").join(Text.assemble(f"{t}:", safe(tokens[t])) for t in result.hidden)
    return [("hidden", Text.assemble(
        where, " (special tokens), left out of the matrices; 'to special tokens' is each row's weight on them, "
        "nothing renormalised; strongest, patterns and bits are over the whole row",
    ))]


SHORT_LABELS = {"previous": "prev", "punctuation": "punct"}  # five characters a cell, so 12 heads fit 80 columns


COMPACT_LABELS = {  # three characters, for the one-line-a-layer overview of deep models
    "previous": "prv", "next": "nxt", "self": "slf", "first": "1st", "last": "lst", "punctuation": "pun",
    "broad": "brd", "other": "oth", "sink": "snk",
}
DEEP = 12  # models of more layers get one line a layer in the overview


def overview(result: ModelInspection) -> list[Any]:
    """Every layer and head in one grid that fits a terminal: what each head mostly attends to (its
    pattern, :mod:`.models.heads`), the share of weight behind that, and its mean entropy in bits; for
    a model of more than DEEP layers, one line a layer with the pattern and its share alone. Heads that
    share a key/value head (grouped-query attention) stand together, a gap between groups."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    from .render_parts import safe

    run, config = result.run, result.config
    labels, values, bits = result.heads.labels, result.heads.values, result.heads.patterns.entropy_bits
    T = len(run.tokens)
    deep = config.layers > DEEP
    group = config.heads // config.kv_heads
    if deep and 6 + 7 * config.heads + (config.kv_heads - 1 if group > 1 else 0) > 80:  # a line a layer would not fit 80 columns
        return [
            Text("what each head attends to, by label: a character a head", style="bold"),
            Text("p previous, n next, s self, f first, l last, , punctuation, S sink (an attention sink), b broad, · other, "
                 "as docs/models.md defines them; each label's strongest heads under the grid; --layer L --head H shows one head.", style="dim"),
            *label_lines(labels, values, group), *massive_line(result), Text(),
        ]
    table = Table(box=box.SIMPLE_HEAD, padding=0, show_edge=False, header_style="bold")  # a space between columns
    table.add_column("layer", justify="right", width=5)
    for h in range(config.heads):
        if group > 1 and h and h % group == 0:
            table.add_column("", width=1)  # the gap between key/value groups
        table.add_column(f"h{h}", justify="right", width=6 if deep else 5)
    for i in range(config.layers):
        cells: list[Any] = []
        for h in range(config.heads):
            if group > 1 and h and h % group == 0:
                cells.append("")
            label = str(labels[i, h])
            value = "" if math.isnan(values[i, h]) else f"{values[i, h]:.2f}"
            if deep:
                cells.append(Text.assemble((COMPACT_LABELS[label], PATTERN_STYLES[label]), value.removeprefix("0").replace("1.00", "1.0")))
            else:
                cells.append(Text.assemble(
                    (SHORT_LABELS.get(label, label), PATTERN_STYLES[label]), "\n", value, "\n",
                    (f"{bits[i, h]:.2f}", "dim"),
                ))
        first_cell = Text(str(i)) if deep else Text.assemble(str(i), "\n", ("share", "dim"), "\n", (" bits", "dim"))
        table.add_row(first_cell, *cells, end_section=not deep and i < config.layers - 1)
    if deep:
        title = Text("what each head attends to: its pattern and the share of weight behind it" + weighting_note(run.weighting), style="bold")
        cell = "Each cell: the pattern, then its share (1st.94: 0.94 of the weight on the first token). "
        names: tuple[Any, ...] = ("prv, nxt, slf, 1st (", safe(run.tokens[0]), "), lst (", safe(run.tokens[-1]), ") or pun")
    else:
        title = Text("what each head attends to: its pattern, the share of weight behind it, its entropy in bits" + weighting_note(run.weighting), style="bold")
        cell = ""
        names = ("prev, next, self, first (", safe(run.tokens[0]), "), last (", safe(run.tokens[-1]), ") or punct")
    groups = (
        f" Heads in groups of {group} share a key/value head (h0-h{group - 1} the first): "
        f"{config.kv_heads} key/value heads for {config.heads} heads." if group > 1 else ""
    )
    bits_text = "" if deep else f" Bits: 0 = one key, {math.log2(T):.2f} = all {T} tokens alike."
    broad, other = ("brd", "oth") if deep else ("broad", "other")
    sink = (f" A {'snk' if deep else 'sink'} (an attention sink) is a first-token head whose later queries give it at least "
            "half their weight (share: theirs)." if config.causal else "")
    legend = Text.assemble(
        f"{cell}A head is named ", *names, " when those keys get at least half its weight (share: their weight); "
        f"else {broad} if its rows spread at least halfway to even (share: how far), else {other}.{sink}{bits_text}{groups} "
        "docs/models.md defines each; --layer L --head H shows one head.",
        style="dim",
    )
    return [title, legend, table, *massive_line(result), Text()]


def massive_line(result: ModelInspection) -> list[Any]:
    """One line: the hidden-state entry that stands out most from its layer's median (Sun et al.'s
    massive activations), where it is, and by how much."""
    from rich.text import Text

    from .render_parts import safe

    m = result.massive
    if m is None or np.isnan(m.ratio).all():  # every state all zero: nothing stands out
        return []
    layer = int(np.where(np.isnan(m.ratio), -1, m.ratio).argmax())  # an all-zero state (0 / 0) counts least
    ratio = "∞" if not math.isfinite(m.ratio[layer]) else f"{m.ratio[layer]:,.0f}"
    position = int(m.position[layer])
    return [Text.assemble(
        ("largest |h| ", "bold"), f"{m.value[layer]:,.1f} = {ratio}× median (layer {layer}, dim {m.dim[layer]}, token {position} ",
        safe(result.run.tokens[position]), ")",
    )]


def weighting_note(weighting: str) -> str:
    """What a title adds when its numbers come from value-weighted weights (nothing for the softmax's)."""
    return "" if weighting == "attention" else f" ({NORM_HEADER} weights)"


def rollout_renderables(result: ModelInspection, width: int) -> list[Any]:
    """The attention rollout through --layer (the last without it) as a heatmap: how much each token's
    vector after that layer draws on each input token, the residual path counted."""
    from rich.text import Text

    from .render_table import weight_grid

    assert result.rollout is not None
    config, tokens = result.config, result.run.tokens
    shown = config.layers - 1 if result.show.layer is None else result.show.layer
    parts: list[Any] = [Text(
        "attention rollout (Abnar and Zuidema 2020): each layer's heads averaged, mixed half and half with the "
        "identity for the residual path, multiplied through the layers; rows sum to 1"
        + ("; over the value-weighted weights (Kobayashi et al. 2020)" if result.run.weighting != "attention" else "")
        + (" with their 'to special tokens'" if result.hidden else ""), style="dim")]
    parts += weight_grid(tokens, result.mask, result.rollout[shown], f"rollout through layer {shown} of {config.layers}: input tokens each token draws on",
                         width, hidden=result.hidden)
    return parts


def comparison_renderables(comparison: WordComparison, config: ModelConfig, truncated: tuple[int, int] = (0, 0)):
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
        ("model", Text.assemble(model_name(config), f" · {config.architecture} · {config.layers} layers × {config.heads} heads")),
        *truncation(", ".join(f"{which} text: {n} tokens cut" for which, n in zip(("first", "second"), truncated, strict=True) if n), config),
        *weighting_line(comparison.weighting),
    )
    title = Text.assemble(("how far apart ", "bold"), safe(repr(a.label), "bold"), (" ends up, layer by layer", "bold"))
    legend = Text("cosine: between its two vectors (1 = the same direction); words: where it looks in each text, mean over the layer's heads"
                  + ("; special tokens are left out of the words (--hide-special), their weight in 'to special tokens'" if any(comparison.hidden) else ""),
                  style="dim")
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), show_edge=False, header_style="bold")
    table.add_column("layer", justify="right")
    table.add_column("cosine", justify="right")
    hiding = any(comparison.hidden)  # --hide-special: each text's weight on its special tokens in a column after its words
    for which in ("first", "second"):
        table.add_column(f"{which} text looks at", overflow="fold")
        if hiding:
            table.add_column("to special tokens", justify="right", width=7)

    def looks(f: FocusedWord, words: Words, layer: int, hidden: tuple[int, ...]) -> list[Text | str]:
        mean = f.head_mean[layer]
        listed = Text(" · ").join(Text.assemble(safe(words.labels[u]), f" {mean[u]:.2f}") for u in f.top_of_mean[layer].tolist())
        return [listed, f"{hidden_weight(mean, hidden):.2f}"] if hiding else [listed]

    table.add_row("emb", f"{comparison.cosines[0]:.3f}", Text("(before any attention)", style="dim"), *([""] * (3 if hiding else 1)))
    for i in range(config.layers):
        table.add_row(str(i), f"{comparison.cosines[i + 1]:.3f}", *looks(a, comparison.words[0], i, comparison.hidden[0]),
                      *looks(b, comparison.words[1], i, comparison.hidden[1]))
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


class ModelList:
    """The models of the cache or a store: a table where every id fits whole; at a narrower width, each
    id on a line of its own (folded, never cut: it is there to be copied) with its details under it."""

    def __init__(self, entries: list, title: str) -> None:
        from .render_vectors import human_size, titled_table

        self.entries, self.title = entries, title
        columns = (("model", "left"), ("architecture", "left"), ("layers × heads", "right"), ("d_model", "right"),
                   ("size", "right"), ("status", "left"))
        rows, self.details = [], []
        for e in entries:
            shape = f"{e.layers} × {e.heads}" if e.layers else ""
            size = human_size(e.size_bytes) if e.size_bytes else ""
            rows.append((printable(e.name), printable(e.architecture or ""), shape, str(e.d_model or ""), size, printable(e.status)))
            details = [printable(e.architecture or ""), f"{e.layers} layers × {e.heads} heads" if e.layers else "",
                       f"d_model {e.d_model}" if e.d_model else "", size, printable(e.status)]
            self.details.append(" · ".join(d for d in details if d))
        # a column blank in every row (a store's GGUF files before their metadata is read) is left out
        kept = [i for i, (name, _) in enumerate(columns) if name in ("model", "status") or any(row[i] for row in rows)]
        self.table = titled_table(self.title, *(columns[i] for i in kept))
        for row in rows:
            self.table.add_row(*(row[i] for i in kept))

    def __rich_console__(self, console, options):
        from rich.measure import Measurement
        from rich.padding import Padding
        from rich.text import Text

        if Measurement.get(console, options.update_width(10_000), self.table.table).maximum <= options.max_width:
            yield self.table
            return
        yield Text(self.title, style="bold")
        for e, details in zip(self.entries, self.details, strict=True):
            yield Text(printable(e.name), style="bold", overflow="fold")
            yield Padding(Text(details, style="dim"), (0, 0, 0, 2))


STORE_TITLES = {"ollama": "GGUF models in Ollama's store", "lmstudio": "GGUF models in LM Studio's models folder"}


def model_list_table(entries: list, cache: str, stores: dict[str, str] | None = None):
    """``attn model list``: the Hugging Face cache's models, then each store's GGUF models (``stores``:
    source -> its folder), a store shown only when it holds some."""
    from rich.console import Group
    from rich.text import Text

    cached = [e for e in entries if e.source == "huggingface"]
    parts: list = [ModelList(cached, f"models in the Hugging Face cache ({printable(cache)})") if cached else Text(
        f"no models in the Hugging Face cache at {printable(cache)}; get one with: attn model download sentence-transformers/all-MiniLM-L6-v2"
    )]
    for source, folder in (stores or {}).items():
        found = [e for e in entries if e.source == source]
        if found:
            parts += [Text(), ModelList(found, f"{STORE_TITLES[source]} ({printable(folder)})")]
    return parts[0] if len(parts) == 1 else Group(*parts)


def model_info_table(info):
    from .render_vectors import human_size, titled_table

    table = titled_table(f"model {info.name}", ("", "left"), ("", "left"), header=False)
    rows = [
        ("file" if info.gguf else "folder", str(info.folder)), ("architecture", info.architecture),
        ("layers × heads", f"{info.layers} × {info.heads} (d_k {info.d_head or info.d_model // info.heads}"
         + (f"; {info.kv_heads} key/value heads)" if info.kv_heads and info.kv_heads != info.heads else ")")),
        ("d_model", str(info.d_model)), ("positions", f"{info.max_positions:,} tokens at most"),
        ("parameters", f"{info.parameters:,}"), ("stored as", ", ".join(info.stored_dtypes)),
        ("size on disk", human_size(info.size_bytes)), ("tokenizer", f"{info.tokenizer}, {info.vocab_size:,} tokens"),
    ]
    for key, value in rows:
        table.add_row(key, printable(value))
    return table


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
        "else broad (spread ≥ 0.5) or other; in a decoder, sink: the queries after the first token give it at least half "
        "(its share); bits: entropy; spread: entropy over its most (0 = one key, 1 = even); "
        "dist: tokens between query and key.", style="dim",
    )
    return Group(header, Text(), legend, table)

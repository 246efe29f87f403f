"""A model run -> the JSON record of schema ``attnviz.model/1``, and Rich renderables: the run's
header, an overview of every layer and head, and one head's scores and weights."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .analysis import entropy_bits
from .models import ModelConfig, ModelRun

MODEL_SCHEMA = "attnviz.model/1"


def model_record(run: ModelRun, config: ModelConfig, text: str, layer: int | None = None, head: int | None = None) -> dict[str, Any]:
    """The JSON-ready record of a run (arrays left as NumPy for orjson; masked scores, -inf, become
    null). ``layer`` and ``head`` keep just that layer and head."""
    layers = range(config.layers) if layer is None else [layer]
    heads = range(config.heads) if head is None else [head]
    return {
        "schema": MODEL_SCHEMA,
        "text": text,
        "tokens": list(run.tokens),
        "token_ids": run.token_ids,
        "words": list(run.words),
        "special": list(run.special),
        "config": {"model": {
            "name": config.name, "architecture": config.architecture, "layers": config.layers,
            "heads": config.heads, "d_model": config.d_model, "dtype": config.dtype,
        }},
        "embeddings": run.hidden_states[0],
        "layers": [
            {
                "layer": i,
                "heads": [{"head": h, "scores": run.scores[i, h], "weights": run.attentions[i, h]} for h in heads],
                "output": run.hidden_states[i + 1],
            }
            for i in layers
        ],
    }


def head_entropies(run: ModelRun) -> np.ndarray:
    """(L, h) the mean entropy, in bits, of each head's weight rows."""
    return entropy_bits(run.attentions).mean(axis=-1)


def model_renderables(run: ModelRun, config: ModelConfig, text: str, layer: int | None, head: int | None, width: int = 80):
    """What ``attn inspect --model`` shows: the header, then one head's matrices (with --layer and
    --head), one layer's heads (with --layer), or an overview of every layer and head."""
    from rich.console import Group
    from rich.text import Text

    from .render_parts import safe
    from .render_table import score_grid, weight_grid

    marked = ", ".join(f"{i}:{t}" for i, t in enumerate(run.tokens))
    parts: list[Any] = [Text.assemble(
        ("text         ", "bold"), safe(" ".join(text.split())), "\n",
        ("model        ", "bold"), safe(config.name), "\n",
        ("architecture ", "bold"), f"{config.architecture} · {config.layers} layers × {config.heads} heads · d_model {config.d_model} · {config.dtype}\n",
        ("tokens       ", "bold"), f"{len(run.tokens)}: ", safe(marked),
    ), Text()]
    if layer is None:
        parts += overview(run, config)
        return Group(*parts)
    shown = range(config.heads) if head is None else [head]
    for h in shown:
        where = f"layer {layer}, head {h} of {config.heads}"
        parts += score_grid(run.tokens, run.scores[layer, h], f"{where}: scores (q·k/√d_k)", width)
        parts += weight_grid(run.tokens, run.scores[layer, h], run.attentions[layer, h], f"{where}: weights (softmax, rows sum to 1)", width)
    return Group(*parts)


def overview(run: ModelRun, config: ModelConfig) -> list[Any]:
    """Every layer and head in one grid that fits a terminal: each head's mean entropy in bits (low:
    each query looks at one key; high: it spreads its weight), the sharpest head of each layer bold."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    entropies = head_entropies(run)  # (L, h)
    T = len(run.tokens)
    table = Table(box=box.SIMPLE_HEAD, padding=0, show_edge=False, header_style="bold")
    table.add_column("layer", justify="right", width=6)
    for h in range(config.heads):
        table.add_column(f"h{h}", justify="right", width=5)
    for i, row in enumerate(entropies.tolist()):
        sharpest = int(np.argmin(row))
        table.add_row(str(i), *(Text(f"{e:.2f}", style="bold" if h == sharpest else "") for h, e in enumerate(row)))
    title = Text("mean entropy of each head's weights, in bits", style="bold")
    legend = Text(
        f"0 = every query on one key; {math.log2(T):.2f} = spread over all {T} tokens; bold: each layer's sharpest head. "
        "--layer L --head H shows one head's matrices.", style="dim",
    )
    return [title, legend, table, Text()]

"""Model results -> JSON-ready records (arrays left as NumPy for orjson; masked scores, -inf, become
null) and CSV: ``attnviz.model/1`` (a run), ``model-compare/1``, ``models/1`` (the catalog) and
``heads/1`` (a corpus). They format what :mod:`.models.pipeline` computed; Rich is never imported."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .models import ModelConfig
from .models.activations import MassiveActivations
from .models.heads import PATTERNS, SINK_TOKENS, HeadLabels, HeadPatterns
from .models.pipeline import ModelInspection
from .models.words import FocusedWord, WordComparison, Words

if TYPE_CHECKING:
    from .models.corpus import CorpusHeads

MODEL_SCHEMA = "attnviz.model/1"
MODEL_COMPARE_SCHEMA = "attnviz.model-compare/1"
MODELS_SCHEMA = "attnviz.models/1"
HEADS_SCHEMA = "attnviz.heads/1"


def model_record(result: ModelInspection) -> dict[str, Any]:
    """The record of a run: each head's scores, weights and patterns, each layer's output and, with
    --rollout, its attention rollout; with --layer and --head just that layer and head; with --focus,
    the run's words and where the focused ones look."""
    run, config, show = result.run, result.config, result.show
    layers = range(config.layers) if show.layer is None else [show.layer]
    heads = range(config.heads) if show.head is None else [show.head]
    patterns = patterns_records(result.heads)
    record = {
        "schema": MODEL_SCHEMA,
        "weighting": run.weighting,
        "text": result.text,
        "truncated": run.truncated,
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
                    {"head": h, "kv_head": config.kv_head(h), "scores": run.scores[i, h], "weights": run.attentions[i, h], "patterns": patterns[i][h]}
                    for h in heads
                ],
                "output": run.hidden_states[i + 1],
                **({"massive": massive_record(result.massive, i, run.tokens)} if result.massive is not None else {}),
                **({"rollout": result.rollout[i]} if result.show.rollout and result.rollout is not None else {}),
            }
            for i in layers
        ],
    }
    if run.value_norms is not None:  # --weighting norm: the raw ||v_j^h W_O^h||, (L, h, T), to recompute the weights from
        record["value_norms"] = run.value_norms
    if result.words is not None:
        record |= focus_record(result.focused, result.words, layers, heads)
    return record


def patterns_records(heads: HeadLabels) -> list[list[dict[str, Any]]]:
    """[layer][head] the JSON of each head's patterns: its label and the number behind it, every
    pattern's share, its entropy, spread and mean distance (``share`` null for "other"), and its sink
    shares (null where no query comes after the first token, or the first four)."""
    p, labels, values = heads.patterns, heads.labels, heads.values
    L, H = labels.shape
    return [
        [
            {
                "label": str(labels[i, h]),
                "share": None if math.isnan(values[i, h]) else float(values[i, h]),
                "shares": dict(zip(PATTERNS, p.shares[i, h].tolist(), strict=True)),
                "entropy_bits": float(p.entropy_bits[i, h]),
                "spread": float(p.spread[i, h]),
                "distance": float(p.distance[i, h]),
                "sinks": {"first": _number(p.sink[i, h]), f"first_{SINK_TOKENS}": _number(p.sink_k[i, h])},
            }
            for h in range(H)
        ]
        for i in range(L)
    ]


def massive_record(massive: MassiveActivations, layer: int, tokens: Sequence[str]) -> dict[str, Any]:
    """Layer ``layer``'s largest hidden-state entry: its value, its token's position and the token (its
    piece of ``tokens``), its dimension, the median magnitude and their ratio (null where the median is 0)."""
    ratio = float(massive.ratio[layer])
    position = int(massive.position[layer])
    return {"value": float(massive.value[layer]), "position": position, "token": tokens[position], "dim": int(massive.dim[layer]),
            "median": float(massive.median[layer]), "ratio": ratio if math.isfinite(ratio) else None}


def _number(value: float) -> float | None:
    """A float for JSON; None for NaN (a measure with nothing to measure)."""
    return None if math.isnan(value) else float(value)


MODEL_FIELDS = ("weighting", "value_norms", "text", "truncated", "tokens", "token_ids", "words", "special", "config", "embeddings", "layers", "units", "focus")
LAYER_FIELDS = ("heads.scores", "heads.weights", "heads.patterns", "layers.output", "layers.massive", "layers.rollout")  # keep layers with just these


def check_model_fields(fields: tuple[str, ...]) -> None:
    """Refuse a --fields name no model record has (ValueError naming the valid ones)."""
    unknown = [f for f in fields if f not in MODEL_FIELDS + LAYER_FIELDS]
    if unknown:
        raise ValueError(f"unknown field {unknown[0]!r}; a model record has {', '.join(MODEL_FIELDS + LAYER_FIELDS)}")


def keep_model_fields(record: dict[str, Any], fields: tuple[str, ...]) -> dict[str, Any]:
    """``record`` with just ``fields`` (and its schema, and its weighting when not the softmax's); all of it when ``fields`` is empty. A layer
    field (heads.weights, ...) keeps the layers with their numbers and just those parts."""
    if not fields:
        return record
    always = ("schema", "weighting") if record.get("weighting", "attention") != "attention" else ("schema",)  # value-weighted numbers say so
    kept = {name: record[name] for name in (*always, *fields) if name in record}
    inner = [f for f in fields if f in LAYER_FIELDS]
    if inner:
        head_keys = ["head", "kv_head", *(f.removeprefix("heads.") for f in inner if f.startswith("heads."))]
        kept["layers"] = [
            {"layer": entry["layer"],
             **({"heads": [{k: h[k] for k in head_keys} for h in entry["heads"]]} if len(head_keys) > 2 else {}),
             **({"output": entry["output"]} if "layers.output" in inner else {}),
             **({"massive": entry["massive"]} if "layers.massive" in inner and "massive" in entry else {}),
             **({"rollout": entry["rollout"]} if "layers.rollout" in inner and "rollout" in entry else {})}
            for entry in record["layers"]
        ]
    return kept


def focus_record(focused: tuple[FocusedWord, ...], words: Words, layers: range | list[int], heads: range | list[int]) -> dict[str, Any]:
    """The ``units`` (the run's words, each special token one of its own) and, per focused word, its
    weights over them in each layer and head, strongest first, and its vector's cosine with its embedding."""
    def entry(f: FocusedWord) -> dict[str, Any]:
        return {
            "word": f.label, "unit": f.unit, "tokens": list(f.tokens),
            "cosine_to_embedding": f.drift,
            "layers": [
                {"layer": i, "heads": [
                    {
                        "head": h, "weights": f.weights[i, h], "entropy_bits": float(f.entropy_bits[i, h]),
                        "keys": [{"word": words.labels[u], "unit": u, "weight": float(f.weights[i, h, u])} for u in f.top[i, h].tolist()],
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


def config_record(config: ModelConfig) -> dict[str, Any]:
    return {
        "name": config.name, "architecture": config.architecture, "layers": config.layers,
        "heads": config.heads, "kv_heads": config.kv_heads, "d_model": config.d_model, "d_head": config.d_head,
        "dtype": config.dtype, "revision": config.revision,
    }


def comparison_record(comparison: WordComparison, config: ModelConfig, truncated: tuple[int, int] = (0, 0)) -> dict[str, Any]:
    """``attn compare --model -f json``: the word in both texts (and the tokens --truncate cut from
    each), the cosine between its two vectors at the embeddings and after each layer, and per layer the
    words it looks at most in each text (its weights averaged over the layer's heads)."""
    def side(f: FocusedWord, words: Words, text: str, cut: int) -> dict[str, Any]:
        return {"text": text, "truncated": cut, "word": f.label, "unit": f.unit, "tokens": list(f.tokens),
                "units": [{"word": label, "tokens": list(t)} for label, t in zip(words.labels, words.tokens, strict=True)]}

    def looks(f: FocusedWord, words: Words, layer: int) -> dict[str, Any]:
        mean = f.head_mean[layer]  # (U,): over the heads
        return {"weights": mean, "keys": [{"word": words.labels[u], "unit": u, "weight": float(mean[u])} for u in f.top_of_mean[layer].tolist()]}

    a, b = comparison.sides
    norms = {} if comparison.weighting == "attention" else {"value_norms": list(comparison.value_norms)}  # each text's (L, h, T)
    return {
        "schema": MODEL_COMPARE_SCHEMA,
        "weighting": comparison.weighting,
        **norms,
        "focus": comparison.focus,
        "config": {"model": config_record(config)},
        "sentences": [side(f, w, t, cut) for f, w, t, cut in zip(comparison.sides, comparison.words, comparison.texts, truncated, strict=True)],
        "embedding_cosine": float(comparison.cosines[0]),
        "layers": [
            {"layer": i, "cosine": float(comparison.cosines[i + 1]),
             "first": looks(a, comparison.words[0], i), "second": looks(b, comparison.words[1], i)}
            for i in range(config.layers)
        ],
    }


def model_list_record(entries: list) -> dict[str, Any]:
    """``attn model list -f json``: the models of the cache and the stores, and whether attnviz runs each."""
    return {"schema": MODELS_SCHEMA, "kind": "list", "models": [
        {"name": e.name, "source": e.source, "folder": str(e.folder) if e.folder else None,
         "file": str(e.file) if e.file else None, "status": e.status, "architecture": e.architecture,
         "layers": e.layers, "heads": e.heads, "d_model": e.d_model, "size_bytes": e.size_bytes}
        for e in entries
    ]}


def model_info_record(info) -> dict[str, Any]:
    """``attn model info -f json``: one model described from its files."""
    return {
        "schema": MODELS_SCHEMA, "kind": "info", "name": info.name, "folder": str(info.folder),
        "architecture": info.architecture, "layers": info.layers, "heads": info.heads,
        "kv_heads": info.kv_heads or info.heads, "d_head": info.d_head or info.d_model // info.heads, "d_model": info.d_model,
        "max_positions": info.max_positions, "parameters": info.parameters, "stored_dtypes": list(info.stored_dtypes),
        "size_bytes": info.size_bytes, "tokenizer": info.tokenizer, "vocab_size": info.vocab_size,
    }


HEADS_CSV_COLUMNS = ("layer", "head", "label", "share", *PATTERNS, "entropy_bits", "spread", "distance", "sink_first", f"sink_first_{SINK_TOKENS}")


def heads_record(corpus: CorpusHeads) -> dict[str, Any]:
    """The JSON of ``attn heads``: each head's patterns averaged over a corpus, and what went in; with
    --probe, the probes, the random inputs they built (null: the texts given) and each head's scores."""
    by_head = patterns_records(corpus.heads)
    record: dict[str, Any] = {
        "schema": HEADS_SCHEMA,
        "config": {"model": config_record(corpus.config)},
        "texts": corpus.texts, "tokens": corpus.tokens, "skipped": corpus.skipped, "truncated": corpus.truncated,
        "heads": [{"layer": i, "head": h, **entry} for i, layer in enumerate(by_head) for h, entry in enumerate(layer)],
    }
    if corpus.std is not None:
        for entry in record["heads"]:
            entry["std"] = _std_record(corpus.std, entry["layer"], entry["head"])
    if corpus.probes and corpus.scores is not None:
        record["probes"] = list(corpus.probes)
        record["inputs"] = None if corpus.inputs is None else dict(corpus.inputs)
        for entry in record["heads"]:
            i, h = entry["layer"], entry["head"]
            entry["scores"] = {probe: float(corpus.scores[p, i, h]) for p, probe in enumerate(corpus.probes)}
            if corpus.scores_std is not None:
                entry["std"]["scores"] = {probe: float(corpus.scores_std[p, i, h]) for p, probe in enumerate(corpus.probes)}
    return record


def _std_record(std: HeadPatterns, i: int, h: int) -> dict[str, Any]:
    """Head (i, h)'s standard deviation over the texts of each number its entry averages."""
    return {
        "shares": dict(zip(PATTERNS, std.shares[i, h].tolist(), strict=True)),
        "entropy_bits": float(std.entropy_bits[i, h]), "spread": float(std.spread[i, h]), "distance": float(std.distance[i, h]),
        "sinks": {"first": _number(std.sink[i, h]), f"first_{SINK_TOKENS}": _number(std.sink_k[i, h])},
    }


def heads_csv(record: dict[str, Any]) -> str:
    """One CSV row per head of a :func:`heads_record`: its label, share, each pattern's share, entropy,
    spread and distance (an empty share for "other"), its sink shares (empty where undefined), and with
    --probe each probe's score."""
    import csv
    import io

    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    probes = record.get("probes", [])
    std = "std" in record["heads"][0] if record["heads"] else False
    columns = [*HEADS_CSV_COLUMNS, *probes]  # with --probe, a column of scores per probe
    writer.writerow([*columns, *(f"{c}_std" for c in columns[4:])] if std else columns)  # then each number's std
    for entry in record["heads"]:
        share = "" if entry["share"] is None else f"{entry['share']:.6g}"
        row = [entry["layer"], entry["head"], entry["label"], share, *_csv_numbers(entry, probes)]
        writer.writerow([*row, *_csv_numbers(entry["std"], probes)] if std else row)
    return out.getvalue()


def _csv_numbers(entry: dict[str, Any], probes: list[str]) -> list[str]:
    """A head's (or its std's) shares, entropy, spread, distance, sinks (empty where undefined) and scores."""
    numbers = [f"{entry['shares'][p]:.6g}" for p in PATTERNS] + [f"{entry[k]:.6g}" for k in ("entropy_bits", "spread", "distance")]
    sinks = ["" if v is None else f"{v:.6g}" for v in entry["sinks"].values()]
    return [*numbers, *sinks, *(f"{entry['scores'][probe]:.6g}" for probe in probes)]

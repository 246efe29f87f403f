"""``attn inspect``: a sentence over static vectors, or a text through a real model (--model)."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from .options import (
    LOOK,
    MODEL,
    CausalOption,
    Dtype,
    DtypeOption,
    FormatOption,
    GroupedOptions,
    HeadsOption,
    HideSpecialOption,
    MaxTokensOption,
    NoScaleOption,
    OnError,
    OovOption,
    OovPolicy,
    OutputFormat,
    Positions,
    PositionsOption,
    ProjectionKind,
    ProjectionsOption,
    RevisionOption,
    SeedOption,
    TruncateOption,
    TrustPickleOption,
    VectorsFormat,
    VectorsFormatOption,
    VectorsOption,
    Weighting,
    WeightingOption,
    WeightsOption,
    check_usage,
    named_model,
)

EXAMPLES = """\
Examples:

\b
  attn inspect "I sat on the river bank"
  attn inspect "I deposited money at the bank" --heads 5 --dims 4
  attn inspect "the cat sat on the mat" --projections random --seed 7 --causal
  attn inspect "dog bites man" --positions sinusoidal
  attn inspect "I sat on the river bank" --focus bank --neighbors 5
  attn inspect "I sat on the river bank" --qkv --dims 4
  attn inspect "I sat on the river bank" --format json | jq '.heads[0].weights'
  printf 'river bank\\nmoney bank\\n' | attn inspect - --format jsonl
  attn inspect "hello world" --vectors ~/glove.6B.100d.txt
  attn inspect "I sat on the river bank" --heads 2 --save bank.svg --save bank.html
  attn inspect "I sat on the river bank" --model gpt2 --layer 2 --hide-special
  attn inspect "I sat on the river bank" --model ~/models/SmolLM2.gguf --weighting norm
"""


def add_to(app: typer.Typer) -> None:
    app.command(epilog=EXAMPLES, cls=GroupedOptions)(inspect)


def inspect(
    ctx: typer.Context,
    sentence: Annotated[str, typer.Argument(metavar="SENTENCE", help="The sentence to attend over, or - to read it from stdin (one per line with --format jsonl).")],
    vectors: VectorsOption = None,
    vectors_format: VectorsFormatOption = VectorsFormat.auto,
    trust_pickle: TrustPickleOption = False,
    heads: HeadsOption = 1,
    projections: ProjectionsOption = ProjectionKind.identity,
    seed: SeedOption = 0,
    weights: WeightsOption = None,
    no_scale: NoScaleOption = False,
    causal: CausalOption = False,
    oov: OovOption = OovPolicy.skip,
    positions: PositionsOption = Positions.none,
    fmt: FormatOption = OutputFormat.table,
    focus: Annotated[Optional[str], typer.Option("--focus", help="Show one query token's computation step by step: a word (every occurrence), word@N (its N-th occurrence) or a position.", show_default=False, rich_help_panel=LOOK)] = None,
    neighbors: Annotated[int, typer.Option("--neighbors", min=0, help="For each token (or the --focus token), the K nearest vocabulary words before and after attention.", rich_help_panel=LOOK)] = 0,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Keys listed per query in each head's summary.", rich_help_panel=LOOK)] = 3,
    qkv: Annotated[bool, typer.Option("--qkv", help="Also show each head's queries, keys and values (the projected Q, K and V, --dims columns of each) as tables; in JSON ask --fields heads.queries,heads.keys,heads.values.", rich_help_panel=LOOK)] = False,
    dims: Annotated[int, typer.Option("--dims", min=1, help="Vector components shown in tables and Markdown.")] = 6,
    fields: Annotated[Optional[str], typer.Option("--fields", help="JSON only: keep just these keys, comma-separated (e.g. tokens,weights); head keys (scores, weights, summary, heads.output) keep heads with just those.", show_default=False)] = None,
    on_error: Annotated[OnError, typer.Option("--on-error", help="With SENTENCE -: a bad line stops the stream (fail), or is reported and passed over (skip; jsonl writes an attnviz.error/1 record for it).")] = OnError.fail,
    max_tokens: MaxTokensOption = 512,
    save: Annotated[Optional[list[Path]], typer.Option("--save", metavar="FILE", help="Also write the weights as a picture or page, by extension: .svg, .png, .pdf (matplotlib heatmaps, one panel per head) or .html (one self-contained interactive page; with --model, every layer and head). Repeatable.", show_default=False)] = None,
    dpi: Annotated[int, typer.Option("--dpi", min=30, max=1200, help="Resolution of --save .png (and of raster parts of .pdf).")] = 200,
    model: Annotated[Optional[str], typer.Option("--model", help="A real transformer instead of static vectors: a folder with config.json, model.safetensors and tokenizer.json, a Hub id (name or org/name) in the Hugging Face cache, a .gguf file, ollama:NAME[:TAG] or lmstudio:PUBLISHER/MODEL. BERT, RoBERTa, DistilBERT, GPT-2, Llama, Mistral, Qwen2/3, Gemma 2/3, Phi-3 and OLMo 2 run, in NumPy.", show_default=False, rich_help_panel=MODEL, callback=named_model)] = None,
    revision: RevisionOption = None,
    truncate: TruncateOption = False,
    hide_special: HideSpecialOption = False,
    layer: Annotated[Optional[str], typer.Option("--layer", metavar="L|all", help="With --model: show this layer's heads (0-based, as in JSON); all: every layer (--save .svg/.png/.pdf draws every head as a thumbnail).", show_default=False, rich_help_panel=MODEL)] = None,
    head: Annotated[Optional[int], typer.Option("--head", min=0, help="With --model and --layer: show just this head (0-based).", show_default=False, rich_help_panel=MODEL)] = None,
    dtype: DtypeOption = Dtype.float32,
    rollout: Annotated[bool, typer.Option("--rollout", help="With --model: attention rollout (Abnar and Zuidema 2020), which input tokens each token draws on through the layers: a table of the last layer's (or --layer's), every layer's in JSON.", rich_help_panel=MODEL)] = False,
    weighting: WeightingOption = Weighting.attention,
) -> None:
    """Run self-attention over a sentence and show scores, weights and contextualized vectors.

    With SENTENCE - and --format jsonl, csv or markdown, every line of stdin is a sentence: records are
    written in input order as lines arrive, using every core for bulk input.
    """
    layer_number, all_layers = parse_layer(layer)
    usage = check_usage("inspect", dict(locals(), layer=layer_number), ctx)
    if model is not None:
        from .model_runs import inspect_with_model

        inspect_with_model(usage)
        return
    from .static import inspect_static

    inspect_static(usage)


def parse_layer(value: str | None) -> tuple[int | None, bool]:
    """--layer as (the layer, or None for every layer; whether "all" was said)."""
    if value is None or value.strip().lower() == "all":
        return None, value is not None
    try:
        layer = int(value)
    except ValueError:
        layer = -1
    if layer < 0:
        raise typer.BadParameter(f"{value!r} is not a layer: give a number from 0, or all", param_hint="--layer")
    return layer, False

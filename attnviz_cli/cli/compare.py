"""``attn compare``: one word followed into two sentences, over static vectors or through a model."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from .options import (
    CausalOption,
    CompareFormat,
    CompareFormatOption,
    Dtype,
    HeadsOption,
    HideSpecialOption,
    MaxTokensOption,
    NoScaleOption,
    OovOption,
    OovPolicy,
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
  attn compare "I sat on the river bank" "I deposited money at the bank" --focus bank
  attn compare "the river bank" "the money bank" --focus bank --heads 5 --neighbors 8
  attn compare "the bank by the bank" "a bank" --focus bank@2 -f json | jq .output_cosine
  attn compare "the river bank" "the money bank" --focus bank -f markdown >> "$GITHUB_STEP_SUMMARY"
  attn compare "the river bank" "the money bank" --focus bank --model sentence-transformers/all-MiniLM-L6-v2 --hide-special
"""


def add_to(app: typer.Typer) -> None:
    app.command(epilog=EXAMPLES)(compare)


def compare(
    ctx: typer.Context,
    first: Annotated[str, typer.Argument(metavar="SENTENCE_A", help="The first sentence.")],
    second: Annotated[str, typer.Argument(metavar="SENTENCE_B", help="The second sentence.")],
    focus: Annotated[str, typer.Option("--focus", help="The word to follow into both sentences: a word, or word@N for its N-th occurrence.")],
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
    fmt: CompareFormatOption = CompareFormat.table,
    neighbors: Annotated[Optional[int], typer.Option("--neighbors", min=0, help="Nearest vocabulary words shown before and after attention (identity projections only).  [default: 5]", show_default=False)] = None,
    max_tokens: MaxTokensOption = 512,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="With --model: words listed per layer for each text.")] = 2,
    model: Annotated[Optional[str], typer.Option("--model", help="A real transformer instead of static vectors (as for inspect): the word's two vectors compared after every layer.", show_default=False, callback=named_model)] = None,
    revision: RevisionOption = None,
    truncate: TruncateOption = False,
    hide_special: HideSpecialOption = False,
    dtype: Annotated[Dtype, typer.Option("--dtype", help="With --model: float32, or float64 for exact comparisons.")] = Dtype.float32,
    weighting: WeightingOption = Weighting.attention,
    save: Annotated[Optional[list[Path]], typer.Option("--save", metavar="FILE", help="With --model: also draw the cosine between the word's two vectors, layer by layer, as .svg, .png or .pdf. Repeatable.", show_default=False)] = None,
    dpi: Annotated[int, typer.Option("--dpi", min=30, max=1200, help="Resolution of --save .png.")] = 200,
) -> None:
    """Follow one word into two sentences: its weights in each, its nearest words, and how far apart it ends up."""
    usage = check_usage("compare", dict(locals()), ctx)
    if model is not None:
        from .model_runs import compare_with_model

        compare_with_model(usage)
        return
    from .static import compare_static

    compare_static(usage)

"""``attn merge``: the shards of an ``attn heads`` run (``--shard i/n -f partial``) added up into the
report one run over the whole corpus gives.

A command of its own rather than ``attn heads merge``: ``attn heads`` takes FILE as its first argument,
and a group cannot hold both it and a ``merge`` subcommand without reading a file named "merge" as one.
"""

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import reporting_errors
from .options import HeadsFormat, MergeFormat
from .output import check_saves, say

EXAMPLES = """\
Examples:

\b
  attn heads corpus.txt --model M --shard 1/2 -f partial > shard-1.json
  attn heads corpus.txt --model M --shard 2/2 -f partial > shard-2.json
  attn merge shard-*.json
  attn merge shard-*.json -f json > heads.json
  attn merge shard-*.json -f csv --save grid.html
"""


def add_to(app: typer.Typer) -> None:
    app.command(epilog=EXAMPLES)(merge)


def merge(
    partials: Annotated[list[Path], typer.Argument(metavar="PARTIAL...", help="Partial files of one model's shards, as attn heads --shard I/N -f partial writes them.", show_default=False)],
    fmt: Annotated[MergeFormat, typer.Option("--format", "-f", help="table (for people), json, csv (one row per head) or markdown (GitHub tables), as attn heads writes them.")] = MergeFormat.table,
    save: Annotated[Optional[list[Path]], typer.Option("--save", metavar="FILE", help="Also draw the layer x head grid, as attn heads --save does (.svg, .png, .pdf or .html). Repeatable.", show_default=False)] = None,
    dpi: Annotated[int, typer.Option("--dpi", min=30, max=1200, help="Resolution of --save .png.")] = 200,
) -> None:
    """Add up the shards of an attn heads run into the report one run over the whole input gives (the
    same JSON, to float64 addition order). Refuses partials of different models, settings or shard
    counts and a shard given twice; says on stderr which shards are missing, and reports those given."""
    saves = check_saves(save)
    with reporting_errors():
        from ..models.partial import merge_partials, read_partial
        from .heads import show_corpus

        corpus = merge_partials([read_partial(path) for path in partials], say)
        show_corpus(corpus, HeadsFormat(fmt.value), saves, dpi)

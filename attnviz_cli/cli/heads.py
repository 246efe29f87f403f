"""``attn heads``: what each head of a model attends to over a corpus."""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from enum import StrEnum
from typing import Annotated, Optional

import typer

from ..errors import AttnvizError, quoted
from . import reporting_errors
from .options import Dtype, OnError
from .output import out, say, show, stdin_binary

EXAMPLES = """\
Examples:

\b
  attn heads corpus.txt --model sentence-transformers/all-MiniLM-L6-v2
  cat corpus.txt | attn heads - --model sentence-transformers/all-MiniLM-L6-v2 -f csv > heads.csv
  attn heads corpus.txt --model M -f json | jq '.heads[] | select(.label == "previous")'
"""


class HeadsFormat(StrEnum):
    table = "table"
    json = "json"
    csv = "csv"


def add_to(app: typer.Typer) -> None:
    app.command(epilog=EXAMPLES)(heads)


def heads(
    source: Annotated[str, typer.Argument(metavar="FILE", help="Texts, one per line (blank lines are passed over); - reads stdin.")] = "-",
    model: Annotated[str, typer.Option("--model", help="The transformer whose heads to describe: a folder, or a Hub id in the Hugging Face cache.", show_default=False)] = "",
    fmt: Annotated[HeadsFormat, typer.Option("--format", "-f", help="table (for people), json or csv (one row per head).")] = HeadsFormat.table,
    dtype: Annotated[Dtype, typer.Option("--dtype", help="float32, or float64 for exact comparisons.")] = Dtype.float32,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Worker processes for a long input; every usable core when left out.", show_default=False)] = None,
    on_error: Annotated[OnError, typer.Option("--on-error", help="A line with no tokens or more than the model's positions stops the run (fail), or is reported and left out (skip).")] = OnError.fail,
) -> None:
    """What each head of a model attends to over a corpus: per layer and head, the mean share of weight
    on the previous, next, same, first and last tokens and on punctuation, the mean entropy, spread and
    query-key distance, and a label. Streams: memory stays flat however many lines."""
    if not model:
        raise typer.BadParameter("which model's heads: give --model (a folder or a Hub id)", param_hint="--model")
    with reporting_errors():
        from ..engine import usable_cpus
        from ..lines import bad_line
        from ..models import load_model
        from ..models.corpus import corpus_patterns
        from ..models.heads import HeadLabels
        from ..render_model_json import heads_csv, heads_record
        from ..terminal import corpus_progress

        loaded = load_model(model, dtype=dtype.value)
        skipped = 0

        def bad(line: int, text: str, error: AttnvizError) -> None:
            nonlocal skipped
            say(bad_line(line, error, on_error.value))
            skipped += 1

        start = time.perf_counter()
        with text_lines(source) as (lines, total), corpus_progress(total) as progress:
            sums = corpus_patterns(loaded, lines, bad=bad, workers=workers or usable_cpus(), done=progress)
        record = heads_record(HeadLabels.of(sums.mean()), loaded.config, sums.texts, sums.tokens, skipped)
        if fmt is HeadsFormat.table:
            from ..render_model_table import heads_table

            seconds = time.perf_counter() - start
            show(lambda width: heads_table(record, seconds))
        elif fmt is HeadsFormat.csv:
            out(heads_csv(record).encode())
        else:
            from ..render_json import dumps

            out(dumps(record, pretty=True))


@contextmanager
def text_lines(source: str) -> Iterator[tuple[Iterator[tuple[int, str]], int | None]]:
    """The numbered non-blank lines of a file or of stdin (-), read by the one line reader of every
    stream as they are needed, and how many lines the file has (None for stdin), counted first for a
    progress bar."""
    from ..lines import numbered_lines

    if source == "-":
        yield numbered_lines(stdin_binary("the texts", "FILE")), None
        return
    try:
        stream = open(source, "rb")  # noqa: SIM115 (closed below)
    except OSError as error:
        raise AttnvizError(f"cannot read {quoted(source)}: {error.strerror or error}") from None
    with stream:
        total = sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))
        stream.seek(0)
        yield numbered_lines(stream), total

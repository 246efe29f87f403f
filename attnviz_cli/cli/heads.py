"""``attn heads``: what each head of a model attends to over a corpus."""

import os
import stat
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Optional

import typer

from ..errors import AttnvizError, quoted
from . import reporting_errors
from .options import (
    Dtype,
    HeadsFormat,
    HeadsFormatOption,
    OnError,
    Probe,
    RevisionOption,
    TruncateOption,
    check_usage,
    named_model,
)
from .output import check_saves, out, saved, say, show, stdin_binary

if TYPE_CHECKING:
    from ..models.corpus import CorpusHeads
    from ..models.partial import Shard

EXAMPLES = """\
Examples:

\b
  attn heads corpus.txt --model sentence-transformers/all-MiniLM-L6-v2
  cat corpus.txt | attn heads - --model M -f csv > heads.csv
  attn heads corpus.txt --model M -f json | jq '.heads[] | select(.label == "sink")'
  attn heads corpus.txt --model M -f markdown >> "$GITHUB_STEP_SUMMARY"
  attn heads corpus.txt --model M --save grid.svg --save grid.html
  attn heads --model M --probe induction --probe previous
  attn heads --model M --probe induction --sequences 100 --seed 1 -f csv
  attn heads corpus.txt --model M --probe duplicate -f json
  attn heads corpus.txt --model M --shard 3/10 -f partial > shard-3.json
  attn heads 's3://bucket/*.txt' --model /shared/M --dask tcp://scheduler:8786
  attn heads corpus.txt --model M --dask local --workers 2
"""


def add_to(app: typer.Typer) -> None:
    app.command(epilog=EXAMPLES)(heads)


def heads(
    ctx: typer.Context,
    model: Annotated[str, typer.Option("--model", help="The transformer whose heads to describe (as for inspect): a folder, a Hub id in the Hugging Face cache, a .gguf file, ollama:NAME[:TAG] or lmstudio:PUBLISHER/MODEL.", show_default=False, callback=named_model)],
    revision: RevisionOption = None,
    truncate: TruncateOption = False,
    source: Annotated[Optional[str], typer.Argument(metavar="FILE", help="Texts, one per line (blank lines are passed over); - or none reads stdin (with --probe, none: the probes build random sequences).", show_default=False)] = None,
    fmt: HeadsFormatOption = HeadsFormat.table,
    dtype: Annotated[Dtype, typer.Option("--dtype", help="float32, or float64 for exact comparisons.")] = Dtype.float32,
    workers: Annotated[Optional[int], typer.Option("--workers", min=1, help="Worker processes for a long input; every usable core when left out.", show_default=False)] = None,
    on_error: Annotated[OnError, typer.Option("--on-error", help="A line with no tokens or more than the model's positions stops the run (fail), or is reported and left out (skip).")] = OnError.fail,
    save: Annotated[Optional[list[Path]], typer.Option("--save", metavar="FILE", help="Also draw the layer x head grid, each head coloured by its label, as .svg, .png, .pdf or .html (one self-contained page). Repeatable.", show_default=False)] = None,
    dpi: Annotated[int, typer.Option("--dpi", min=30, max=1200, help="Resolution of --save .png.")] = 200,
    probe: Annotated[Optional[list[Probe]], typer.Option("--probe", help="Also score each head as a TransformerLens head detector: induction, previous or duplicate (repeatable; each costs nothing more, the run is shared). Without FILE the probes build their own inputs: random token sequences, each shown twice.", show_default=False)] = None,
    sequences: Annotated[int, typer.Option("--sequences", min=1, max=100_000, help="--probe without FILE: how many random sequences.")] = 50,
    length: Annotated[int, typer.Option("--length", min=1, help="--probe without FILE: tokens in each random sequence, which is shown twice (after the model's BOS).")] = 64,
    seed: Annotated[int, typer.Option("--seed", min=0, help="--probe without FILE: the seed of the random sequences (NumPy's default_rng): the same seed, the same sequences.")] = 0,
    shard: Annotated[Optional[str], typer.Option("--shard", metavar="I/N", help="Run shard I of N (I from 1): every N-th chunk of 1,000 lines (of 64 sequences with --probe without FILE), chunk I first; write it with -f partial and add the shards up with attn merge.", show_default=False)] = None,
    dask: Annotated[Optional[str], typer.Option("--dask", metavar="SCHEDULER", help="Run on a Dask cluster: a scheduler's address (tcp://host:8786), or local for one on this machine of --workers processes. FILE may be a glob or any URL Dask reads (s3://...); every worker must reach the model (docs/scaling.md). Needs the dask extra: pip install 'attnviz-cli[dask]'.", show_default=False)] = None,
) -> None:
    """What each head of a model attends to over a corpus: per layer and head, the mean share of weight
    on the previous, next, same, first and last tokens and on punctuation, the mean entropy, spread and
    query-key distance, and a label. Streams: memory stays flat however many lines. With --probe, each
    head's score as an induction, previous-token or duplicate-token head (TransformerLens' definitions)."""
    check_usage("heads", dict(locals()), ctx)
    probes = tuple(p.value for p in Probe if p in (probe or []))  # in PROBES' order, each once
    random_inputs = bool(probes) and source is None
    source = None if random_inputs else from_stdin_or(source)
    saves = check_saves(save)
    part = parse_shard(shard)
    with reporting_errors():
        from ..engine import usable_cpus
        from ..models import load_model
        from ..models.corpus import CorpusHeads, corpus_sums, line_limit
        from ..terminal import corpus_progress

        loaded = load_model(model, dtype=dtype.value, revision=revision)
        start = time.perf_counter()
        inputs: dict[str, int] | None = None
        skipped = 0
        if dask is not None:
            if source == "-":
                raise AttnvizError("--dask has the workers read FILE (a path, a glob or a URL), not stdin")
            try:
                from ..models.cluster import cluster_sums
            except ImportError as error:  # the optional extra is not installed
                raise AttnvizError(f"--dask needs Dask ({quoted(error.name or str(error))} is not installed): pip install \"attnviz-cli[dask]\"") from None
            sums, skipped, inputs = cluster_sums(
                loaded, dask, source=source, workers=workers, on_error=on_error.value, truncate=truncate, probes=probes,
                sequences=sequences, length=length, seed=seed, note=say,
            )
        elif source is None:
            from ..models.probe_inputs import SEQUENCE_CHUNK, probe_sums

            with corpus_progress(sequences if part is None else part.share(sequences, SEQUENCE_CHUNK)) as progress:
                sums, inputs = probe_sums(loaded, probes, sequences=sequences, length=length, seed=seed, workers=workers or usable_cpus(),
                                          done=progress, takes=None if part is None else part.takes)
        else:
            with text_lines(source, line_limit(loaded.config)) as (lines, total), \
                    corpus_progress(total if part is None or total is None else part.share(total)) as progress:
                sums, skipped = corpus_sums(loaded, lines if part is None else part.lines(lines), on_error=on_error.value, note=say,
                                            workers=workers or usable_cpus(), done=progress, truncate=truncate, probes=probes)
        if sums.truncated:
            say(f"--truncate cut {sums.truncated:,} tokens from the ends of texts longer than the model's {loaded.config.max_positions} positions")
        if fmt is HeadsFormat.partial:
            from ..models.partial import partial_record
            from ..render_json import dumps

            seconds = time.perf_counter() - start
            out(dumps(partial_record(loaded, sums, skipped=skipped, shard=part, truncate=truncate, seconds=seconds, inputs=inputs)))
            return
        show_corpus(CorpusHeads.of(loaded.config, sums, skipped, time.perf_counter() - start, inputs), fmt, saves, dpi)


def show_corpus(corpus: "CorpusHeads", fmt: HeadsFormat, saves: list[Path], dpi: int) -> None:
    """A corpus pass's report (of ``attn heads`` or ``attn merge``) as ``fmt``, and its ``saves``."""
    from ..render_head_grid import GRID_PAST
    from ..render_model_json import heads_csv, heads_record

    record = heads_record(corpus)
    if saves:
        from ..saving import save_heads

        saved(saves, lambda path: save_heads(record, path, dpi))
    if fmt is HeadsFormat.table and corpus.probes:
        from ..render_head_grid import probes_view

        show(lambda width: probes_view(record, corpus.seconds))
    elif fmt is HeadsFormat.table and corpus.config.layers * corpus.config.heads > GRID_PAST:
        from ..render_head_grid import labels_view

        show(lambda width: labels_view(record, corpus.seconds))
    elif fmt is HeadsFormat.table:
        from ..render_model_table import heads_table

        show(lambda width: heads_table(record, corpus.seconds))
    elif fmt is HeadsFormat.csv:
        out(heads_csv(record).encode())
    elif fmt is HeadsFormat.markdown:
        from ..render_markdown_views import heads_markdown

        out(heads_markdown(record).encode())
    else:
        from ..render_json import dumps

        out(dumps(record, pretty=True))


def parse_shard(text: str | None) -> "Shard | None":
    """--shard i/n, as a :class:`~attnviz_cli.models.partial.Shard` (a usage error if it is not one)."""
    if text is None:
        return None
    from ..models.partial import Shard

    try:
        return Shard.parse(text)
    except ValueError as error:
        raise typer.BadParameter(str(error)) from None


def from_stdin_or(source: str | None) -> str:
    """FILE, or - for stdin; a usage error (exit 2) when no FILE is given and stdin is a terminal,
    where a run would wait for texts nobody knows to type (a note when - asks for that on purpose)."""
    if sys.stdin is None or not sys.stdin.isatty():
        return source or "-"
    if source is None:
        raise typer.BadParameter("give a FILE of texts, one per line, or pipe them in: attn heads reads stdin when no FILE is given", param_hint="FILE")
    if source == "-":
        say("reading texts from stdin, one per line; end with Ctrl-D")
    return source


@contextmanager
def text_lines(source: str, max_line: int) -> Iterator[tuple[Iterator[tuple[int, str]], int | None]]:
    """The numbered non-blank lines of a file or of stdin (-), read by the one line reader of every
    stream as they are needed (a line over ``max_line`` bytes comes as a ``TooLong`` of its start), and
    how many lines the file has, counted first for a progress bar; None for stdin and for what is not a
    regular file (a FIFO, a device: read as a stream, never counted, which would not end)."""
    from ..lines import numbered_lines

    if source == "-":
        yield numbered_lines(stdin_binary("the texts", "FILE"), max_line), None
        return
    try:
        stream = open(source, "rb")  # noqa: SIM115 (closed below)
    except OSError as error:
        raise AttnvizError(f"cannot read {quoted(source)}: {error.strerror or error}") from None
    with stream:
        if not stat.S_ISREG(os.fstat(stream.fileno()).st_mode):
            yield numbered_lines(stream, max_line), None
            return
        total = sum(chunk.count(b"\n") for chunk in iter(lambda: stream.read(1 << 20), b""))
        stream.seek(0)
        yield numbered_lines(stream, max_line), total

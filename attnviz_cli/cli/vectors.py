"""``attn vectors``: list, describe, search and convert word vectors."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..errors import printable
from . import reporting_errors
from .options import (
    ReportFormat,
    ReportFormatOption,
    TrustPickleOption,
    VectorsFormat,
    VectorsFormatOption,
    VectorsOption,
    read_format,
)
from .output import report, say

EXAMPLES = """\
Examples:

\b
  attn vectors list
  attn vectors info
  attn vectors info ~/glove.6B.100d.txt
  attn vectors neighbors bank -k 10
  attn vectors convert ~/glove.6B.300d.txt ~/vectors/glove-300d --limit 100000
  attn inspect "the river bank" --vectors ~/vectors/glove-300d
"""

vectors_app = typer.Typer(
    help="List, describe, search and convert word vectors.", epilog=EXAMPLES, no_args_is_help=True,
    rich_markup_mode=None,
)


def add_to(app: typer.Typer) -> None:
    app.add_typer(vectors_app, name="vectors")


@vectors_app.command("list", epilog=EXAMPLES)
def vectors_list(fmt: ReportFormatOption = ReportFormat.table) -> None:
    """The named sets --vectors NAME can load: shipped, cached, and the full GloVe (an optional extra)."""
    with reporting_errors():
        from ..render_vectors import named_sets_record, named_sets_table
        from ..store import named_sets

        found = named_sets()
        report(named_sets_record(found), lambda: named_sets_table(found), fmt)


@vectors_app.command("info", epilog=EXAMPLES)
def vectors_info(
    spec: Annotated[Optional[str], typer.Argument(metavar="[NAME|PATH]", help="A named set, a vectors set folder or a file; the shipped vectors when left out.", show_default=False)] = None,
    vectors_format: VectorsFormatOption = VectorsFormat.auto,
    trust_pickle: TrustPickleOption = False,
    fmt: ReportFormatOption = ReportFormat.table,
) -> None:
    """Name, format, dimension, vocabulary, dtype, size on disk, load time, subwords and sample words."""
    with reporting_errors():
        from ..loading import describe
        from ..render_vectors import report_record, report_table
        from ..terminal import reading_progress

        with reading_progress(spec):
            described = describe(spec, fmt=read_format(vectors_format), trust_pickle=trust_pickle)
        report(report_record(described), lambda: report_table(described), fmt)


@vectors_app.command("neighbors", epilog=EXAMPLES)
def vectors_neighbors(
    word: Annotated[str, typer.Argument(metavar="WORD", help="The word whose nearest words to list.")],
    k: Annotated[int, typer.Option("-k", "--top", min=1, help="How many words.")] = 10,
    vectors: VectorsOption = None,
    vectors_format: VectorsFormatOption = VectorsFormat.auto,
    trust_pickle: TrustPickleOption = False,
    fmt: ReportFormatOption = ReportFormat.table,
) -> None:
    """The words nearest to WORD by cosine, over the whole vocabulary (one matrix product)."""
    with reporting_errors():
        from ..render_vectors import neighbors_record, neighbors_table
        from ..store import nearest_words
        from .static import load_vectors

        embeddings = load_vectors(vectors, read_format(vectors_format), trust_pickle)
        word = word.lower() if embeddings.lowercase else word
        found = nearest_words(embeddings, word, k)
        report(neighbors_record(embeddings.name, word, found), lambda: neighbors_table(embeddings.name, word, found), fmt)


@vectors_app.command("convert", epilog=EXAMPLES)
def vectors_convert(
    source: Annotated[Path, typer.Argument(metavar="IN", help="A word2vec (text or binary), GloVe or fastText file, gzip or not.")],
    target: Annotated[Path, typer.Argument(metavar="OUT", help="The folder to write the vectors set to.")],
    limit: Annotated[Optional[int], typer.Option("--limit", min=1, help="Keep only the first N words (the most frequent, in files sorted so).", show_default=False)] = None,
    force: Annotated[bool, typer.Option("--force", help="Replace OUT if it exists.")] = False,
    vectors_format: VectorsFormatOption = VectorsFormat.auto,
    trust_pickle: TrustPickleOption = False,
) -> None:
    """Read IN once and write it as a vectors set OUT that later runs memory-map in milliseconds
    (--vectors OUT). Written atomically: an interrupted convert leaves nothing behind."""
    with reporting_errors():
        from ..store import convert
        from ..terminal import byte_progress

        with byte_progress(source) as progress:  # convert watches its own reads
            done = convert(
                source, target, fmt=read_format(vectors_format), limit=limit,
                trust_pickle=trust_pickle, replace=force, progress=progress,
            )
        say(f"wrote {printable(str(done.folder))}: {done.vocab_size:,} words x {done.dim} ({done.dtype}) in {done.seconds:.1f} s; use --vectors {printable(str(done.folder))}")

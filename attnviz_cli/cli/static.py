"""The static-vectors source of ``inspect`` and ``compare``: its options (checked by the rules of
:mod:`.options`) become embeddings, projections and :class:`~attnviz_cli.results.InspectOptions`; then
its pipeline runs and a renderer writes."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import NamedTuple

from ..errors import printable
from ..loading import load
from ..pipeline import compare_sentences, inspect_one
from ..projections import Projections, identity, load_weights, random_xavier
from ..results import InspectionBatch, InspectOptions
from ..vectors import Embeddings
from . import reporting_errors
from .options import STREAMED, CompareFormat, OutputFormat, ProjectionKind, Usage, read_format
from .output import check_saves, out, parse_fields, read_stdin, saved, say, show, stdin_binary

SLOW_LOAD_SECONDS = 3.0  # a file that takes longer than this gets a tip: convert it once


class StaticSource(NamedTuple):
    """The options of static vectors: which vectors, read how, and which projections."""

    vectors: str | None
    vectors_format: str | None  # None: detect it
    trust_pickle: bool
    projections: ProjectionKind
    weights: Path | None
    seed: int
    heads: int

    def load(self) -> tuple[Embeddings, Projections]:
        """The embeddings and projection matrices the options name."""
        embeddings = load_vectors(self.vectors, self.vectors_format, self.trust_pickle)
        if self.weights is not None:
            return embeddings, load_weights(self.weights, d_model=embeddings.dim, heads=self.heads)
        return embeddings, random_xavier(embeddings.dim, self.seed) if self.projections is ProjectionKind.random else identity()


def source_of(u: Usage) -> StaticSource:
    """The vectors and projections a run's options name."""
    return StaticSource(u.vectors, read_format(u.vectors_format), u.trust_pickle, u.projections, u.weights, u.seed, u.heads)


def options_of(u: Usage, neighbors: int, top_k: int = 3, fields: tuple[str, ...] = ()) -> InspectOptions:
    """The pipeline's options of a run over static vectors."""
    return InspectOptions(
        heads=u.heads, scale=not u.no_scale, causal=u.causal, oov=u.oov.value, max_tokens=u.max_tokens,
        top_k=top_k, focus=u.focus, neighbors=neighbors, fields=fields, positions=u.positions.value,
    )


def load_vectors(spec: str | None, fmt: str | None, trust_pickle: bool) -> Embeddings:
    """``load``, with a progress bar for a large file on a terminal, and a tip when a file was slow."""
    start = time.perf_counter()
    from ..terminal import reading_progress

    with reading_progress(spec):
        embeddings = load(spec, fmt=fmt, trust_pickle=trust_pickle)
    if spec is not None and Path(spec).is_file() and time.perf_counter() - start > SLOW_LOAD_SECONDS:
        say(f"tip: 'attn vectors convert {printable(spec)} DIR' once, and --vectors DIR loads in milliseconds")
    return embeddings


class Written(NamedTuple):
    """How a static run is written: the format, --fields, --dims, --on-error, --save and --dpi."""

    fmt: OutputFormat
    fields: tuple[str, ...] = ()
    dims: int = 6
    on_error: str = "fail"
    saves: tuple[Path, ...] = ()
    dpi: int = 200
    qkv: bool = False  # tables: each head's queries, keys and values too


def inspect_static(u: Usage) -> None:
    """``attn inspect`` over static vectors."""
    from ..render_json import check_fields

    kept = parse_fields(u.fields, check_fields)
    saves = check_saves(u.save)
    options = options_of(u, u.neighbors, top_k=u.top_k, fields=() if saves else kept)
    written = Written(u.fmt, kept, u.dims, u.on_error.value, tuple(saves), u.dpi, u.qkv)
    with reporting_errors():
        run_inspect(u.sentence, source_of(u), options, written)


def run_inspect(sentence: str, source: StaticSource, options: InspectOptions, written: Written) -> None:
    """``attn inspect`` over static vectors: one sentence, or with SENTENCE - and a streamed format,
    a record per line of stdin."""
    embeddings, chosen = source.load()
    if sentence == "-" and written.fmt in STREAMED:
        from ..batch import Job, OutputOptions, stream_records  # worker processes: only for streams
        from ..terminal import stream_progress

        stdin = stdin_binary("the sentences")
        output = OutputOptions(fmt=written.fmt.value, fields=written.fields, dims=written.dims, on_error=written.on_error)
        with stream_progress() as progress:
            stream_records(Job(embeddings, chosen, options, output), stdin, sys.stdout.buffer, say, progress=progress)
        return
    if sentence == "-":
        stdin_binary("the sentences")
        sentence = read_stdin(options.max_tokens)
    one = inspect_one(sentence, embeddings, chosen, options)
    if written.saves:
        from ..saving import save

        saved(list(written.saves), lambda path: save(one.inspection(0), path, written.dpi))
    write_one(one, written)


def write_one(one: InspectionBatch, written: Written) -> None:
    """One inspected sentence (a batch of one) to stdout in its format, written whole."""
    for note in one.notes[0]:
        say(note)
    if written.fmt is OutputFormat.table:
        from ..render_table import inspection_renderables

        show(lambda width: inspection_renderables(one.inspection(0), dims=written.dims, width=width, qkv=written.qkv))
        return
    from ..render_records import RecordRenderer

    renderer = RecordRenderer(written.fmt.value, written.fields, written.dims)
    out(renderer.header() + renderer.records(one, [1])[0])


def compare_static(u: Usage) -> None:
    """``attn compare`` over static vectors: nearest words (5 unless --neighbors says) where the
    outputs stay in the embedding space; left out, with a note, where they do not."""
    neighbors = u.neighbors
    if neighbors is None:
        in_space = u.weights is None and u.projections is ProjectionKind.identity
        if not in_space:
            say("nearest words are left out: with projections other than identity the outputs are not in the embedding space")
        neighbors = 5 if in_space else 0
    with reporting_errors():
        run_compare((u.first, u.second), source_of(u), options_of(u, neighbors), u.fmt)


def run_compare(texts: tuple[str, str], source: StaticSource, options: InspectOptions, fmt: CompareFormat) -> None:
    """``attn compare`` over static vectors: the word in both sentences, as tables, Markdown or JSON."""
    embeddings, chosen = source.load()
    comparison = compare_sentences(texts[0], texts[1], embeddings, chosen, options)
    for side in comparison.sides:
        for note in side.notes:
            say(note)
    if fmt is CompareFormat.table:
        from ..render_explain import comparison_renderables

        show(lambda width: comparison_renderables(comparison))
        return
    if fmt is CompareFormat.markdown:
        from ..render_markdown_views import comparison_markdown

        out(comparison_markdown(comparison).encode())
        return
    from ..render_json import comparison_record, dumps

    out(dumps(comparison_record(comparison), pretty=fmt is CompareFormat.json))

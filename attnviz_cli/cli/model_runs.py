"""The --model source of ``inspect`` and ``compare``: load the model, run its pipeline
(:mod:`attnviz_cli.models.pipeline`), hand the result to a renderer. A stream of texts (SENTENCE - with
jsonl) is read by the same line reader, with the same --max-tokens limit and --on-error handling, as a
stream over static vectors."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import typer

from ..errors import AttnvizError, quoted
from . import reporting_errors
from .options import CompareFormat, OutputFormat, Usage
from .output import check_saves, out, parse_fields, read_stdin, saved, say, show, stdin_binary, writing

if TYPE_CHECKING:
    from ..models import Model
    from ..models.model import ModelConfig
    from ..models.pipeline import ModelInspection, ModelShow


@dataclass(frozen=True, slots=True)
class ModelWritten:
    """How a model's run is written: the format, --fields, --dims, --on-error, --max-tokens, --save, --dpi."""

    fmt: OutputFormat
    fields: tuple[str, ...] = ()
    dims: int = 6
    on_error: str = "fail"
    max_tokens: int = 512
    saves: tuple[Path, ...] = ()
    dpi: int = 200


def load(spec: str, dtype: str, revision: str | None, show_: ModelShow | None = None) -> Model:
    """The model ``spec`` names (at ``revision``, for a Hub id); a usage error if ``show_`` asks for a
    layer or head it does not have."""
    from ..models import load_model

    def check(c: ModelConfig) -> None:  # from config.json, before the weights are read
        if show_ is not None and show_.layer is not None and show_.layer >= c.layers:
            raise typer.BadParameter(f"{quoted(c.name)} has layers 0 to {c.layers - 1}", param_hint="--layer")
        if show_ is not None and show_.head is not None and show_.head >= c.heads:
            raise typer.BadParameter(f"{quoted(c.name)} has heads 0 to {c.heads - 1}", param_hint="--head")

    return load_model(spec, dtype=dtype, revision=revision, check=check)


def inspect_with_model(u: Usage) -> None:
    """``attn inspect --model``: what to show and how to write it, from the run's options."""
    from ..models.pipeline import ModelShow, keeping_what_it_shows
    from ..render_model_json import check_model_fields

    fields = parse_fields(u.fields, check_model_fields)
    saves = check_saves(u.save)
    page = u.layer is None and any(path.suffix.lower() == ".html" for path in saves)
    # a record of every layer (JSON, JSONL, CSV without --layer) or pictures of every head need every layer's matrices;
    # the overview and one layer's views keep only what they show
    every_layer = (u.layer is None and u.fmt is not OutputFormat.table) or bool(saves and u.layer is None)
    show_ = keeping_what_it_shows(ModelShow(u.layer, u.head, u.focus, u.top_k, u.rollout, page, u.hide_special, u.weighting.value), every_layer)
    written = ModelWritten(u.fmt, fields, u.dims, u.on_error.value, u.max_tokens, tuple(saves), u.dpi)
    with reporting_errors():
        run_inspect(u.sentence, u.model, u.dtype.value, u.revision, show_, written, u.truncate)


def run_inspect(
    text: str, spec: str, dtype: str, revision: str | None, show_: ModelShow, written: ModelWritten, truncate: bool = False,
) -> None:
    """``attn inspect --model``: tables, JSON, CSV (every layer, or --layer's), or one layer as Markdown and pictures; with
    SENTENCE - and jsonl, a record per line of stdin. ``truncate``: a text over the model's positions keeps its first tokens."""
    from ..models.pipeline import inspect_model

    model = load(spec, dtype, revision, show_)
    if text == "-" and written.fmt is OutputFormat.jsonl:
        stream_with_model(model, show_, written, truncate)
        return
    if text == "-":
        stdin_binary("the texts")
        text = read_stdin(written.max_tokens)
    result = inspect_model(text, model, show_, truncate)
    save_model_views(result, written)
    if written.fmt is OutputFormat.table:
        from ..render_model_table import model_renderables

        show(lambda width: model_renderables(result, width))
    elif written.fmt is OutputFormat.csv:
        from ..render_csv import model_csv

        c, run = result.config, result.run
        layers = list(range(c.layers)) if show_.layer is None else [show_.layer]
        heads = list(range(c.heads)) if show_.head is None else [show_.head]
        out(model_csv(result.text, run.tokens, run.scores, run.attentions, layers, heads, run.value_norms).encode())
    elif written.fmt is OutputFormat.markdown:
        from ..render_markdown import inspection_markdown

        assert result.layer is not None  # the rules of options.py ask Markdown for a --layer
        out(inspection_markdown(result.layer, dims=written.dims).encode())
    else:  # written a layer at a time: a large model's record is gigabytes of text, never whole in memory
        from ..render_json import dumps_in_parts
        from ..render_model_json import keep_model_fields, model_record

        record = keep_model_fields(model_record(result), written.fields)
        with writing():
            for part in dumps_in_parts(record, "layers", pretty=written.fmt is OutputFormat.json):
                sys.stdout.buffer.write(part)
            sys.stdout.buffer.flush()


def save_model_views(result: ModelInspection, written: ModelWritten) -> None:
    """--save with --model: one layer's (or head's) views of static attention with --layer L; else the
    model page (.html: every layer and head, the rollout) or every head as thumbnails (--layer all)."""
    from ..saving import save, save_model

    if result.layer is not None:
        layer = result.layer
        saved(list(written.saves), lambda path: save(layer, path, written.dpi))
    else:
        saved(list(written.saves), lambda path: save_model(result, path, written.dpi))


def model_json(result: ModelInspection, fields: tuple[str, ...], pretty: bool = False) -> bytes:
    """The attnviz.model/1 record of ``result``, with just ``fields`` (all when empty)."""
    from ..render_json import dumps
    from ..render_model_json import keep_model_fields, model_record

    return dumps(keep_model_fields(model_record(result), fields), pretty=pretty)


def stream_with_model(model: Model, show_: ModelShow, written: ModelWritten, truncate: bool = False) -> None:
    """One attnviz.model/1 line per line of stdin, written as each is done; a bad line stops the
    stream (--on-error fail) or gets an attnviz.error/1 line and a message (skip)."""
    from ..lines import TooLong, bad_line, error_record, numbered_lines
    from ..models.pipeline import inspect_model
    from ..pipeline import max_input_bytes, too_long_error
    from ..render_json import dumps

    stdin = stdin_binary("the texts")
    for number, line in numbered_lines(stdin, max_input_bytes(written.max_tokens)):
        try:
            if isinstance(line, TooLong):
                raise too_long_error(written.max_tokens)
            data = model_json(inspect_model(line, model, show_, truncate), written.fields)
        except AttnvizError as error:
            say(bad_line(number, error, written.on_error))
            data = dumps(error_record(number, line, error))
        out(data)


def compare_with_model(u: Usage) -> None:
    """``attn compare --model``, from the run's options."""
    from ..saving import FIGURE_FORMATS

    saves = check_saves(u.save, FIGURE_FORMATS)
    with reporting_errors():
        run_compare((u.first, u.second), u.focus, u.model, u.dtype.value, u.revision, u.top_k, u.fmt, saves, u.dpi, u.truncate, u.hide_special, u.weighting.value)


def run_compare(
    texts: tuple[str, str], focus: str, spec: str, dtype: str, revision: str | None, top_k: int, fmt: CompareFormat, saves: list[Path], dpi: int,
    truncate: bool = False, hide_special: bool = False, weighting: str = "attention",
) -> None:
    """``attn compare --model``: the word in both texts through the model (each text cut to its positions
    with ``truncate``; special tokens listed apart with ``hide_special``; ``weighting`` "norm": value-weighted),
    then tables, Markdown or JSON."""
    from ..models.pipeline import compare_model

    model = load(spec, dtype, revision)
    comparison, truncated = compare_model(texts, model, focus, top_k, truncate, hide_special, weighting)
    if saves:
        from ..saving import save_drift

        saved(saves, lambda path: save_drift(comparison, model.config, path, dpi))
    if fmt is CompareFormat.table:
        from ..render_model_table import comparison_renderables

        show(lambda width: comparison_renderables(comparison, model.config, truncated))
        return
    if fmt is CompareFormat.markdown:
        from ..render_markdown_views import model_comparison_markdown

        out(model_comparison_markdown(comparison, model.config).encode())
        return
    from ..render_json import dumps
    from ..render_model_json import comparison_record

    out(dumps(comparison_record(comparison, model.config, truncated), pretty=fmt is CompareFormat.json))

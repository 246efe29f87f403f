"""The ``attn`` command: parse -> load -> compute -> render. Only wiring lives here.

Unlike the rest of the package, this module evaluates its annotations where they are written (no
``from __future__ import annotations``): Typer reads every command's parameters at each start, and
evaluating ~370 annotation strings there cost each run 13 ms, more than the rest of building the app.
"""

import copy
import io
import os
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Optional

import typer

from .errors import AttnvizError, output_failed, printable, quoted
from .loading import load
from .pipeline import compare_sentences, inspect_one, max_input_bytes, too_long_error, valid_text
from .projections import Projections, identity, load_weights, random_xavier
from .render_json import check_fields, comparison_record, dumps
from .results import InspectionBatch, InspectOptions
from .vectors import DEFAULT_NAME, Embeddings

EXAMPLES = """\
Examples:

\b
  attn inspect "I sat on the river bank"
  attn inspect "I deposited money at the bank" --heads 5 --dims 4
  attn inspect "the cat sat on the mat" --projections random --seed 7 --causal
  attn inspect "dog bites man" --positions sinusoidal
  attn inspect "I sat on the river bank" --focus bank --neighbors 5
  attn inspect "I sat on the river bank" --format json | jq '.heads[0].weights'
  printf 'river bank\\nmoney bank\\n' | attn inspect - --format jsonl
  attn inspect "hello world" --vectors ~/glove.6B.100d.txt
  attn inspect "I sat on the river bank" --heads 2 --save bank.svg --save bank.html
"""

app = typer.Typer(
    name="attn",
    help="See self-attention over real word embeddings: scores, softmax weights and contextualized vectors.",
    epilog="Run 'attn inspect --help' for the options and examples. Exit codes: 0 ok, 1 bad input or data, 2 bad usage.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
)


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    markdown = "markdown"
    csv = "csv"


class OnError(StrEnum):
    fail = "fail"
    skip = "skip"


class ProjectionKind(StrEnum):
    identity = "identity"
    random = "random"


class OovPolicy(StrEnum):
    skip = "skip"
    zero = "zero"
    error = "error"


class VectorsFormat(StrEnum):
    auto = "auto"
    word2vec = "word2vec"
    word2vec_binary = "word2vec-binary"
    glove = "glove"
    fasttext = "fasttext"
    gensim = "gensim"


class Positions(StrEnum):
    none = "none"
    sinusoidal = "sinusoidal"


class Dtype(StrEnum):
    float32 = "float32"
    float64 = "float64"


class ReportFormat(StrEnum):
    table = "table"
    json = "json"


STREAMED = (OutputFormat.jsonl, OutputFormat.csv, OutputFormat.markdown)  # one record per sentence


def _vectors_format(chosen: VectorsFormat) -> str | None:
    """The format to read --vectors as; None to detect it."""
    return None if chosen is VectorsFormat.auto else chosen.value


def _say(message: str) -> None:
    """A message line on stderr (the text is already printable)."""
    sys.stderr.write(f"attn: {message}\n")


@contextmanager
def _reporting_errors() -> Iterator[None]:
    """Turn our errors into one line on stderr and exit 1; end quietly when stdout's reader goes away."""
    try:
        yield
    except AttnvizError as error:
        _say(f"error: {error}")
        raise typer.Exit(1) from None
    except BrokenPipeError:  # the reader went away (`| head`): stop quietly, as Unix tools do
        raise typer.Exit(_quiet_after_closed_pipe()) from None
    except KeyboardInterrupt:
        _say("interrupted")
        raise typer.Exit(130) from None
    except (typer.BadParameter, typer.Exit):  # usage errors (exit 2) and exits: Typer reports them
        raise
    except Exception as error:  # a bug of ours: one line for the user, the traceback on request
        if os.environ.get("ATTN_DEBUG"):
            raise
        _say(_internal_error(error))
        raise typer.Exit(1) from None


def _internal_error(error: Exception) -> str:
    return f"internal error: {type(error).__name__}: {printable(str(error))} (set ATTN_DEBUG=1 for a traceback; please report it)"


def run() -> None:
    """The ``attn`` program: the app, then stdout flushed here, so that output that cannot be written
    (``--help`` to a full disk, say) is one line and exit 1, not a traceback at the interpreter's exit."""
    try:
        app_for(sys.argv[1:])(prog_name="attn")  # ends in SystemExit
        code: int | str | None = 0
    except SystemExit as done:
        code = done.code
    except BrokenPipeError:
        code = _quiet_after_closed_pipe()
    except OSError as error:  # raised where Click writes (help, usage) rather than our commands
        _say(f"error: {output_failed(error)}")
        code = 1
    except KeyboardInterrupt:
        _say("interrupted")
        code = 130
    except Exception as error:  # a bug of ours outside a command's own reporting: still one line
        if os.environ.get("ATTN_DEBUG"):
            raise
        _say(_internal_error(error))
        code = 1
    try:
        sys.stdout.flush()
    except BrokenPipeError:
        code = _quiet_after_closed_pipe()
    except OSError as error:
        _say(f"error: {output_failed(error)}")
        code = 1
    sys.exit(code)


def app_for(args: list[str]) -> typer.Typer:
    """The app with only the command that ``args`` run: Typer builds the options of every command it
    holds at each start, and a run needs those of one (building all twelve took a JSON run 4 ms of its
    13). The whole app for anything else (no command, ``--help``, ``--version``, a name that is no
    command), so that help lists every command and a misspelt name is told the right ones."""
    name = args[0] if args else None
    commands = [c for c in app.registered_commands if (c.name or typer.main.get_command_name(getattr(c.callback, "__name__", ""))) == name]
    groups = [g for g in app.registered_groups if g.name == name]
    if not commands and not groups:
        return app
    lean = copy.copy(app)
    lean.registered_commands, lean.registered_groups = commands, groups
    return lean


def _quiet_after_closed_pipe() -> int:
    """stdout's reader went away (``| head``): end quietly with 141, as Unix tools do."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())  # so the final flush at exit does not fail again
    return 141


def _version(value: bool) -> None:
    if value:
        from . import __version__

        with _reporting_errors():
            _out(f"attn {__version__}\n".encode())
        raise typer.Exit()


@app.callback()
def main(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")] = False,
) -> None:
    """See self-attention over real word embeddings."""


# ---- options shared by the commands: declared once ---------------------------------------------------

VectorsOption = Annotated[Optional[str], typer.Option("--vectors", envvar="ATTN_VECTORS", help=f"Embeddings: a word2vec, GloVe or fastText file, or '{DEFAULT_NAME}' (the shipped default).", show_default=False)]
VectorsFormatOption = Annotated[VectorsFormat, typer.Option("--vectors-format", help="Format of --vectors; 'auto' detects it from the file.")]
TrustPickleOption = Annotated[bool, typer.Option("--trust-pickle", help="Allow loading a gensim .kv/.model file, which is a pickle and can run code: only for files you trust.")]
HeadsOption = Annotated[int, typer.Option("--heads", min=1, help="Number of attention heads; must divide the embedding dimension.")]
ProjectionsOption = Annotated[ProjectionKind, typer.Option("--projections", help="Q/K/V matrices: identity (plain dot-product attention over the embeddings) or random (Xavier-uniform, as PyTorch initialises them).")]
SeedOption = Annotated[int, typer.Option("--seed", min=0, max=2**63 - 1, help="Seed of --projections random (0 to 2^63-1).")]
WeightsOption = Annotated[Optional[Path], typer.Option("--weights", help="An .npz with arrays wq, wk, wv and optional wo (shapes: docs/guide.md).", show_default=False)]
NoScaleOption = Annotated[bool, typer.Option("--no-scale", help="Do not divide scores by sqrt(d_k).")]
CausalOption = Annotated[bool, typer.Option("--causal", help="Mask future tokens: each token attends only to itself and earlier ones.")]
OovOption = Annotated[OovPolicy, typer.Option("--oov", help="Unknown words: skip them (noted on stderr), give them a zero vector, or stop with an error.")]
FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="table (Rich, for people), json (one document), jsonl (one line per record), markdown (GitHub tables) or csv (one row per head, query and key).")]
PositionsOption = Annotated[Positions, typer.Option("--positions", help="Word order: none (static embeddings carry none: reordering the words only reorders the outputs) or sinusoidal (the original Transformer's encoding, added to the embeddings).")]
MaxTokensOption = Annotated[int, typer.Option("--max-tokens", min=1, help="Refuse sentences with more tokens than this.")]


def _check_projections(projections: ProjectionKind, weights: Path | None, neighbors: int) -> None:
    """Usage errors of the projection options, found before anything is loaded."""
    if weights is not None and projections is ProjectionKind.random:
        raise typer.BadParameter("--weights and --projections random exclude each other", param_hint="--weights")
    if neighbors and (weights is not None or projections is not ProjectionKind.identity):
        kind = "--weights" if weights is not None else f"--projections {projections.value}"
        raise typer.BadParameter(
            "--neighbors compares vectors with the vocabulary, so the outputs must stay in the embedding space: "
            f"it needs identity projections, not {kind}", param_hint="--neighbors",
        )


def _setup(
    vectors: str | None, vectors_format: VectorsFormat, trust_pickle: bool, projections: ProjectionKind,
    weights: Path | None, seed: int, heads: int,
) -> tuple[Embeddings, Projections]:
    """The embeddings and projection matrices the options name."""
    embeddings = _load_vectors(vectors, _vectors_format(vectors_format), trust_pickle)
    if weights is not None:
        return embeddings, load_weights(weights, d_model=embeddings.dim, heads=heads)
    return embeddings, random_xavier(embeddings.dim, seed) if projections is ProjectionKind.random else identity()


def _show(build: Callable[[int], Any]) -> None:
    """Print the Rich renderable ``build(width)`` makes for stdout's width.

    Rich pads every cell with spaces; where there is no colour (a pipe, a file, NO_COLOR) the lines
    are written without those trailing spaces, as a CI log or ``diff`` wants them.
    """
    from rich.console import Console

    console = Console(highlight=False, markup=False, emoji=False)  # we never use markup: safer and faster
    renderable = build(console.width)
    if console.color_system is not None:
        with _writing():
            console.print(renderable)
        return
    text = io.StringIO()  # rendered apart from stdout, then written whole
    Console(file=text, width=console.width, color_system=None, highlight=False, markup=False, emoji=False).print(renderable)
    _out("\n".join(line.rstrip() for line in text.getvalue().split("\n")).encode())


@contextmanager
def _writing() -> Iterator[None]:
    """Around a write to stdout: a failure (a full disk) becomes one error line; a closed pipe passes."""
    try:
        yield
    except BrokenPipeError:
        raise
    except OSError as error:
        raise output_failed(error) from error


def _out(data: bytes) -> None:
    """``data`` to stdout, flushed."""
    with _writing():
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()


def _write(one: InspectionBatch, fmt: OutputFormat, dims: int, fields: tuple[str, ...]) -> None:
    """One inspected sentence (a batch of one) to stdout in ``fmt``, written whole."""
    for note in one.notes[0]:
        _say(note)
    if fmt is OutputFormat.table:
        from .render_table import inspection_renderables

        _show(lambda width: inspection_renderables(one.inspection(0), dims=dims, width=width))
        return
    from .render_records import RecordRenderer

    renderer = RecordRenderer(fmt.value, fields, dims)
    _out(renderer.header() + renderer.records(one, [1])[0])


def _parse_fields(fields: str | None, fmt: OutputFormat, check: Callable[[tuple[str, ...]], None] = check_fields) -> tuple[str, ...]:
    """--fields as names, checked by ``check`` (which raises ValueError) before anything is loaded."""
    if not fields:
        return ()
    if fmt not in (OutputFormat.json, OutputFormat.jsonl):
        raise typer.BadParameter("--fields applies to --format json and jsonl", param_hint="--fields")
    names = tuple(name.strip() for name in fields.split(",") if name.strip())
    try:
        check(names)
    except ValueError as error:
        raise typer.BadParameter(str(error), param_hint="--fields") from None
    return names


INSPECT_GROUPS = {  # inspect's options in --help, by what they are for (the rest: "Output")
    "Static vectors and attention": (
        "vectors", "vectors_format", "trust_pickle", "heads", "projections", "seed", "weights", "no_scale", "causal",
        "oov", "positions", "max_tokens",
    ),
    "A real model (--model)": ("model", "layer", "head", "dtype", "rollout"),
    "What to look at": ("focus", "neighbors", "top_k"),
}


class GroupedOptions(typer.core.TyperCommand):
    """A command whose --help lists its options in the groups of :data:`INSPECT_GROUPS`, so that 25
    options read as four short lists rather than one long one."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        sections: dict[str, list[tuple[str, str]]] = {name: [] for name in (*INSPECT_GROUPS, "Output")}
        arguments = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append(record)
                continue
            group = next((name for name, members in INSPECT_GROUPS.items() if param.name in members), "Output")
            sections[group].append(record)
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        for name, records in sections.items():
            if records:
                with formatter.section(f"{name} options"):
                    formatter.write_dl(records)


@app.command(epilog=EXAMPLES, cls=GroupedOptions)
def inspect(
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
    focus: Annotated[Optional[str], typer.Option("--focus", help="Show one query token's computation step by step: a word (every occurrence), word@N (its N-th occurrence) or a position.", show_default=False)] = None,
    neighbors: Annotated[int, typer.Option("--neighbors", min=0, help="For each token (or the --focus token), the K nearest vocabulary words before and after attention.")] = 0,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="Keys listed per query in each head's summary.")] = 3,
    dims: Annotated[int, typer.Option("--dims", min=1, help="Vector components shown in tables and Markdown.")] = 6,
    fields: Annotated[Optional[str], typer.Option("--fields", help="JSON only: keep just these keys, comma-separated (e.g. tokens,weights); head keys (scores, weights, summary, heads.output) keep heads with just those.", show_default=False)] = None,
    on_error: Annotated[OnError, typer.Option("--on-error", help="With SENTENCE -: a bad line stops the stream (fail), or is reported and passed over (skip; jsonl writes an attnviz.error/1 record for it).")] = OnError.fail,
    max_tokens: MaxTokensOption = 512,
    save: Annotated[Optional[list[Path]], typer.Option("--save", metavar="FILE", help="Also write the weights as a picture or page, by extension: .svg, .png, .pdf (matplotlib heatmaps, one panel per head) or .html (one self-contained interactive page; with --model, every layer and head). Repeatable.", show_default=False)] = None,
    dpi: Annotated[int, typer.Option("--dpi", min=30, max=1200, help="Resolution of --save .png (and of raster parts of .pdf).")] = 200,
    model: Annotated[Optional[str], typer.Option("--model", help="A real transformer instead of static vectors: a folder with config.json, model.safetensors and tokenizer.json, or a Hub id (org/name) in the Hugging Face cache. BERT, RoBERTa, DistilBERT and GPT-2 run, in NumPy.", show_default=False)] = None,
    layer: Annotated[Optional[str], typer.Option("--layer", metavar="L|all", help="With --model: show this layer's heads (0-based, as in JSON); all: every layer (--save .svg/.png/.pdf draws every head as a thumbnail).", show_default=False)] = None,
    head: Annotated[Optional[int], typer.Option("--head", min=0, help="With --model and --layer: show just this head (0-based).", show_default=False)] = None,
    dtype: Annotated[Dtype, typer.Option("--dtype", help="With --model: float32, or float64 for exact comparisons.")] = Dtype.float32,
    rollout: Annotated[bool, typer.Option("--rollout", help="With --model: attention rollout (Abnar and Zuidema 2020), which input tokens each token draws on through the layers: a table of the last layer's (or --layer's), every layer's in JSON.")] = False,
) -> None:
    """Run self-attention over a sentence and show scores, weights and contextualized vectors.

    With SENTENCE - and --format jsonl, csv or markdown, every line of stdin is a sentence: records are
    written in input order as lines arrive, using every core for bulk input.
    """
    if model is not None or layer is not None or head is not None or rollout:
        layer_number, all_layers = _parse_layer(layer)
        _check_model_usage(
            model, layer_number, head, fmt, sentence, vectors=vectors, weights=weights, projections=projections,
            neighbors=neighbors or None, save=save, positions=positions, heads=heads, causal=causal,
            no_scale=no_scale, seed=seed, oov=oov, focus=focus, rollout=rollout, all_layers=all_layers,
        )
        from .render_model import check_model_fields

        shown = ModelShow(layer_number, head, focus, top_k, _parse_fields(fields, fmt, check_model_fields), rollout)
        model_saves = _check_saves(save or [], streamed=sentence == "-" and fmt is OutputFormat.jsonl)
        with _reporting_errors():
            _inspect_model(sentence, model or "", shown, fmt, dtype, on_error, max_tokens, model_saves, dims, dpi)
        return
    streamed = sentence == "-" and fmt in STREAMED
    kept_fields = _parse_fields(fields, fmt)
    saves = _check_saves(save or [], streamed=streamed)
    _check_projections(projections, weights, neighbors)
    if fmt is OutputFormat.csv and (focus or neighbors):
        option = "--focus" if focus else "--neighbors"
        raise typer.BadParameter(
            f"{option} has no place in CSV's rows of (head, query, key); use --format table, markdown or json",
            param_hint=option,
        )
    with _reporting_errors():
        embeddings, chosen = _setup(vectors, vectors_format, trust_pickle, projections, weights, seed, heads)
        options = InspectOptions(
            heads=heads, scale=not no_scale, causal=causal, oov=oov.value, max_tokens=max_tokens,
            top_k=top_k, focus=focus, neighbors=neighbors, fields=() if saves else kept_fields, positions=positions.value,
        )
        if sentence == "-" and sys.stdin is None:
            raise AttnvizError("stdin is closed, and SENTENCE - reads the sentences from it")
        if streamed:
            from .batch import Job, OutputOptions, stream_records  # worker processes: only for streams
            from .terminal import stream_progress

            output = OutputOptions(fmt=fmt.value, fields=kept_fields, dims=dims, on_error=on_error.value)
            with stream_progress() as progress:
                stream_records(Job(embeddings, chosen, options, output), sys.stdin.buffer, sys.stdout.buffer, _say, progress=progress)
            return
        if sentence == "-":
            sentence = _read_stdin(max_input_bytes(max_tokens), max_tokens)
        one = inspect_one(sentence, embeddings, chosen, options)
        if saves:
            from .saving import save as save_picture

            for path in saves:
                save_picture(one.inspection(0), path, dpi)
                _say(f"saved {printable(str(path))}")
        _write(one, fmt, dims, kept_fields)


def _parse_layer(value: str | None) -> tuple[int | None, bool]:
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


def _check_model_usage(
    model: str | None, layer: int | None, head: int | None, fmt: OutputFormat, sentence: str, **others: Any,
) -> None:
    """Usage errors of --model, found before anything is loaded: what it needs, and what it does not take."""
    all_layers = others.pop("all_layers")
    if model is None:
        if others.get("rollout"):
            raise typer.BadParameter("--rollout follows attention through a model's layers: it needs --model", param_hint="--rollout")
        given = "--layer" if layer is not None or all_layers else "--head"
        raise typer.BadParameter(f"{given} chooses among a model's heads: it needs --model", param_hint=given)
    if head is not None and layer is None:
        raise typer.BadParameter("--head needs one --layer L, not all" if all_layers else "--head needs --layer: which layer's head", param_hint="--head")
    saves = others.pop("save") or []
    if fmt in (OutputFormat.markdown, OutputFormat.csv):
        what = f"--format {fmt.value}"
        if layer is None:
            raise typer.BadParameter(f"{what} with --model shows one layer's heads: say which with --layer", param_hint="--layer")
        for option in ("focus", "rollout"):
            if others.get(option):
                raise typer.BadParameter(f"--{option} with --model writes table or json, not {what}", param_hint=f"--{option}")
    if saves:
        figures = [p for p in saves if p.suffix.lower() != ".html"]
        if figures and layer is None and not all_layers:
            raise typer.BadParameter(
                f"--save {figures[0].suffix} with --model draws a layer's heads (--layer L) or every head (--layer all)", param_hint="--layer",
            )
    if sentence == "-" and fmt in (OutputFormat.markdown, OutputFormat.csv):
        raise typer.BadParameter("SENTENCE - with --model streams as jsonl only", param_hint="SENTENCE")
    others.pop("focus", None)
    others.pop("rollout", None)
    _refuse_static_options(others)


STATIC_DEFAULTS: dict[str, Any] = {  # options of static vectors, at their defaults; a model takes none of them
    "vectors": None, "weights": None, "projections": ProjectionKind.identity, "neighbors": None,
    "positions": Positions.none, "heads": 1, "causal": False, "no_scale": False, "seed": 0,
    "oov": OovPolicy.skip,
}


def _refuse_static_options(given: dict[str, Any]) -> None:
    """A usage error for the first option of static vectors given a value with --model."""
    changed = [name for name, value in given.items() if value not in (STATIC_DEFAULTS[name], [], 0 if name == "neighbors" else None)]
    if changed:
        option = "--" + changed[0].replace("_", "-")
        raise typer.BadParameter(
            f"{option} is for static vectors; a model has its own heads, projections and positions (--save, Markdown and CSV take a --layer)",
            param_hint=option,
        )


@dataclass(frozen=True, slots=True)
class ModelShow:
    """What of a model's run ``attn inspect --model`` shows: a layer and head (None: all), the --focus
    word and how many words to list for it, the JSON fields kept, and whether to add the rollout."""

    layer: int | None = None
    head: int | None = None
    focus: str | None = None
    top_k: int = 3
    fields: tuple[str, ...] = ()
    rollout: bool = False


def _inspect_model(
    text: str, spec: str, shown: ModelShow, fmt: OutputFormat, dtype: Dtype, on_error: OnError, max_tokens: int,
    saves: list[Path], dims: int, dpi: int,
) -> None:
    """attn inspect --model: run the text through the model, then show it as tables, JSON, or one
    layer as Markdown, CSV and pictures; with SENTENCE - and jsonl, every line of stdin is a text and
    gets a record of its own."""
    from .models import load_model

    loaded = load_model(spec, dtype=dtype.value)
    c = loaded.config
    if shown.layer is not None and shown.layer >= c.layers:
        raise typer.BadParameter(f"{quoted(c.name)} has layers 0 to {c.layers - 1}", param_hint="--layer")
    if shown.head is not None and shown.head >= c.heads:
        raise typer.BadParameter(f"{quoted(c.name)} has heads 0 to {c.heads - 1}", param_hint="--head")
    if text == "-" and sys.stdin is None:
        raise AttnvizError("stdin is closed, and SENTENCE - reads the texts from it")
    if text == "-" and fmt is OutputFormat.jsonl:
        _stream_model(loaded, shown, on_error, max_tokens)
        return
    if text == "-":
        text = _read_stdin(max_input_bytes(max_tokens), max_tokens)
    text = valid_text(text)
    run = loaded.run(text)
    if shown.layer is None and saves:
        _model_saves(run, loaded.config, text, saves, dpi)
    if shown.layer is not None and (saves or fmt in (OutputFormat.markdown, OutputFormat.csv)):
        _model_layer_views(run, loaded.config, text, (shown.layer, shown.head), fmt, saves, shown.top_k, dims, dpi)
        if fmt in (OutputFormat.markdown, OutputFormat.csv):
            return
    record, show = _model_result(run, loaded.config, text, shown)
    if fmt is OutputFormat.table:
        _show(show)
        return
    _out(dumps(record(), pretty=fmt is OutputFormat.json))


def _model_saves(run: Any, config: Any, text: str, saves: list[Path], dpi: int) -> None:
    """--save with --model and no one layer: the model page (.html: every layer and head, the chosen
    head in full, the rollout), or every head as a thumbnail (.svg/.png/.pdf, with --layer all)."""
    from .saving import save_model

    for path in saves:
        save_model(run, config, text, path, dpi)
        _say(f"saved {printable(str(path))}")


def _model_layer_views(
    run: Any, config: Any, text: str, chosen: tuple[int, int | None], fmt: OutputFormat, saves: list[Path],
    top_k: int, dims: int, dpi: int,
) -> None:
    """One layer of a model run (or one head of it: ``chosen`` is (layer, head or None)) through the
    views of static attention: --save pictures and pages, and Markdown or CSV on stdout."""
    from .render_model import layer_inspection

    layer, head = chosen
    inspection = layer_inspection(run, config, text, layer, top_k, head)
    if saves:
        from .saving import save as save_picture

        for path in saves:
            save_picture(inspection, path, dpi)
            _say(f"saved {printable(str(path))}")
    if fmt in (OutputFormat.markdown, OutputFormat.csv):
        from .render_records import RecordRenderer

        renderer = RecordRenderer(fmt.value, (), dims)
        _out(renderer.header() + renderer.records(InspectionBatch.of(inspection), [1])[0])


def _model_result(run: Any, c: Any, text: str, shown: ModelShow):
    """A model's run of one text: (a maker of its JSON record, a maker of its tables)."""
    from .models.words import focus as focus_on
    from .models.words import focus_units, run_words
    from .render_model import focus_record, keep_model_fields, model_record, model_renderables

    focused = None
    if shown.focus is not None:
        words = run_words(run, text)
        focused = (focus_on(run, words, focus_units(words, shown.focus, len(run.tokens))), words, shown.top_k)

    def record() -> dict[str, Any]:
        made = model_record(run, c, text, shown.layer, shown.head, shown.rollout)
        if focused is not None:
            made |= focus_record(focused[0], focused[1], shown.layer, shown.head, shown.top_k)
        return keep_model_fields(made, shown.fields)

    return record, lambda width: model_renderables(run, c, text, shown.layer, shown.head, width, focused, shown.rollout)


def _stream_model(loaded: Any, shown: ModelShow, on_error: OnError, max_tokens: int) -> None:
    """One attnviz.model/1 line per line of stdin, written as each is done; a bad line stops the
    stream (--on-error fail) or gets an attnviz.error/1 line and a message (skip)."""
    from .render_json import error_record

    limit = max_input_bytes(max_tokens)
    for number, raw in enumerate(iter(lambda: sys.stdin.buffer.readline(limit + 1), b""), 1):
        line = raw.decode("utf-8", errors="replace").strip()
        if not line:
            continue
        try:
            if len(raw) > limit:
                raise too_long_error(max_tokens)
            text = valid_text(line)
            record, _ = _model_result(loaded.run(text), loaded.config, text, shown)
            data = dumps(record())
        except AttnvizError as error:
            if on_error is OnError.fail:
                raise AttnvizError(f"line {number}: {error}") from None
            _say(f"line {number} skipped: {error}")
            data = dumps(error_record(number, printable(line[:200]), str(error)))
        _out(data)
        rest = raw
        while len(rest) > limit and not rest.endswith(b"\n"):  # the rest of an over-long line is not a line of its own
            rest = sys.stdin.buffer.readline(limit + 1)


def _read_stdin(limit: int, max_tokens: int) -> str:
    """All of stdin as one sentence, read no further than ``limit`` bytes: more is refused."""
    data = sys.stdin.buffer.read(limit + 1)
    if len(data) > limit:
        raise too_long_error(max_tokens)
    return data.decode("utf-8", errors="replace").strip()


def _check_saves(paths: list[Path], *, streamed: bool, formats: tuple[str, ...] | None = None) -> list[Path]:
    """--save paths, or a usage error: an extension we do not write (of ``formats``, if given), a
    folder, or a stream."""
    if paths and streamed:
        raise typer.BadParameter("--save draws one sentence; it cannot follow a stream (SENTENCE -)", param_hint="--save")
    from .saving import SAVE_FORMATS, check_save_path

    for path in paths:
        problem = check_save_path(path, formats or SAVE_FORMATS)
        if problem:
            raise typer.BadParameter(problem, param_hint="--save")
    return paths


COMPARE_EXAMPLES = """\
Examples:

\b
  attn compare "I sat on the river bank" "I deposited money at the bank" --focus bank
  attn compare "the river bank" "the money bank" --focus bank --heads 5 --neighbors 8
  attn compare "the bank by the bank" "a bank" --focus bank@2 -f json | jq .output_cosine
"""


@app.command(epilog=COMPARE_EXAMPLES)
def compare(
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
    fmt: FormatOption = OutputFormat.table,
    neighbors: Annotated[Optional[int], typer.Option("--neighbors", min=0, help="Nearest vocabulary words shown before and after attention (identity projections only).  [default: 5]", show_default=False)] = None,
    max_tokens: MaxTokensOption = 512,
    top_k: Annotated[int, typer.Option("--top-k", min=1, help="With --model: words listed per layer for each text.")] = 2,
    model: Annotated[Optional[str], typer.Option("--model", help="A real transformer instead of static vectors (as for inspect): the word's two vectors compared after every layer.", show_default=False)] = None,
    dtype: Annotated[Dtype, typer.Option("--dtype", help="With --model: float32, or float64 for exact comparisons.")] = Dtype.float32,
    save: Annotated[Optional[list[Path]], typer.Option("--save", metavar="FILE", help="With --model: also draw the cosine between the word's two vectors, layer by layer, as .svg, .png or .pdf. Repeatable.", show_default=False)] = None,
    dpi: Annotated[int, typer.Option("--dpi", min=30, max=1200, help="Resolution of --save .png.")] = 200,
) -> None:
    """Follow one word into two sentences: its weights in each, its nearest words, and how far apart it ends up."""
    if fmt in (OutputFormat.markdown, OutputFormat.csv):
        raise typer.BadParameter(f"compare writes table, json or jsonl, not {fmt.value}", param_hint="--format")
    if save and model is None:
        raise typer.BadParameter("--save draws the word's drift through a model's layers: it needs --model", param_hint="--save")
    if model is not None:
        from .saving import FIGURE_FORMATS

        saves = _check_saves(save or [], streamed=False, formats=FIGURE_FORMATS)
        _refuse_static_options({
            "vectors": vectors, "weights": weights, "projections": projections, "neighbors": neighbors, "heads": heads,
            "causal": causal, "positions": positions, "no_scale": no_scale, "seed": seed, "oov": oov,
        })
        with _reporting_errors():
            _compare_model((first, second), focus, model, fmt, dtype, top_k, saves, dpi)
        return
    neighbors = 5 if neighbors is None else neighbors
    _check_projections(projections, weights, 0)
    if neighbors and (weights is not None or projections is not ProjectionKind.identity):
        _say("nearest words are left out: with projections other than identity the outputs are not in the embedding space")
        neighbors = 0
    with _reporting_errors():
        embeddings, chosen = _setup(vectors, vectors_format, trust_pickle, projections, weights, seed, heads)
        options = InspectOptions(
            heads=heads, scale=not no_scale, causal=causal, oov=oov.value, max_tokens=max_tokens,
            focus=focus, neighbors=neighbors, positions=positions.value,
        )
        comparison = compare_sentences(first, second, embeddings, chosen, options)
        for side in comparison.sides:
            for note in side.notes:
                _say(note)
        if fmt is OutputFormat.table:
            from .render_explain import comparison_renderables

            _show(lambda width: comparison_renderables(comparison))
            return
        _out(dumps(comparison_record(comparison), pretty=fmt is OutputFormat.json))


def _compare_model(
    texts: tuple[str, str], focus: str, spec: str, fmt: OutputFormat, dtype: Dtype, top_k: int, saves: list[Path], dpi: int,
) -> None:
    """attn compare --model: the word in both texts through the model, then tables or JSON."""
    from .models import load_model
    from .models.words import compare_word
    from .render_model import comparison_record, comparison_renderables

    loaded = load_model(spec, dtype=dtype.value)
    texts = (valid_text(texts[0]), valid_text(texts[1]))
    comparison = compare_word((loaded.run(texts[0]), loaded.run(texts[1])), texts, focus)
    if saves:
        from .saving import save_drift

        for path in saves:
            save_drift(comparison, loaded.config, path, dpi)
            _say(f"saved {printable(str(path))}")
    if fmt is OutputFormat.table:
        _show(lambda width: comparison_renderables(comparison, loaded.config, top_k))
        return
    _out(dumps(comparison_record(comparison, loaded.config, top_k), pretty=fmt is OutputFormat.json))


@app.command()
def demo(
    model: Annotated[Optional[str], typer.Option("--model", help="Tour a real transformer instead (a folder or a Hub id in the Hugging Face cache): 'bank' layer by layer, the head that reads 'river', every head at a glance.", show_default=False)] = None,
) -> None:
    """A guided tour: 'bank' in two contexts, a tiny example worked step by step, then several heads."""
    with _reporting_errors():
        if model is not None:
            from .demo import model_tour
            from .models import load_model

            loaded = load_model(model)
            _show(lambda width: model_tour(loaded, width=width))
            return
        from .demo import tour

        glove = load(None)
        _show(lambda width: tour(glove, width=width))


HEADS_EXAMPLES = """\
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


@app.command(epilog=HEADS_EXAMPLES)
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
    with _reporting_errors():
        from .engine import usable_cpus
        from .models import load_model
        from .models.corpus import corpus_patterns
        from .render_model import heads_csv, heads_record, heads_table
        from .terminal import corpus_progress

        loaded = load_model(model, dtype=dtype.value)
        skipped = 0

        def bad(line: int, text: str, error: AttnvizError) -> None:
            nonlocal skipped
            if on_error is OnError.fail:
                raise AttnvizError(f"line {line}: {error}")
            skipped += 1
            _say(f"line {line} skipped: {error}")

        start = time.perf_counter()
        with _text_lines(source) as (lines, total), corpus_progress(total) as progress:
            sums = corpus_patterns(loaded, lines, bad=bad, workers=workers or usable_cpus(), done=progress)
        record = heads_record(sums.mean(), loaded.config, sums.texts, sums.tokens, skipped)
        if fmt is HeadsFormat.table:
            seconds = time.perf_counter() - start
            _show(lambda width: heads_table(record, seconds))
        elif fmt is HeadsFormat.csv:
            _out(heads_csv(record).encode())
        else:
            _out(dumps(record, pretty=True))


@contextmanager
def _text_lines(source: str) -> Iterator[tuple[Iterator[tuple[int, str]], int | None]]:
    """The numbered non-empty lines of a file or of stdin (-), read as they are needed, and how many
    lines the file has (None for stdin), counted first for a progress bar."""
    if source == "-":
        if sys.stdin is None:
            raise AttnvizError("stdin is closed, and FILE - reads the texts from it")
        yield _numbered(io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8", errors="replace")), None
        return
    try:
        stream = open(source, encoding="utf-8", errors="replace")  # noqa: SIM115 (closed below)
    except OSError as error:
        raise AttnvizError(f"cannot read {quoted(source)}: {error.strerror or error}") from None
    with stream:
        total = sum(bytes(chunk).count(b"\n") for chunk in iter(lambda: stream.buffer.read(1 << 20), b""))
        stream.seek(0)
        yield _numbered(stream), total


def _numbered(stream: Any) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-empty line (decoded with errors replaced: already valid text)."""
    for number, line in enumerate(stream, 1):
        text = line.strip()
        if text:
            yield number, text


SCHEMAS = {
    "inspect": "inspect-1.schema.json", "compare": "compare-1.schema.json", "error": "error-1.schema.json",
    "vectors": "vectors-1.schema.json", "model": "model-1.schema.json", "model-compare": "model-compare-1.schema.json",
    "models": "models-1.schema.json", "heads": "heads-1.schema.json",
}


@app.command()
def schema(
    name: Annotated[Optional[str], typer.Argument(metavar="NAME", help="inspect, compare, error, vectors, model, model-compare, models or heads; all of them when left out.", show_default=False)] = None,
) -> None:
    """Print the JSON Schema of attnviz's JSON output: one by name, or all keyed by their schema id."""
    import json

    folder = Path(__file__).resolve().parent / "schemas"
    if name is not None and name not in SCHEMAS:
        raise typer.BadParameter(f"no schema {name!r}; choose from {', '.join(SCHEMAS)}", param_hint="NAME")
    chosen = [name] if name else list(SCHEMAS)
    loaded = {n: json.loads((folder / SCHEMAS[n]).read_text(encoding="utf-8")) for n in chosen}
    document = loaded[name] if name else {schema["title"]: schema for schema in loaded.values()}
    with _reporting_errors():
        _out((json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode())


# ---- attn vectors ----------------------------------------------------------------------------------

VECTORS_EXAMPLES = """\
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
    help="List, describe, search and convert word vectors.", epilog=VECTORS_EXAMPLES, no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(vectors_app, name="vectors")
ReportFormatOption = Annotated[ReportFormat, typer.Option("--format", "-f", help="table (for people) or json.")]


def _report(record: dict, table_of: Callable[[], object], fmt: ReportFormat) -> None:
    """``record`` as JSON, or the Rich renderable ``table_of()`` makes, on stdout."""
    if fmt is ReportFormat.json:
        _out(dumps(record, pretty=True))
        return
    _show(lambda width: table_of())


@vectors_app.command("list", epilog=VECTORS_EXAMPLES)
def vectors_list(fmt: ReportFormatOption = ReportFormat.table) -> None:
    """The named sets --vectors NAME can load: shipped, cached, and the full GloVe (an optional extra)."""
    with _reporting_errors():
        from .render_vectors import named_sets_record, named_sets_table
        from .store import named_sets

        found = named_sets()
        _report(named_sets_record(found), lambda: named_sets_table(found), fmt)


@vectors_app.command("info", epilog=VECTORS_EXAMPLES)
def vectors_info(
    spec: Annotated[Optional[str], typer.Argument(metavar="[NAME|PATH]", help="A named set, a vectors set folder or a file; the shipped vectors when left out.", show_default=False)] = None,
    vectors_format: VectorsFormatOption = VectorsFormat.auto,
    trust_pickle: TrustPickleOption = False,
    fmt: ReportFormatOption = ReportFormat.table,
) -> None:
    """Name, format, dimension, vocabulary, dtype, size on disk, load time, subwords and sample words."""
    with _reporting_errors():
        from .loading import describe
        from .render_vectors import report_record, report_table
        from .terminal import reading_progress

        with reading_progress(spec):
            report = describe(spec, fmt=_vectors_format(vectors_format), trust_pickle=trust_pickle)
        _report(report_record(report), lambda: report_table(report), fmt)


@vectors_app.command("neighbors", epilog=VECTORS_EXAMPLES)
def vectors_neighbors(
    word: Annotated[str, typer.Argument(metavar="WORD", help="The word whose nearest words to list.")],
    k: Annotated[int, typer.Option("-k", "--top", min=1, help="How many words.")] = 10,
    vectors: VectorsOption = None,
    vectors_format: VectorsFormatOption = VectorsFormat.auto,
    trust_pickle: TrustPickleOption = False,
    fmt: ReportFormatOption = ReportFormat.table,
) -> None:
    """The words nearest to WORD by cosine, over the whole vocabulary (one matrix product)."""
    with _reporting_errors():
        from .render_vectors import neighbors_record, neighbors_table
        from .store import nearest_words

        embeddings = _load_vectors(vectors, _vectors_format(vectors_format), trust_pickle)
        word = word.lower() if embeddings.lowercase else word
        found = nearest_words(embeddings, word, k)
        _report(neighbors_record(embeddings.name, word, found), lambda: neighbors_table(embeddings.name, word, found), fmt)


@vectors_app.command("convert", epilog=VECTORS_EXAMPLES)
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
    with _reporting_errors():
        from .store import convert
        from .terminal import byte_progress

        with byte_progress(source) as progress:  # convert watches its own reads
            done = convert(
                source, target, fmt=_vectors_format(vectors_format), limit=limit,
                trust_pickle=trust_pickle, replace=force, progress=progress,
            )
        _say(f"wrote {printable(str(done.folder))}: {done.vocab_size:,} words x {done.dim} ({done.dtype}) in {done.seconds:.1f} s; use --vectors {printable(str(done.folder))}")


# ---- attn model ------------------------------------------------------------------------------------

MODEL_EXAMPLES = """\
Examples:

\b
  attn model list
  attn model info sentence-transformers/all-MiniLM-L6-v2
  attn model download sentence-transformers/all-MiniLM-L6-v2
  attn inspect "I sat on the river bank" --model sentence-transformers/all-MiniLM-L6-v2 --focus bank
"""

model_app = typer.Typer(
    help="List, describe and download the real transformers --model runs (BERT, RoBERTa, DistilBERT, GPT-2).",
    epilog=MODEL_EXAMPLES, no_args_is_help=True, rich_markup_mode=None,
)
app.add_typer(model_app, name="model")


@model_app.command("list", epilog=MODEL_EXAMPLES)
def model_list(fmt: ReportFormatOption = ReportFormat.table) -> None:
    """The models of the Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub),
    and whether --model can run each. Offline."""
    with _reporting_errors():
        from .models.catalog import cached_models
        from .models.model import hub_cache
        from .render_model import model_list_record, model_list_table

        found = cached_models()
        _report(model_list_record(found), lambda: model_list_table(found, str(hub_cache())), fmt)


@model_app.command("info", epilog=MODEL_EXAMPLES)
def model_info(
    spec: Annotated[str, typer.Argument(metavar="MODEL", help="A model folder, or a Hub id (org/name) in the Hugging Face cache.")],
    fmt: ReportFormatOption = ReportFormat.table,
) -> None:
    """Architecture, layers and heads, widths, positions, parameters, size and tokenizer, from the files."""
    with _reporting_errors():
        from .models.catalog import describe_model
        from .render_model import model_info_record, model_info_table

        info = describe_model(spec)
        _report(model_info_record(info), lambda: model_info_table(info), fmt)


@model_app.command("download", epilog=MODEL_EXAMPLES)
def model_download(
    repo_id: Annotated[str, typer.Argument(metavar="ID", help="A Hub id, org/name.")],
    revision: Annotated[Optional[str], typer.Option("--revision", help="A branch, tag or commit; main when left out.", show_default=False)] = None,
) -> None:
    """Fetch a model's config.json, model.safetensors and tokenizer.json into the Hugging Face cache
    (the only command of attn that uses the network); later runs find it offline by its id."""
    with _reporting_errors():
        from .models.catalog import check_repo_id, download_model

        check_repo_id(repo_id)
        _say(f"downloading {printable(repo_id)} (config.json, model.safetensors, tokenizer.json)")
        folder = download_model(repo_id, revision)
        _say(f"ready: --model {printable(repo_id)} ({printable(str(folder))})")


SLOW_LOAD_SECONDS = 3.0  # a file that takes longer than this gets a tip: convert it once


def _load_vectors(spec: str | None, fmt: str | None, trust_pickle: bool) -> Embeddings:
    """``load``, with a progress bar for a large file on a terminal, and a tip when a file was slow."""
    start = time.perf_counter()
    from .terminal import reading_progress

    with reading_progress(spec):
        embeddings = load(spec, fmt=fmt, trust_pickle=trust_pickle)
    if spec is not None and Path(spec).is_file() and time.perf_counter() - start > SLOW_LOAD_SECONDS:
        _say(f"tip: 'attn vectors convert {printable(spec)} DIR' once, and --vectors DIR loads in milliseconds")
    return embeddings

"""What the commands share: their choices (enums), their options (declared once, as Annotated
types), and what a combination of options forbids, said in one table (:data:`RULES`) that one small
function (:func:`check_usage`) reads.

Annotations are evaluated where they are written (no ``from __future__ import annotations``): Typer
reads every command's parameters at each start, and evaluating them from strings there costs more than
building the app.
"""

from collections.abc import Callable
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, NamedTuple, Optional

import typer

from ..shipped import DEFAULT_NAME


class OutputFormat(StrEnum):
    table = "table"
    json = "json"
    jsonl = "jsonl"
    markdown = "markdown"
    csv = "csv"


class CompareFormat(StrEnum):  # what attn compare writes (one comparison: no CSV rows)
    table = "table"
    json = "json"
    jsonl = "jsonl"
    markdown = "markdown"


class HeadsFormat(StrEnum):  # what attn heads writes
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"
    partial = "partial"  # the run's sums, for attn merge (models/partial.py)


class MergeFormat(StrEnum):  # what attn merge writes: attn heads' reports
    table = "table"
    json = "json"
    csv = "csv"
    markdown = "markdown"


class Probe(StrEnum):  # attn heads --probe: a head detector (models/probes.py)
    induction = "induction"
    previous = "previous"
    duplicate = "duplicate"


class DemoFormat(StrEnum):  # what attn demo writes
    table = "table"
    markdown = "markdown"


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


class Weighting(StrEnum):  # --weighting: what a shown weight is (models/weighting.py)
    attention = "attention"
    norm = "norm"


class ReportFormat(StrEnum):
    table = "table"
    json = "json"


STREAMED = (OutputFormat.jsonl, OutputFormat.csv, OutputFormat.markdown)  # one record per sentence
HEAD_TABLES = (OutputFormat.markdown, OutputFormat.csv)  # a model's heads as tables of numbers: no --focus, --rollout or stream


def named_model(param: typer.CallbackParam, value: str | None) -> str | None:
    """--model (or MODEL) as given, refused when empty: ``--model "$MINILM"`` with the variable unset
    would otherwise name the current folder."""
    if value == "":
        name = param.opts[0] if param.param_type_name == "option" else param.human_readable_name
        raise typer.BadParameter(f"{name} is empty: give a model folder or a Hub id (is a shell variable unset?)")
    return value


def read_format(chosen: VectorsFormat) -> str | None:
    """The format to read --vectors as; None to detect it."""
    return None if chosen is VectorsFormat.auto else chosen.value


# ---- options shared by the commands: declared once ---------------------------------------------------

STATIC = "Static vectors and attention"  # inspect's --help lists its options under these headings
MODEL = "A real model (--model)"
LOOK = "What to look at"

VectorsOption = Annotated[Optional[str], typer.Option("--vectors", envvar="ATTN_VECTORS", help=f"Embeddings: a word2vec, GloVe or fastText file, or '{DEFAULT_NAME}' (the shipped default).", show_default=False, rich_help_panel=STATIC)]
VectorsFormatOption = Annotated[VectorsFormat, typer.Option("--vectors-format", help="Format of --vectors; 'auto' detects it from the file.", rich_help_panel=STATIC)]
TrustPickleOption = Annotated[bool, typer.Option("--trust-pickle", help="Allow loading a gensim .kv/.model file, which is a pickle and can run code: only for files you trust.", rich_help_panel=STATIC)]
HeadsOption = Annotated[int, typer.Option("--heads", min=1, help="Number of attention heads; must divide the embedding dimension.", rich_help_panel=STATIC)]
ProjectionsOption = Annotated[ProjectionKind, typer.Option("--projections", help="Q/K/V matrices: identity (plain dot-product attention over the embeddings) or random (Xavier-uniform, as PyTorch initialises them).", rich_help_panel=STATIC)]
SeedOption = Annotated[int, typer.Option("--seed", min=0, max=2**63 - 1, help="Seed of --projections random (0 to 2^63-1).", rich_help_panel=STATIC)]
WeightsOption = Annotated[Optional[Path], typer.Option("--weights", help="An .npz with arrays wq, wk, wv and optional wo (shapes: docs/guide.md).", show_default=False, rich_help_panel=STATIC)]
NoScaleOption = Annotated[bool, typer.Option("--no-scale", help="Do not divide scores by sqrt(d_k).", rich_help_panel=STATIC)]
CausalOption = Annotated[bool, typer.Option("--causal", help="Mask future tokens: each token attends only to itself and earlier ones.", rich_help_panel=STATIC)]
OovOption = Annotated[OovPolicy, typer.Option("--oov", help="Unknown words: skip them (noted on stderr), give them a zero vector, or stop with an error.", rich_help_panel=STATIC)]
FormatOption = Annotated[OutputFormat, typer.Option("--format", "-f", help="table (Rich, for people), json (one document), jsonl (one line per record), markdown (GitHub tables) or csv (one row per head, query and key; with --model, per layer too).")]
PositionsOption = Annotated[Positions, typer.Option("--positions", help="Word order: none (static embeddings carry none: reordering the words only reorders the outputs) or sinusoidal (the original Transformer's encoding, added to the embeddings).", rich_help_panel=STATIC)]
MaxTokensOption = Annotated[int, typer.Option("--max-tokens", min=1, help="Refuse sentences with more tokens than this.", rich_help_panel=STATIC)]
DtypeOption = Annotated[Dtype, typer.Option("--dtype", help="With --model: float32, or float64 for exact comparisons.", rich_help_panel=MODEL)]
RevisionOption = Annotated[Optional[str], typer.Option("--revision", help="For a model named by its Hub id: the version to run, a branch, tag or commit hash (as attn model download --revision fetched it); main when left out.", show_default=False, rich_help_panel=MODEL)]
TruncateOption = Annotated[bool, typer.Option("--truncate", help="With --model: a text over the model's positions keeps its first tokens (special ones where the tokenizer puts them), and says how many were cut; without it such a text is refused.", rich_help_panel=MODEL)]
HideSpecialOption = Annotated[bool, typer.Option("--hide-special", help="With --model: leave the special tokens ([CLS], [SEP], <s>, a BOS) out of tables, Markdown, figures and pages; nothing is renormalised: each row's weight on them is shown as 'to special tokens'. Labels, entropy and top keys stay over the whole row. JSON and CSV keep every token.", rich_help_panel=MODEL)]
WeightingOption = Annotated[Weighting, typer.Option("--weighting", help="With --model: attention (the softmax weights) or norm (value-weighted, Kobayashi et al. 2020: each weight times the norm of the vector its head moves from that key, ||v W_O||, rows renormalised to sum to 1). Everything shown (tables, patterns, labels, --focus, --rollout, pages, figures) then uses those; JSON adds the raw norms (value_norms).", rich_help_panel=MODEL)]
CompareFormatOption = Annotated[CompareFormat, typer.Option("--format", "-f", help="table (Rich, for people), json (one document), jsonl (one line) or markdown (GitHub tables).")]
HeadsFormatOption = Annotated[HeadsFormat, typer.Option("--format", "-f", help="table (for people), json, csv (one row per head), markdown (GitHub tables), or partial (the run's sums, for attn merge).")]
DemoFormatOption = Annotated[DemoFormat, typer.Option("--format", "-f", help="table (for people) or markdown (GitHub tables, for an issue or a CI job summary).")]
ReportFormatOption = Annotated[ReportFormat, typer.Option("--format", "-f", help="table (for people) or json.")]


class GroupedOptions(typer.core.TyperCommand):
    """A command whose plain --help lists its options under their ``rich_help_panel`` headings (the
    rest under "Output"), so that 25 options read as four short lists rather than one long one."""

    def format_options(self, ctx: Any, formatter: Any) -> None:
        sections: dict[str, list[tuple[str, str]]] = {name: [] for name in (STATIC, MODEL, LOOK, "Output")}
        arguments = []
        for param in self.get_params(ctx):
            record = param.get_help_record(ctx)
            if record is None:
                continue
            if param.param_type_name == "argument":
                arguments.append(record)
                continue
            sections[getattr(param, "rich_help_panel", None) or "Output"].append(record)
        if arguments:
            with formatter.section("Arguments"):
                formatter.write_dl(arguments)
        for name, records in sections.items():
            if records:
                with formatter.section(f"{name} options"):
                    formatter.write_dl(records)


# ---- what a combination of options forbids -----------------------------------------------------------


class Usage(NamedTuple):
    """A run's options as :data:`RULES` read them: the values (``usage.fmt``), which were given (on the
    command line or by an environment variable), and the source they run on."""

    values: dict[str, Any]
    given: frozenset[str]
    with_model: bool  # --model: a real model, not static vectors

    def __getattr__(self, name: str) -> Any:
        return self.values[name]


class Rule(NamedTuple):
    """A usage error (exit 2): when ``applies``, the run stops with ``message`` about ``option``."""

    option: str  # as --help names it, or SENTENCE
    applies: Callable[[Usage], bool]
    message: str | Callable[[Usage], str]


STATIC_ONLY = ("vectors", "vectors_format", "trust_pickle", "weights", "projections", "neighbors", "positions", "heads", "causal", "no_scale", "seed", "oov")


def _flag(option: str) -> str:
    """A parameter's option as --help names it (no_scale -> --no-scale)."""
    return "--" + option.replace("_", "-")


def _needs_model(option: str, what: str) -> Rule:
    return Rule(_flag(option), lambda u: not u.with_model and option in u.given, f"{_flag(option)} {what}: it needs --model")


def _static_only(option: str) -> Rule:
    name = _flag(option)
    return Rule(name, lambda u: u.with_model and option in u.given,
                f"{name} is for static vectors; a model has its own heads, projections and positions (--save, Markdown and CSV take a --layer)")


def _figures(u: Usage) -> list[Path]:
    return [p for p in u.save or [] if p.suffix.lower() != ".html"]


WEIGHTS_OR_RANDOM = Rule("--weights", lambda u: not u.with_model and u.weights is not None and u.projections is ProjectionKind.random,
                         "--weights and --projections random exclude each other")
NEIGHBORS_NEED_IDENTITY = Rule(
    "--neighbors", lambda u: not u.with_model and bool(u.neighbors) and (u.weights is not None or u.projections is not ProjectionKind.identity),
    lambda u: "--neighbors compares vectors with the vocabulary, so the outputs must stay in the embedding space: it needs "
              f"identity projections, not {'--weights' if u.weights is not None else f'--projections {u.projections.value}'}",
)
DTYPE_NEEDS_MODEL = _needs_model("dtype", "chooses the precision a model runs in")
REVISION_NEEDS_MODEL = _needs_model("revision", "chooses the version of a model's Hub id")
TRUNCATE_NEEDS_MODEL = _needs_model("truncate", "cuts a text to a model's positions")
HIDE_SPECIAL_NEEDS_MODEL = _needs_model("hide_special", "leaves out a model's special tokens (static vectors have none)")
NORM_NEEDS_MODEL = Rule("--weighting", lambda u: not u.with_model and u.weighting is Weighting.norm,
                        "--weighting norm weighs each weight by the vector a model's head moves (v W_O): it needs --model")
DATA_FORMATS = ("json", "jsonl", "csv")  # records for programs: they keep every token, as data
HIDE_SPECIAL_NOT_IN_DATA = Rule(
    "--hide-special", lambda u: u.with_model and u.hide_special and u.fmt.value in DATA_FORMATS,
    lambda u: f"--hide-special is for tables, Markdown, figures and pages; --format {u.fmt.value} is data and keeps every "
              "token (JSON's 'special' list marks them)",
)

RULES: dict[str, tuple[Rule, ...]] = {  # per command, checked in order: the first that applies is the error
    "inspect": (
        _needs_model("rollout", "follows attention through a model's layers"),
        _needs_model("layer", "chooses among a model's heads"),
        _needs_model("head", "chooses among a model's heads"),
        DTYPE_NEEDS_MODEL,
        REVISION_NEEDS_MODEL,
        TRUNCATE_NEEDS_MODEL,
        HIDE_SPECIAL_NEEDS_MODEL,
        NORM_NEEDS_MODEL,
        Rule("--head", lambda u: u.with_model and u.head is not None and u.all_layers, "--head needs one --layer L, not all"),
        Rule("--head", lambda u: u.with_model and u.head is not None and u.layer is None, "--head needs --layer: which layer's head"),
        Rule("--layer", lambda u: u.with_model and u.fmt is OutputFormat.markdown and u.layer is None,
             lambda u: "--format markdown with --model shows one layer's heads: say which with --layer"
                       + (" L (every layer is for csv and json)" if u.all_layers else "")),
        Rule("--layer", lambda u: u.with_model and u.fmt is OutputFormat.csv and u.layer is None and not u.all_layers,
             "--format csv with --model writes one layer's heads or every layer's: say which with --layer L or --layer all"),
        Rule("--focus", lambda u: u.with_model and u.fmt in HEAD_TABLES and u.focus is not None,
             lambda u: f"--focus with --model writes table or json, not --format {u.fmt.value}"),
        Rule("--rollout", lambda u: u.with_model and u.fmt in HEAD_TABLES and u.rollout,
             lambda u: f"--rollout with --model writes table or json, not --format {u.fmt.value}"),
        Rule("--layer", lambda u: u.with_model and bool(_figures(u)) and u.layer is None and not u.all_layers,
             lambda u: f"--save {_figures(u)[0].suffix} with --model draws a layer's heads (--layer L) or every head (--layer all)"),
        Rule("SENTENCE", lambda u: u.with_model and u.sentence == "-" and u.fmt in HEAD_TABLES, "SENTENCE - with --model streams as jsonl only"),
        HIDE_SPECIAL_NOT_IN_DATA,
        Rule("--hide-special", lambda u: u.with_model and u.hide_special and u.layer is not None and any(p.suffix.lower() == ".html" for p in u.save or []),
             "--hide-special leaves special tokens out of figures and the model page, but one layer's page (--layer L --save .html) "
             "shows every token: save the model page (no --layer) or a .svg/.png/.pdf"),
        *(_static_only(option) for option in STATIC_ONLY),
        _static_only("qkv"),  # inspect's alone
        WEIGHTS_OR_RANDOM,
        NEIGHBORS_NEED_IDENTITY,
        Rule("--focus", lambda u: not u.with_model and u.fmt is OutputFormat.csv and bool(u.focus),
             "--focus has no place in CSV's rows of (head, query, key); use --format table, markdown or json"),
        Rule("--neighbors", lambda u: not u.with_model and u.fmt is OutputFormat.csv and bool(u.neighbors),
             "--neighbors has no place in CSV's rows of (head, query, key); use --format table, markdown or json"),
        Rule("--qkv", lambda u: u.qkv and u.fmt is not OutputFormat.table,
             lambda u: f"--qkv adds tables; --format {u.fmt.value} keeps them with --fields heads.queries,heads.keys,heads.values (json, jsonl)"),
        Rule("--fields", lambda u: bool(u.fields) and u.fmt not in (OutputFormat.json, OutputFormat.jsonl), "--fields applies to --format json and jsonl"),
        Rule("--save", lambda u: bool(u.save) and u.sentence == "-" and u.fmt in STREAMED, "--save draws one sentence; it cannot follow a stream (SENTENCE -)"),
    ),
    "compare": (
        _needs_model("save", "draws the word's drift through a model's layers"),
        _needs_model("top_k", "lists the words a model's layers look at"),
        DTYPE_NEEDS_MODEL,
        REVISION_NEEDS_MODEL,
        TRUNCATE_NEEDS_MODEL,
        HIDE_SPECIAL_NEEDS_MODEL,
        NORM_NEEDS_MODEL,
        *(_static_only(option) for option in STATIC_ONLY),
        WEIGHTS_OR_RANDOM,
        NEIGHBORS_NEED_IDENTITY,
        HIDE_SPECIAL_NOT_IN_DATA,
    ),
}


def _random_input(option: str) -> tuple[Rule, Rule]:
    """attn heads: --sequences, --length and --seed shape the random sequences --probe builds without FILE."""
    name = _flag(option)
    return (
        Rule(name, lambda u: option in u.given and not u.probe, f"{name} shapes the random sequences --probe builds: it needs --probe"),
        Rule(name, lambda u: option in u.given and u.source is not None, f"{name} shapes the random sequences --probe builds when no FILE is given; with FILE the probes score its texts"),
    )


RULES["heads"] = (
    *_random_input("sequences"), *_random_input("length"), *_random_input("seed"),
    Rule("--probe", lambda u: bool(u.probe) and u.fmt is HeadsFormat.markdown, "--probe's scores are written as a table, json or csv, not markdown"),
    Rule("--truncate", lambda u: bool(u.probe) and u.source is None and "truncate" in u.given, "--truncate cuts long texts; --probe without FILE builds its own sequences, which fit"),
    Rule("--on-error", lambda u: bool(u.probe) and u.source is None and "on_error" in u.given, "--on-error is about the lines of FILE; --probe without FILE builds its own sequences"),
    Rule("--shard", lambda u: u.shard is not None and u.dask is not None, "--shard splits a run among jobs and --dask among a cluster's workers: give one"),
    Rule("--save", lambda u: bool(u.save) and u.fmt is HeadsFormat.partial, "-f partial writes a shard's sums; draw the grid from the merged report: attn merge PARTIAL... --save FILE"),
)


GIVEN = ("COMMANDLINE", "ENVIRONMENT")  # where a given option's value came from (Click's ParameterSource), not its default


def check_usage(command: str, values: dict[str, Any], ctx: typer.Context) -> Usage:
    """The usage error (exit 2) of the first rule of ``command`` that ``values`` break, if any; else
    the run's options, read as the rules read them."""
    given = frozenset(name for name in values if getattr(ctx.get_parameter_source(name), "name", None) in GIVEN)
    usage = Usage(values, given, values.get("model") is not None)
    for rule in RULES[command]:
        if rule.applies(usage):
            message = rule.message if isinstance(rule.message, str) else rule.message(usage)
            raise typer.BadParameter(message, param_hint=rule.option)
    return usage

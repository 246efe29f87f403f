"""A text through a real transformer -> a :class:`ModelInspection`: the run and everything
``attn inspect --model`` shows of it (each head's patterns and label, the rollout, the --focus word,
one layer as static attention's result), computed here once; the renderers only format it, and
--fields only drops keys from its record. Two texts -> a :class:`~.words.WordComparison` (``attn
compare --model``)."""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from ..analysis import head_summary
from ..attention_types import Attention
from ..core import causal_mask
from ..errors import AttnvizError, valid_text
from ..results import InspectConfig, Inspection, VectorsInfo
from .activations import MassiveActivations, massive_activations
from .heads import HeadLabels, rollout, run_patterns
from .model import Model, ModelConfig, ModelRun
from .words import FocusedWord, WordComparison, Words, compare_word, focus, focus_units, run_words, top_words


@dataclass(frozen=True, slots=True)
class ModelShow:
    """What of a model's run to show."""

    layer: int | None = None  # one layer's heads (0-based); None: every layer
    head: int | None = None  # one head of that layer; None: all of them
    focus: str | None = None  # --focus: a word (every occurrence), word@N or a token position
    top_k: int = 3  # words listed per head for the focused word, keys per query in a layer's summaries
    rollout: bool = False  # add the attention rollout through the layers
    page: bool = False  # a page of every layer will be saved (--save .html): it shows the rollout too
    hide_special: bool = False  # --hide-special: tables and figures leave out the special tokens' rows and columns
    weighting: str = "attention"  # --weighting: the softmax weights, or "norm": value-weighted (Kobayashi et al. 2020), rows renormalised
    keep: tuple[int, ...] | None = None  # the layers whose matrices the views need (None: every layer); the rest
    # are dropped as the run goes, their heads' patterns taken first (a long text holds one layer at a time)


def keeping_what_it_shows(show: ModelShow, every_layer: bool = False) -> ModelShow:
    """``show``, keeping just the layers its views read: --layer's alone, or none for the overview;
    every layer where ``every_layer`` (a record or pictures of every layer), --focus, --rollout or the
    page is asked for."""
    if every_layer or show.focus is not None or show.rollout or show.page:
        return replace(show, keep=None)
    return replace(show, keep=() if show.layer is None else (show.layer,))


@dataclass(frozen=True, slots=True, eq=False)
class ModelInspection:
    """One text through a model, with what :class:`ModelShow` asked for computed."""

    text: str  # as run (bytes that were not UTF-8 replaced)
    run: ModelRun
    config: ModelConfig
    show: ModelShow
    heads: HeadLabels  # (L, h): every head's patterns and label
    rollout: np.ndarray | None  # (L, T, T) with show.rollout or show.page: the rollout after each layer
    mask: np.ndarray  # (T, T) additive: -inf where a token never draws on another (a causal model's later ones), else 0
    words: Words | None  # with show.focus: the run's words, each special token one of its own
    focused: tuple[FocusedWord, ...]  # with show.focus: each word it names
    layer: Inspection | None  # with show.layer: that layer (or head) as static attention's result
    massive: MassiveActivations | None = None  # per layer, its hidden state's largest entry against the median (Sun et al. 2024)
    hidden: tuple[int, ...] = ()  # with show.hide_special: the special tokens' positions, left out of tables and
    # figures (their weight shown as "to special tokens", nothing renormalised); every summary (patterns, labels,
    # entropy, top keys) is still over the whole row


def inspect_model(text: str, model: Model, show: ModelShow, truncate: bool = False) -> ModelInspection:
    """Run ``text`` through ``model`` and compute what ``show`` asks for; ``truncate``: a text over
    the model's positions keeps its first tokens."""
    text = said(text)
    return inspect_run(model.run(text, truncate, keep=show.keep, weighting=show.weighting), model.config, text, show)


def said(text: str) -> str:
    """``text`` made valid (see :func:`valid_text`), refused when it is empty or only spaces, as the
    static path refuses it (a model would otherwise run on its special tokens alone)."""
    text = valid_text(text)
    if not text.strip():
        raise AttnvizError("the sentence is empty")
    return text


def inspect_run(run: ModelRun, c: ModelConfig, text: str, show: ModelShow) -> ModelInspection:
    """What ``show`` asks for of ``run``, the run of ``text`` through a model configured as ``c``."""
    words: Words | None = None
    focused: tuple[FocusedWord, ...] = ()
    hidden = special_positions(run) if show.hide_special else ()
    if show.focus is not None:
        words = run_words(run, text)
        focused = tuple(
            listing_words(f, special_units(words, hidden), show.top_k)
            for f in focus(run, words, focus_units(words, show.focus, len(run.tokens)), show.top_k)
        )
    T = len(run.tokens)
    return ModelInspection(
        text=text, run=run, config=c, show=show,
        heads=HeadLabels.of(run.patterns if run.patterns is not None else run_patterns(run, text, c.causal), c.causal),
        rollout=rollout(run.attentions) if show.rollout or show.page else None,
        mask=causal_mask(T, run.scores.dtype) if c.causal else np.zeros((T, T), run.scores.dtype), words=words, focused=focused,
        layer=None if show.layer is None else layer_inspection(run, c, text, show.layer, show.top_k, show.head, hidden),
        hidden=hidden, massive=massive_activations(run.hidden_states[1:]),
    )


def special_positions(run: ModelRun) -> tuple[int, ...]:
    """Where the run's special tokens are ([CLS], [SEP], <s>, a BOS): what --hide-special leaves out."""
    return tuple(t for t, special in enumerate(run.special) if special)


def special_units(words: Words, hidden: tuple[int, ...]) -> tuple[int, ...]:
    """The units of ``words`` that are ``hidden`` tokens (each special token is a unit of its own)."""
    return tuple(u for u, positions in enumerate(words.tokens) if positions[0] in hidden)


def listing_words(f: FocusedWord, hidden_units: tuple[int, ...], top_k: int) -> FocusedWord:
    """``f`` with its strongest words chosen among the units not ``hidden_units`` (--hide-special: the
    special tokens' weight is shown apart, as "to special tokens"); ``f`` itself when none are hidden."""
    if not hidden_units:
        return f
    hidden = np.zeros(f.weights.shape[-1], dtype=bool)
    hidden[list(hidden_units)] = True
    return replace(
        f, top=top_words(np.where(hidden, -np.inf, f.weights), top_k)[..., : f.weights.shape[-1] - len(hidden_units)],
        top_of_mean=top_words(np.where(hidden, -np.inf, f.head_mean), top_k)[..., : f.weights.shape[-1] - len(hidden_units)],
    )


def compare_model(
    texts: tuple[str, str], model: Model, focus: str, top_k: int = 3, truncate: bool = False, hide_special: bool = False,
    weighting: str = "attention",
) -> tuple[WordComparison, tuple[int, int]]:
    """The word ``focus`` names followed into both texts through ``model``, the ``top_k`` words it looks
    at most listed in each layer (with ``hide_special``, among the words that are not special tokens);
    and how many tokens ``truncate`` cut from each text (0 if none). ``weighting``: "norm" follows the
    value-weighted weights (:meth:`.model.Model.run`)."""
    texts = (said(texts[0]), said(texts[1]))
    runs = (model.run(texts[0], truncate, weighting=weighting), model.run(texts[1], truncate, weighting=weighting))
    comparison = replace(compare_word(runs, texts, focus, top_k), weighting=weighting, value_norms=(runs[0].value_norms, runs[1].value_norms))
    if hide_special:
        hidden = tuple(special_units(w, special_positions(r)) for w, r in zip(comparison.words, runs, strict=True))
        sides = tuple(listing_words(f, h, top_k) for f, h in zip(comparison.sides, hidden, strict=True))
        comparison = replace(comparison, sides=(sides[0], sides[1]), hidden=(hidden[0], hidden[1]))
    return comparison, (runs[0].truncated, runs[1].truncated)


def layer_inspection(
    run: ModelRun, config: ModelConfig, text: str, layer: int, top_k: int = 3, head: int | None = None, hidden: tuple[int, ...] = (),
) -> Inspection:
    """One layer of a model run as an :class:`~attnviz_cli.results.Inspection`, so that every view of
    static attention (Markdown, CSV, figures, the HTML page) shows a model's layer the same way: its
    heads' scores and weights (or ``head``'s alone, still numbered as in its layer), what went in (the
    hidden state before the layer) and what came out (after it: the whole layer's output, every head
    mixed). The projections are the model's own, learned; the "vectors" are that layer's input. ``hidden``:
    token positions its tables and figures leave out (--hide-special)."""
    d_k = config.d_head
    causal = config.causal
    kept = slice(None) if head is None else slice(head, head + 1)
    attention = Attention(
        queries=run.queries[layer][kept], keys=run.keys[layer][kept], values=run.values[layer][kept],
        head_outputs=run.head_outputs[layer][kept], output=run.hidden_states[layer + 1], scale=True, causal=causal,
        scores=run.scores[layer][kept], weights=run.attentions[layer][kept],
    )
    heads = attention.heads
    summary = head_summary(attention.weights, np.isneginf(attention.scores), top_k)
    where = f"{config.name}, layer {layer}" + (" (its embeddings)" if layer == 0 else f" (the output of layer {layer - 1})")
    inspect_config = InspectConfig(
        heads=heads, d_model=config.d_model, d_k=d_k, d_v=d_k, d_out=config.d_model, scale=True,
        causal=causal, projections="learned", seed=None, vectors=VectorsInfo(where, config.d_model, 0), positions="learned",
        first_head=head or 0, layer_heads=None if head is None else config.heads, weighting=run.weighting,
    )
    return Inspection(
        sentence=text, tokens=run.tokens, dropped=(), config=inspect_config, inputs=run.hidden_states[layer],
        attention=attention, summaries=tuple(summary.select(h) for h in range(heads)), hidden=hidden,
    )

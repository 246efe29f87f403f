"""Sentences + embeddings + projections -> Inspections: the one path every output format shares.

Many sentences are run together: each is tokenized and embedded on its own, then sentences of the
same length go through attention and the head summaries as one batch, and each Inspection holds views
into the batch's arrays. One sentence is the batch of one.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from .analysis import attention_summary, cosine, focus_heads, nearest_rows
from .attention_types import AttentionOutputs
from .core import AttentionInputError, sinusoidal_positions
from .errors import AttnvizError, quoted, valid_text
from .projections import Projections
from .results import (
    Comparison,
    Focus,
    HeadSummary,
    InspectConfig,
    Inspection,
    InspectionBatch,
    InspectOptions,
    Neighbor,
    TokenNeighbors,
    needs_matrices,
    with_matrices,
)
from .vectors import Embedded, Embeddings, embed_sentence


class _Prepared(NamedTuple):
    """A sentence checked, tokenized and embedded, ready for attention."""

    sentence: str
    embedded: Embedded
    focus: list[int]  # positions named by --focus


def inspect_sentence(
    sentence: str, embeddings: Embeddings, projections: Projections, options: InspectOptions = InspectOptions()
) -> Inspection:
    """Tokenize, embed and attend over ``sentence``, then explain it as ``options`` ask.

    Refuses empty, unknown-only or over-long sentences, and head counts that do not fit.
    """
    return inspect_one(sentence, embeddings, projections, options).inspection(0)


def inspect_one(
    sentence: str, embeddings: Embeddings, projections: Projections, options: InspectOptions = InspectOptions()
) -> InspectionBatch:
    """:func:`inspect_sentence` as a batch of one, which JSON records are built from directly."""
    batches, errors = inspect_batches([sentence], embeddings, projections, options)
    if errors:
        raise errors[0]
    return batches[0]


def inspect_sentences(
    sentences: list[str], embeddings: Embeddings, projections: Projections, options: InspectOptions = InspectOptions()
) -> list[Inspection | AttnvizError]:
    """An Inspection, or the error that stopped it, for each sentence, in order."""
    batches, errors = inspect_batches(sentences, embeddings, projections, options)
    results: list[Inspection | AttnvizError | None] = [errors.get(i) for i in range(len(sentences))]
    for batch in batches:
        for b, i in enumerate(batch.positions):
            results[i] = batch.inspection(b)
    return results  # type: ignore[return-value]  # every slot is filled: by an error or by a batch


def inspect_batches(
    sentences: list[str], embeddings: Embeddings, projections: Projections, options: InspectOptions = InspectOptions()
) -> tuple[list[InspectionBatch], dict[int, AttnvizError]]:
    """The sentences inspected in batches of equal length, and the error of each one that failed (by
    its position in ``sentences``). Every position is in one batch or among the errors."""
    check_options(embeddings, projections, options)
    errors: dict[int, AttnvizError] = {}
    by_length: dict[int, list[tuple[int, _Prepared]]] = {}
    for i, sentence in enumerate(sentences):
        try:
            prepared = _prepare(sentence, embeddings, options)
        except AttnvizError as error:
            errors[i] = error
            continue
        by_length.setdefault(len(prepared.embedded.tokens), []).append((i, prepared))
    batches = []
    for group in by_length.values():
        x = np.stack([prepared.embedded.x for _, prepared in group])  # (B, T, d_model)
        if options.positions == "sinusoidal":  # the same T for the whole group: one encoding
            x = x + sinusoidal_positions(x.shape[1], x.shape[2], x.dtype)
        try:
            attention, summaries = _attend(x, embeddings, projections, options)  # summaries: (B, h, T, ...)
        except AttnvizError as error:
            errors.update((i, error) for i, _ in group)
            continue
        batches.append(_batch(group, x, attention, summaries, embeddings, projections, options))
    return batches, errors


def check_options(embeddings: Embeddings, projections: Projections, options: InspectOptions) -> None:
    """Refuse options that cannot work with these embeddings and projections, whatever the sentence."""
    if projections.wq is None and embeddings.dim % options.heads:
        raise AttnvizError(heads_error(options.heads, embeddings))
    if options.neighbors and projections.kind != "identity":
        raise AttnvizError(
            "--neighbors compares vectors with the vocabulary, so the outputs must stay in the embedding "
            f"space: it needs identity projections, not {projections.kind}"
        )


BYTES_PER_TOKEN = 64  # no sentence of --max-tokens tokens is longer than this many bytes a token


def max_input_bytes(max_tokens: int) -> int:
    """The longest input (a line of a stream, or all of stdin for one sentence) that can still fit
    ``max_tokens`` tokens: longer input is refused as soon as it is read this far, so memory is bounded
    by --max-tokens, not by what the input holds."""
    return max(1 << 16, max_tokens * BYTES_PER_TOKEN)


def too_long_error(max_tokens: int) -> AttnvizError:
    return AttnvizError(
        f"the input is longer than {max_input_bytes(max_tokens):,} bytes, more than --max-tokens {max_tokens} "
        "can take; raise --max-tokens or split it into sentences"
    )


def _prepare(sentence: str, embeddings: Embeddings, options: InspectOptions) -> _Prepared:
    sentence = valid_text(sentence)
    if not sentence.strip():
        raise AttnvizError("the sentence is empty")
    embedded = embed_sentence(sentence, embeddings, oov=options.oov)
    total = len(embedded.tokens) + len(embedded.dropped)
    if total > options.max_tokens:
        raise AttnvizError(f"the sentence has {total} tokens, more than the limit of {options.max_tokens} (--max-tokens)")
    if not embedded.tokens:
        what = "holds no word" if total == 0 else "has no word that is"
        raise AttnvizError(f"the sentence {quoted(sentence)} {what} in the vectors {quoted(embeddings.name)}")
    positions = focus_positions(valid_text(options.focus), embedded.tokens, embeddings.lowercase) if options.focus else []
    return _Prepared(sentence, embedded, positions)


def keeps_matrices(options: InspectOptions) -> bool:
    """Whether the (h, T, T) scores and weights are kept: when a field asks for them, or for --focus,
    whose steps show rows of them. This decides what is kept, never how it is computed: the numbers
    are the same to the last bit either way."""
    return needs_matrices(options.fields) or bool(options.focus)


def _attend(
    x: np.ndarray, embeddings: Embeddings, projections: Projections, options: InspectOptions
) -> tuple[AttentionOutputs, HeadSummary]:
    """Attention over a batch of equal-length sentences and its head summaries; without the full
    matrices when the options need none (the same numbers either way)."""
    p, o = projections, options
    try:
        return attention_summary(
            x, heads=o.heads, wq=p.wq, wk=p.wk, wv=p.wv, wo=p.wo, scale=o.scale, causal=o.causal,
            top_k=o.top_k, keep_matrices=keeps_matrices(options), threads=o.threads,
        )
    except AttentionInputError as error:
        raise AttnvizError(f"{error} (vectors {quoted(embeddings.name)}, --heads {options.heads})") from error


def _config(attention: AttentionOutputs, embeddings: Embeddings, projections: Projections, options: InspectOptions) -> InspectConfig:
    return InspectConfig(
        heads=options.heads, d_model=embeddings.dim, d_k=attention.d_k, d_v=attention.d_v,
        d_out=attention.output.shape[-1], scale=options.scale, causal=options.causal,
        projections=projections.kind, seed=projections.seed, vectors=embeddings.info, positions=options.positions,
    )


def _batch(
    group: list[tuple[int, _Prepared]], x: np.ndarray, attention: AttentionOutputs, summaries: HeadSummary,
    embeddings: Embeddings, projections: Projections, options: InspectOptions,
) -> InspectionBatch:
    """A group of equal-length sentences with their attention, focus steps and neighbours."""
    embedded = [prepared.embedded for _, prepared in group]
    focus: list[tuple[Focus, ...]] = []
    neighbors: list[tuple[TokenNeighbors, ...] | None] = []
    for b, (_, prepared) in enumerate(group):
        if not prepared.focus and not options.neighbors:  # the common case: nothing per sentence
            focus.append(())
            neighbors.append(None)
            continue
        one, tokens = attention.select(b), prepared.embedded.tokens
        if prepared.focus:
            steps = with_matrices(one, "--focus")
            focus.append(tuple(Focus(p, tokens[p], focus_heads(steps, p)) for p in prepared.focus))
        else:
            focus.append(())
        shown = prepared.focus or list(range(len(tokens)))
        neighbors.append(
            token_neighbors(embeddings, tokens, prepared.embedded.x, one.output, shown, options.neighbors)
            if options.neighbors else None
        )
    return InspectionBatch(
        positions=tuple(i for i, _ in group), sentences=tuple(prepared.sentence for _, prepared in group),
        tokens=tuple(e.tokens for e in embedded), dropped=tuple(e.dropped for e in embedded),
        notes=tuple(e.notes for e in embedded), subword=tuple(e.subword for e in embedded),
        config=_config(attention, embeddings, projections, options), inputs=x, attention=attention,
        summaries=summaries, focus=tuple(focus), neighbors=tuple(neighbors),
    )


def compare_sentences(
    first: str, second: str, embeddings: Embeddings, projections: Projections, options: InspectOptions
) -> Comparison:
    """The word named by ``options.focus`` in two sentences: where attention takes it in each.

    The focus must name one token in each sentence (``bank@2`` picks among repeats).
    """
    if not options.focus:
        raise AttnvizError("compare needs --focus: the word to follow from one sentence to the other")
    sides = []
    for label, sentence in (("first", first), ("second", second)):
        try:
            inspection = inspect_sentence(sentence, embeddings, projections, options)
        except AttnvizError as error:
            raise AttnvizError(f"{label} sentence: {error}") from error
        if len(inspection.focus) > 1:
            word = inspection.focus[0].token
            raise AttnvizError(
                f"{label} sentence: {quoted(word)} occurs {len(inspection.focus)} times; "
                f"say which with --focus {word}@1 to {word}@{len(inspection.focus)}"
            )
        sides.append(inspection)
    a, b = sides
    pa, pb = a.focus[0].position, b.focus[0].position
    return Comparison(
        focus=valid_text(options.focus), sides=(a, b), positions=(pa, pb),
        input_cosine=cosine(a.inputs[pa].astype(np.float64), b.inputs[pb].astype(np.float64)),
        output_cosine=cosine(a.attention.output[pa].astype(np.float64), b.attention.output[pb].astype(np.float64)),
    )


def focus_positions(spec: str, tokens: tuple[str, ...], lowercase: bool) -> list[int]:
    """Positions named by ``--focus``: ``5`` (a position), ``bank`` (every occurrence) or ``bank@2``
    (the second occurrence)."""
    listing = " ".join(f"{i}:{t}" for i, t in enumerate(tokens))
    if spec.isascii() and spec.isdigit():  # "5", not "²": str.isdigit takes superscripts too
        position = int(spec)
        if position >= len(tokens):
            raise AttnvizError(f"--focus {position} is past the last token (positions 0-{len(tokens) - 1}: {quoted(listing)})")
        return [position]
    word, _, occurrence = spec.rpartition("@") if "@" in spec[1:] else (spec, "", "")
    word = word.lower() if lowercase else word
    found = [i for i, token in enumerate(tokens) if token == word]
    if not found:
        named = f"{quoted(spec)}: {quoted(word)}" if "@" in spec[1:] else quoted(word)  # bank@1@2 is told whole
        raise AttnvizError(f"--focus {named} is not one of the tokens {quoted(listing)}")
    if not occurrence:
        return found
    if not (occurrence.isascii() and occurrence.isdigit()) or not 1 <= int(occurrence) <= len(found):
        raise AttnvizError(f"--focus {quoted(spec)}: {quoted(word)} occurs {len(found)} time(s); use {word}@1 to {word}@{len(found)}")
    return [found[int(occurrence) - 1]]


def token_neighbors(
    embeddings: Embeddings, tokens: tuple[str, ...], inputs: np.ndarray, outputs: np.ndarray,
    positions: list[int], k: int,
) -> tuple[TokenNeighbors, ...]:
    """For each position, the ``k`` nearest vocabulary words of its input and of its output vector
    (its own word left out), and how far attention moved it (the cosine of input and output)."""
    own = np.array([embeddings.row(tokens[p]) if embeddings.row(tokens[p]) is not None else -1 for p in positions])
    vectors = np.concatenate([inputs[positions], outputs[positions]])  # (2n, d): one product for all
    rows, cosines = nearest_rows(embeddings.unit_vectors, vectors, k, np.concatenate([own, own]))
    n = len(positions)

    def listed(i: int) -> tuple[Neighbor, ...]:
        return tuple(Neighbor(embeddings.words[r], c) for r, c in zip(rows[i], cosines[i], strict=True))

    return tuple(
        TokenNeighbors(p, tokens[p], listed(i), listed(n + i), cosine(inputs[p].astype(np.float64), outputs[p].astype(np.float64)))
        for i, p in enumerate(positions)
    )


def heads_error(heads: int, embeddings: Embeddings) -> str:
    """Why ``heads`` cannot split these embeddings, with the head counts that can."""
    divisors = [str(n) for n in range(1, embeddings.dim + 1) if embeddings.dim % n == 0]
    options = ", ".join(divisors[:-1]) + f" or {divisors[-1]}" if len(divisors) > 1 else divisors[0]
    return f"--heads {heads} does not divide the {embeddings.dim} dimensions of {quoted(embeddings.name)}; try {options}"

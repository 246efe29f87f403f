"""What attnviz computes: head summaries, focus steps, a whole inspection (the attention inside it is
:mod:`attnviz_cli.attention_types`', what core returns). Frozen dataclasses where arrays are frozen in
``__post_init__``; NamedTuples for plain values, since every class is made at start-up and a
NamedTuple costs about a tenth of a frozen dataclass (0.07 against 0.7 ms here).

Arrays stored here are made read-only, so a result can be shared between renderers without a copy and
without one renderer changing what another shows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from .attention_types import Attention, AttentionOutputs, freeze, view_of


class MissingMatrices(ValueError):
    """A renderer needs the scores and weights of an inspection that was made without them."""


def with_matrices(attention: AttentionOutputs, needed_by: str) -> Attention:
    """``attention`` as an :class:`Attention`, or a clear error naming what needed its matrices."""
    if not isinstance(attention, Attention):
        raise MissingMatrices(
            f"{needed_by} shows the scores and weights, but this inspection was made without them "
            "(its InspectOptions.fields name none of scores, weights or heads)"
        )
    return attention


class Dropped(NamedTuple):
    """A token that was left out of the attention, where it stood, and why."""

    token: str
    position: int  # index in the tokenized sentence, before anything was dropped
    reason: str  # "oov": not in the vocabulary


class VectorsInfo(NamedTuple):
    """What the JSON and tables say about the embedding used."""

    name: str
    dim: int
    vocab_size: int


NORM_HEADER = "value-weighted (Kobayashi et al. 2020)"  # a model's --weighting norm, as every header that shows its weights names it


class InspectConfig(NamedTuple):
    """The options an inspection ran with, as reported in its output."""

    heads: int
    d_model: int
    d_k: int
    d_v: int
    d_out: int
    scale: bool
    causal: bool
    projections: str  # "identity", "random" or "weights"
    seed: int | None  # the seed of random projections, else None
    vectors: VectorsInfo
    positions: str = "none"  # "none", or "sinusoidal": the encoding added to the embeddings
    first_head: int = 0  # the number of the first head shown: a model's --head H shows head H alone
    layer_heads: int | None = None  # the heads of the layer the shown ones were taken from, if not all
    weighting: str = "attention"  # a model's --weighting: the softmax weights, or "norm": value-weighted, rows renormalised

    def head_number(self, h: int) -> int:
        """The number of the ``h``-th head shown, as the JSON and every view give it (from 0)."""
        return self.first_head + h

    def head_label(self, h: int) -> str:
        """ "head 0 of 2": the ``h``-th head shown, numbered from 0 everywhere, as in the JSON; a model's
        single --head keeps its number in its layer ("head 3 of 12")."""
        return f"head {self.head_number(h)} of {self.layer_heads or self.heads}"

    def attention_parts(self) -> list[str]:
        """How attention ran, in words: ["2 heads", "d_k 25", "scaled by 1/√d_k", "causal"]."""
        one_of_a_layer = self.layer_heads is not None  # a model's --head: "head 3 of 12"
        parts = [self.head_label(0) if one_of_a_layer else f"{self.heads} head{'s' if self.heads > 1 else ''}", f"d_k {self.d_k}"]
        parts.append("scaled by 1/√d_k" if self.scale else "unscaled")
        parts += ["causal"] if self.causal else []
        parts += ["sinusoidal positions"] if self.positions == "sinusoidal" else []
        return parts + ([f"weights {NORM_HEADER}"] if self.weighting != "attention" else [])

    def weights_kind(self) -> str:
        """What the weights are, as their titles say: "softmax", or value-weighted (a model's --weighting norm)."""
        return "softmax" if self.weighting == "attention" else NORM_HEADER

    def projections_text(self) -> str:
        """ "identity", "weights" or "random (seed 7)". """
        return self.projections + (f" (seed {self.seed})" if self.seed is not None else "")


@dataclass(frozen=True, slots=True, eq=False)  # arrays inside: compared by identity
class HeadSummary:
    """How one head spreads its attention: per query, the entropy of its weights and its top keys."""

    entropy_bits: np.ndarray  # (..., T) entropy of each weight row, in bits (0: one key; log2 T: uniform)
    top_keys: np.ndarray  # (..., T, k) per query, keys by falling weight; -1 past its count
    top_weights: np.ndarray  # (..., T, k) their weights; 0 past its count
    top_counts: np.ndarray  # (..., T) how many top keys each query has: k, or fewer where a causal
    # query sees fewer than k keys (query i sees i + 1); masked keys are never listed

    def __post_init__(self) -> None:
        freeze(self.entropy_bits, self.top_keys, self.top_weights, self.top_counts)

    ARRAYS = ("entropy_bits", "top_keys", "top_weights", "top_counts")

    def select(self, index: int | tuple[int, ...]) -> HeadSummary:
        """The summary of one head (or one sentence's head) of a summary over many (views)."""
        return view_of(HeadSummary, {name: getattr(self, name)[index] for name in self.ARRAYS})  # type: ignore[return-value]

    @property
    def strongest_key(self) -> np.ndarray:
        """(..., T) the key each query weights most: the first of its top keys."""
        return self.top_keys[..., 0]

    @property
    def strongest_weight(self) -> np.ndarray:
        """(..., T) its weight."""
        return self.top_weights[..., 0]

    @property
    def mean_entropy_bits(self) -> np.ndarray:
        """(...) the mean entropy over the queries of each head (and sentence) the summary holds: a
        0-d array for one head's summary, (h,) for a whole pass's.

        Bit for bit as ``entropy_bits.mean(axis=-1)`` has it (a float32 sum divided in float64, rounded
        back), for a third of its cost, which counts in streams.
        """
        totals = np.add.reduce(self.entropy_bits, axis=-1)
        return (totals.astype(np.float64) / self.entropy_bits.shape[-1]).astype(self.entropy_bits.dtype)

    def top(self, query: int) -> tuple[np.ndarray, np.ndarray]:
        """The top keys of ``query`` and their weights, masked keys left out."""
        count = self.top_counts[query]
        return self.top_keys[query, :count], self.top_weights[query, :count]


class FocusHead(NamedTuple):
    """One query's computation in one head, step by step (its arrays read-only: views of a frozen
    attention's, or frozen by :func:`attnviz_cli.analysis.focus_heads`, which makes the others)."""

    head: int
    query: np.ndarray  # (d_k,) step 1: the query vector...
    keys: np.ndarray  # (T, d_k) ...and every key
    dots: np.ndarray  # (T,) step 2: q . k_j, before scaling and masking
    scores: np.ndarray  # (T,) what enters the softmax: scaled, -inf where masked
    masked: np.ndarray  # (T,) bool
    weights: np.ndarray  # (T,) step 3: softmax of the scores
    values: np.ndarray  # (T, d_v) step 4: the value vectors...
    contributions: np.ndarray  # (T, d_v) ...each times its weight
    output: np.ndarray  # (d_v,) their sum: this head's output for the query


class Focus(NamedTuple):
    """The step-by-step computation for one query token, in every head."""

    position: int
    token: str
    heads: tuple[FocusHead, ...]


class Neighbor(NamedTuple):
    word: str
    cosine: float  # a NumPy scalar in the vectors' dtype, so JSON shows float32 in its shortest form


class TokenNeighbors(NamedTuple):
    """Where one token's meaning moved: nearest words before and after attention."""

    position: int
    token: str
    before: tuple[Neighbor, ...]  # nearest vocabulary words of the input vector
    after: tuple[Neighbor, ...]  # nearest vocabulary words of the contextualized vector
    moved_cosine: float  # cosine between the token's input and output vectors


class InspectOptions(NamedTuple):
    """How to run and explain attention over each sentence (the CLI's options, in one place)."""

    heads: int = 1
    scale: bool = True
    causal: bool = False
    oov: str = "skip"  # unknown words: "skip", "zero" or "error"
    positions: str = "none"  # "sinusoidal": add the original Transformer's positional encoding first
    max_tokens: int = 512
    top_k: int = 3  # keys listed per query in the head summaries
    focus: str | None = None  # a token ("bank"), an occurrence ("bank@2") or a position ("5")
    neighbors: int = 0  # nearest vocabulary words to show per token; 0 for none
    fields: tuple[str, ...] = ()  # the record fields the caller will use (see render_json); () for all.
    # Fields that need no (h, T, T) matrix let the pipeline drop the matrices (--focus still keeps them);
    # what is computed, and so every bit of it, does not depend on them
    threads: int | None = None  # attention's threads on long inputs (None: every CPU; 1 in stream workers)


@dataclass(frozen=True, slots=True, eq=False)  # arrays inside: compared by identity
class Inspection:
    """One sentence run through attention: what went in, how, what came out, and what it means."""

    sentence: str
    tokens: tuple[str, ...]  # the tokens attended over, in order
    dropped: tuple[Dropped, ...]
    config: InspectConfig
    inputs: np.ndarray  # (T, d_model): what attention ran over (the embeddings, plus positions if asked)
    attention: AttentionOutputs  # an Attention, with scores and weights, unless none were needed
    summaries: tuple[HeadSummary, ...] = ()  # one per head
    focus: tuple[Focus, ...] = ()  # the focus token(s), step by step
    neighbors: tuple[TokenNeighbors, ...] | None = None  # with --neighbors: per token (or focus token)
    notes: tuple[str, ...] = ()  # messages for stderr (unknown words and the like)
    subword: tuple[int, ...] = ()  # positions of tokens built from subwords, not found in the vocabulary
    hidden: tuple[int, ...] = ()  # positions a model's --hide-special leaves out of tables and figures (its special tokens)

    def __post_init__(self) -> None:
        freeze(self.inputs)

    def matrices(self, needed_by: str) -> Attention:
        """The attention with its scores and weights, for a view that shows them (``needed_by``)."""
        return with_matrices(self.attention, needed_by)


def shown_positions(T: int, hidden: tuple[int, ...] = ()) -> list[int]:
    """The token positions a matrix shows: all ``T`` but the ``hidden`` ones (a model's --hide-special)."""
    left_out = set(hidden)
    return [i for i in range(T) if i not in left_out]


def hidden_weight(weights: np.ndarray, hidden: tuple[int, ...]) -> np.ndarray:
    """(..., K) weights over K keys (tokens, or words) -> (...): each row's weight on the ``hidden`` keys,
    which a view that leaves them out does not show (nothing is renormalised: the shown weights and this
    sum to the row's total, 1)."""
    return weights[..., list(hidden)].sum(axis=-1)


MATRIX_FIELDS = frozenset({"heads", "scores", "weights", "heads.scores", "heads.weights"})


def needs_matrices(fields: tuple[str, ...]) -> bool:
    """Whether record ``fields`` (all of them when empty) include the (h, T, T) scores or weights."""
    return not fields or bool(MATRIX_FIELDS & set(fields))


class Comparison(NamedTuple):
    """One word in two sentences: each side's inspection (focused on it) and how far apart it ends up."""

    focus: str  # the --focus spec as given
    sides: tuple[Inspection, Inspection]
    positions: tuple[int, int]  # where the focus word is in each sentence's tokens
    input_cosine: float  # cosine of its two input vectors (1 for the same word)
    output_cosine: float  # cosine of its two contextualized vectors


@dataclass(frozen=True, slots=True, eq=False)  # arrays inside: compared by identity
class InspectionBatch:
    """Sentences of one length run through attention together: what their :class:`Inspection`\\ s hold,
    with the arrays kept as the batch's own (B, ...) arrays.

    A stream writes its records straight from here (one pass per field for all B sentences, not B
    objects first); :meth:`inspection` picks out one sentence for every other use.
    """

    positions: tuple[int, ...]  # where each sentence stood in the list that was inspected
    sentences: tuple[str, ...]
    tokens: tuple[tuple[str, ...], ...]
    dropped: tuple[tuple[Dropped, ...], ...]
    notes: tuple[tuple[str, ...], ...]
    subword: tuple[tuple[int, ...], ...]
    config: InspectConfig
    inputs: np.ndarray  # (B, T, d_model)
    attention: AttentionOutputs  # arrays (B, h, ...) and (B, T, d_out); an Attention if matrices were kept
    summaries: HeadSummary  # arrays (B, h, T, ...)
    focus: tuple[tuple[Focus, ...], ...]  # per sentence; empty tuples without --focus
    neighbors: tuple[tuple[TokenNeighbors, ...] | None, ...]  # per sentence; None without --neighbors

    def __post_init__(self) -> None:
        freeze(self.inputs)

    def __len__(self) -> int:
        return len(self.sentences)

    def inspection(self, b: int) -> Inspection:
        """Sentence ``b`` as an :class:`Inspection` (views of the batch's arrays, no copies)."""
        return Inspection(
            sentence=self.sentences[b], tokens=self.tokens[b], dropped=self.dropped[b], config=self.config,
            inputs=self.inputs[b], attention=self.attention.select(b),
            summaries=tuple(self.summaries.select((b, h)) for h in range(self.config.heads)),
            focus=self.focus[b], neighbors=self.neighbors[b], notes=self.notes[b], subword=self.subword[b],
        )

    @classmethod
    def of(cls, inspection: Inspection) -> InspectionBatch:
        """One inspection as a batch of one (views where it can, the head summaries stacked)."""
        stacked = {name: np.stack([getattr(s, name) for s in inspection.summaries])[None] for name in HeadSummary.ARRAYS}
        return cls(
            positions=(0,), sentences=(inspection.sentence,), tokens=(inspection.tokens,),
            dropped=(inspection.dropped,), notes=(inspection.notes,), subword=(inspection.subword,),
            config=inspection.config, inputs=inspection.inputs[None],
            attention=inspection.attention.batch_of_one(),
            summaries=HeadSummary(**stacked), focus=(inspection.focus,), neighbors=(inspection.neighbors,),
        )

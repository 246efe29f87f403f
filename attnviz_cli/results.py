"""Frozen dataclasses for what attnviz computes: attention results and a whole inspection.

Arrays stored here are made read-only, so a result can be shared between renderers without a copy and
without one renderer changing what another shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


def _freeze(*arrays: np.ndarray | None) -> None:
    for array in arrays:
        if array is not None:
            array.flags.writeable = False


def _view_of(cls, values: dict) -> object:
    """An instance of the frozen dataclass ``cls`` holding views of an instance's (read-only) arrays.

    It skips ``__init__`` and ``__post_init__``: views of read-only arrays are read-only already, and
    a stream takes several views per sentence, where freezing them again costs more than the rest.
    """
    instance = object.__new__(cls)
    instance.__dict__.update(values)
    return instance


@dataclass(frozen=True, eq=False)  # arrays inside: compared by identity
class Attention:
    """Every intermediate of one self-attention pass, for h heads over T tokens.

    ``scores`` are what enters the softmax (after scaling and masking: masked entries are -inf);
    ``weights`` are the softmax of the scores; ``head_outputs`` are each head's value mix; ``output``
    is the heads concatenated and, when there is an output projection, projected.
    """

    queries: np.ndarray  # (..., h, T, d_k); leading batch dimensions when computed for many sequences
    keys: np.ndarray  # (..., h, T, d_k)
    values: np.ndarray  # (..., h, T, d_v)
    scores: np.ndarray | None  # (..., h, T, T); None from attention_summary, which keeps no matrix
    weights: np.ndarray | None  # (..., h, T, T); None likewise
    head_outputs: np.ndarray  # (..., h, T, d_v)
    output: np.ndarray  # (..., T, d_out)
    scale: bool  # whether scores were divided by sqrt(d_k)
    causal: bool  # whether positions j > i were masked

    def __post_init__(self) -> None:
        _freeze(self.queries, self.keys, self.values, self.scores, self.weights, self.head_outputs, self.output)

    ARRAYS = ("queries", "keys", "values", "scores", "weights", "head_outputs", "output")  # the ones with batch axes

    def select(self, index: int) -> Attention:
        """The attention of sequence ``index`` of a batched result (views, no copies)."""
        views = {name: None if getattr(self, name) is None else getattr(self, name)[index] for name in self.ARRAYS}
        return _view_of(Attention, {**views, "scale": self.scale, "causal": self.causal})  # type: ignore[return-value]

    @property
    def heads(self) -> int:
        return self.queries.shape[-3]

    @property
    def has_matrices(self) -> bool:
        """Whether the full scores and weights were kept (not when computed in row blocks)."""
        return self.weights is not None

    @property
    def d_k(self) -> int:
        return self.queries.shape[-1]

    @property
    def d_v(self) -> int:
        return self.values.shape[-1]


@dataclass(frozen=True)
class Dropped:
    """A token that was left out of the attention, where it stood, and why."""

    token: str
    position: int  # index in the tokenized sentence, before anything was dropped
    reason: str  # "oov": not in the vocabulary


@dataclass(frozen=True)
class VectorsInfo:
    """What the JSON and tables say about the embedding used."""

    name: str
    dim: int
    vocab_size: int


@dataclass(frozen=True)
class InspectConfig:
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

    def attention_parts(self) -> list[str]:
        """How attention ran, in words: ["2 heads", "d_k 25", "scaled by 1/√d_k", "causal"]."""
        parts = [f"{self.heads} head{'s' if self.heads > 1 else ''}", f"d_k {self.d_k}"]
        parts.append("scaled by 1/√d_k" if self.scale else "unscaled")
        return parts + (["causal"] if self.causal else [])

    def projections_text(self) -> str:
        """ "identity", "weights" or "random (seed 7)". """
        return self.projections + (f" (seed {self.seed})" if self.seed is not None else "")


@dataclass(frozen=True, eq=False)  # arrays inside: compared by identity
class HeadSummary:
    """How one head spreads its attention: per query, the entropy of its weights and its top keys."""

    entropy_bits: np.ndarray  # (..., T) entropy of each weight row, in bits (0: one key; log2 T: uniform)
    top_keys: np.ndarray  # (..., T, k) per query, keys by falling weight; masked keys last
    top_weights: np.ndarray  # (..., T, k) their weights
    top_counts: np.ndarray  # (..., T) how many of each row's top keys are not masked

    def __post_init__(self) -> None:
        _freeze(self.entropy_bits, self.top_keys, self.top_weights, self.top_counts)

    ARRAYS = ("entropy_bits", "top_keys", "top_weights", "top_counts")

    def select(self, index: int | tuple[int, ...]) -> HeadSummary:
        """The summary of one head (or one sentence's head) of a summary over many (views)."""
        return _view_of(HeadSummary, {name: getattr(self, name)[index] for name in self.ARRAYS})  # type: ignore[return-value]

    @property
    def strongest_key(self) -> np.ndarray:
        """(..., T) the key each query weights most: the first of its top keys."""
        return self.top_keys[..., 0]

    @property
    def strongest_weight(self) -> np.ndarray:
        """(..., T) its weight."""
        return self.top_weights[..., 0]

    @property
    def mean_entropy_bits(self) -> float:
        """The mean entropy of a one-head summary: the very value of ``entropy_bits.mean()``."""
        return float(self.mean_entropies())

    def mean_entropies(self) -> np.ndarray:
        """(...) the mean of each entropy row, bit for bit as ``entropy_bits.mean(axis=-1)`` has it (a
        float32 sum divided in float64, rounded back), for a third of its cost, which counts in streams."""
        totals = np.add.reduce(self.entropy_bits, axis=-1)
        return (totals.astype(np.float64) / self.entropy_bits.shape[-1]).astype(self.entropy_bits.dtype)

    def top(self, query: int) -> tuple[np.ndarray, np.ndarray]:
        """The top keys of ``query`` and their weights, masked keys left out."""
        count = self.top_counts[query]
        return self.top_keys[query, :count], self.top_weights[query, :count]


@dataclass(frozen=True, eq=False)  # arrays inside: compared by identity
class FocusHead:
    """One query's computation in one head, step by step."""

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

    def __post_init__(self) -> None:
        _freeze(self.query, self.keys, self.dots, self.scores, self.masked, self.weights, self.values,
                self.contributions, self.output)


@dataclass(frozen=True, eq=False)  # arrays inside: compared by identity
class Focus:
    """The step-by-step computation for one query token, in every head."""

    position: int
    token: str
    heads: tuple[FocusHead, ...]


@dataclass(frozen=True)
class Neighbor:
    word: str
    cosine: float  # a NumPy scalar in the vectors' dtype, so JSON shows float32 in its shortest form


@dataclass(frozen=True, eq=False)  # arrays inside: compared by identity
class TokenNeighbors:
    """Where one token's meaning moved: nearest words before and after attention."""

    position: int
    token: str
    before: tuple[Neighbor, ...]  # nearest vocabulary words of the input vector
    after: tuple[Neighbor, ...]  # nearest vocabulary words of the contextualized vector
    moved_cosine: float  # cosine between the token's input and output vectors


@dataclass(frozen=True)
class InspectOptions:
    """How to run and explain attention over each sentence (the CLI's options, in one place)."""

    heads: int = 1
    scale: bool = True
    causal: bool = False
    oov: str = "skip"  # unknown words: "skip", "zero" or "error"
    max_tokens: int = 512
    top_k: int = 3  # keys listed per query in the head summaries
    focus: str | None = None  # a token ("bank"), an occurrence ("bank@2") or a position ("5")
    neighbors: int = 0  # nearest vocabulary words to show per token; 0 for none
    matrices: bool = True  # keep the (h, T, T) scores and weights; False: outputs and summaries only,
    # computed in row blocks so that long inputs fit in memory (--focus still keeps them)
    threads: int | None = None  # attention's threads on long inputs (None: every CPU; 1 in stream workers)


@dataclass(frozen=True, eq=False)  # arrays inside: compared by identity
class Inspection:
    """One sentence run through attention: what went in, how, what came out, and what it means."""

    sentence: str
    tokens: tuple[str, ...]  # the tokens attended over, in order
    dropped: tuple[Dropped, ...]
    config: InspectConfig
    inputs: np.ndarray  # (T, d_model)
    attention: Attention
    summaries: tuple[HeadSummary, ...] = ()  # one per head
    focus: tuple[Focus, ...] = ()  # the focus token(s), step by step
    neighbors: tuple[TokenNeighbors, ...] | None = None  # with --neighbors: per token (or focus token)
    notes: tuple[str, ...] = field(default=())  # messages for stderr (unknown words and the like)
    subword: tuple[int, ...] = ()  # positions of tokens built from subwords, not found in the vocabulary

    def __post_init__(self) -> None:
        _freeze(self.inputs)


@dataclass(frozen=True, eq=False)  # arrays inside: compared by identity
class Comparison:
    """One word in two sentences: each side's inspection (focused on it) and how far apart it ends up."""

    focus: str  # the --focus spec as given
    sides: tuple[Inspection, Inspection]
    positions: tuple[int, int]  # where the focus word is in each sentence's tokens
    input_cosine: float  # cosine of its two input vectors (1 for the same word)
    output_cosine: float  # cosine of its two contextualized vectors


@dataclass(frozen=True, eq=False)  # arrays inside: compared by identity
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
    attention: Attention  # arrays (B, h, ...) and (B, T, d_out)
    summaries: HeadSummary  # arrays (B, h, T, ...)
    focus: tuple[tuple[Focus, ...], ...]  # per sentence; empty tuples without --focus
    neighbors: tuple[tuple[TokenNeighbors, ...] | None, ...]  # per sentence; None without --neighbors

    def __post_init__(self) -> None:
        _freeze(self.inputs)

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
        attention = inspection.attention
        arrays = {
            name: None if getattr(attention, name) is None else getattr(attention, name)[None]
            for name in Attention.ARRAYS
        }
        stacked = {name: np.stack([getattr(s, name) for s in inspection.summaries])[None] for name in HeadSummary.ARRAYS}
        return cls(
            positions=(0,), sentences=(inspection.sentence,), tokens=(inspection.tokens,),
            dropped=(inspection.dropped,), notes=(inspection.notes,), subword=(inspection.subword,),
            config=inspection.config, inputs=inspection.inputs[None],
            attention=Attention(**arrays, scale=attention.scale, causal=attention.causal),
            summaries=HeadSummary(**stacked), focus=(inspection.focus,), neighbors=(inspection.neighbors,),
        )

"""From a model's tokens back to the text's words: a word made of several pieces ("deposited" ->
"deposit", "##ed") is one unit, each special token ([CLS], [SEP]) is one of its own, and attention is
summed into them as Clark et al. (2019, "What Does BERT Look At?") do: the weight a query gives a word is
the sum over the word's pieces, and the weights of a word as query are the mean over its pieces."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..analysis import entropy_bits
from .model import ModelRun


@dataclass(frozen=True, slots=True)
class Words:
    """A run's units: each word of the text (its pieces together) and each special token alone, in order."""

    labels: tuple[str, ...]  # the word as the text spells it, or the special token
    tokens: tuple[tuple[int, ...], ...]  # the token positions of each unit

    def listing(self) -> str:
        """ "0:[CLS] 1:the 2-3:tokenizer 4:split": each unit after its token positions, as written."""
        return " ".join(f"{p[0]}{f'-{p[-1]}' if len(p) > 1 else ''}:{label}" for label, p in zip(self.labels, self.tokens, strict=True))

    def membership(self, T: int, dtype: np.dtype) -> np.ndarray:
        """(T, U): 1 where token t belongs to unit u."""
        m = np.zeros((T, len(self.labels)), dtype)
        for u, positions in enumerate(self.tokens):
            m[list(positions), u] = 1
        return m


def run_words(run: ModelRun, text: str) -> Words:
    """The run's units, labelled by the text's own spelling (so "Bank" stays "Bank" in an uncased model)."""
    labels: list[str] = []
    tokens: list[list[int]] = []
    previous: int | None = None
    for t, (word, (start, end)) in enumerate(zip(run.words, run.offsets, strict=True)):
        if word is None or run.special[t]:
            labels.append(run.tokens[t])
            tokens.append([t])
            previous = None
            continue
        if word == previous:
            tokens[-1].append(t)
            first = run.offsets[tokens[-1][0]][0]
            labels[-1] = text[first:end].strip()
        else:
            labels.append(text[start:end].strip() or run.tokens[t])
            tokens.append([t])
        previous = word
    return Words(tuple(labels), tuple(tuple(p) for p in tokens))


def word_attention(weights: np.ndarray, words: Words) -> np.ndarray:
    """(..., T, T) token weights -> (..., U, U) word weights: keys summed over each word's pieces, queries
    averaged over them. Rows still sum to 1."""
    m = words.membership(weights.shape[-1], weights.dtype)  # (T, U)
    mean_rows = (m / m.sum(axis=0)).T  # (U, T)
    return mean_rows @ weights @ m


@dataclass(frozen=True, slots=True, eq=False)
class FocusedWord:
    """Where one word of the text looks, in every layer and head, and where its vector goes."""

    label: str
    unit: int  # its index among the run's words
    tokens: tuple[int, ...]  # its token positions
    weights: np.ndarray  # (L, h, U): the weight it gives each word, per layer and head
    vectors: np.ndarray  # (L + 1, d): its vector (the mean over its pieces) at the embeddings, then after each layer
    entropy_bits: np.ndarray  # (L, h): the entropy of its weights over the words, in bits
    head_mean: np.ndarray  # (L, U): its weights averaged over each layer's heads
    drift: np.ndarray  # (L + 1,): the cosine of its vector with its embedding, layer by layer
    top: np.ndarray  # (L, h, k): in each head, the k words it gives most weight, strongest first
    top_of_mean: np.ndarray  # (L, k): the same of its weights averaged over each layer's heads


def focus_units(words: Words, spec: str, T: int) -> list[int]:
    """The units ``--focus`` names: a word (every occurrence, any case), word@N (its N-th occurrence),
    or a token position (the word that token belongs to). A name that fits none is told the words with
    their token positions, the numbering ``--focus N`` and JSON use."""
    from ..errors import AttnvizError, quoted
    from ..pipeline import focus_positions

    if spec.isascii() and spec.isdigit():
        position = int(spec)
        if position >= T:
            raise AttnvizError(f"--focus {position} is past the last token (positions 0-{T - 1}: {quoted(words.listing())})")
        return [next(u for u, tokens in enumerate(words.tokens) if position in tokens)]
    lowered = tuple(label.lower() for label in words.labels)
    word = spec.rpartition("@")[0] if "@" in spec[1:] else spec  # as focus_positions reads it
    if word.lower() not in lowered:
        named = f"{quoted(spec)}: {quoted(word)}" if "@" in spec[1:] else quoted(word)  # bank@1@2 is told whole
        raise AttnvizError(f"--focus {named} is not one of the words {quoted(words.listing())}")
    return focus_positions(spec, lowered, lowercase=True)


def focus(run: ModelRun, words: Words, units: list[int], top_k: int = 3) -> list[FocusedWord]:
    """The chosen words' attention, per layer and head, over all the run's words (the ``top_k``
    strongest listed), and their vectors."""
    by_word = word_attention(run.attentions, words)  # (L, h, U, U)
    focused = []
    for u in units:
        weights = by_word[:, :, u, :]  # (L, h, U)
        vectors = run.hidden_states[:, list(words.tokens[u]), :].mean(axis=1)  # (L + 1, d)
        head_mean = weights.mean(axis=1)  # (L, U)
        focused.append(FocusedWord(
            label=words.labels[u], unit=u, tokens=words.tokens[u], weights=weights, vectors=vectors,
            entropy_bits=entropy_bits(weights), head_mean=head_mean, drift=cosine(vectors, vectors[0]),
            top=top_words(weights, top_k), top_of_mean=top_words(head_mean, top_k),
        ))
    return focused


def top_words(weights: np.ndarray, k: int) -> np.ndarray:
    """(..., U) weights -> (..., k): the ``k`` words with the most weight, strongest first (ties: the
    earlier word)."""
    return np.argsort(-weights, axis=-1, kind="stable")[..., :k]


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine similarity along the last axis."""
    return (a * b).sum(axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1))


@dataclass(frozen=True, slots=True, eq=False)
class WordComparison:
    """One word followed into two texts through a model: where it looks in each, layer by layer, and
    the cosine between its two vectors at the embeddings and after each layer."""

    focus: str  # as given: a word, or word@N
    texts: tuple[str, str]
    words: tuple[Words, Words]
    sides: tuple[FocusedWord, FocusedWord]
    cosines: np.ndarray  # (L + 1,): at the embeddings, then after each layer
    hidden: tuple[tuple[int, ...], tuple[int, ...]] = ((), ())  # --hide-special: each text's special units, left out of its listing
    weighting: str = "attention"  # the weights followed: the softmax's, or "norm": value-weighted (Kobayashi et al. 2020)
    value_norms: tuple[np.ndarray | None, np.ndarray | None] = (None, None)  # with "norm": each text's (L, h, T) ||v_j^h W_O^h||


def compare_word(runs: tuple[ModelRun, ModelRun], texts: tuple[str, str], spec: str, top_k: int = 3) -> WordComparison:
    """``spec`` must name one word in each text (word@N picks among repeats); ``top_k`` words are
    listed where it looks in each."""
    from ..errors import AttnvizError, quoted

    words, sides = [], []
    for label, run, text in zip(("first", "second"), runs, texts, strict=True):
        units = run_words(run, text)
        try:
            chosen = focus_units(units, spec, len(run.tokens))
        except AttnvizError as error:
            raise AttnvizError(f"{label} text: {error}") from error
        if len(chosen) > 1:
            word = units.labels[chosen[0]]
            raise AttnvizError(f"{label} text: {quoted(word)} occurs {len(chosen)} times; say which with --focus {word}@1 to {word}@{len(chosen)}")
        words.append(units)
        sides.append(focus(run, units, chosen, top_k)[0])
    a, b = sides
    cosines = cosine(a.vectors.astype(np.float64), b.vectors.astype(np.float64))
    return WordComparison(spec, texts, (words[0], words[1]), (a, b), cosines)

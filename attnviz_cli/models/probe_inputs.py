"""``attn heads --probe`` without texts: random token sequences from a model's vocabulary, each shown
twice after its BOS (the tokenizer's, else config.json's, as TransformerLens puts one first), run as a
corpus is (:mod:`.corpus`: equal-length batches, worker processes), each head's pattern and probe scores
averaged over them."""

from __future__ import annotations

import time
import unicodedata
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from ..errors import AttnvizError, quoted
from .corpus import BATCH, CorpusHeads, Encoded, PatternSums, encoded_patterns
from .probes import REPEATS, repeated_chunks

if TYPE_CHECKING:
    from .model import Model


def probe_vocabulary(model: Model) -> tuple[np.ndarray, np.ndarray]:
    """The token ids random sequences are drawn from, ascending, and which of them are punctuation:
    every id of the tokenizer's vocabulary (that the embedding has a row for) but its special tokens (BOS,
    EOS, chat markers...) and those whose text holds a control character (newline, tab, NUL...) or
    nothing at all."""
    tokenizer = model.tokenizer
    size = min(tokenizer.get_vocab_size(with_added_tokens=True), model.params["wte"].shape[0])  # ids the embedding has rows for
    special = {i for i, token in tokenizer.get_added_tokens_decoder().items() if token.special}
    candidates = [i for i in range(size) if i not in special]
    texts = tokenizer.decode_batch([[i] for i in candidates], skip_special_tokens=False)
    kept, punctuation = [], []
    for i, text in zip(candidates, texts, strict=True):
        if text and not any(unicodedata.category(c) in ("Cc", "Cf") for c in text):
            kept.append(i)
            chars = text.strip()
            punctuation.append(bool(chars) and all(unicodedata.category(c).startswith("P") for c in chars))
    if not kept:
        raise AttnvizError(f"the tokenizer of {quoted(model.config.name)} has no ordinary tokens to draw random sequences from")
    return np.array(kept, dtype=np.int64), np.array(punctuation, dtype=bool)


def bos_prefix(model: Model) -> np.ndarray:
    """The ids a random sequence starts with, as TransformerLens' ``to_tokens`` starts every text: those
    the tokenizer puts before a text's own (BOS, [CLS]), or where it puts none (GPT-2) the model's BOS
    (config.json's bos_token_id: GPT-2's <|endoftext|>); empty for a model that names no BOS either."""
    bare = model.tokenizer.encode("a", add_special_tokens=False).ids
    full = model.tokenizer.encode("a").ids
    start = next((k for k in range(len(full) - len(bare) + 1) if full[k:k + len(bare)] == bare), 0)
    if start or model.config.bos_id is None:
        return np.array(full[:start], dtype=np.int64)
    rows = model.params["wte"].shape[0]
    if model.config.bos_id >= rows:
        raise AttnvizError(f"the bos_token_id {model.config.bos_id} of {quoted(model.config.name)} is past its {rows} token embeddings")
    return np.array([model.config.bos_id], dtype=np.int64)


SEQUENCE_CHUNK = 64  # sequences drawn at once: a shard (--shard) or a Dask partition takes whole chunks
BATCH_BYTES = 256 * 2**20  # a batch's attention for one layer, scores and weights: longer sequences go fewer at a time


def batch_size(model: Model, T: int) -> int:
    """How many sequences of ``T`` tokens run together: up to corpus.BATCH, fewer where one layer's (B, h,
    T, T) scores and weights would pass :data:`BATCH_BYTES`."""
    each = 2 * model.config.heads * T * T * np.dtype(model.config.dtype).itemsize
    return max(1, min(BATCH, BATCH_BYTES // each))


def probe_heads(
    model: Model, probes: tuple[str, ...], *, sequences: int, length: int, seed: int,
    workers: int = 1, done: Callable[[int], None] | None = None,
) -> CorpusHeads:
    """Each head's patterns and ``probes`` scores averaged over ``sequences`` random sequences (see
    :func:`probe_sums`)."""
    start = time.perf_counter()
    sums, inputs = probe_sums(model, probes, sequences=sequences, length=length, seed=seed, workers=workers, done=done)
    return CorpusHeads.of(model.config, sums, 0, time.perf_counter() - start, inputs)


def probe_sums(
    model: Model, probes: tuple[str, ...], *, sequences: int, length: int, seed: int,
    workers: int = 1, done: Callable[[int], None] | None = None, takes: Callable[[int], bool] | None = None,
) -> tuple[PatternSums, dict[str, int]]:
    """The sums of the head patterns and ``probes`` scores of ``sequences`` random sequences of
    ``length`` tokens, each repeated :data:`~.probes.REPEATS` times after the BOS (:func:`bos_prefix`), drawn
    with ``seed`` (:func:`~.probes.repeated_sequences`), and the inputs' description. ``takes(k)``:
    whether to run chunk k of :data:`SEQUENCE_CHUNK` sequences (a shard's share; every chunk is drawn,
    so each is the same sequences whichever shard runs it)."""
    vocabulary, punctuation = probe_vocabulary(model)
    prefix = bos_prefix(model)
    T = len(prefix) + REPEATS * length
    if model.config.max_positions < T:
        raise AttnvizError(
            f"--length {length} makes sequences of {T} tokens ({REPEATS} copies and the BOS), more than the "
            f"{model.config.max_positions} positions of {quoted(model.config.name)}"
        )
    model.check_memory(T, keep=())  # one sequence's run, a layer's matrices at a time
    is_punctuation = dict(zip(vocabulary.tolist(), punctuation.tolist(), strict=True))
    chunks = repeated_chunks(vocabulary, sequences, length, seed, prefix, SEQUENCE_CHUNK)
    texts = (
        Encoded(n + 1, row, np.array([is_punctuation.get(i, False) for i in row.tolist()]))
        for n, row in enumerate(row for k, rows in enumerate(chunks) if takes is None or takes(k) for row in rows)
    )
    sums = encoded_patterns(model, texts, workers=workers, done=done, probes=probes, batch_size=batch_size(model, T))
    inputs = {"sequences": sequences, "length": length, "repeats": REPEATS, "seed": seed, "bos": len(prefix), "vocabulary": len(vocabulary)}
    return sums, inputs

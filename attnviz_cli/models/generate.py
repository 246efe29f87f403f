"""Generating text with a decoder, a token at a time, and where each new token looked.

A prefill runs the prompt through every layer, each of which keeps its (rotated) keys and values in a
:class:`~.layers.KeyValues`; then each new token alone runs through the layers, attending to all they hold,
and adds its own. Logits are the last hidden state times the output head (Gemma 2 soft-caps them). Greedy
decoding takes the most likely token; with a temperature, a token is drawn from softmax(logits / T), over
the ``top_k`` most likely alone if given, by the caller's ``np.random.Generator``.

Without the cache (``cached=False``) every step runs the whole sequence again: the plain version, which
the cached one is tested against. Pure NumPy: arrays in, steps out.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..analysis import top_keys
from ..core import softmax
from ..errors import AttnvizError, quoted
from .layers import Attended, KeyValues
from .model import PAGES

if TYPE_CHECKING:
    from .model import Model


@dataclass(frozen=True, slots=True, eq=False)
class Step:
    """One generated token: what the model gave for it and where the query that chose it looked."""

    id: int  # the token chosen
    logits: np.ndarray  # (vocab,) the logits it was chosen from (soft-capped where the model caps them)
    weights: np.ndarray  # (L, h, T): the attention of the query that chose it (the position before it) over the T tokens so far, 0 where masked
    scores: np.ndarray  # (L, h, T): the same row's scores before the softmax, -inf where masked
    stopped: str | None = None  # the last step's: why the run ends after it, "eos", "max_new_tokens" or "max_positions"


@dataclass(frozen=True, slots=True)
class Sampling:
    """How the next token is chosen: greedily (temperature 0), else drawn at ``temperature`` from the
    ``top_k`` most likely tokens (all if None), by ``rng``, which drawing requires (no hidden randomness:
    the caller seeds it); a ``top_k`` draws, so it needs a temperature."""

    temperature: float = 0.0
    top_k: int | None = None
    rng: np.random.Generator | None = None

    def __post_init__(self) -> None:
        if self.top_k is not None and self.temperature == 0:
            raise ValueError("a top_k draws among the most likely tokens: it needs a temperature above 0")
        if self.temperature > 0 and self.rng is None:
            raise ValueError("drawing (a temperature above 0) needs an rng, seeded by the caller")

    def probabilities(self, logits: np.ndarray) -> np.ndarray:
        """The distribution (vocab,) a token is drawn from: softmax(logits / temperature) over the
        ``top_k`` most likely (the others 0; ties with the k-th stay, as transformers' TopKLogitsWarper
        keeps them)."""
        scaled = logits.astype(np.float64) / self.temperature
        if self.top_k is not None and self.top_k < scaled.size:
            kth = np.partition(scaled, -self.top_k)[-self.top_k]
            scaled[scaled < kth] = -np.inf
        return softmax(scaled)

    def choose(self, logits: np.ndarray) -> int:
        """The next token's id from ``logits`` (vocab,)."""
        if self.temperature == 0:
            return int(np.argmax(logits))
        assert self.rng is not None  # __post_init__ requires it
        p = self.probabilities(logits)
        return int(self.rng.choice(p.size, p=p))


GREEDY = Sampling()


def generate(
    model: Model, ids: Sequence[int] | np.ndarray, max_new_tokens: int = 20, sampling: Sampling = GREEDY,
    eos_ids: Sequence[int] | None = None, cached: bool = True,
) -> Iterator[Step]:
    """Up to ``max_new_tokens`` (at least 1) tokens after the prompt ``ids`` (T,), one :class:`Step` each as
    it is made; the run ends after an end-of-text token (``eos_ids``; None: the model's) or at the model's
    last position, and its last step says which (``stopped``). A prompt that leaves the model no position
    is refused, so a run makes at least one token. ``cached``: keys and values kept between steps (else
    each step runs all the tokens)."""
    if max_new_tokens < 1:
        raise ValueError(f"max_new_tokens is {max_new_tokens}; a run makes at least one token")
    config = model.config
    page = PAGES[config.architecture]
    if not page.causal:
        raise AttnvizError(f"model {quoted(config.name)} is a {config.architecture}, which reads a whole text at once; generating needs a decoder")
    tokens = [int(i) for i in ids]
    if not tokens:
        raise AttnvizError("the prompt gives no tokens")
    vocab = model.params["wte"].shape[0]
    if min(tokens) < 0 or max(tokens) >= vocab:
        raise AttnvizError(f"a prompt token id is outside the {vocab:,} tokens of {quoted(config.name)}")
    if len(tokens) >= config.max_positions:
        raise AttnvizError(f"the prompt has {len(tokens)} tokens, and the model's {config.max_positions} positions leave no room for more")
    ends = set(config.eos_ids if eos_ids is None else eos_ids)
    steps = min(max_new_tokens, config.max_positions - len(tokens))
    model.check_memory(len(tokens) if cached else len(tokens) + steps, keep=())  # the longest pass: the prefill, or the last whole one
    head = model.lm_head()  # (vocab, d)
    caches = [KeyValues() for _ in range(config.layers)] if cached else None
    new = np.asarray(tokens, dtype=np.int64)  # what the next pass runs: the prompt, then each new token
    for i in range(steps):
        last, rows = last_row(model, new if caches is not None else np.asarray(tokens, dtype=np.int64), caches)
        logits = next_logits(model, last, head)
        chosen = sampling.choose(logits)
        stopped = "eos" if chosen in ends else None if i < steps - 1 else "max_new_tokens" if steps == max_new_tokens else "max_positions"
        yield Step(chosen, logits, *rows, stopped)
        if stopped is not None:
            return
        tokens.append(chosen)
        new = np.asarray([chosen], dtype=np.int64)


def last_row(model: Model, ids: np.ndarray, caches: list[KeyValues] | None) -> tuple[np.ndarray, tuple[np.ndarray, np.ndarray]]:
    """Token ``ids`` (T,) through ``model`` as ``attn inspect`` runs them (:meth:`.Model.forward`), after the
    ``caches[0].length`` tokens the layers' caches hold if given: the last token's final hidden state (d,),
    and its attention weights and scores over all the tokens, (L, h, length); the rest of each layer's
    attention is freed as the next layer runs."""
    weights, scores = [], []

    def on_layer(_: int, attended: Attended) -> None:
        weights.append(attended.weights[:, -1].copy())  # (h, length): a copy, so that the (h, T, length) rows go
        scores.append(attended.scores[:, -1].copy())

    hidden, _ = model.forward(ids, on_layer=on_layer, caches=caches)
    return hidden[-1][-1], (np.stack(weights), np.stack(scores))


def next_logits(model: Model, last: np.ndarray, head: np.ndarray) -> np.ndarray:
    """The logits (vocab,) of the final hidden state ``last`` (d,) through the output ``head`` (vocab, d),
    soft-capped where the model caps them (Gemma 2: cap · tanh(logits / cap)); refused unless all are finite."""
    cap = model.config.settings.get("final_softcap")
    with np.errstate(all="ignore"):  # an overflow is refused below, not warned of
        logits = last @ head.T
        if cap is not None:
            logits = cap * np.tanh(logits / cap)
    if not np.isfinite(logits).all():
        config = model.config
        raise AttnvizError(
            f"{quoted(config.name)} gives no finite result: its logits overflowed or became NaN "
            f"(its weights or config values are out of range for {config.dtype})"
        )
    return logits


@dataclass(frozen=True, slots=True, eq=False)
class NewToken:
    """A generated token as a reader sees it: where it stands, its piece and the text it adds."""

    index: int  # among the new tokens, from 0
    position: int  # in the whole sequence, prompt first: its attention row (``step.weights``) covers positions 0 to position - 1
    id: int
    token: str  # the tokenizer's piece ("Ġthe", "▁the", "<|im_end|>")
    text: str  # what it adds to the decoded text ("" while it ends inside a character its next token completes)
    step: Step


def generate_text(
    model: Model, ids: Sequence[int], max_new_tokens: int = 20, sampling: Sampling = GREEDY, eos_ids: Sequence[int] | None = None,
) -> Iterator[NewToken]:
    """:func:`generate` after the prompt ``ids``, each new token with its piece and text: the text is
    the decoding of prompt and new tokens together past the prompt's own (so that a leading space
    stays), held back while it ends in a character not yet complete (U+FFFD)."""
    tokenizer = model.tokenizer
    prompt = [int(i) for i in ids]
    base = tokenizer.decode(prompt, skip_special_tokens=False)
    made: list[int] = []
    shown = 0  # characters past the prompt already given out
    for index, step in enumerate(generate(model, prompt, max_new_tokens, sampling, eos_ids)):
        made.append(step.id)
        text = tokenizer.decode(prompt + made, skip_special_tokens=False)[len(base):]
        piece = "" if text.endswith("\ufffd") else text[shown:]
        shown += len(piece)
        yield NewToken(index, len(prompt) + index, step.id, tokenizer.id_to_token(step.id) or "", piece, step)


def looked(weights: np.ndarray, layer: int | None = None, head: int | None = None) -> np.ndarray:
    """Where a query looked, from its attention rows ``weights`` (L, h, T): the mean over the layers and
    heads (over one of either if chosen), (T,); it sums to 1 as each row does."""
    chosen = weights if layer is None else weights[layer:layer + 1]
    chosen = chosen if head is None else chosen[:, head:head + 1]
    return chosen.mean(axis=(0, 1))


def most_looked(row: np.ndarray, k: int = 3, skip_first: bool = False) -> list[int]:
    """The ``k`` positions of ``row`` (T,) with the most weight, most first (ties to the earlier one,
    :func:`~attnviz_cli.analysis.top_keys`); ``skip_first``: position 0, where many heads park their
    weight (an attention sink), left out."""
    masked = (np.arange(row.size) == 0) if skip_first else None
    return [int(p) for p in top_keys(row, k, masked) if p >= 0]

"""Head patterns over a corpus: many texts through a model, each head's patterns averaged over them
(:func:`corpus_heads`: a :class:`CorpusHeads`, what ``attn heads`` shows).

Texts are tokenized a chunk at a time, grouped by token count, and run a batch of equal length at a
time (no padding, so each text's numbers are its own); only the running sums are kept, so memory stays
flat in the number of texts. Batches go to worker processes when there are enough of them.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from ..errors import AttnvizError, library_failure, quoted
from ..lines import TooLong, bad_line
from ..workers import lifeline, start_worker, starting_workers
from .heads import HeadLabels, HeadPatterns, head_patterns, punctuation_tokens
from .probes import detection_pattern, probe_scores

if TYPE_CHECKING:
    from concurrent.futures import Future, ProcessPoolExecutor
    from multiprocessing.connection import Connection

    from .model import Model, ModelConfig

BATCH = 64  # texts of one length run together: large enough for BLAS, small enough for memory and cache
CHUNK = 1024  # lines tokenized at once (the tokenizer spreads a chunk over every core)
PARALLEL_TEXTS = 256  # the first texts run in this process: a short input is done before workers could start


@dataclass(frozen=True, slots=True)
class Encoded:
    """One text, tokenized: its line number, token ids, and which tokens are punctuation."""

    line: int
    ids: np.ndarray  # (T,)
    punctuation: np.ndarray  # (T,) bool
    truncated: int = 0  # tokens cut from its end to fit the model's positions (--truncate)


PARTS = HeadPatterns.__slots__  # shares, entropy_bits, spread, distance, sink, sink_k
SINKS = ("sink", "sink_k")  # undefined (NaN) for a text too short to have them: counted apart


class PatternSums:
    """A mergeable accumulator of a corpus pass (float64): per head, the sums over the texts of each of
    their patterns and of its square (for a standard deviation), of each text's score for each of
    ``probes`` (head detectors, :mod:`.probes`) and its square, how many texts have sinks, and how many
    texts and tokens went in (and how many tokens --truncate cut). Every field is a sum, so merging is
    addition: the result does not depend on how the corpus was split, up to float64 addition order."""

    def __init__(self, layers: int, heads: int, probes: tuple[str, ...] = ()) -> None:
        self.probes = probes
        self.arrays = {name: np.zeros(shape) for name, shape in self.shapes(layers, heads, len(probes)).items()}
        self.texts = 0
        self.tokens = 0
        self.truncated = 0

    @staticmethod
    def shapes(layers: int, heads: int, probes: int) -> dict[str, tuple[int, ...]]:
        """Every array sum's name (the partial file's names too) and shape."""
        shapes: dict[str, tuple[int, ...]] = {}
        for part in PARTS:
            shapes[part] = shapes[f"{part}_squares"] = (layers, heads, 6) if part == "shares" else (layers, heads)
        for part in SINKS:
            shapes[f"{part}_texts"] = (layers, heads)  # the texts that have queries after the first token(s)
        shapes["probe_scores"] = shapes["probe_scores_squares"] = (probes, layers, heads)
        return shapes

    def add(self, patterns: HeadPatterns, tokens: int, truncated: int = 0, scores: np.ndarray | None = None) -> None:
        """Add a batch's (B, L, h, ...) patterns and (B, P, L, h) probe ``scores``, B texts of ``tokens``
        tokens in all (``truncated`` more cut from them)."""
        a = self.arrays
        for part in PARTS:
            values = getattr(patterns, part).astype(np.float64)
            if part in SINKS:  # NaN for a text too short to have them: left out, and not counted
                a[f"{part}_texts"] += (~np.isnan(values)).sum(axis=0)
                values = np.nan_to_num(values, nan=0.0)
            a[part] += values.sum(axis=0)
            a[f"{part}_squares"] += (values * values).sum(axis=0)
        if scores is not None:
            values = scores.astype(np.float64)
            a["probe_scores"] += values.sum(axis=0)
            a["probe_scores_squares"] += (values * values).sum(axis=0)
        self.texts += patterns.spread.shape[0]
        self.tokens += tokens
        self.truncated += truncated

    def merge(self, other: PatternSums) -> PatternSums:
        """Add ``other``'s sums to these (returned, for a reduction)."""
        for name, values in other.arrays.items():
            self.arrays[name] += values
        self.texts += other.texts
        self.tokens += other.tokens
        self.truncated += other.truncated
        return self

    def _counts(self, part: str) -> np.ndarray | int:
        return self.arrays[f"{part}_texts"] if part in SINKS else self.texts

    def mean(self) -> HeadPatterns:
        """Each head's patterns averaged over the texts, every text counting alike."""
        if self.texts == 0:
            raise AttnvizError("no texts to average: the input has no non-empty lines")
        with np.errstate(invalid="ignore", divide="ignore"):  # NaN where no text had queries after the first token(s)
            return HeadPatterns(*(self.arrays[part] / _shaped(self._counts(part), part) for part in PARTS))

    def std(self) -> HeadPatterns:
        """Each head's patterns' standard deviation over the texts (population: sqrt(E[x^2] - E[x]^2),
        0 for one text; NaN where :meth:`mean` is)."""
        mean = self.mean()
        with np.errstate(invalid="ignore", divide="ignore"):
            return HeadPatterns(*(
                _std(self.arrays[f"{part}_squares"] / _shaped(self._counts(part), part), getattr(mean, part)) for part in PARTS
            ))

    def mean_scores(self) -> np.ndarray:
        """(P, L, h) each probe's score of each head averaged over the texts (as TransformerLens averages
        ``detect_head`` over a list of sequences)."""
        return self.arrays["probe_scores"] / max(self.texts, 1)

    def std_scores(self) -> np.ndarray:
        """(P, L, h) each probe's score's standard deviation over the texts (population)."""
        n = max(self.texts, 1)
        return _std(self.arrays["probe_scores_squares"] / n, self.arrays["probe_scores"] / n)


def _shaped(counts: np.ndarray | int, part: str) -> np.ndarray | int:
    return counts[..., None] if part == "shares" and isinstance(counts, np.ndarray) else counts


def _std(mean_square: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """sqrt(E[x^2] - E[x]^2), a rounding error below 0 read as 0."""
    return np.sqrt(np.maximum(mean_square - mean * mean, 0.0))


@dataclass(frozen=True, slots=True, eq=False)
class CorpusHeads:
    """A corpus through a model: each head's patterns averaged over its texts, and what went in."""

    config: ModelConfig
    heads: HeadLabels  # (L, h): each head's mean patterns and its label
    texts: int  # texts averaged over
    tokens: int  # their tokens, in all
    skipped: int  # lines left out (--on-error skip)
    truncated: int  # tokens --truncate cut from the ends of long texts, in all
    seconds: float  # how long the run took
    probes: tuple[str, ...] = ()  # the head detectors scored (attn heads --probe), in PROBES' order
    scores: np.ndarray | None = None  # (P, L, h) each probe's mean score per head
    inputs: Mapping[str, int] | None = None  # the random sequences the probes built (sequences, length, seed...); None: the texts given
    std: HeadPatterns | None = None  # (L, h, ...) each pattern's standard deviation over the texts
    scores_std: np.ndarray | None = None  # (P, L, h) each probe's score's standard deviation over the texts

    @classmethod
    def of(
        cls, config: ModelConfig, sums: PatternSums, skipped: int, seconds: float,
        inputs: Mapping[str, int] | None = None,
    ) -> CorpusHeads:
        """The report of a corpus pass's (or merged passes') ``sums``."""
        probes = sums.probes
        return cls(
            config, HeadLabels.of(sums.mean(), config.causal), sums.texts, sums.tokens, skipped, sums.truncated, seconds,
            probes, sums.mean_scores() if probes else None, inputs, sums.std(), sums.std_scores() if probes else None,
        )


def line_limit(config: ModelConfig) -> int:
    """The longest line (bytes) that can still fit the model's positions: a longer one is refused as
    soon as it is read this far, as a stream of --max-tokens refuses its over-long lines."""
    from ..pipeline import max_input_bytes

    return max_input_bytes(config.max_positions)


def too_long_error(config: ModelConfig) -> AttnvizError:
    return AttnvizError(
        f"the line is longer than {line_limit(config):,} bytes, more than the {config.max_positions} positions of {quoted(config.name)} can take"
    )


def corpus_heads(
    model: Model, lines: Iterable[tuple[int, str]], *, on_error: str, note: Callable[[str], None],
    workers: int = 1, done: Callable[[int], None] | None = None, truncate: bool = False, probes: tuple[str, ...] = (),
) -> CorpusHeads:
    """Each head's patterns averaged over the texts of numbered ``lines`` (see :func:`corpus_sums`)."""
    start = time.perf_counter()
    sums, skipped = corpus_sums(model, lines, on_error=on_error, note=note, workers=workers, done=done, truncate=truncate, probes=probes)
    return CorpusHeads.of(model.config, sums, skipped, time.perf_counter() - start)


def corpus_sums(
    model: Model, lines: Iterable[tuple[int, str]], *, on_error: str, note: Callable[[str], None],
    workers: int = 1, done: Callable[[int], None] | None = None, truncate: bool = False, probes: tuple[str, ...] = (),
) -> tuple[PatternSums, int]:
    """The sums of the head patterns of the texts of numbered ``lines`` (read with at most
    :func:`line_limit` bytes a line), and how many lines were left out. A line with no tokens, or too
    many (unless ``truncate`` keeps their first), stops the run (``on_error`` "fail") or is left out
    with a ``note`` ("skip")."""
    skipped = 0

    def bad(line: int, text: str, error: AttnvizError) -> None:
        nonlocal skipped
        note(bad_line(line, error, on_error))
        skipped += 1

    def fitting() -> Iterator[tuple[int, str]]:
        for line, text in lines:
            if isinstance(text, TooLong):
                bad(line, text, too_long_error(model.config))
            else:
                yield line, text

    sums = corpus_patterns(model, fitting(), bad=bad, workers=workers, done=done, truncate=truncate, probes=probes)
    return sums, skipped


def encode_lines(
    model: Model, lines: list[tuple[int, str]], bad: Callable[[int, str, AttnvizError], None], truncate: bool = False,
) -> list[Encoded]:
    """The texts of numbered ``lines`` tokenized at once; a text with no tokens or too many (unless
    ``truncate`` keeps its first, as :meth:`Model.encode` does) goes to ``bad`` (which may raise to stop) instead."""
    encoded = []
    encodings = model.encode_many([text for _, text in lines])
    cut = [0] * len(lines)
    if truncate:
        long = [i for i, e in enumerate(encodings) if len(e.ids) > model.config.max_positions]
        for i, kept in zip(long, model.encode_truncated([lines[i][1] for i in long]), strict=True):
            cut[i], encodings[i] = len(encodings[i].ids) - len(kept.ids), kept
    for i, ((line, text), encoding) in enumerate(zip(lines, encodings, strict=True)):
        try:
            model.check_encoding(encoding)
        except AttnvizError as error:
            bad(line, text, error)
            continue
        punctuation = punctuation_tokens(text, tuple(encoding.offsets), tuple(bool(s) for s in encoding.special_tokens_mask))
        encoded.append(Encoded(line, np.asarray(encoding.ids, dtype=np.int64), punctuation, cut[i]))
    return encoded


def equal_length_batches(texts: Iterable[Encoded], size: int = BATCH) -> Iterator[list[Encoded]]:
    """Texts grouped by token count, a batch as soon as ``size`` of one length have come, then what is
    left of each length at the end. At most ``size`` texts wait per length: memory stays flat."""
    waiting: dict[int, list[Encoded]] = defaultdict(list)
    for text in texts:
        group = waiting[len(text.ids)]
        group.append(text)
        if len(group) == size:
            yield group
            waiting[len(text.ids)] = []
    for group in waiting.values():
        if group:
            yield group


def batch_patterns(
    model: Model, batch: list[Encoded], threads: int | None = None, probes: tuple[str, ...] = (),
) -> tuple[HeadPatterns, np.ndarray]:
    """(B, L, h, ...) the patterns of each text of a batch of one length, and (B, P, L, h) its score for
    each of ``probes``, in one forward pass (its rows shared among ``threads``; None: every usable
    core), taken a layer at a time: one layer's (B, h, T, T) weights are held, never every layer's."""
    ids = np.stack([text.ids for text in batch])  # (B, T)
    punctuation = np.stack([text.punctuation for text in batch])[:, None, None, :]  # (B, 1, 1, T)
    detect = [detection_pattern(probe, ids)[:, None] for probe in probes]  # each (B, 1, T, T)
    layers: list[HeadPatterns] = []
    scores: list[np.ndarray] = []  # per layer (B, P, h)

    def on_layer(i: int, attended) -> None:
        layers.append(head_patterns(attended.weights, punctuation, model.config.causal))  # (B, h, ...)
        scores.append(np.stack([probe_scores(attended.weights, p) for p in detect], axis=1) if probes else np.zeros((len(batch), 0, model.config.heads)))

    model.forward(ids, attention_only=True, threads=threads, on_layer=on_layer)
    patterns = HeadPatterns(*(np.stack([getattr(p, part) for p in layers], axis=1) for part in HeadPatterns.__slots__))
    return patterns, np.stack(scores, axis=2)  # (B, L, h, ...), (B, P, L, h)


def corpus_patterns(
    model: Model, lines: Iterable[tuple[int, str]], *, bad: Callable[[int, str, AttnvizError], None],
    workers: int = 1, batch_size: int = BATCH, parallel_after: int = PARALLEL_TEXTS,
    done: Callable[[int], None] | None = None, truncate: bool = False, probes: tuple[str, ...] = (),
) -> PatternSums:
    """The sums of every text's head patterns (and scores for ``probes``) over numbered ``lines``
    (their mean: ``.mean()``)."""
    return encoded_patterns(model, _encoded(model, lines, bad, truncate), workers=workers, batch_size=batch_size,
                            parallel_after=parallel_after, done=done, probes=probes)


def encoded_patterns(
    model: Model, texts: Iterable[Encoded], *, workers: int = 1, batch_size: int = BATCH,
    parallel_after: int = PARALLEL_TEXTS, done: Callable[[int], None] | None = None, probes: tuple[str, ...] = (),
) -> PatternSums:
    """The sums of the head patterns (and scores for ``probes``) of tokenized ``texts``.

    The first ``parallel_after`` texts run in this process; after them, with ``workers`` > 1, batches
    go to that many worker processes, a few in flight each. ``done`` hears how many texts are finished.
    """
    c = model.config
    sums = PatternSums(c.layers, c.heads, probes)
    pool: ProcessPoolExecutor | None = None
    pending: deque[Future[PatternSums]] = deque()

    def finish(result: PatternSums) -> None:
        sums.merge(result)
        if done is not None:
            done(sums.texts)

    from concurrent.futures import BrokenExecutor

    try:
        with ExitStack() as stack:  # the pool, once started, is shut down on the way out, however that is
            for batch in equal_length_batches(texts, batch_size):
                if pool is None and workers > 1 and sums.texts >= parallel_after:
                    pool = _start_pool(model, workers, stack)
                if pool is None:
                    finish(_sums_of(model, batch, workers, probes))
                    continue
                with starting_workers():  # a submit may start a worker
                    pending.append(pool.submit(_work, batch, probes))
                while len(pending) > 2 * workers:
                    finish(pending.popleft().result())
            while pending:
                finish(pending.popleft().result())
    except BrokenExecutor:  # a worker died (killed, out of memory): the pool cannot go on
        raise AttnvizError("a worker process ended before finishing its texts (killed, or out of memory?); --workers 1 runs without them") from None
    return sums


def _encoded(
    model: Model, lines: Iterable[tuple[int, str]], bad: Callable[[int, str, AttnvizError], None], truncate: bool,
) -> Iterator[Encoded]:
    chunk: list[tuple[int, str]] = []
    for numbered in lines:
        chunk.append(numbered)
        if len(chunk) == CHUNK:
            yield from encode_lines(model, chunk, bad, truncate)
            chunk = []
    if chunk:
        yield from encode_lines(model, chunk, bad, truncate)


def _sums_of(model: Model, batch: list[Encoded], threads: int, probes: tuple[str, ...] = ()) -> PatternSums:
    """The pattern (and probe) sums of one batch of texts of one length, on ``threads`` threads."""
    sums = PatternSums(model.config.layers, model.config.heads, probes)
    patterns, scores = batch_patterns(model, batch, threads, probes)
    sums.add(patterns, sum(len(text.ids) for text in batch), sum(text.truncated for text in batch), scores)
    return sums


_WORKER_MODEL: list[Model] = []  # a worker process's model, loaded once by _load_in_worker
_WORKER_FAILURE: list[str] = []  # or why it could not be, for its first task to report


def _load_in_worker(reader: Connection, folder: str, dtype: str) -> None:
    """A worker's start: bound to the parent's life by ``reader``, its lifeline; one BLAS thread (the
    workers share the cores: more would fight over them); and the model. A failure is kept for the
    first task to raise, so the run ends with one line naming it, not a traceback here and a broken
    pool there."""
    try:
        from threadpoolctl import threadpool_limits

        from .model import load_model

        start_worker(reader)
        threadpool_limits(1)
        _WORKER_MODEL.append(load_model(folder, dtype=dtype))
    except BaseException as error:  # a library's panic too (see library_failure)
        if not library_failure(error):
            raise
        _WORKER_FAILURE.append(str(error) if isinstance(error, AttnvizError) else f"{type(error).__name__}: {error}")


def _work(batch: list[Encoded], probes: tuple[str, ...]) -> PatternSums:
    if _WORKER_FAILURE:
        raise AttnvizError(f"a worker process could not load the model: {_WORKER_FAILURE[0]}")
    return _sums_of(_WORKER_MODEL[0], batch, 1, probes)  # one thread: the other workers have the other cores


def _start_pool(model: Model, workers: int, stack: ExitStack) -> ProcessPoolExecutor:
    """Worker processes, started fresh (not forked from a process whose BLAS threads are running), each
    loading the model itself (its embedding table memory-mapped) and ending with this process (its
    lifeline: see :mod:`attnviz_cli.workers`). ``stack`` shuts them down, waiting for them when the run
    is done; when it ends early (Ctrl-C, an error), their lifeline is cut first: their work is not
    wanted, and a worker still loading the model ends at once rather than after the load."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    line = stack.enter_context(lifeline())
    pool = ProcessPoolExecutor(
        workers, mp_context=multiprocessing.get_context("spawn"), initializer=_load_in_worker,
        initargs=(line.reader, str(model.folder), model.config.dtype),
    )

    def shut_down(kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            line.writer.close()
        pool.shutdown(cancel_futures=True)

    stack.push(shut_down)
    return pool

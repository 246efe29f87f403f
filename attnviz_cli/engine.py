"""The machinery behind :mod:`attnviz_cli.core`: how attention's work is cut into blocks of rows and
pieces of projections, and run on threads. Pure NumPy, no I/O; nothing here is public API.

Q, K and V come from one fused product, split into one contiguous (T, d) matrix per (sequence, head)
pair. The scores are computed, softmaxed and mixed into the values one block of rows at a time, so a
block is still in the CPU cache for every pass over it. Blocks and pieces are shared between threads
(NumPy releases the GIL in BLAS and in ufuncs), with BLAS held to one thread each meanwhile: OpenBLAS's
own workers would otherwise spin on the same cores. The cut never depends on the thread count or on the
other sequences of a batch, so neither changes a bit of the result.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from functools import cache
from typing import TYPE_CHECKING, Any, NamedTuple, Self

import numpy as np

if TYPE_CHECKING:
    from concurrent.futures import ThreadPoolExecutor

    from threadpoolctl import ThreadpoolController

BLOCK_ELEMENTS = 1 << 19  # scores per block of rows: 2 MiB in float32, about what a core's caches hold
THREADED_ELEMENTS = 1 << 20  # below this many scores, one thread: starting threads would cost more
MATMUL_ROWS = 256  # rows per BLAS call in the projections of long sequences


def split_heads(m: np.ndarray, heads: int) -> np.ndarray:
    """(..., T, h*d) -> (..., h, T, d): head i gets columns i*d to (i+1)*d."""
    *lead, T, width = m.shape
    return m.reshape(*lead, T, heads, width // heads).swapaxes(-3, -2)


class Block(NamedTuple):
    """A block of work: query ``rows`` of the scores of the (sequence, head) ``pairs`` it covers."""

    pairs: slice
    rows: slice

    @property
    def where(self) -> tuple[slice, slice]:
        return self.pairs, self.rows

    def shape(self, T: int) -> tuple[int, int, int]:
        return self.pairs.stop - self.pairs.start, self.rows.stop - self.rows.start, T

    def causal_mask(self, T: int) -> np.ndarray:
        """(rows, T) bool: True where key j comes after the query (j > i)."""
        return np.arange(T) > np.arange(self.rows.start, self.rows.stop)[:, None]


def blocks(pairs: int, T: int) -> list[Block]:
    """Blocks of about BLOCK_ELEMENTS scores covering ``pairs`` T x T matrices: some rows of one pair
    for long sequences, several whole pairs for short ones."""
    rows = max(1, min(T, BLOCK_ELEMENTS // T))
    per_block = max(1, BLOCK_ELEMENTS // (T * T)) if rows == T else 1
    return [
        Block(slice(p, min(p + per_block, pairs)), slice(r, min(r + rows, T)))
        for p in range(0, pairs, per_block) for r in range(0, T, rows)
    ]


class Projected:
    """Checked inputs and, after :meth:`project`, queries, keys and values as (pairs, T, d) arrays:
    one contiguous matrix per (sequence, head) pair, which is what fast BLAS calls want."""

    def __init__(
        self, x: np.ndarray, heads: int, d_k: int, d_v: int,
        wq: np.ndarray | None, wk: np.ndarray | None, wv: np.ndarray | None, wo: np.ndarray | None,
    ) -> None:
        self.x = x  # (..., T, d_model), in the compute dtype
        self.heads, self.d_k, self.d_v = heads, d_k, d_v
        self.wq, self.wk, self.wv, self.wo = wq, wk, wv, wo
        none = np.empty((0, 0, 0), x.dtype)  # until project() makes them:
        self.q: np.ndarray = none  # (pairs, T, d_k)
        self.k: np.ndarray = none  # (pairs, T, d_k)
        self.v: np.ndarray = none  # (pairs, T, d_v)

    @property
    def dtype(self) -> np.dtype:
        return self.x.dtype

    @property
    def T(self) -> int:
        return self.x.shape[-2]

    @property
    def lead(self) -> tuple[int, ...]:
        return self.x.shape[:-2]

    @property
    def pairs(self) -> int:
        return int(np.prod(self.lead, dtype=np.int64)) * self.heads

    def unflat(self, a: np.ndarray) -> np.ndarray:
        """(pairs, ...) -> (..., h, ...): the caller's batch dimensions back (a view)."""
        return a.reshape(*self.lead, self.heads, *a.shape[1:])

    def project(self, run: Runner) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Q, K and V (pairs, T, d) by one fused product x @ [wq | wk | wv] (identity parts taken from
        x), split into heads piece by piece, so that no (T, 3 h d) intermediate is ever whole."""
        given = [w for w in (self.wq, self.wk, self.wv) if w is not None]
        own = None
        if len(given) < 3:  # the identity: x's own components, copied once and shared
            own = split_heads(self.x.reshape(-1, self.T, self.x.shape[-1]), self.heads).copy()
            own = own.reshape(self.pairs, self.T, -1)
        heads_of = [own if w is None else self._empty(w) for w in (self.wq, self.wk, self.wv)]
        self.q, self.k, self.v = heads_of  # type: ignore[assignment]  # own is set wherever w is None
        if not given:
            return self.q, self.k, self.v
        fused = np.concatenate(given, axis=1) if len(given) > 1 else given[0]
        targets = [h for h, w in zip((self.q, self.k, self.v), (self.wq, self.wk, self.wv), strict=True) if w is not None]
        x3d = self.x.reshape(-1, self.T, self.x.shape[-1])  # (sequences, T, d_model)

        def piece(seqs: slice, rows: slice) -> None:
            projected = np.matmul(x3d[seqs, rows], fused)  # (n, rows, widths of the given matrices)
            start = 0
            for target in targets:
                width = target.shape[-1] * self.heads
                self._by_sequence(target)[seqs, :, rows] = split_heads(projected[..., start : start + width], self.heads)
                start += width

        run.pieces(x3d.shape[0], self.T, piece)
        return self.q, self.k, self.v

    def _empty(self, w: np.ndarray) -> np.ndarray:
        return np.empty((self.pairs, self.T, w.shape[1] // self.heads), self.dtype)

    def _by_sequence(self, a: np.ndarray) -> np.ndarray:
        """(pairs, T, d) -> (sequences, h, T, d), a view."""
        return a.reshape(-1, self.heads, *a.shape[1:])

    def scores_into(self, block: Block, scale: bool, causal: bool, out: np.ndarray) -> None:
        """The block's scores q.k, divided by sqrt(d_k) and masked with -inf, written into ``out``."""
        np.matmul(self.q[block.where], self.k[block.pairs].swapaxes(-1, -2), out=out)
        if scale:
            out /= np.sqrt(self.dtype.type(self.d_k))
        if causal:
            np.copyto(out, -np.inf, where=block.causal_mask(self.T))

    def output(self, head_outputs: np.ndarray, run: Runner) -> np.ndarray:
        """The heads side by side (..., T, h*d_v), through ``wo`` if there is one; piece by piece."""
        by_sequence = self._by_sequence(head_outputs)  # (sequences, h, T, d_v)
        width = self.heads * self.d_v if self.wo is None else self.wo.shape[1]
        output = np.empty((by_sequence.shape[0], self.T, width), self.dtype)

        def piece(seqs: slice, rows: slice) -> None:
            concat = by_sequence[seqs, :, rows].swapaxes(1, 2)  # (n, rows, h, d_v)
            concat = concat.reshape(*concat.shape[:2], -1)  # (n, rows, h*d_v): a copy
            if self.wo is None:
                output[seqs, rows] = concat
            else:
                np.matmul(concat, self.wo, out=output[seqs, rows])

        run.pieces(by_sequence.shape[0], self.T, piece)
        return output.reshape(*self.lead, self.T, width)


class Scratch:
    """One thread's buffer for blocks of weights that are not kept, reused block to block."""

    def __init__(self) -> None:
        self._buffers: dict[tuple[int, ...], np.ndarray] = {}

    def take(self, shape: tuple[int, ...], dtype: np.dtype) -> np.ndarray:
        if shape not in self._buffers:
            self._buffers[shape] = np.empty(shape, dtype)
        return self._buffers[shape]


@cache
def blas_controller() -> ThreadpoolController:
    """threadpoolctl's view of the BLAS libraries loaded (NumPy's), found once per process: finding
    them is most of what ``threadpool_limits`` costs (measured: 560 µs a call against 27 µs for a
    limit set through a controller kept), and a model's forward pass used to pay it once a layer."""
    from threadpoolctl import ThreadpoolController  # only large inputs pay for this import

    return ThreadpoolController()


class Runner:
    """Runs blocks of work on threads, with BLAS held to one thread each while they run.

    Small work (below ``threaded_from``: THREADED_ELEMENTS scores, unless the caller counts other
    units) runs here, on the caller's thread, with BLAS as it is.
    """

    def __init__(self, threads: int | None, work: int, threaded_from: int = THREADED_ELEMENTS) -> None:
        available = threads or usable_cpus()
        self.workers = available if work >= threaded_from else 1
        self._pool: ThreadPoolExecutor | None = None
        self._limits: AbstractContextManager = nullcontext()
        self._stopping = False  # set on an error or Ctrl-C: the other workers stop at their next piece

    def __enter__(self) -> Self:
        if self.workers > 1:
            from concurrent.futures import ThreadPoolExecutor  # only large inputs pay for this import

            self._limits = blas_controller().limit(limits=1)
            self._pool = ThreadPoolExecutor(self.workers, thread_name_prefix="attnviz")
        return self

    def __exit__(self, *exc_info: Any) -> None:
        if self._pool is not None:
            self._stopping = exc_info[0] is not None
            self._pool.shutdown()
            self._limits.__exit__(*exc_info)

    def blocks(self, blocks: list[Block], work: Callable[[Block, Scratch], None]) -> None:
        """``work(block, scratch)`` for every block: worker i takes blocks i, i + n, i + 2n..."""

        def share(i: int) -> None:
            scratch = Scratch()
            for block in blocks[i::self.workers]:
                if self._stopping:
                    return
                work(block, scratch)

        self._each(share)

    def row_blocks(self, rows: int, size: int, work: Callable[[slice], None]) -> None:
        """``work(block)`` for every block of ``size`` rows (the last one shorter) of ``rows``: worker i
        takes blocks i, i + n, i + 2n... The cut does not depend on the worker count."""
        cut = [slice(start, min(start + size, rows)) for start in range(0, rows, size)]

        def share(i: int) -> None:
            for block in cut[i::self.workers]:
                if self._stopping:
                    return
                work(block)

        self._each(share)

    def pieces(self, sequences: int, T: int, work: Callable[[slice, slice], None]) -> None:
        """``work(seqs, rows)`` over every row of every sequence, in pieces of about MATMUL_ROWS rows:
        whole sequences when they are short, else chunks of rows of one sequence.

        The pieces depend on neither the worker count nor the other sequences in a batch, and NumPy
        makes one BLAS call per sequence in a piece, so a row's last bits never change with either.
        """
        if T <= MATMUL_ROWS:
            group = MATMUL_ROWS // T
            cut = [(slice(s, min(s + group, sequences)), slice(0, T)) for s in range(0, sequences, group)]
        else:
            cut = [(slice(s, s + 1), slice(r, min(r + MATMUL_ROWS, T))) for s in range(sequences) for r in range(0, T, MATMUL_ROWS)]

        def share(i: int) -> None:
            for seqs, rows in cut[i::self.workers]:
                if self._stopping:
                    return
                work(seqs, rows)

        self._each(share)

    def _each(self, work: Callable[[int], None]) -> None:
        if self._pool is None:
            work(0)
            return
        futures = [self._pool.submit(_quietly, work, i) for i in range(self.workers)]
        try:
            for future in futures:
                future.result()  # re-raises a worker's error here
        except BaseException:
            self._stopping = True
            raise


def _quietly(work: Callable[[int], None], i: int) -> None:
    """``work(i)`` on a pool thread with overflow warnings off, as the caller has them (NumPy's error
    state is per thread): core checks the results for overflow itself."""
    with np.errstate(over="ignore", invalid="ignore"):
        work(i)


def usable_cpus() -> int:
    """The CPUs this process may run on (its affinity mask where the OS has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


BLAS_SERIAL_WORK = 9216  # multiply-adds below which OpenBLAS runs any product on one thread (its gemv's bound)


def one_blas_thread(multiply_adds: int) -> AbstractContextManager:
    """BLAS held to one thread for work of ``multiply_adds``: OpenBLAS's threads cut a product's sums by
    their count (measured: a (520, 520) @ (520, 25) float32 product changes its last bits from one
    thread to four), so a result would depend on it. When NumPy's BLAS is OpenBLAS, nothing to do for
    work too small for it to thread, or when it started with one thread, as ``attn`` starts it
    (main.py): both are seen without loading threadpoolctl. Another BLAS (MKL, BLIS, Accelerate) has
    its own variables and bounds: threadpoolctl holds it, whatever the work."""
    if numpy_blas_is_openblas() and (multiply_adds <= BLAS_SERIAL_WORK or os.environ.get("OPENBLAS_NUM_THREADS") == "1"):
        return nullcontext()
    return blas_controller().limit(limits=1)


@cache
def numpy_blas_is_openblas() -> bool:
    """Whether NumPy was built with OpenBLAS (NumPy's wheels are), from the build record NumPy keeps."""
    return "openblas" in np.__config__.CONFIG["Build Dependencies"]["blas"]["name"].lower()

"""``attn heads --dask``: a corpus pass on a Dask cluster. The corpus is read in partitions where the
workers are (``dask.bag.read_text``: a file, a glob, or any URL fsspec reads: s3://, gs://, hdfs://...),
each partition's texts become a :class:`~.corpus.PatternSums` on a worker (its model loaded once per
worker process, by :class:`ModelPlugin`), and the sums are added up on the cluster in a tree
(``Bag.reduction``): the map is embarrassingly parallel and the reduce is a few additions. Tasks are
pure, so a task on a worker that dies is run again elsewhere and the result is still whole.

``dask`` and ``distributed`` are imported here only, and this module only with ``--dask`` (cli/heads.py).
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, redirect_stdout
from pathlib import Path
from typing import TYPE_CHECKING, Any

from distributed import WorkerPlugin

from ..errors import AttnvizError, quoted
from .corpus import PatternSums, corpus_patterns

if TYPE_CHECKING:
    from distributed import Client

    from .model import Model

BLOCK_BYTES = (4 << 10, 16 << 20)  # a partition of the text files: at least ~60 ten-word lines, at most ~250,000
PARTITIONS_PER_WORKER = 4  # partitions of the input per worker, within BLOCK_BYTES: work to share out and retry
SPLIT_EVERY = 8  # partitions' sums added together in one task of the reduction tree

Result = tuple[PatternSums, int, "dict[str, int] | None"]  # a partition's sums, lines it skipped, --probe's inputs

Spec = tuple[str, str, "str | None"]  # what a worker loads: a path (or a Hub id), the dtype, the Hub id's revision

_MODELS: dict[Spec, Model] = {}  # this worker process's models: loaded once


def model_spec(model: Model) -> Spec:
    """How a worker finds ``model``: a Hub id by its name and revision (each worker's own Hugging Face
    cache), anything else by its absolute path (a shared filesystem)."""
    c = model.config
    return (c.name, c.dtype, c.revision) if c.revision is not None else (str(Path(model.folder).resolve()), c.dtype, None)


def worker_model(spec: Spec) -> Model:
    """The model of ``spec``, loaded once in this process (a worker's BLAS held to one thread: its other
    cores are other workers')."""
    key = spec
    if key not in _MODELS:
        from threadpoolctl import threadpool_limits

        from .model import load_model

        threadpool_limits(1)
        _MODELS[key] = load_model(spec[0], dtype=spec[1], revision=spec[2])
    return _MODELS[key]


class ModelPlugin(WorkerPlugin):
    """A Dask WorkerPlugin loading the model on each worker as it starts (a restarted one too), so that
    no task pays for it."""

    name = "attnviz-model"

    def __init__(self, spec: Spec) -> None:
        self.spec = spec

    def setup(self, worker: Any) -> None:
        worker_model(self.spec)

    def teardown(self, worker: Any) -> None:
        _MODELS.clear()


def text_sums(
    lines: Iterable[tuple[str, str]], spec: Spec, *, probes: tuple[str, ...], truncate: bool, on_error: str, max_line: int,
) -> Result:
    """The sums of one partition of (line, file) pairs (``read_text(include_path=True)``), blank lines
    passed over; a bad line stops the run (``on_error`` "fail") or is counted and left out ("skip")."""
    model = worker_model(spec)
    skipped = 0

    def bad(line: int, text: str, error: AttnvizError) -> None:
        nonlocal skipped
        if on_error != "skip":
            raise AttnvizError(f"a line of {where[0]}: {error}")
        skipped += 1

    where = [""]

    def numbered() -> Iterator[tuple[int, str]]:
        for n, (raw, name) in enumerate(lines, 1):
            where[0] = quoted(name)
            text = raw.strip()
            if len(text.encode()) > max_line:
                from .corpus import too_long_error

                bad(n, text[:200], too_long_error(model.config))
            elif text:
                yield n, text

    sums = corpus_patterns(model, numbered(), bad=bad, workers=1, truncate=truncate, probes=probes)
    return sums, skipped, None


def sequence_sums(
    chunks: Iterable[int], spec: Spec, *, probes: tuple[str, ...], sequences: int, length: int, seed: int,
) -> Result:
    """The sums of --probe's random sequences in chunks ``chunks`` (each chunk drawn as every run draws it)."""
    from .probe_inputs import probe_sums

    taken = set(chunks)
    sums, inputs = probe_sums(worker_model(spec), probes, sequences=sequences, length=length, seed=seed, workers=1,
                              takes=taken.__contains__)
    return sums, 0, inputs


def added(results: Iterable[Result]) -> Result:
    """Partitions' results added up: one step of the reduction tree."""
    total: PatternSums | None = None
    skipped, inputs = 0, None
    for sums, lines, given in results:
        total = sums if total is None else total.merge(sums)
        skipped += lines
        inputs = inputs or given
    if total is None:
        raise AttnvizError("no partitions to add up")
    return total, skipped, inputs


def local_cluster(workers: int) -> Any:
    """A LocalCluster of ``workers`` processes, one thread each, without what slows NumPy down in them:
    Dask's default MALLOC_TRIM_THRESHOLD_ (which turns off glibc's adaptive mmap threshold, so every
    large temporary array is a fresh mmap: a third of a worker's speed, measured) and its sampling
    profiler (8%)."""
    import logging

    import dask.config
    from distributed import LocalCluster

    environ = {k: v for k, v in dask.config.get("distributed.nanny.pre-spawn-environ").items() if k != "MALLOC_TRIM_THRESHOLD_"}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ, "distributed.worker.profile.enabled": False}):
        return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0",
                            silence_logs=logging.CRITICAL)  # a task's error is ours to say, once


@contextmanager
def dask_client(address: str, workers: int | None, note: Callable[[str], None]) -> Iterator[Client]:
    """A client of the scheduler at ``address``, or with "local" of a LocalCluster of ``workers``
    processes (one thread each) on this machine, its dashboard's link given to ``note``."""
    from distributed import Client

    from ..engine import usable_cpus

    if address == "local":
        cluster = local_cluster(workers or usable_cpus())
        with cluster, Client(cluster) as client:
            note(f"Dask: a local cluster of {len(cluster.workers)} worker processes; dashboard {client.dashboard_link}")
            yield client
        return
    try:
        client = Client(address, timeout="30s")
    except (OSError, TimeoutError, ValueError) as error:
        raise AttnvizError(f"cannot reach the Dask scheduler {quoted(address)}: {error}") from None
    with client:
        note(f"Dask: scheduler {quoted(address)}; dashboard {client.dashboard_link}")
        yield client


def block_size(source: str, partitions: int) -> int | None:
    """The bytes of a partition of ``source``'s files that make about ``partitions`` of them (within
    BLOCK_BYTES); None (a file a partition) for compressed files, which cannot be split."""
    from fsspec.core import get_fs_token_paths
    from fsspec.utils import infer_compression

    fs, _, paths = get_fs_token_paths(source)
    if not paths:
        raise AttnvizError(f"{quoted(source)} names no files")
    if any(infer_compression(p) for p in paths):
        return None
    total = sum(fs.size(p) or 0 for p in paths)
    return min(max(total // partitions, BLOCK_BYTES[0]), BLOCK_BYTES[1])


def cluster_sums(
    model: Model, address: str, *, source: str | None, workers: int | None, on_error: str, truncate: bool,
    probes: tuple[str, ...], sequences: int, length: int, seed: int, note: Callable[[str], None],
    block_bytes: int | None = None, client: Client | None = None,
) -> Result:
    """The sums of ``source``'s texts (a file, a glob or a URL the workers read; None: --probe's random
    sequences) computed on the Dask cluster at ``address`` (or on ``client``'s), how many lines were
    skipped, and --probe's inputs. The model must be where :func:`model_spec` says on every worker."""
    if client is None:
        with dask_client(address, workers, note) as own:
            return cluster_sums(model, address, source=source, workers=workers, on_error=on_error, truncate=truncate, probes=probes,
                                sequences=sequences, length=length, seed=seed, note=note, block_bytes=block_bytes, client=own)
    import dask.bag as db
    from distributed import progress

    from .corpus import line_limit

    spec = model_spec(model)
    client.register_plugin(ModelPlugin(spec))
    partitions = PARTITIONS_PER_WORKER * max(len(client.scheduler_info()["workers"]), 1)
    if source is None:
        from .probe_inputs import SEQUENCE_CHUNK

        chunks = -(-sequences // SEQUENCE_CHUNK)
        bag = db.from_sequence(range(chunks), npartitions=min(chunks, partitions))
        task = bag.reduction(lambda part: sequence_sums(part, spec, probes=probes, sequences=sequences, length=length, seed=seed),
                             added, split_every=SPLIT_EVERY)
    else:
        try:
            blocks = block_bytes or block_size(source, partitions)
            bag = db.read_text(source, blocksize=blocks, errors="replace", include_path=True)
        except (OSError, ValueError) as error:
            raise AttnvizError(f"Dask cannot read {quoted(source)}: {error}") from None
        limit = line_limit(model.config)
        task = bag.reduction(lambda part: text_sums(part, spec, probes=probes, truncate=truncate, on_error=on_error, max_line=limit),
                             added, split_every=SPLIT_EVERY)
    future = client.compute(task)
    if sys.stderr.isatty():
        with redirect_stdout(sys.stderr):  # Dask's bar writes to stdout, which is the data's
            progress(future)
    sums, skipped, inputs = future.result()
    parts = f"{bag.npartitions:,} partition{'s' if bag.npartitions != 1 else ''}"
    note(f"Dask: {sums.texts:,} texts went in ({parts}){f', {skipped:,} skipped' if skipped else ''}")
    return sums, skipped, inputs

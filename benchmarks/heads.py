"""`attn heads`: head patterns over a corpus of ten-word sentences, in texts per second.

    python benchmarks/heads.py MODEL_FOLDER [--texts 6000] [--workers 1 2] [--dask local]

Makes ten-word texts (runs of the seed documents' prose, or with --texts-from common ten of the 2,000
most frequent words and a full stop; random, seeded), then times
``corpus_patterns`` over them with each worker count, and the cold `attn heads FILE --model M -f json`
run end to end. Target (issue 15): at least 300 ten-word sentences per second on MiniLM on this
project's 2-core machine.

With ``--dask local`` it also times ``cluster_sums`` on a LocalCluster of each worker count (one thread
a worker process; the cluster's start and the workers' model loads timed apart from the pass) against
the single process: issue 30's target is a cluster overhead of at most 15% for 20,000 sentences.
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
    parser.add_argument("--dask", choices=["local"], help="also time the pass on a LocalCluster of each worker count")
    parser.add_argument("--no-cold", action="store_true", help="leave out the cold `attn heads` run")
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
              f"in {seconds:.2f} s = {sums.texts / seconds:.0f} texts/s", flush=True)
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False) as f:
        f.write("\n".join(texts) + "\n")
    if args.dask:
        for workers in args.workers:
            on_cluster(model, f.name, workers)
    if args.no_cold:
        Path(f.name).unlink()
        return
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "attnviz_cli", "heads", f.name, "--model", args.model, "-f", "json"],
                   check=True, stdout=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    print(f"cold `attn heads FILE --model M -f json` over {len(texts)} texts: {seconds:.2f} s = {len(texts) / seconds:.0f} texts/s")
    Path(f.name).unlink()


def on_cluster(model, path: str, workers: int) -> None:
    """The pass over the texts of ``path`` on a LocalCluster of ``workers`` processes: its start (and
    the workers' model loads) and the pass timed apart."""
    from distributed import Client

    from attnviz_cli.models.cluster import ModelPlugin, cluster_sums, local_cluster, model_spec

    start = time.perf_counter()
    with local_cluster(workers) as cluster, Client(cluster) as client:
        client.register_plugin(ModelPlugin(model_spec(model)))  # the loads, before the clock
        ready = time.perf_counter() - start
        start = time.perf_counter()
        sums, _, _ = cluster_sums(model, "", source=path, workers=workers, on_error="fail", truncate=False, probes=(),
                                  sequences=0, length=0, seed=0, note=lambda line: None, client=client)
        seconds = time.perf_counter() - start
    print(f"dask LocalCluster, {workers} worker(s): {sums.texts} texts in {seconds:.2f} s = {sums.texts / seconds:.0f} texts/s "
          f"(the cluster's start and model loads before: {ready:.2f} s)", flush=True)


if __name__ == "__main__":
    main()

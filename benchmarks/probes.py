"""`attn heads --probe induction` on a model: its own 50 random sequences of 2 x 64 tokens, timed.

    python benchmarks/probes.py MODEL [--sequences 50] [--length 64] [--workers 1 2]

Times ``probe_heads`` in this process with each worker count (the model loaded once, before the clock
starts), then the cold `attn heads --model M --probe induction -f json` run end to end (load included).
Target (issue 29): under 20 s on SmolLM2 on this project's 2-core machine.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--sequences", type=int, default=50)
    parser.add_argument("--length", type=int, default=64)
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()

    from attnviz_cli.models import load_model
    from attnviz_cli.models.probe_inputs import probe_heads

    model = load_model(args.model)
    for workers in args.workers:
        start = time.perf_counter()
        result = probe_heads(model, ("induction",), sequences=args.sequences, length=args.length, seed=0, workers=workers)
        seconds = time.perf_counter() - start
        assert result.scores is not None
        best = result.scores[0].argmax()
        print(f"probe_heads, {workers} worker(s): {args.sequences} x (2 x {args.length}) tokens in {seconds:.1f} s; "
              f"top induction head L{best // model.config.heads} H{best % model.config.heads} {result.scores[0].flat[best]:.2f}")
    command = [sys.executable, "-m", "attnviz_cli", "heads", "--model", args.model, "--probe", "induction",
               "--sequences", str(args.sequences), "--length", str(args.length), "-f", "json"]
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    print(f"attn heads --probe induction, cold, end to end: {time.perf_counter() - start:.1f} s")


if __name__ == "__main__":
    main()

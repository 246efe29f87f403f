"""Before and after a change to the model forward pass, in one process, alternating pass by pass.

    python benchmarks/forward_ab.py MODEL_FOLDER --before REV [--lengths 12 128 512] [--threads 1 2] [--passes 30]

The package as it was at git revision REV is copied (``git archive``) into a temporary folder under
another name, so both versions load in one Python, and their forward passes alternate: pass i of one,
then pass i of the other, in turn first. This project's shared machine drifts by up to 1.5x from minute
to minute, which swamps a change of a few percent between processes run minutes apart; two passes run
a few milliseconds apart see the same machine, so the median of the passes' ratios is steady to about
1%. Prints, per token count and thread count, each side's fastest and median pass and that median
ratio (after / before: below 1 is faster). For the comparison with transformers, see model.py.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

ONE_CASE = """
import os, statistics, sys, time
sys.path.insert(0, {before_root!r})
os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:{threads}])  # each case on as many cores as threads: the first of those it was given (taskset)
import numpy as np
from threadpoolctl import threadpool_limits
import attnviz_before.models as before
import attnviz_cli.models as after
models = {{"before": before.load_model({model!r}, keep=True), "after": after.load_model({model!r}, keep=True)}}  # weights held: the passes, not the reading of a streamed layer
ids = np.arange({T}) % 1000 + 1000  # ordinary ids, as benchmarks/model.py uses
times = {{"before": [], "after": []}}
with threadpool_limits({threads}):
    for side in models:
        models[side].forward(ids, threads={threads})  # weights read, caches warm
    for i in range({passes}):
        for side in (("before", "after") if i % 2 else ("after", "before")):
            start = time.perf_counter()
            models[side].forward(ids, threads={threads})
            times[side].append(time.perf_counter() - start)
ratio = statistics.median(a / b for a, b in zip(times["after"], times["before"]))
print(" ".join(f"{{side}} {{min(t) * 1e3:.1f}} {{statistics.median(t) * 1e3:.1f}}" for side, t in times.items()), f"ratio {{ratio:.3f}}")
"""


def copy_of_package(rev: str, into: Path) -> None:
    """attnviz_cli as at ``rev``, as the package ``attnviz_before`` under ``into`` (its imports are relative)."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", rev, "attnviz_cli"], capture_output=True, check=True).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    (into / "attnviz_cli").rename(into / "attnviz_before")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--before", required=True, help="the git revision to compare the working tree with")
    parser.add_argument("--lengths", type=int, nargs="+", default=[12, 128, 512])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--passes", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        copy_of_package(args.before, Path(folder))
        print(f"forward pass, {args.before} (before) against the working tree (after), {args.passes} alternating passes each:")
        for T in args.lengths:
            for threads in args.threads:
                code = ONE_CASE.format(before_root=folder, model=args.model, T=T, threads=threads, passes=args.passes)
                env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
                done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False)
                if done.returncode:
                    sys.exit(done.stderr.strip().splitlines()[-1])
                fields = done.stdout.split()
                print(
                    f"  T={T:<4} {threads} thread{'s' if threads > 1 else ' '}: before {fields[1]:>6} ms (median {fields[2]:>6})"
                    f"   after {fields[4]:>6} ms (median {fields[5]:>6})   median ratio {fields[7]}x"
                )


if __name__ == "__main__":
    main()

"""Real models: attnviz's NumPy forward pass against Hugging Face transformers (eager attention, the
only implementation that returns attentions), on the same machine in the same run; and cold starts.

    python benchmarks/model.py MODEL_FOLDER [--runs 5] [--rounds 3]

Prints, per sequence length, the best forward time of each (``--rounds`` alternating processes of
``--runs`` passes each; attentions and hidden states asked for, one thread and two), the ratio of the
two bests, and the median of the rounds' own ratios (a round's two sides run seconds apart, so more
of the machine's drift cancels). Then the wall time and peak memory of a cold `attn inspect "<ten
words>" --model M -f json`, of the same in a fresh Python with transformers and torch, and of
attnviz's GloVe JSON run. Targets (issue 14): forward <= 1.0x transformers; cold run <= 0.1x transformers' and <= 2.5x
the GloVe run; peak memory under 150 MB for ten words on MiniLM.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

TEN_WORDS = "the bank raised interest rates after the river flooded downtown"


def forward_times(folder: str, T: int, threads: int, runs: int, rounds: int = 3) -> tuple[list[float], list[float]]:
    """Per round, the best seconds of one forward pass in a fresh process of ``runs`` passes,
    attnviz's and transformers' (the two alternate). The best, not the median, of a process's passes:
    this shared machine's speed drifts by up to 1.5x from minute to minute, and a side's best is its
    own cost."""
    pin = f"import os; os.sched_setaffinity(0, set(range({threads})))  # so each side has the same cores\n"
    ours = pin + f"""
import os, time, numpy as np
from threadpoolctl import threadpool_limits
from attnviz_cli.models import load_model
model = load_model({folder!r})
ids = np.arange(T := {T}) % 1000 + 1000
times = []
with threadpool_limits({threads}):
    for _ in range({runs} + 1):
        start = time.perf_counter(); model.forward(ids, threads={threads}); times.append(time.perf_counter() - start)
print(min(times[1:]))
"""
    theirs = pin + f"""
import time, torch
from transformers import AutoModel
torch.set_num_threads({threads})
model = AutoModel.from_pretrained({folder!r}, attn_implementation="eager").eval()
ids = (torch.arange({T}) % 1000 + 1000)[None]
times = []
with torch.no_grad():
    for _ in range({runs} + 1):
        start = time.perf_counter(); model(ids, output_attentions=True, output_hidden_states=True); times.append(time.perf_counter() - start)
print(min(times[1:]))
"""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    times: tuple[list[float], list[float]] = ([], [])
    for _ in range(rounds):  # the two sides alternate, so a slow minute of the machine slows both
        for side, code in enumerate((ours, theirs)):
            done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
            times[side].append(float(done.stdout.strip().splitlines()[-1]))
    return times


def cold(argv: list[str]) -> tuple[float, float]:
    """Wall seconds and peak MiB of one run of ``argv`` in a fresh process."""
    start = time.perf_counter()
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv[:3]} failed")
    return time.perf_counter() - start, usage.ru_maxrss / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3, help="alternating processes per side for the forward passes")
    args = parser.parse_args()
    attn = shutil.which("attn") or sys.exit("attn is not on PATH: pip install . first")
    print(f"forward pass, best of {args.rounds} alternating processes x {args.runs} runs (attentions and hidden states returned):")
    for T in (128, 512):
        for threads in (1, 2):
            ours, theirs = forward_times(args.model, T, threads, args.runs, args.rounds)
            per_round = statistics.median(a / b for a, b in zip(ours, theirs, strict=True))
            print(
                f"  T={T:<4} {threads} thread{'s' if threads > 1 else ' '}: attnviz {min(ours) * 1000:7.1f} ms   "
                f"transformers {min(theirs) * 1000:7.1f} ms   ratio of bests {min(ours) / min(theirs):.2f}x   "
                f"median of the rounds' ratios {per_round:.2f}x"
            )
    hf = f"import torch; from transformers import AutoModel, AutoTokenizer; m = AutoModel.from_pretrained({args.model!r}, attn_implementation='eager'); t = AutoTokenizer.from_pretrained({args.model!r}); m(**t({TEN_WORDS!r}, return_tensors='pt'), output_attentions=True)"
    rows = {
        "attn inspect --model -f json": [attn, "inspect", TEN_WORDS, "--model", args.model, "-f", "json"],
        "transformers + torch, fresh process": [sys.executable, "-c", hf],
        "attn inspect (GloVe) -f json": [attn, "inspect", TEN_WORDS, "-f", "json"],
    }
    print("cold runs of ten words, median wall time and peak memory:")
    timed = {}
    for name, argv in rows.items():
        runs = [cold(argv) for _ in range(args.runs)]
        timed[name] = statistics.median(r[0] for r in runs)
        print(f"  {name:<38} {timed[name] * 1000:7.0f} ms   {max(r[1] for r in runs):5.0f} MiB")
    ours = timed["attn inspect --model -f json"]
    print(f"  ratio to transformers {ours / timed['transformers + torch, fresh process']:.2f}x, to the GloVe run {ours / timed['attn inspect (GloVe) -f json']:.2f}x")


if __name__ == "__main__":
    main()

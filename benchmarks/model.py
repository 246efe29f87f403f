"""Real models: attnviz's NumPy forward pass against Hugging Face transformers (eager attention, the
only implementation that returns attentions), on the same machine in the same run; and cold starts.

    python benchmarks/model.py MODEL_FOLDER [--passes 30] [--runs 5]

Forward passes: for each sequence length and thread count, one process loads both models and
alternates their passes (attentions and hidden states asked for), each side first in turn, with a
pause between passes so that neither side's idle threads (OpenMP's, OpenBLAS's) still spin when the
other starts. This project's machine is shared and drifts by up to 1.5x from minute to minute, so
sides timed in separate processes, minutes apart, differ by more than what is measured; two passes
milliseconds apart see the same machine. Prints each side's fastest and median pass and the median
of the pairs' ratios, the figure to read. Then the wall time and peak memory of a cold `attn inspect
"<ten words>" --model M -f json`, of the same in a fresh Python with transformers and torch, and of
attnviz's GloVe JSON run (``--runs`` each, median). Targets (issue 14): forward <= 1.0x
transformers; cold run <= 0.1x transformers' and <= 2.5x the GloVe run; peak memory under 150 MB for
ten words on MiniLM.
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

BOTH = """
import os, statistics, time
os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[:{threads}])  # both sides on the same cores: the first of those it was given (taskset -c 1: core 1)
import numpy as np, torch
from threadpoolctl import threadpool_limits
from transformers import AutoModel
from attnviz_cli.models import load_model
torch.set_num_threads({threads})
ours = load_model({folder!r}, keep=True)  # weights held, as transformers holds them
theirs = AutoModel.from_pretrained({folder!r}, attn_implementation="eager").eval()
ids = np.arange({T}) % 1000 + 1000  # ordinary ids, no special tokens: the same input to both
tensor = torch.from_numpy(ids)[None]

def attnviz():
    ours.forward(ids, threads={threads}, on_layer={on_layer})

def transformers():
    with torch.no_grad():
        theirs(tensor, output_attentions=True, output_hidden_states=True)

times = {{"attnviz": [], "transformers": []}}
with threadpool_limits({threads}):
    attnviz(), transformers()  # weights read, caches warm
    for i in range({passes}):
        for side, run in ((("attnviz", attnviz), ("transformers", transformers))[:: 1 if i % 2 else -1]):
            time.sleep(0.3)  # the other side's idle threads stop spinning (OpenBLAS's spin for up to 2^28 cycles)
            start = time.perf_counter()
            run()
            times[side].append(time.perf_counter() - start)
ratio = statistics.median(a / b for a, b in zip(times["attnviz"], times["transformers"]))
print(*(f"{{min(t) * 1e3:.1f}} {{statistics.median(t) * 1e3:.1f}}" for t in times.values()), f"{{ratio:.3f}}")
"""


ON_LAYER = {
    "all": "None",  # each layer's scores, weights, queries, keys, values and head outputs, as attn's views keep them
    "weights": "lambda i, attended: attended.weights",  # what transformers returns: the weights (and hidden states)
}


def forward_times(folder: str, T: int, threads: int, passes: int, keep: str = "all") -> tuple[float, float, float, float, float]:
    """attnviz's fastest and median pass, transformers' fastest and median (ms), and the median of
    the pairs' ratios, from ``passes`` alternating passes each in one process. ``keep``: what attnviz
    keeps of each layer's attention (:data:`ON_LAYER`)."""
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads)}
    code = BOTH.format(folder=folder, T=T, threads=threads, passes=passes, on_layer=ON_LAYER[keep])
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    a_best, a_median, t_best, t_median, ratio = map(float, done.stdout.split())
    return a_best, a_median, t_best, t_median, ratio


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
    parser.add_argument("--passes", type=int, default=30, help="alternating forward passes per side")
    parser.add_argument("--runs", type=int, default=5, help="cold runs per command (0: none)")
    parser.add_argument("--lengths", type=int, nargs="+", default=[128, 512], help="tokens per forward pass")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--keep", choices=sorted(ON_LAYER), default="all", help="what attnviz keeps of each layer: all its views use (scores, weights, queries, keys, values, head outputs), or the weights alone, as transformers returns them")
    args = parser.parse_args()
    attn = shutil.which("attn") or sys.exit("attn is not on PATH: pip install . first")
    print(f"forward pass, {args.passes} passes each, alternating in one process (attentions and hidden states returned; attnviz keeps {args.keep}):")
    for T in args.lengths:
        for threads in args.threads:
            a_best, a_median, t_best, t_median, ratio = forward_times(args.model, T, threads, args.passes, args.keep)
            print(
                f"  T={T:<4} {threads} thread{'s' if threads > 1 else ' '}: attnviz {a_best:6.1f} ms (median {a_median:6.1f})   "
                f"transformers {t_best:6.1f} ms (median {t_median:6.1f})   median ratio {ratio:.2f}x"
            )
    hf = f"import torch; from transformers import AutoModel, AutoTokenizer; m = AutoModel.from_pretrained({args.model!r}, attn_implementation='eager'); t = AutoTokenizer.from_pretrained({args.model!r}); m(**t({TEN_WORDS!r}, return_tensors='pt'), output_attentions=True)"
    rows = {
        "attn inspect --model -f json": [attn, "inspect", TEN_WORDS, "--model", args.model, "-f", "json"],
        "transformers + torch, fresh process": [sys.executable, "-c", hf],
        "attn inspect (GloVe) -f json": [attn, "inspect", TEN_WORDS, "-f", "json"],
    }
    if not args.runs:
        return
    print("cold runs of ten words, taken in turn, median wall time and peak memory:")
    runs: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
    for _ in range(args.runs):  # in turn, so that the machine's drift touches each alike
        for name, argv in rows.items():
            runs[name].append(cold(argv))
    timed = {}
    for name, done in runs.items():
        timed[name] = statistics.median(r[0] for r in done)
        print(f"  {name:<38} {timed[name] * 1000:7.0f} ms   {max(r[1] for r in done):5.0f} MiB")
    ours = timed["attn inspect --model -f json"]
    print(f"  ratio to transformers {ours / timed['transformers + torch, fresh process']:.2f}x, to the GloVe run {ours / timed['attn inspect (GloVe) -f json']:.2f}x")


if __name__ == "__main__":
    main()

"""JSON Lines throughput: N ten-word sentences on stdin into `attn inspect - --format jsonl`, start-up
included, written to a file and to a pipe that another process reads (`wc -l`). Prints sentences per
second for each, CPU per sentence and the child's peak memory. Targets: issue 2, >= 10,000/s for 20,000
sentences; issue 4 as decided in issue 12, >= 30,000/s for `--fields tokens,weights` records (full
records are bound by formatting ~1,250 floats each).

    python benchmarks/throughput.py [--sentences 20000] [--runs 3] [--fields tokens,weights]
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time

from attnviz_cli.vectors import load_default


def sentences(count: int, seed: int = 0) -> bytes:
    """``count`` lines of ten words drawn from the 5,000 most frequent alphabetic GloVe words."""
    words = [w for w in load_default().words[:6000] if w.isalpha()][:5000]
    rng = random.Random(seed)
    return "".join(" ".join(rng.choices(words, k=10)) + "\n" for _ in range(count)).encode()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sentences", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--fields", help="passed to attn (e.g. tokens,weights): smaller records")
    args = parser.parse_args()
    fields = ["--fields", args.fields] if args.fields else []
    attn = shutil.which("attn") or sys.exit("attn is not on PATH: pip install . first")
    with tempfile.TemporaryDirectory() as folder:
        source = os.path.join(folder, "in.txt")
        with open(source, "wb") as handle:
            handle.write(sentences(args.sentences))
        for where in ("file", "pipe"):
            report(where, [run_once(attn, fields, source, folder, where, args.sentences) for _ in range(args.runs)], args)


def run_once(attn: str, fields: list[str], source: str, folder: str, where: str, count: int) -> tuple[float, float, float, float, int]:
    """One run into a file or a pipe: (sentences/s, peak MiB, user s, system s, bytes written)."""
    sink = os.path.join(folder, "out.jsonl")
    with open(source, "rb") as stdin, open(sink, "wb") as out:
        start = time.perf_counter()
        if where == "file":
            child = subprocess.Popen([attn, "inspect", "-", "--format", "jsonl", *fields], stdin=stdin, stdout=out)
            reader = None
        else:
            child = subprocess.Popen([attn, "inspect", "-", "--format", "jsonl", *fields], stdin=stdin, stdout=subprocess.PIPE)
            reader = subprocess.Popen(["wc", "-lc"], stdin=child.stdout, stdout=out)
            child.stdout.close()  # the reader holds the pipe now
        # its usage includes the workers it waited for; maxrss is the largest single process
        _, status, usage = os.wait4(child.pid, 0)
        if reader is not None:
            reader.wait()
        elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"attn exited {os.waitstatus_to_exitcode(status)}")
    with open(sink, "rb") as handle:
        if where == "file":
            lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
            size = os.path.getsize(sink)
        else:
            lines, size = (int(n) for n in handle.read().split())
    assert lines == count, f"{lines} records for {count} sentences"
    return count / elapsed, usage.ru_maxrss / 1024, usage.ru_utime, usage.ru_stime, size


def report(where: str, runs: list[tuple[float, float, float, float, int]], args: argparse.Namespace) -> None:
    rates = sorted(r[0] for r in runs)
    what = f"--fields {args.fields}" if args.fields else "full records"
    print(f"to a {where}: {args.sentences:,} ten-word sentences -> {args.sentences:,} JSON lines ({runs[0][4] / 1e6:.0f} MB, {what})")
    print(f"  best {rates[-1]:,.0f} sentences/s, median {rates[len(rates) // 2]:,.0f}/s over {args.runs} runs")
    user, system = sorted((r[2], r[3]) for r in runs)[len(runs) // 2]
    print(f"  CPU per sentence, every process, start-up included: {user / args.sentences * 1e6:.0f} us user "
          f"+ {system / args.sentences * 1e6:.0f} us system")
    print(f"  peak memory of attn (largest process, maxrss): {max(r[1] for r in runs):.0f} MiB")


if __name__ == "__main__":
    main()

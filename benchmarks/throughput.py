"""JSON Lines throughput: N ten-word sentences on stdin into `attn inspect - --format jsonl`, start-up
included. Prints sentences per second and the child's peak memory. Target (issue 2): >= 10,000/s for
20,000 sentences; (issue 4): >= 30,000/s.

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
    rates, peaks, cpu = [], [], []
    with tempfile.TemporaryDirectory() as folder:
        source, sink = os.path.join(folder, "in.txt"), os.path.join(folder, "out.jsonl")
        with open(source, "wb") as handle:
            handle.write(sentences(args.sentences))
        for _ in range(args.runs):
            with open(source, "rb") as stdin, open(sink, "wb") as stdout:
                start = time.perf_counter()
                child = subprocess.Popen([attn, "inspect", "-", "--format", "jsonl", *fields], stdin=stdin, stdout=stdout)
                # its usage includes the workers it waited for; maxrss is the largest single process
                _, status, usage = os.wait4(child.pid, 0)
                elapsed = time.perf_counter() - start
                child.returncode = os.waitstatus_to_exitcode(status)
            if child.returncode != 0:
                sys.exit(f"attn exited {child.returncode}")
            with open(sink, "rb") as handle:
                lines = sum(chunk.count(b"\n") for chunk in iter(lambda: handle.read(1 << 20), b""))
            assert lines == args.sentences, f"{lines} records for {args.sentences} sentences"
            rates.append(args.sentences / elapsed)
            peaks.append(usage.ru_maxrss / 1024)
            cpu.append((usage.ru_utime, usage.ru_stime))
        size = os.path.getsize(sink)
    what = f"--fields {args.fields}" if args.fields else "full records"
    print(f"{args.sentences:,} ten-word sentences -> {args.sentences:,} JSON lines ({size / 1e6:.0f} MB, {what})")
    print(f"best {max(rates):,.0f} sentences/s, median {sorted(rates)[len(rates) // 2]:,.0f}/s over {args.runs} runs")
    user, system = sorted(cpu)[len(cpu) // 2]
    print(f"CPU per sentence, every process, start-up included: {user / args.sentences * 1e6:.0f} us user "
          f"+ {system / args.sentences * 1e6:.0f} us system (the kernel writing the file)")
    print(f"peak memory of attn (largest process, maxrss): {max(peaks):.0f} MiB")

if __name__ == "__main__":
    main()

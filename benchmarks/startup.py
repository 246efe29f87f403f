"""Cold start of `attn`, against the framework's floor: a minimal Typer app that imports NumPy and
prints one line, run by the same interpreter. Prints the median and best wall time of each command and
its ratio to the floor: the median, over rounds, of its time over the floor's in the same round (this
machine's speed drifts from minute to minute; a ratio of medians taken minutes apart drifts with it).
Targets (issue 26): `--format json` within 1.15x of the floor, tables within 1.4x.

    python benchmarks/startup.py [--runs 40]
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

TEN_WORDS = "the bank raised interest rates after the river flooded downtown"
FLOOR_APP = """\
import numpy
import typer

app = typer.Typer()


@app.command()
def main(sentence: str) -> None:
    print(sentence)


app()
"""


def time_command(argv: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def compile_package() -> None:
    """Byte-compile attnviz_cli, as ``pip install`` does for every user. An editable install under
    PYTHONDONTWRITEBYTECODE=1 would otherwise recompile every module on every run and time that."""
    import compileall

    import attnviz_cli

    compileall.compile_dir(Path(attnviz_cli.__file__).parent, quiet=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=40)
    args = parser.parse_args()
    attn = shutil.which("attn") or sys.exit("attn is not on PATH: pip install . first")
    compile_package()
    with tempfile.TemporaryDirectory() as folder:
        floor = Path(folder) / "floor.py"
        floor.write_text(FLOOR_APP)
        commands = {
            "floor (typer + numpy, print a line)": [sys.executable, str(floor), TEN_WORDS],
            "attn --version": [attn, "--version"],
            "attn inspect <10 words> --format json": [attn, "inspect", TEN_WORDS, "--format", "json"],
            "attn inspect <10 words> (tables)": [attn, "inspect", TEN_WORDS],
        }
        for argv in commands.values():  # warm the file cache once
            time_command(argv)
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.runs):  # interleaved, so drift in machine load hits every command alike
            for name, argv in commands.items():
                times[name].append(time_command(argv))
    floors = next(iter(times.values()))
    print(f"{'command':42} {'median':>9} {'best':>9} {'vs floor':>9}   ({args.runs} runs, {sys.version.split()[0]})")
    for name, values in times.items():
        paired = statistics.median(t / f for t, f in zip(values, floors, strict=True))  # each round against its own floor
        print(f"{name:42} {statistics.median(values) * 1e3:7.1f}ms {min(values) * 1e3:7.1f}ms {paired:8.2f}x")


if __name__ == "__main__":
    main()

"""Reading a GGUF file: attnviz's lean reader against gguf's GGUFReader, in the same process, alternating.

    python benchmarks/gguf_read.py FILE.gguf [--runs 5]

Prints, best and median of ``--runs``: the time to import gguf (in a fresh interpreter each run, after
NumPy, which attnviz has imported already), to open the file and read its metadata and tensor infos
(open_gguf against GGUFReader), and to dequantize every tensor to float32 (attnviz's source, under
Hugging Face names with the fix-ups, against GGUFReader's arrays through gguf.dequantize).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def show(label: str, times: list[float]) -> None:
    print(f"{label:<44} best {min(times) * 1000:8.1f} ms   median {statistics.median(times) * 1000:8.1f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("file", type=Path)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()

    import gguf

    from attnviz_cli.models.gguf_file import open_gguf

    imports = []
    for _ in range(args.runs):
        code = "import numpy, time; t = time.perf_counter(); import gguf; print(time.perf_counter() - t)"
        imports.append(float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout))
    show("import gguf", imports)

    ours, theirs = [], []
    for _ in range(args.runs):
        ours.append(timed(lambda: open_gguf(args.file)))
        theirs.append(timed(lambda: gguf.GGUFReader(args.file)))
    show("metadata and tensor infos: open_gguf", ours)
    show("metadata and tensor infos: GGUFReader", theirs)

    def ours_all() -> None:
        source = open_gguf(args.file).tensor_source()
        for name in source.names:
            source.load(name, np.empty(source.shape(name), np.float32))

    def theirs_all() -> None:
        for tensor in gguf.GGUFReader(args.file).tensors:
            gguf.dequantize(tensor.data, tensor.tensor_type)

    ours, theirs = [], []
    for _ in range(args.runs):
        ours.append(timed(ours_all))
        theirs.append(timed(theirs_all))
    show("every tensor: open_gguf().tensor_source()", ours)
    show("every tensor: GGUFReader + gguf.dequantize", theirs)


if __name__ == "__main__":
    main()

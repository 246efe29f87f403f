"""The ``attn`` program: sets up the process, then runs the command line of :mod:`attnviz_cli.cli`.

OpenBLAS (NumPy's BLAS) starts a thread per core when it loads, and its idle threads spin for a while
after each call. attnviz never needs them: attention's matrices are small, and long inputs and streams
are shared among attnviz's own threads and processes, which the spinning would slow down (~0.1 s of a
core at every start, more in each worker of a stream). So BLAS gets one thread unless the user says
otherwise. This must happen before NumPy is imported, hence this module, which imports nothing else
(errors.py imports only the standard library). SIGTERM is made to end a run as Ctrl-C does.
"""

from __future__ import annotations

import os
import signal
import sys


def main() -> None:
    if sys.stdout is None:  # started with stdout closed (`attn ... >&-`): there is nowhere to write results
        if sys.stderr is not None:
            sys.stderr.write("attn: error: stdout is closed, and attn writes its results there\n")
        sys.exit(1)
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    try:  # Ctrl-C while the libraries load is an interruption like any other
        from .errors import terminate

        signal.signal(signal.SIGTERM, terminate)  # `kill PID` ends a run as Ctrl-C does: workers shut down, files tidied
        from .cli import run
    except KeyboardInterrupt as stop:
        from .errors import interruption

        line, code = interruption(stop)
        sys.stderr.write(f"attn: {line}\n")
        sys.exit(code)
    run()

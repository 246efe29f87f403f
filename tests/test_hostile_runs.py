"""Issue 31, the run itself under hostile conditions: lines that never end, worker processes that fail
to start, signals at any moment, a parent killed outright, and numbers that overflow. Each case runs
`attn` as a person would (a subprocess where signals or stdin matter), with short, bounded waits."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

MODELS = Path(__file__).resolve().parent / "models"
TINY_BERT = MODELS / "tiny-bert"
ATTN = [sys.executable, "-m", "attnviz_cli"]
HANG = 30  # seconds: a guard against a hang, never a timing assertion
PROCESSES = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="the process checks read /proc (Linux)")


def attn(*args: str, **popen) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*ATTN, *args], capture_output=True, text=True, timeout=HANG, check=False, **popen)


# ---- cause 1: a line that never ends -----------------------------------------------------------------


@pytest.mark.parametrize("how", ["stdin", "argument"])
def test_a_line_that_never_ends_is_refused_at_once(how):
    """`attn heads - < /dev/zero` and `attn heads /dev/zero`: one line without end, refused as soon as it
    passes the model's limit (it read forever before), for heads and for both inspect streams alike."""
    with open("/dev/zero", "rb") as zeros:
        if how == "stdin":
            runs = [attn("heads", "-", "--model", str(TINY_BERT), stdin=zeros),
                    attn("inspect", "-", "--model", str(TINY_BERT), "-f", "jsonl", stdin=zeros),
                    attn("inspect", "-", "-f", "jsonl", stdin=zeros)]
        else:
            runs = [attn("heads", "/dev/zero", "--model", str(TINY_BERT), stdin=subprocess.DEVNULL)]
    for done in runs:
        assert done.returncode == 1, done.stderr
        assert done.stderr.startswith("attn: error: line 1: the ") and "longer than 65,536 bytes" in done.stderr
        assert len(done.stderr.splitlines()) == 1


def test_a_long_line_is_skipped_and_the_lines_after_it_still_count(tmp_path):
    """--on-error skip: a 200 kB line is left out as soon as it is too long (once, under its own number),
    and the texts around it run, from a file and from stdin alike."""
    import json

    from .conftest import run

    texts = tmp_path / "texts.txt"
    texts.write_bytes(b"the river bank\n" + b"a " * 100_000 + b"\nthe bank raised rates\n")
    for source, stdin in ((str(texts), None), ("-", texts.read_bytes())):
        done = run("heads", source, "--model", str(TINY_BERT), "--on-error", "skip", "-f", "json", input=stdin)
        assert done.exit_code == 0, done.output
        assert done.stderr == "attn: line 2 skipped: the line is longer than 65,536 bytes, more than the 64 positions of " + f"'{TINY_BERT}' can take\n"
        assert json.loads(done.stdout)["texts"] == 2


def test_heads_reads_process_substitution_and_dev_stdin():
    """`attn heads <(printf 'a\\nb\\n')` and `... | attn heads /dev/stdin`: ordinary shell usage."""
    done = subprocess.run(["bash", "-c", f'"$@" heads <(printf "the river bank\\nthe bank raised rates\\n") --model {TINY_BERT} -f json', "-", *ATTN],
                          capture_output=True, text=True, timeout=HANG, check=False)
    assert done.returncode == 0, done.stderr
    assert '"texts": 2' in done.stdout
    done = attn("heads", "/dev/stdin", "--model", str(TINY_BERT), "-f", "json", input="the river bank\n\nthe bank\n")
    assert done.returncode == 0, done.stderr
    assert '"texts": 2' in done.stdout


# ---- causes 2 and 7: worker processes ----------------------------------------------------------------


def session(sid: int) -> list[int]:
    """The processes of session ``sid`` still running (a zombie has ended: only its entry is left)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # it ended while we looked
                continue
            if int(fields[3]) == sid and fields[0] != "Z":
                found.append(int(entry))
    return found


def gone(sid: int, within: float = 5) -> bool:
    """Whether every process of session ``sid`` has ended within ``within`` seconds."""
    deadline = time.monotonic() + within
    while session(sid) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not session(sid)


STARTED: list[int] = []  # the sessions with_workers started, for leave_nothing to end


@pytest.fixture(autouse=True)
def leave_nothing():
    """Whatever a test asserted, no process of a session it started outlives it."""
    yield
    while STARTED:
        for pid in session(STARTED.pop()):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)


def with_workers(args: list[str], texts: bytes, stderr, count: int = 3) -> subprocess.Popen:
    """`attn ARGS` in a session of its own, ``texts`` on a stdin left open (so it waits for more with
    its workers up), once ``count`` processes besides it are running (workers, and the resource
    tracker of `heads`'s spawned ones)."""
    child = subprocess.Popen([*ATTN, *args], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=stderr, start_new_session=True)
    STARTED.append(child.pid)
    assert child.stdin is not None
    child.stdin.write(texts)
    child.stdin.flush()
    deadline = time.monotonic() + HANG
    while len(session(child.pid)) < 1 + count:
        assert child.poll() is None and time.monotonic() < deadline, "the workers never started"
        time.sleep(0.01)
    return child


HEADS = ["heads", "-", "--model", str(TINY_BERT), "--workers", "2", "-f", "json"]
HEADS_TEXTS = b"the river bank flows by\n" * 2500  # one length: a batch each 64; two chunks of 1024 read, then a wait


@PROCESSES
@pytest.mark.parametrize("delay", [0, 0.1, 0.3])
def test_ctrl_c_at_any_moment_of_a_heads_run_is_one_line_and_leaves_nothing(tmp_path, delay):
    """SIGINT to the whole group (what Ctrl-C does), from the moment the workers start (they are still
    importing: before, their tracebacks came out) to when they are at work."""
    errors = tmp_path / "stderr"
    with errors.open("wb") as stderr:
        child = with_workers(HEADS, HEADS_TEXTS, stderr, count=2)  # the resource tracker and a worker
        time.sleep(delay)
        os.killpg(child.pid, signal.SIGINT)
        assert child.wait(timeout=HANG) == 130
    assert gone(child.pid)
    assert errors.read_text() == "attn: interrupted\n"


@pytest.mark.parametrize(("stop", "line", "code"), [(KeyboardInterrupt, "interrupted", 130), ("Terminated", "terminated", 143)])
def test_a_stop_before_a_command_reports_its_errors_is_one_line_too(monkeypatch, capsys, stop, line, code):
    """Ctrl-C (or SIGTERM) while Typer still parses and checks the options: Typer turns it into exit 130
    of its own, which said nothing."""
    from attnviz_cli import cli, errors
    from attnviz_cli.cli import heads

    raised = getattr(errors, stop) if isinstance(stop, str) else stop

    def stopped(source: str | None) -> str:
        raise raised

    monkeypatch.setattr(heads, "from_stdin_or", stopped)
    monkeypatch.setattr(sys, "argv", ["attn", "heads", "-", "--model", str(TINY_BERT)])
    with pytest.raises(SystemExit) as done:
        cli.run()
    assert done.value.code == code
    assert capsys.readouterr().err == f"attn: {line}\n"


@PROCESSES
@pytest.mark.parametrize("group", [False, True])
def test_sigterm_ends_a_heads_run_as_cleanly_as_ctrl_c(tmp_path, group):
    """`kill PID` and a SIGTERM to the group alike: one line, exit 143, no worker nor resource tracker
    left, and no "leaked semaphore" warning."""
    errors = tmp_path / "stderr"
    with errors.open("wb") as stderr:
        child = with_workers(HEADS, HEADS_TEXTS, stderr)
        (os.killpg if group else os.kill)(child.pid, signal.SIGTERM)
        assert child.wait(timeout=HANG) == 143
    assert gone(child.pid)
    assert errors.read_text() == "attn: terminated\n"


@PROCESSES
@pytest.mark.parametrize("run", ["heads", "static stream"])
def test_workers_end_with_a_parent_killed_outright(tmp_path, run):
    """SIGKILL to the main process alone: its workers (and `heads`'s resource tracker) notice and end,
    where they used to wait for work forever (120-180 MB each)."""
    if run == "heads":
        args, texts, count = HEADS, HEADS_TEXTS, 3
    else:
        from attnviz_cli.engine import usable_cpus

        if usable_cpus() < 2:
            pytest.skip("the static stream forks workers only with two usable CPUs or more")
        args, texts, count = ["inspect", "-", "-f", "jsonl"], b"the river bank flows by the water\n" * 2000, 2
    with (tmp_path / "stderr").open("wb") as stderr:
        child = with_workers(args, texts, stderr, count)
        child.kill()
        child.wait(timeout=HANG)
    assert gone(child.pid)


def test_a_signal_while_workers_start_is_held_back_then_raised_not_lost():
    """SIGINT or SIGTERM that comes while a pool's submit may start a worker is raised just after, once:
    a worker never starts half-way through an interruption, and no Ctrl-C is dropped."""
    from attnviz_cli.errors import Terminated
    from attnviz_cli.workers import lifeline, starting_workers

    steps, before = [], {number: signal.getsignal(number) for number in (signal.SIGINT, signal.SIGTERM)}
    with pytest.raises(KeyboardInterrupt) as raised, starting_workers():
        signal.raise_signal(signal.SIGINT)  # to this thread: held back, whatever other threads there are
        steps.append("went on")
    assert steps == ["went on"] and type(raised.value) is KeyboardInterrupt
    with lifeline(), pytest.raises(Terminated), starting_workers():  # SIGTERM ends a run with a pool as Ctrl-C does
        signal.raise_signal(signal.SIGTERM)
        steps.append("went on again")
    assert steps == ["went on", "went on again"]
    assert {number: signal.getsignal(number) for number in before} == before  # every handler as it was
    assert signal.pthread_sigmask(signal.SIG_BLOCK, []) == set()


@PROCESSES
def test_a_worker_killed_midway_is_one_line_naming_it(tmp_path):
    """A worker that dies (the OOM killer, say) ends the run with one line, not "internal error:
    BrokenProcessPool"."""
    errors = tmp_path / "stderr"
    with errors.open("wb") as stderr:
        child = with_workers(HEADS, HEADS_TEXTS, stderr)
        worker = next(pid for pid in session(child.pid) if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes())
        os.kill(worker, signal.SIGKILL)
        assert child.stdin is not None
        child.stdin.write(HEADS_TEXTS)
        child.stdin.close()
        assert child.wait(timeout=HANG) == 1
    assert gone(child.pid)
    assert errors.read_text() == (
        "attn: error: a worker process ended before finishing its texts (killed, or out of memory?); --workers 1 runs without them\n"
    )


def test_a_worker_that_cannot_load_the_model_is_one_line_naming_why(tmp_path, capfd):
    """The model folder removed after this process loaded it: the workers' load fails, and the run ends
    with one line saying so (it was a traceback from each worker and "internal error: BrokenProcessPool")."""
    import shutil

    from attnviz_cli.errors import AttnvizError
    from attnviz_cli.models import load_model
    from attnviz_cli.models.corpus import corpus_patterns

    folder = shutil.copytree(TINY_BERT, tmp_path / "m")
    model = load_model(str(folder))
    shutil.rmtree(folder)
    texts = [(n, "the river bank") for n in range(1, 200)]
    with pytest.raises(AttnvizError) as raised:
        corpus_patterns(model, texts, bad=lambda *_: None, workers=2, parallel_after=0)
    assert str(raised.value).startswith(f"a worker process could not load the model: no model '{folder}'")
    assert "Traceback" not in capfd.readouterr().err


# ---- cause 8: overflow --------------------------------------------------------------------------------


def tiny_bert_variant(folder: Path, *, scale: dict[str, float] | None = None, config: dict | None = None) -> Path:
    """A copy of tiny-bert with some weights multiplied (in float32) or config values changed."""
    import json
    import shutil

    import numpy as np
    from safetensors.numpy import load_file, save_file

    shutil.copytree(TINY_BERT, folder)
    weights = load_file(folder / "model.safetensors")
    for name, factor in (scale or {}).items():
        weights[name] = weights[name] * np.float32(factor)
    save_file(weights, folder / "model.safetensors")
    settings = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(settings | (config or {})))
    return folder


def one_error_line(done: subprocess.CompletedProcess[str]) -> str:
    """The one line a refused run writes (no RuntimeWarning, no traceback, no internal error)."""
    assert done.returncode == 1, done.stdout[:200]
    assert len(done.stderr.splitlines()) == 1 and done.stderr.startswith("attn: error: "), done.stderr
    assert "internal error" not in done.stderr
    return done.stderr.strip()


def test_an_overflow_in_the_last_feed_forward_is_an_error_not_a_cosine_of_one(tmp_path):
    """The last layer's feed-forward weights x1e30: the variance of its norm overflows, its hidden state
    collapses to the norm's bias, and compare reported a cosine of 1.0 with exit 0."""
    folder = tiny_bert_variant(tmp_path / "m", scale={"encoder.layer.1.output.dense.weight": 1e30})
    done = attn("compare", "the bank", "the river bank", "--focus", "bank", "--model", str(folder), "-f", "json")
    assert one_error_line(done) == (
        f"attn: error: '{folder}' gives no finite result: a number overflowed or became NaN in layer 1 "
        "(its weights or config values are out of range for float32)"
    )


def test_scores_that_overflow_are_the_same_clean_error_not_an_internal_one(tmp_path):
    """Query and key weights x3e37: the scores overflow, which the softmax refuses (it was reported as
    an internal AttentionInputError)."""
    scale = {f"encoder.layer.0.attention.self.{part}.weight": 3e37 for part in ("query", "key")}
    folder = tiny_bert_variant(tmp_path / "m", scale=scale)
    for args in (("inspect", "the bank"), ("heads", "-")):
        done = attn(*args, "--model", str(folder), input="the bank\n")
        assert one_error_line(done) == (
            f"attn: error: '{folder}' gives no finite result: a number overflowed or became NaN in layer 0 "
            "(its weights or config values are out of range for float32)"
        )


@pytest.mark.parametrize("eps", [1e300, -1.0])
def test_a_layer_norm_epsilon_out_of_range_is_one_line_without_warnings(tmp_path, eps):
    """layer_norm_eps 1e300 overflows float32 (a RuntimeWarning, then every row divided to zeros); a
    negative one makes NaN. Either is refused in one line (here, or by the config's own check)."""
    folder = tiny_bert_variant(tmp_path / "m", config={"layer_norm_eps": eps})
    one_error_line(attn("inspect", "the bank", "--model", str(folder)))


def test_vectors_out_of_float32s_range_are_refused_without_warnings(tmp_path):
    """A text vectors file holding 1e39, and a set's .npy header claiming an enormous shape: one line
    each, no NumPy RuntimeWarning before it (here in-process, with warnings as errors: one would
    change the message)."""
    import warnings

    import numpy as np
    from numpy.lib import format as npy

    from attnviz_cli.store import write_set

    from .conftest import run

    text = tmp_path / "v.txt"
    text.write_text("the 1e39 0.5\nriver 0.1 0.2\nbank 0.3 0.4\n")
    write_set(tmp_path / "set", np.zeros((3, 2), np.float32), ["the", "river", "bank"], {"name": "set", "lowercase": True})
    with (tmp_path / "set" / "vectors.npy").open("wb") as handle:
        npy.write_array_header_1_0(handle, {"descr": "<f4", "fortran_order": False, "shape": (3, 2**62)})
        handle.write(np.zeros(6, np.float32).tobytes())
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        from_text = run("inspect", "the river bank", "--vectors", str(text))
        from_set = run("inspect", "the river bank", "--vectors", str(tmp_path / "set"))
    assert from_text.exit_code == 1 and from_text.stderr == f"attn: error: vectors file '{text}' holds NaN or infinite values (word 'the')\n"
    assert from_set.exit_code == 1 and from_set.stderr.startswith(f"attn: error: vectors set '{tmp_path / 'set'}' cannot be read: ")
    assert "overflow" not in from_set.stderr and len(from_set.stderr.splitlines()) == 1


def test_float64_weights_past_float32s_range_are_one_line_without_warnings(tmp_path):
    """A checkpoint storing F64 values past float32's range (1e300): converting them to the run's float32
    overflowed with a RuntimeWarning before the clean refusal of the infinities it made."""
    import numpy as np
    from safetensors.numpy import load_file, save_file

    folder = tiny_bert_variant(tmp_path / "m")
    weights = load_file(folder / "model.safetensors")
    name = "encoder.layer.0.output.dense.weight"
    weights[name] = np.full(weights[name].shape, 1e300, np.float64)
    save_file(weights, folder / "model.safetensors")
    done = attn("inspect", "the bank", "--model", str(folder))
    assert one_error_line(done) == f"attn: error: model weights '{folder / 'model.safetensors'}': {name!r} holds NaN or infinite values"

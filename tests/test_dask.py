"""attn heads --dask (models/cluster.py): a LocalCluster of 2 worker processes, started here, gives the
report a single process gives; a worker killed mid-run is restarted by its Nanny and its tasks run again,
the result whole. Skipped (failed under CI=true, where .ci/run installs the extra) without dask."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from .conftest import missing, run
from .test_shards import MODELS, assert_reports_equal, corpus_lines, heads_json


def need_distributed() -> None:
    """Skip (fail under CI=true) where the dask extra is not installed."""
    try:
        import distributed  # noqa: F401
    except ImportError as error:
        missing(f"dask[distributed] is not installed ({error}): pip install 'attnviz-cli[dask]'")


def cluster(workers: int = 2):
    """A LocalCluster of ``workers`` processes (each under a Nanny), one thread each."""
    import logging

    need_distributed()
    from distributed import LocalCluster

    return LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=":0", silence_logs=logging.CRITICAL)


@pytest.fixture(scope="module")
def scheduler():
    """One cluster for the tests that only use it (a start is 2-5 s): its scheduler's address."""
    with cluster() as shared:
        yield shared.scheduler_address


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(corpus_lines(2500)) + "\n", encoding="utf-8")
    return path


def test_the_clusters_report_is_the_single_process_report(scheduler, corpus):
    model = ("--model", str(MODELS / "tiny-bert"), "--dtype", "float64", "--probe", "previous")
    want = heads_json(str(corpus), *model, "--workers", "1")
    result = run("heads", str(corpus), *model, "--dask", scheduler, "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert_reports_equal(json.loads(result.stdout), want)  # float64 sums added in another order: within 1e-12
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"attn: Dask: scheduler '{scheduler}'; dashboard http://")
    assert lines[1].startswith(f"attn: Dask: {want['texts']:,} texts went in (")


def test_a_glob_reads_every_file_it_matches(scheduler, corpus, tmp_path):
    texts = corpus_lines(300, seed=5)
    for i in range(3):
        (tmp_path / f"part-{i}.txt").write_text("\n".join(texts[i * 100:(i + 1) * 100]) + "\n", encoding="utf-8")
    (tmp_path / "whole.txt").write_text("\n".join(texts) + "\n", encoding="utf-8")
    model = ("--model", str(MODELS / "tiny-gpt2"), "--dtype", "float64")
    want = heads_json(str(tmp_path / "whole.txt"), *model)
    result = run("heads", str(tmp_path / "part-*.txt"), *model, "--dask", scheduler, "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert_reports_equal(json.loads(result.stdout), want)


def test_probes_on_the_cluster_take_partitions_of_the_seeded_sequences(scheduler):
    model = ("--model", str(MODELS / "tiny-llama"), "--dtype", "float64", "--probe", "induction", "--sequences", "300", "--length", "8", "--seed", "2")
    want = heads_json(*model)
    result = run("heads", *model, "--dask", scheduler, "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert_reports_equal(json.loads(result.stdout), want)
    assert "attn: Dask: 300 texts went in (5 partitions)" in result.stderr  # 5 chunks of 64 sequences, over 8 partitions at most


def test_a_bad_line_on_a_worker_is_one_line_or_skipped_and_counted(scheduler, tmp_path):
    path = tmp_path / "bad.txt"
    path.write_text("the bank\n" + "bank " * 20_000 + "\nthe river\n", encoding="utf-8")  # 100 KB: over tiny-bert's 64 KiB lines
    model = ("--model", str(MODELS / "tiny-bert"), "--dask", scheduler, "-f", "json")
    failed = run("heads", str(path), *model)
    assert failed.exit_code == 1 and failed.stdout == ""
    assert failed.stderr.splitlines()[-1] == (
        f"attn: error: a line of '{path}': the line is longer than 65,536 bytes, more than the 64 positions of '{MODELS / 'tiny-bert'}' can take"
    )
    skipped = run("heads", str(path), *model, "--on-error", "skip")
    assert skipped.exit_code == 0 and (json.loads(skipped.stdout)["texts"], json.loads(skipped.stdout)["skipped"]) == (2, 1)
    said = skipped.stderr.splitlines()[-1]  # 100 KB over 2 workers: 8 partitions of 12.5 KB, all but two empty
    assert said == "attn: Dask: 2 texts went in (8 partitions), 1 skipped", said


def test_dask_refuses_stdin_and_shards():
    model = ("--model", str(MODELS / "tiny-bert"))
    stdin = run("heads", "-", *model, "--dask", "tcp://127.0.0.1:1", input="the bank\n")
    assert (stdin.exit_code, stdin.stderr) == (1, "attn: error: --dask has the workers read FILE (a path, a glob or a URL), not stdin\n")
    both = run("heads", "x.txt", *model, "--dask", "local", "--shard", "1/2")
    assert both.exit_code == 2 and "--shard splits a run among jobs and --dask among a cluster's workers: give one" in both.stderr


def test_dask_without_the_extra_is_one_line_naming_it(tmp_path):
    """Where the dask extra is not installed (here made so: the import of distributed fails), --dask says
    what to install, rather than an internal error."""
    path = tmp_path / "few.txt"
    path.write_text("the river bank\n", encoding="utf-8")
    code = (
        "import sys; sys.modules['distributed'] = None\n"  # import distributed raises ImportError
        "from attnviz_cli.main import main; sys.argv = ['attn'] + sys.argv[1:]; main()"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, "heads", str(path), "--model", str(MODELS / "tiny-bert"), "--dask", "local"],
        check=False, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
    )
    assert (done.returncode, done.stderr) == (1, "attn: error: --dask needs Dask ('distributed' is not installed): pip install \"attnviz-cli[dask]\"\n")


def test_dask_local_starts_a_cluster_of_workers_processes_and_prints_its_dashboard(tmp_path):
    need_distributed()
    path = tmp_path / "few.txt"
    path.write_text("the river bank\nI sat on the bank.\n", encoding="utf-8")
    result = run("heads", str(path), "--model", str(MODELS / "tiny-bert"), "--dask", "local", "--workers", "2", "-f", "json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["texts"] == 2
    assert result.stderr.splitlines()[0].startswith("attn: Dask: a local cluster of 2 worker processes; dashboard http://127.0.0.1:")


def test_a_worker_killed_mid_run_is_restarted_and_the_result_is_whole(tmp_path):
    need_distributed()
    from distributed import Client

    from attnviz_cli.models import load_model
    from attnviz_cli.models.cluster import cluster_sums
    from attnviz_cli.models.corpus import corpus_patterns

    texts = corpus_lines(6000, seed=7)
    path = tmp_path / "corpus.txt"
    path.write_text("\n".join(texts) + "\n", encoding="utf-8")
    model = load_model(MODELS / "tiny-bert", dtype="float64")
    def bad(line: int, text: str, error: Exception) -> None:
        raise error

    want = corpus_patterns(model, ((n, t) for n, t in enumerate(texts, 1) if t), bad=bad, workers=1)
    with cluster() as local, Client(local) as client:
        got: list = []
        run_ = threading.Thread(target=lambda: got.append(cluster_sums(
            model, "", source=str(path), workers=None, on_error="fail", truncate=False, probes=(), sequences=0, length=0, seed=0,
            note=lambda line: None, block_bytes=1024, client=client)))  # ~180 partitions of ~35 lines
        run_.start()
        deadline = time.monotonic() + 60
        while client.run_on_scheduler(finished_partitions) < 3:  # a partition's task is keyed ("lambda-<token>", i)
            assert time.monotonic() < deadline, "no partition finished in a minute"
            time.sleep(0.01)
        pids = client.run(os.getpid)
        victim = sorted(pids.values())[0]
        os.kill(victim, signal.SIGKILL)  # after its first tasks finished: their results on it are lost with it
        still_running = run_.is_alive()
        run_.join(120)
        client.wait_for_workers(2, timeout=60)
        assert still_running and victim not in client.run(os.getpid).values()  # the Nanny started a new process
    sums, skipped, inputs = got[0]
    assert (sums.texts, skipped, inputs) == (want.texts, 0, None) and sums.tokens == want.tokens
    for name, values in want.arrays.items():
        np.testing.assert_allclose(sums.arrays[name], values, rtol=1e-12, atol=1e-12, err_msg=name)


def finished_partitions(dask_scheduler) -> int:
    """On the scheduler: how many partitions' sums are done."""
    return sum(ts.state == "memory" and str(ts.key[0]).startswith("lambda") for ts in dask_scheduler.tasks.values())


def test_dask_is_imported_only_with_dask():
    code = ("import sys; from attnviz_cli.cli import run; sys.argv = ['attn', 'heads', '-', '--model', sys.argv[1], '-f', 'json']\n"
            "try:\n    run()\nexcept SystemExit:\n    pass\n"
            "print(sorted(m for m in ('dask', 'distributed', 'attnviz_cli.models.cluster') if m in sys.modules), file=sys.stderr)")
    done = subprocess.run([sys.executable, "-c", code, str(MODELS / "tiny-bert")], input="the bank\n", capture_output=True, text=True, check=False)
    assert done.stderr.splitlines()[-1] == "[]" and json.loads(done.stdout)["texts"] == 1

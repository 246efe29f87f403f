"""One way to point every test at the real all-MiniLM-L6-v2 (issue 27, item 21): $MINILM, read by the
model tests as by the `$ ` examples of the docs, and a missing model skips them with its path, or fails
them under CI=true (conftest.missing)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import need_minilm

ROOT = Path(__file__).resolve().parent.parent
USERS = [  # a test of each kind that runs MiniLM: a model test, and a page whose examples name $MINILM
    "tests/test_models.py::test_minilms_tokenizer_padding_is_turned_off",
    "tests/test_docs.py::test_every_example_runs_as_written[docs/models.md]",
]


def run_tests(tests: list[str], minilm: str, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CI", "MINILM")} | {"MINILM": minilm}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", *tests],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=300, check=False,
    )


def test_minilm_names_the_model_every_test_uses_and_a_missing_one_skips_or_fails_under_ci(tmp_path):
    elsewhere = tmp_path / "not-minilm"
    elsewhere.mkdir()
    skipped = run_tests(USERS, str(elsewhere), None)
    assert skipped.returncode == 0 and "2 skipped" in skipped.stdout, skipped.stdout
    assert skipped.stdout.count(f"all-MiniLM-L6-v2 is not at {elsewhere} (set MINILM") == 2, skipped.stdout
    failed = run_tests(USERS, str(elsewhere), "true")
    assert failed.returncode == 1 and "1 failed, 1 error" in failed.stdout, failed.stdout  # the fixture's is an error
    reason = f"CI=true needs every reference, and all-MiniLM-L6-v2 is not at {elsewhere} (set MINILM"
    assert failed.stdout.count(reason) == 3, failed.stdout  # each test's report, and the failure's summary line


def test_minilm_pointing_at_the_model_runs_the_model_tests(tmp_path):
    folder = need_minilm()
    link = tmp_path / "minilm"
    link.symlink_to(folder.resolve(), target_is_directory=True)  # a folder other than .ci/run's
    done = run_tests(USERS[:1], str(link), "true")
    assert done.returncode == 0 and "1 passed" in done.stdout, done.stdout


@pytest.mark.parametrize("value", ["", None])
def test_an_unset_or_empty_minilm_means_where_ci_fetches_it(monkeypatch, value):
    from .conftest import MINILM_FETCHED, minilm_folder

    if value is None:
        monkeypatch.delenv("MINILM", raising=False)
    else:
        monkeypatch.setenv("MINILM", value)
    assert minilm_folder() == MINILM_FETCHED

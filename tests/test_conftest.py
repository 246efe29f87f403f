"""The one switch of conftest.py: a missing reference skips a test, and fails it under CI=true."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROBE = '''
from tests.conftest import missing, need_module

def test_compares_with_a_module_that_is_missing():
    need_module("attnviz_no_such_reference", "attnviz_no_such_reference is not installed")

def test_compares_with_a_tool_that_is_missing():
    missing("jq is not installed (Debian: apt-get install jq)")

def test_compares_with_a_module_that_is_there():
    assert need_module("json").dumps([1]) == "[1]"
'''


def run_probe(tmp_path: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_probe.py").write_text(PROBE, encoding="utf-8")
    env = {k: v for k, v in os.environ.items() if k != "CI"} | {"PYTHONPATH": str(ROOT)}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", "test_probe.py"],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120, check=False,
    )


def test_a_missing_reference_skips_with_its_reason_on_a_developers_machine(tmp_path):
    for ci in (None, "false"):
        done = run_probe(tmp_path, ci)
        assert done.returncode == 0, done.stdout
        assert "1 passed, 2 skipped" in done.stdout
        assert "attnviz_no_such_reference is not installed" in done.stdout and "jq is not installed (Debian" in done.stdout


def test_a_missing_reference_fails_under_ci_naming_what_is_missing(tmp_path):
    done = run_probe(tmp_path, "true")
    assert done.returncode == 1, done.stdout
    assert "2 failed, 1 passed" in done.stdout
    assert "FAILED test_probe.py::test_compares_with_a_module_that_is_missing - Failed: CI=true needs every reference, and attnviz_no_such_reference is not installed" in done.stdout
    assert "FAILED test_probe.py::test_compares_with_a_tool_that_is_missing - Failed: CI=true needs every reference, and jq is not installed" in done.stdout

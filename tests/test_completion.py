"""Shell completion (issue 27, item 19): Typer's own ``--install-completion`` and ``--show-completion``,
and the answers the shell gets back, asked as bash asks them (``_ATTN_COMPLETE=complete_bash``)."""

from __future__ import annotations

import os
import subprocess
import sys


def complete(words: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """What ``attn`` answers bash for the command line ``words``, the cursor on its last word."""
    extra = {"_ATTN_COMPLETE": "complete_bash", "COMP_WORDS": words, "COMP_CWORD": str(len(words.split()) - 1 + words.endswith(" "))}
    return subprocess.run(
        [sys.executable, "-m", "attnviz_cli"], env={**os.environ, **extra, **(env or {})}, capture_output=True, text=True, check=False,
    )


def test_a_partial_command_completes_to_the_commands_it_begins():
    done = complete("attn ins")
    assert (done.returncode, done.stdout.split(), done.stderr) == (0, ["inspect"], "")


def test_every_command_is_offered_for_an_empty_word():
    done = complete("attn ")
    assert done.returncode == 0
    assert done.stdout.split() == ["inspect", "compare", "demo", "heads", "merge", "generate", "schema", "vectors", "model"]


def test_an_option_of_inspect_completes():
    done = complete("attn inspect --fo")
    assert (done.returncode, sorted(done.stdout.split())) == (0, ["--focus", "--format"])
    done = complete("attn inspect --trun")
    assert (done.returncode, done.stdout.split()) == (0, ["--truncate"])


def test_show_completion_prints_the_bash_script_that_asks_attn():
    done = subprocess.run(
        [sys.executable, "-m", "attnviz_cli", "--show-completion", "bash"], capture_output=True, text=True, check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "_ATTN_COMPLETE=complete_bash" in done.stdout
    assert "complete -o default -F _attn_completion attn" in done.stdout


def test_help_lists_the_completion_options():
    done = subprocess.run([sys.executable, "-m", "attnviz_cli", "--help"], capture_output=True, text=True, check=True)
    assert "--install-completion" in done.stdout
    assert "--show-completion" in done.stdout

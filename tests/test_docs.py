"""Every `$ ` example in README.md and docs/ runs as written, and prints what the page shows.

A ```console block holds commands (`$ `, continued by `> `) each followed by its output. The commands of
one page run in order in one temporary folder (so a file one example writes is there for the next),
under bash, at 80 columns without colour, with this Python's `attn` first on the PATH. An example
passes when it exits 0 (or with the code its `# exit N` comment names) and prints the lines shown,
stdout and stderr together: the text exactly, numbers within float32 rounding (1e-6, relative and
absolute, and the digits shown: another CPU's BLAS kernel adds in another order); an output that elides
with a line `…` is checked up to that line.

To refresh the outputs after a deliberate change: `ATTN_UPDATE_DOCS=1 python -m pytest tests/test_docs.py`,
then read the diff.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from .conftest import MODEL_RTOL, REAL_GGUF, minilm_folder, missing, need_minilm, need_smollm2, numbers_differ

ROOT = Path(__file__).resolve().parent.parent
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ELIDED = "…"  # a line of its own: the output goes on, and is not shown
# Examples that need a real model say so by naming $MINILM: all-MiniLM-L6-v2's folder (conftest.minilm_folder),
# or $SMOLLM2: SmolLM2-135M-Instruct's GGUF file (conftest.need_smollm2)
EXIT = re.compile(r"#\s*exit (\d+)\s*$")


@dataclass
class Example:
    page: Path
    line: int  # where its command starts, 1-based
    command: str
    output: list[str]  # the lines the page shows
    indent: int = 0  # of the block, in a list item


def examples(page: Path) -> list[Example]:
    """The console examples of one page, in order."""
    found: list[Example] = []
    in_console, indent = False, 0
    for number, raw in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
        if raw.lstrip().startswith("```"):  # a fence, perhaps indented in a list item
            in_console, indent = raw.strip() == "```console", len(raw) - len(raw.lstrip())
            continue
        if not in_console:
            continue
        line = raw[indent:]
        if line.startswith("$ "):
            found.append(Example(page, number, line[2:], [], indent))
        elif line.startswith("> ") and found and not found[-1].output:
            found[-1].command += "\n" + line[2:]
        elif found:
            found[-1].output.append(line)
    return found


def run_example(example: Example, folder: Path) -> tuple[int, list[str]]:
    """Run one example's command; its exit code and output lines (trailing spaces dropped)."""
    env = {
        **os.environ, "COLUMNS": "80", "LINES": "50", "NO_COLOR": "1", "TERM": "dumb",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    env.pop("ATTN_VECTORS", None)
    env["ATTN_CACHE_DIR"] = str(folder / "cache")  # a new user's empty cache, whatever this machine has
    env["MINILM"] = str(minilm_folder())
    variable, fetched, _ = REAL_GGUF["smollm2"]
    env[variable] = os.environ.get(variable) or str(fetched)
    done = subprocess.run(
        ["bash", "-c", example.command], cwd=folder, env=env, stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=300, check=False,
    )
    lines = [line.rstrip() for line in done.stdout.decode("utf-8", errors="replace").splitlines()]
    return done.returncode, lines


def expected_exit(example: Example) -> int:
    found = EXIT.search(example.command.splitlines()[0])
    return int(found.group(1)) if found else 0


def _label(page: Path) -> str:
    return str(page.relative_to(ROOT))


@pytest.mark.slow
@pytest.mark.parametrize("page", [p for p in PAGES if examples(p)], ids=_label)
def test_every_example_runs_as_written(page: Path, tmp_path: Path):
    found = examples(page)
    if any("jq " in e.command for e in found) and shutil.which("jq") is None:
        missing("jq is not installed (Debian: apt-get install jq; .ci/run installs it)")
    if any("$MINILM" in e.command for e in found):
        need_minilm()
    if any("$SMOLLM2" in e.command for e in found):
        need_smollm2()
    update = bool(os.environ.get("ATTN_UPDATE_DOCS"))
    outputs: dict[int, list[str]] = {}
    for example in found:
        code, lines = run_example(example, tmp_path)
        where = f"{_label(page)}:{example.line}: {example.command.splitlines()[0]}"
        assert code == expected_exit(example), f"{where}\nexit {code}:\n" + "\n".join(lines)
        shown = example.output
        if ELIDED in shown:
            cut = shown.index(ELIDED)
            if update:
                outputs[example.line] = lines[:cut] + shown[cut:]
            else:
                assert_shows(lines[:cut], shown[:cut], where, model_rtol(example.command))
        elif update:
            outputs[example.line] = lines
        else:
            assert_shows(lines, [line.rstrip() for line in shown], where, model_rtol(example.command))
    if update and outputs:
        _rewrite(page, found, outputs)


def model_rtol(command: str) -> dict[str, float]:
    """numbers_differ's tolerance for an example: wider where a real model's layers run (conftest.MODEL_RTOL)."""
    return {"rtol": MODEL_RTOL} if "--model" in command else {}


def assert_shows(lines: list[str], shown: list[str], where: str, tolerance: dict[str, float] | None = None) -> None:
    """The output is what the page shows: line for line, word for word, numbers within float32 rounding
    (another CPU's BLAS kernel adds in another order; see conftest.numbers_differ)."""
    assert len(lines) == len(shown), f"{where}\n{len(lines)} lines where the page shows {len(shown)}:\n" + "\n".join(lines)
    for number, (line, want) in enumerate(zip(lines, shown, strict=True), 1):
        why = numbers_differ(line, want, **(tolerance or {}))
        assert why is None, f"{where}\noutput line {number}: {why}"


def _rewrite(page: Path, found: list[Example], outputs: dict[int, list[str]]) -> None:
    """Put each example's real output under its command (ATTN_UPDATE_DOCS=1)."""
    lines = page.read_text(encoding="utf-8").splitlines()
    for example in reversed(found):
        if example.line not in outputs:
            continue
        start = example.line + example.command.count("\n")  # the line after the command, 0-based
        margin = " " * example.indent
        lines[start : start + len(example.output)] = [(margin + line).rstrip() for line in outputs[example.line]]
    page.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_the_parser_reads_commands_continuations_outputs_and_exit_codes(tmp_path: Path):
    page = tmp_path / "page.md"
    page.write_text(
        "text\n```console\n$ echo a \\\n> b\na b\n```\n- item\n\n  ```console\n  $ false  # exit 1\n  ```\n```bash\n$ not an example\n```\n",
        encoding="utf-8",
    )
    first, second = examples(page)
    assert (first.line, first.command, first.output) == (3, "echo a \\\nb", ["a b"])
    assert (second.command, second.output, expected_exit(second)) == ("false  # exit 1", [], 1)
    assert run_example(first, tmp_path) == (0, ["a b"]) and run_example(second, tmp_path)[0] == 1


def pycon_blocks(page: Path) -> str:
    """The ```pycon blocks of a page, joined: a doctest, one namespace for the whole page."""
    blocks, inside = [], False
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.strip().startswith("```"):
            inside = line.strip() == "```pycon"
            continue
        if inside:
            blocks.append(line)
    return "\n".join(blocks) + "\n"


@pytest.mark.parametrize("page", [p for p in PAGES if "```pycon" in p.read_text(encoding="utf-8")], ids=_label)
def test_every_python_example_gives_what_the_page_shows(page: Path, monkeypatch):
    import doctest

    monkeypatch.chdir(ROOT)  # examples name files of the checkout by their paths from its top
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    test = parser.get_doctest(pycon_blocks(page), {}, _label(page), str(page), 0)
    assert test.examples, f"{_label(page)} has no >>> examples"
    runner.run(test)
    failed, tried = runner.summarize(verbose=False)
    assert failed == 0, f"{failed} of {tried} examples of {_label(page)} failed (printed above)"


def test_outputs_are_compared_word_for_word_and_numbers_within_float32_rounding():
    # Another BLAS kernel: the river bank, [0.72978145,1.0017059] on one CPU, [0.7297814,1.0017058] on another.
    assert numbers_differ("[0.72978145,1.0017059]", "[0.7297814,1.0017058]") is None
    assert numbers_differ("weight 0.13", "weight 0.12") is None  # 0.125 a bit either way: shown rounded up or down
    assert numbers_differ("1.5000001e-05", "1.5e-05") is None
    # docs/formats.md: a component near 0 keeps its terms' absolute error, of the size of its list's others
    assert numbers_differ("[0.65212804,-0.028773377,0.555603]", "[0.65212804,-0.02877328,0.555603]") is None
    assert "further apart" in numbers_differ("[-0.028793377]", "[-0.02877328]")  # 2e-5 apart: a real change
    # tiny weights are held relatively, within 1e-6 x |ln w| (their score gap's error), larger numbers beside them
    # notwithstanding (docs/models.md; 6.0467304e-12 on one CPU, 6.0467655e-12 on another)
    assert numbers_differ("bank,3,on,-3.5736475,6.0467304e-12", "bank,3,on,-3.5736475,6.0467655e-12") is None
    assert "further apart" in numbers_differ("bank,2,sat,-4.5055475,2.3813452e-12", "bank,2,sat,-4.5055475,2.3812452e-12")
    assert "further apart" in numbers_differ("weight 0.14", "weight 0.12")  # two units of the last digit: a real change
    assert "further apart" in numbers_differ("[0.7297834]", "[0.7297814]")  # 2e-6 apart: more than float32's rounding
    assert "integers are exact" in numbers_differ("top key 3", "top key 4")
    assert "the text differs" in numbers_differ("head 0: 0.5", "head 0 : 0.5")
    assert "the text differs" in numbers_differ("1.0, 2.0", "1.0")
    assert "the text differs" in numbers_differ("color #3e8b57", "color #2e8b57")  # in a word: text, not a number
    assert numbers_differ("weights 0.13.", "weights 0.12.") is None  # a sentence may end with a number
    # a real model's score, Haswell's kernel against SkylakeX's: beyond one sum's rounding, within its layers'
    assert "further apart" in numbers_differ("0.3340868", "0.33408627")
    assert numbers_differ("0.3340868", "0.33408627", **model_rtol("attn inspect x --model M")) is None
    assert model_rtol("attn inspect x") == {}

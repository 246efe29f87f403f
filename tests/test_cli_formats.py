"""The formats each command's help promises, written as promised (issue 27, items 9-11): Markdown of
compare, demo and heads compared exactly, model CSV parsed with the csv module, and `attn heads` at a
terminal with nothing piped in."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
from pathlib import Path

MODELS = Path(__file__).parent / "models"
TINY_BERT = str(MODELS / "tiny-bert")


def _run_with_terminal_stdin(argv: list[str], typed: bytes = b"", seconds: float = 60) -> tuple[int | None, bytes, bytes]:
    """Run ``argv`` with stdin on a pseudo-terminal (a person at a terminal, nothing piped), type
    ``typed`` there, and return its exit code (None if it still waits after ``seconds``: it is then
    killed), stdout and stderr."""
    primary, secondary = pty.openpty()
    child = subprocess.Popen(argv, stdin=secondary, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    os.close(secondary)
    try:
        os.write(primary, typed)  # a few bytes: the terminal's echo of them fits its buffer unread
        try:
            out, err = child.communicate(timeout=seconds)
            return child.returncode, out, err
        except subprocess.TimeoutExpired:
            child.kill()
            out, err = child.communicate(timeout=60)
            return None, out, err
    finally:
        os.close(primary)


def test_heads_with_no_file_at_a_terminal_says_it_reads_stdin_instead_of_waiting():
    code, out, err = _run_with_terminal_stdin([sys.executable, "-m", "attnviz_cli", "heads", "--model", TINY_BERT], seconds=20)
    assert code == 2, (code, err)
    assert out == b""
    text = " ".join(err.decode().split())  # Click frames the message in a box that wraps it
    assert "give a FILE of texts, one per line, or pipe them in: attn heads reads stdin when no FILE is given" in text
    assert text.startswith("Usage: ")


def test_heads_minus_at_a_terminal_says_so_then_reads_what_is_typed():
    typed = b"the river bank\n\x04"  # a line, then Ctrl-D (end of input at a terminal)
    code, out, err = _run_with_terminal_stdin([sys.executable, "-m", "attnviz_cli", "heads", "-", "--model", TINY_BERT, "-f", "json"], typed)
    assert code == 0, err
    assert err.decode().splitlines()[0] == "attn: reading texts from stdin, one per line; end with Ctrl-D"
    import json

    record = json.loads(out)
    assert (record["texts"], len(record["heads"])) == (1, 8)  # tiny-bert: 2 layers of 4 heads


# ---- item 10: a model's CSV, long form with layer and head, one layer or all -------------------------

def _csv_rows(text: str) -> tuple[list[str], list[dict[str, str]]]:
    import csv
    import io

    reader = csv.DictReader(io.StringIO(text))
    rows = list(reader)
    return list(reader.fieldnames or []), rows


def test_model_csv_of_every_layer_has_each_head_of_each_layer_with_transformers_weights():
    import numpy as np
    from numpy.testing import assert_allclose

    from .conftest import run

    text = "I sat on the river bank"  # tests/models/make_tiny.py's first text: reference.npz has its attentions
    with np.load(MODELS / "tiny-gpt2" / "reference.npz") as recorded:
        expected = recorded["0/float64/attentions"]  # (L, h, T, T) from transformers
    L, H, T, _ = expected.shape
    result = run("inspect", text, "--model", str(MODELS / "tiny-gpt2"), "--layer", "all", "-f", "csv", "--dtype", "float64")
    assert result.exit_code == 0, result.stderr
    header, rows = _csv_rows(result.stdout)
    assert header == ["line", "sentence", "layer", "head", "query", "query_token", "key", "key_token", "score", "weight"]
    assert len(rows) == L * H * T * T
    assert [(int(r["layer"]), int(r["head"]), int(r["query"]), int(r["key"])) for r in rows] == [
        (i, h, q, k) for i in range(L) for h in range(H) for q in range(T) for k in range(T)
    ]
    weights = np.array([float(r["weight"]) for r in rows]).reshape(L, H, T, T)
    assert_allclose(weights, expected, rtol=1e-9, atol=1e-12)  # float64 NumPy against float64 PyTorch
    masked = np.array([r["score"] == "" for r in rows]).reshape(L, H, T, T)
    assert (masked == np.triu(np.ones((T, T), bool), 1)).all()  # GPT-2 is causal: a later key is masked...
    assert (weights[masked] == 0).all()  # ...its weight 0
    assert {r["sentence"] for r in rows} == {text} and {r["line"] for r in rows} == {"1"}


def test_model_csv_of_one_layer_or_one_head_carries_its_layer_and_head_numbers():
    from .conftest import run

    base = ("inspect", "the river bank", "--model", TINY_BERT, "-f", "csv")
    _, every = _csv_rows(run(*base, "--layer", "all").stdout)
    header, layer1 = _csv_rows(run(*base, "--layer", "1").stdout)
    assert header[:4] == ["line", "sentence", "layer", "head"]
    assert layer1 == [r for r in every if r["layer"] == "1"] and len(layer1) > 0
    _, head2 = _csv_rows(run(*base, "--layer", "1", "--head", "2").stdout)
    assert head2 == [r for r in every if r["layer"] == "1" and r["head"] == "2"] and len(head2) > 0



# ---- item 9: Markdown for compare, demo and heads; each --format lists only what works ---------------

COMPARE_MARKDOWN = """\
### 'bank' in two contexts

glove-6b-50d-50k · 2 heads · identity projections

#### First sentence: the river bank

| key | head 0 of 2 | head 1 of 2 |
| --- | ---: | ---: |
| 0 the | 0.109 | 0.136 |
| 1 river | 0.065 | 0.170 |
| **2 bank** | **0.827** | **0.694** |

- nearest words before attention: banks, securities
- after: banks, capital
- cos(input, output) 0.9827

#### Second sentence: the money bank

| key | head 0 of 2 | head 1 of 2 |
| --- | ---: | ---: |
| 0 the | 0.097 | 0.136 |
| 1 money | 0.161 | 0.166 |
| **2 bank** | **0.741** | **0.698** |

- nearest words before attention: banks, securities
- after: banks, credit
- cos(input, output) 0.9828

**Cosine of the two contextualized 'bank' vectors: 0.9842** (their inputs: 1.0000)
"""


def test_compare_writes_markdown_that_agrees_with_its_json():
    import json

    from .conftest import run

    args = ("compare", "the river bank", "the money bank", "--focus", "bank", "--heads", "2", "--neighbors", "2")
    result = run(*args, "-f", "markdown")
    assert result.exit_code == 0, result.stderr
    assert result.stdout == COMPARE_MARKDOWN
    record = json.loads(run(*args, "-f", "json").stdout)  # the numbers above, unrounded (0.8268114 -> 0.827)
    side = record["sentences"][0]
    assert [f"{w:.3f}" for w in side["weights"][0]] == ["0.109", "0.065", "0.827"]
    assert f"{record['output_cosine']:.4f}" == "0.9842" and [n["word"] for n in side["neighbors"]["after"]] == ["banks", "capital"]


def test_compare_with_a_model_writes_markdown_with_its_json_numbers():
    import json

    from .conftest import run

    args = ("compare", "I sat on the river bank", "I deposited money at the bank", "--focus", "bank", "--model", TINY_BERT)
    result = run(*args, "-f", "markdown")
    assert result.exit_code == 0, result.stderr
    record = json.loads(run(*args, "-f", "json").stdout)
    lines = result.stdout.splitlines()
    assert lines[:5] == [
        "### How far apart 'bank' ends up, layer by layer", "",
        "- First: I sat on the river bank (bank at token 6)",
        "- Second: I deposited money at the bank (bank at token 6)",
        f"- Model: {TINY_BERT} · bert · 2 layers × 4 heads",
    ]
    table = lines[lines.index("| layer | cosine | first text looks at | second text looks at |"):]
    assert table[1] == "| ---: | ---: | --- | --- |"
    assert table[2] == f"| emb | {record['embedding_cosine']:.3f} | (before any attention) |  |"

    def looks(side):
        return " · ".join(f"{k['word'].replace('[', chr(92) + '[').replace(']', chr(92) + ']')} {k['weight']:.2f}" for k in side["keys"])

    want = [f"| {e['layer']} | {e['cosine']:.3f} | {looks(e['first'])} | {looks(e['second'])} |" for e in record["layers"]]
    assert table[3:] == want


def test_heads_writes_markdown_a_row_per_head_as_its_json_says(tmp_path):
    import json

    from .conftest import run

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("I sat on the river bank.\nThe river flows.\n")
    base = ("heads", str(corpus), "--model", TINY_BERT)
    result = run(*base, "-f", "markdown")
    assert result.exit_code == 0, result.stderr
    record = json.loads(run(*base, "-f", "json").stdout)
    lines = result.stdout.splitlines()
    assert lines[:3] == [f"### Heads of {TINY_BERT}", "", "bert, 2 layers × 4 heads · 2 texts (15 tokens); means over the texts, each text counting once"]
    start = lines.index("| layer | head | label | share | prev | next | self | first | last | punct | bits | spread | dist |")
    rows = lines[start + 2:start + 2 + 8]
    patterns = ("previous", "next", "self", "first", "last", "punctuation")
    for line, e in zip(rows, record["heads"], strict=True):
        share = "" if e["share"] is None else f"{e['share']:.2f}"
        numbers = [f"{e['shares'][p]:.2f}" for p in patterns] + [f"{e[k]:.2f}" for k in ("entropy_bits", "spread", "distance")]
        assert line == "| " + " | ".join([str(e["layer"]), str(e["head"]), e["label"], share, *numbers]) + " |"
    assert lines[start + 10] == "" and lines[start + 11].startswith("Prev … punct: the mean weight")


def test_demo_writes_its_tour_as_markdown_with_the_same_stops():
    from .conftest import run

    result = run("demo", "-f", "markdown")
    assert result.exit_code == 0, result.stderr
    md = result.stdout
    headings = [line for line in md.splitlines() if line.startswith(("## ", "### "))]
    assert headings == [
        "## attnviz demo: what self-attention does to a word",
        "### 1. One word, two contexts", "### 2. A tiny example, by hand", "### 3. Several heads on a real sentence",
    ]
    # the worked example of "Illustrated self-attention": its queries, then by hand: softmax([2, 4, 4]) =
    # [e^2, e^4, e^4] / (e^2 + 2 e^4) = [0.0634, 0.4683, 0.4683], entropy 1.2775 bits, and the output
    # 0.0634 [1, 2, 3] + 0.4683 [2, 8, 0] + 0.4683 [2, 6, 3] = [1.937, 6.683, 1.595]
    assert "| queries Q = x Wq | [0] | [1] | [2] |\n| --- | ---: | ---: | ---: |\n| input 1 | 1 | 0 | 2 |\n| input 2 | 2 | 2 | 2 |\n| input 3 | 2 | 1 | 3 |\n" in md
    assert "| 0 x1 | 0.06 | **0.47** | 0.47 | x2 (1.28 bits) |" in md
    assert "| 0 x1 | 1.937 | 6.683 | 1.595 | 7.139 |" in md  # and its norm, sqrt(1.937² + 6.683² + 1.595²)
    assert "| money | 0.636 | 0.672 | 0.720 |" in md  # cosine of 'bank' with 'money': as input, then after each sentence
    assert "\x1b" not in md and "─" not in md  # Markdown, not the terminal's tables


def test_demo_of_a_model_writes_markdown_naming_the_head_that_reads_river():
    import json

    import numpy as np

    from .conftest import run

    result = run("demo", "--model", str(MODELS / "tiny-gpt2"), "-f", "markdown")
    assert result.exit_code == 0, result.stderr
    md = result.stdout
    record = json.loads(run("inspect", "I sat on the river bank", "--model", str(MODELS / "tiny-gpt2"), "-f", "json").stdout)
    weights = np.array([[h["weights"] for h in layer["heads"]] for layer in record["layers"]])  # (L, h, T, T)
    layer, head = np.unravel_index(int(np.argmax(weights[:, :, 5, 4])), weights.shape[:2])  # 'bank' (5) on 'river' (4)
    assert f"Of all 8 heads, layer {layer}, head {head} gives 'river' the most weight from 'bank': {weights[layer, head, 5, 4]:.2f} of it." in md
    assert f"#### Layer {layer}, head {head} of 4: weights, each row a token as query" in md
    lines = md.splitlines()  # every head at a glance: a row per head, its label and shares as JSON has them
    start = lines.index("### 3. Every head at a glance") + 4
    assert lines[start] == "| layer | head | label | share | prev | next | self | first | last | punct | bits | spread | dist |"
    for line, (i, h) in zip(lines[start + 2:start + 10], [(i, h) for i in range(2) for h in range(4)], strict=True):
        p = record["layers"][i]["heads"][h]["patterns"]
        share = "" if p["share"] is None else f"{p['share']:.2f}"
        numbers = [f"{v:.2f}" for v in p["shares"].values()] + [f"{p[k]:.2f}" for k in ("entropy_bits", "spread", "distance")]
        assert line == "| " + " | ".join([str(i), str(h), p["label"], share, *numbers]) + " |"


def _format_choices(command: str) -> list[str]:
    from typer.main import get_command

    from attnviz_cli.cli import app_for

    click_command = get_command(app_for([command]))
    sub = click_command.commands[command] if hasattr(click_command, "commands") else click_command  # type: ignore[attr-defined]
    (option,) = [p for p in sub.params if "--format" in getattr(p, "opts", ())]
    return list(option.type.choices)


def test_each_command_lists_the_formats_it_writes_and_each_one_runs(tmp_path):
    from .conftest import run

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the river bank\n")
    runs = {
        "inspect": ("inspect", "the river bank"),
        "compare": ("compare", "the river bank", "the money bank", "--focus", "bank"),
        "heads": ("heads", str(corpus), "--model", TINY_BERT),
        "demo": ("demo",),
    }
    expected = {
        "inspect": ["table", "json", "jsonl", "markdown", "csv"],
        "compare": ["table", "json", "jsonl", "markdown"],
        "heads": ["table", "json", "csv", "markdown", "partial"],
        "demo": ["table", "markdown"],
    }
    for command, args in runs.items():
        assert _format_choices(command) == expected[command], command
        for fmt in expected[command]:
            result = run(*args, "-f", fmt)
            assert result.exit_code == 0 and result.stdout.strip(), (command, fmt, result.stderr)


# ---- item 17: attn heads --save, the layer x head grid of a corpus as a picture or a page -----------

def test_heads_save_draws_the_grid_as_svg_png_and_html_with_the_json_labels(tmp_path):
    import json
    import re

    import numpy as np
    from matplotlib.colors import to_rgb
    from matplotlib.image import imread

    from attnviz_cli.render_figure import LABEL_COLOURS

    from .conftest import run

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("I sat on the river bank.\nThe river flows.\n")
    svg, png, page = tmp_path / "grid.svg", tmp_path / "grid.png", tmp_path / "grid.html"
    result = run("heads", str(corpus), "--model", TINY_BERT, "-f", "json", "--save", str(svg), "--save", str(png), "--save", str(page), "--dpi", "60")
    assert result.exit_code == 0, result.stderr
    assert result.stderr.splitlines() == [f"attn: saved {svg}", f"attn: saved {png}", f"attn: saved {page}"]
    record = json.loads(result.stdout)
    short = {"previous": "prev", "punctuation": "punct"}
    want = [[short.get(e["label"], e["label"]), *([] if e["share"] is None else [f"{e['share']:.2f}"])] for e in record["heads"]]
    # the SVG keeps text as text: after the axes' ticks and names, one text group per head, in layer-then-head order
    groups = re.findall(r'<g id="text_(\d+)">(.*?)</g>', svg.read_text(), re.S)
    texts = [re.findall(r"<text[^>]*>([^<]*)</text>", body) for _, body in groups]
    first = next(n for n, t in enumerate(texts) if t == want[0])
    assert texts[first:first + len(want)] == want
    # the PNG fills cells with the colour of each label some head has, and none with the others' (a cell
    # at 60 dpi is 37 x 25 pixels; a colour's stray pixels in anti-aliased text are far fewer than 300)
    pixels = (imread(png)[..., :3] * 255).round().astype(int).reshape(-1, 3)
    colours, counts = np.unique(pixels, axis=0, return_counts=True)
    filled = {tuple(int(v) for v in c) for c, n in zip(colours, counts, strict=True) if n > 300}
    labels = {e["label"] for e in record["heads"]}
    for label, colour in LABEL_COLOURS.items():
        rgb = tuple(round(c * 255) for c in to_rgb(colour))
        assert (rgb in filled) == (label in labels), label
    # the page embeds the record it draws, and asks for nothing from outside
    html = page.read_text()
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', html, re.S).group(1))
    assert data["heads"] == record["heads"] and data["config"] == record["config"]
    assert "default-src 'none'" in html


def test_heads_save_refuses_an_extension_it_cannot_write_before_loading(tmp_path):
    from .conftest import run

    result = run("heads", "-", "--model", "no/such-model", "--save", str(tmp_path / "grid.txt"), input="the bank\n")
    assert result.exit_code == 2 and "has no extension of .svg, .png, .pdf, .html" in result.stderr
    assert not (tmp_path / "grid.txt").exists()

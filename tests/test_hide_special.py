"""--hide-special (issue 27, item 16): a model's special tokens left out of tables, Markdown, figures and
the model page, nothing renormalised, each row's weight on them shown as "to special tokens". Every shown
weight is checked against --format json's whole matrices (which keep every token), and every "to special
tokens" against 1 minus the shown weights of that row, computed here from the JSON."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from attnviz_cli.models import load_model
from attnviz_cli.models.pipeline import ModelShow, inspect_model

from .conftest import run
from .test_pictures import embedded_record, svg_texts

MODELS = Path(__file__).resolve().parent / "models"
BERT, GPT2 = str(MODELS / "tiny-bert"), str(MODELS / "tiny-gpt2")
TEXT = "the river bank flows"  # tiny-bert: [CLS] the river bank flows [SEP]
SPECIAL, SHOWN = [0, 5], [1, 2, 3, 4]
PRINTED = 0.005 + 1e-6  # a number printed to 2 decimals is within half a hundredth of the exact one


def whole(*args: str) -> dict:
    """The attnviz.model/1 record of TEXT through tiny-bert: every token, every weight."""
    result = run("inspect", TEXT, "--model", BERT, "-f", "json", *args)
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def table_rows(output: str, title: str) -> list[list[str]]:
    """The rows of the table under ``title``: each a list of its cells split on spaces."""
    lines = output.splitlines()
    start = next(n for n, line in enumerate(lines) if line.startswith(title))
    rule = next(n for n in range(start, len(lines)) if lines[n].startswith("─"))
    rows = []
    for line in lines[rule + 1:]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def check_rows(rows: list[list[str]], tokens: list[str], weights: np.ndarray) -> None:
    """Each row of a --hide-special weights table: a shown query, its shown weights as JSON's printed to
    two decimals, then 'to special tokens' = 1 - those weights (exact, from the JSON), then → strongest."""
    assert [(int(r[0]), r[1]) for r in rows] == [(i, tokens[i]) for i in SHOWN]  # no row for [CLS] or [SEP]
    for row, i in zip(rows, SHOWN, strict=True):
        cells, to_special = row[2:2 + len(SHOWN)], float(row[2 + len(SHOWN)])
        assert cells == [f"{weights[i, j]:.2f}" for j in SHOWN]
        assert abs(to_special - (1 - sum(float(weights[i, j]) for j in SHOWN))) <= PRINTED
        assert row[-2:] == ["→", tokens[int(np.argmax(weights[i]))]]  # the whole row's strongest, [SEP] too


def test_the_weights_table_leaves_out_special_tokens_and_shows_their_weight():
    record = whole("--rollout")
    tokens, weights = record["tokens"], np.array(record["layers"][1]["heads"][0]["weights"])
    assert [t for t, s in zip(tokens, record["special"], strict=True) if s] == ["[CLS]", "[SEP]"]
    result = run("inspect", TEXT, "--model", BERT, "--layer", "1", "--head", "0", "--hide-special", "--rollout", env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.stderr
    out = result.stdout
    assert "hidden       0:[CLS], 5:[SEP] (special tokens), left out of the matrices" in out
    header = next(line for line in out.splitlines() if line.startswith("query") and "strongest" in line)
    assert header.split() == ["query", "the", "river", "bank", "flows", "tokens", "strongest"]  # "to / special / tokens" above
    check_rows(table_rows(out, "layer 1, head 0 of 4: weights"), tokens, weights)
    check_rows(table_rows(out, "rollout through layer 1"), tokens, np.array(record["layers"][1]["rollout"]))
    scores = table_rows(out, "layer 1, head 0 of 4: scores")
    assert [r[2:] for r in scores] == [[f"{record['layers'][1]['heads'][0]['scores'][i][j]:.2f}" for j in SHOWN] for i in SHOWN]


def test_at_80_columns_the_table_still_fits_and_runs_its_keys():
    long = "the river bank flows " * 6  # 26 tokens: more keys than 80 columns hold
    result = run("inspect", long, "--model", BERT, "--layer", "0", "--head", "1", "--hide-special", env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.stderr
    assert max(map(len, result.stdout.splitlines())) <= 80
    assert "[CLS]" not in "".join(line for line in result.stdout.splitlines() if line.startswith("query"))
    assert "weights (softmax, special tokens hidden), keys 1-" in result.stdout


def test_markdown_leaves_out_special_tokens_with_their_weight_in_a_column():
    record = whole()
    tokens = record["tokens"]
    result = run("inspect", TEXT, "--model", BERT, "--layer", "1", "-f", "markdown", "--hide-special")
    assert result.exit_code == 0, result.stderr
    md = result.stdout
    assert "Special tokens left out of the matrices (--hide-special): \\[CLS\\] at 0, \\[SEP\\] at 5" in md
    tables = md.split("weights (softmax; strongest in bold)")[1:]
    assert len(tables) == 4
    for h, table in enumerate(tables):
        weights = np.array(record["layers"][1]["heads"][h]["weights"])
        lines = [line for line in table.splitlines() if line.startswith("| ")]
        assert lines[0] == "| query \\\\ key | the | river | bank | flows | to special tokens | strongest (entropy) |"
        for line, i in zip(lines[2:2 + len(SHOWN)], SHOWN, strict=True):  # under the header and its rule
            cells = [c.strip().strip("*") for c in line.strip("|").split("|")]
            assert cells[0] == f"{i} {tokens[i]}"
            assert cells[1:5] == [f"{weights[i, j]:.2f}" for j in SHOWN]
            assert abs(float(cells[5]) - (1 - weights[i, SHOWN].sum())) <= PRINTED


def test_a_figure_draws_the_shown_tokens_and_their_weight_on_special_tokens(tmp_path):
    from attnviz_cli.render_figure import panel_data

    record = whole()
    result = inspect_model(TEXT, load_model(BERT), ModelShow(layer=1, hide_special=True))
    assert result.layer is not None and result.layer.hidden == (0, 5)
    for h in range(4):
        shown, weights, masked, to_special = panel_data(result.layer, h)
        full = np.array(record["layers"][1]["heads"][h]["weights"], dtype=np.float64)
        assert shown == SHOWN and not masked.any()
        np.testing.assert_allclose(weights, full[np.ix_(SHOWN, SHOWN)], rtol=1e-6)  # JSON's shortest float32 repr
        np.testing.assert_allclose(to_special, 1 - full[SHOWN][:, SHOWN].sum(axis=1), atol=1e-6)  # float32 sums
    svg = tmp_path / "layer.svg"
    saved = run("inspect", TEXT, "--model", BERT, "--layer", "1", "--hide-special", "--save", str(svg))
    assert saved.exit_code == 0, saved.stderr
    texts = svg_texts(svg)
    assert not any(t in ("0 [CLS]", "5 [SEP]") for t in texts)  # no tick of a special token
    assert texts.count("1 the") == 8 and texts.count("to special tokens") == 4  # 4 panels, a row and a column each
    assert any("special tokens left out ([CLS] [SEP])" in t for t in texts)


def test_the_model_page_embeds_only_the_shown_tokens_and_their_weight_on_special_ones(tmp_path):
    record = whole("--rollout")
    page = tmp_path / "page.html"
    result = run("inspect", TEXT, "--model", BERT, "--save", str(page), "--hide-special")
    assert result.exit_code == 0, result.stderr
    data = embedded_record(page.read_text(encoding="utf-8"))
    assert data["tokens"] == ["the", "river", "bank", "flows"] and data["positions"] == SHOWN
    assert data["hidden"] == [{"position": 0, "token": "[CLS]"}, {"position": 5, "token": "[SEP]"}]
    for i in range(2):
        for h in range(4):
            full = np.array(record["layers"][i]["heads"][h]["weights"])
            head = data["layers"][i]["heads"][h]
            np.testing.assert_allclose(head["weights"], full[np.ix_(SHOWN, SHOWN)], atol=0.5e-4 + 1e-9)  # 4 decimals
            np.testing.assert_allclose(head["to_special"], 1 - full[SHOWN][:, SHOWN].sum(axis=1), atol=0.5e-4 + 1e-6)
            assert head["patterns"] == record["layers"][i]["heads"][h]["patterns"]  # whole rows, as JSON
        rollout = np.array(record["layers"][i]["rollout"])
        np.testing.assert_allclose(data["rollout_to_special"][i], 1 - rollout[SHOWN][:, SHOWN].sum(axis=1), atol=0.5e-4 + 1e-6)


def test_thumbnails_leave_out_special_tokens_and_say_so(tmp_path):
    svg = tmp_path / "heads.svg"
    result = run("inspect", TEXT, "--model", BERT, "--layer", "all", "--save", str(svg), "--hide-special")
    assert result.exit_code == 0, result.stderr
    assert any("special tokens left out ([CLS] [SEP]), rows not renormalised; patterns over whole rows" in t for t in svg_texts(svg))


def test_focus_lists_words_without_special_tokens_and_their_weight_apart():
    record = whole("--focus", "bank")
    units = [u["word"] for u in record["units"]]
    special = [n for n, u in enumerate(units) if u in ("[CLS]", "[SEP]")]
    result = run("inspect", TEXT, "--model", BERT, "--focus", "bank", "--hide-special", "--top-k", "2", env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    start = lines.index(next(line for line in lines if line.startswith(" layer   head"))) + 2
    end = next(n for n in range(start, len(lines)) if lines[n].startswith("its vector"))
    rows = [line.split() for line in lines[start:end] if line.strip()]  # a blank line parts the layers
    heads = [h for layer in record["focus"][0]["layers"] for h in layer["heads"]]
    assert len(rows) == len(heads) == 8
    for row, head in zip(rows, heads, strict=True):
        weights = np.array(head["weights"])
        kept = [u for u in np.argsort(-weights, kind="stable") if u not in special][:2]
        listed = " ".join(row[-7:-2])  # "word w · word w", after the layer (on its first head) and head
        assert listed == f"{units[kept[0]]} {weights[kept[0]]:.2f} · {units[kept[1]]} {weights[kept[1]]:.2f}"
        assert abs(float(row[-2]) - weights[special].sum()) <= PRINTED
        assert row[-1] == f"{head['entropy_bits']:.2f}"  # over every word, special ones included


def test_compare_markdown_lists_words_without_special_tokens():
    args = ("compare", "the river bank", "the money bank", "--focus", "bank", "--model", BERT, "--top-k", "2")
    record = json.loads(run(*args, "-f", "json").stdout)
    result = run(*args, "-f", "markdown", "--hide-special")
    assert result.exit_code == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if re.match(r"\| \d \|", line)]
    assert len(rows) == 2
    for line, layer in zip(rows, record["layers"], strict=True):
        cells = [c.strip() for c in line.strip("|").split("|")]
        for cell, side, sentence in zip(cells[2:], ("first", "second"), record["sentences"], strict=True):
            units = [u["word"] for u in sentence["units"]]
            special = [n for n, u in enumerate(units) if u in ("[CLS]", "[SEP]")]
            mean = np.array(layer[side]["weights"])  # the word's weights averaged over the layer's heads
            kept = [u for u in np.argsort(-mean, kind="stable") if u not in special][:2]
            listed = " · ".join(f"{units[u]} {mean[u]:.2f}" for u in kept)
            assert cell == f"{listed} · to special tokens {mean[special].sum():.2f}"


def test_gpt2_has_no_special_tokens_so_nothing_changes_but_the_header_says_so():
    args = ("inspect", "the river bank flows", "--model", GPT2, "--layer", "0", "--head", "1")
    plain, hiding = run(*args).stdout.splitlines(), run(*args, "--hide-special").stdout.splitlines()
    note = "hidden       nothing: this model's tokenizer adds no special tokens to this text"
    assert note in hiding
    hiding.remove(note)
    assert hiding == plain


@pytest.mark.parametrize("fmt", ["json", "jsonl", "csv"])
def test_data_formats_keep_every_token_and_refuse_the_option(fmt):
    result = run("inspect", TEXT, "--model", BERT, "--layer", "all", "-f", fmt, "--hide-special")
    assert result.exit_code == 2 and f"--format {fmt} is data and keeps every token" in result.stderr

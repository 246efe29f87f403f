"""--save: matplotlib figures (SVG, PNG, PDF) checked as files, and the HTML page checked in a real
headless Chromium (skipped, with the reason, where no browser can run)."""

from __future__ import annotations

import builtins
import json
import shutil
import xml.etree.ElementTree as ET
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from attnviz_cli.pipeline import inspect_sentence
from attnviz_cli.projections import identity
from attnviz_cli.render_figure import grid, save_figure
from attnviz_cli.render_html import inspection_html
from attnviz_cli.render_json import inspection_record
from attnviz_cli.results import InspectOptions

from .conftest import missing, need_module, numbers_differ, run

SENTENCE = "I sat on the river bank"
SVG = "{http://www.w3.org/2000/svg}"


def inspection(glove, sentence=SENTENCE, **options):
    return inspect_sentence(sentence, glove, identity(), InspectOptions(**options))


# ---- figures ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(("heads", "expected"), [(1, (1, 1)), (2, (1, 2)), (4, (1, 4)), (5, (2, 3)), (8, (2, 4)), (10, (3, 4))])
def test_panels_are_laid_out_in_a_grid(heads, expected):
    assert grid(heads) == expected


def panels(svg: Path) -> list[ET.Element]:
    """The axes of an SVG that matplotlib wrote (the colour bar is one too)."""
    root = ET.parse(svg).getroot()
    return [g for g in root.iter(f"{SVG}g") if g.get("id", "").startswith("axes_")]


def svg_texts(svg: Path) -> list[str]:
    return ["".join(t.itertext()) for t in ET.parse(svg).getroot().iter(f"{SVG}text")]


@pytest.mark.slow
def test_svg_has_a_panel_per_head_tokens_values_masks_and_a_title(glove, tmp_path):
    result = inspection(glove, heads=2, causal=True)
    path = tmp_path / "w.svg"
    save_figure(result, path)
    assert len(panels(path)) == 2 + 1  # two heads and the colour bar
    texts = svg_texts(path)
    assert "head 0 of 2" in texts and "head 1 of 2" in texts
    assert texts.count("5 bank") == 2 * 2  # both axes of both panels: tokens on both axes
    assert texts.count("×") == 2 * 15  # 15 masked cells above the diagonal of 6 x 6, per head
    assert f"{float(result.attention.weights[0, 5, 4]):.2f}" in texts  # values printed in the cells
    everything = " ".join(texts)  # the two-line title may be one text element or two
    assert "“I sat on the river bank”" in everything and "2 heads · d_k 25 · scaled by 1/√d_k · causal" in everything


def test_a_narrow_figures_title_wraps_at_its_parts_and_keeps_every_character(glove):
    from attnviz_cli.render_figure import title

    result = inspection(glove, heads=2, causal=True)
    lines = title(result, 30).splitlines()
    assert lines == ["“I sat on the river bank”", "2 heads · d_k 25", "scaled by 1/√d_k · causal", "projections identity", "glove-6b-50d-50k"]
    assert title(result).splitlines()[1] == " · ".join(lines[1:])  # wide: one line, as before
    named = replace(result, config=result.config._replace(vectors=result.config.vectors._replace(name="/a/very/long/path/to/some/vectors.txt")))
    wrapped = title(named, 20).splitlines()  # a path longer than a line goes over lines of its own
    assert all(len(line) <= 20 for line in wrapped) and "".join(wrapped[-2:]) == "/a/very/long/path/to/some/vectors.txt"


@pytest.mark.slow
def test_many_heads_make_a_grid_with_no_empty_panels(glove, tmp_path):
    path = tmp_path / "w.svg"
    save_figure(inspection(glove, heads=5), path)
    assert len(panels(path)) == 5 + 1


@pytest.mark.slow
def test_png_size_follows_dpi_and_the_files_are_reproducible(glove, tmp_path):
    from PIL import Image

    result = inspection(glove, heads=2)
    save_figure(result, tmp_path / "a.png", dpi=100)
    save_figure(result, tmp_path / "b.png", dpi=50)
    with Image.open(tmp_path / "a.png") as a, Image.open(tmp_path / "b.png") as b:
        assert a.format == "PNG" and b.format == "PNG"
        assert abs(a.size[0] - 2 * b.size[0]) <= 1 and abs(a.size[1] - 2 * b.size[1]) <= 1
        assert a.size[0] > 1.5 * a.size[1]  # two panels side by side
    for fmt in ("png", "svg", "pdf"):
        save_figure(result, tmp_path / f"1.{fmt}")
        save_figure(result, tmp_path / f"2.{fmt}")
        assert (tmp_path / f"1.{fmt}").read_bytes() == (tmp_path / f"2.{fmt}").read_bytes(), fmt
    # and no clock in them, so a later run gives the same bytes too (matplotlib's keys for the date)
    pdf, svg, png = ((tmp_path / f"1.{fmt}").read_bytes() for fmt in ("pdf", "svg", "png"))
    assert pdf.startswith(b"%PDF-") and b"/CreationDate" not in pdf and b"/ModDate" not in pdf
    assert b"<dc:date>" not in svg
    assert b"tIME" not in png and b"Creation Time" not in png


@pytest.mark.slow
def test_tokens_are_text_not_mathtext(glove, tmp_path):
    path = tmp_path / "w.svg"
    save_figure(inspection(glove, "it cost $ 5 and $ 6"), path)
    assert "1 cost" in svg_texts(path) and "2 $" in svg_texts(path)


@pytest.mark.slow
def test_cli_save_writes_every_file_and_says_so(tmp_path):
    paths = [tmp_path / f"bank.{ext}" for ext in ("svg", "png", "pdf", "html")]
    result = run("inspect", SENTENCE, "--heads", "2", "-f", "json", "--fields", "tokens", *(a for p in paths for a in ("--save", str(p))))
    assert result.exit_code == 0, result.output
    assert all(p.is_file() and p.stat().st_size > 1000 for p in paths)
    assert result.stderr.splitlines() == [f"attn: saved {p}" for p in paths]
    assert json.loads(result.stdout)["tokens"] == ["i", "sat", "on", "the", "river", "bank"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in paths)  # no leftovers


@pytest.mark.parametrize(
    ("args", "message"),
    [(["--save", "x.gif"], "has no extension of .svg, .png, .pdf, .html"), (["-", "-f", "jsonl", "--save", "x.svg"], "cannot follow a stream")],
)
def test_bad_saves_are_usage_errors(args, message, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    sentence = [] if args[0] == "-" else [SENTENCE]
    result = run("inspect", *sentence, *args)
    assert result.exit_code == 2 and message in result.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_unwritable_save_is_one_line_and_leaves_nothing(tmp_path):
    result = run("inspect", SENTENCE, "--save", str(tmp_path / "missing" / "w.html"))
    assert result.exit_code == 1
    assert result.stderr.startswith("attn: error: cannot write") and result.stderr.count("\n") == 1
    assert list(tmp_path.iterdir()) == []


def test_without_matplotlib_the_error_says_what_to_install(tmp_path, monkeypatch):
    real_import = builtins.__import__

    def no_matplotlib(name, *args, **kwargs):
        if name.startswith("matplotlib"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_matplotlib)
    result = run("inspect", SENTENCE, "--save", str(tmp_path / "w.png"))
    assert result.exit_code == 1 and "pip install matplotlib" in result.stderr
    assert list(tmp_path.iterdir()) == []


# ---- the HTML page, as a file ------------------------------------------------------------------------


def embedded_record(page: str) -> dict:
    start = page.index('<script type="application/json" id="data">') + len('<script type="application/json" id="data">')
    return json.loads(page[start : page.index("</script>", start)])


def test_html_embeds_the_inspect_record_and_needs_no_network(glove):
    result = inspection(glove, heads=2, causal=True, focus="bank")
    page = inspection_html(result)
    embedded = embedded_record(page)
    assert embedded["schema"] == inspection_record(result)["schema"]
    assert (np.float32(embedded["heads"][1]["weights"]) == result.attention.weights[1]).all()  # exact float32
    assert embedded["heads"][1]["scores"][0][1] is None  # masked: null, as in JSON output
    assert embedded_record(page)["focus"][0]["token"] == "bank"
    assert sorted(embedded) == ["config", "focus", "heads", "schema", "sentence", "tokens"]  # no inputs, outputs
    assert sorted(embedded["heads"][0]) == ["head", "scores", "weights"]
    assert "default-src 'none'" in page  # the browser refuses any request the page might make
    assert " src=" not in page and "href=" not in page and "@import" not in page and "url(" not in page


def test_html_escapes_what_the_sentence_holds(glove):
    page = inspection_html(inspection(glove, "the bank </script><script>alert(1)</script> & <b>river</b>"))
    assert page.count("</script>") == 2  # the page's own two script elements, nothing from the sentence
    assert "<b>river" not in page
    assert embedded_record(page)["sentence"].endswith("& <b>river</b>")


# ---- the HTML page, in a real browser ------------------------------------------------------------------

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@pytest.fixture(scope="module")
def browser():
    playwright_api = need_module("playwright.sync_api", "Playwright's Python package is not installed")
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        missing("no Chromium on this machine (Debian: apt-get install chromium; .ci/run installs it)")
    with playwright_api.sync_playwright() as p:
        launched = p.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield launched
        launched.close()


@pytest.fixture
def open_page(browser, tmp_path):
    """Open an inspection's page from disk; returns (page, problems): console errors, page errors and
    any request other than the page itself."""
    opened = []

    def open_(result):
        path = tmp_path / "page.html"
        path.write_text(inspection_html(result), encoding="utf-8")
        page = browser.new_page()
        problems: list[str] = []
        page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
        page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
        page.on("request", lambda r: problems.append(f"request: {r.url}") if r.url != path.as_uri() else None)
        page.on("dialog", lambda d: (problems.append(f"dialog: {d.message}"), d.dismiss()))
        page.goto(path.as_uri())
        opened.append(page)
        return page, problems

    yield open_
    for page in opened:
        page.close()


def tooltip_numbers(page, i: int, j: int) -> tuple[str, str]:
    page.hover(f'#heatmap .cell[data-query="{i}"][data-key="{j}"]')
    text = page.text_content("#tooltip")
    score = text.split("score ")[1].split(",")[0]
    return score, text.split("weight ")[1]


def test_page_loads_with_no_errors_and_no_requests_and_shows_every_cell(glove, open_page):
    result = inspection(glove, heads=2, causal=True)
    page, problems = open_page(result)
    assert page.locator("#heatmap .cell").count() == 6 * 6
    assert page.locator("#heatmap .cell.masked").count() == 15
    assert page.locator("#lines line").count() == 21  # one per unmasked (query, key)
    assert page.locator("#head option").count() == 2
    assert page.text_content("#sentence") == SENTENCE
    assert problems == []


def test_the_heatmaps_corner_names_its_axes_key_across_and_query_down(glove, open_page):
    """As the figures label theirs: "key →" over the key labels' row, "query ↓" over the query labels,
    both in the corner, left of the first column of cells and above the first row; a long input too."""
    for sentence in (SENTENCE, " ".join(["the river bank"] * 30)):  # 6 tokens, and 90: small cells, no key labels
        page, problems = open_page(inspection(glove, sentence))
        assert page.locator("#heatmap .axes span").all_text_contents() == ["key →", "query ↓"]
        corner = page.locator("#heatmap .axes").bounding_box()
        first = page.locator('#heatmap .cell[data-query="0"][data-key="0"]').bounding_box()
        assert corner is not None and first is not None and corner["height"] > 0
        assert corner["x"] + corner["width"] <= first["x"] + 0.5 and corner["y"] + corner["height"] <= first["y"] + 0.5
        assert problems == []


def test_hover_shows_the_numbers_and_switching_heads_changes_them(glove, open_page):
    result = inspection(glove, heads=2, causal=True)
    page, problems = open_page(result)
    for head in (0, 1):
        page.select_option("#head", str(head))
        assert page.locator("#heatmap .cell").count() == 36
        for i, j in ((5, 4), (2, 0), (5, 5)):
            score, weight = tooltip_numbers(page, i, j)
            assert float(score) == pytest.approx(float(result.attention.scores[head, i, j]), abs=5e-5)
            assert float(weight) == pytest.approx(float(result.attention.weights[head, i, j]), abs=5e-5)
        assert tooltip_numbers(page, 0, 3) == ("masked", "masked")
    assert not np.isclose(result.attention.weights[0, 5, 4], result.attention.weights[1, 5, 4], atol=1e-3)  # so the switch shows
    assert problems == []


def test_arrow_keys_walk_the_grid(glove, open_page):
    result = inspection(glove, heads=2)
    page, problems = open_page(result)
    page.focus("#heatmap")
    for key in ["ArrowDown"] + ["ArrowDown"] * 5 + ["ArrowRight"] * 4 + ["ArrowDown"]:  # first press: cell (0, 0)
        page.keyboard.press(key)
    text = page.text_content("#tooltip")
    assert text.startswith("head 0: query 5 bank → key 4 river")  # clamped at the last row
    assert float(text.split("weight ")[1]) == pytest.approx(float(result.attention.weights[0, 5, 4]), abs=5e-5)
    assert page.locator("#heatmap .cell.active").count() == 1
    page.select_option("#head", "1")  # the chosen cell stays chosen in the other head
    assert page.text_content("#tooltip").startswith("head 1: query 5 bank → key 4 river")
    assert page.locator('#heatmap .cell.active[data-query="5"][data-key="4"]').count() == 1
    assert problems == []


def test_focus_steps_appear_with_a_row_per_key(glove, open_page):
    page, problems = open_page(inspection(glove, heads=2, focus="bank"))
    assert page.is_visible("#focus-section")
    assert page.locator("#focus table.focus tr").count() == 1 + 6
    page.select_option("#head", "1")
    assert "head 1:" in page.text_content("#focus p")
    assert problems == []


def test_hovering_a_query_token_keeps_only_its_lines(glove, open_page):
    page, problems = open_page(inspection(glove))
    page.hover("#lines text >> nth=10")  # the left column's text nodes come in pairs: query 5 is the 11th
    shown = page.eval_on_selector_all("#lines line", "lines => lines.filter(l => l.style.display !== 'none').map(l => l.dataset.query)")
    assert shown == ["5"] * 6
    assert problems == []


def test_markup_in_the_sentence_stays_text_in_the_browser(glove, open_page):
    sentence = 'the bank <img src=x onerror="alert(1)"> </script><script>alert(2)</script>'
    page, problems = open_page(inspection(glove, sentence))
    assert page.text_content("#sentence") == sentence
    assert page.locator("img").count() == 0
    assert problems == []


EXAMPLES = Path(__file__).resolve().parent.parent / "docs" / "examples"


@pytest.mark.parametrize(("name", "heads"), [("river-bank", 2), ("cat-causal-5-heads", 5)])
def test_the_committed_examples_parse(name, heads):
    from PIL import Image

    assert len(panels(EXAMPLES / f"{name}.svg")) == heads + 1
    with Image.open(EXAMPLES / f"{name}.png") as image:
        assert image.format == "PNG" and image.size[0] > 600


@pytest.mark.slow
def test_the_committed_examples_are_what_their_commands_make(tmp_path, monkeypatch):
    # docs/examples/make.sh holds the commands; run each here and compare with the committed files by
    # structure and numbers, not bytes (another CPU's BLAS kernel changes a float32's last digit): the
    # page line for line, its text exact and its numbers within float32 rounding; the SVGs element for
    # element and by every text they show; the PNGs pixel for pixel, within what such a digit can change.
    import shlex

    from PIL import Image

    commands = [shlex.split(line) for line in (EXAMPLES / "make.sh").read_text().splitlines() if line.startswith("attn ")]
    assert len(commands) == 2
    monkeypatch.chdir(tmp_path)
    for command in commands:
        result = run(*command[1 : command.index(">")])
        assert result.exit_code == 0, result.output
    made = sorted(p.name for p in tmp_path.iterdir())
    static = (p for p in EXAMPLES.iterdir() if not p.name.startswith("minilm-"))  # those need $MINILM
    assert made == sorted(p.name for p in static if p.suffix in (".svg", ".png", ".html"))
    page, committed = ((folder / "river-bank.html").read_text(encoding="utf-8").splitlines() for folder in (tmp_path, EXAMPLES))
    assert len(page) == len(committed)
    for number, (line, want) in enumerate(zip(page, committed, strict=True), 1):
        assert numbers_differ(line, want) is None, f"river-bank.html line {number}: {numbers_differ(line, want)}"
    for svg in tmp_path.glob("*.svg"):
        made_root, committed_root = (ET.parse(folder / svg.name).getroot() for folder in (tmp_path, EXAMPLES))
        assert [e.tag for e in made_root.iter()] == [e.tag for e in committed_root.iter()], svg.name
        texts, shown = svg_texts(svg), svg_texts(EXAMPLES / svg.name)
        assert len(texts) == len(shown) and len(texts) > 20, svg.name
        for text, want in zip(texts, shown, strict=True):
            assert numbers_differ(text, want) is None, f"{svg.name}: {numbers_differ(text, want)}"
    for png in tmp_path.glob("*.png"):
        svg = png.with_suffix(".svg").name  # made by the same command: the same labels
        relabelled = sum(a != b for a, b in zip(svg_texts(tmp_path / svg), svg_texts(EXAMPLES / svg), strict=True))
        with Image.open(png) as drawn, Image.open(EXAMPLES / png.name) as kept:
            made, committed = (np.asarray(image.convert("RGBA"), dtype=np.int16) for image in (drawn, kept))
        assert png_differs(made, committed, relabelled) is None, f"{png.name}: {png_differs(made, committed, relabelled)}"
        wrong = made.copy()
        wrong[200:230, 200:230, :3] += 8  # in a cell, a colour 8 levels off: another weight
        assert "900 pixels more than 3 levels off" in png_differs(wrong, made, 0)


COLOUR_LEVELS = 3  # viridis' neighbouring entries differ by at most 3 levels a channel: a weight a last bit
# away is drawn in the same entry or the next
LABEL_PIXELS = 500  # a cell's "0.13" at 7 pt and 100 dpi, with its antialiased edge, within a 16 x 30 box


def png_differs(made: np.ndarray, committed: np.ndarray, relabelled: int) -> str | None:
    """Why pixels ``made`` (H, W, 4) are not the ``committed`` figure's, or None: the same size, every
    channel within COLOUR_LEVELS (text is antialiased the same by the same matplotlib), except within
    the ``relabelled`` cell labels that rounded the other way (0.125 shown as 0.12 or 0.13)."""
    if made.shape != committed.shape:
        return f"{made.shape[1]} x {made.shape[0]} pixels where the committed figure has {committed.shape[1]} x {committed.shape[0]}"
    off = int((np.abs(made - committed).max(axis=-1) > COLOUR_LEVELS).sum())
    if off > LABEL_PIXELS * relabelled:
        return f"{off} pixels more than {COLOUR_LEVELS} levels off ({relabelled} labels differ, {LABEL_PIXELS} pixels each allowed)"
    return None


@pytest.mark.slow
def test_long_inputs_shrink_the_cells_not_grow_the_figure(glove, tmp_path):
    from PIL import Image

    from attnviz_cli.render_figure import MAX_COLUMNS, MAX_PANEL_INCHES

    words = [w for w in glove.words[:3000] if w.isalpha()]
    long = inspection(glove, " ".join(words[(i * 37) % len(words)] for i in range(200)), heads=10, max_tokens=1000)
    save_figure(long, tmp_path / "long.png", dpi=30)
    with Image.open(tmp_path / "long.png") as image:
        assert image.size[0] <= (MAX_COLUMNS * MAX_PANEL_INCHES + 1.0) * 30  # 25 inches a panel uncapped
        assert image.size[1] <= (3 * MAX_PANEL_INCHES + 0.9) * 30


def test_a_paragraph_stays_a_picture(glove, open_page):
    # 80 tokens: smaller cells without numbers, every cell still there and hoverable, 3 lines a query
    words = [w for w in glove.words[:3000] if w.isalpha()]
    result = inspection(glove, " ".join(words[(i * 53) % len(words)] for i in range(80)), heads=2)
    page, problems = open_page(result)
    assert page.locator("#heatmap .cell").count() == 80 * 80
    box = page.locator('#heatmap .cell[data-query="0"][data-key="0"]').bounding_box()
    assert box["width"] < 20 and page.text_content('#heatmap .cell[data-query="0"][data-key="0"]') == ""
    _score, weight = tooltip_numbers(page, 70, 3)
    assert float(weight) == pytest.approx(float(result.attention.weights[0, 70, 3]), abs=5e-5)
    assert page.locator("#lines line").count() == 80 * 3
    strongest = np.argsort(-result.attention.weights[0, 7], kind="stable")[:3]
    keys = page.eval_on_selector_all('#lines line[data-query="7"]', "ls => ls.map(l => Number(l.dataset.key))")
    assert keys == strongest.tolist()
    assert "its 3 strongest keys" in page.text_content("#lines-caption")
    assert problems == []


def test_every_key_label_is_visible_whole(glove, open_page):
    # Issue 12.5: the column labels were clipped to "0 i", "1 …": present in the DOM, never seen.
    page, problems = open_page(inspection(glove, heads=2))
    labels = page.locator("#heatmap .key")
    assert labels.count() == 6
    for j, token in enumerate(SENTENCE.lower().split()):
        label = labels.nth(j)
        assert label.text_content() == f"{j} {token}"
        box = label.bounding_box()
        assert box is not None and box["height"] > 0
        clipped = label.evaluate("e => e.scrollHeight > e.clientHeight + 1 || e.scrollWidth > e.clientWidth + 1")
        assert not clipped, f"label {j} {token} is cut off"
    assert problems == []


# ---- a model's page and figures (attn inspect --model M --save) ----------------------------------------------

MODELS = Path(__file__).resolve().parent / "models"


def model_page(browser, tmp_path, html_text: str):
    """Open a page from disk in Chromium; returns (page, problems) as open_page does."""
    path = tmp_path / "model.html"
    path.write_text(html_text, encoding="utf-8")
    page = browser.new_page(viewport={"width": 1300, "height": 900})
    problems: list[str] = []
    page.on("console", lambda m: problems.append(f"console {m.type}: {m.text}") if m.type in ("error", "warning") else None)
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("request", lambda r: problems.append(f"request: {r.url}") if r.url != path.as_uri() else None)
    page.goto(path.as_uri())
    return page, problems


def test_model_page_matrices_name_their_axes(browser, tmp_path):
    out = tmp_path / "page.html"
    assert run("inspect", "the river bank", "--model", str(MODELS / "tiny-bert"), "--save", str(out)).exit_code == 0
    page, problems = model_page(browser, tmp_path, out.read_text(encoding="utf-8"))
    assert page.locator("#heatmap .axes span").all_text_contents() == ["key →", "query ↓"]
    assert page.locator("#rollout .axes span").all_text_contents() == ["input token →", "token ↓"]
    for box in ("#heatmap", "#rollout"):
        corner = page.locator(f"{box} .axes").bounding_box()
        first = page.locator(f'{box} .cell[data-query="0"][data-key="0"]').bounding_box()
        assert corner is not None and first is not None and corner["height"] > 0
        assert corner["x"] + corner["width"] <= first["x"] + 0.5 and corner["y"] + corner["height"] <= first["y"] + 0.5
    assert problems == []


def test_model_page_grid_click_selectors_hover_and_rollout(browser, tmp_path):
    from attnviz_cli.models import load_model
    from attnviz_cli.models.heads import head_labels, rollout, run_patterns

    text = "I sat on the river bank, then left."
    out = tmp_path / "page.html"
    result = run("inspect", text, "--model", str(MODELS / "tiny-gpt2"), "--save", str(out))
    assert result.exit_code == 0, result.output
    model = load_model(MODELS / "tiny-gpt2")
    expected = model.run(text)
    labels, values = head_labels(run_patterns(expected, text, causal=True))
    page, problems = model_page(browser, tmp_path, out.read_text(encoding="utf-8"))
    assert page.locator(".thumb").count() == 2 * 4 and page.locator(".thumb canvas").count() == 8
    caption = page.text_content('.thumb[data-layer="1"][data-head="2"] figcaption')
    assert caption.split()[0] == {"previous": "prev", "punctuation": "punct"}.get(labels[1, 2], labels[1, 2])
    if not np.isnan(values[1, 2]):
        assert caption.split()[1] == f"{values[1, 2]:.2f}"
    page.click('.thumb[data-layer="1"][data-head="2"]')  # a click opens that head below
    assert page.input_value("#layer") == "1" and page.input_value("#head") == "2"
    assert page.text_content("#head-title").startswith(f"Layer 1, head 2: {labels[1, 2]}")
    assert page.locator(".thumb.selected").count() == 1
    T = len(expected.tokens)
    page.hover(f'#heatmap .cell[data-query="{T - 1}"][data-key="3"]')
    tip = page.text_content("#tooltip")
    assert float(tip.split("weight ")[1]) == pytest.approx(float(expected.attentions[1, 2, T - 1, 3]), abs=5e-5)
    assert page.locator("#heatmap .cell.masked").count() == T * (T - 1) // 2  # causal: above the diagonal
    page.select_option("#layer", "0")  # the selectors open a head too
    page.select_option("#head", "3")
    assert page.locator('.thumb.selected[data-layer="0"][data-head="3"]').count() == 1
    page.hover('#heatmap .cell[data-query="4"][data-key="1"]')
    assert float(page.text_content("#tooltip").split("weight ")[1]) == pytest.approx(float(expected.attentions[0, 3, 4, 1]), abs=5e-5)
    page.hover('#rollout .cell[data-query="5"][data-key="2"]')  # the rollout through the chosen layer
    rolled = rollout(expected.attentions.astype(np.float64))
    assert float(page.text_content("#rollout-tip").split("draws ")[1].split()[0]) == pytest.approx(rolled[0, 5, 2], abs=5e-5)
    assert page.locator("#lines line").count() == T * (T + 1) // 2
    assert problems == []


def test_a_6_by_12_model_page_over_40_tokens_draws_every_head(browser, tmp_path):
    """Its drawing time is a benchmark's (benchmarks/page.py), not a test's."""
    from attnviz_cli.core import softmax
    from attnviz_cli.models import ModelConfig, ModelRun
    from attnviz_cli.models.pipeline import ModelShow, inspect_run
    from attnviz_cli.render_model_html import model_page_html

    L, H, T, d = 6, 12, 40, 4
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(L, H, T, T)) * 3
    weights = softmax(scores)
    words = [f"w{i}" for i in range(T)]
    text = " ".join(words)
    offsets, start = [], 0
    for w in words:
        offsets.append((start, start + len(w)))
        start += len(w) + 1
    fake = ModelRun(
        token_ids=np.arange(T), tokens=tuple(words), special=(False,) * T, words=tuple(range(T)), offsets=tuple(offsets),
        scores=scores, attentions=weights, hidden_states=np.zeros((L + 1, T, d)), queries=np.zeros((L, H, T, 1)),
        keys=np.zeros((L, H, T, 1)), values=np.zeros((L, H, T, 1)), head_outputs=np.zeros((L, H, T, 1)),
    )
    config = ModelConfig("synthetic", "bert", L, H, 48, 512, 1e-12, 0, "float64")
    page, problems = model_page(browser, tmp_path, model_page_html(inspect_run(fake, config, text, ModelShow(page=True))))
    page.wait_for_selector("body[data-drawn-ms]", state="attached")  # set once everything is drawn
    assert page.locator(".thumb").count() == 72 and page.locator("#heatmap .cell").count() == T * T
    assert problems == []


@pytest.mark.slow
def test_every_layer_and_head_as_thumbnails_and_the_usage_rules(tmp_path):
    from attnviz_cli.models import load_model
    from attnviz_cli.models.heads import head_labels, run_patterns

    text = "the river bank"
    figure = tmp_path / "all.svg"
    result = run("inspect", text, "--model", str(MODELS / "tiny-bert"), "--layer", "all", "--save", str(figure))
    assert result.exit_code == 0, result.output
    labels, _ = head_labels(run_patterns(load_model(MODELS / "tiny-bert").run(text), text, causal=False))
    root = ET.parse(figure).getroot()
    texts = ["".join(t.itertext()) for t in root.iter(f"{SVG}text")]
    assert sum(1 for t in texts if t.split(" ")[0] in set(labels.ravel())) == 8  # a titled panel per head
    assert {f"layer {i}" for i in range(2)} <= set(texts) and {f"head {h}" for h in range(4)} <= set(texts)
    base = ("inspect", text, "--model", str(MODELS / "tiny-bert"))
    no_layer = run(*base, "--save", str(tmp_path / "x.png"))
    assert no_layer.exit_code == 2 and "draws a layer's heads (--layer L) or every head (--layer all)" in no_layer.stderr
    bad = run(*base, "--layer", "two")
    assert bad.exit_code == 2 and "'two' is not a layer: give a number from 0, or all" in bad.stderr
    markdown = run(*base, "--layer", "all", "-f", "markdown")  # CSV takes every layer (issue 27.10); Markdown one
    assert markdown.exit_code == 2 and "shows one layer's heads: say which with --layer L" in markdown.stderr
    assert not (tmp_path / "x.png").exists()


def test_markup_in_a_models_text_stays_text_on_its_page(browser, tmp_path):
    text = 'the bank <img src=x onerror="alert(1)"> </script><script>alert(2)</script>'
    out = tmp_path / "page.html"
    result = run("inspect", text, "--model", str(MODELS / "tiny-bert"), "--save", str(out))
    assert result.exit_code == 0, result.output
    page, problems = model_page(browser, tmp_path, out.read_text(encoding="utf-8"))
    assert page.text_content("#text") == text
    assert page.locator("img").count() == 0 and page.locator("script").count() == 2  # the page's own two
    assert problems == []


def test_one_head_of_a_models_layer_keeps_its_number_on_the_page(open_page):
    from attnviz_cli.models import load_model
    from attnviz_cli.models.pipeline import layer_inspection

    model = load_model(MODELS / "tiny-gpt2")
    run_ = model.run("the river bank")
    page, problems = open_page(layer_inspection(run_, model.config, "the river bank", 1, head=2))
    assert page.locator("#head option").all_text_contents() == ["2 of 4"]
    assert page.text_content("#config").startswith("head 2 of 4 · d_k 8 ·")
    assert page.locator("#heatmap .cell.masked").count() == 3  # GPT-2's causal mask
    score, weight = tooltip_numbers(page, 2, 1)
    assert float(score) == pytest.approx(float(run_.scores[1, 2, 2, 1]), abs=5e-5)
    assert float(weight) == pytest.approx(float(run_.attentions[1, 2, 2, 1]), abs=5e-5)
    assert page.text_content("#tooltip").startswith("head 2: query 2")
    assert problems == []


def _vertical_centre(box) -> float:
    assert box is not None
    return box["y"] + box["height"] / 2


TEXT_BOX = "(e) => { const r = document.createRange(); r.selectNodeContents(e); const b = r.getBoundingClientRect(); return {y: b.top, height: b.height}; }"


def test_row_labels_sit_level_with_their_cells(glove, open_page, browser, tmp_path):
    """Each query's label is centred on its row of cells (it sat at the row's top, visibly higher), on
    the static page's heatmap and on the model page's head and rollout matrices."""
    page, problems = open_page(inspection(glove, SENTENCE))
    for i in range(6):
        label = page.locator("#heatmap .query").nth(i).evaluate(TEXT_BOX)  # where its text is drawn
        cell = page.locator(f'#heatmap .cell[data-query="{i}"][data-key="0"]').bounding_box()
        assert abs(_vertical_centre(label) - _vertical_centre(cell)) <= 1.0, i
    assert problems == []
    out = tmp_path / "model.html"
    assert run("inspect", "the river bank", "--model", str(MODELS / "tiny-bert"), "--save", str(out)).exit_code == 0
    page, problems = model_page(browser, tmp_path, out.read_text(encoding="utf-8"))
    for box in ("#heatmap", "#rollout"):
        for i in range(page.locator(f"{box} .query").count()):
            label = page.locator(f"{box} .query").nth(i).evaluate(TEXT_BOX)
            cell = page.locator(f'{box} .cell[data-query="{i}"][data-key="0"]').bounding_box()
            assert abs(_vertical_centre(label) - _vertical_centre(cell)) <= 1.0, (box, i)
    assert problems == []


def test_clicking_a_head_brings_its_detail_into_view_at_1280_by_720(browser, tmp_path):
    """MiniLM's 6 x 12 grid fills a 1280x720 window: a click on a thumbnail scrolls to the head it opens."""
    from attnviz_cli.core import softmax
    from attnviz_cli.models import ModelConfig, ModelRun
    from attnviz_cli.models.pipeline import ModelShow, inspect_run
    from attnviz_cli.render_model_html import model_page_html

    L, H, T = 6, 12, 12
    scores = np.random.default_rng(1).normal(size=(L, H, T, T))
    words = [f"w{i}" for i in range(T)]
    zeros = np.zeros((L, H, T, 1))
    fake = ModelRun(
        token_ids=np.arange(T), tokens=tuple(words), special=(False,) * T, words=tuple(range(T)),
        offsets=tuple((3 * i, 3 * i + len(w)) for i, w in enumerate(words)), scores=scores, attentions=softmax(scores),
        hidden_states=np.zeros((L + 1, T, 4)), queries=zeros, keys=zeros, values=zeros, head_outputs=zeros,
    )
    config = ModelConfig("synthetic", "bert", L, H, 48, 512, 1e-12, 0, "float64")
    path = tmp_path / "grid.html"
    path.write_text(model_page_html(inspect_run(fake, config, " ".join(words), ModelShow(page=True))), encoding="utf-8")
    page = browser.new_page(viewport={"width": 1280, "height": 720})
    page.goto(path.as_uri())
    title = page.locator("#head-title")
    assert not title.is_visible() or title.bounding_box()["y"] > 720  # below the fold before the click  # type: ignore[index]
    page.locator('.thumb[data-layer="4"][data-head="7"]').click()
    page.wait_for_function("() => { const r = document.getElementById('head-title').getBoundingClientRect(); return r.top >= -1 && r.bottom <= innerHeight; }", timeout=5000)  # -1: layout in fractions of a pixel
    assert page.text_content("#head-title").startswith("Layer 4, head 7")  # type: ignore[union-attr]
    page.close()


def test_model_page_groups_the_heads_that_share_a_key_value_head_and_blanks_the_window(browser, tmp_path):
    out = tmp_path / "page.html"
    text = "the water flows by the river bank and I sat on the bank at the river"
    assert run("inspect", text, "--model", str(MODELS / "tiny-mistral"), "--save", str(out)).exit_code == 0
    page, problems = model_page(browser, tmp_path, out.read_text(encoding="utf-8"))
    assert page.locator(".col-label").all_text_contents() == ["head 0\nkv 0", "head 1\nkv 0", "head 2\nkv 1", "head 3\nkv 1"]
    labels = [page.locator(".col-label").nth(h).bounding_box() for h in range(4)]
    assert all(labels[h]["x"] + labels[h]["width"] <= labels[h + 1]["x"] for h in range(3))  # no label runs into the next
    left = [page.locator(f'.thumb[data-layer="0"][data-head="{h}"]').bounding_box()["x"] for h in range(4)]
    gaps = [left[h + 1] - left[h] for h in range(3)]
    assert gaps[1] > gaps[0] + 10 and gaps[1] > gaps[2] + 10  # a wider gap between the two groups
    page.click('.thumb[data-layer="1"][data-head="2"]')
    T = 19 + 1  # its tokens with BOS; a window of 3: each query sees itself and the two before it
    assert page.locator("#heatmap .cell.masked").count() == T * T - (3 * T - 3)
    assert problems == []


def test_heads_page_with_probes_shows_each_probes_scores_and_the_labels_on_demand(browser, tmp_path):
    import json

    out = tmp_path / "grid.html"
    result = run("heads", "--model", str(MODELS / "tiny-llama"), "--probe", "previous", "--probe", "induction",
                 "--sequences", "3", "--length", "8", "--save", str(out), "-f", "json")
    record = json.loads(result.stdout)
    page, problems = model_page(browser, tmp_path, out.read_text(encoding="utf-8"))
    assert page.input_value("#show") == "induction"
    cells = page.locator("td.head").all_text_contents()
    assert cells == [f"induction{e['scores']['induction']:.2f}" for e in record["heads"]]
    page.select_option("#show", "previous")
    assert page.locator("td.head").all_text_contents() == [f"previous{e['scores']['previous']:.2f}" for e in record["heads"]]
    page.select_option("#show", "labels")
    assert page.locator("td.head").all_text_contents() == [e["label"] + ("" if e["share"] is None else f"{e['share']:.2f}") for e in record["heads"]]
    assert page.text_content("#what").endswith("3 random sequences of 2 × 8 tokens after the BOS (seed 0, from 265 token ids)")  # type: ignore[union-attr]
    assert problems == []

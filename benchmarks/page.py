"""How long the model page (`attn inspect TEXT --model M --save page.html`) takes to draw in Chromium:
a synthetic 6-layer x 12-head run over 40 tokens (MiniLM's shape), opened from disk, timed by the
page itself from navigation start to everything drawn (its body's data-drawn-ms). Target: under a
second. Needs Playwright's Python package and Debian's chromium.

    python benchmarks/page.py [--runs 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

from attnviz_cli.core import softmax
from attnviz_cli.models import ModelConfig, ModelRun
from attnviz_cli.models.pipeline import ModelShow, inspect_run
from attnviz_cli.render_model_html import model_page_html

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


def synthetic_page(L: int = 6, H: int = 12, T: int = 40) -> str:
    """The page of a run with random weights over T one-word tokens."""
    rng = np.random.default_rng(0)
    scores = rng.normal(size=(L, H, T, T)) * 3
    words = [f"w{i}" for i in range(T)]
    starts = np.cumsum([0] + [len(w) + 1 for w in words[:-1]])
    zeros = np.zeros((L, H, T, 1))
    run = ModelRun(
        token_ids=np.arange(T), tokens=tuple(words), special=(False,) * T, words=tuple(range(T)),
        offsets=tuple((int(s), int(s) + len(w)) for s, w in zip(starts, words, strict=True)),
        scores=scores, attentions=softmax(scores), hidden_states=np.zeros((L + 1, T, 4)),
        queries=zeros, keys=zeros, values=zeros, head_outputs=zeros,
    )
    config = ModelConfig("synthetic", "bert", L, H, 48, 512, 1e-12, 0, "float64")
    return model_page_html(inspect_run(run, config, " ".join(words), ModelShow(page=True)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    chromium = shutil.which("chromium") or sys.exit("no chromium on PATH (Debian: apt-get install chromium)")
    with tempfile.TemporaryDirectory() as folder, sync_playwright() as p:
        path = Path(folder) / "page.html"
        path.write_text(synthetic_page(), encoding="utf-8")
        browser = p.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        drawn = []
        for _ in range(args.runs):
            page = browser.new_page(viewport={"width": 1300, "height": 900})
            page.goto(path.as_uri())
            page.wait_for_selector("body[data-drawn-ms]", state="attached")
            drawn.append(int(page.get_attribute("body", "data-drawn-ms")))
            page.close()
        browser.close()
    print(f"model page, 6 x 12 heads over 40 tokens: drawn {statistics.median(drawn)} ms after navigation started "
          f"(median of {args.runs}; best {min(drawn)} ms; target < 1000 ms)")


if __name__ == "__main__":
    main()

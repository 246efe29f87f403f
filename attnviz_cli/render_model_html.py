"""A model run -> one self-contained HTML page (``attn inspect TEXT --model M --save page.html``): every
layer x head as a small heatmap with its pattern as a label, layer and head selectors, the chosen head
in full (heatmap with hover numbers, and lines between tokens), and the attention rollout.

As the page of static attention (:mod:`.render_html`): inline CSS and JavaScript, a Content-Security-
Policy of ``default-src 'none'``, the data embedded as JSON and only ever put into the page as text.
Thumbnails are drawn on canvases (one pixel a weight, scaled up), so 72 heads over 40 tokens open in a
blink; the numbers are kept to 4 decimals, as the page shows them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .models.pipeline import ModelInspection
from .render_html import page, script_json
from .render_model_json import config_record, patterns_records
from .results import hidden_weight, shown_positions

DECIMALS = 4  # what the page shows; fewer digits make a smaller page that parses faster


def model_page_record(result: ModelInspection) -> dict[str, Any]:
    """What the page shows: the tokens, every head's scores, weights and patterns, and the rollout
    (the pipeline's, computed for a page: ``ModelShow.page``). With --hide-special, the tokens shown
    (``positions``: where they stand in the run) and their rows and columns alone, each row's weight on
    the ``hidden`` ones as ``to_special`` (nothing renormalised; patterns stay over whole rows)."""
    run, config, text, hidden = result.run, result.config, result.text, result.hidden
    assert result.rollout is not None, "a model page needs the rollout: ModelShow(page=True)"
    patterns = patterns_records(result.heads)
    shown = shown_positions(len(run.tokens), hidden)

    def kept(matrices: np.ndarray) -> np.ndarray:  # (..., T, T) -> the shown rows and columns, as the page keeps them
        return np.round(np.ascontiguousarray(matrices[..., shown, :][..., shown], dtype=np.float64), DECIMALS)

    def to_hidden(matrices: np.ndarray) -> np.ndarray:  # (..., T, T) -> (..., shown): each shown row's weight on the hidden
        return np.round(np.ascontiguousarray(hidden_weight(matrices, hidden)[..., shown], dtype=np.float64), DECIMALS)

    scores, weights = kept(run.scores), kept(run.attentions)  # -inf (masked) stays -inf: null in JSON
    to_special = to_hidden(run.attentions) if hidden else None
    rollout_to_special = to_hidden(result.rollout) if hidden else None

    def head(i: int, h: int) -> dict[str, Any]:
        record = {"head": h, "scores": scores[i, h], "weights": weights[i, h], "patterns": patterns[i][h]}
        return record if to_special is None else {**record, "to_special": to_special[i, h]}

    return {
        "text": text,
        "tokens": [run.tokens[t] for t in shown],
        "positions": shown,
        "special": [run.special[t] for t in shown],
        "hidden": [{"position": t, "token": run.tokens[t]} for t in hidden],
        "config": {"model": config_record(config)},
        "weighting": run.weighting,
        "layers": [{"layer": i, "heads": [head(i, h) for h in range(config.heads)]} for i in range(config.layers)],
        "rollout": kept(result.rollout),
        **({} if rollout_to_special is None else {"rollout_to_special": rollout_to_special}),
    }


def model_page_html(result: ModelInspection) -> str:
    """The whole page."""
    sentence = " ".join(result.text.split())
    return page(_TEMPLATE, f"attnviz: {result.config.name}: {sentence[:80]}", script_json(model_page_record(result)))


_TEMPLATE = """{{PAGE_HEAD}}  #text { font-size: 1.1rem; margin: .25rem 0; } #config, .note { color: #555; margin: 0 0 .75rem; }
  .controls { display: flex; gap: 1rem; align-items: center; margin: .5rem 0; }
  #grid { display: grid; gap: 6px 4px; width: max-content; align-items: start; }
  #grid .row-label, #grid .col-label { font-size: 11px; color: #555; align-self: center; }
  #grid .col-label { white-space: pre-line; text-align: center; }
  .thumb { margin: 0; padding: 2px; border: 2px solid transparent; border-radius: 3px; cursor: pointer; text-align: center; }
  .thumb canvas { display: block; width: 56px; height: 56px; image-rendering: pixelated; background: #d9d9d9; }
  .thumb figcaption { font-size: 10px; line-height: 1.2; color: #333; font-variant-numeric: tabular-nums; }
  .thumb:hover { border-color: #bbb; } .thumb.selected { border-color: #e4572e; }
  .matrix { display: grid; gap: 1px; width: max-content; font-size: 11px; }
  .matrix .key { writing-mode: vertical-rl; transform: rotate(180deg); white-space: nowrap; padding-bottom: 2px; color: #333; }
  .matrix .query { text-align: right; padding-right: 4px; white-space: nowrap; color: #333; align-self: center; }
  .matrix .axes { display: flex; flex-direction: column; justify-content: flex-end; align-items: flex-end; padding: 0 4px 2px 0; color: #555; font-style: italic; white-space: nowrap; }
  .matrix .cell { display: flex; align-items: center; justify-content: center; font-size: 9px; cursor: crosshair; }
  .matrix .cell.masked { background: repeating-linear-gradient(45deg, #eee, #eee 3px, #d9d9d9 3px, #d9d9d9 6px); }
  .matrix .cell:hover { outline: 2px solid #e4572e; }
  .matrix .cell.to-special { margin-left: 6px; font-size: 9px; }
  .tip { min-height: 1.5em; margin: .5rem 0; font-variant-numeric: tabular-nums; }
  #lines line { stroke: #3b528b; } #lines text { cursor: pointer; } #lines text.on { font-weight: bold; fill: #e4572e; }
  .views { display: flex; flex-wrap: wrap; gap: 2rem; align-items: flex-start; }
  footer { margin-top: 2rem; color: #777; font-size: 12px; }
</style>
</head>
<body>
<h1>attnviz</h1>
<p id="text"></p>
<p id="config"></p>
<h2>Every head: what it attends to</h2>
<p class="note">Each square is one head's weights (queries down, keys across; brighter = more weight), with its pattern
and the share of weight behind it: prev, next, self, first, last, punct when those keys get at least half its
weight, broad when its rows spread at least halfway to even, other when it is sharp on words no position names;
in a decoder, sink when the tokens after the first give it at least half their weight (an attention sink).
Click a head to open it below.</p>
<div id="grid" role="grid" aria-label="every layer and head"></div>
<h2 id="head-title">One head</h2>
<div class="controls"><label>Layer <select id="layer"></select></label><label>Head <select id="head"></select></label>
<span>hover a cell for its numbers</span></div>
<div class="views">
<div><div id="heatmap" class="matrix" role="grid" aria-label="the chosen head's weights"></div><div id="tooltip" class="tip" role="status" aria-live="polite"></div></div>
<div><p id="lines-caption" class="note"></p><svg id="lines" role="img" aria-label="the chosen head's weights as lines between tokens"></svg></div>
</div>
<h2 id="rollout-title">Attention rollout</h2>
<p class="note">How much each token's vector after the chosen layer draws on each input token (Abnar and Zuidema 2020):
each layer's heads averaged, mixed half and half with the identity for the residual path, multiplied through
the layers. Rows sum to 1.</p>
<div id="rollout" class="matrix" role="grid" aria-label="attention rollout"></div>
<div id="rollout-tip" class="tip" role="status" aria-live="polite"></div>
<footer>Made by attnviz. The numbers (to 4 decimals) are embedded in this page: view source.</footer>
<script type="application/json" id="data">{{DATA}}</script>
<script>
"use strict";
const record = JSON.parse(document.getElementById("data").textContent);
const tokens = record.tokens, T = tokens.length, m = record.config.model, L = m.layers, H = m.heads;
{{COMMON_JS}}
const SHORT = {previous: "prev", punctuation: "punct"};
const positions = record.positions, hiddenTokens = record.hidden;
const label = (i) => `${positions[i]} ${tokens[i]}`;  // i: a row of the matrices shown; positions[i]: its token in the run
const CELL_W = Math.max(8, Math.min(30, Math.floor(640 / T))), CELL_H = Math.max(8, Math.min(22, Math.floor(600 / T)));
const NUMBERS_IN_CELLS = CELL_W >= 28;
const LINES_PER_QUERY = T > 60 ? 3 : T;

document.getElementById("text").textContent = record.text;
document.getElementById("config").textContent =
  `${m.name} · ${m.architecture} · ${L} layers × ${H} heads · d_model ${m.d_model} · ${m.dtype} · ${T + hiddenTokens.length} tokens` +
  (hiddenTokens.length ? ` · special tokens left out (--hide-special): ${hiddenTokens.map((t) => `${t.position} ${t.token}`).join(", ")}; ` +
    "'to special tokens' is each row's weight on them, nothing renormalised; patterns and bits are over whole rows" : "") +
  (record.weighting === "norm" ? " · weights value-weighted (Kobayashi et al. 2020): each times the norm of the vector its head moves, " +
    "rows renormalised to sum to 1; patterns, bits and the rollout are over these" : "");

function patternText(p) {
  return (SHORT[p.label] || p.label) + (p.share === null ? "" : " " + p.share.toFixed(2));
}

function drawThumb(canvas, head) {
  // one pixel a weight, viridis; masked entries left transparent (the canvas's grey shows through)
  const ctx = canvas.getContext("2d"), image = ctx.createImageData(T, T), data = image.data;
  for (let i = 0; i < T; i++) for (let j = 0; j < T; j++) {
    if (head.scores[i][j] === null) continue;
    const x = Math.min(1, Math.max(0, head.weights[i][j])) * (VIRIDIS.length - 1), k = Math.min(VIRIDIS.length - 2, Math.floor(x)), f = x - k;
    const o = 4 * (i * T + j);
    for (let c = 0; c < 3; c++) data[o + c] = Math.round(VIRIDIS[k][c] + f * (VIRIDIS[k + 1][c] - VIRIDIS[k][c]));
    data[o + 3] = 255;
  }
  ctx.putImageData(image, 0, 0);
}

const grid = document.getElementById("grid");
grid.style.gridTemplateColumns = `auto repeat(${H}, auto)`;
grid.appendChild(el("div"));
const GROUP = H / record.config.model.kv_heads;  // heads that share a key/value head stand together, a gap between groups
const groupStart = (h) => GROUP > 1 && h > 0 && h % GROUP === 0;
for (let h = 0; h < H; h++) {
  const label = el("div", {className: "col-label"}, GROUP > 1 ? `head ${h}\nkv ${Math.floor(h / GROUP)}` : `head ${h}`);
  if (groupStart(h)) label.style.marginLeft = "12px";
  grid.appendChild(label);
}
for (let l = 0; l < L; l++) {
  grid.appendChild(el("div", {className: "row-label"}, `layer ${l}`));
  for (let h = 0; h < H; h++) {
    const head = record.layers[l].heads[h], p = head.patterns;
    const figure = el("figure", {className: "thumb", tabIndex: 0, role: "gridcell",
      title: `layer ${l}, head ${h}: ${p.label}${p.share === null ? "" : " " + p.share.toFixed(2)} · ${p.entropy_bits.toFixed(2)} bits`});
    figure.dataset.layer = String(l); figure.dataset.head = String(h);
    if (groupStart(h)) figure.style.marginLeft = "12px";
    const canvas = el("canvas", {width: T, height: T});
    figure.appendChild(canvas);
    figure.appendChild(el("figcaption", {}, patternText(p)));
    drawThumb(canvas, head);
    figure.addEventListener("click", () => openHead(l, h));
    figure.addEventListener("keydown", (event) => { if (event.key === "Enter" || event.key === " ") { event.preventDefault(); openHead(l, h); } });
    grid.appendChild(figure);
  }
}

const layerSelect = document.getElementById("layer"), headSelect = document.getElementById("head");
for (let l = 0; l < L; l++) layerSelect.appendChild(el("option", {value: String(l)}, `${l} of ${L}`));
for (let h = 0; h < H; h++) headSelect.appendChild(el("option", {value: String(h)}, `${h} of ${H}`));
layerSelect.addEventListener("change", () => choose(Number(layerSelect.value), Number(headSelect.value)));
headSelect.addEventListener("change", () => choose(Number(layerSelect.value), Number(headSelect.value)));

function drawMatrix(box, tip, values, masked, describe, across, down, toSpecial) {
  // a T x T matrix as a grid of coloured cells, its corner naming the axes (across, down); hovering a
  // cell writes describe(i, j) into tip; toSpecial (with hidden special tokens): a last column, each
  // row's weight on them
  box.replaceChildren();
  const extra = toSpecial ? ` ${Math.max(CELL_W, 28)}px` : "";
  box.style.gridTemplateColumns = `auto repeat(${T}, ${CELL_W}px)${extra}`;
  box.style.gridTemplateRows = `auto repeat(${T}, ${CELL_H}px)`;
  const axes = el("div", {className: "axes"});
  axes.append(el("span", {}, `${across} →`), el("span", {}, `${down} ↓`));
  box.appendChild(axes);
  tokens.forEach((t, j) => box.appendChild(el("div", {className: "key", title: label(j)}, CELL_W >= 12 ? label(j) : "")));
  if (toSpecial) box.appendChild(el("div", {className: "key to-special"}, "to special tokens"));
  for (let i = 0; i < T; i++) {
    box.appendChild(el("div", {className: "query", title: label(i)}, label(i)));
    for (let j = 0; j < T; j++) {
      const hidden = masked(i, j), w = values[i][j];
      const cell = el("div", {className: hidden ? "cell masked" : "cell", role: "gridcell"}, NUMBERS_IN_CELLS && !hidden ? w.toFixed(2) : "");
      cell.dataset.query = String(i); cell.dataset.key = String(j);
      if (!hidden) { cell.style.background = viridis(w); cell.style.color = w > 0.55 ? "#000" : "#fff"; }
      cell.addEventListener("mouseenter", () => { tip.textContent = describe(i, j); });
      box.appendChild(cell);
    }
    if (toSpecial) {
      const w = toSpecial[i], cell = el("div", {className: "cell to-special", role: "gridcell"}, w.toFixed(2));
      cell.style.background = viridis(w); cell.style.color = w > 0.55 ? "#000" : "#fff";
      cell.addEventListener("mouseenter", () => { tip.textContent = `${label(i)}: ${w.toFixed(4)} of its weight on the special tokens left out`; });
      box.appendChild(cell);
    }
  }
  tip.textContent = "";
}

// a head opened from the grid: shown, and scrolled to where it is drawn (below a big grid, out of view)
function openHead(l, h) {
  choose(l, h);
  document.getElementById("head-title").scrollIntoView({block: "start"});
}

function choose(l, h) {
  layerSelect.value = String(l); headSelect.value = String(h);
  grid.querySelectorAll(".thumb.selected").forEach((t) => t.classList.remove("selected"));
  grid.querySelector(`.thumb[data-layer="${l}"][data-head="${h}"]`).classList.add("selected");
  const head = record.layers[l].heads[h], p = head.patterns;
  document.getElementById("head-title").textContent =
    `Layer ${l}, head ${h}: ${p.label}` + (p.share === null ? "" : ` (${p.share.toFixed(2)})`) +
    ` · ${p.entropy_bits.toFixed(2)} bits · mean distance ${p.distance.toFixed(2)} tokens`;
  drawMatrix(document.getElementById("heatmap"), document.getElementById("tooltip"), head.weights,
    (i, j) => head.scores[i][j] === null,
    (i, j) => `layer ${l}, head ${h}: query ${label(i)} → key ${label(j)}: score ${fmt(head.scores[i][j])}, weight ${fmt(head.scores[i][j] === null ? null : head.weights[i][j])}`,
    "key", "query", head.to_special);
  drawLines(head);
  const rolled = record.rollout[l];
  document.getElementById("rollout-title").textContent = `Attention rollout through layer ${l}`;
  drawMatrix(document.getElementById("rollout"), document.getElementById("rollout-tip"), rolled,
    (i, j) => m.architecture === "gpt2" && j > i,
    (i, j) => `rollout through layer ${l}: ${label(i)} draws ${rolled[i][j].toFixed(4)} on input ${label(j)}`,
    "input token", "token", record.rollout_to_special ? record.rollout_to_special[l] : null);
}

choose(0, 0);
document.body.dataset.drawnMs = String(Math.round(performance.now()));  // for the test: how long until all is drawn
</script>
</body>
</html>
"""

"""Inspection -> one self-contained HTML page: a head selector, the weights heatmap with hover details,
the "lines between tokens" view, and the focus steps. Inline CSS and JavaScript, no CDN, no network:
a Content-Security-Policy of ``default-src 'none'`` makes the browser refuse any request the page
might try. The data is an ``attnviz.inspect/1`` record (the fields the page shows, as ``--fields``
would keep them), embedded as JSON and only ever put into the page as text (``textContent``), never
as markup.
"""

from __future__ import annotations

import html
import re

from .render_json import dumps, inspection_record
from .results import Inspection

PAGE_FIELDS = ("sentence", "tokens", "config", "scores", "weights", "focus")  # what the page shows


def _embedded_json(inspection: Inspection) -> str:
    """The record's fields the page shows, as JSON that is safe inside <script>."""
    return script_json(inspection_record(inspection, PAGE_FIELDS))


def script_json(record: dict) -> str:
    """``record`` as JSON that is safe inside <script>: '<' is escaped, so '</script>' cannot occur."""
    data = dumps(record).decode("utf-8").rstrip("\n")
    return data.replace("<", "\\u003c").replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def inspection_html(inspection: Inspection) -> str:
    """The whole page."""
    sentence = " ".join(inspection.sentence.split())
    return page(_TEMPLATE, f"attnviz: {sentence[:80]}", _embedded_json(inspection))


def page(template: str, title: str, data: str) -> str:
    """A page from its template: the shared head (``{{PAGE_HEAD}}``, with ``title``), the shared
    script (``{{COMMON_JS}}``) and the data (``{{DATA}}``, JSON made safe by :func:`script_json`), put in
    one pass over the template alone: a marker inside the title or the data (untrusted text) stays text."""
    parts = {"PAGE_HEAD": PAGE_HEAD.replace("{{TITLE}}", html.escape(title)), "DATA": data, "COMMON_JS": COMMON_JS}
    return MARKERS.sub(lambda marker: parts[marker[1]], template)


MARKERS = re.compile(r"\{\{(PAGE_HEAD|DATA|COMMON_JS)\}\}")  # where a template's parts go


# What every page's script starts with: the viridis colour scale, an element maker that only ever sets
# text (never markup), and the way a number or a masked (null) entry is written.
COMMON_JS = """const VIRIDIS = [[68,1,84],[72,40,120],[62,73,137],[49,104,142],[38,130,142],[31,158,137],[53,183,121],[110,206,88],[181,222,43],[253,231,37]];
function viridis(w) {
  const x = Math.min(1, Math.max(0, w)) * (VIRIDIS.length - 1), i = Math.min(VIRIDIS.length - 2, Math.floor(x)), f = x - i;
  const c = VIRIDIS[i].map((v, k) => Math.round(v + f * (VIRIDIS[i + 1][k] - v)));
  return `rgb(${c[0]},${c[1]},${c[2]})`;
}
function el(tag, props, text) {
  const node = document.createElement(tag);
  Object.assign(node, props || {});
  if (text !== undefined) node.textContent = text;
  return node;
}
const fmt = (x) => x === null ? "masked" : x.toFixed(4);
function drawLines(head) {
  // one head's weights as lines from each query (left) to its keys (right), into #lines and #lines-caption
  const svg = document.getElementById("lines"), NS = "http://www.w3.org/2000/svg";
  const row = Math.max(8, Math.min(22, Math.floor(1400 / T))), left = 150, right = 470, height = T * row + 10;
  svg.replaceChildren();
  svg.setAttribute("width", "620"); svg.setAttribute("height", String(height));
  svg.style.fontSize = `${Math.max(7, Math.min(12, row - 2))}px`;
  document.getElementById("lines-caption").textContent =
    (LINES_PER_QUERY < T ? `Each query (left) sends a line to its ${LINES_PER_QUERY} strongest keys (right)` : "Each query (left) sends a line to every key (right)") +
    ", as strong as its weight. Hover a token on the left to see only its lines.";
  const lines = [];
  for (let i = 0; i < T; i++) for (const j of strongestKeys(head, i, LINES_PER_QUERY)) {
    const line = document.createElementNS(NS, "line");
    line.setAttribute("x1", String(left + 6)); line.setAttribute("y1", String(i * row + 15));
    line.setAttribute("x2", String(right - 6)); line.setAttribute("y2", String(j * row + 15));
    line.setAttribute("stroke-width", String(0.5 + 4 * head.weights[i][j]));
    line.setAttribute("stroke-opacity", String(Math.max(0.04, head.weights[i][j])));
    line.dataset.query = String(i); line.dataset.key = String(j);
    svg.appendChild(line); lines.push(line);
  }
  function text(x, y, anchor, content, query) {
    const node = document.createElementNS(NS, "text");
    node.setAttribute("x", String(x)); node.setAttribute("y", String(y)); node.setAttribute("text-anchor", anchor);
    node.textContent = content;
    if (query !== undefined) {
      node.addEventListener("mouseenter", () => {
        node.classList.add("on");
        lines.forEach((l) => l.style.display = l.dataset.query === String(query) ? "" : "none");
      });
      node.addEventListener("mouseleave", () => { node.classList.remove("on"); lines.forEach((l) => l.style.display = ""); });
    }
    svg.appendChild(node);
  }
  tokens.forEach((t, i) => { text(left, i * row + 19, "end", label(i), i); text(right, i * row + 19, "start", label(i)); });
}

function strongestKeys(head, i, count) {
  // the unmasked keys of query i, the `count` strongest (all of them when count >= T), ties to the earlier
  const keys = [...Array(T).keys()].filter((j) => head.scores[i][j] !== null);
  if (count >= keys.length) return keys;
  return keys.sort((a, b) => head.weights[i][b] - head.weights[i][a] || a - b).slice(0, count);
}
"""

# The start of every page, to its first style rule of its own: a Content-Security-Policy that lets the
# page make no request, and the shared styles.
PAGE_HEAD = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; script-src 'unsafe-inline'">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="attnviz">
<title>{{TITLE}}</title>
<style>
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.5rem; color: #1b1b1b; }
  h1 { font-size: 1.2rem; margin: 0 0 .25rem; } h2 { font-size: 1rem; margin: 1.5rem 0 .5rem; }
"""


_TEMPLATE = """{{PAGE_HEAD}}  #sentence { font-size: 1.1rem; margin: .25rem 0; } #config { color: #555; margin: 0 0 1rem; }
  .controls { display: flex; gap: 1rem; align-items: center; }
  #heatmap { display: grid; gap: 1px; width: max-content; font-size: 12px; }
  #heatmap .key, #heatmap .query { color: #333; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; max-width: 8rem; }
  #heatmap .key { writing-mode: vertical-rl; transform: rotate(180deg); text-align: left; padding-bottom: 2px; max-width: none; max-height: 8rem; }
  #heatmap .query { text-align: right; padding-right: 4px; align-self: center; }  /* level with its row's cells */
  #heatmap .axes { display: flex; flex-direction: column; justify-content: flex-end; align-items: flex-end; padding: 0 4px 2px 0; color: #555; font-style: italic; }
  #heatmap .cell { display: flex; align-items: center; justify-content: center; font-size: 10px; cursor: crosshair; }
  #heatmap .cell.masked { background: repeating-linear-gradient(45deg, #eee, #eee 3px, #d9d9d9 3px, #d9d9d9 6px); color: #888; }
  #heatmap .cell:hover, #heatmap .cell.active { outline: 2px solid #e4572e; }
  #tooltip { min-height: 1.5em; margin: .5rem 0; font-variant-numeric: tabular-nums; }
  #lines text { cursor: pointer; } #lines text.on { font-weight: bold; fill: #e4572e; }
  #lines line { stroke: #3b528b; }
  table.focus { border-collapse: collapse; font-variant-numeric: tabular-nums; margin-bottom: 1rem; }
  table.focus td, table.focus th { padding: 2px 8px; text-align: right; } table.focus td:first-child { text-align: left; }
  .bar { display: inline-block; height: 10px; background: #21918c; vertical-align: middle; }
  footer { margin-top: 2rem; color: #777; font-size: 12px; }
</style>
</head>
<body>
<h1>attnviz</h1>
<p id="sentence"></p>
<p id="config"></p>
<div class="controls"><label>Head <select id="head"></select></label><span>hover a cell for its numbers, or focus the grid and use the arrow keys</span></div>
<h2 id="weights-title">Weights (softmax of the scores; rows sum to 1)</h2>
<div id="heatmap" role="grid" aria-label="attention weights" tabindex="0"></div>
<div id="tooltip" role="status" aria-live="polite"></div>
<h2>Lines between tokens</h2>
<p id="lines-caption"></p>
<svg id="lines" role="img" aria-label="attention as lines between tokens"></svg>
<section id="focus-section" hidden><h2>Focus, step by step</h2><div id="focus"></div></section>
<footer>Made by attnviz. The numbers are an attnviz.inspect/1 record (the fields shown here), embedded in this page: view source.</footer>
<script type="application/json" id="data">{{DATA}}</script>
<script>
"use strict";
const record = JSON.parse(document.getElementById("data").textContent);
const tokens = record.tokens, T = tokens.length;
{{COMMON_JS}}// Long inputs get smaller cells, without numbers in them (hover or the arrow keys still give them all),
// and keep only each query's strongest lines, so a paragraph stays a picture rather than a wall.
const CELL_W = Math.max(8, Math.min(34, Math.floor(900 / T))), CELL_H = Math.max(8, Math.min(26, Math.floor(700 / T)));
const LABEL_PX = Math.max(7, Math.min(12, CELL_H - 1)), NUMBERS_IN_CELLS = CELL_W >= 30;
const LINES_PER_QUERY = T > 60 ? 3 : T;
const label = (i) => `${i} ${tokens[i]}`;

document.getElementById("sentence").textContent = record.sentence;
const c = record.config;
const headsShown = c.layer_heads === undefined ? `${c.heads} head${c.heads > 1 ? "s" : ""}` : `head ${c.first_head} of ${c.layer_heads}`;
document.getElementById("config").textContent =
  `${headsShown} · d_k ${c.d_k} · ${c.scale ? "scaled by 1/√d_k" : "unscaled"}${c.causal ? " · causal" : ""}` +
  ` · projections ${c.projections}${c.seed === null ? "" : " (seed " + c.seed + ")"} · ${c.vectors.name} (${c.vectors.dim}d)` +
  (c.weighting === "norm" ? " · weights value-weighted (Kobayashi et al. 2020)" : "");
if (c.weighting === "norm") {
  document.getElementById("weights-title").textContent = "Weights (value-weighted, Kobayashi et al. 2020: each times the norm of the vector its head moves, rows renormalised to sum to 1)";
}
const select = document.getElementById("head");
const ofHeads = c.layer_heads ?? record.heads.length;  // a model's --head keeps its number in its layer
record.heads.forEach((h, i) => select.appendChild(el("option", {value: String(i)}, `${h.head} of ${ofHeads}`)));

function drawHeatmap(h) {
  const head = record.heads[h], grid = document.getElementById("heatmap"), tip = document.getElementById("tooltip");
  grid.replaceChildren();
  grid.style.gridTemplateColumns = `auto repeat(${T}, ${CELL_W}px)`;
  grid.style.gridTemplateRows = `auto repeat(${T}, ${CELL_H}px)`;  // the key labels' row as tall as they need
  grid.style.fontSize = `${LABEL_PX}px`;
  const axes = el("div", {className: "axes"});  // the corner names both axes, as the figures do
  axes.append(el("span", {}, "key →"), el("span", {}, "query ↓"));
  grid.appendChild(axes);
  tokens.forEach((t, j) => grid.appendChild(el("div", {className: "key", title: label(j)}, CELL_W >= 12 ? label(j) : "")));
  for (let i = 0; i < T; i++) {
    grid.appendChild(el("div", {className: "query", title: label(i)}, label(i)));
    for (let j = 0; j < T; j++) {
      const score = head.scores[i][j], weight = head.weights[i][j];
      const shown = !NUMBERS_IN_CELLS ? "" : score === null ? "×" : weight.toFixed(2);
      const cell = el("div", {className: score === null ? "cell masked" : "cell", role: "gridcell"}, shown);
      cell.dataset.query = String(i); cell.dataset.key = String(j);
      if (score !== null) { cell.style.background = viridis(weight); cell.style.color = weight > 0.55 ? "#000" : "#fff"; }
      cell.addEventListener("mouseenter", () => show(h, i, j));
      grid.appendChild(cell);
    }
  }
  tip.textContent = "";
  if (active) {
    grid.querySelector(`.cell[data-query="${active[0]}"][data-key="${active[1]}"]`).classList.add("active");
    show(h, active[0], active[1]);
  }
}

let active = null;  // [query, key] of the cell chosen with the keyboard
function show(h, i, j) {
  const head = record.heads[h], score = head.scores[i][j], weight = head.weights[i][j];
  document.getElementById("tooltip").textContent =
    `head ${head.head}: query ${label(i)} → key ${label(j)}: score ${fmt(score)}, weight ${fmt(score === null ? null : weight)}`;
}
const heatmap = document.getElementById("heatmap");
heatmap.addEventListener("keydown", (event) => {
  const moves = {ArrowUp: [-1, 0], ArrowDown: [1, 0], ArrowLeft: [0, -1], ArrowRight: [0, 1]};
  if (!(event.key in moves)) return;
  event.preventDefault();
  const [di, dj] = moves[event.key];
  active = active ? [Math.min(T - 1, Math.max(0, active[0] + di)), Math.min(T - 1, Math.max(0, active[1] + dj))] : [0, 0];
  heatmap.querySelectorAll(".cell.active").forEach((c) => c.classList.remove("active"));
  heatmap.querySelector(`.cell[data-query="${active[0]}"][data-key="${active[1]}"]`).classList.add("active");
  show(Number(select.value), active[0], active[1]);
});

function drawFocus(h) {
  const section = document.getElementById("focus-section"), box = document.getElementById("focus");
  if (!record.focus || record.focus.length === 0) return;
  section.hidden = false;
  box.replaceChildren();
  record.focus.forEach((f) => {
    const step = f.heads[h];
    box.appendChild(el("p", {}, `query ${f.position} '${f.token}', head ${record.heads[h].head}: q·k for every key, then the scores that enter the softmax, the weights, and the output (the weighted sum of the values)`));
    const table = el("table", {className: "focus"});
    const head = el("tr");
    ["key", "q·k", "score", "weight", ""].forEach((name) => head.appendChild(el("th", {}, name)));
    table.appendChild(head);
    tokens.forEach((t, j) => {
      const tr = el("tr");
      tr.appendChild(el("td", {}, label(j)));
      tr.appendChild(el("td", {}, step.dots[j].toFixed(3)));
      tr.appendChild(el("td", {}, fmt(step.scores[j])));
      tr.appendChild(el("td", {}, step.scores[j] === null ? "masked" : step.weights[j].toFixed(4)));
      const bar = el("span", {className: "bar"}); bar.style.width = `${Math.round(120 * step.weights[j])}px`;
      const cell = el("td"); cell.appendChild(bar); tr.appendChild(cell);
      table.appendChild(tr);
    });
    box.appendChild(table);
    box.appendChild(el("p", {className: "output"}, "output: [" + step.output.map((v) => v.toFixed(3)).join(", ") + "]"));
  });
}

function draw() { const h = Number(select.value); drawHeatmap(h); drawLines(record.heads[h]); drawFocus(h); }
select.addEventListener("change", draw);
draw();
</script>
</body>
</html>
"""

"""``attn generate --save page.html``: the prompt and the text made, each new token clickable to colour the
tokens before it by the weight it gave them (the mean over the kept layers and heads, or one of each),
with its five most likely tokens. As every page attnviz writes: inline CSS and script,
``default-src 'none'``, the ``attnviz.generate/1`` record embedded as JSON and only ever put into the
page as text."""

from __future__ import annotations

from typing import Any

import numpy as np

from .render_html import page, script_json

DECIMALS = 4  # the weights the page holds: fewer digits, a smaller page (SmolLM2's 270 heads per token)


def generate_page(record: dict[str, Any], labels: list[str]) -> str:
    """The whole page of a :func:`~.render_generate.run_record`; ``labels``: each position's text."""
    tokens = [{**t, "attention": np.round(t["attention"], DECIMALS)} for t in record["tokens"]]
    data = script_json({**record, "tokens": tokens, "labels": labels})
    return page(_TEMPLATE, f"attnviz generate: {record['prompt'][:80]}", data)


_TEMPLATE = """{{PAGE_HEAD}}
  #what, p.note { color: #555; max-width: 60rem; }
  #controls { margin: .5rem 0; } #controls label { margin-right: 1rem; }
  #text { font: 15px/2 ui-monospace, SFMono-Regular, Menlo, monospace; white-space: pre-wrap; max-width: 60rem; }
  .tok { padding: 1px 0; border-radius: 2px; }
  .tok.new { font-weight: 600; cursor: pointer; border-bottom: 2px solid #4c78a8; }
  .tok.chosen { outline: 2px solid #e45756; }
  #details table { border-collapse: collapse; margin-top: .25rem; }
  #details td, #details th { padding: .1rem .6rem; text-align: left; font-size: 13px; }
  #details td.n { text-align: right; font-variant-numeric: tabular-nums; }
</style>
</head>
<body>
<h1 id="title"></h1>
<p id="what"></p>
<div id="controls">
  <label>layer <select id="layer"></select></label>
  <label>head <select id="head"></select></label>
  <label><input type="checkbox" id="skip"> colour without the first token (the sink)</label>
</div>
<div id="text"></div>
<div id="details"><p class="note">Click a new token (underlined) to colour the tokens before it by the attention of the query that chose it.</p></div>
<script type="application/json" id="data">{{DATA}}</script>
<script>
{{COMMON_JS}}
const data = JSON.parse(document.getElementById("data").textContent);
const model = data.config.model, P = data.prompt_tokens.length, labels = data.labels;
document.getElementById("title").textContent = `${model.name}: ${data.tokens.length} new tokens`;
document.getElementById("what").textContent =
  `${model.architecture}, ${model.layers} layers × ${model.heads} heads · ` +
  (data.config.temperature ? `sampled at temperature ${data.config.temperature}` + (data.config.top_k ? ` from the top ${data.config.top_k}` : "") + `, seed ${data.config.seed}` : "greedy") +
  ` · stopped: ${data.stopped}`;
const kept = data.tokens.length ? data.tokens[0] : {layers: [], heads: []};
function options(select, names) {
  select.append(el("option", {value: "mean"}, "mean"));
  names.forEach((n, i) => select.append(el("option", {value: String(i)}, String(n))));
}
options(document.getElementById("layer"), kept.layers);
options(document.getElementById("head"), kept.heads);
const spans = labels.map((t, i) => {
  const span = el("span", {className: i < P ? "tok" : "tok new"}, t);
  if (i >= P) span.addEventListener("click", () => choose(i - P));
  document.getElementById("text").append(span);
  return span;
});
let chosen = null;
function row(token) {
  // the weights over the positions before the token: the mean over the chosen layers and heads (null where masked counts 0)
  const layer = document.getElementById("layer").value, head = document.getElementById("head").value;
  const layers = layer === "mean" ? token.attention.map((_, i) => i) : [Number(layer)];
  const heads = head === "mean" ? token.heads.map((_, i) => i) : [Number(head)];
  const out = new Array(token.position).fill(0);
  for (const l of layers) for (const h of heads) token.attention[l][h].forEach((w, p) => { out[p] += (w || 0) / (layers.length * heads.length); });
  return out;
}
function choose(index) {
  chosen = index;
  const token = data.tokens[index], weights = row(token);
  const skip = document.getElementById("skip").checked;
  const top = Math.max(1e-9, ...weights.filter((_, p) => !(skip && p === 0)));
  spans.forEach((span, p) => {
    span.classList.toggle("chosen", p === token.position);
    if (p < token.position && !(skip && p === 0)) {
      const w = weights[p] / top;
      span.style.background = viridis(w);
      span.style.color = w > 0.6 ? "#1b1b1b" : "#fff";
      span.title = `weight ${fmt(weights[p])}`;
    } else { span.style.background = ""; span.style.color = ""; span.title = ""; }
  });
  const details = document.getElementById("details");
  details.replaceChildren(el("h2", {}, `New token ${index + 1}: ${JSON.stringify(token.text)} (${JSON.stringify(token.token)}, id ${token.id}, position ${token.position})`));
  const table = el("table");
  table.append(el("tr", {}, ""));
  table.firstChild.append(el("th", {}, "most likely"), el("th", {}, "logit"), el("th", {}, "probability"));
  for (const t of token.top) {
    const tr = el("tr");
    tr.append(el("td", {}, JSON.stringify(t.text)), el("td", {className: "n"}, t.logit.toFixed(3)), el("td", {className: "n"}, t.probability.toFixed(4)));
    table.append(tr);
  }
  const order = weights.map((w, p) => p).filter((p) => !(skip && p === 0)).sort((a, b) => weights[b] - weights[a] || a - b).slice(0, 5);
  details.append(table, el("p", {}, "Looked at most: " + order.map((p) => `${JSON.stringify(labels[p])} ${weights[p].toFixed(3)}`).join(" · ")));
}
for (const id of ["layer", "head", "skip"]) document.getElementById(id).addEventListener("change", () => { if (chosen !== null) choose(chosen); });
if (data.tokens.length) choose(0);
</script>
</body>
</html>
"""

"""``attn heads --save grid.html``: a corpus's layer x head grid as one self-contained page. Each cell
is a head: its label and the share behind it, coloured by the label; hovering shows every mean. As every
page attnviz writes: inline CSS and script, ``default-src 'none'``, the ``attnviz.heads/1`` record
embedded as JSON and only ever put into the page as text."""

from __future__ import annotations

from typing import Any

from .render_figure import LABEL_COLOURS
from .render_head_grid import inputs_text
from .render_html import page, script_json


def heads_page_html(record: dict[str, Any]) -> str:
    """The whole page of a :func:`~.render_model_json.heads_record`."""
    data = script_json({**record, "colours": LABEL_COLOURS, "inputs_text": inputs_text(record)})
    return page(_TEMPLATE, f"attnviz heads: {record['config']['model']['name']}", data)


_TEMPLATE = """{{PAGE_HEAD}}
  table { border-collapse: collapse; }
  th, td { padding: 0; text-align: center; font-size: 12px; }
  th { font-weight: 600; color: #555; padding: 0 .4rem; }
  td.head { width: 4.2rem; height: 2.6rem; border: 1px solid #fff; color: #fff; line-height: 1.2; }
  td.head.broad { color: #1b1b1b; }
  .legend span { display: inline-block; padding: .1rem .5rem; margin: 0 .3rem .3rem 0; color: #fff; font-size: 12px; }
  .legend span.broad { color: #1b1b1b; }
  p.note { color: #555; max-width: 60rem; }
</style>
</head>
<body>
<h1 id="title"></h1>
<p id="what"></p>
<p id="choose" hidden><label>Show <select id="show"></select></label></p>
<div class="legend" id="legend"></div>
<table id="grid"></table>
<p class="note">Each cell is a head: the pattern its weights follow over the corpus (the token before or after,
itself, the first or last token, punctuation; else broad or other), and the share of weight behind it.
Hover a cell for every mean. With --probe, Show picks a probe: each cell is then the head's score
(TransformerLens' head detector: the share of its weight, outside the first token, on the keys the probe names).</p>
<script type="application/json" id="data">{{DATA}}</script>
<script>
{{COMMON_JS}}
const data = JSON.parse(document.getElementById("data").textContent);
const model = data.config.model;
document.getElementById("title").textContent = `Heads of ${model.name}`;
document.getElementById("what").textContent =
  `${model.architecture}, ${model.layers} layers × ${model.heads} heads · ${data.inputs_text}`;
const probes = data.probes || [];
function draw(what) {
  const legend = document.getElementById("legend");
  legend.replaceChildren();
  if (what === "labels") {
    for (const label of Object.keys(data.colours)) {
      if (!data.heads.some((h) => h.label === label)) continue;
      const chip = el("span", {className: label}, label);
      chip.style.background = data.colours[label];
      legend.append(chip);
    }
  }
  const grid = document.getElementById("grid");
  grid.replaceChildren();
  const header = el("tr");
  header.append(el("th", {}, "layer \\\\ head"));
  for (let h = 0; h < model.heads; h++) header.append(el("th", {}, String(h)));
  grid.append(header);
  for (let i = 0; i < model.layers; i++) {
    const row = el("tr");
    row.append(el("th", {}, String(i)));
    for (const entry of data.heads.filter((e) => e.layer === i)) {
      const shares = Object.entries(entry.shares).map(([k, v]) => `${k} ${v.toFixed(3)}`).join(", ");
      const scores = probes.map((p) => `${p} ${entry.scores[p].toFixed(3)}`).join(", ");
      let cell;
      if (what === "labels") {
        cell = el("td", {className: `head ${entry.label}`});
        cell.style.background = data.colours[entry.label];
        cell.append(el("div", {}, entry.label), el("div", {}, entry.share === null ? "" : entry.share.toFixed(2)));
      } else {
        const score = entry.scores[what];
        cell = el("td", {className: "head"});
        cell.style.background = viridis(score);
        cell.style.color = score > 0.6 ? "#1b1b1b" : "#fff";
        cell.append(el("div", {}, what), el("div", {}, score.toFixed(2)));
      }
      cell.title = `layer ${i}, head ${entry.head}: ${entry.label}\\n${shares}\\nentropy ${entry.entropy_bits.toFixed(2)} bits, spread ${entry.spread.toFixed(2)}, distance ${entry.distance.toFixed(2)}` +
        (scores ? `\\n${scores}` : "");
      row.append(cell);
    }
    grid.append(row);
  }
}
const show = document.getElementById("show");
for (const what of [...probes, "labels"]) show.append(el("option", {value: what}, what));
document.getElementById("choose").hidden = probes.length === 0;
show.addEventListener("change", () => draw(show.value));
draw(probes.length ? probes[0] : "labels");
</script>
</body>
</html>
"""

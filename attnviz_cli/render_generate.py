"""``attn generate``'s output: the ``attnviz.generate/1`` records (one per new token for JSON Lines, the
whole run for JSON) and the terminal's lines, a token at a time. They format what
:mod:`.models.generate` computed; Rich is never imported (the lines are written as each token comes)."""

from __future__ import annotations

import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .analysis import top_keys
from .core import softmax
from .errors import printable
from .models.generate import NewToken, looked, most_looked

if TYPE_CHECKING:
    from .models import ModelConfig

GENERATE_SCHEMA = "attnviz.generate/1"
TOP_LOGITS = 5  # each record's most likely tokens
LOOKED = 3  # the positions a token looked at most, listed
LINE = 80  # cells a token's line takes, at most, while its numbers have at most 3 digits
TOKEN_CELLS = 14  # a new token's text, quoted, on its line


@dataclass(frozen=True, slots=True)
class View:
    """What of each token's attention is shown: the layers and heads kept (None: all; where it looked is
    then their mean) and whether the first token (the sink) is left out of the ranking."""

    layer: int | None = None
    head: int | None = None
    skip_first: bool = False

    def layers(self, config: ModelConfig) -> list[int]:
        return list(range(config.layers)) if self.layer is None else [self.layer]

    def heads(self, config: ModelConfig) -> list[int]:
        return list(range(config.heads)) if self.head is None else [self.head]

    def described(self, config: ModelConfig) -> str:
        if self.layer is not None and self.head is not None:
            which = f"layer {self.layer}, head {self.head}"
        elif self.layer is not None:
            which = f"mean of layer {self.layer}'s {config.heads} heads"
        elif self.head is not None:
            which = f"mean of head {self.head} in {config.layers} layers"
        else:
            which = f"mean of {config.layers} layers × {config.heads} heads"
        return which + (", first token left out" if self.skip_first else "")


def token_record(new: NewToken, labels: Sequence[str], config: ModelConfig, view: View, tokenizer: Any) -> dict[str, Any]:
    """One new token's record: its piece, id and text; its logits' top 5 (piece, id, text alone) with their probabilities (the
    softmax of the logits at temperature 1 over the whole vocabulary, the model's own distribution, whatever
    --temperature and --top-k drew from); where it looked most (``looked``, as the terminal lists it, each
    position's text from ``labels``); and every kept layer's and head's attention over the ``position``
    tokens before it (null where a window masked a key)."""
    step, layers, heads = new.step, view.layers(config), view.heads(config)
    probabilities = softmax(step.logits.astype(np.float64))
    top = top_keys(step.logits, TOP_LOGITS)
    row = looked(step.weights, view.layer, view.head)
    kept = step.weights[np.ix_(layers, heads)]  # (layers, heads, position)
    attention = np.where(np.isinf(step.scores[np.ix_(layers, heads)]), np.nan, kept)  # orjson writes NaN as null
    return {
        "schema": GENERATE_SCHEMA,
        "index": new.index,
        "position": new.position,
        "token": new.token,
        "id": new.id,
        "text": new.text,
        "top": [
            {"id": int(i), "token": tokenizer.id_to_token(int(i)) or "", "text": tokenizer.decode([int(i)], skip_special_tokens=False),
             "logit": float(step.logits[i]), "probability": float(probabilities[i])}
            for i in top
        ],
        "looked": [{"position": p, "token": labels[p], "weight": float(row[p])} for p in most_looked(row, LOOKED, view.skip_first)],
        "layers": layers,
        "heads": heads,
        "attention": attention,
    }


def run_record(prompt: str, prompt_ids: Sequence[int], prompt_tokens: Sequence[str], records: list[dict[str, Any]], stopped: str | None,
               config: ModelConfig, settings: dict[str, Any]) -> dict[str, Any]:
    """The whole run (``-f json``): the prompt as run, its tokens, the text made, why it stopped, the
    settings, and each new token's record (without its schema key, which the run's says)."""
    from .render_model_json import config_record

    return {
        "schema": GENERATE_SCHEMA,
        "prompt": prompt,
        "prompt_tokens": list(prompt_tokens),
        "prompt_ids": [int(i) for i in prompt_ids],
        "text": "".join(r["text"] for r in records),
        "stopped": stopped,
        "config": {"model": config_record(config), **settings},
        "tokens": [{k: v for k, v in r.items() if k != "schema"} for r in records],
    }


def shown(text: str, width: int) -> str:
    """A token's text for the terminal: escaped as :func:`~attnviz_cli.errors.printable` escapes all
    text (a control as \\xNN), in quotes so that its spaces show, cut to ``width`` cells with an
    ellipsis (never inside an escape; a wide character takes two cells)."""
    pieces = [printable(c) for c in text]  # each character as shown, escapes whole
    if sum(map(cells, pieces)) + 2 > width:
        kept, room = [], width - 3  # the quotes and the ellipsis
        for piece in pieces:
            if cells(piece) > room:
                break
            kept.append(piece)
            room -= cells(piece)
        pieces = [*kept, "…"]
    return "'" + "".join(pieces) + "'"


def cells(text: str) -> int:
    """The terminal cells ``text`` (printable) takes: two for a wide character (East Asian wide or full
    width: CJK, most emoji), none for a combining mark, one for the others."""
    return sum(0 if unicodedata.combining(c) else 2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def header_lines(prompt_tokens: Sequence[str], config: ModelConfig, view: View) -> str:
    """The lines before the tokens: the prompt's tokens and what the columns show."""
    return (f"prompt: {len(prompt_tokens)} tokens; model: {printable(Path(config.name).name or config.name)}\n"
            f"where each token looked: {view.described(config)}\n"
            f"{'#':>3}  {'new token':<14}  looked at most (position:token weight)\n")


def token_line(new: NewToken, labels: Sequence[str], view: View, last: int | None = None) -> str:
    """One new token's line: its number, its text, and the (up to 3) positions it looked at most, each with
    its token and weight; 80 cells while numbers and positions have at most 3 digits (the tokens' texts
    are cut to fit the positions' digits; past 3, a line grows by a cell a digit). ``last``: the last
    position any line of the run can look at, so that every line cuts its texts alike (else this one's)."""
    row = looked(new.step.weights, view.layer, view.head)
    digits = len(str(new.position - 1 if last is None else last))
    before = len("  3  ") + TOKEN_CELLS + len("  ")  # the number and the new token
    room = max(6, (LINE - before - len("  ") * (LOOKED - 1)) // LOOKED - digits - len(": 0.00"))  # each looked-at token's text
    places = "  ".join(f"{p}:{shown(labels[p], room)} {row[p]:.2f}" for p in most_looked(row, LOOKED, view.skip_first))
    token = shown(new.text or new.token, TOKEN_CELLS)
    return f"{new.index + 1:>3}  {token}{' ' * (TOKEN_CELLS - cells(token))}  {places}\n"


def text_line(text: str) -> str:
    """The text made (after the prompt, or the reply alone with --chat), escaped line by line: its newlines kept."""
    return "text: " + "\n".join(printable(line) for line in text.split("\n")) + "\n"

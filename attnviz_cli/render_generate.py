"""``attn generate``'s output: the ``attnviz.generate/1`` records (one per new token for JSON Lines, the
whole run for JSON) and the terminal's lines, a token at a time. They format what
:mod:`.models.generate` computed; Rich is never imported (the lines are written as each token comes)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import printable
from .models.generate import NewToken, looked, most_looked

if TYPE_CHECKING:
    from .models import ModelConfig

GENERATE_SCHEMA = "attnviz.generate/1"
TOP_LOGITS = 5  # each record's most likely tokens
LOOKED = 3  # the positions a token looked at most, listed


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
            which = f"mean of {config.layers} layers x {config.heads} heads"
        return which + (", first token left out" if self.skip_first else "")


def token_record(new: NewToken, labels: Sequence[str], config: ModelConfig, view: View, tokenizer: Any) -> dict[str, Any]:
    """One new token's record: its piece, id and text; its logits' top 5 with their probabilities; where
    it looked most (``looked``, as the terminal lists it, each position's text from ``labels``); and every kept layer's and head's attention
    over the ``position`` tokens before it (null where a window masked a key)."""
    step, layers, heads = new.step, view.layers(config), view.heads(config)
    logits = step.logits.astype(np.float64)
    probabilities = np.exp(logits - logits.max())
    probabilities /= probabilities.sum()
    top = np.argsort(-logits, kind="stable")[:TOP_LOGITS]
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
        "top": [{"id": int(i), "token": tokenizer.id_to_token(int(i)) or "", "logit": float(step.logits[i]), "probability": float(probabilities[i])} for i in top],
        "looked": [{"position": p, "token": labels[p], "weight": float(row[p])} for p in most_looked(row, LOOKED, view.skip_first)],
        "layers": layers,
        "heads": heads,
        "attention": attention,
    }


def run_record(prompt: str, prompt_ids: Sequence[int], prompt_tokens: Sequence[str], records: list[dict[str, Any]], stopped: str,
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
    """A token's text for the terminal: escaped (controls as \\xNN, a newline as \\n, a backslash
    doubled), in quotes so that its spaces show, cut to ``width`` characters with an ellipsis (never
    inside an escape)."""
    pieces = ["\\n" if c == "\n" else "\\\\" if c == "\\" else printable(c) for c in text]  # each character as shown, escapes whole
    if sum(map(len, pieces)) + 2 > width:
        kept, room = [], width - 3  # the quotes and the ellipsis
        for piece in pieces:
            if len(piece) > room:
                break
            kept.append(piece)
            room -= len(piece)
        pieces = [*kept, "…"]
    return "'" + "".join(pieces) + "'"


def header_lines(prompt_tokens: Sequence[str], config: ModelConfig, view: View) -> str:
    """The lines before the tokens: the prompt's tokens and what the columns show."""
    return (f"prompt: {len(prompt_tokens)} tokens; model: {printable(Path(config.name).name or config.name)}\n"
            f"where each token looked: {view.described(config)}\n"
            f"{'#':>3}  {'new token':<14}  looked at most (position:token weight)\n")


def token_line(new: NewToken, labels: Sequence[str], view: View) -> str:
    """One new token's line: its number, its text, and the (up to 3) positions it looked at most, each with
    its token and weight; 80 columns while positions have at most 3 digits."""
    row = looked(new.step.weights, view.layer, view.head)
    places = "  ".join(f"{p}:{shown(labels[p], 10)} {row[p]:.2f}" for p in most_looked(row, LOOKED, view.skip_first))
    return f"{new.index + 1:>3}  {shown(new.text or new.token, 14):<14}  {places}\n"


def text_line(text: str) -> str:
    """The text made (after the prompt, or the reply alone with --chat), escaped line by line: its newlines kept."""
    return "text: " + "\n".join(printable(line) for line in text.split("\n")) + "\n"

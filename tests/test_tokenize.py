"""The tokenizer splits as GloVe's corpus was split, so that words are found in its vocabulary."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnviz_cli.tokenize import split_by_rules, tokenize

VOCAB = {"mr.", "inc.", "u.s."}


@pytest.mark.parametrize(
    ("sentence", "tokens"),
    [
        ("I sat on the river bank.", ["i", "sat", "on", "the", "river", "bank", "."]),
        ("Don't touch the bank's money!", ["do", "n't", "touch", "the", "bank", "'s", "money", "!"]),
        ("I can't, they won't", ["i", "ca", "n't", ",", "they", "wo", "n't"]),
        ("we're sure you'll see I'm right, they'd say; we've", ["we", "'re", "sure", "you", "'ll", "see", "i", "'m", "right", ",", "they", "'d", "say", ";", "we", "'ve"]),
        ("O'Brien met O'Brien's e-mail", ["o'brien", "met", "o'brien", "'s", "e-mail"]),
        ("It costs $3.5 or 1,000 at 10:30...", ["it", "costs", "$", "3.5", "or", "1,000", "at", "10:30", "..."]),
        ("Mr. Smith of Acme Inc. went to the U.S. today", ["mr.", "smith", "of", "acme", "inc.", "went", "to", "the", "u.s.", "today"]),
        ("I met Mr.", ["i", "met", "mr", "."]),  # a final period ends the sentence
        ("(a) [b] \"c\"", ["(", "a", ")", "[", "b", "]", '"', "c", '"']),
        ("He said “hi” — can’t", ["he", "said", '"', "hi", '"', "—", "ca", "n't"]),
        ("  spaced\tout\nwords  ", ["spaced", "out", "words"]),
        ("", []),
    ],
)
def test_splits_like_the_glove_corpus(sentence, tokens):
    assert tokenize(sentence, vocabulary=VOCAB) == tokens


def test_keeps_case_for_a_cased_vocabulary():
    assert tokenize("Paris isn't London", lowercase=False) == ["Paris", "is", "n't", "London"]


def test_control_and_bidi_characters_never_become_tokens():
    assert tokenize("red\x1b[31m bank\u202e river\x00") == ["red", "[", "31m", "bank", "river"]


def test_every_shipped_word_that_is_one_token_stays_one_token(glove):
    # Words of the vocabulary made only of letters and inner hyphens must survive tokenization whole.
    simple = [w for w in glove.words[:5000] if w.replace("-", "").isalpha()]
    assert len(simple) > 4000
    broken = [w for w in simple if tokenize(w, vocabulary=glove.index) != [w]]
    assert broken == []


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="aBz ", max_size=40) | st.text(alphabet="aBz \t.'-,1é", max_size=40), st.booleans())
def test_the_shortcut_for_plain_words_splits_as_the_rules_do(sentence, lowercase):
    # Sentences of ASCII letters and spaces skip the regular expression; anything else goes through it.
    assert tokenize(sentence, lowercase=lowercase, vocabulary=VOCAB) == split_by_rules(sentence, lowercase=lowercase, vocabulary=VOCAB)


@pytest.mark.parametrize("sentence", ["the river bank", "  The  River bank ", "Bank"])
def test_plain_words_split_at_spaces(sentence):
    assert tokenize(sentence) == sentence.lower().split()

"""Sentence -> tokens, split as GloVe's corpus was (Stanford / Penn Treebank rules), and nothing else.

GloVe 6B's vocabulary holds ``n't``, ``'s``, ``ca`` (of ``can't``), ``u.s.``, ``mr.`` and each punctuation
mark as a word of its own, so a sentence must be split the same way for its words to be found:
``don't`` -> ``do n't``, ``bank's`` -> ``bank 's``, ``U.S.`` -> ``u.s.``, ``bank.`` -> ``bank .``.
"""

from __future__ import annotations

import re
from collections.abc import Container

from .errors import UNSAFE_CHARACTERS

_TOKEN = re.compile(
    r"""
      (?:[^\W\d_]\.){2,}          # abbreviations with inner periods: u.s., e.g., a.m.
    | \d+(?:[.,:/]\d+)+           # numbers with separators: 3.5, 1,000, 10:30, 1/2
    | \w+(?:['-]\w+)*             # words, hyphenated words, o'brien, don't (clitics split below)
    | \.\.\.|--|``|''             # multi-character punctuation
    | [^\w\s]                     # any other mark, one at a time
    """,
    re.VERBOSE,
)
_CLITICS = ("'s", "'re", "'ve", "'m", "'ll", "'d")  # split off as words of their own, as PTB does
_QUOTES = str.maketrans({"\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"'})


def _split_clitic(word: str) -> list[str]:
    """``don't`` -> [``do``, ``n't``]; ``bank's`` -> [``bank``, ``'s``]; ``o'brien`` stays whole."""
    lower = word.lower()
    if lower.endswith("n't") and len(word) > 3:
        return [word[:-3], word[-3:]]
    for clitic in _CLITICS:
        if lower.endswith(clitic) and len(word) > len(clitic):
            return [word[: -len(clitic)], word[-len(clitic) :]]
    return [word]


def tokenize(sentence: str, *, lowercase: bool = True, vocabulary: Container[str] = ()) -> list[str]:
    """The tokens of ``sentence``, lower-cased when the vocabulary is.

    ``vocabulary`` lets a word keep its trailing period where the vocabulary has it as one token
    (``mr.``, ``inc.``), except at the end of the sentence, where the period ends the sentence.
    Control and invisible formatting characters separate tokens and never become one.
    """
    if sentence.isascii() and sentence.replace(" ", "").isalpha():  # plain words: the rules would
        return (sentence.lower() if lowercase else sentence).split()  # split at the spaces alone
    return split_by_rules(sentence, lowercase=lowercase, vocabulary=vocabulary)


def split_by_rules(sentence: str, *, lowercase: bool = True, vocabulary: Container[str] = ()) -> list[str]:
    """:func:`tokenize` by the full rules, with no shortcut for plain words (tests compare the two)."""
    text = UNSAFE_CHARACTERS.sub(" ", sentence.translate(_QUOTES))
    if lowercase:
        text = text.lower()
    words = _TOKEN.findall(text)
    if "." in words[:-1] and vocabulary:
        words = _merge_abbreviations(text, vocabulary)
    tokens: list[str] = []
    for word in words:
        if "'" in word:
            tokens.extend(_split_clitic(word))
        else:
            tokens.append(word)
    return tokens


def _merge_abbreviations(text: str, vocabulary: Container[str]) -> list[str]:
    """The tokens of ``text`` with ``word`` + ``.`` joined where the vocabulary has them as one token
    (``mr.``, ``inc.``) and the period is written right after the word and does not end the sentence."""
    matches = list(_TOKEN.finditer(text))
    words: list[str] = []
    i = 0
    while i < len(matches):
        word = matches[i].group()
        following = matches[i + 1] if i + 1 < len(matches) else None
        if (
            following is not None
            and i + 2 < len(matches)
            and following.group() == "."
            and following.start() == matches[i].end()
            and word + "." in vocabulary
        ):
            words.append(word + ".")
            i += 2
            continue
        words.append(word)
        i += 1
    return words

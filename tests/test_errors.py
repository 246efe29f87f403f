"""Untrusted text is made safe before it reaches a terminal."""

from attnviz_cli.errors import printable, quoted


def test_printable_escapes_controls_and_bidi_but_keeps_unicode():
    assert printable("a\x1b[31mb\x07c\u202ed\u200be — bánk") == "a\\x1b[31mb\\x07c\\u202ed\\u200be — bánk"
    assert printable("tab\there\nnew") == "tab\\x09here\\x0anew"


def test_quoted_keeps_both_ends_of_long_text():
    path = "/very/long/" + "x" * 200 + "/vectors.txt"
    shown = quoted(path, limit=40)
    assert len(shown) == 42 and shown.startswith("'/very/long/") and shown.endswith("/vectors.txt'") and "…" in shown
    assert quoted("short") == "'short'"

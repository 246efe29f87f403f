"""Untrusted text is made safe before it reaches a terminal."""

from attnviz_cli.errors import printable, quoted


def test_printable_escapes_controls_and_bidi_but_keeps_unicode():
    assert printable("a\x1b[31mb\x07c\u202ed\u200be — bánk") == "a\\x1b[31mb\\x07c\\u202ed\\u200be — bánk"
    assert printable("tab\there\nnew") == "tab\\x09here\\x0anew"


def test_quoted_shows_long_text_whole_and_escaped():
    """A message's path is never elided: its middle holds what people need (the model's folder name)."""
    path = "/home/me/.cache/huggingface/hub/models--sentence-transformers--all-MiniLM-L6-v2/snapshots/" + "c" * 40 + "/model.safetensors"
    assert quoted(path) == f"'{path}'"
    assert quoted("/tmp/" + "x" * 300 + "\x1b[2J.txt") == "'/tmp/" + "x" * 300 + "\\x1b[2J.txt'"
    assert quoted("short") == "'short'"

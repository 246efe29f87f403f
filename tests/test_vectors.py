"""Loading embeddings: the shipped default, every gensim-readable format, OOV policies, bad files."""

from __future__ import annotations

import gzip
import hashlib
import json
import pickle

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from attnviz_cli.errors import AttnvizError
from attnviz_cli.loading import load
from attnviz_cli.vector_files import detect_format
from attnviz_cli.vectors import DEFAULT_NAME, default_dir, embed_sentence, embed_tokens

from .conftest import FILE_VECTORS, FILE_WORDS

# ---- the shipped default ---------------------------------------------------------------------------


def test_shipped_files_match_their_recorded_digests():
    folder = default_dir()
    meta = json.loads((folder / f"{DEFAULT_NAME}.json").read_text())
    for name, digest in meta["sha256"].items():
        assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest, name


def test_default_is_glove_6b_50d_as_published(glove):
    assert (glove.name, glove.dim, len(glove.words), glove.vectors.dtype) == (DEFAULT_NAME, 50, 50_000, np.float32)
    assert glove.words[:5] == ["the", ",", ".", "of", "to"]
    # The first values of 'the' and 'bank' in glove.6B.50d.txt, as printed there.
    assert_array_equal(glove.vectors[glove.index["the"], :5], np.float32([0.418, 0.24968, -0.41242, 0.1217, 0.34527]))
    assert_array_equal(glove.vectors[glove.index["bank"], :4], np.float32([0.66488, -0.11391, 0.67844, 0.17951]))
    assert glove.lowercase and glove.subword is None
    assert not glove.vectors.flags.writeable


def test_default_needs_no_gensim():
    import subprocess
    import sys

    code = "import sys; from attnviz_cli.vectors import load_default; load_default(); print('gensim' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout == "False\n"


def test_embedding_a_sentence_looks_up_rows(glove):
    embedded = embed_sentence("The river BANK", glove)
    assert embedded.tokens == ("the", "river", "bank")
    assert_array_equal(embedded.x, glove.vectors[[glove.index[w] for w in ("the", "river", "bank")]])
    assert embedded.x.dtype == np.float32


# ---- OOV policies ----------------------------------------------------------------------------------


def test_skip_drops_unknown_words_and_says_so(tiny):
    embedded = embed_tokens(["river", "zzz", "bank", "qqq"], tiny, oov="skip")
    assert embedded.tokens == ("river", "bank")
    assert [(d.token, d.position, d.reason) for d in embedded.dropped] == [("zzz", 1, "oov"), ("qqq", 3, "oov")]
    assert embedded.notes == ("unknown word 'zzz' (position 1) skipped", "unknown word 'qqq' (position 3) skipped")


def test_zero_gives_unknown_words_a_zero_vector(tiny):
    embedded = embed_tokens(["river", "zzz"], tiny, oov="zero")
    assert embedded.tokens == ("river", "zzz") and embedded.dropped == ()
    assert_array_equal(embedded.x, [[1.0, 0.0], [0.0, 0.0]])


def test_error_names_the_unknown_word(tiny):
    with pytest.raises(AttnvizError, match=r"unknown word 'zzz' at position 1 is not in 'tiny'"):
        embed_tokens(["river", "zzz"], tiny, oov="error")


# ---- files through gensim --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fixture", "fmt"),
    [("glove_txt", "glove"), ("word2vec_txt", "word2vec"), ("word2vec_bin", "word2vec-binary")],
)
def test_each_format_is_detected_and_read_exactly(request, fixture, fmt):
    path = request.getfixturevalue(fixture)
    assert detect_format(path) == fmt
    embeddings = load(str(path))
    assert list(embeddings.words) == FILE_WORDS
    assert_array_equal(embeddings.vectors, FILE_VECTORS)
    assert embeddings.vectors.dtype == np.float32
    assert embeddings.name == path.name and embeddings.dim == 4
    assert not embeddings.lowercase  # 'Paris' is cased


def test_gzipped_text_is_read(tmp_path, glove_txt):
    path = tmp_path / "small.glove.txt.gz"
    path.write_bytes(gzip.compress(glove_txt.read_bytes()))
    assert detect_format(path) == "glove"
    assert_array_equal(load(str(path)).vectors, FILE_VECTORS)


def test_a_cased_vocabulary_keeps_case_and_falls_back_to_lower_case(glove_txt):
    embedded = embed_sentence("Paris RIVER", load(str(glove_txt)))
    assert embedded.tokens == ("Paris", "RIVER")
    assert_array_equal(embedded.x, FILE_VECTORS[[5, 1]])


def test_fasttext_builds_unknown_words_from_subwords(fasttext_bin):
    from gensim.models.fasttext import load_facebook_vectors

    reference = load_facebook_vectors(str(fasttext_bin))
    embeddings = load(str(fasttext_bin))
    assert detect_format(fasttext_bin) == "fasttext"
    embedded = embed_tokens(["river", "riverbanks"], embeddings, oov="error")  # no error: subwords
    assert embedded.tokens == ("river", "riverbanks")
    assert_array_equal(embedded.x[1], reference.get_vector("riverbanks"))
    assert embedded.notes == ("unknown word 'riverbanks' (position 1) built from its subwords",)


def test_gensim_pickles_need_explicit_trust(tmp_path, word2vec_txt):
    from gensim.models import KeyedVectors

    path = tmp_path / "small.kv"
    KeyedVectors.load_word2vec_format(str(word2vec_txt)).save(str(path))
    assert detect_format(path) == "gensim"
    with pytest.raises(AttnvizError, match=r"is a gensim pickle, which can run code.*--trust-pickle"):
        load(str(path))
    assert_array_equal(load(str(path), trust_pickle=True).vectors, FILE_VECTORS)


def test_an_explicit_format_overrides_detection(glove_txt):
    with pytest.raises(AttnvizError, match="has no word2vec header"):
        load(str(glove_txt), fmt="word2vec-binary")


# ---- bad files ---------------------------------------------------------------------------------------


def _write(tmp_path, name, data: bytes):
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"\n  \n", "is empty"),
        (b"river 1.0 2.0\nbank 1.0\n", "is ragged: line 2 has 1 values where 2 were expected"),
        (b"2 2\nriver 1 2\nbank 1 2 3\n", "is ragged: line 3 has 3 values where 2 were expected"),
        (b"river 1.0 2.0\nbank nan 1.0\n", r"holds NaN or infinite values \(word 'bank'\)"),
        (b"just some prose, not vectors\n", "not a recognised embedding format"),
        (b"2 3\nriver 1 2 3\n", "cannot be read as word2vec"),  # the header promises more rows
        (pickle.dumps({"evil": 1}), "is a gensim pickle"),
    ],
)
def test_bad_files_give_one_clear_error(tmp_path, content, message):
    with pytest.raises(AttnvizError, match=message) as caught:
        load(_write(tmp_path, "bad.txt", content))
    assert "\n" not in str(caught.value)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(AttnvizError, match=r"vectors file '.*nope.txt' does not exist"):
        load(str(tmp_path / "nope.txt"))
    with pytest.raises(AttnvizError, match="is a directory"):
        load(str(tmp_path))


def test_unknown_format_name(glove_txt):
    with pytest.raises(AttnvizError, match="unknown vectors format 'xml'"):
        load(str(glove_txt), fmt="xml")


def test_word_list_finds_rows_by_search_then_by_dict():
    from attnviz_cli.vectors import WordList

    words = WordList("the\nriver\nbank\nriverbank\n")
    assert len(words) == 4 and words[2] == "bank" and words[:] == ["the", "river", "bank", "riverbank"]
    assert [words.row(w) for w in ("the", "bank", "riverbank", "river", "ban", "", "a\nb")] == [0, 2, 3, 1, None, None, None]
    for _ in range(WordList.DICT_AFTER):  # a stream: the dict takes over and answers alike
        words.row("bank")
    assert words._rows is not None
    assert [words.row(w) for w in ("the", "bank", "riverbank", "ban")] == [0, 2, 3, None]
    index = words.rows
    assert index["river"] == 1 and "bank" in index and "ban" not in index and index.get("ban") is None


def test_the_shipped_word_list_agrees_with_a_dict_for_every_word(glove):
    from attnviz_cli.vectors import WordList, default_dir

    text = (default_dir() / f"{DEFAULT_NAME}.vocab.txt").read_text(encoding="utf-8")
    fresh = WordList(text)
    rows = {w: i for i, w in enumerate(text.split("\n")[:-1])}
    sample = list(rows)[:: 997] + list(rows)[-3:]
    assert [fresh.row(w) for w in sample] == [rows[w] for w in sample]  # by search
    fresh.build_index()
    assert all(fresh.row(w) == i for w, i in rows.items())  # by dict


def test_many_unknown_words_are_noted_in_one_line_of_counts(tiny):
    tokens = ["bank", "zzz", "qqq", "zzz", "xxy", "zzz", "qqq", "w1", "w2", "w3", "w4", "w5", "w6"]
    embedded = embed_tokens(tokens, tiny, oov="skip")
    assert embedded.notes == (
        "12 unknown words skipped (9 distinct): 'zzz' x3, 'qqq' x2, 'xxy', 'w1', 'w2', 'w3', 'w4', 'w5' and 1 more",
    )
    assert [d.token for d in embedded.dropped] == tokens[1:]  # every one is still listed in the output

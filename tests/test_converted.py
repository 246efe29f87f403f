"""The float32 copy of a GGUF model's tensors kept in the cache (models/converted.py): made once, read
after, the same numbers as the GGUF file's own, never half-written, and a new one for a changed file."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_array_equal

from attnviz_cli.models import load_model
from attnviz_cli.models.converted import copy_path

MODELS = Path(__file__).resolve().parent / "models"
TEXT = "the water flows by the river bank and I sat on the bank at the river"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("ATTN_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("ATTN_GGUF_CACHE_BYTES", raising=False)
    return tmp_path / "cache" / "gguf"


@pytest.mark.parametrize("kind", ["llama", "gemma3", "phi3"])  # permuted q/k, norms minus 1, fused maps
def test_a_run_from_the_copy_gives_the_numbers_of_a_run_from_the_file(kind, cache, monkeypatch, tmp_path):
    gguf = shutil.copy(MODELS / f"tiny-{kind}" / f"tiny-{kind}.q8_0.gguf", tmp_path / "m.gguf")
    monkeypatch.setenv("ATTN_GGUF_CACHE_BYTES", "0")  # no copy: dequantized as it runs
    direct = load_model(gguf, dtype="float64").run(TEXT)
    assert not cache.exists()
    monkeypatch.delenv("ATTN_GGUF_CACHE_BYTES")
    first = load_model(gguf, dtype="float64")  # makes the copy
    assert [p.name for p in cache.iterdir()] == [copy_path(Path(gguf)).name]
    import gguf as gguf_package

    def refused(*_args, **_kwargs):
        raise AssertionError("dequantized again")

    monkeypatch.setattr(gguf_package.quants, "dequantize", refused)  # the second load reads the copy alone
    second = load_model(gguf, dtype="float64")
    for model in (first, second):
        run = model.run(TEXT)
        assert_array_equal(run.attentions, direct.attentions)
        assert_array_equal(run.hidden_states, direct.hidden_states)


def test_a_changed_file_gets_a_new_copy_and_a_model_over_the_limit_none(cache, monkeypatch, tmp_path):
    gguf = Path(shutil.copy(MODELS / "tiny-llama" / "tiny-llama.f32.gguf", tmp_path / "m.gguf"))
    load_model(gguf)
    before = copy_path(gguf)
    os.utime(gguf, ns=(1_000_000_000, 1_000_000_000))  # the same bytes, another modification time
    assert copy_path(gguf) != before
    monkeypatch.setenv("ATTN_GGUF_CACHE_BYTES", str(before.stat().st_size // 2))  # the copy would not fit
    load_model(gguf).run(TEXT)
    assert [p.name for p in cache.iterdir()] == [before.name]


def test_a_cache_that_cannot_be_written_leaves_the_run_to_the_file(monkeypatch, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("ATTN_CACHE_DIR", str(blocked))
    run = load_model(MODELS / "tiny-llama" / "tiny-llama.f32.gguf").run(TEXT)
    assert run.attentions.shape == (2, 4, 20, 20)
    assert blocked.read_text() == "a file where the cache folder would be"


def test_a_copy_is_written_whole_or_not_at_all(cache, monkeypatch, tmp_path):
    from attnviz_cli.models import converted

    gguf = Path(shutil.copy(MODELS / "tiny-qwen2" / "tiny-qwen2.f32.gguf", tmp_path / "m.gguf"))
    real_write = converted.write

    def cut_short(path, names, source, metadata):
        real_write(path, names[:3], source, metadata)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(converted, "write", cut_short)
    run = load_model(gguf).run(TEXT)  # the run goes on from the file
    assert list(cache.iterdir()) == []  # nothing half-written left, under its name or beside it
    assert np.isfinite(run.attentions).all()


def test_a_copy_damaged_after_it_was_made_is_dropped_and_the_file_read(cache, tmp_path):
    gguf = Path(shutil.copy(MODELS / "tiny-llama" / "tiny-llama.f32.gguf", tmp_path / "m.gguf"))
    first = load_model(gguf).run(TEXT)
    copy = copy_path(gguf)
    copy.write_bytes(copy.read_bytes()[:100])  # cut short, as a crash of the disk could leave it
    again = load_model(gguf).run(TEXT)
    assert_array_equal(again.attentions, first.attentions)
    assert not copy.exists() or copy.stat().st_size > 100  # dropped (and made again on a later run)

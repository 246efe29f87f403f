"""Corpus statistics as mergeable sums (models/corpus.py's PatternSums), shards of a corpus
(`attn heads --shard i/n -f partial`), and `attn merge` of their partial files (models/partial.py)."""

from __future__ import annotations

import itertools
import json
import random
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnviz_cli.models.corpus import PatternSums
from attnviz_cli.models.heads import HeadPatterns
from attnviz_cli.models.partial import PARTIAL_BYTES, Shard

from .conftest import run

L, H, P = 2, 3, 2  # layers, heads, probes of the synthetic texts


def text_patterns(rng: np.random.Generator, n: int) -> tuple[HeadPatterns, np.ndarray]:
    """``n`` random texts' (n, L, h, ...) patterns, some with no sinks (NaN, as a one-token text has),
    and their (n, P, L, h) probe scores."""
    sink = rng.random((n, L, H))
    sink[rng.random(n) < 0.3] = np.nan
    sink_k = np.where(rng.random((n, 1, 1)) < 0.5, np.nan, rng.random((n, L, H)))
    patterns = HeadPatterns(rng.random((n, L, H, 6)), 3 * rng.random((n, L, H)), rng.random((n, L, H)), 5 * rng.random((n, L, H)), sink, sink_k)
    return patterns, rng.random((n, P, L, H))


def summed(patterns: HeadPatterns, scores: np.ndarray, start: int, stop: int) -> PatternSums:
    sums = PatternSums(L, H, ("induction", "previous"))
    if stop > start:
        part = HeadPatterns(*(getattr(patterns, name)[start:stop] for name in HeadPatterns.__slots__))
        sums.add(part, 7 * (stop - start), stop - start, scores[start:stop])
    return sums


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 80), st.lists(st.integers(0, 80), max_size=6), st.integers(0, 2**32 - 1))
def test_sums_merged_from_random_splits_equal_the_sums_of_the_whole(n, cuts, seed):
    rng = np.random.default_rng(seed)
    patterns, scores = text_patterns(rng, n)
    whole = summed(patterns, scores, 0, n)
    edges = [0, *sorted(min(c, n) for c in cuts), n]
    parts = [summed(patterns, scores, a, b) for a, b in itertools.pairwise(edges)]
    merged = PatternSums(L, H, ("induction", "previous"))
    for part in reversed(parts):  # any order
        merged.merge(part)
    assert (merged.texts, merged.tokens, merged.truncated) == (n, 7 * n, n)
    for name, values in whole.arrays.items():
        np.testing.assert_allclose(merged.arrays[name], values, rtol=1e-12, atol=1e-12, err_msg=name)  # float64 sums in another order
    for name in HeadPatterns.__slots__:
        np.testing.assert_allclose(getattr(merged.std(), name), getattr(whole.std(), name), rtol=1e-9, atol=1e-12)


def test_mean_and_std_are_those_of_the_texts_numpy_computes():
    rng = np.random.default_rng(3)
    patterns, scores = text_patterns(rng, 40)
    sums = summed(patterns, scores, 0, 40)
    mean, std = sums.mean(), sums.std()
    for name in HeadPatterns.__slots__:
        values = getattr(patterns, name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a head no text has a sink for: NaN, as ours
            np.testing.assert_allclose(getattr(mean, name), np.nanmean(values, axis=0), rtol=1e-12)
            np.testing.assert_allclose(getattr(std, name), np.nanstd(values, axis=0), rtol=1e-9, atol=1e-12)  # E[x^2]-E[x]^2 cancels a little
    np.testing.assert_allclose(sums.mean_scores(), scores.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(sums.std_scores(), scores.std(axis=0), rtol=1e-9, atol=1e-12)


# ---- shards and attn merge, on the tiny models -------------------------------------------------------

MODELS = Path(__file__).resolve().parent / "models"
WORDS = ["the", "river", "bank", "flows", "money", "sat", "on", "a", "cat", "dog", ",", ".", "!", "and", "then"]


def corpus_lines(count: int, seed: int = 1) -> list[str]:
    """``count`` texts of 1 to 12 random words (a blank line now and then, passed over)."""
    rng = random.Random(seed)
    return ["" if rng.random() < 0.02 else " ".join(rng.choice(WORDS) for _ in range(rng.randint(1, 12))) for _ in range(count)]


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text("\n".join(corpus_lines(2500)) + "\n", encoding="utf-8")  # chunks 0, 1 and 2 (lines 2001-2500)
    return path


def heads_json(*args: str) -> dict:
    result = run("heads", *args, "-f", "json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


def partial(tmp: Path, name: str, *args: str) -> Path:
    result = run("heads", *args, "-f", "partial")
    assert result.exit_code == 0, result.stderr
    path = tmp / name
    path.write_bytes(result.stdout_bytes)
    return path


def assert_reports_equal(got, want, where: str = "") -> None:
    """Two reports alike: every text and integer equal, every number within 1e-12 (float64 sums added in
    another order)."""
    if isinstance(want, dict):
        assert got.keys() == want.keys(), where
        for key in want:
            assert_reports_equal(got[key], want[key], f"{where}/{key}")
    elif isinstance(want, list):
        assert len(got) == len(want), where
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            assert_reports_equal(a, b, f"{where}[{i}]")
    elif isinstance(want, float):
        assert got == pytest.approx(want, rel=1e-12, abs=1e-12), where
    else:
        assert got == want, where


def test_shards_take_every_nth_chunk_of_1000_lines_counting_from_1():
    shard = Shard.parse("2/3")
    lines = [(n, "x") for n in range(1, 7001)]
    taken = [n for n, _ in shard.lines(lines)]
    assert taken == [*range(1001, 2001), *range(4001, 5001)]  # chunks 1 and 4 (chunk 0 is lines 1-1000: shard 1's)
    assert shard.share(7000) == 2000 and Shard(1, 3).share(7000) == 3000 and Shard(3, 3).share(2500) == 500
    assert Shard(2, 3).share(130, 64) == 64 and Shard(3, 3).share(130, 64) == 2  # --probe's chunks of 64 sequences


@pytest.mark.parametrize(("spec", "why"), [("0/4", "shards count from 1"), ("5/4", "i must be 1 to 4"), ("1/0", "n must be 1 to"), ("3", "is not i/n")])
def test_a_shard_that_is_not_i_of_n_is_a_usage_error(spec, why):
    result = run("heads", "-", "--model", str(MODELS / "tiny-bert"), "--shard", spec, input="the bank\n")
    assert result.exit_code == 2 and why in result.stderr


def test_shards_merged_give_the_report_of_the_whole_and_one_partial_the_very_bytes(corpus, tmp_path):
    model = ("--model", str(MODELS / "tiny-bert"), "--dtype", "float64")
    whole = run("heads", str(corpus), *model, "-f", "json")
    parts = [partial(tmp_path, f"s{i}.json", str(corpus), *model, "--shard", f"{i}/3") for i in (1, 2, 3)]
    merged = run("merge", *map(str, reversed(parts)), "-f", "json")
    assert merged.exit_code == 0 and merged.stderr == ""
    want = json.loads(whole.stdout)
    assert want["texts"] == sum(1 for line in corpus_lines(2500) if line)
    assert_reports_equal(json.loads(merged.stdout), want)
    assert run("merge", *map(str, parts), "-f", "json").stdout == merged.stdout  # in shard order, whatever order given
    texts = [json.loads(p.read_text())["texts"] for p in parts]
    assert sum(texts) == want["texts"] and texts[2] < texts[0]  # shard 3 has only chunk 2, lines 2001-2500
    one = partial(tmp_path, "all.json", str(corpus), *model)
    assert run("merge", str(one), "-f", "json").stdout == whole.stdout  # the same sums: the same bytes
    assert run("merge", str(one), "-f", "csv").stdout == run("heads", str(corpus), *model, "-f", "csv").stdout


def test_probe_shards_take_their_share_of_the_seeded_sequences(tmp_path):
    model = ("--model", str(MODELS / "tiny-llama"), "--dtype", "float64", "--probe", "induction", "--probe", "previous",
             "--sequences", "150", "--length", "8", "--seed", "4")
    want = heads_json(*model)
    parts = [partial(tmp_path, f"p{i}.json", *model, "--shard", f"{i}/2") for i in (1, 2)]
    assert [json.loads(p.read_text())["texts"] for p in parts] == [64 + 22, 64]  # chunks 0 and 2, chunk 1
    merged = run("merge", *map(str, parts), "-f", "json")
    assert merged.exit_code == 0, merged.stderr
    assert_reports_equal(json.loads(merged.stdout), want)
    assert want["heads"][0]["std"]["scores"].keys() == {"induction", "previous"}


def test_merge_says_which_shards_are_missing_and_reports_those_given(corpus, tmp_path):
    model = ("--model", str(MODELS / "tiny-bert"), "--dtype", "float64")
    parts = [partial(tmp_path, f"s{i}.json", str(corpus), *model, "--shard", f"{i}/4") for i in (1, 3)]
    merged = run("merge", *map(str, parts), "-f", "json")
    assert merged.exit_code == 0
    assert merged.stderr == "attn: merged 2 of 4 shards; missing: 2, 4 (the report is of the texts of those given)\n"
    assert json.loads(merged.stdout)["texts"] == sum(json.loads(p.read_text())["texts"] for p in parts)


@pytest.fixture(scope="module")
def two_shards(corpus, tmp_path_factory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("shards")
    model = ("--model", str(MODELS / "tiny-bert"))
    return partial(tmp, "s1.json", str(corpus), *model, "--shard", "1/2"), partial(tmp, "s2.json", str(corpus), *model, "--shard", "2/2")


def edited(tmp: Path, source: Path, change) -> Path:
    record = json.loads(source.read_text())
    change(record)
    path = tmp / f"edited-{source.name}"
    path.write_text(json.dumps(record))
    return path


def refusal(*paths: Path) -> str:
    result = run("merge", *map(str, paths), "-f", "json")
    assert result.exit_code == 1 and result.stdout == "" and result.stderr.count("\n") == 1, result.stderr
    return result.stderr


def test_merge_refuses_partials_of_another_model_version_settings_or_split(corpus, two_shards, tmp_path):
    s1, s2 = two_shards
    other = partial(tmp_path, "roberta.json", str(corpus), "--model", str(MODELS / "tiny-roberta"), "--shard", "2/2")
    assert "are partials of different models (architecture: 'bert' and 'roberta')" in refusal(s1, other)
    float64 = partial(tmp_path, "f64.json", str(corpus), "--model", str(MODELS / "tiny-bert"), "--dtype", "float64", "--shard", "2/2")
    assert "are partials of different models (dtype: 'float32' and 'float64')" in refusal(s1, float64)
    retrained = edited(tmp_path, s2, lambda r: r["model"].update(fingerprint="sha256:" + "0" * 64))
    assert "are partials of different models (fingerprint: 'sha256:" in refusal(s1, retrained)
    newer = edited(tmp_path, s2, lambda r: r.update(schema="attnviz.heads-partial/2"))
    assert refusal(s1, newer) == f"attn: error: partial file '{newer}' is format 'attnviz.heads-partial/2'; this attn reads attnviz.heads-partial/1\n"
    probed = partial(tmp_path, "probed.json", str(corpus), "--model", str(MODELS / "tiny-bert"), "--probe", "previous", "--shard", "2/2")
    assert "were run with different probes ([] and ['previous'])" in refusal(s1, probed)
    cut = edited(tmp_path, s2, lambda r: r.update(truncate=True))
    assert "were run with different truncate (False and True)" in refusal(s1, cut)
    thirds = partial(tmp_path, "third.json", str(corpus), "--model", str(MODELS / "tiny-bert"), "--shard", "2/3")
    assert "split the input differently (shards of 2 and of 3)" in refusal(s1, thirds)
    again = edited(tmp_path, s1, lambda r: None)
    assert refusal(s1, again) == f"attn: error: '{s1}' and '{again}' are both shard 1/2\n"


def test_merge_refuses_a_damaged_or_hostile_partial_in_one_line(two_shards, tmp_path):
    s1, s2 = two_shards
    cut = tmp_path / "cut.json"
    cut.write_bytes(s2.read_bytes()[:500])
    assert f"partial file '{cut}' is not JSON" in refusal(s1, cut)
    huge = tmp_path / "huge.json"
    with huge.open("wb") as f:
        f.truncate(PARTIAL_BYTES + 1)  # sparse: 64 MiB that are never read
    assert f"partial file '{huge}' is {PARTIAL_BYTES + 1:,} bytes, over the {PARTIAL_BYTES:,} it may be" in refusal(huge)
    deep = tmp_path / "deep.json"
    deep.write_text("[" * 100_000 + "]" * 100_000)
    assert "nested deeper than the 64 levels" in refusal(deep)
    assert "is not an attn heads partial file" in refusal(edited(tmp_path, s2, lambda r: r.update(schema="attnviz.heads/1")))
    for change, why in [
        (lambda r: r["sums"]["spread"].update(shape=[9, 9]), "has sums 'spread' that are not of its model's shape [2, 4]"),
        (lambda r: r["sums"]["spread"]["values"].pop(), "has sums 'spread' that are not 8 numbers"),
        (lambda r: r["sums"]["spread"]["values"].__setitem__(0, "1"), "has sums 'spread' that are not 8 numbers"),
        (lambda r: r["sums"]["spread"]["values"].__setitem__(0, -1.0), "has sums 'spread' that are not all finite and at least 0"),
        (lambda r: r["sums"]["spread"]["values"].__setitem__(0, 1e309), "has sums 'spread' that are not all finite and at least 0"),
        (lambda r: r["sums"].pop("spread_squares"), "has sums ["),
        (lambda r: r.update(texts=True), "has no valid text count ('texts')"),
        (lambda r: r.update(texts=-1), "has an out-of-range text count ('texts': -1)"),
        (lambda r: r.update(texts=1), "counts more texts with sinks than texts"),
        (lambda r: r["model"].update(layers=10**9), "has sums 'shares' that are not of its model's shape [1000000000, 4, 6]"),
        (lambda r: r["model"].update(architecture="evil\x1b[2J"), "names a model attnviz does not run ('evil\\x1b[2J', 'float32')"),
        (lambda r: r.update(shard={"index": 3, "count": 2}), "has no valid shard (3/2)"),
        (lambda r: r.update(probes=["everything"]), "names probes attnviz does not have"),
        (lambda r: r.update(seconds=float("nan")), "has no valid time ('seconds')"),
    ]:
        assert why in refusal(s1, edited(tmp_path, s2, change)), why


def test_the_same_model_at_another_path_merges_under_the_lowest_shards_name(corpus, two_shards, tmp_path):
    import shutil

    s1, _ = two_shards
    copy = shutil.copytree(MODELS / "tiny-bert", tmp_path / "elsewhere" / "tiny-bert")  # another job's mount of the same files
    s2 = partial(tmp_path, "s2.json", str(corpus), "--model", str(copy), "--shard", "2/2")
    merged = run("merge", str(s2), str(s1), "-f", "json")
    assert merged.exit_code == 0, merged.stderr
    assert json.loads(merged.stdout)["config"]["model"]["name"] == str(MODELS / "tiny-bert")

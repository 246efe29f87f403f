"""Head patterns and attention rollout (attnviz_cli.models.heads) on hand-built attention matrices,
whose answers are worked out by hand here, and properties that hold for any attention."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.testing import assert_allclose, assert_array_equal

from attnviz_cli.core import causal_mask, softmax
from attnviz_cli.models.heads import PATTERNS, head_labels, head_patterns, punctuation_tokens, rollout

NO_PUNCTUATION = np.zeros(5, bool)


def one_hot_rows(keys: list[int]) -> np.ndarray:
    """(T, T) weights: query i puts all its weight on key keys[i]."""
    return np.eye(len(keys))[keys]


def share(patterns, name: str) -> float:
    return float(patterns.shares[..., PATTERNS.index(name)])


def test_a_pure_previous_token_head_is_100_percent_previous():
    weights = one_hot_rows([0, 0, 1, 2, 3])  # query 0 has no previous token: it looks at itself
    p = head_patterns(weights, NO_PUNCTUATION)
    assert share(p, "previous") == 1.0  # queries 1..4, each all on the token before it
    assert share(p, "self") == pytest.approx(1 / 5)  # only query 0
    assert share(p, "first") == pytest.approx(2 / 5)  # queries 0 and 1 look at token 0
    assert share(p, "next") == 0.0 and share(p, "last") == 0.0
    assert p.entropy_bits == 0.0 and p.spread == 0.0
    assert p.distance == pytest.approx(4 / 5)  # |i - j| = 1 for four queries, 0 for the first
    labels, values = head_labels(p)
    assert labels == "previous" and values == 1.0


def test_next_self_first_last_and_punctuation_heads_are_named_by_their_keys():
    cases = {"next": [1, 2, 3, 4, 4], "self": [0, 1, 2, 3, 4], "first": [0] * 5, "last": [4] * 5, "punctuation": [2] * 5}
    punctuation = np.array([False, False, True, False, False])
    for name, keys in cases.items():
        p = head_patterns(one_hot_rows(keys), punctuation)
        labels, _ = head_labels(p)
        assert labels == name, name
    # the exact shares of the next-token head: queries 0..3 all on the next token; query 4 looks at itself
    p = head_patterns(one_hot_rows(cases["next"]), punctuation)
    assert share(p, "next") == 1.0 and share(p, "self") == pytest.approx(1 / 5) and share(p, "last") == pytest.approx(2 / 5)
    assert share(p, "punctuation") == pytest.approx(1 / 5)  # query 1 looks at token 2


def test_a_uniform_head_is_broad_and_its_numbers_are_exact():
    weights = np.full((4, 4), 0.25)
    p = head_patterns(weights, np.zeros(4, bool))
    assert_allclose(p.shares, [0.25, 0.25, 0.25, 0.25, 0.25, 0.0])
    assert p.entropy_bits == pytest.approx(2.0) and p.spread == pytest.approx(1.0)
    assert p.distance == pytest.approx((1.5 + 1 + 1 + 1.5) / 4)  # mean |i - j| of each row, averaged
    labels, values = head_labels(p)
    assert labels == "broad" and values == pytest.approx(1.0)


def test_a_sharp_head_on_no_fixed_position_is_other():
    weights = one_hot_rows([2, 3, 4, 0, 1])  # two ahead, wrapping round: no pattern has half the weight
    labels, values = head_labels(head_patterns(weights, NO_PUNCTUATION))
    assert labels == "other" and math.isnan(values)


def test_labels_agree_with_the_numbers_printed_at_two_decimals():
    """A head is labelled from its number as the tables print it (two decimals): a spread of 0.4974
    prints 0.50, so it is broad, as the legend's "spread >= 0.5" says; 0.4949 prints 0.49 and is other.
    The same for a share: 0.4951 prints 0.50 and names the pattern. 0.495 itself is stored as a float a
    hair below 0.495 and prints 0.49."""
    from attnviz_cli.models.heads import HeadPatterns

    def patterns(previous: float, spread: float) -> HeadPatterns:
        shares = np.array([[previous, 0.1, 0.1, 0.1, 0.1, 0.0]])
        return HeadPatterns(shares, np.array([1.0]), np.array([spread]), np.array([1.0]), np.array([np.nan]), np.array([np.nan]))

    labels, values = head_labels(patterns(0.1, 0.4974))
    assert f"{values[0]:.2f}" == "0.50" and labels[0] == "broad" and values[0] == 0.4974
    labels, values = head_labels(patterns(0.1, 0.4949))
    assert labels[0] == "other" and math.isnan(values[0])
    labels, values = head_labels(patterns(0.1, 0.495))
    assert f"{0.495:.2f}" == "0.49" and labels[0] == "other"
    labels, values = head_labels(patterns(0.4951, 0.9))
    assert labels[0] == "previous" and values[0] == 0.4951
    labels, _ = head_labels(patterns(0.4949, 0.9))
    assert labels[0] == "broad"


def test_a_causal_head_spreads_over_the_keys_it_sees():
    T = 4
    weights = np.tril(np.ones((T, T))) / np.arange(1, T + 1)[:, None]  # each query uniform over keys 0..i
    p = head_patterns(weights, np.zeros(T, bool), causal=True)
    assert p.spread == pytest.approx(1.0)  # query 0 sees one key and is left out
    assert share(p, "next") == 0.0
    bidirectional = head_patterns(weights, np.zeros(T, bool))
    assert bidirectional.spread < 1.0  # judged against all T keys, the same rows look narrower


def test_a_one_token_text_has_no_previous_or_next_and_does_not_spread():
    p = head_patterns(np.ones((1, 1)), np.zeros(1, bool))
    assert_array_equal(p.shares, [0.0, 0.0, 1.0, 1.0, 1.0, 0.0])
    assert p.spread == 0.0 and p.distance == 0.0


def test_rollout_of_three_tokens_and_two_layers_by_hand():
    first, self_, previous = one_hot_rows([0, 0, 0]), one_hot_rows([0, 1, 2]), one_hot_rows([0, 0, 1])
    attentions = np.stack([np.stack([first, self_]), np.stack([previous, previous])])  # (L=2, h=2, 3, 3)
    # layer 0: heads averaged [[1,0,0],[.5,.5,0],[.5,0,.5]], then 0.5 A + 0.5 I
    layer0 = np.array([[1, 0, 0], [0.25, 0.75, 0], [0.25, 0, 0.75]])
    # layer 1: 0.5 previous + 0.5 I = [[1,0,0],[.5,.5,0],[0,.5,.5]]; times layer 0's rollout
    layer1 = np.array([[1, 0, 0], [0.625, 0.375, 0], [0.25, 0.375, 0.375]])
    assert_allclose(rollout(attentions), np.stack([layer0, layer1]), rtol=1e-15)


def test_punctuation_is_found_by_the_tokens_characters_not_their_names():
    text = "Hi, you. ok"
    offsets = ((0, 0), (0, 2), (2, 3), (3, 7), (7, 8), (8, 11), (0, 0))  # GPT-2 style: " ok" keeps its space
    special = (True, False, False, False, False, False, True)
    assert punctuation_tokens(text, offsets, special).tolist() == [False, False, True, False, True, False, False]


@settings(max_examples=60, deadline=None)
@given(st.data())
def test_patterns_of_a_batch_are_each_sentences_own_and_stay_in_range(data):
    B, L, h, T = (data.draw(st.integers(1, n)) for n in (3, 3, 3, 6))
    scores = data.draw(arrays(np.float64, (B, L, h, T, T), elements=st.floats(-8, 8)))
    causal = data.draw(st.booleans())
    weights = softmax(scores + causal_mask(T) if causal else scores)
    punctuation = data.draw(arrays(bool, (B, T)))
    batch = head_patterns(weights, punctuation[:, None, None, None, :], causal)
    for b in range(B):
        one = head_patterns(weights[b], punctuation[b], causal)
        for part in ("shares", "entropy_bits", "spread", "distance"):
            assert_allclose(getattr(batch, part)[b], getattr(one, part), rtol=1e-12, atol=1e-15)
    assert (batch.shares >= 0).all() and (batch.shares <= 1 + 1e-12).all()
    assert (batch.spread >= -1e-12).all() and (batch.spread <= 1 + 1e-12).all()
    assert (batch.distance >= 0).all() and (batch.distance <= T - 1 + 1e-12).all()
    rolled = rollout(weights)
    assert rolled.shape == (B, L, T, T)
    assert_allclose(rolled.sum(axis=-1), 1.0, rtol=1e-12)
    if causal:  # rollout keeps the causal order: no token draws on a later one
        assert np.triu(rolled, k=1).max() == 0.0


# ---- over a corpus: attnviz_cli.models.corpus and `attn heads` ---------------------------------------------

from pathlib import Path  # noqa: E402

from attnviz_cli.errors import AttnvizError  # noqa: E402
from attnviz_cli.models import load_model  # noqa: E402
from attnviz_cli.models.corpus import corpus_patterns  # noqa: E402
from attnviz_cli.models.heads import run_patterns  # noqa: E402

MODELS = Path(__file__).resolve().parent / "models"
WORDS = ["the", "river", "bank", "money", "flows", ",", ".", "banks", "rivers", "I", "sat", "deposited"]


def fail(line: int, text: str, error: AttnvizError) -> None:
    raise error


def per_text_mean(model, texts: list[str]):
    """The reference: each text run alone through Model.run, its patterns, then the plain mean."""
    each = [run_patterns(model.run(t), t, model.config.causal) for t in texts]
    return {part: np.mean([getattr(p, part) for p in each], axis=0) for part in ("shares", "entropy_bits", "spread", "distance")}


@settings(max_examples=25, deadline=None)
@given(
    kind=st.sampled_from(["bert", "gpt2"]),
    texts=st.lists(st.lists(st.sampled_from(WORDS), min_size=1, max_size=6).map(" ".join), min_size=1, max_size=12),
    batch_size=st.integers(1, 5),
)
def test_corpus_patterns_are_the_per_text_patterns_averaged_whatever_the_batching(kind, texts, batch_size):
    model = MODEL_CACHE.setdefault(kind, load_model(MODELS / f"tiny-{kind}", dtype="float64"))
    sums = corpus_patterns(model, enumerate(texts, 1), bad=fail, batch_size=batch_size)
    assert sums.texts == len(texts) and sums.tokens == sum(len(model.run(t).tokens) for t in texts)
    mean, expected = sums.mean(), per_text_mean(model, texts)
    for part, value in expected.items():
        assert_allclose(getattr(mean, part), value, rtol=1e-12, atol=1e-14)


MODEL_CACHE: dict = {}


@pytest.mark.slow
def test_corpus_patterns_in_worker_processes_equal_those_in_one():
    model = load_model(MODELS / "tiny-roberta", dtype="float64")
    texts = [" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(1 + i % 5)) for i in range(40)]
    done: list[int] = []
    parallel = corpus_patterns(model, enumerate(texts, 1), bad=fail, workers=2, batch_size=3, parallel_after=0, done=done.append)
    assert parallel.texts == 40 and done[-1] == 40 and done == sorted(done)
    expected = per_text_mean(model, texts)
    for part, value in expected.items():
        assert_allclose(getattr(parallel.mean(), part), value, rtol=1e-12, atol=1e-14)


def test_attn_heads_json_csv_and_table_agree_and_follow_the_schema(tmp_path):
    import csv
    import io
    import json

    import jsonschema

    from .conftest import run

    texts = ["I sat on the river bank.", "", "I deposited money at the bank, then left.", "the river flows"]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    base = ("heads", str(corpus), "--model", str(MODELS / "tiny-bert"))
    result = run(*base, "-f", "json", "--dtype", "float64")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    jsonschema.validate(record, json.loads(run("schema", "heads").stdout))
    model = load_model(MODELS / "tiny-bert", dtype="float64")
    kept = [t for t in texts if t]
    assert record["texts"] == 3 and record["skipped"] == 0 and record["tokens"] == sum(len(model.run(t).tokens) for t in kept)
    expected = per_text_mean(model, kept)
    assert [(e["layer"], e["head"]) for e in record["heads"]] == [(i, h) for i in range(2) for h in range(4)]
    got = np.array([[e["shares"][p] for p in PATTERNS] for e in record["heads"]])
    assert_allclose(got, expected["shares"].reshape(8, 6), rtol=1e-12)
    assert_allclose([e["distance"] for e in record["heads"]], expected["distance"].ravel(), rtol=1e-12)
    rows = list(csv.DictReader(io.StringIO(run(*base, "-f", "csv", "--dtype", "float64").stdout)))
    assert len(rows) == 8 and rows[5]["label"] == record["heads"][5]["label"]
    assert float(rows[5]["previous"]) == pytest.approx(record["heads"][5]["shares"]["previous"], rel=1e-5)
    table = run(*base)
    assert table.exit_code == 0 and "texts        3 (" in table.stdout
    assert max(len(line) for line in table.stdout.splitlines()) <= 80
    piped = run("heads", "-", "--model", str(MODELS / "tiny-bert"), "-f", "json", "--dtype", "float64", input="\n".join(texts))
    assert json.loads(piped.stdout)["heads"] == record["heads"]


def test_attn_heads_refuses_bad_input_with_one_line(tmp_path):
    from .conftest import run

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("the bank\n" + "bank " * 300 + "\nthe river\n", encoding="utf-8")
    model = ("--model", str(MODELS / "tiny-bert"))
    failed = run("heads", str(corpus), *model)
    assert failed.exit_code == 1 and "line 2: the text has 302 tokens, more than the" in failed.stderr and failed.stdout == ""
    skipped = run("heads", str(corpus), *model, "-f", "json", "--on-error", "skip")
    assert skipped.exit_code == 0 and "line 2 skipped" in skipped.stderr
    import json

    record = json.loads(skipped.stdout)
    assert record["texts"] == 2 and record["skipped"] == 1
    no_model = run("heads", str(corpus))
    assert no_model.exit_code == 2 and no_model.stderr.splitlines()[-1] == "Error: Missing option '--model'."
    missing = run("heads", str(tmp_path / "nope.txt"), *model)
    assert missing.exit_code == 1 and "cannot read" in missing.stderr
    empty = run("heads", "-", *model, input="\n\n")
    assert empty.exit_code == 1 and "no texts to average" in empty.stderr


def test_attn_heads_refuses_a_line_longer_than_the_model_can_take_as_soon_as_it_is_read(tmp_path):
    # tiny-bert has 64 positions: a line is refused past max(64 KiB, 64 x 64 bytes), as inspect's streams
    # refuse theirs, and the rest of it is read past, never held: memory stays bounded by the limit
    import json
    import tracemalloc

    from .conftest import run

    corpus = tmp_path / "corpus.txt"
    with corpus.open("w", encoding="utf-8") as f:
        f.write("the bank\n")
        f.write("bank " * 4_000_000)  # 20 MB, one line
        f.write("\nthe river\n")
    model = ("--model", str(MODELS / "tiny-bert"))
    message = "the line is longer than 65,536 bytes, more than the 64 positions of '" + str(MODELS / "tiny-bert") + "' can take"
    failed = run("heads", str(corpus), *model, "-f", "json")
    assert failed.exit_code == 1 and failed.stdout == "" and failed.stderr == f"attn: error: line 2: {message}\n"
    tracemalloc.start()
    try:
        skipped = run("heads", str(corpus), *model, "-f", "json", "--on-error", "skip")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert skipped.exit_code == 0 and skipped.stderr == f"attn: line 2 skipped: {message}\n"
    record = json.loads(skipped.stdout)
    assert (record["texts"], record["skipped"], record["tokens"]) == (2, 1, 4 + 4)  # [CLS] the bank/river [SEP]
    assert peak < 8 << 20  # far below the 20 MB line (and its 40 MB+ as text)


@pytest.mark.parametrize("kind", ["bert", "roberta", "distilbert", "gpt2"])
def test_patterns_of_the_tiny_models_equal_those_of_transformers_recorded_attentions(kind):
    """The patterns of a run equal those computed from transformers' own attentions (recorded beside
    each tiny model), and their labels are the same: the labels come from the weights, wherever made."""
    texts = ["I sat on the river bank", "I deposited money at the bank", "the bank by the river bank flows"]
    model = load_model(MODELS / f"tiny-{kind}", dtype="float64")
    with np.load(MODELS / f"tiny-{kind}" / "reference.npz") as recorded:
        for t, text in enumerate(texts):
            run = model.run(text)
            ours = run_patterns(run, text, model.config.causal)
            punctuation = punctuation_tokens(text, run.offsets, run.special)
            theirs = head_patterns(recorded[f"{t}/float64/attentions"], punctuation, model.config.causal)
            assert_allclose(ours.shares, theirs.shares, atol=1e-9)
            assert_allclose(ours.spread, theirs.spread, atol=1e-9)
            assert_array_equal(head_labels(ours)[0], head_labels(theirs)[0])
            assert len(set(head_labels(ours)[0].ravel())) > 1  # the heads of a tiny model do differ


def test_sinks_of_hand_built_heads():
    """A head on the first token, a uniform causal one, and a one-token text, worked out by hand."""
    from attnviz_cli.models.heads import sinks

    on_first = np.zeros((6, 6))
    on_first[:, 0] = 1
    first, first_4 = sinks(on_first)
    assert (first, first_4) == (1.0, 1.0)
    uniform = np.tril(np.ones((6, 6))) / np.arange(1, 7)[:, None]
    first, first_4 = sinks(uniform)
    # queries 1..5 give the first token 1/2, 1/3, 1/4, 1/5, 1/6; queries 4 and 5 give the first four 4/5 and 4/6
    assert_allclose([first, first_4], [(1 / 2 + 1 / 3 + 1 / 4 + 1 / 5 + 1 / 6) / 5, (4 / 5 + 4 / 6) / 2], rtol=1e-15)
    assert np.isnan(sinks(np.ones((1, 1)))).all()
    assert np.isnan(sinks(uniform[:4, :4])[1]) and not np.isnan(sinks(uniform[:4, :4])[0])


def test_a_first_token_head_is_a_sink_in_a_decoder_and_stays_first_in_an_encoder():
    on_first = np.zeros((2, 5, 5))
    on_first[0, :, 0] = 1  # every query on the first token
    on_first[1] = np.eye(5)[[0, 0, 1, 2, 4]]  # previous 0.75 beats first 0.52: not a sink, whatever its weight there
    on_first[1, 4] = [0.6, 0, 0, 0, 0.4]
    patterns = head_patterns(on_first, NO_PUNCTUATION, causal=True)
    labels, values = head_labels(patterns, causal=True)
    assert labels.tolist() == ["sink", "previous"] and values[0] == 1.0
    assert head_labels(patterns, causal=False)[0].tolist() == ["first", "previous"]
    lifted = np.array([[1, 0, 0], [0.45, 0, 0.55], [0.45, 0.1, 0.45]])  # first (1 + 0.45 + 0.45) / 3: the first query lifts it
    labels, values = head_labels(head_patterns(lifted, NO_PUNCTUATION[:3], causal=True), causal=True)
    assert labels.tolist() == "first" and values == pytest.approx(1.9 / 3, rel=1e-15)  # later queries give it 0.45: no sink


def test_pattern_sums_leave_out_texts_too_short_for_a_sink_and_merge():
    from attnviz_cli.models.corpus import PatternSums

    short = head_patterns(np.ones((1, 1, 1, 1, 1)), np.zeros(1, bool), causal=True)  # (B=1, L=1, h=1): one token
    on_first = np.zeros((1, 1, 1, 6, 6))
    on_first[..., 0] = 1
    long = head_patterns(on_first, np.zeros(6, bool), causal=True)
    a, b = PatternSums(1, 1), PatternSums(1, 1)
    a.add(short, 1)
    b.add(long, 6)
    a.merge(b)
    mean = a.mean()
    assert a.texts == 2 and mean.sink[0, 0] == 1.0 and mean.sink_k[0, 0] == 1.0  # the one-token text has none
    assert mean.shares[0, 0, PATTERNS.index("first")] == 1.0

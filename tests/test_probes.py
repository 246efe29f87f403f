"""Head detectors (attnviz_cli.models.probes, probe_inputs): detection patterns and "mul" scores on
hand-built attention worked out here, against plain loops, and against TransformerLens' definitions
applied to transformers' own attentions (recorded by tests/models/record_probes.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from attnviz_cli.models.probes import PROBES, detection_pattern, probe_scores, repeated_sequences

from .conftest import need_smollm2

MODELS = Path(__file__).resolve().parent / "models"
DECODERS = ["gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "olmo2"]
BOS, A, B, C, D = 9, 1, 2, 3, 4
FEW = 4  # SmolLM2 sequences a quick test scores: its top heads lead by 0.09 or more already


def plain_pattern(probe: str, ids: list[int]) -> np.ndarray:
    """The detection pattern as the module docstring words it, one query and key at a time."""
    T = len(ids)
    pattern = np.zeros((T, T))
    for i in range(T):
        for j in range(T):
            if probe == "previous":
                pattern[i, j] = j == i - 1
            elif probe == "duplicate":
                pattern[i, j] = j < i and ids[j] == ids[i]
            else:
                pattern[i, j] = 1 <= j <= i and ids[j - 1] == ids[i] and j - 1 < i
    return pattern


def test_patterns_equal_a_plain_loop_over_any_leading_axes():
    rng = np.random.default_rng(3)
    ids = rng.integers(0, 4, size=(2, 3, 9))  # few distinct ids: many duplicates
    for probe in PROBES:
        pattern = detection_pattern(probe, ids)
        assert pattern.shape == (2, 3, 9, 9)
        for index in np.ndindex(2, 3):
            assert_array_equal(pattern[index], plain_pattern(probe, ids[index].tolist()), err_msg=probe)


def test_induction_pattern_of_a_repeated_sequence_by_hand():
    ids = np.array([BOS, A, B, C, A, B, C])
    expected = np.zeros((7, 7))
    expected[4, 2] = expected[5, 3] = expected[6, 4] = 1  # the second A looks at the first B, and so on
    assert_array_equal(detection_pattern("induction", ids), expected)


def test_a_perfect_induction_head_scores_1():
    ids = np.array([BOS, A, B, C, D, A, B, C, D])
    weights = np.zeros((9, 9))
    weights[:5, 0] = 1  # the BOS and the first copy have nothing to copy: they rest on the BOS, left out
    for i in range(5, 9):
        weights[i, i - 3] = 1  # the token after the same token in the first copy
    assert probe_scores(weights, detection_pattern("induction", ids)) == 1.0
    assert probe_scores(weights, detection_pattern("previous", ids)) == 0.0


def test_a_uniform_causal_head_scores_the_fraction_of_its_weight_on_the_pattern():
    ids = np.array([BOS, A, B, A, B])
    weights = np.tril(np.ones((5, 5))) / np.arange(1, 6)[:, None]  # query i spreads 1/(i+1) over keys 0..i
    # induction keys: (3, 2) and (4, 3), weights 1/4 and 1/5; outside the BOS column the rows hold
    # 0 + 1/2 + 2/3 + 3/4 + 4/5 = 163/60: (9/20) / (163/60) = 27/163
    assert_allclose(probe_scores(weights, detection_pattern("induction", ids)), 27 / 163, rtol=1e-15)  # float64 rounding
    # previous keys: (2, 1), (3, 2), (4, 3) (and (1, 0), left out with the BOS): 1/3 + 1/4 + 1/5 = 47/60
    assert_allclose(probe_scores(weights, detection_pattern("previous", ids)), 47 / 163, rtol=1e-15)


def test_a_previous_token_head_scores_1_and_a_one_token_text_0():
    ids = np.arange(6)
    weights = np.eye(6, k=-1)
    weights[0, 0] = 1
    assert probe_scores(weights, detection_pattern("previous", ids)) == 1.0
    assert probe_scores(np.ones((1, 1)), detection_pattern("previous", np.array([BOS]))) == 0.0


def test_scores_over_leading_axes_are_each_heads_own():
    rng = np.random.default_rng(0)
    weights = rng.random((2, 3, 4, 6, 6))  # (B, L, h, T, T)
    weights /= weights.sum(axis=-1, keepdims=True)
    ids = rng.integers(0, 3, size=(2, 6))
    pattern = detection_pattern("duplicate", ids)[:, None, None]  # (B, 1, 1, T, T)
    scores = probe_scores(weights, pattern)
    for b, i, h in np.ndindex(2, 3, 4):
        a = weights[b, i, h].copy()
        a[:, 0] = 0
        assert_allclose(scores[b, i, h], (a * pattern[b, 0, 0]).sum() / a.sum(), rtol=1e-12)  # sums in another order


def test_scores_make_no_copy_of_the_weights_and_patterns_are_booleans():
    """A batch's (B, h, T, T) float32 weights of a layer are scored against each probe's pattern with no
    (B, h, T, T-1) product (float64: twice the weights) made whole; the patterns take a byte a pair."""
    import tracemalloc

    rng = np.random.default_rng(5)
    weights = rng.random((16, 9, 129, 129), dtype=np.float32)  # 9.1 MiB: SmolLM2's heads, 2 x 64 tokens and the BOS
    ids = rng.integers(0, 40, size=(16, 129))
    for probe in PROBES:
        pattern = detection_pattern(probe, ids)[:, None]  # (B, 1, T, T)
        assert pattern.dtype == np.bool_
        a = weights[..., 1:].astype(np.float64)
        expected = (a * pattern[..., 1:]).sum(axis=(-2, -1)) / a.sum(axis=(-2, -1))
        tracemalloc.start()
        scores = probe_scores(weights, pattern)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert peak < 2**20, (probe, peak)  # the sums and einsum's buffers: under 1 MiB, where the product took 18
        assert_allclose(scores, expected, rtol=1e-12)  # float64 sums in another order


def test_repeated_sequences_are_seeded_copies_after_the_prefix():
    vocabulary = np.array([5, 6, 7, 8, 11])
    ids = repeated_sequences(vocabulary, 4, 6, seed=1, prefix=np.array([BOS]))
    assert ids.shape == (4, 13) and ids.dtype == np.int64
    assert (ids[:, 0] == BOS).all()
    assert_array_equal(ids[:, 1:7], ids[:, 7:])
    assert np.isin(ids[:, 1:], vocabulary).all()
    assert_array_equal(ids, repeated_sequences(vocabulary, 4, 6, seed=1, prefix=np.array([BOS])))
    assert not np.array_equal(ids, repeated_sequences(vocabulary, 4, 6, seed=2, prefix=np.array([BOS])))
    assert_array_equal(repeated_sequences(vocabulary, 2, 6, seed=1, prefix=np.array([], np.int64)), ids[:2, 1:])


@pytest.mark.parametrize("arch", DECODERS)
def test_probe_scores_of_the_tiny_decoders_equal_transformers_attentions_scored_as_transformer_lens_does(arch):
    from attnviz_cli.models import load_model
    from attnviz_cli.models.probe_inputs import probe_heads

    with np.load(MODELS / f"tiny-{arch}" / "probes-reference.npz") as data:
        ids, expected = data["ids"], data["scores"]
        inputs = {k: int(data[k]) for k in ("sequences", "length", "seed")}
    model = load_model(MODELS / f"tiny-{arch}", dtype="float64")
    result = probe_heads(model, PROBES, **inputs)
    assert result.texts == inputs["sequences"] and result.tokens == ids.size
    assert result.inputs is not None and result.inputs["bos"] == ids.shape[1] - 2 * inputs["length"]
    assert result.scores is not None
    assert_allclose(result.scores, expected, atol=1e-6)  # transformers' eager softmax runs in float32 even in a float64 model


@pytest.mark.parametrize(("arch", "bos"), [("gpt2", 0), ("qwen2", 1), ("llama", 1)])
def test_random_sequences_start_with_the_bos_transformer_lens_puts_first(arch, bos):
    """GPT-2's and Qwen2's tokenizers add nothing: TransformerLens' to_tokens puts the BOS first all the
    same (config.json's bos_token_id: the tiny GPT-2's <|endoftext|> is id 0), so exclude_bos drops a BOS
    column, never a drawn token's. Llama's tokenizer adds <s> (1) itself."""
    from attnviz_cli.models import load_model
    from attnviz_cli.models.probe_inputs import bos_prefix

    assert_array_equal(bos_prefix(load_model(MODELS / f"tiny-{arch}")), [bos])
    with np.load(MODELS / f"tiny-{arch}" / "probes-reference.npz") as data:
        assert (data["ids"][:, 0] == bos).all()  # what the recording put first, from transformers' tokenizer and config


def test_a_bos_token_id_past_the_embedding_is_refused_in_one_line(tmp_path):
    import json
    import shutil

    from .conftest import run

    folder = tmp_path / "gpt2"
    shutil.copytree(MODELS / "tiny-gpt2", folder)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    (folder / "config.json").write_text(json.dumps({**config, "bos_token_id": 50256}), encoding="utf-8")  # GPT2Config's default, past 299 rows
    result = run("heads", "--model", str(folder), "--probe", "induction", "--sequences", "2", "--length", "4")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1
    assert "the bos_token_id 50256 of" in result.stderr and "is past its 299 token embeddings" in result.stderr


def test_smollm2_top_heads_of_the_first_sequences_are_those_transformers_ranks_first():
    """The first few of the 50 seeded sequences (the same draws: a longer run continues the same stream).
    Over all 50, transformers ranks L18 H7 first for induction (0.92), L16 H0 for previous (0.96)."""
    from attnviz_cli.models import load_model
    from attnviz_cli.models.probe_inputs import bos_prefix, probe_heads, probe_vocabulary

    model = load_model(need_smollm2())
    with np.load(MODELS / "smollm2-probes-reference.npz") as data:
        ids, per_sequence = data["ids"], data["per_sequence"]
    length = (ids.shape[1] - 1) // 2
    assert_array_equal(bos_prefix(model), [1])  # <|im_start|>, which transformers' GGUF tokenizer puts first
    assert_array_equal(repeated_sequences(probe_vocabulary(model)[0], FEW, length, 0, bos_prefix(model)), ids[:FEW])
    result = probe_heads(model, PROBES, sequences=FEW, length=length, seed=0)
    expected = per_sequence[:FEW].mean(axis=0)  # (3, L, h)
    assert result.scores is not None
    # Q4_1 weights dequantized alike; float32 forward passes summed in another order
    assert_allclose(result.scores, expected, atol=2e-3)
    for p in range(len(PROBES)):
        assert result.scores[p].argmax() == expected[p].argmax(), PROBES[p]


def test_attn_heads_probe_json_csv_and_grid_agree_and_follow_the_schema():
    import csv
    import io
    import json

    import jsonschema

    from attnviz_cli.models import load_model
    from attnviz_cli.models.probe_inputs import probe_heads

    from .conftest import run

    base = ("heads", "--model", str(MODELS / "tiny-llama"), "--probe", "previous", "--probe", "induction", "--sequences", "3", "--length", "8", "--dtype", "float64")
    result = run(*base, "-f", "json")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    jsonschema.validate(record, json.loads(run("schema", "heads").stdout))
    assert record["probes"] == ["induction", "previous"]  # PROBES' order, whatever the command line's
    # tiny-llama's byte-level BPE has 300 ids: less <|endoftext|> and <s> (special) and the 33 single bytes
    # that are control characters (0x00-0x1F, ids 190-221, and 0x7F, id 223)
    assert record["inputs"] == {"sequences": 3, "length": 8, "repeats": 2, "seed": 0, "bos": 1, "vocabulary": 300 - 2 - 33}
    with np.load(MODELS / "tiny-llama" / "probes-reference.npz") as data:
        expected = data["scores"]
    got = np.array([[[record["heads"][i * 4 + h]["scores"][p] for h in range(4)] for i in range(2)] for p in ("induction", "previous")])
    assert_allclose(got, expected[:2], atol=1e-6)  # transformers' eager softmax runs in float32
    rows = list(csv.DictReader(io.StringIO(run(*base, "-f", "csv").stdout)))
    assert len(rows) == 8 and float(rows[6]["induction"]) == pytest.approx(record["heads"][6]["scores"]["induction"], rel=1e-5)
    table = run(*base)
    assert table.exit_code == 0, table.output
    result = probe_heads(load_model(MODELS / "tiny-llama", dtype="float64"), ("induction", "previous"), sequences=3, length=8, seed=0)
    assert result.scores is not None
    lines = table.stdout.splitlines()

    def cell(score: float) -> str:
        return "·" if score < 0.1 else str(min(9, int(score * 10)))

    for p, probe in enumerate(("induction", "previous")):
        at = lines.index(f"{probe}: each head's mean score in tenths (9: 0.9 or more; ·: under 0.1)")
        rows = [f"    {i} {cell(s[0])} {cell(s[1])}  {cell(s[2])} {cell(s[3])}" for i, s in enumerate(result.scores[p])]
        assert lines[at + 1:at + 5] == ["L\\H   0 1  2 3", *rows, "top 8"]  # 2 key/value heads: a gap between their groups
        best = np.argsort(-result.scores[p], axis=None, kind="stable")[0]
        assert lines[at + 5].startswith(f"L{best // 4} H{best % 4} {result.scores[p].flat[best]:.2f}")
    assert max(len(line) for line in table.stdout.splitlines()) <= 80


def test_attn_heads_probe_options_need_probe_and_no_file(tmp_path):
    from .conftest import run

    tiny = str(MODELS / "tiny-llama")
    result = run("heads", "--model", tiny, "--sequences", "3")
    assert result.exit_code == 2 and "--sequences shapes the random sequences --probe builds: it needs --probe" in result.stderr
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("a b a b\n", encoding="utf-8")
    result = run("heads", str(corpus), "--model", tiny, "--probe", "induction", "--seed", "3")
    assert result.exit_code == 2 and "with FILE the probes score its texts" in result.stderr
    result = run("heads", "--model", tiny, "--probe", "induction", "--length", "5000")
    assert result.exit_code == 1 and result.stderr.count("\n") == 1 and "--length 5000 makes sequences of 10001 tokens" in result.stderr


def test_attn_heads_probe_save_draws_each_probes_grid_with_its_scores(tmp_path):
    import json

    from .conftest import run

    base = ("heads", "--model", str(MODELS / "tiny-llama"), "--probe", "previous", "--sequences", "3", "--length", "8")
    record = json.loads(run(*base, "-f", "json", "--save", str(tmp_path / "grid.svg")).stdout)
    svg = (tmp_path / "grid.svg").read_text(encoding="utf-8")
    assert ">previous<" in svg and f"3 random sequences of 2 × 8 tokens after the BOS (seed 0, from {record['inputs']['vocabulary']} token ids)" in svg
    for entry in record["heads"]:
        assert f">{entry['scores']['previous']:.2f}<".replace(">0.", ">.") in svg


def test_massive_activations_by_hand_and_against_a_plain_loop():
    from attnviz_cli.models.activations import massive_activations

    hidden = np.array([[[1.0, -2.0], [3.0, -400.0]], [[0.5, 0.5], [0.5, 0.0]]])  # (L=2, T=2, d=2)
    m = massive_activations(hidden)
    assert m.value.tolist() == [-400.0, 0.5] and m.position.tolist() == [1, 0] and m.dim.tolist() == [1, 0]
    assert m.median.tolist() == [2.5, 0.5] and m.ratio.tolist() == [160.0, 1.0]  # medians of |h|: (2 + 3) / 2, 0.5
    zero = massive_activations(np.zeros((1, 2, 2)))
    assert np.isnan(zero.ratio[0]) and zero.value[0] == 0.0  # an all-zero state: no ratio, and no warning
    rng = np.random.default_rng(1)
    hidden = rng.standard_normal((3, 5, 7))
    m = massive_activations(hidden)
    for layer in range(3):
        flat = [(abs(hidden[layer, t, d]), t, d) for t in range(5) for d in range(7)]
        top, t, d = max(flat)
        assert (m.position[layer], m.dim[layer], m.value[layer]) == (t, d, hidden[layer, t, d])
        assert m.ratio[layer] == pytest.approx(top / sorted(f[0] for f in flat)[17], rel=1e-15)  # 35 values: the 18th


@pytest.mark.parametrize("arch", ["llama", "gemma2", "qwen2"])
def test_inspect_json_gives_each_layers_massive_activation_as_transformers_hidden_states_have_it(arch):
    import json

    from .conftest import run

    with np.load(MODELS / f"tiny-{arch}" / "reference.npz") as data:
        hidden = data["3/float64/hidden_states"][1:]  # (L, T, d): after each layer, the last after the final norm
        ids = data["3/ids"]
    text = "the water flows by the river bank and I sat on the bank at the river"  # make_tiny_decoders.py's text 3
    record = json.loads(run("inspect", text, "--model", str(MODELS / f"tiny-{arch}"), "-f", "json", "--dtype", "float64").stdout)
    assert record["token_ids"] == ids.tolist()
    for layer, entry in enumerate(record["layers"]):
        magnitude = np.abs(hidden[layer])
        t, d = np.unravel_index(magnitude.argmax(), magnitude.shape)
        assert (entry["massive"]["position"], entry["massive"]["dim"]) == (t, d)
        assert entry["massive"]["token"] == record["tokens"][t]  # the piece there, as in tokens
        assert entry["massive"]["value"] == pytest.approx(hidden[layer, t, d], rel=1e-6)  # softmax in float32 in transformers
        assert entry["massive"]["ratio"] == pytest.approx(magnitude.max() / np.median(magnitude), rel=1e-5)


def big_record(L: int, H: int, kv_heads: int) -> dict:
    """An attn heads record of L x H heads: head h of layer i labelled by (i + h) % 3, its share and
    induction score (i * H + h) / (L * H)."""
    labels = ["sink", "previous", "broad"]
    heads = [{"layer": i, "head": h, "label": labels[(i + h) % 3], "share": (i * H + h) / (L * H),
              "scores": {"induction": (i * H + h) / (L * H)}} for i in range(L) for h in range(H)]
    model = {"name": "big", "architecture": "llama", "layers": L, "heads": H, "kv_heads": kv_heads}
    return {"config": {"model": model}, "texts": 3, "tokens": 30, "skipped": 0, "heads": heads, "probes": ["induction"],
            "inputs": {"sequences": 50, "length": 64, "repeats": 2, "seed": 0, "bos": 1, "vocabulary": 1000}}


def rendered(renderable) -> list[str]:
    import io

    from rich.console import Console

    console = Console(width=80, file=io.StringIO(), color_system=None)
    console.print(renderable)
    return [line.rstrip() for line in console.file.getvalue().splitlines()]


def test_a_probes_matrix_and_what_went_in_are_read_once_from_the_record():
    from attnviz_cli.render_head_grid import inputs_text, probe_matrix

    record = big_record(3, 4, 2)
    assert_array_equal(probe_matrix(record, "induction"), np.arange(12).reshape(3, 4) / 12)  # (i * H + h) / (L * H)
    assert inputs_text(record) == "50 random sequences of 2 × 64 tokens after the BOS (seed 0, from 1,000 token ids)"
    texts = {**record, "inputs": None, "texts": 1200, "tokens": 34567, "skipped": 2}
    assert inputs_text(texts) == "1,200 texts (34,567 tokens; 2 skipped)"
    assert inputs_text({k: v for k, v in texts.items() if k != "inputs"}) == "1,200 texts (34,567 tokens; 2 skipped)"  # no --probe
    from attnviz_cli.render_head_grid import probes_view

    lines = rendered(probes_view(record, 1.0))
    assert lines[1].startswith("inputs       50 random sequences") and lines[2].startswith(" " * 13)  # wrapped under itself at 80 columns
    assert f"{lines[1]} {lines[2].strip()}" == f"inputs       {inputs_text(record)} in 1.0 s"


@pytest.mark.parametrize(("L", "H", "kv_heads"), [(30, 9, 3), (32, 32, 8), (32, 32, 32)])
def test_270_and_1024_heads_fit_80_columns_as_grids_with_their_top_heads(L, H, kv_heads):
    from attnviz_cli.render_head_grid import labels_view, probes_view

    record = big_record(L, H, kv_heads)
    labels = rendered(labels_view(record, 1.0))
    scores = rendered(probes_view(record, 1.0))
    assert max(len(line) for line in labels + scores) <= 80
    chars = {"sink": "S", "previous": "p", "broad": "b"}
    body = [line for line in labels if line[:5].strip().isdigit()]
    assert len(body) == L and all(len(line.split()) == H + 1 for line in body)  # a layer a line, a cell a head
    assert body[-1].split()[1:] == [chars[["sink", "previous", "broad"][(L - 1 + h) % 3]] for h in range(H)]
    sink = sum(1 for i in range(L) for h in range(H) if (i + h) % 3 == 0)
    top_sink = max(((i * H + h) / (L * H), i, h) for i in range(L) for h in range(H) if (i + h) % 3 == 0)
    assert f"S sink ({sink}): L{top_sink[1]} H{top_sink[2]} {top_sink[0]:.2f}" in " ".join(labels)
    at = scores.index("top 10")
    best = L * H - 1
    assert scores[at + 1].startswith(f"L{best // H} H{best % H} {best / (L * H):.2f}".ljust(15) + f"L{(best - 1) // H} H{(best - 1) % H} ")


def test_attn_heads_shows_a_model_past_the_threshold_as_the_grid_of_labels(tmp_path, monkeypatch):
    import json

    import attnviz_cli.render_head_grid as grid

    from .conftest import run

    corpus = tmp_path / "corpus.txt"
    corpus.write_text("I sat on the river bank\nthe river flows\n", encoding="utf-8")
    base = ("heads", str(corpus), "--model", str(MODELS / "tiny-llama"))
    record = json.loads(run(*base, "-f", "json").stdout)
    assert "by label" not in run(*base).stdout  # 8 heads: a row each
    monkeypatch.setattr(grid, "GRID_PAST", 4)
    lines = run(*base).stdout.splitlines()
    at = lines.index("what each head attends to, by label (every number: -f json or -f csv)")
    cells = [[grid.LABEL_CHARS[e["label"]] for e in record["heads"] if e["layer"] == i] for i in range(2)]
    assert lines[at + 1:at + 4] == ["L\\H   0 1  2 3", *(f"    {i} {c[0]} {c[1]}  {c[2]} {c[3]}" for i, c in enumerate(cells))]


@pytest.mark.slow
def test_probe_scores_in_worker_processes_equal_those_in_one():
    from attnviz_cli.models import load_model
    from attnviz_cli.models.corpus import Encoded, encoded_patterns
    from attnviz_cli.models.probe_inputs import bos_prefix, probe_vocabulary

    model = load_model(MODELS / "tiny-llama", dtype="float64")
    ids = repeated_sequences(probe_vocabulary(model)[0], 6, 5, 0, bos_prefix(model))
    texts = [Encoded(n, row, np.zeros(len(row), bool)) for n, row in enumerate(ids)]
    alone = encoded_patterns(model, texts, probes=PROBES)
    parallel = encoded_patterns(model, texts, probes=PROBES, workers=2, batch_size=2, parallel_after=0)
    assert parallel.texts == alone.texts == 6
    assert_allclose(parallel.mean_scores(), alone.mean_scores(), rtol=1e-12)  # float64 sums of the same numbers in another order
    assert_allclose(parallel.mean().sink, alone.mean().sink, rtol=1e-12)


def test_the_overview_of_32_layers_by_32_heads_is_a_grid_of_labels_at_80_columns():
    from attnviz_cli.core import softmax
    from attnviz_cli.models import ModelConfig, ModelRun
    from attnviz_cli.models.pipeline import ModelShow, inspect_run
    from attnviz_cli.render_head_grid import LABEL_CHARS
    from attnviz_cli.render_model_table import overview

    L, H, T = 32, 32, 6
    scores = np.random.default_rng(2).normal(size=(L, H, T, T)) * 3
    scores[:, ::2, :, 0] += 8  # every other head a sink
    scores = np.where(np.tri(T, dtype=bool), scores, -np.inf)
    words = [f"w{i}" for i in range(T)]
    zeros = np.zeros((L, H, T, 1))
    hidden = np.zeros((L + 1, T, 4))
    hidden[12, 0, 3] = -500.0  # after layer 11: token 0, dim 3
    hidden[1:, 1:, :] = 1.0
    fake = ModelRun(
        token_ids=np.arange(T), tokens=tuple(words), special=(False,) * T, words=tuple(range(T)),
        offsets=tuple((3 * i, 3 * i + len(w)) for i, w in enumerate(words)), scores=scores, attentions=softmax(scores),
        hidden_states=hidden, queries=zeros, keys=zeros, values=zeros, head_outputs=zeros,
    )
    config = ModelConfig("synthetic", "llama", L, H, 128, 512, 1e-6, 0, "float64", kv_heads=8)
    result = inspect_run(fake, config, " ".join(words), ModelShow())
    from rich.console import Group

    lines = rendered(Group(*overview(result)))
    assert max(len(line) for line in lines) <= 80
    body = [line for line in lines if line[:5].strip().isdigit()]
    assert len(body) == L
    assert body[5].split()[1:] == [LABEL_CHARS[str(label)] for label in result.heads.labels[5]]
    assert "S" in body[5].split()  # the sinks made above
    assert lines[-2] == "largest |h| -500.0 = 500× median (layer 11, dim 3, token 0 w0)"  # the median of its 24 entries, 20 of them 1


def test_attn_heads_probe_with_file_scores_its_texts_each_counting_once(tmp_path):
    import json

    from .conftest import run

    texts = ["the river bank and the river bank", "I sat on the bank, I sat on the bank", "the river flows"]  # record_probes.py's FILE_TEXTS
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(texts) + "\n", encoding="utf-8")
    result = run("heads", str(corpus), "--model", str(MODELS / "tiny-gpt2"), "--probe", "duplicate", "--probe", "induction", "-f", "json", "--dtype", "float64")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    assert record["probes"] == ["induction", "duplicate"] and record["inputs"] is None and record["texts"] == 3
    with np.load(MODELS / "tiny-gpt2" / "probes-reference.npz") as data:  # transformers' attentions of these texts, scored as TransformerLens does
        expected, tokens = data["file_scores"][[PROBES.index("induction"), PROBES.index("duplicate")]], int(data["file_tokens"])
    assert record["tokens"] == tokens  # the texts as the tokenizer splits them, no BOS put first: column 0 is a real token
    got = np.array([[[record["heads"][i * 4 + h]["scores"][probe] for h in range(4)] for i in range(2)] for probe in ("induction", "duplicate")])
    assert_allclose(got, expected, atol=1e-6)  # transformers' eager softmax runs in float32 even in a float64 model
    assert got.max() > 0.05  # the repeats give the patterns something to find


def test_sequences_drawn_a_chunk_at_a_time_are_those_drawn_at_once():
    from attnviz_cli.models.probes import repeated_chunks

    vocabulary = np.arange(3, 1000)
    whole = repeated_sequences(vocabulary, 10, 7, 5, np.array([1]))
    chunks = list(repeated_chunks(vocabulary, 10, 7, 5, np.array([1]), chunk=3))
    assert [len(c) for c in chunks] == [3, 3, 3, 1]
    assert_array_equal(np.concatenate(chunks), whole)


def test_long_sequences_run_fewer_at_a_time():
    from attnviz_cli.models import load_model
    from attnviz_cli.models.probe_inputs import BATCH_BYTES, batch_size

    model = load_model(MODELS / "tiny-llama")  # 4 heads, float32: 32 bytes a query-key pair for scores and weights
    assert batch_size(model, 129) == 64
    assert batch_size(model, 1025) == BATCH_BYTES // (32 * 1025 * 1025) == 7
    assert batch_size(model, 8193) == 1

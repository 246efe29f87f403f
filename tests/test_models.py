"""Real transformers in NumPy against Hugging Face transformers (eager attention): tiny random models
made by tests/models/make_tiny.py, with transformers' attentions and hidden states recorded beside
them, so these tests run without torch; and live against transformers where it is installed."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from attnviz_cli.errors import AttnvizError
from attnviz_cli.models import load_model
from attnviz_cli.models.model import stack_freeing

MODELS = Path(__file__).resolve().parent / "models"
KINDS = ("bert", "roberta", "distilbert", "gpt2")
TEXTS = ["I sat on the river bank", "I deposited money at the bank", "the bank by the river bank flows"]
TOLERANCE = {"float64": 1e-9, "float32": 1e-5}


def reference(kind: str) -> dict[str, np.ndarray]:
    with np.load(MODELS / f"tiny-{kind}" / "reference.npz") as data:
        return dict(data)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", KINDS)
def test_attentions_and_hidden_states_match_transformers(kind, dtype):
    model = load_model(MODELS / f"tiny-{kind}", dtype=dtype)
    recorded = reference(kind)
    for t, text in enumerate(TEXTS):
        run = model.run(text)
        np.testing.assert_array_equal(run.token_ids, recorded[f"{t}/ids"])  # the same tokens, no padding
        tol = TOLERANCE[dtype]
        assert run.attentions.dtype == dtype and run.hidden_states.dtype == dtype
        assert_allclose(run.attentions, recorded[f"{t}/{dtype}/attentions"], rtol=tol, atol=tol)
        assert_allclose(run.hidden_states, recorded[f"{t}/{dtype}/hidden_states"], rtol=tol, atol=tol * 10)


@pytest.mark.parametrize("kind", KINDS)
def test_the_attention_is_far_from_uniform_so_the_comparison_means_something(kind):
    run = load_model(MODELS / f"tiny-{kind}", dtype="float64").run(TEXTS[0])
    T = run.attentions.shape[-1]
    assert run.attentions.max() > 0.5 and run.attentions.max() > 3 / T
    assert_allclose(run.attentions.sum(axis=-1), 1.0, rtol=1e-12)
    if kind == "gpt2":  # causal: nothing above the diagonal
        assert np.triu(run.attentions, k=1).max() == 0.0


@pytest.mark.parametrize("kind", KINDS)
def test_a_batch_shared_among_threads_gives_the_bits_of_one_thread_and_of_each_text_alone(kind):
    from attnviz_cli.engine import Runner
    from attnviz_cli.models.layers import THREADED_ROWS

    model = load_model(MODELS / f"tiny-{kind}", dtype="float64")
    vocab = model.tokenizer.get_vocab_size()
    ids = np.random.default_rng(7).integers(5, vocab, size=(6, 50))
    assert ids.size >= THREADED_ROWS and Runner(2, ids.size, threaded_from=THREADED_ROWS).workers == 2  # so threads do run
    hidden1, attended1 = model.forward(ids, threads=1)
    hidden2, attended2 = model.forward(ids, threads=2)
    for one, two in zip(hidden1, hidden2, strict=True):
        assert_array_equal(one, two)
    for one, two in zip(attended1, attended2, strict=True):
        assert_array_equal(one.weights, two.weights)
    hidden, attended = model.forward(ids[4])  # one text alone: 50 rows, one block, no threads
    assert_allclose(hidden2[-1][4], hidden[-1], rtol=1e-12, atol=1e-12)
    assert_allclose(attended2[-1].weights[4], attended[-1].weights, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_attention_only_stops_after_the_last_attention_with_the_same_numbers(kind):
    model = load_model(MODELS / f"tiny-{kind}", dtype="float64")
    L = model.config.layers
    ids = np.random.default_rng(3).integers(5, model.tokenizer.get_vocab_size(), size=(2, 9))
    for batch in (ids, ids[1]):  # (B, T) as attn heads sends them, and one text (T,)
        hidden, attended = model.forward(batch)
        short_hidden, short_attended = model.forward(batch, attention_only=True)
        assert len(hidden) == L + 1 and len(short_hidden) == L  # the last layer's output is never made
        for full, short in zip(hidden[:L], short_hidden, strict=True):  # GPT-2's last, after ln_f, left out
            assert_array_equal(full, short)
        for full, short in zip(attended, short_attended, strict=True):  # the same steps on the same input
            for part in full._fields:
                assert_array_equal(getattr(full, part), getattr(short, part))


def test_the_layer_loop_runs_any_page_registered():
    from attnviz_cli.models.architecture import Architecture
    from attnviz_cli.models.model import ARCHITECTURES, PAGES, run_layers

    assert ARCHITECTURES[:4] == ("bert", "roberta", "distilbert", "gpt2")
    assert {t: PAGES[t].causal for t in ARCHITECTURES} == {"bert": False, "roberta": False, "distilbert": False} | {t: True for t in ARCHITECTURES[3:]}
    assert PAGES["distilbert"].layer is PAGES["bert"].layer  # DistilBERT's layer is BERT's
    page = Architecture(  # a toy page: each layer scales x, and the final step shifts it
        model_types=("toy",), config=dict, prefix="", marker="",
        params=lambda ckpt, config: {}, embed=lambda ids, p: p["wte"][ids],
        layer=lambda x, scale, n_head: (x * scale, ("layer", scale, n_head)),
        attend=lambda x, block, n_head: ("attend", block["scale"], x.tolist()),
        final=lambda x, p: x + p["shift"],
    )
    params = {"wte": np.array([[1.0], [10.0]]), "shift": 0.5, "blocks": [{"scale": 2.0}, {"scale": 3.0}, {"scale": 5.0}]}
    hidden, attended = run_layers(page, params, np.array([0, 1]), n_head=4)
    assert [h.ravel().tolist() for h in hidden] == [[1, 10], [2, 20], [6, 60], [30.5, 300.5]]  # the last after final
    assert attended == [("layer", 2.0, 4), ("layer", 3.0, 4), ("layer", 5.0, 4)]
    hidden, attended = run_layers(page, params, np.array([0, 1]), n_head=4, attention_only=True)
    assert [h.ravel().tolist() for h in hidden] == [[1, 10], [2, 20], [6, 60]]
    assert attended == [("layer", 2.0, 4), ("layer", 3.0, 4), ("attend", 5.0, [[6.0], [60.0]])]


def test_tokens_are_the_models_own_with_specials_marked_and_words_traced():
    run = load_model(MODELS / "tiny-bert").run("the rivers banked")
    assert run.tokens[0] == "[CLS]" and run.tokens[-1] == "[SEP]"
    assert run.special[0] and run.special[-1] and not any(run.special[1:-1])
    assert run.words[0] is None and run.words[1] == 0  # "the" is word 0
    assert run.tokens[1:-1] == ("the", "river", "##s", "bank", "##ed")
    assert run.words[1:-1] == (0, 1, 1, 2, 2)  # one word, two pieces: --focus can find a word by its pieces


@pytest.mark.parametrize("kind", KINDS)
def test_live_against_transformers(kind):
    from .conftest import need_module

    torch, transformers = need_module("torch"), need_module("transformers")
    hf = transformers.AutoModel.from_pretrained(MODELS / f"tiny-{kind}", attn_implementation="eager").double().eval()
    model = load_model(MODELS / f"tiny-{kind}", dtype="float64")
    run = model.run("the river bank flows by the bank")
    with torch.no_grad():
        out = hf(torch.from_numpy(run.token_ids[None]), output_attentions=True, output_hidden_states=True)
    assert_allclose(run.attentions, torch.stack(out.attentions)[:, 0].numpy(), rtol=1e-9, atol=1e-9)
    assert_allclose(run.hidden_states, torch.stack(out.hidden_states)[:, 0].numpy(), rtol=1e-9, atol=1e-8)


# ---- bad models: one clear error each ------------------------------------------------------------------


def _copy(kind: str, target: Path) -> Path:
    import shutil

    shutil.copytree(MODELS / f"tiny-{kind}", target)
    return target


def test_a_missing_folder_an_unsupported_architecture_and_a_pickle_only_model(tmp_path):
    with pytest.raises(AttnvizError, match=r"no model '.*nope': not a folder, nor a Hub id \(huggingface_hub: Repo id must be in the form 'repo_name' or 'namespace/repo_name'\)$"):
        load_model(tmp_path / "nope")
    folder = _copy("bert", tmp_path / "t5")
    (folder / "config.json").write_text('{"model_type": "t5"}')
    with pytest.raises(AttnvizError, match="is a 't5'; attnviz runs bert, roberta, distilbert, gpt2"):
        load_model(folder)
    pickled = _copy("bert", tmp_path / "pickled")
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(AttnvizError, match=r"has only pytorch_model\.bin, a pickle, which attnviz never loads"):
        load_model(pickled)


def test_a_hub_id_is_found_in_the_hugging_face_cache_offline(tmp_path, monkeypatch):
    import shutil

    cache = tmp_path / "hub"
    snapshot = cache / "models--acme--tiny-bert" / "snapshots" / "0123abcd"
    shutil.copytree(MODELS / "tiny-bert", snapshot)
    (cache / "models--acme--tiny-bert" / "refs").mkdir()
    (cache / "models--acme--tiny-bert" / "refs" / "main").write_text("0123abcd\n")
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    assert load_model("acme/tiny-bert").folder == snapshot
    monkeypatch.delenv("HF_HUB_CACHE")
    monkeypatch.setenv("HF_HOME", str(tmp_path))  # HF_HOME/hub
    assert load_model("acme/tiny-bert").folder == snapshot
    with pytest.raises(AttnvizError, match=r"no model 'acme/other'.*attn model download acme/other"):
        load_model("acme/other")


def test_damaged_weights_are_refused(tmp_path):
    truncated = _copy("bert", tmp_path / "truncated")
    data = (truncated / "model.safetensors").read_bytes()
    (truncated / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(AttnvizError, match="cannot be read"):
        load_model(truncated).run("the bank")
    lying = _copy("bert", tmp_path / "lying")
    raw = bytearray((lying / "model.safetensors").read_bytes())
    raw[8:16] = b'{"a":1}\x20'  # a header that no longer describes the file
    (lying / "model.safetensors").write_bytes(bytes(raw))
    with pytest.raises(AttnvizError, match="cannot be read"):
        load_model(lying).run("the bank")


def test_nan_weights_and_a_config_that_disagrees_with_the_weights(tmp_path):
    from safetensors.numpy import load_file, save_file

    nan = _copy("gpt2", tmp_path / "nan")
    tensors = load_file(nan / "model.safetensors")
    name = next(n for n in tensors if n.endswith("h.0.ln_1.weight"))
    tensors[name] = np.full_like(tensors[name], np.nan)
    save_file(tensors, nan / "model.safetensors")
    with pytest.raises(AttnvizError, match="holds NaN or infinite values"):
        load_model(nan).run("the bank")
    wider = _copy("bert", tmp_path / "wider")
    config = (wider / "config.json").read_text().replace('"num_hidden_layers": 2', '"num_hidden_layers": 3')
    (wider / "config.json").write_text(config)
    with pytest.raises(AttnvizError, match=r"hold 2 layers, where config.json says 3"):  # counted before anything is built
        load_model(wider).run("the bank")
    config = (wider / "config.json").read_text().replace('"num_hidden_layers": 3', '"num_hidden_layers": 1000000000000000000')
    (wider / "config.json").write_text(config)
    with pytest.raises(AttnvizError, match=r"hold 2 layers, where config.json says 1000000000000000000"):
        load_model(wider)


@pytest.mark.parametrize(("kind", "fields"), [  # each page's mapping of config.json to ModelConfig's fields
    ("bert", (2, 64, 1e-12, 0)),
    ("roberta", (2, 65, 1e-12, 1)),  # 66 position rows; positions start after its pad_token_id, 0
    ("distilbert", (2, 64, 1e-12, 0)),  # the epsilon of DistilBERT's code
    ("gpt2", (2, 64, 1e-5, 0)),
])
def test_config_json_is_read_by_its_pages_names(kind, fields):
    from attnviz_cli.models.model import read_config

    c = read_config(MODELS / f"tiny-{kind}", "float64")
    assert (c.architecture, c.layers, c.max_positions, c.eps, c.position_offset, c.d_model, c.dtype) == (kind, *fields, 32, "float64")


@pytest.mark.parametrize(("kind", "change", "message"), [
    ("gpt2", ('"n_layer": 2,', ""), "config.json lacks 'n_layer'"),
    ("distilbert", ('"dim": 32', '"width": 32'), "config.json lacks 'dim'"),
    ("roberta", ('"pad_token_id": 0', '"pad_token_id": "none"'), "config.json: pad_token_id is the string 'none'; it must be a whole number from -1 to 2,147,483,648"),
    ("bert", ('"num_attention_heads": 4', '"num_attention_heads": 5'), "config.json has 2 layers and 5 heads of width 32"),
])
def test_a_config_json_without_what_its_page_needs_is_a_one_line_error(tmp_path, kind, change, message):
    folder = _copy(kind, tmp_path / kind)
    text = (folder / "config.json").read_text()
    assert change[0] in text
    (folder / "config.json").write_text(text.replace(change[0], change[1]))
    with pytest.raises(AttnvizError, match=re.escape(message)) as error:
        load_model(folder)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(("kind", "ending", "change"), [
    ("bert", "layer.0.attention.self.key.weight", "one more column"),  # no longer (d, d)
    ("bert", "layer.1.intermediate.dense.weight", "one more row"),  # a feed-forward width unlike layer 0's
    ("bert", "layer.0.attention.self.key.weight", "flattened"),  # not a matrix
    ("gpt2", "h.1.mlp.c_fc.weight", "one more column"),
    ("distilbert", "layer.0.sa_layer_norm.weight", "one more row"),
])
def test_a_weight_of_the_wrong_shape_is_a_one_line_error_naming_it(tmp_path, kind, ending, change):
    from safetensors.numpy import load_file, save_file
    from typer.testing import CliRunner

    from attnviz_cli.cli import app

    folder = _copy(kind, tmp_path / kind)
    tensors = load_file(folder / "model.safetensors")
    name = next(n for n in tensors if n.endswith(ending))
    right = tensors[name].shape
    wrong = {"one more column": (*right[:-1], right[-1] + 1), "one more row": (right[0] + 1, *right[1:]), "flattened": (tensors[name].size,)}[change]
    tensors[name] = np.zeros(wrong, np.float32)
    save_file(tensors, folder / "model.safetensors")
    message = rf"'{name}' has shape {re.escape(str(wrong))}, where config.json and the other weights make it {re.escape(str(right))}"
    with pytest.raises(AttnvizError, match=message):
        load_model(folder)
    result = CliRunner().invoke(app, ["inspect", "the bank", "--model", str(folder)])
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert re.fullmatch(rf"attn: error: model weights .*{message}\n", result.output)  # one line


def test_a_matrix_transposed_a_tile_at_a_time_is_its_transpose():
    from hypothesis import given, settings
    from hypothesis import strategies as st

    from attnviz_cli.models.weights import TILE, transposed

    @settings(max_examples=30, deadline=None)
    @given(st.integers(1, 3 * TILE[0] + 1), st.integers(1, 2 * TILE[1] + 1))
    def check(rows, cols):
        a = np.random.default_rng(rows * cols).standard_normal((rows, cols)).astype(np.float32)
        assert_array_equal(transposed(a, np.empty((cols, rows), np.float32)), a.T)
        wider = np.empty((cols + 2, rows), np.float64)[1:-1]  # into a part of a larger array, widened
        assert transposed(a, wider) is wider
        assert_array_equal(wider, a.T.astype(np.float64))

    check()


def _write_safetensors(path: Path, tensors: dict[str, tuple[str, np.ndarray]]) -> None:
    """A safetensors file written by hand (name -> (dtype tag, raw array)), as the format describes it,
    so that dtypes NumPy lacks (bfloat16) can be written too."""
    import json
    import struct

    header, offset, blobs = {}, 0, []
    for name, (tag, array) in tensors.items():
        data = np.ascontiguousarray(array).tobytes()
        header[name] = {"dtype": tag, "shape": list(array.shape), "data_offsets": [offset, offset + len(data)]}
        offset += len(data)
        blobs.append(data)
    text = json.dumps(header).encode()
    text += b" " * (-len(text) % 8)
    path.write_bytes(struct.pack("<Q", len(text)) + text + b"".join(blobs))


@pytest.mark.parametrize("tag", ["F16", "BF16"])
def test_half_precision_weights_are_read_and_run_in_float32(tmp_path, tag):
    """Checkpoints stored in float16 or bfloat16 (which NumPy has no type for: its bits are a float32's
    upper half) run in float32, close to the float32 model they were rounded from."""
    from safetensors.numpy import load_file

    folder = _copy("bert", tmp_path / tag)
    tensors = load_file(folder / "model.safetensors")
    if tag == "F16":
        stored = {n: ("F16", t.astype(np.float16)) for n, t in tensors.items()}
        rounded = {n: t.astype(np.float16).astype(np.float32) for n, t in tensors.items()}
    else:
        bits = {n: (t.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16) for n, t in tensors.items()}
        stored = {n: ("BF16", b) for n, b in bits.items()}
        rounded = {n: (b.astype(np.uint32) << 16).view(np.float32) for n, b in bits.items()}
    _write_safetensors(folder / "model.safetensors", stored)
    params = load_model(folder).params
    layer = "encoder.layer.0."
    rows = params["wte"][np.array([3, 0, 7])]  # read through the memory map, converted as they are read
    assert rows.dtype == np.float32
    assert_array_equal(rows, rounded["embeddings.word_embeddings.weight"][[3, 0, 7]])  # exactly the stored values, widened
    assert_array_equal(params["blocks"][0]["ln_1"]["g"], rounded[layer + "attention.output.LayerNorm.weight"])
    for key, linear in (("ffn_in", "intermediate.dense"), ("ffn_out", "output.dense")):  # one copied row by row, one a view
        assert_array_equal(params["blocks"][0][key]["w"], rounded[f"{layer}{linear}.weight"].T)
    side_by_side = params["blocks"][0]["attn"]["w"]
    assert_array_equal(side_by_side, np.concatenate([rounded[f"{layer}attention.self.{p}.weight"].T for p in ("query", "key", "value")], axis=1))
    run = load_model(folder).run(TEXTS[0])
    full = load_model(MODELS / "tiny-bert").run(TEXTS[0])
    assert_allclose(run.attentions, full.attentions, atol=0.05)  # rounding moves them, a little
    assert np.abs(run.attentions - full.attentions).max() > 0  # but it is the rounded model that ran


def test_a_token_id_outside_the_embedding_table_is_an_error():
    table = load_model(MODELS / "tiny-bert").params["wte"]
    assert table[np.array([0, 2])].shape == (2, 32)
    with pytest.raises(AttnvizError, match=r"'embeddings.word_embeddings.weight' of shape \(44, 32\) has no row 100000"):
        table[np.array([1, 100000])]


def test_query_key_and_value_are_read_as_one_matrix_side_by_side_and_every_tensor_once():
    from safetensors.numpy import load_file

    params = load_model(MODELS / "tiny-bert", dtype="float64").params
    layer = "encoder.layer.1.attention.self."
    stored = load_file(MODELS / "tiny-bert" / "model.safetensors")
    attn = params["blocks"][1]["attn"]
    d = stored[layer + "query.weight"].shape[0]
    assert attn["w"].shape == (d, 3 * d) and attn["w"].flags.c_contiguous and attn["b"].shape == (3 * d,)  # row by row, for x @ W
    for i, part in enumerate(("query", "key", "value")):  # x @ W applies PyTorch's (out, in) weight as x @ W_part.T
        assert_array_equal(attn["w"][:, i * d:(i + 1) * d], stored[f"{layer}{part}.weight"].T)
        assert_array_equal(attn["b"][i * d:(i + 1) * d], stored[f"{layer}{part}.bias"])
    arrays = [a for block in params["blocks"] for part in block.values() for a in part.values() if isinstance(a, np.ndarray)]
    arrays += [a for a in params["ln_emb"].values() if isinstance(a, np.ndarray)]
    read = sum(a.size for a in arrays)
    tables = sum(t.size for n, t in stored.items() if "_embeddings." in n)  # left in the file, memory-mapped
    assert read == sum(t.size for t in stored.values()) - tables  # every other tensor read, none twice


def test_robertas_positions_start_after_its_padding_id():
    from safetensors.numpy import load_file

    model = load_model(MODELS / "tiny-roberta", dtype="float64")
    offset = model.config.position_offset
    stored = load_file(MODELS / "tiny-roberta" / "model.safetensors")["embeddings.position_embeddings.weight"]
    assert offset == 1  # its pad_token_id is 0
    assert_array_equal(model.params["wpe"][np.arange(3)], stored[offset:offset + 3])


def test_a_text_longer_than_the_positions_is_refused():
    model = load_model(MODELS / "tiny-gpt2")
    with pytest.raises(AttnvizError, match="more than the 64 positions"):
        model.run("bank " * 80)


# ---- a real model: all-MiniLM-L6-v2 (.ci/run fetches it; the tests skip, saying so, where it is missing) ----

@pytest.fixture(scope="module")
def minilm():
    from .conftest import need_minilm

    return load_model(need_minilm())


def test_bank_drifts_apart_layer_by_layer_in_minilm(minilm):
    # The point of the seed documents, measured in a trained model: the same word, the same position,
    # two contexts; identical at the embeddings, apart after the last layer.
    river, money = minilm.run("I sat on the river bank"), minilm.run("I deposited money at the bank")
    assert river.tokens == ("[CLS]", "i", "sat", "on", "the", "river", "bank", "[SEP]")
    a, b = river.hidden_states[:, 6].astype(np.float64), money.hidden_states[:, 6].astype(np.float64)
    cosines = (a * b).sum(axis=1) / np.linalg.norm(a, axis=1) / np.linalg.norm(b, axis=1)
    assert cosines.shape == (7,) and cosines[0] == pytest.approx(1.0, abs=1e-6)
    assert cosines[-1] == pytest.approx(0.771, abs=0.002) and cosines[1:].max() < 0.9
    bank_on_river = river.attentions[0, :, 6, 5]  # layer 0, every head: bank's weight on "river"
    assert bank_on_river.max() > 0.998 and int(bank_on_river.argmax()) == 2


def test_minilms_tokenizer_padding_is_turned_off(minilm):
    assert len(minilm.run("the bank").tokens) == 4  # its tokenizer.json pads to 128


# ---- attn inspect --model ------------------------------------------------------------------------------------


def test_json_of_a_model_run_is_the_forward_pass_and_follows_its_schema():
    import json

    import jsonschema

    from .conftest import run

    result = run("inspect", "the river bank flows", "--model", str(MODELS / "tiny-gpt2"), "-f", "json", "--dtype", "float64")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    jsonschema.validate(record, json.loads(run("schema", "model").stdout))
    expected = load_model(MODELS / "tiny-gpt2", dtype="float64").run("the river bank flows")
    assert record["tokens"] == list(expected.tokens) and record["config"]["model"]["layers"] == 2
    assert_allclose(record["layers"][1]["heads"][3]["weights"], expected.attentions[1, 3], rtol=0, atol=0)
    assert_allclose(record["layers"][1]["output"], expected.hidden_states[2], rtol=0, atol=0)
    assert record["layers"][0]["heads"][0]["scores"][0][1] is None  # causal: masked, null
    one = json.loads(run("inspect", "the river bank", "--model", str(MODELS / "tiny-gpt2"), "-f", "json", "--layer", "1", "--head", "2").stdout)
    assert [(entry["layer"], [h["head"] for h in entry["heads"]]) for entry in one["layers"]] == [(1, [2])]


def test_json_gives_each_heads_patterns_and_with_rollout_each_layers_rollout():
    import json

    import jsonschema

    from attnviz_cli.models.heads import PATTERNS, head_labels, head_patterns, punctuation_tokens, rollout

    from .conftest import run

    text = "the river, the bank."
    result = run("inspect", text, "--model", str(MODELS / "tiny-gpt2"), "-f", "json", "--dtype", "float64", "--rollout")
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    jsonschema.validate(record, json.loads(run("schema", "model").stdout))
    expected = load_model(MODELS / "tiny-gpt2", dtype="float64").run(text)
    punctuation = punctuation_tokens(text, expected.offsets, expected.special)
    assert [expected.tokens[i] for i in np.flatnonzero(punctuation)] == [",", "."]
    patterns = head_patterns(expected.attentions, punctuation, causal=True)
    labels, values = head_labels(patterns)
    got = record["layers"][1]["heads"][2]["patterns"]
    assert got["label"] == labels[1, 2] and [got["shares"][p] for p in PATTERNS] == patterns.shares[1, 2].tolist()
    assert got["share"] == (None if np.isnan(values[1, 2]) else values[1, 2])
    assert got["entropy_bits"] == patterns.entropy_bits[1, 2] and got["distance"] == patterns.distance[1, 2]
    assert got["shares"]["next"] == 0.0  # causal: no query sees the token after it
    assert_allclose([entry["rollout"] for entry in record["layers"]], rollout(expected.attentions), rtol=0, atol=0)
    assert_allclose(np.sum(record["layers"][1]["rollout"], axis=1), 1.0, rtol=1e-12)
    plain = json.loads(run("inspect", text, "--model", str(MODELS / "tiny-gpt2"), "-f", "json").stdout)
    assert "rollout" not in plain["layers"][0]
    kept = json.loads(run("inspect", text, "--model", str(MODELS / "tiny-gpt2"), "-f", "json", "--rollout", "--fields", "layers.rollout,heads.patterns").stdout)
    assert sorted(kept["layers"][0]) == ["heads", "layer", "rollout"] and sorted(kept["layers"][0]["heads"][0]) == ["head", "kv_head", "patterns"]


def test_rollout_table_is_the_last_layers_and_needs_a_model():
    from attnviz_cli.models.heads import rollout

    from .conftest import run

    text = "the river bank"
    result = run("inspect", text, "--model", str(MODELS / "tiny-bert"), "--rollout")
    assert result.exit_code == 0, result.output
    assert "rollout through layer 1 of 2: input tokens each token draws on" in result.stdout
    rolled = rollout(load_model(MODELS / "tiny-bert").run(text).attentions)[1]
    row = next(line for line in result.stdout.splitlines() if line.startswith("3 bank"))
    assert row.split()[2:7] == [f"{w:.2f}" for w in rolled[3]]
    layer0 = run("inspect", text, "--model", str(MODELS / "tiny-bert"), "--rollout", "--layer", "0", "--head", "1")
    assert "rollout through layer 0 of 2" in layer0.stdout and "layer 0, head 1 of 4: weights" in layer0.stdout
    alone = run("inspect", text, "--rollout")
    assert alone.exit_code == 2 and "--rollout follows attention through a model's layers: it needs --model" in alone.stderr
    csv = run("inspect", text, "--model", str(MODELS / "tiny-bert"), "--rollout", "--layer", "0", "-f", "csv")
    assert csv.exit_code == 2 and "--rollout with --model writes table or json, not --format csv" in csv.stderr


def test_tables_of_a_model_run():
    from .conftest import run

    overview = run("inspect", "the river bank", "--model", str(MODELS / "tiny-bert"))
    assert overview.exit_code == 0, overview.output
    assert "architecture bert · 2 layers × 4 heads · d_model 32 · float32" in overview.stdout
    assert "tokens       5: 0:[CLS], 1:the, 2:river, 3:bank, 4:[SEP]" in overview.stdout
    expected = load_model(MODELS / "tiny-bert").run("the river bank")
    from attnviz_cli.analysis import entropy_bits
    from attnviz_cli.models.heads import head_labels, run_patterns

    labels, values = head_labels(run_patterns(expected, "the river bank", causal=False))
    lines = overview.stdout.splitlines()
    at = next(n for n, line in enumerate(lines) if line.strip().startswith("1 "))  # layer 1: label, share, bits
    short = {"previous": "prev", "punctuation": "punct"}
    assert lines[at].split()[1:] == [short.get(str(label), str(label)) for label in labels[1]]
    assert lines[at + 1].split() == ["share"] + [f"{v:.2f}" for v in values[1] if v == v]  # "other" has no number
    assert lines[at + 2].split() == ["bits"] + [f"{e:.2f}" for e in entropy_bits(expected.attentions[1]).mean(axis=-1)]
    assert "first ([CLS]), last ([SEP])" in overview.stdout
    assert max(len(line) for line in lines) <= 80
    one = run("inspect", "the river bank", "--model", str(MODELS / "tiny-bert"), "--layer", "0", "--head", "1")
    assert "layer 0, head 1 of 4: weights (softmax, rows sum to 1)" in one.stdout
    strongest = expected.tokens[int(expected.attentions[0, 1, 3].argmax())]
    assert [line for line in one.stdout.splitlines() if line.startswith("3 bank")][-1].endswith(f"→ {strongest}")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--layer", "0"], "Invalid value for --layer: --layer chooses among a model's heads: it needs --model"),
        (["--layer", "all"], "Invalid value for --layer: --layer chooses among a model's heads: it needs --model"),
        (["--head", "3"], "Invalid value for --head: --head chooses among a model's heads: it needs --model"),
        (["--model", "M", "--head", "1"], "--head needs --layer"),
        (["--model", "M", "--layer", "all", "--head", "1"], "--head needs one --layer L, not all"),
        (["--model", "M", "-f", "csv"], "--format csv with --model writes one layer's heads or every layer's: say which with --layer L or --layer all"),
        (["--model", "M", "--vectors", "x.txt"], "--vectors is for static vectors"),
        (["--model", "M", "--heads", "2"], "--heads is for static vectors"),
    ],
)
def test_model_usage_errors_come_before_loading(args, message):
    from .conftest import run

    result = run("inspect", "the bank", *args)
    assert result.exit_code == 2 and message in result.stderr


def test_a_model_that_is_not_there_and_a_layer_it_lacks():
    from .conftest import run

    missing = run("inspect", "the bank", "--model", "acme/none", env={"HF_HUB_CACHE": "/nonexistent"})
    assert missing.exit_code == 1 and "no model 'acme/none'" in missing.stderr and missing.stderr.count("\n") == 1
    deep = run("inspect", "the bank", "--model", str(MODELS / "tiny-bert"), "--layer", "2")
    assert deep.exit_code == 2 and "has layers 0 to 1" in deep.stderr


# ---- words, --focus and compare with --model ------------------------------------------------------------


def test_a_words_pieces_are_one_unit_and_word_attention_sums_keys_and_averages_queries(minilm):
    from attnviz_cli.models.words import run_words, word_attention

    text = "I deposited my paycheck at the riverbank"
    run = minilm.run(text)
    words = run_words(run, text)
    assert words.labels == ("[CLS]", "I", "deposited", "my", "paycheck", "at", "the", "riverbank", "[SEP]")
    assert words.tokens[4] == (4, 5, 6) and run.tokens[4:7] == ("pay", "##che", "##ck")
    by_word = word_attention(run.attentions, words)
    a = run.attentions[3, 5].astype(np.float64)
    by_hand = a[[9, 10]].mean(axis=0)[[4, 5, 6]].sum()  # riverbank (tokens 9, 10) -> paycheck (4, 5, 6)
    assert by_word[3, 5, 7, 4] == pytest.approx(by_hand, abs=1e-6)
    assert_allclose(by_word.sum(axis=-1), 1.0, atol=1e-5)


def test_focus_names_a_word_any_case_an_occurrence_or_a_token_position():
    from attnviz_cli.models.words import focus_units, run_words

    text = "The bank by the river Bank flows"
    run = load_model(MODELS / "tiny-bert").run(text)
    words = run_words(run, text)
    assert words.labels[6] == "Bank"  # the text's own spelling, though the model lowercases
    assert focus_units(words, "bank", len(run.tokens)) == [2, 6]
    assert focus_units(words, "bank@2", len(run.tokens)) == [6]
    assert focus_units(words, "5", len(run.tokens)) == [5]  # token 5 is 'river'
    with pytest.raises(AttnvizError, match="is not one of the words"):
        focus_units(words, "money", len(run.tokens))
    with pytest.raises(AttnvizError, match="past the last token"):
        focus_units(words, "40", len(run.tokens))


def test_inspect_focus_with_a_model_in_json_and_tables():
    import json

    import jsonschema

    from attnviz_cli.analysis import entropy_bits

    from .conftest import run

    text = "the river bank by the bank"
    args = ("inspect", text, "--model", str(MODELS / "tiny-bert"), "--focus", "bank@2", "--dtype", "float64")
    record = json.loads(run(*args, "-f", "json", "--top-k", "2").stdout)
    jsonschema.validate(record, json.loads(run("schema", "model").stdout))
    expected = load_model(MODELS / "tiny-bert", dtype="float64").run(text)
    (focused,) = record["focus"]
    assert (focused["word"], focused["tokens"]) == ("bank", [6])
    weights = expected.attentions[1, 3, 6]  # every word is one token here: word weights are token weights
    head = focused["layers"][1]["heads"][3]
    assert_allclose(head["weights"], weights, rtol=0, atol=1e-15)
    order = np.argsort(-weights, kind="stable")[:2]
    assert [(k["unit"], k["weight"]) for k in head["keys"]] == [(int(u), pytest.approx(weights[u])) for u in order]
    assert head["entropy_bits"] == pytest.approx(float(entropy_bits(weights)))
    h = expected.hidden_states[:, 6].astype(np.float64)
    assert_allclose(focused["cosine_to_embedding"], h @ h[0] / (np.linalg.norm(h, axis=1) * np.linalg.norm(h[0])), atol=1e-12)
    table = run(*args, "--layer", "1").stdout
    assert "where 'bank' (token 6) looks: its strongest words in each layer and head" in table
    labels = record["units"]
    row = next(line for line in table.splitlines() if line.split()[:2] == ["1", "0"])
    top = int(np.argmax(expected.attentions[1, 0, 6]))
    assert row.split()[2] == labels[top]["word"]


def test_compare_with_a_model_follows_the_word_layer_by_layer():
    import json

    import jsonschema

    from .conftest import run

    a, b = "the river bank flows", "the bank by the river"
    args = ("compare", a, b, "--focus", "bank", "--model", str(MODELS / "tiny-roberta"), "--dtype", "float64")
    record = json.loads(run(*args, "-f", "json").stdout)
    jsonschema.validate(record, json.loads(run("schema", "model-compare").stdout))
    model = load_model(MODELS / "tiny-roberta", dtype="float64")
    ra, rb = model.run(a), model.run(b)
    ta, tb = record["sentences"][0]["tokens"], record["sentences"][1]["tokens"]
    assert [ra.tokens[t] for t in ta] == [rb.tokens[t] for t in tb] == ["bank"]
    va, vb = ra.hidden_states[:, ta[0]], rb.hidden_states[:, tb[0]]
    cosines = (va * vb).sum(axis=1) / (np.linalg.norm(va, axis=1) * np.linalg.norm(vb, axis=1))
    assert record["embedding_cosine"] == pytest.approx(cosines[0], abs=1e-12)
    assert [entry["cosine"] for entry in record["layers"]] == pytest.approx(list(cosines[1:]), abs=1e-12)
    assert_allclose(record["layers"][1]["second"]["weights"], rb.attentions[1, :, tb[0]].mean(axis=0), atol=1e-12)
    table = run(*args).stdout
    assert "how far apart 'bank' ends up, layer by layer" in table
    assert any(line.split()[:2] == ["1", f"{cosines[2]:.3f}"] for line in table.splitlines())


def test_compare_bank_in_minilm_drifts_to_0_77(minilm):
    import json

    from .conftest import run

    record = json.loads(run("compare", "I sat on the river bank", "I deposited money at the bank", "--focus", "bank",
                            "--model", str(minilm.folder), "-f", "json").stdout)
    assert record["embedding_cosine"] == pytest.approx(1.0, abs=1e-6)
    assert record["layers"][-1]["cosine"] == pytest.approx(0.771, abs=2e-3)
    assert record["layers"][0]["first"]["keys"][0]["word"] == "river"


@pytest.mark.parametrize(
    ("args", "message", "code"),
    [
        (["--focus", "bank"], "first text: 'bank' occurs 2 times; say which with --focus bank@1 to bank@2", 1),
        (["--focus", "money"], "first text: --focus 'money' is not one of the words", 1),
        (["--focus", "bank@1", "--heads", "2"], "--heads is for static vectors", 2),
        (["--focus", "bank@1", "--neighbors", "3"], "--neighbors is for static vectors", 2),
        (["--focus", "bank@1", "-f", "csv"], "'csv' is not one of 'table', 'json', 'jsonl', 'markdown'", 2),
    ],
)
def test_compare_with_a_model_refuses_what_it_cannot_do(args, message, code):
    from .conftest import run

    result = run("compare", "the bank by the bank", "a river bank", "--model", str(MODELS / "tiny-bert"), *args)
    assert result.exit_code == code and message in result.stderr, result.stderr
    assert result.stdout == ""


# ---- attn model list | info | download -------------------------------------------------------------------


def _fake_cache(root: Path) -> Path:
    """A Hugging Face cache as huggingface_hub lays it out: a ready model, a pickle-only one, an
    unsupported architecture, and one with no snapshot."""
    import shutil

    cache = root / "hub"

    def add(repo: str, source: str | None, change=None) -> Path:
        base = cache / f"models--{repo.replace('/', '--')}"
        (base / "refs").mkdir(parents=True)
        if source is None:
            return base
        snapshot = base / "snapshots" / "abc123"
        shutil.copytree(MODELS / source, snapshot)
        (base / "refs" / "main").write_text("abc123")
        if change:
            change(snapshot)
        return snapshot

    add("acme/tiny-bert", "tiny-bert")
    add("acme/pickled", "tiny-bert", lambda s: (s / "model.safetensors").rename(s / "pytorch_model.bin"))
    add("acme/t5", "tiny-bert", lambda s: (s / "config.json").write_text('{"model_type": "t5"}'))
    add("acme/empty", None)
    return cache


def test_model_list_shows_what_the_cache_holds_and_what_runs(tmp_path):
    import json

    import jsonschema

    from .conftest import run

    cache = _fake_cache(tmp_path)
    home = {"HOME": str(tmp_path / "home"), "OLLAMA_MODELS": ""}  # no GGUF stores: just the cache
    result = run("model", "list", "-f", "json", env={"HF_HUB_CACHE": str(cache), **home})
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    jsonschema.validate(record, json.loads(run("schema", "models").stdout))
    status = {m["name"]: m["status"] for m in record["models"]}
    assert status == {
        "acme/empty": "no snapshot (refs/main)", "acme/pickled": "pickle only (pytorch_model.bin)",
        "acme/t5": "not supported: 't5'", "acme/tiny-bert": "ready",
    }
    ready = next(m for m in record["models"] if m["name"] == "acme/tiny-bert")
    assert (ready["architecture"], ready["layers"], ready["heads"], ready["d_model"]) == ("bert", 2, 4, 32)
    assert ready["size_bytes"] == sum((MODELS / "tiny-bert" / n).stat().st_size for n in ("config.json", "model.safetensors", "tokenizer.json"))
    table = run("model", "list", env={"HF_HUB_CACHE": str(cache), "COLUMNS": "120", **home}).stdout
    assert any("acme/tiny-bert" in line and "2 × 4" in line and "ready" in line for line in table.splitlines())
    empty = run("model", "list", env={"HF_HUB_CACHE": str(tmp_path / "none"), **home})
    assert empty.exit_code == 0 and "no models in the Hugging Face cache" in empty.stdout


def test_model_info_describes_a_model_from_its_files(tmp_path):
    import json

    from safetensors.numpy import load_file

    from .conftest import run

    record = json.loads(run("model", "info", str(MODELS / "tiny-distilbert"), "-f", "json").stdout)
    tensors = load_file(MODELS / "tiny-distilbert" / "model.safetensors")
    assert record["parameters"] == sum(t.size for t in tensors.values() if t.dtype.kind == "f")
    assert (record["architecture"], record["layers"], record["heads"], record["d_model"]) == ("distilbert", 2, 4, 32)
    assert (record["tokenizer"], record["stored_dtypes"], record["max_positions"]) == ("WordPiece", ["F32"], 64)
    cache = _fake_cache(tmp_path)
    table = run("model", "info", "acme/tiny-bert", env={"HF_HUB_CACHE": str(cache)}).stdout
    assert "2 × 4 (d_k 8)" in table
    missing = run("model", "info", "acme/nope", env={"HF_HUB_CACHE": str(cache)})
    assert missing.exit_code == 1 and "attn model download acme/nope" in missing.stderr


def test_model_download_offline_and_bad_ids_are_one_line_errors(tmp_path):
    import os
    import subprocess
    import sys

    env = {**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(tmp_path)}
    done = subprocess.run([sys.executable, "-m", "attnviz_cli", "model", "download", "acme/nothing"], check=False, capture_output=True, text=True, env=env, timeout=60)
    assert done.returncode == 1 and "attn: error: cannot download 'acme/nothing'" in done.stderr
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 2  # "downloading ...", then the error
    from .conftest import run

    bad = run("model", "download", "acme/not/an-id")
    assert bad.exit_code == 1
    assert bad.stderr == "attn: error: 'acme/not/an-id' is not a Hub id: it looks like name or org/name, in letters, digits, '-', '_' and '.'\n"


def test_demo_with_a_model_tells_the_bank_story_in_its_numbers():
    import json

    from .conftest import run

    tour = run("demo", "--model", str(MODELS / "tiny-bert"), env={"COLUMNS": "100"})
    assert tour.exit_code == 0, tour.output
    compared = json.loads(run("compare", "I sat on the river bank", "I deposited money at the bank", "--focus", "bank",
                              "--model", str(MODELS / "tiny-bert"), "-f", "json").stdout)
    last = compared["layers"][-1]
    assert any(line.split()[:2] == [str(last["layer"]), f"{last['cosine']:.3f}"] for line in tour.stdout.splitlines())
    run_ = load_model(MODELS / "tiny-bert").run("I sat on the river bank")
    bank, river = run_.tokens.index("bank"), run_.tokens.index("river")
    layer, head = np.unravel_index(int(np.argmax(run_.attentions[:, :, bank, river])), run_.attentions.shape[:2])
    assert f"layer {layer}, head {head} gives 'river' the most weight from 'bank': {run_.attentions[layer, head, bank, river]:.2f}" in tour.stdout


def test_demo_on_minilm_says_its_river_head_is_a_previous_token_head(minilm):
    from .conftest import run

    tour = run("demo", "--model", str(minilm.folder), env={"COLUMNS": "200"}).stdout
    assert "layer 0, head 2 gives 'river' the most weight from 'bank': 1.00" in tour
    assert "a 'previous-token' head" in tour


# ---- streams and --fields with --model ------------------------------------------------------------------


def test_a_jsonl_stream_of_texts_gives_each_its_own_record():
    import json

    from .conftest import run

    texts = ["the river bank", "the money bank flows"]
    result = run("inspect", "-", "--model", str(MODELS / "tiny-gpt2"), "-f", "jsonl", "--dtype", "float64", input="\n".join(texts) + "\n\n")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert len(lines) == 2
    model = load_model(MODELS / "tiny-gpt2", dtype="float64")
    for line, text in zip(lines, texts, strict=True):
        record = json.loads(line)
        assert record["text"] == text
        assert_allclose(record["layers"][1]["heads"][2]["weights"], model.run(text).attentions[1, 2], rtol=0, atol=0)


def test_a_bad_line_stops_the_stream_or_is_skipped_with_an_error_record():
    import json

    from .conftest import run

    stream = "the bank\n" + "bank " * 80 + "\nthe river\n"  # line 2: more than tiny-gpt2's 64 positions
    args = ("inspect", "-", "--model", str(MODELS / "tiny-gpt2"), "-f", "jsonl", "--fields", "tokens")
    failed = run(*args, input=stream)
    assert failed.exit_code == 1 and failed.stderr.startswith("attn: error: line 2: the text has 82 tokens")
    assert [json.loads(line)["tokens"] for line in failed.stdout.splitlines()] == [["the", "Ġbank"]]
    skipped = run(*args, "--on-error", "skip", input=stream)
    assert skipped.exit_code == 0 and "line 2 skipped" in skipped.stderr
    records = [json.loads(line) for line in skipped.stdout.splitlines()]
    assert [r["schema"] for r in records] == ["attnviz.model/1", "attnviz.error/1", "attnviz.model/1"]
    assert records[1]["line"] == 2 and "82 tokens" in records[1]["error"]


def test_fields_keep_just_what_is_asked_of_a_model_record():
    import json

    from .conftest import run

    base = ("inspect", "the river bank", "--model", str(MODELS / "tiny-bert"), "-f", "json")
    record = json.loads(run(*base, "--fields", "tokens,heads.weights").stdout)
    assert sorted(record) == ["layers", "schema", "tokens"]
    assert [sorted(entry) for entry in record["layers"]] == [["heads", "layer"]] * 2
    assert sorted(record["layers"][0]["heads"][3]) == ["head", "kv_head", "weights"]
    full = json.loads(run(*base).stdout)
    assert record["layers"][1]["heads"][3]["weights"] == full["layers"][1]["heads"][3]["weights"]
    outputs = json.loads(run(*base, "--fields", "layers.output", "--layer", "1").stdout)
    assert outputs["layers"] == [{"layer": 1, "output": full["layers"][1]["output"]}]
    bad = run(*base, "--fields", "summary")
    assert bad.exit_code == 2 and "unknown field 'summary'; a model record has" in bad.stderr


# ---- one layer through the views of static attention: Markdown, CSV, --save -------------------------------


def test_markdown_and_csv_show_a_layers_heads():
    import csv
    import io

    from .conftest import run

    text = "the river bank"
    expected = load_model(MODELS / "tiny-gpt2").run(text)
    rows = list(csv.DictReader(io.StringIO(run("inspect", text, "--model", str(MODELS / "tiny-gpt2"), "--layer", "1", "-f", "csv").stdout)))
    assert len(rows) == 4 * 3 * 3  # heads x queries x keys
    row = next(r for r in rows if (r["head"], r["query"], r["key"]) == ("2", "2", "0"))
    assert float(row["weight"]) == pytest.approx(float(expected.attentions[1, 2, 2, 0]), rel=1e-6)
    assert next(r for r in rows if (r["head"], r["query"], r["key"]) == ("0", "0", "1"))["score"] == ""  # masked
    markdown = run("inspect", text, "--model", str(MODELS / "tiny-bert"), "--layer", "0", "-f", "markdown").stdout
    assert "Model " in markdown and "tiny-bert, layer 0 (its embeddings) (32d) · 4 heads · d_k 8" in markdown
    bert = load_model(MODELS / "tiny-bert").run(text)
    assert f"| 3 bank | {bert.hidden_states[1, 3, 0]:.3f} |" in markdown  # the layer's output, as the vectors


def test_save_draws_a_layers_heads_and_writes_its_page(tmp_path):
    import json
    import re

    from .conftest import run

    svg, page = tmp_path / "layer.svg", tmp_path / "layer.html"
    result = run("inspect", "the river bank", "--model", str(MODELS / "tiny-bert"), "--layer", "1", "--save", str(svg), "--save", str(page))
    assert result.exit_code == 0, result.output
    assert svg.read_text().count("head 3 of 4") == 1 and "tiny-bert, layer 1" in svg.read_text()
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', page.read_text(), re.S).group(1))
    expected = load_model(MODELS / "tiny-bert").run("the river bank")
    assert_allclose(data["heads"][2]["weights"], expected.attentions[1, 2], rtol=1e-6)


def test_one_head_keeps_its_number_in_markdown_csv_figures_and_the_page(tmp_path):
    """--layer L --head H: every view of static attention shows that head alone, numbered as in its
    layer ("head 2 of 4"), with its own numbers, not head 0 of 1."""
    import csv
    import io
    import json
    import re

    from .conftest import run

    text = "the river bank"
    expected = load_model(MODELS / "tiny-gpt2").run(text)
    base = ("inspect", text, "--model", str(MODELS / "tiny-gpt2"), "--layer", "1", "--head", "2")
    rows = list(csv.DictReader(io.StringIO(run(*base, "-f", "csv").stdout)))
    assert len(rows) == 3 * 3 and {r["head"] for r in rows} == {"2"}
    assert_allclose([float(r["weight"]) for r in rows], expected.attentions[1, 2].ravel(), rtol=1e-6)
    assert [r["score"] for r in rows if r["query"] == "0"][1:] == ["", ""]  # GPT-2's mask
    markdown = run(*base, "-f", "markdown").stdout
    assert "· head 2 of 4 · d_k 8 ·" in markdown and markdown.count("#### Head 2 of 4:") == 2 and "Head 0" not in markdown
    bank = expected.attentions[1, 2, 2]
    cells = [f"**{w:.2f}**" if j == bank.argmax() else f"{w:.2f}" for j, w in enumerate(bank)]
    assert "| 2 Ġbank | " + " | ".join(cells) + " | " in markdown  # that head's weights, not head 0's
    svg, page = tmp_path / "head.svg", tmp_path / "head.html"
    assert run(*base, "--save", str(svg), "--save", str(page)).exit_code == 0
    drawn = svg.read_text()
    assert drawn.count("head 2 of 4") == 2 and "head 0 of" not in drawn  # the title's line and the panel's
    data = json.loads(re.search(r'<script type="application/json" id="data">(.*?)</script>', page.read_text(), re.S).group(1))
    assert [h["head"] for h in data["heads"]] == [2] and data["config"].items() >= {"heads": 1, "first_head": 2, "layer_heads": 4}.items()
    assert_allclose(np.array(data["heads"][0]["weights"], dtype=float), expected.attentions[1, 2], rtol=1e-6)
    static = json.loads(run("inspect", text, "-f", "json").stdout)
    assert "first_head" not in static["config"] and "layer_heads" not in static["config"]  # static records unchanged


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["-f", "markdown"], "--format markdown with --model shows one layer's heads: say which with --layer"),
        (["--save", "x.svg"], "--save .svg with --model draws a layer's heads (--layer L) or every head (--layer all)"),
        (["-f", "csv", "--layer", "0", "--focus", "bank"], "--focus with --model writes table or json, not --format csv"),
    ],
)
def test_layer_views_of_a_model_need_a_layer(args, message):
    from .conftest import run

    result = run("inspect", "the bank", "--model", str(MODELS / "tiny-bert"), *args)
    assert result.exit_code == 2 and message in result.stderr, result.stderr


def test_compare_draws_the_cosine_in_the_terminal_and_saves_it_as_a_figure(tmp_path):
    from attnviz_cli.models.words import compare_word
    from attnviz_cli.render_model_table import cosine_chart

    from .conftest import run

    chart = cosine_chart(np.array([1.0, 0.9, 0.75])).plain.splitlines()
    dots = [(r, line.index("●")) for r, line in enumerate(chart) if "●" in line]
    # 1.0 on the top line, 0.75 (the lowest) on the bottom one, 0.9 at (1 - 0.9) / 0.25 x 7 = 2.8 lines down
    assert [r for r, _ in dots] == [0, 3, 7] and dots[0][1] < dots[1][1] < dots[2][1]
    assert chart[0].startswith(" 1.00 ┤") and chart[7].startswith(" 0.75 ┤") and chart[-1].split() == ["emb", "L0", "L1"]

    texts = ("I sat on the river bank", "I deposited money at the bank")
    figure = tmp_path / "drift.svg"
    result = run("compare", *texts, "--focus", "bank", "--model", str(MODELS / "tiny-bert"), "--save", str(figure))
    assert result.exit_code == 0, result.output
    model = load_model(MODELS / "tiny-bert")
    cosines = compare_word((model.run(texts[0]), model.run(texts[1])), texts, "bank").cosines
    svg = figure.read_text(encoding="utf-8")
    assert all(f">{c:.3f}<" in svg for c in cosines)  # every layer's cosine written on the line, as text
    assert "the cosine, drawn" in result.stdout and f"saved {figure}" in result.stderr
    static = run("compare", *texts, "--focus", "bank", "--save", str(figure))
    assert static.exit_code == 2 and "--save draws the word's drift through a model's layers: it needs --model" in static.stderr
    page = run("compare", *texts, "--focus", "bank", "--model", str(MODELS / "tiny-bert"), "--save", str(tmp_path / "x.html"))
    assert page.exit_code == 2 and "has no extension of .svg, .png, .pdf" in page.stderr


def test_stack_freeing_is_np_stack_and_lets_go_of_each_part():
    parts = [np.arange(6.0).reshape(2, 3) * i for i in range(4)]
    expected = np.stack(parts)
    held = list(parts)
    got = stack_freeing(held)
    assert_array_equal(got, expected)
    assert got.dtype == expected.dtype and held == [None] * 4

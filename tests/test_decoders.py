"""Decoder LLMs in NumPy against Hugging Face transformers (eager attention): the tiny random models of
tests/models/make_tiny_decoders.py, one per architecture, each built so its traps bite (grouped-query
attention, sliding windows shorter than the texts, soft-caps, two RoPE bases, partial rotation, q/k
norms, Llama 3's RoPE scaling), with transformers' attentions and hidden states recorded beside them.
The float64 records were made with transformers' float32 casts (softmax, RMSNorm, RoPE tables) kept in
float64, so 1e-9 is float64 arithmetic's agreement, not float32's."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from attnviz_cli.errors import AttnvizError
from attnviz_cli.models import load_model

from .test_models import reference  # tests/models/tiny-KIND/reference.npz, as transformers recorded it

MODELS = Path(__file__).resolve().parent / "models"
KINDS = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "olmo2")
TEXTS = [
    "I sat on the river bank", "I deposited money at the bank", "the bank by the river bank flows",
    "the water flows by the river bank and I sat on the bank at the river",
]
# float32: ~1e-6 apart after a few layers (the order of additions differs between BLAS and torch);
# float64: the same sums in float64, ~1e-14 apart, so 1e-9 leaves room for any BLAS kernel
TOLERANCE = {"float64": 1e-9, "float32": 1e-5}
WINDOWS = {"mistral": {0: 3, 1: 3}, "qwen2": {1: 3}, "gemma2": {0: 3}, "gemma3": {i: 3 for i in range(5)}, "phi3": {0: 3, 1: 3}}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("kind", KINDS)
def test_attentions_and_hidden_states_match_transformers(kind, dtype):
    model = load_model(MODELS / f"tiny-{kind}", dtype=dtype)
    recorded = reference(kind)
    tol = TOLERANCE[dtype]
    for t, text in enumerate(TEXTS):
        run = model.run(text)
        assert_array_equal(run.token_ids, recorded[f"{t}/ids"])
        assert run.attentions.dtype == dtype and run.hidden_states.dtype == dtype
        assert_allclose(run.attentions, recorded[f"{t}/{dtype}/attentions"], rtol=tol, atol=tol)
        scale = np.abs(recorded[f"{t}/{dtype}/hidden_states"]).max()  # Gemma's embeddings are sqrt(d) times larger
        assert_allclose(run.hidden_states, recorded[f"{t}/{dtype}/hidden_states"], rtol=tol, atol=tol * 10 * scale)


@pytest.mark.parametrize("kind", KINDS)
def test_the_attention_is_causal_windowed_and_far_from_uniform(kind):
    run = load_model(MODELS / f"tiny-{kind}", dtype="float64").run(TEXTS[3])
    T = run.attentions.shape[-1]
    assert run.attentions.max() > 0.5 and T > 10
    assert_allclose(run.attentions.sum(axis=-1), 1.0, rtol=1e-12)
    q, k = np.arange(T)[:, None], np.arange(T)[None, :]
    for layer in range(run.attentions.shape[0]):
        window = WINDOWS.get(kind, {}).get(layer)
        seen = (k <= q) & (k > q - window) if window else k <= q
        assert (run.attentions[layer][:, ~seen] == 0).all() and np.isneginf(run.scores[layer][:, ~seen]).all()
        assert (run.attentions[layer][:, seen] > 0).all()  # nothing else is masked


@pytest.mark.parametrize("kind", ["llama", "gemma3", "qwen3", "phi3"])
def test_config_json_in_transformers_5s_form_reads_the_same(kind, tmp_path):
    folder = shutil.copytree(MODELS / f"tiny-{kind}", tmp_path / kind)
    (folder / "config.json").write_text((folder / "config-v5.json").read_text())
    assert "rope_parameters" in json.loads((folder / "config.json").read_text())
    v4 = load_model(MODELS / f"tiny-{kind}", dtype="float64").run(TEXTS[3])
    v5 = load_model(folder, dtype="float64").run(TEXTS[3])
    assert_array_equal(v5.attentions, v4.attentions)
    assert_array_equal(v5.hidden_states, v4.hidden_states)


@pytest.mark.parametrize("kind", KINDS)
def test_weights_read_a_layer_at_a_time_give_the_numbers_of_weights_kept(kind):
    kept = load_model(MODELS / f"tiny-{kind}", dtype="float64", keep=True).run(TEXTS[3])
    streamed = load_model(MODELS / f"tiny-{kind}", dtype="float64", keep=False)
    assert type(streamed.params["blocks"]).__name__ == "Layers"
    run = streamed.run(TEXTS[3])
    # the same sums, by a weight laid out (in, out) or read as stored and transposed: the kernels may add in another order
    assert_allclose(run.attentions, kept.attentions, rtol=1e-12, atol=1e-14)
    assert_allclose(run.hidden_states, kept.hidden_states, rtol=1e-12, atol=1e-12)


def test_grouped_query_heads_name_their_key_value_head_and_share_its_keys():
    model = load_model(MODELS / "tiny-llama", dtype="float64")
    c = model.config
    assert (c.heads, c.kv_heads, c.d_head) == (4, 2, 16)
    assert [c.kv_head(h) for h in range(4)] == [0, 0, 1, 1]  # transformers' repeat_kv: head // (4 / 2)
    run = model.run(TEXTS[0])
    assert_array_equal(run.keys[:, 0], run.keys[:, 1])
    assert_array_equal(run.values[:, 2], run.values[:, 3])
    assert not np.array_equal(run.keys[:, 1], run.keys[:, 2])


def test_a_sharded_checkpoint_and_a_bfloat16_one_read_as_one(tmp_path):
    from safetensors.numpy import load_file, save_file

    source = MODELS / "tiny-qwen2"
    tensors = load_file(source / "model.safetensors")
    sharded = shutil.copytree(source, tmp_path / "sharded", ignore=shutil.ignore_patterns("model.safetensors", "*.gguf"))
    names = sorted(tensors)
    halves = {"model-00001-of-00002.safetensors": names[: len(names) // 2], "model-00002-of-00002.safetensors": names[len(names) // 2:]}
    for file, part in halves.items():
        save_file({n: tensors[n] for n in part}, sharded / file)
    index = {"metadata": {}, "weight_map": {n: file for file, part in halves.items() for n in part}}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    whole = load_model(source, dtype="float64").run(TEXTS[2])
    assert_array_equal(load_model(sharded, dtype="float64").run(TEXTS[2]).attentions, whole.attentions)

    bf16 = shutil.copytree(source, tmp_path / "bf16", ignore=shutil.ignore_patterns("*.gguf"))
    top = {n: (t.astype(np.float32).view(np.uint32) >> 16).astype(np.uint16) for n, t in tensors.items()}  # truncated to bfloat16
    header = {n: {"dtype": "BF16", "shape": list(t.shape)} for n, t in top.items()}
    _write_safetensors(bf16 / "model.safetensors", header, top)
    rounded = shutil.copytree(source, tmp_path / "rounded", ignore=shutil.ignore_patterns("*.gguf"))
    save_file({n: (t.astype(np.uint32) << 16).view(np.float32) for n, t in top.items()}, rounded / "model.safetensors")
    assert_array_equal(load_model(bf16, dtype="float64").run(TEXTS[2]).attentions, load_model(rounded, dtype="float64").run(TEXTS[2]).attentions)


def _write_safetensors(path: Path, header: dict, arrays: dict[str, np.ndarray]) -> None:
    """A safetensors file by its format (8 bytes of header length, the JSON header, the data), for
    bfloat16, which NumPy has no dtype for."""
    offset, entries = 0, {}
    for name, meta in header.items():
        size = arrays[name].nbytes
        entries[name] = {**meta, "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(entries).encode()
    raw += b" " * (-len(raw) % 8)
    with open(path, "wb") as file:
        file.write(len(raw).to_bytes(8, "little") + raw)
        for name in header:
            file.write(arrays[name].tobytes())


def test_a_shard_the_index_names_that_is_missing_or_outside_the_folder_is_one_line(tmp_path):
    folder = shutil.copytree(MODELS / "tiny-llama", tmp_path / "m", ignore=shutil.ignore_patterns("model.safetensors", "*.gguf"))
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "model-1.safetensors"}}))
    with pytest.raises(AttnvizError, match=r"lacks the shard 'model-1\.safetensors' its index names"):
        load_model(folder)
    (folder / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {"a": "../model.safetensors"}}))
    with pytest.raises(AttnvizError, match="names no shards in the folder"):
        load_model(folder)


def test_a_rope_scaling_attnviz_does_not_run_is_one_line(tmp_path):
    folder = shutil.copytree(MODELS / "tiny-llama", tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    config["rope_scaling"] = {"rope_type": "yarn", "factor": 4.0}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(AttnvizError, match="RoPE scaling is 'yarn'; attnviz runs default, linear, llama3"):
        load_model(folder)


def test_json_masks_are_null_and_each_head_names_its_key_value_head():
    from .conftest import run

    record = json.loads(run("inspect", TEXTS[3], "--model", str(MODELS / "tiny-mistral"), "-f", "json").stdout)
    assert record["config"]["model"] | {"name": None} == {
        "name": None, "architecture": "mistral", "layers": 2, "heads": 4, "kv_heads": 2, "d_model": 64, "d_head": 16,
        "dtype": "float32", "revision": None,
    }
    heads = record["layers"][0]["heads"]
    assert [h["kv_head"] for h in heads] == [0, 0, 1, 1]
    scores = heads[0]["scores"]
    T = len(scores)
    assert all((scores[q][k] is None) == (k > q or k <= q - 3) for q in range(T) for k in range(T))


def test_a_run_too_large_for_memory_is_refused_before_it_starts(monkeypatch):
    from attnviz_cli.models import model as model_module

    model = load_model(MODELS / "tiny-llama")
    T = 20  # 2 layers x 4 heads: 2 * 4 * (20 * 20 * 2 + 20 * 16 * 4) + 3 * 20 * 64 floats of 4 bytes
    assert model.run_bytes(T) == (2 * (4 * 20 * 20 * 2 + 4 * 20 * 16 * 4 + 20 * 64) + 20 * 64) * 4
    monkeypatch.setattr(model_module, "physical_memory", lambda: 2 * model.run_bytes(T) - 2)
    with pytest.raises(AttnvizError, match=r"^a run of 20 tokens through '.*tiny-llama' would hold .* GiB of attention and states, more than half this machine's"):
        model.run(TEXTS[3])
    monkeypatch.setattr(model_module, "physical_memory", lambda: 2 * model.run_bytes(T))
    assert model.run(TEXTS[3]).attentions.shape[-1] == T


@pytest.mark.parametrize("kind", ["mistral", "gemma3"])
def test_a_run_that_keeps_some_layers_gives_every_heads_patterns_and_those_layers_numbers(kind):
    from attnviz_cli.models.heads import run_patterns
    from attnviz_cli.models.model import LayerStack

    model = load_model(MODELS / f"tiny-{kind}", dtype="float64")
    full = model.run(TEXTS[3])
    every = run_patterns(full, TEXTS[3], causal=True)
    for keep in ((), (1,)):
        part = model.run(TEXTS[3], keep=keep)
        assert isinstance(part.attentions, LayerStack) and part.attentions.shape == full.attentions.shape
        for name in ("shares", "entropy_bits", "spread", "distance"):  # taken layer by layer as the run went: the same bits
            assert_array_equal(getattr(part.patterns, name), getattr(every, name))
        assert_array_equal(part.hidden_states, full.hidden_states)
        for layer in range(full.attentions.shape[0]):
            if layer in keep:
                assert_array_equal(part.attentions[layer], full.attentions[layer])
                assert_array_equal(part.scores[layer, 2], full.scores[layer, 2])
                assert_array_equal(part.queries[layer], full.queries[layer])
            else:
                with pytest.raises(LookupError, match=f"layer {layer} of this run was not kept"):
                    part.attentions[layer]
        with pytest.raises(TypeError, match="read a layer at a time"):
            np.asarray(part.scores)


def test_the_overview_and_one_layers_tables_keep_just_the_layers_they_show():
    from attnviz_cli.models.pipeline import ModelShow, inspect_model, keeping_what_it_shows

    model = load_model(MODELS / "tiny-gemma3")
    assert keeping_what_it_shows(ModelShow()).keep == ()
    assert keeping_what_it_shows(ModelShow(layer=4)).keep == (4,)
    for every in (ModelShow(focus="bank"), ModelShow(rollout=True), ModelShow(page=True)):
        assert keeping_what_it_shows(every).keep is None
    assert keeping_what_it_shows(ModelShow(layer=4), every_layer=True).keep is None
    whole = inspect_model(TEXTS[3], model, ModelShow(layer=4))
    part = inspect_model(TEXTS[3], model, keeping_what_it_shows(ModelShow(layer=4)))
    assert_array_equal(part.heads.labels, whole.heads.labels)
    assert part.layer is not None and whole.layer is not None
    assert_array_equal(part.layer.attention.weights, whole.layer.attention.weights)


@pytest.mark.parametrize(("key", "value", "message"), [
    ("max_position_embeddings", "1e999", ": max_position_embeddings is Infinity; it must be a whole number from 1 to 2,147,483,648"),
    ("num_key_value_heads", "3", "has 2 layers and 4 heads sharing 3 key/value heads of width 64"),
    ("num_key_value_heads", "0", ": num_key_value_heads is 0; it must be a whole number from 1 to 2,147,483,648"),
    ("head_dim", '"wide"', ": head_dim is the string 'wide'; it must be a whole number from 1 to 2,147,483,648"),
    ("head_dim", "0", ": head_dim is 0; it must be a whole number from 1 to 2,147,483,648"),
    ("rope_scaling", '{"rope_type": "llama3", "factor": 8.0}', "lacks 'low_freq_factor'"),
    ("rope_scaling", "[1]", ": rope_scaling is a list; it must be an object"),
    ("rope_theta", "0", ": rope_theta is 0; it must be a finite number above 0"),
    ("rope_theta", "-1e4", ": rope_theta is -10000.0; it must be a finite number above 0"),
    ("rms_norm_eps", "-1", ": rms_norm_eps is -1; it must be a finite number, 0 or more"),
    ("rms_norm_eps", "NaN", ": rms_norm_eps is NaN; it must be a finite number, 0 or more"),
    ("layer_types", '["full_attention"]', "has a bad value: layer_types for 1 layers, where there are 2"),
    ("layer_types", '["full_attention", "ab"]', "has a bad value: layer type 'ab' (known: full_attention, sliding_attention)"),
    ("sliding_window", "0", None),  # llama: no sliding layers, so no window is read
])
def test_a_decoder_config_with_bad_numbers_is_one_line(key, value, message, tmp_path):
    folder = shutil.copytree(MODELS / "tiny-llama", tmp_path / "m", ignore=shutil.ignore_patterns("*.gguf"))
    config = json.loads((folder / "config.json").read_text())
    raw = json.dumps(config | {key: "PLACEHOLDER"}).replace('"PLACEHOLDER"', value)
    (folder / "config.json").write_text(raw)
    if message is None:
        assert load_model(folder).config.settings["windows"] == [None, None]
        return
    with pytest.raises(AttnvizError) as error:
        load_model(folder)
    assert str(error.value) == f"model folder {_quoted(folder)}: config.json" + (message if message.startswith(":") else f" {message}")


@pytest.mark.parametrize(("kind", "key", "value", "message"), [
    ("mistral", "sliding_window", "0", " has a bad value: a sliding window of 0 keys"),
    ("mistral", "sliding_window", "-2", ": sliding_window is -2; it must be a whole number from 0 to 2,147,483,648"),
    ("gemma2", "attn_logit_softcapping", "0", ": attn_logit_softcapping is 0; it must be a finite number above 0"),
    ("gemma2", "query_pre_attn_scalar", "-1", ": query_pre_attn_scalar is -1; it must be a finite number above 0"),
    ("llama", "rope_scaling", '{"rope_type": "linear", "factor": 0}', ": rope_scaling.factor is 0; it must be a finite number above 0"),
])
def test_window_cap_scale_and_factor_must_be_positive(kind, key, value, message, tmp_path):
    folder = shutil.copytree(MODELS / f"tiny-{kind}", tmp_path / "m", ignore=shutil.ignore_patterns("*.gguf"))
    config = json.loads((folder / "config.json").read_text())
    config.pop("rope_parameters", None)
    (folder / "config.json").write_text(json.dumps(config | {key: "PLACEHOLDER"}).replace('"PLACEHOLDER"', value))
    with pytest.raises(AttnvizError) as error:
        load_model(folder)
    assert str(error.value) == f"model folder {_quoted(folder)}: config.json{message}"


def _quoted(path: Path) -> str:
    from attnviz_cli.errors import quoted

    return quoted(str(path))


def test_gemmas_score_tables_say_what_its_scores_are():
    from attnviz_cli.render_model_table import score_formula

    assert score_formula(load_model(MODELS / "tiny-llama").config) == "q·k/√d_k"
    gemma2 = load_model(MODELS / "tiny-gemma2").config  # query_pre_attn_scalar 24, soft-cap 5
    assert score_formula(gemma2) == f"5·tanh(q·k × {24 ** -0.5:.4g} / 5)"
    from .conftest import run

    table = run("inspect", TEXTS[0], "--model", str(MODELS / "tiny-gemma2"), "--layer", "1", "--head", "0", env={"COLUMNS": "100"})
    assert f"scores (5·tanh(q·k × {24 ** -0.5:.4g} / 5))" in table.stdout


@pytest.mark.parametrize("kind", ["mistral", "gemma3", "olmo2"])
def test_attn_heads_over_a_corpus_batches_decoders_as_they_run_alone(kind):
    """A corpus runs texts of one length as one (B, T) batch: the rotation, the window and grouped
    heads must broadcast over it, and the averages equal those of each text run alone."""
    from attnviz_cli.models.corpus import corpus_heads
    from attnviz_cli.models.heads import run_patterns

    model = load_model(MODELS / f"tiny-{kind}", dtype="float64")
    texts = [*TEXTS, "the bank by the water flows", "I sat on the river bank"]  # some of one length
    lengths = [len(model.encode(t)[0].ids) for t in texts]
    assert len(set(lengths)) < len(texts)  # at least one batch of two
    result = corpus_heads(model, list(enumerate(texts, 1)), on_error="fail", note=print)
    alone = [run_patterns(model.run(t), t, True) for t in texts]
    for name in ("spread", "entropy_bits", "distance", "shares"):
        assert_allclose(getattr(result.heads.patterns, name), np.mean([getattr(p, name) for p in alone], axis=0), rtol=1e-12, atol=1e-14)

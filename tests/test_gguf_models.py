"""Decoder LLMs from GGUF files (llama.cpp's format, which Ollama and LM Studio keep): config, tokenizer
and tensors from the file, checked against transformers loading the same file
(``from_pretrained(folder, gguf_file=...)``, which dequantizes with the same gguf package): tiny copies of
the tiny decoders written as llama.cpp's converter writes them (F32 and Q8_0; tests/models/make_tiny_gguf.py),
and the real SmolLM2-135M-Instruct (Q4_1, 30 layers x 9 heads sharing 3 key/value heads)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from attnviz_cli.errors import AttnvizError
from attnviz_cli.models import load_model

from .conftest import need_smollm2, run
from .test_decoders import TEXTS, TOLERANCE

MODELS = Path(__file__).resolve().parent / "models"
GGUF_KINDS = sorted({p.parent.name.removeprefix("tiny-") for p in MODELS.glob("tiny-*/*.gguf")})


def recorded(kind: str, quant: str) -> dict[str, np.ndarray]:
    with np.load(MODELS / f"tiny-{kind}" / f"reference-{quant}-gguf.npz") as data:
        return dict(data)


def test_the_tiny_gguf_copies_cover_the_permuted_the_gemma_and_the_plain_layouts():
    assert {"llama", "qwen2", "gemma3"} <= set(GGUF_KINDS)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("quant", ["f32", "q8_0"])
@pytest.mark.parametrize("kind", GGUF_KINDS)
def test_a_gguf_file_runs_as_transformers_runs_it(kind, quant, dtype):
    model = load_model(MODELS / f"tiny-{kind}" / f"tiny-{kind}.{quant}.gguf", dtype=dtype)
    reference = recorded(kind, quant)
    tol = TOLERANCE[dtype]
    for t, text in enumerate(TEXTS):
        run_ = model.run(text)
        assert_array_equal(run_.token_ids, reference[f"{t}/ids"])  # the tokenizer built from the file's metadata
        assert_allclose(run_.attentions, reference[f"{t}/{dtype}/attentions"], rtol=tol, atol=tol)
        states = reference[f"{t}/{dtype}/hidden_states"]
        assert_allclose(run_.hidden_states, states, rtol=tol, atol=tol * 10 * np.abs(states).max())


@pytest.mark.parametrize("kind", ["llama", "qwen2"])
def test_an_f32_gguf_copy_runs_as_the_safetensors_checkpoint_it_was_made_from(kind):
    """llama.cpp's converter permutes Llama's q and k rows and keeps Qwen's: undone, the model is the same."""
    gguf = load_model(MODELS / f"tiny-{kind}" / f"tiny-{kind}.f32.gguf", dtype="float64").run(TEXTS[3])
    folder = load_model(MODELS / f"tiny-{kind}", dtype="float64").run(TEXTS[3])
    if kind == "llama":  # Llama 3's scaling as the rope_freqs tensor, float32, against the config's float64 frequencies
        assert_allclose(gguf.attentions, folder.attentions, rtol=1e-6, atol=1e-7)
    elif kind == "qwen2":  # the converter drops Qwen2's sliding window (llama.cpp reads none): compare the full layer
        assert_allclose(gguf.attentions[0], folder.attentions[0], rtol=1e-12, atol=1e-14)


def test_smollm2_q4_1_runs_as_transformers_runs_it():
    sys.path.insert(0, str(MODELS))
    from record_smollm2 import TEXTS as SMOLLM2_TEXTS

    model = load_model(need_smollm2(), keep=True)
    assert (model.config.layers, model.config.heads, model.config.kv_heads, model.config.d_head) == (30, 9, 3, 64)
    with np.load(MODELS / "smollm2-q4_1-reference.npz") as data:
        reference = dict(data)
    for t, text in enumerate(SMOLLM2_TEXTS):
        run_ = model.run(text)
        assert_array_equal(run_.token_ids, reference[f"{t}/ids"])
        # float32 through 30 layers: ~6e-6 here; the hidden states hold massive activations (~25,000) on the first token
        assert_allclose(run_.attentions, reference[f"{t}/float32/attentions"], rtol=1e-4, atol=5e-5)
        states = reference[f"{t}/float32/hidden_states"]
        assert_allclose(run_.hidden_states, states, rtol=1e-4, atol=1e-5 * np.abs(states).max())


def test_smollm2_shows_attention_sinks_in_its_later_layers():
    """The finding users come for (Xiao et al. 2023): from the middle layers on, heads park most of their
    weight on the first token whatever it is."""
    run_ = load_model(need_smollm2()).run("I sat on the river bank and watched the water flow by")
    on_first = run_.attentions[:, :, 1:, 0].mean(axis=(1, 2))  # (L,) each layer's mean weight on token 0, queries after it
    # measured: 0.14 in layer 0; 0.60-0.92 in layers 20-29, 0.78 on average
    assert on_first[0] < 0.2 and on_first[20:].min() > 0.55 and on_first[20:].mean() > 0.75


def test_a_gguf_model_through_the_cli_names_its_kv_heads(tmp_path):
    record = json.loads(run("inspect", "the river bank", "--model", str(MODELS / "tiny-llama" / "tiny-llama.q8_0.gguf"), "-f", "json").stdout)
    assert record["config"]["model"]["architecture"] == "llama"
    assert [h["kv_head"] for h in record["layers"][0]["heads"]] == [0, 0, 1, 1]


def test_a_revision_with_a_gguf_file_is_one_line():
    with pytest.raises(AttnvizError, match="is a GGUF file; a revision chooses a version of a Hub id"):
        load_model(MODELS / "tiny-llama" / "tiny-llama.f32.gguf", revision="main")

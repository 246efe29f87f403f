"""Generation (attnviz_cli/models/generate.py) against transformers' greedy generate, recorded by
tests/models/record_generate.py, and the key/value cache against whole runs of the same tokens."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from numpy.testing import assert_allclose, assert_array_equal

from attnviz_cli.errors import AttnvizError
from attnviz_cli.models.generate import Sampling, generate
from attnviz_cli.models.layers import KeyValues, window_mask, window_rows
from attnviz_cli.models.model import load_model
from attnviz_cli.render_generate import cells

from .conftest import need_module, need_smollm2, run
from .test_pictures import browser  # noqa: F401  # the fixture: Chromium through Playwright

MODELS = Path(__file__).resolve().parent / "models"
TINY = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "olmo2", "gpt2")


@pytest.fixture(scope="module")
def recorded() -> dict[str, np.ndarray]:
    with np.load(MODELS / "generate.npz") as data:
        return dict(data)


@pytest.fixture(scope="module")
def prompt() -> str:
    sys.path.insert(0, str(MODELS))
    from record_generate import PROMPT

    return PROMPT


@pytest.mark.parametrize("kind", TINY)
def test_greedy_decoding_is_transformers_token_for_token(kind, recorded, prompt):
    name = f"tiny-{kind}"
    model = load_model(MODELS / name)
    ids = model.encode(prompt)[0].ids
    assert_array_equal(ids, recorded[f"{name}/ids"])
    steps = list(generate(model, ids, 20, eos_ids=()))
    assert_array_equal([s.id for s in steps], recorded[f"{name}/all/new"])
    logits = recorded[f"{name}/all/logits"]
    # float32 through 2-6 layers, summed in another order than torch's: up to 7e-6 of the largest logit
    tolerance = 2e-5 * np.abs(logits).max()
    assert_allclose(np.stack([s.logits for s in steps]), logits, rtol=0, atol=tolerance)
    decisive(logits, tolerance)
    for i, step in enumerate(steps):
        # float32 sums in another order: these random models' scores reach 25-31, and 1e-7 of them moves a weight ~1e-5
        assert_allclose(step.weights, recorded[f"{name}/all/attention/{i}"], rtol=0, atol=3e-5)
    stopped = [s.id for s in generate(model, ids, 20)]  # at the model's end-of-text token, as generate stops
    assert_array_equal(stopped, recorded[f"{name}/eos/new"])


def decisive(logits: np.ndarray, tolerance: float) -> None:
    """Each step's top two logits (transformers', (steps, n)) lie more than twice ``tolerance`` apart, so
    no float32 sum within it (another BLAS kernel, another order) can choose another token: the tests of
    tokens chosen do not hang on this machine's kernel. (Every recorded step's margin passes: the least,
    tiny-qwen2's step 12, is 1e-3 against 2e-4; SmolLM2's step 16, 0.027 against 2e-3.)"""
    top = np.sort(np.asarray(logits, np.float64), axis=-1)
    assert (top[:, -1] - top[:, -2] > 2 * tolerance).all()


@pytest.mark.parametrize("kind", ["llama", "gemma3", "phi3", "olmo2"])
def test_a_gguf_copy_generates_what_its_checkpoint_does(kind, recorded):
    """The output head of a GGUF file: its token table where it has no output.weight (llama, gemma3: tied),
    else output.weight, which it maps to lm_head.weight (phi3, olmo2); its eos id from its metadata.
    (Mistral's and Qwen2's copies lose their sliding windows, tests/models/make_tiny_gguf.py.)"""
    name = f"tiny-{kind}"
    model = load_model(MODELS / name / f"{name}.f32.gguf")
    assert model.config.tied == (kind in ("llama", "gemma3")) and model.config.eos_ids == (0,)
    assert_array_equal([s.id for s in generate(model, recorded[f"{name}/ids"], 20, eos_ids=())], recorded[f"{name}/all/new"])
    assert_array_equal([s.id for s in generate(model, recorded[f"{name}/ids"], 20)], recorded[f"{name}/eos/new"])


@pytest.mark.parametrize("kind", TINY)
def test_the_cache_changes_nothing_but_rounding(kind):
    model = load_model(MODELS / f"tiny-{kind}", dtype="float64")
    ids = model.encode("the quick brown fox jumps over the lazy dog")[0].ids
    cached = list(generate(model, ids, 12, eos_ids=()))
    whole = list(generate(model, ids, 12, eos_ids=(), cached=False))
    assert [s.id for s in cached] == [s.id for s in whole]
    for a, b in zip(cached, whole, strict=True):
        assert a.weights.shape == b.weights.shape == (model.config.layers, model.config.heads, a.weights.shape[-1])
        assert_allclose(a.logits, b.logits, rtol=0, atol=1e-10)  # float64: the same sums in another order
        assert_allclose(a.weights, b.weights, rtol=0, atol=1e-12)
        assert_array_equal(np.isinf(a.scores), np.isinf(b.scores))  # the same keys masked (windows)
    assert [s.weights.shape[-1] for s in cached] == list(range(len(ids), len(ids) + 12))


@pytest.mark.parametrize("kind", ["llama", "mistral", "gemma2", "gpt2"])
def test_the_cache_changes_no_float32_logit_beyond_1e_5(kind):
    model = load_model(MODELS / f"tiny-{kind}")
    ids = model.encode("the quick brown fox jumps over the lazy dog")[0].ids
    for a, b in zip(generate(model, ids, 12, eos_ids=()), generate(model, ids, 12, eos_ids=(), cached=False), strict=True):
        scale = np.abs(b.logits).max()
        assert_allclose(a.logits / scale, b.logits / scale, rtol=0, atol=1e-5)  # one row's products against many rows' (gemv, gemm)
        assert_allclose(a.weights, b.weights, rtol=0, atol=1e-5)


def test_smollm2_makes_transformers_20_greedy_tokens(recorded):
    model = load_model(need_smollm2(), keep=True)
    ids = recorded["smollm2/ids"]
    steps = list(generate(model, ids, 20, eos_ids=()))
    assert_array_equal([s.id for s in steps], recorded["smollm2/all/new"])
    top = np.stack([np.argsort(-s.logits, kind="stable")[:5] for s in steps])
    assert_array_equal(top[:, 0], recorded["smollm2/all/top"][:, 0])
    got = np.take_along_axis(np.stack([s.logits for s in steps]), recorded["smollm2/all/top"], axis=-1)
    assert_allclose(got, recorded["smollm2/all/top_logits"], rtol=0, atol=2e-3)  # float32 through 30 layers, logits ~25
    decisive(recorded["smollm2/all/top_logits"], 2e-3)
    assert_array_equal([s.id for s in generate(model, ids, 20)], recorded["smollm2/eos/new"])


def test_smollm2_with_the_cache_as_without(recorded):
    model = load_model(need_smollm2(), keep=True)
    ids = recorded["smollm2/ids"]
    for a, b in zip(generate(model, ids, 4, eos_ids=()), generate(model, ids, 4, eos_ids=(), cached=False), strict=True):
        assert a.id == b.id
        assert_allclose(a.logits / 25, b.logits / 25, rtol=0, atol=1e-5)  # logits up to ~25
        assert_allclose(a.weights, b.weights, rtol=0, atol=1e-5)


def test_generation_stops_at_an_end_of_text_token_it_makes():
    model = load_model(MODELS / "tiny-llama")
    ids = model.encode("the quick brown fox")[0].ids
    made = [s.id for s in generate(model, ids, 10, eos_ids=())]
    steps = [s.id for s in generate(model, ids, 10, eos_ids=(made[3],))]
    assert steps == made[:4]


def test_generation_ends_at_the_models_last_position():
    model = load_model(MODELS / "tiny-gpt2")  # 64 positions
    ids = model.encode("the quick brown fox jumps over the lazy dog")[0].ids
    steps = list(generate(model, ids, 100, eos_ids=()))
    assert len(steps) == 64 - len(ids)


def test_sampling_draws_from_the_top_k_at_the_temperature():
    logits = np.array([1.0, 3.0, 2.0, 3.0, -1.0])
    assert Sampling().choose(logits) == 1  # greedy: the first of the largest
    rng = np.random.default_rng(0)
    drawn = [Sampling(1.0, top_k=2, rng=rng).choose(logits) for _ in range(400)]
    assert set(drawn) == {1, 3}  # the two largest, tied: either, never another
    p = np.exp(logits / 0.5) / np.exp(logits / 0.5).sum()
    counts = np.bincount([Sampling(0.5, rng=rng).choose(logits) for _ in range(4000)], minlength=5) / 4000
    assert_allclose(counts, p, atol=0.03)  # 4,000 draws: a few standard errors (≤ 0.008)
    first = [s.id for s in generate(load_model(MODELS / "tiny-llama"), [1, 5, 9], 8, Sampling(1.0, rng=np.random.default_rng(7)), eos_ids=())]
    again = [s.id for s in generate(load_model(MODELS / "tiny-llama"), [1, 5, 9], 8, Sampling(1.0, rng=np.random.default_rng(7)), eos_ids=())]
    assert first == again


def test_a_cache_holds_what_it_was_given_in_order():
    cache, rng = KeyValues(), np.random.default_rng(0)
    parts = [rng.normal(size=(2, n, 3)) for n in (5, 1, 1, 20, 1)]
    for part in parts:
        keys, values = cache.extend(part, -part)
    assert cache.length == 28
    assert_array_equal(keys, np.concatenate(parts, axis=1))
    assert_array_equal(values, -keys)


@pytest.mark.parametrize("window", [None, 1, 3])
def test_window_rows_are_the_last_rows_of_the_window_mask(window):
    whole = window_mask(9, window, np.dtype(np.float32))
    assert_array_equal(window_rows(6, 3, window, np.dtype(np.float32)), whole[6:])
    assert_array_equal(window_rows(0, 9, window, np.dtype(np.float32)), whole)


def test_an_encoder_does_not_generate():
    with pytest.raises(AttnvizError, match="generating needs a decoder"):
        next(generate(load_model(MODELS / "tiny-bert"), [1, 2], 3))


def test_a_prompt_id_outside_the_vocabulary_is_refused():
    with pytest.raises(AttnvizError, match="outside the 300 tokens"):
        next(generate(load_model(MODELS / "tiny-llama"), [1, 300], 3))


# ---- attn generate ---------------------------------------------------------------------------------------

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "attnviz_cli" / "schemas" / "generate-1.schema.json").read_text())


def transformers_looked(recorded: dict[str, np.ndarray], name: str, i: int, skip_first: bool = False) -> list[int]:
    """The 3 positions step i looked at most by transformers' own attention rows (mean over layers and heads)."""
    row = recorded[f"{name}/all/attention/{i}"].mean(axis=(0, 1))
    return [int(p) for p in np.argsort(-row, kind="stable") if not (skip_first and p == 0)][:3]


def test_the_terminal_shows_each_token_and_where_it_looked_as_transformers_attends(recorded, prompt):
    result = run("generate", prompt, "--model", str(MODELS / "tiny-qwen2"), "--max-new-tokens", "20")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[:3] == [
        "prompt: 29 tokens; model: tiny-qwen2",
        "where each token looked: mean of 2 layers × 4 heads",
        "  #  new token       looked at most (position:token weight)",
    ]
    assert len(lines) == 3 + 20 + 1 and lines[-1].startswith("text: " + prompt)
    for i, line in enumerate(lines[3:23]):
        assert line.startswith(f"{i + 1:>3}  '")
        assert [int(p.split(":")[0]) for p in line[21:].split("  ")] == transformers_looked(recorded, "tiny-qwen2", i)
        assert cells(line) <= 80


def test_jsonl_is_a_record_per_token_with_transformers_attention_and_null_where_masked(recorded, prompt):
    jsonschema = need_module("jsonschema")
    result = run("generate", prompt, "--model", str(MODELS / "tiny-mistral"), "-f", "jsonl")  # a window of 3 keys
    assert result.exit_code == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["id"] for r in records] == recorded["tiny-mistral/eos/new"].tolist()
    for i, r in enumerate(records):
        jsonschema.validate(r, SCHEMA)
        attention = np.array(r["attention"], dtype=float)  # null -> nan
        assert attention.shape == (2, 4, r["position"])
        assert np.isnan(attention[..., : r["position"] - 3]).all() and not np.isnan(attention[..., -3:]).any()
        assert_allclose(np.nan_to_num(attention), recorded[f"tiny-mistral/all/attention/{i}"], rtol=0, atol=3e-5)
        logits = recorded["tiny-mistral/all/logits"][i].astype(np.float64)  # transformers'
        probabilities = np.exp(logits - logits.max()) / np.exp(logits - logits.max()).sum()
        top = np.argsort(-logits, kind="stable")[:5]
        assert [t["id"] for t in r["top"]] == top.tolist() and r["top"][0]["id"] == r["id"]
        assert_allclose([t["logit"] for t in r["top"]], logits[top], rtol=0, atol=1e-4)  # float32 logits of ~10
        assert_allclose([t["probability"] for t in r["top"]], probabilities[top], rtol=0, atol=1e-5)
        assert [p["position"] for p in r["looked"]] == transformers_looked(recorded, "tiny-mistral", i)


def test_every_line_of_a_run_cuts_the_texts_it_shows_alike():
    """Positions passing 9 (one digit to two) used to cut the lines after them a cell shorter, so the
    same token read '<|im_sta…' above and '<|im_st…' below; every line now cuts as the run's last does."""
    result = run("generate", "The capital of France is", "--model", str(need_smollm2()), "--max-new-tokens", "8")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()[3:11]  # positions 6 to 13: they look at 0 to 12
    assert len(lines) == 8 and all("  0:'<|im_st…' " in line for line in lines), lines


def test_each_likely_token_has_its_text_as_well_as_its_piece():
    """The record's top tokens carry the text each decodes to, which the page shows (a byte-level BPE
    piece such as 'ĠParis' is not what a reader expects to see)."""
    result = run("generate", "The capital of France is", "--model", str(need_smollm2()), "--max-new-tokens", "1", "-f", "jsonl")
    assert result.exit_code == 0, result.stderr
    first = json.loads(result.stdout)["top"][0]
    assert (first["id"], first["token"], first["text"]) == (7042, "\u0120Paris", " Paris")  # SmolLM2's answer, as transformers' greedy one


def test_json_is_the_whole_run_and_layer_and_head_keep_one(recorded, prompt):
    jsonschema = need_module("jsonschema")
    result = run("generate", prompt, "--model", str(MODELS / "tiny-gpt2"), "-f", "json", "--max-new-tokens", "5", "--layer", "1", "--head", "2")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    jsonschema.validate(record, SCHEMA)
    assert record["prompt_ids"] == recorded["tiny-gpt2/ids"].tolist()
    assert [t["id"] for t in record["tokens"]] == recorded["tiny-gpt2/all/new"][:5].tolist()
    assert record["stopped"] == "max_new_tokens" and record["config"]["layer"] == 1 and record["config"]["head"] == 2
    assert record["text"] == "".join(t["text"] for t in record["tokens"])
    for i, t in enumerate(record["tokens"]):
        assert t["layers"] == [1] and t["heads"] == [2]
        assert_allclose(t["attention"][0][0], recorded[f"tiny-gpt2/all/attention/{i}"][1, 2], rtol=0, atol=3e-5)


def test_the_prompt_comes_from_stdin_with_a_dash():
    result = run("generate", "-", "--model", str(MODELS / "tiny-llama"), "-f", "json", "--max-new-tokens", "2", input="the quick brown fox\n")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["prompt"] == "the quick brown fox"


def test_a_layer_past_the_model_is_a_usage_error_and_an_encoder_one_line():
    past = run("generate", "hi", "--model", str(MODELS / "tiny-llama"), "--layer", "2")
    assert past.exit_code == 2 and "past the model's 2" in past.stderr
    encoder = run("generate", "hi", "--model", str(MODELS / "tiny-bert"))
    assert encoder.exit_code == 1
    assert encoder.stderr.strip() == "attn: error: model '" + str(MODELS / "tiny-bert") + "' is a bert, which reads a whole text at once; generating needs a decoder"


def test_sampling_with_a_seed_repeats_and_another_seed_differs():
    args = ("generate", "the quick brown fox", "--model", str(MODELS / "tiny-llama"), "-f", "json", "--temperature", "2", "--top-k", "50")
    texts = [json.loads(run(*args, "--seed", seed).stdout) for seed in ("1", "1", "2")]
    ids = [[t["id"] for t in r["tokens"]] for r in texts]
    assert ids[0] == ids[1] != ids[2]
    assert texts[0]["config"]["seed"] == 1 and texts[0]["config"]["temperature"] == 2


def test_the_page_holds_the_run_as_text_only(tmp_path, prompt):
    page = tmp_path / "gen.html"
    result = run("generate", prompt + " </script><b>", "--model", str(MODELS / "tiny-llama"), "--max-new-tokens", "3", "--save", str(page))
    assert result.exit_code == 0, result.stderr
    html = page.read_text()
    assert "default-src 'none'" in html and html.count("</script>") == 2  # the two script elements' own ends
    data = json.loads(html.split('id="data">')[1].split("</script>")[0])
    assert len(data["tokens"]) == 3 and len(data["labels"]) == len(data["prompt_ids"]) + 3 and data["prompt"].endswith("</script><b>")
    assert [t["position"] for t in data["tokens"]] == [len(data["prompt_ids"]) + i for i in range(3)]


# ---- --chat ----------------------------------------------------------------------------------------------


def test_smollm2s_chat_template_renders_as_transformers_apply_chat_template(prompt):
    from attnviz_cli.models.chat import chat_prompt

    want = json.loads((MODELS / "generate-chat.json").read_text())["smollm2"]
    assert chat_prompt(load_model(need_smollm2()), prompt) == want


def chat_model(tmp_path: Path, template: object) -> Path:
    folder = tmp_path / "chatty"
    shutil.copytree(MODELS / "tiny-llama", folder, ignore=shutil.ignore_patterns("*.gguf", "*.npz"))
    (folder / "tokenizer_config.json").write_text(json.dumps({"chat_template": template, "bos_token": {"content": "<s>"}, "eos_token": "<|endoftext|>"}))
    return folder


def test_a_folders_template_gets_the_special_tokens_and_transformers_filters(tmp_path):
    from attnviz_cli.models.chat import chat_prompt

    template = ("{{ bos_token }}{% for m in messages %}{{ m['role'] | upper }}: {{ m['content'] | tojson }}\n{% endfor %}"
                "{% if add_generation_prompt %}ASSISTANT:{% endif %}")
    model = load_model(chat_model(tmp_path, [{"name": "tool_use", "template": "x"}, {"name": "default", "template": template}]))
    assert chat_prompt(model, 'say "<b>é</b>"') == '<s>USER: "say \\"<b>é</b>\\""\nASSISTANT:'
    result = run("generate", "hi", "--model", str(tmp_path / "chatty"), "--chat", "-f", "json", "--max-new-tokens", "1")
    assert result.exit_code == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["prompt"] == '<s>USER: "hi"\nASSISTANT:' and record["prompt_tokens"][0] == "<s>"  # the template's BOS alone, none added


@pytest.mark.parametrize(("template", "message"), [
    ("{% for m in messages %}", "the chat template of '{}' fails: 'Unexpected end of template."),
    ("{{ raise_exception('only user and assistant roles') }}", "the chat template of '{}' fails: 'only user and assistant roles'"),
    ("{{ messages.__class__.__mro__ }}", "the chat template of '{}' fails: 'access to attribute '__class__' of 'list' object is unsafe.'"),
    ("{% set x = messages.append(1) %}", "the chat template of '{}' fails: 'access to attribute 'append' of 'list' object is unsafe.'"),
    ("", "model '{}' has no chat template"),
    ("{{ 'a' * 1000000 * 1000000 }}", "the chat template of '{}' fails: 'a product of 1,000,000,000,000 characters, items or bits, over 1,048,576'"),
    ("{{ [1, 2] * 2**40 }}", "the chat template of '{}' fails: 'a product of 2,199,023,255,552 characters"),
    ("{{ 10 ** 1000000000 }}", "the chat template of '{}' fails: 'a product of 3,000,000,001 characters"),
])
def test_a_template_that_fails_or_breaks_out_is_one_line(tmp_path, template, message):
    folder = chat_model(tmp_path, template)
    result = run("generate", "hi", "--model", str(folder), "--chat")
    assert result.exit_code == 1
    line = result.stderr.strip()
    assert len(line.splitlines()) == 1 and line.startswith("attn: error: " + message.format(folder))


# ---- what a model folder says about generating ------------------------------------------------------------


@pytest.mark.parametrize(("given", "eos"), [
    ('{"eos_token_id": [5, 7]}', (5, 7)),  # generation_config.json's list, before config.json's 0
    ('{"eos_token_id": 9}', (9,)),
    ('{"bos_token_id": 1}', (0,)),  # none there: config.json's
    ("not json", (0,)),
    ('{"eos_token_id": ["x", true, -1]}', (0,)),  # nothing there that is a token id: config.json's
])
def test_the_end_of_text_tokens_come_from_generation_config_first(tmp_path, given, eos):
    folder = tmp_path / "m"
    shutil.copytree(MODELS / "tiny-llama", folder, ignore=shutil.ignore_patterns("*.gguf", "*.npz"))
    (folder / "generation_config.json").write_text(given)
    assert load_model(folder).config.eos_ids == eos


def test_an_untied_model_without_its_head_is_one_line(tmp_path):
    from safetensors.numpy import load_file, save_file

    folder = tmp_path / "m"
    shutil.copytree(MODELS / "tiny-mistral", folder, ignore=shutil.ignore_patterns("*.gguf", "*.npz"))
    tensors = load_file(folder / "model.safetensors")
    del tensors["lm_head.weight"]
    save_file(tensors, folder / "model.safetensors")
    result = run("generate", "hi", "--model", str(folder))
    assert result.exit_code == 1
    assert result.stderr.strip().endswith("lack 'lm_head.weight', which config.json's tie_word_embeddings: false needs")


def test_the_page_colours_what_a_clicked_token_looked_at(browser, tmp_path, prompt):  # noqa: F811  # browser: the fixture imported above
    path = tmp_path / "gen.html"
    result_args = ("generate", prompt + " <img src=x onerror=alert(1)>", "--model", str(MODELS / "tiny-mistral"), "--max-new-tokens", "4")
    result = run(*result_args, "--save", str(path))
    assert result.exit_code == 0, result.stderr
    page, problems = browser.new_page(), []
    page.on("pageerror", lambda e: problems.append(str(e)))
    page.on("dialog", lambda d: (problems.append(d.message), d.dismiss()))
    page.on("request", lambda r: problems.append(r.url) if r.url != path.as_uri() else None)
    page.goto(path.as_uri())
    spans = page.locator("#text span")
    prompt_length = spans.count() - 4
    spans.nth(prompt_length + 2).click()  # the third new token
    assert page.locator("#details h2").text_content().startswith("New token 3:")
    coloured = page.evaluate("[...document.querySelectorAll('#text span')].map((s) => s.style.background !== '')")
    position = prompt_length + 2
    assert coloured == [True] * position + [False] * 2  # every token before it (masked keys weigh 0: the darkest colour)

    def titles() -> list[float]:
        shown = page.evaluate("[...document.querySelectorAll('#text span')].map((s) => s.title)")[:position]
        assert all(t.startswith("weight ") for t in shown)
        return [float(t.removeprefix("weight ")) for t in shown]

    record = json.loads(run(*result_args, "-f", "json").stdout)["tokens"][2]
    attention = np.nan_to_num(np.array(record["attention"], dtype=float))  # (L, h, position), null -> 0 as the page counts it
    assert_allclose(titles(), attention.mean(axis=(0, 1)), rtol=0, atol=1.5e-4)  # the page keeps 4 decimals, then averages
    page.select_option("#layer", "1")
    page.select_option("#head", "3")
    assert_allclose(titles(), attention[1, 3], rtol=0, atol=1.5e-4)
    assert page.locator("#details h2").text_content().startswith("New token 3:")
    assert problems == []


# ---- the terminal's lines --------------------------------------------------------------------------------


def test_a_token_line_escapes_its_texts_and_ranks_by_the_mean_weight():
    from attnviz_cli.models.generate import NewToken, Step
    from attnviz_cli.render_generate import View, shown, token_line

    weights = np.array([[[0.5, 0.1, 0.4, 0.0]], [[0.3, 0.3, 0.2, 0.2]]])  # (L=2, h=1, T=4): mean 0.4, 0.2, 0.3, 0.1
    step = Step(7, np.zeros(10), weights, np.log(weights + 1e-30))
    labels = ["<s>", "\x1b[31m", "a\nb", " bank‮"]
    new = NewToken(2, 4, 7, "Ġx", "\x07bell", step)
    # escaped as errors.printable escapes every text attn writes (a newline too: \\x0a)
    assert token_line(new, labels, View()) == "  3  '\\x07bell'      0:'<s>' 0.40  2:'a\\x0ab' 0.30  1:'\\x1b[31m' 0.20\n"
    assert token_line(new, labels, View(skip_first=True)) == "  3  '\\x07bell'      2:'a\\x0ab' 0.30  1:'\\x1b[31m' 0.20  3:' bank…' 0.10\n"  # cut before an escape, never inside
    assert token_line(new, labels, View(layer=1, head=0)) == "  3  '\\x07bell'      0:'<s>' 0.30  1:'\\x1b[31m' 0.30  2:'a\\x0ab' 0.20\n"  # ties: the earlier
    assert shown("a" * 20, 10) == "'aaaaaaa…'"


def test_a_character_split_over_two_tokens_comes_whole_with_the_second(monkeypatch):
    """Byte-level BPE: é is the bytes C3 A9, tokens 'Ã' and '©' of the tiny vocabulary."""
    import attnviz_cli.models.generate as module

    model = load_model(MODELS / "tiny-llama")
    made = [model.tokenizer.token_to_id(t) for t in ("Ã", "©", "Ġ")]
    steps = [module.Step(i, np.zeros(300), np.zeros((2, 4, 1)), np.zeros((2, 4, 1))) for i in made]
    monkeypatch.setattr(module, "generate", lambda *_, **__: iter(steps))
    new = list(module.generate_text(model, [53], 3))
    assert [(t.token, t.text) for t in new] == [("Ã", ""), ("©", "é"), ("Ġ", " ")]
    assert [t.position for t in new] == [1, 2, 3]


def test_rotary_tables_from_a_start_are_the_rows_of_the_whole_tables():
    from attnviz_cli.models.layers import rotary_tables

    inv_freq = 1.0 / 10000 ** (np.arange(0, 64, 2) / 64)
    for dtype in (np.dtype(np.float32), np.dtype(np.float64)):
        whole = rotary_tables(inv_freq, 700, dtype)
        part = rotary_tables(inv_freq, 3, dtype, start=690)
        assert_array_equal(part[0], whole[0][690:693])  # the same products, bit for bit
        assert_array_equal(part[1], whole[1][690:693])


# ---- what generate refuses, as the other model commands refuse it ------------------------------------------


def attn(*args: str, input: str = "") -> subprocess.CompletedProcess[str]:
    """``attn ARGS`` in a process of its own, so that a warning NumPy writes to stderr is seen; argv and
    ``input`` as bytes, a lone surrogate standing for a byte that is not UTF-8 (as Python reads argv)."""
    done = subprocess.run([sys.executable, "-m", "attnviz_cli", *args], input=input.encode("utf-8", "surrogateescape"),
                          capture_output=True, timeout=60, check=False)
    return subprocess.CompletedProcess(done.args, done.returncode, done.stdout.decode(), done.stderr.decode())


def test_scores_that_overflow_are_the_clean_line_inspect_gives(tmp_path):
    """tiny-llama's query and key weights x3e37: generate printed two RuntimeWarnings, then an internal
    AttentionInputError, where inspect gives one line; its cached steps ran outside run_layers' checks."""
    from safetensors.numpy import load_file, save_file

    folder = tmp_path / "m"
    shutil.copytree(MODELS / "tiny-llama", folder, ignore=shutil.ignore_patterns("*.gguf", "*.npz"))
    tensors = load_file(folder / "model.safetensors")
    for part in ("q_proj", "k_proj"):
        tensors[f"model.layers.0.self_attn.{part}.weight"] *= np.float32(3e37)
    save_file(tensors, folder / "model.safetensors")
    line = (f"attn: error: '{folder}' gives no finite result: a number overflowed or became NaN in layer 0 "
            "(its weights or config values are out of range for float32)\n")
    for command in ("inspect", "generate"):
        done = attn(command, "the bank", "--model", str(folder))
        assert (done.returncode, done.stderr) == (1, line), command


def test_logits_that_are_not_finite_are_refused(monkeypatch):
    """NaN logits made argmax pick a meaningless token (and a draw raise ValueError)."""
    model = load_model(MODELS / "tiny-llama")
    head = np.array(model.lm_head())
    head[3] = np.nan
    monkeypatch.setattr(model, "lm_head", lambda: head)
    with pytest.raises(AttnvizError, match="its logits overflowed or became NaN"):
        next(generate(model, [1, 5, 9], 3))


def test_a_prompt_too_long_for_the_memory_is_refused_before_the_prefill(monkeypatch):
    """generate checks memory as inspect does: a prompt whose prefill would hold more than half the
    memory is one line (it was a MemoryError, or the OOM killer, on a long-context model)."""
    import attnviz_cli.models.model as module

    model = load_model(MODELS / "tiny-llama")
    ids = model.encode("the quick brown fox jumps over the lazy dog")[0].ids
    monkeypatch.setattr(module, "physical_memory", lambda: 2 * model.run_bytes(len(ids) - 1, keep=()))
    with pytest.raises(AttnvizError, match=f"^a run of {len(ids)} tokens through '.*tiny-llama' would hold"):
        next(generate(model, ids, 3))
    assert len(list(generate(model, ids[:-1], 3, eos_ids=()))) == 3  # one token fewer fits


@pytest.mark.parametrize("how", ["argument", "stdin"])
def test_the_prompt_is_checked_as_inspects_sentence_is(how):
    """Bytes that are not UTF-8 (argv keeps them as lone surrogates) were an internal TypeError from
    the tokenizer; a blank prompt ran on the special tokens alone. Both now go as inspect's do."""
    model = str(MODELS / "tiny-llama")
    given = {"argument": lambda text: attn("generate", text, "--model", model, "-f", "json", "--max-new-tokens", "1"),
             "stdin": lambda text: attn("generate", "-", "--model", model, "-f", "json", "--max-new-tokens", "1", input=text)}[how]
    done = given("ab\udcffcd")  # the byte FF
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["prompt"] == "ab\ufffdcd"
    blank = given("   ")
    assert (blank.returncode, blank.stderr) == (1, "attn: error: the sentence is empty\n")


@pytest.mark.parametrize("command", ["generate", "inspect"])
def test_markers_in_the_text_stay_text_in_the_page(tmp_path, command):
    """page() put the shared script and the data where a marker stood, then again where the text held one:
    the title held the JavaScript and the page's JSON no longer parsed (a blank page)."""
    text = "x {{COMMON_JS}} y {{DATA}} z {{PAGE_HEAD}}"
    path = tmp_path / "page.html"
    result = run(command, text, "--model", str(MODELS / "tiny-gpt2"), "-f", "json", "--save", str(path))
    assert result.exit_code == 0, result.stderr
    html = path.read_text()
    title = html.split("<title>")[1].split("</title>")[0]
    assert title == ("attnviz generate: " if command == "generate" else f"attnviz: {MODELS / 'tiny-gpt2'}: ") + text
    data = json.loads(html.split('id="data">')[1].split("</script>")[0])
    assert data["prompt" if command == "generate" else "text"] == text
    assert html.count("const VIRIDIS") == 1  # the shared script once, where the template has it


def test_a_decoding_steps_rotary_rows_are_made_fresh_not_cached():
    """Each decoding step's start differs: cached, its one-row tables missed every time and pushed a whole
    run's tables out (and kept up to four alive after the run)."""
    from attnviz_cli.models import layers

    inv_freq = 1.0 / 10000 ** (np.arange(0, 64, 2) / 64)
    layers._rotary_tables.cache_clear()
    whole = layers.rotary_tables(inv_freq, 700, np.dtype(np.float32))
    for start in range(700, 710):
        layers.rotary_tables(inv_freq, 1, np.dtype(np.float32), start)
    assert layers._rotary_tables.cache_info().currsize == 1
    assert layers.rotary_tables(inv_freq, 700, np.dtype(np.float32))[0] is whole[0]


def test_a_token_line_fits_80_cells_with_3_digit_positions_and_wide_texts():
    """It was 82 characters with 3-digit positions, and CJK or emoji texts (two cells each, counted as
    one) went past 100 columns."""
    from attnviz_cli.models.generate import NewToken, Step
    from attnviz_cli.render_generate import View, shown, token_line

    weights = np.full((1, 1, 999), 0.1 / 996)
    weights[0, 0, [997, 998, 996]] = 0.5, 0.3, 0.1
    labels = ["x"] * 996 + ["东京タワー🗼" * 3, "a\u0301" * 20, "\x1b" * 9]  # wide; combining marks; escapes
    new = NewToken(998, 999, 7, "Ġx", "東京" * 10, Step(7, np.zeros(10), weights, np.log(weights)))
    line = token_line(new, labels, View())
    # each text cut to its cells: the new token's to 14 (5 wide characters, 10 cells, quotes and ellipsis),
    # the looked-at ones' to 9 with 3-digit positions (6 cells between the quotes and the ellipsis)
    assert line == "999  '東京東京東…'   997:'" + "a\u0301" * 6 + "…' 0.50  998:'\\x1b…' 0.30  996:'东京タ…' 0.10\n"
    assert cells(line.rstrip("\n")) == 77
    assert [shown(text, 9) for text in ("东京", "東京x")] == ["'东京'", "'東京x'"]  # 6 and 7 cells: whole


def test_each_step_says_whether_and_why_the_run_stops_there():
    """The CLI re-derived why a run stopped from the last token and the count (unbound with no step)."""
    llama, gpt2 = load_model(MODELS / "tiny-llama"), load_model(MODELS / "tiny-gpt2")  # gpt2: 64 positions
    ids = llama.encode("the quick brown fox")[0].ids
    made = list(generate(llama, ids, 10, eos_ids=()))
    assert [s.stopped for s in made] == [None] * 9 + ["max_new_tokens"]
    ended = list(generate(llama, ids, 10, eos_ids=(made[3].id,)))
    assert [s.stopped for s in ended] == [None] * 3 + ["eos"]
    long = gpt2.encode("the quick brown fox jumps over the lazy dog")[0].ids
    last = list(generate(gpt2, long, 100, eos_ids=()))
    assert len(last) == 64 - len(long) and last[-1].stopped == "max_positions" and {s.stopped for s in last[:-1]} == {None}
    with pytest.raises(AttnvizError, match="the prompt has 64 tokens, and the model's 64 positions leave no room for more"):
        next(generate(gpt2, [1] * 64, 3))


def test_sampling_takes_no_hidden_randomness_and_draws_through_one_softmax():
    with pytest.raises(ValueError, match="needs an rng"):
        Sampling(0.7)
    with pytest.raises(ValueError, match="needs a temperature above 0"):
        Sampling(top_k=3, rng=np.random.default_rng(0))
    logits = np.array([1.0, 3.0, 2.0, 3.0, -1.0])
    e = np.exp(np.array([3.0, 3.0, 2.0]) / 0.5)  # the top 3 at temperature 0.5, by hand
    assert_allclose(Sampling(0.5, 3, np.random.default_rng(0)).probabilities(logits), [0, e[0], e[2], e[1], 0] / e.sum(), rtol=1e-15)


def test_a_template_that_runs_out_of_memory_is_one_line(monkeypatch):
    """A MemoryError in a render (here from its tojson filter) was an internal error."""
    from attnviz_cli.models import chat

    def no_memory(*_: object, **__: object) -> str:
        raise MemoryError

    monkeypatch.setattr(chat.json, "dumps", no_memory)
    with pytest.raises(AttnvizError, match=r"^the chat template of 'm' fails: 'MemoryError'$"):
        chat.render("{{ messages | tojson }}", [{"role": "user", "content": "hi"}], {}, "m")
    assert chat.render("{{ 'ab' * 3 }}{{ 2 ** 10 }}{{ 1.5 * 2 }}", [], {}, "m") == "ababab10243.0"  # small products as Jinja2 makes them

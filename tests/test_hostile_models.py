"""Issue 31: hostile model files, configs and caches. Each bad file is made here, small, from the tiny
models; each case ends in one `attn: error:` line naming the problem and the file (exit 1; 2 for usage),
never a traceback, a hang or memory the input claims."""

from __future__ import annotations

import json
import os
import shutil
import struct
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from attnviz_cli.errors import quoted
from tests.conftest import run

MODELS = Path(__file__).resolve().parent / "models"


def copy(kind: str, dest: Path) -> Path:
    """A tiny model's folder (config.json, model.safetensors, tokenizer.json) to spoil."""
    return Path(shutil.copytree(MODELS / f"tiny-{kind}", dest, ignore=shutil.ignore_patterns("*.gguf", "*.npz", "config-v5.json")))


def one_line(result, *words: str, code: int = 1) -> str:
    """The one stderr line of a refused run, checked to hold ``words``; no traceback, no raw escape."""
    assert result.exit_code == code, result.output
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("attn: error: "), result.stderr
    assert "Traceback" not in result.output and "internal error" not in result.stderr and "\x1b" not in result.stderr
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def usage_error(result, *words: str) -> str:
    """A usage error: exit 2, its words in the message (Typer may wrap it over lines), no traceback."""
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    flat = " ".join(result.stderr.replace("│", " ").split())
    for word in words:
        assert word in flat, (word, flat)
    return flat


def with_config(kind: str, dest: Path, **changes) -> Path:
    folder = copy(kind, dest)
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | changes))
    return folder


@contextmanager
def unblocking(fifo: Path) -> Iterator[None]:
    """While the block runs, another process opens the FIFO for writing now and then and closes it at
    once, so a reader that opened it (attn before issue 31) gets an empty file rather than hanging the
    test run (a process: a library blocked in open() may hold the GIL, which would stop a thread too)."""
    code = (
        "import os, time\n"
        "while True:\n"
        "    time.sleep(0.5)\n"
        "    try:\n"
        f"        os.close(os.open({str(fifo)!r}, os.O_WRONLY | os.O_NONBLOCK))\n"
        "    except OSError:\n"  # no reader yet: attn never opened it
        "        pass\n"
    )
    child = subprocess.Popen([sys.executable, "-c", code])
    try:
        yield
    finally:
        child.kill()
        child.wait()


def attn_limited(*args: str, megabytes: int = 500, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``attn ARGS`` in a process of its own whose address space is capped at ``megabytes`` (a tiny
    model's run takes ~300 MB of it); the timeout only guards the suite against a hang."""
    code = (
        "import resource, sys\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({megabytes << 20}, {megabytes << 20}))\n"
        f"sys.argv = ['attn', *{list(args)!r}]\n"
        "from attnviz_cli.main import main\n"
        "main()\n"
    )
    environ = {**os.environ, "OPENBLAS_NUM_THREADS": "1", **(env or {})}
    return subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=120, env=environ)


# -- 1. memory and time without bound: model files are regular files, read up to a stated size ----


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json", "model.safetensors"])
def test_a_model_file_that_is_a_fifo_is_refused_at_once(tmp_path, name):
    folder = copy("bert", tmp_path / "m")
    (folder / name).unlink()
    os.mkfifo(folder / name)
    what = "model weights" if name == "model.safetensors" else name
    with unblocking(folder / name):
        for args in (("inspect", "the bank", "--model", str(folder)), ("model", "info", str(folder))):
            one_line(run(*args), f"{what} {quoted(str(folder / name))} is not a regular file")


def test_a_generation_config_that_is_a_fifo_is_passed_over_not_waited_on(tmp_path):
    folder = copy("llama", tmp_path / "m")
    (folder / "generation_config.json").unlink()
    os.mkfifo(folder / "generation_config.json")  # nobody writes to it: opening it to read would wait forever
    code = f"from attnviz_cli.models.model import generation_eos; print(generation_eos(__import__('pathlib').Path({str(folder)!r})))"
    result = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True, timeout=60)  # a guard against a hang
    assert (result.returncode, result.stdout) == (0, "()\n"), result.stderr


@pytest.mark.parametrize("name", ["config.json", "tokenizer.json"])
def test_a_model_file_that_links_to_dev_zero_is_refused_in_bounded_memory(tmp_path, name):
    folder = copy("bert", tmp_path / "m")
    (folder / name).unlink()
    (folder / name).symlink_to("/dev/zero")
    result = attn_limited("inspect", "the bank", "--model", str(folder))
    assert result.returncode == 1, result.stderr[-2000:]
    assert result.stderr == f"attn: error: {name} {quoted(str(folder / name))} is not a regular file\n"


@pytest.mark.parametrize(("name", "size", "limit"), [
    ("config.json", (1 << 20) + 1, "1,048,576"),
    ("tokenizer.json", (64 << 20) + 1, "67,108,864"),
    ("model.safetensors.index.json", (16 << 20) + 1, "16,777,216"),
])
def test_a_model_file_over_its_stated_size_is_refused_before_it_is_read(tmp_path, name, size, limit):
    folder = copy("bert", tmp_path / "m")
    if name.endswith("index.json"):
        (folder / "model.safetensors").rename(folder / "model-00001-of-00001.safetensors")
    with open(folder / name, "wb") as file:  # sparse: no disk, and nothing read
        file.truncate(size)
    one_line(run("inspect", "the bank", "--model", str(folder)), f"{name} {quoted(str(folder / name))} is {size:,} bytes, over the {limit} it may be")


def test_a_config_claiming_a_billion_layers_is_refused_in_bounded_memory(tmp_path):
    """A config alone (model info, model list) is refused past 1,024 layers; a run checks it against
    the checkpoint first."""
    folder = with_config("llama", tmp_path / "m", num_hidden_layers=10**9)
    result = attn_limited("model", "info", str(folder))
    assert result.returncode == 1, result.stderr[-2000:]
    assert "num_hidden_layers is 1000000000; it must be at most 1,024 layers" in result.stderr
    one_line(run("inspect", "the bank", "--model", str(folder)), "hold 2 layers, where config.json says 1000000000")


def test_a_nested_config_is_refused_by_its_depth(tmp_path):
    folder = copy("bert", tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config)[:-1] + ', "deep": ' + "[" * 100_000 + "]" * 100_000 + "}")
    for args in (("inspect", "the bank", "--model", str(folder)), ("model", "info", str(folder))):
        one_line(run(*args), "config.json", "is nested deeper than the 64 levels it may be")


def test_a_config_that_is_not_utf8_is_one_line(tmp_path):
    folder = copy("bert", tmp_path / "m")
    (folder / "config.json").write_bytes(b'{"model_type": "bert\xff"}')
    one_line(run("model", "info", str(folder)), "config.json", "is not UTF-8 (byte 20)")


# -- 4. config.json's numbers: one validated reader, naming the field, its value and the file ----

MUST_COUNT = "a whole number from 1 to 2,147,483,648"


@pytest.mark.parametrize(("kind", "field", "raw", "said"), [
    ("bert", "num_hidden_layers", "Infinity", f"num_hidden_layers is Infinity; it must be {MUST_COUNT}"),
    ("bert", "num_hidden_layers", "1e999", f"num_hidden_layers is Infinity; it must be {MUST_COUNT}"),
    ("bert", "num_hidden_layers", "null", f"num_hidden_layers is null; it must be {MUST_COUNT}"),
    ("bert", "num_hidden_layers", "true", f"num_hidden_layers is true; it must be {MUST_COUNT}"),
    ("bert", "num_hidden_layers", '"2"', f"num_hidden_layers is the string '2'; it must be {MUST_COUNT}"),
    ("bert", "num_hidden_layers", "[2]", f"num_hidden_layers is a list; it must be {MUST_COUNT}"),
    ("bert", "num_hidden_layers", "2.5", f"num_hidden_layers is 2.5; it must be {MUST_COUNT}"),
    ("bert", "hidden_size", "0", f"hidden_size is 0; it must be {MUST_COUNT}"),
    ("bert", "max_position_embeddings", "-10", f"max_position_embeddings is -10; it must be {MUST_COUNT}"),
    ("bert", "layer_norm_eps", "NaN", "layer_norm_eps is NaN; it must be a finite number, 0 or more"),
    ("bert", "layer_norm_eps", "-1e-12", "layer_norm_eps is -1e-12; it must be a finite number, 0 or more"),
    ("bert", "intermediate_size", "0", f"intermediate_size is 0; it must be {MUST_COUNT}"),
    ("gpt2", "n_positions", "Infinity", f"n_positions is Infinity; it must be {MUST_COUNT}"),
    ("gpt2", "layer_norm_epsilon", '"small"', "layer_norm_epsilon is the string 'small'; it must be a finite number, 0 or more"),
    ("roberta", "pad_token_id", '"one"', "pad_token_id is the string 'one'; it must be a whole number from -1 to 2,147,483,648"),
    ("roberta", "pad_token_id", "-1", "pad_token_id is -1; it must be RoBERTa's padding id, a whole number from 0"),
    ("roberta", "pad_token_id", "null", "pad_token_id is null; it must be RoBERTa's padding id, a whole number from 0"),
    ("distilbert", "dim", "-32", f"dim is -32; it must be {MUST_COUNT}"),
    ("llama", "intermediate_size", "0", f"intermediate_size is 0; it must be {MUST_COUNT}"),
    ("llama", "vocab_size", "-1", f"vocab_size is -1; it must be {MUST_COUNT}"),
    ("llama", "pad_token_id", "-2", "pad_token_id is -2; it must be a whole number from -1 to 2,147,483,648"),
    ("llama", "rope_scaling", '{"rope_type": "llama3", "factor": Infinity, "low_freq_factor": 1, "high_freq_factor": 4, '
     '"original_max_position_embeddings": 64}', "rope_scaling.factor is Infinity; it must be a finite number above 0"),
    ("mistral", "sliding_window", "1e999", "sliding_window is Infinity; it must be a whole number from 0 to 2,147,483,648"),
    ("mistral", "attention_bias", '"no"', "attention_bias is the string 'no'; it must be true or false"),
    ("phi3", "partial_rotary_factor", "1.5", "partial_rotary_factor is 1.5; it must be a number above 0, at most 1"),
])
def test_a_config_number_of_the_wrong_kind_names_its_field_value_and_file(tmp_path, kind, field, raw, said):
    folder = copy(kind, tmp_path / "m")
    config = json.loads((folder / "config.json").read_text())
    (folder / "config.json").write_text(json.dumps(config | {field: "PLACEHOLDER"}).replace('"PLACEHOLDER"', raw))
    where = f"model folder {quoted(str(folder))}: config.json: {said}"
    for args in (("inspect", "the bank", "--model", str(folder)), ("model", "info", str(folder))):
        assert one_line(run(*args)) == f"attn: error: {where}"


def test_a_negative_position_count_says_so_plainly(tmp_path):
    """RoBERTa's positions start after its padding id: a table smaller than that leaves none."""
    folder = with_config("roberta", tmp_path / "m", max_position_embeddings=5, pad_token_id=10)
    one_line(run("model", "info", str(folder)),
             "config.json leaves the model -6 positions (its max_position_embeddings less the 11 its position ids start at)")


# -- model info reads safetensors headers as a run does --------------------------------------------


def _header_file(header: bytes | dict, length: int | None = None, data: bytes = b"") -> bytes:
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack("<Q", len(raw) if length is None else length) + raw + data


BAD_WEIGHTS = {
    "under 8 bytes": b"\x01\x02\x03",
    "header length 2^40": _header_file(b"{}", 1 << 40),
    "header length 2^63": _header_file(b"{}", 1 << 63),
    "a 1 GB header": _header_file(b"{}", 10**9),
    "nested header": _header_file(b"[" * 5000 + b"]" * 5000),
    "missing shape": _header_file({"w": {"dtype": "F32", "data_offsets": [0, 4]}}, data=b"\0" * 4),
    "string shape": _header_file({"w": {"dtype": "F32", "shape": "2", "data_offsets": [0, 8]}}, data=b"\0" * 8),
    "truncated": _header_file({"w": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]}}, data=b"\0" * 8),
    "overlapping": _header_file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                                 "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]}}, data=b"\0" * 12),
    "out of range": _header_file({"w": {"dtype": "F32", "shape": [1], "data_offsets": [8, 12]}}, data=b"\0" * 4),
    "unknown dtype": _header_file({"w": {"dtype": "\x1b[31mF99", "shape": [1], "data_offsets": [0, 4]}}, data=b"\0" * 4),
}


@pytest.mark.parametrize("case", list(BAD_WEIGHTS))
def test_model_info_refuses_the_weights_inspect_refuses_with_its_message(tmp_path, case):
    folder = copy("bert", tmp_path / "m")
    (folder / "model.safetensors").write_bytes(BAD_WEIGHTS[case])
    said = one_line(run("inspect", "the bank", "--model", str(folder)), f"model weights {quoted(str(folder / 'model.safetensors'))} cannot be read: ")
    assert one_line(run("model", "info", str(folder))) == said


def test_model_info_of_weights_linked_to_proc_self_environ_is_one_line(tmp_path):
    folder = copy("bert", tmp_path / "m")
    (folder / "model.safetensors").unlink()
    (folder / "model.safetensors").symlink_to("/proc/self/environ")
    one_line(run("model", "info", str(folder)), "model weights", "cannot be read")


# -- 5 and 6. the cache: one damaged model never hides the others, and nothing points outside it --

COMMIT = "0123abcd" * 5


def cache_model(cache: Path, repo_id: str, kind: str, ref: bytes | None = None, **changes) -> Path:
    """``kind``'s tiny model in the Hugging Face cache ``cache`` as ``repo_id``, its refs/main holding
    ``ref`` (its commit unless given), its config.json changed by ``changes``."""
    base = cache / "--".join(("models", *repo_id.split("/")))
    snapshot = base / "snapshots" / COMMIT
    (with_config if changes else copy)(kind, snapshot, **changes)
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_bytes(COMMIT.encode() if ref is None else ref)
    return snapshot


def test_model_list_shows_each_damaged_model_as_damaged_and_the_others_ready(tmp_path):
    cache = tmp_path / "hub"
    cache_model(cache, "acme/good", "bert")
    cache_model(cache, "acme/bytes", "bert", ref=b"\xff\xfe")
    cache_model(cache, "acme/infinite", "bert", num_hidden_layers=float("inf"))
    cache_model(cache, "acme/nested", "bert", deep=json.loads("[" * 200 + "]" * 200))
    cache_model(cache, "acme/padless", "roberta", pad_token_id=None)
    cache_model(cache, "acme/outside", "bert", ref=str(tmp_path / "elsewhere").encode())
    fifo = cache_model(cache, "acme/fifo", "bert") / "config.json"
    fifo.unlink()
    os.mkfifo(fifo)
    linked = cache_model(cache, "acme/linked", "bert")
    shutil.move(linked, tmp_path / "linked-elsewhere")
    linked.symlink_to(tmp_path / "linked-elsewhere")
    result = run("model", "list", "-f", "json", env={"HF_HUB_CACHE": str(cache), "OLLAMA_MODELS": str(tmp_path / "o"), "HOME": str(tmp_path)})
    assert result.exit_code == 0, result.output
    status = {m["name"]: m["status"] for m in json.loads(result.stdout)["models"]}
    assert status == {
        "acme/good": "ready",
        "acme/bytes": "damaged: refs/main not UTF-8 (byte 0)",
        "acme/infinite": f"damaged: config.json: num_hidden_layers is Infinity; it must be {MUST_COUNT}",
        "acme/nested": "damaged: config.json nested deeper than the 64 levels it may be",
        "acme/padless": "damaged: config.json: pad_token_id is null; it must be RoBERTa's padding id, a whole number from 0",
        "acme/outside": f"damaged: refs/main not a commit hash (it holds {quoted(str(tmp_path / 'elsewhere'))})",
        "acme/fifo": "damaged: config.json not a regular file",
        "acme/linked": f"damaged: snapshots/{COMMIT} a link, where a folder belongs",
    }


@pytest.mark.parametrize("ref", ["/ABS", "../../..", "../../models--acme--other/snapshots/" + COMMIT])
def test_a_ref_never_points_outside_the_repositorys_snapshots(tmp_path, ref):
    cache = tmp_path / "hub"
    elsewhere = copy("bert", tmp_path / "elsewhere")
    cache_model(cache, "acme/other", "bert")
    text = ref.replace("/ABS", str(elsewhere))
    base = cache / "models--acme--m"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(text)
    said = one_line(run("inspect", "the bank", "--model", "acme/m", env={"HF_HUB_CACHE": str(cache)}))
    assert said == f"attn: error: the Hugging Face cache's ref {quoted(str(base / 'refs' / 'main'))} is not a commit hash (it holds {quoted(text)})"


def test_an_unreadable_ref_says_what_is_wrong_not_fetch_it_once(tmp_path):
    cache = tmp_path / "hub"
    cache_model(cache, "acme/m", "bert")
    ref = cache / "models--acme--m" / "refs" / "main"
    ref.unlink()
    ref.mkdir()
    said = one_line(run("inspect", "the bank", "--model", "acme/m", env={"HF_HUB_CACHE": str(cache)}))
    assert said == f"attn: error: the Hugging Face cache's ref {quoted(str(ref))} is not a regular file"


@pytest.mark.parametrize("name", ["a" * 5000, "org/" + "a" * 5000, "o" * 5000 + "/name", "org/na\x1b]0;PWN\x07me"])
def test_an_id_too_long_or_of_bad_characters_gets_huggingface_hubs_rule(name):
    said = one_line(run("inspect", "the bank", "--model", name))
    assert "File name too long" not in said
    assert said.endswith("not a folder, nor a Hub id (huggingface_hub: Repo id must use alphanumeric chars, '-', '_' or '.'. "
                         "The name cannot start or end with '-' or '.' and the maximum length is 96)")


# -- 3. untrusted text reaches the terminal escaped ---------------------------------------------


def test_demo_of_a_folder_named_with_escapes_prints_it_escaped(tmp_path):
    folder = copy("bert", tmp_path / "m\x1b]0;PWN\x07")
    result = run("demo", "--model", str(folder))
    assert result.exit_code == 0, result.output
    assert "\x1b" not in result.stdout and "\x07" not in result.stdout
    assert "m\\x1b]0;PWN\\x07" in result.stdout


def test_a_tokenizer_message_with_escapes_is_escaped(tmp_path):
    folder = copy("bert", tmp_path / "m")
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    tokenizer["version"] = "\x1b[2J9.9"
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    one_line(run("inspect", "the bank", "--model", str(folder)), "tokenizer.json cannot be read", "\\x1b[2J9.9")


# -- 9. the smaller ones --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_text_through_a_model_is_the_static_paths_error(text):
    static = one_line(run("inspect", text))
    assert one_line(run("inspect", text, "--model", str(MODELS / "tiny-bert"))) == static == "attn: error: the sentence is empty"


def test_a_layer_past_the_last_is_refused_from_config_json_before_the_weights_are_read(tmp_path):
    """Weights that cannot be read (NaN in a tensor, found only as they are read) are never reached."""
    from safetensors.numpy import load_file, save_file

    folder = copy("bert", tmp_path / "m")
    tensors = load_file(folder / "model.safetensors")
    name = next(n for n in tensors if n.endswith("layer.1.output.dense.weight"))
    tensors[name][0, 0] = float("nan")
    save_file(tensors, folder / "model.safetensors")
    one_line(run("inspect", "the bank", "--model", str(folder), "--layer", "1"), "holds NaN or infinite values")
    usage_error(run("inspect", "the bank", "--model", str(folder), "--layer", "9"), "has layers 0 to 1")


def test_a_focus_with_two_ats_is_reported_whole():
    said = one_line(run("inspect", "the river bank", "--model", str(MODELS / "tiny-bert"), "--focus", "bank@1@2"))
    assert said.startswith("attn: error: --focus 'bank@1@2': 'bank@1' is not one of the words")
    assert one_line(run("inspect", "the river bank", "--focus", "bank@1@2")).startswith(
        "attn: error: --focus 'bank@1@2': 'bank@1' is not one of the tokens")


def test_a_feed_forward_of_width_zero_in_the_weights_is_refused(tmp_path):
    import numpy as np
    from safetensors.numpy import load_file, save_file

    folder = copy("bert", tmp_path / "m")
    tensors = load_file(folder / "model.safetensors")
    for name in list(tensors):
        if ".intermediate.dense." in name:
            tensors[name] = np.zeros((0, *tensors[name].shape[1:]), np.float32)
        elif ".output.dense.weight" in name and "attention" not in name:
            tensors[name] = np.zeros((tensors[name].shape[0], 0), np.float32)
    save_file(tensors, folder / "model.safetensors")
    one_line(run("inspect", "the bank", "--model", str(folder)), "intermediate.dense.weight' has shape (0, 32): a width of 0")


def test_a_wordpiece_unk_token_missing_from_its_vocabulary_is_one_line(tmp_path):
    folder = copy("bert", tmp_path / "m")
    tokenizer = json.loads((folder / "tokenizer.json").read_text())
    tokenizer["model"]["unk_token"] = "[NOPE]"
    (folder / "tokenizer.json").write_text(json.dumps(tokenizer))
    one_line(run("inspect", "the zzqx bank", "--model", str(folder)), "fails on the text: WordPiece error: Missing [UNK] token from the vocabulary")


def test_vectors_list_shows_a_set_whose_meta_json_is_nested_deep_as_damaged(tmp_path):
    cache = tmp_path / "cache"
    (cache / "deep").mkdir(parents=True)
    (cache / "deep" / "meta.json").write_text('{"dim": ' + "[" * 100_000 + "]" * 100_000 + "}")
    result = run("vectors", "list", "-f", "json", env={"ATTN_CACHE_DIR": str(cache)})
    assert result.exit_code == 0, result.output
    assert {s["name"]: s["status"] for s in json.loads(result.stdout)["sets"]}["deep"] == "damaged"

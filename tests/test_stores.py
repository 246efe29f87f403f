"""Where users keep GGUF models: Ollama's store and LM Studio's models folder, laid out in tmp_path as
those apps write them, found by the names --model takes, and listed by `attn model list`."""

from __future__ import annotations

import hashlib
import json
import os
import struct
from pathlib import Path

import pytest

from attnviz_cli.errors import AttnvizError
from attnviz_cli.models.stores import (
    MANIFEST_LIMIT,
    GGUFModel,
    find_gguf,
    gguf_models,
    lmstudio_store,
    ollama_store,
    parse_ollama_name,
)

from .conftest import run

# A GGUF file's header with no tensors and no metadata: magic, version 3, tensor count, metadata count.
GGUF = b"GGUF" + struct.pack("<IQQ", 3, 0, 0)
DEFAULT = ("registry.ollama.ai", "library")


def gguf_bytes(tag: str) -> bytes:
    """A small GGUF file whose bytes (so whose sha256) differ by ``tag``."""
    return GGUF + tag.encode()


def blob(store: Path, data: bytes) -> str:
    """``data`` stored as Ollama stores a layer: blobs/sha256-<hex of its sha256>; its digest."""
    digest = hashlib.sha256(data).hexdigest()
    (store / "blobs").mkdir(parents=True, exist_ok=True)
    (store / "blobs" / f"sha256-{digest}").write_bytes(data)
    return f"sha256:{digest}"


def layer(media: str, digest: str, size: int) -> dict:
    return {"mediaType": media, "digest": digest, "size": size}


def pull(store: Path, parts: tuple[str, str, str, str], model: bytes, *, manifest: bytes | None = None) -> Path:
    """A model as `ollama pull` leaves it: its layers as blobs and the registry's manifest, byte for byte
    the shape registry.ollama.ai serves (compact JSON, config then layers: model, template, license,
    params), at manifests/HOST/NAMESPACE/MODEL/TAG. Returns the model's blob."""
    digest = blob(store, model)
    config = json.dumps({"model_format": "gguf", "model_family": "llama", "model_families": ["llama"],
                         "model_type": "134.52M", "file_type": "Q8_0", "architecture": "amd64", "os": "linux",
                         "rootfs": {"type": "layers", "diff_ids": [digest]}}).encode()
    template = b"{{- if .Messages }}{{ range .Messages }}<|im_start|>{{ .Role }}\n{{ .Content }}<|im_end|>\n{{ end }}{{ end }}"
    parts_of = [
        layer("application/vnd.ollama.image.model", digest, len(model)),
        layer("application/vnd.ollama.image.template", blob(store, template), len(template)),
        layer("application/vnd.ollama.image.license", blob(store, b"Apache License 2.0"), 18),
        layer("application/vnd.ollama.image.params", blob(store, b'{"stop":["<|im_end|>"]}'), 23),
    ]
    if manifest is None:
        manifest = json.dumps({
            "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
            "config": layer("application/vnd.docker.container.image.v1+json", blob(store, config), len(config)),
            "layers": parts_of,
        }, separators=(",", ":")).encode()
    path = store.joinpath("manifests", *parts)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(manifest)
    return store / "blobs" / f"sha256-{digest.split(':')[1]}"


@pytest.fixture
def home(tmp_path, monkeypatch) -> Path:
    """An empty home folder, with Ollama's and LM Studio's defaults under it."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("OLLAMA_MODELS", raising=False)
    return home


@pytest.fixture
def ollama(home) -> Path:
    """Ollama's default store, ~/.ollama/models, with four models pulled."""
    store = home / ".ollama" / "models"
    pull(store, (*DEFAULT, "smollm2", "135m"), gguf_bytes("smollm2"))
    pull(store, (*DEFAULT, "smollm2", "latest"), gguf_bytes("smollm2 latest"))
    pull(store, ("registry.ollama.ai", "acme", "tiny", "q4_1"), gguf_bytes("acme"))
    pull(store, ("hf.co", "bartowski", "SmolLM2-135M-Instruct-GGUF", "Q4_K_M"), gguf_bytes("hf"))
    return store


def digest_of(path: Path) -> str:
    return path.name.removeprefix("sha256-")


# ---- Ollama's names, as types/model/name.go parses them ------------------------------------------------


@pytest.mark.parametrize(("name", "parts"), [
    ("smollm2", ("registry.ollama.ai", "library", "smollm2", "latest")),
    ("smollm2:135m", ("registry.ollama.ai", "library", "smollm2", "135m")),
    ("acme/tiny", ("registry.ollama.ai", "acme", "tiny", "latest")),
    ("acme/tiny:q4_1", ("registry.ollama.ai", "acme", "tiny", "q4_1")),
    ("hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M", ("hf.co", "bartowski", "SmolLM2-135M-Instruct-GGUF", "Q4_K_M")),
    ("localhost:5000/acme/tiny", ("localhost:5000", "acme", "tiny", "latest")),  # the port's ":" is before a "/"
    ("localhost:5000/acme/tiny:v1.2", ("localhost:5000", "acme", "tiny", "v1.2")),
    ("https://example.com/acme/tiny:v1", ("example.com", "acme", "tiny", "v1")),  # the scheme is dropped
    ("_x/y.z:_1", ("registry.ollama.ai", "_x", "y.z", "_1")),
])
def test_ollama_names_parse_as_ollama_parses_them(name, parts):
    assert parse_ollama_name(name) == parts


@pytest.mark.parametrize("name", [
    "", ":", "smollm2:", ":135m", "/smollm2", "acme/", "acme//tiny", "a/b/c/d",  # parts promised and missing
    "../x", "acme/..", "..", ".hidden", "-x", "a.b/tiny",  # a part starts with a letter, digit or "_"; no "." in a namespace
    "sm ollm2", "tiny:q4/1", "x" * 81, "tiny:" + "t" * 81, "a@sha256:00", "smollm2\x1b[31m",
])
def test_names_ollama_refuses_are_refused_in_one_line(name):
    with pytest.raises(AttnvizError) as caught:
        parse_ollama_name(name)
    message = str(caught.value)
    assert message.startswith(f"'ollama:{name}'".replace("\x1b", "\\x1b")) and "\n" not in message and "\x1b" not in message


def test_ollama_names_find_the_model_layers_blob(ollama):
    blobs = {name: find_gguf(f"ollama:{name}") for name in (
        "smollm2:135m", "smollm2", "smollm2:latest", "acme/tiny:q4_1", "registry.ollama.ai/acme/tiny:q4_1",
        "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M",
    )}
    assert {name: path.read_bytes() for name, path in blobs.items()} == {
        "smollm2:135m": gguf_bytes("smollm2"), "smollm2": gguf_bytes("smollm2 latest"),
        "smollm2:latest": gguf_bytes("smollm2 latest"), "acme/tiny:q4_1": gguf_bytes("acme"),
        "registry.ollama.ai/acme/tiny:q4_1": gguf_bytes("acme"), "hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M": gguf_bytes("hf"),
    }
    assert blobs["smollm2:135m"] == ollama / "blobs" / f"sha256-{hashlib.sha256(gguf_bytes('smollm2')).hexdigest()}"


def test_ollama_names_match_in_any_case_as_ollama_matches_them(ollama):
    assert find_gguf("ollama:SmolLM2:135M").read_bytes() == gguf_bytes("smollm2")
    assert find_gguf("ollama:HF.co/Bartowski/smollm2-135m-instruct-gguf:q4_k_m").read_bytes() == gguf_bytes("hf")
    pull(ollama, (*DEFAULT, "SMOLLM2", "135m"), gguf_bytes("upper"))  # a case-sensitive disk may hold both
    assert find_gguf("ollama:SMOLLM2:135m").read_bytes() == gguf_bytes("upper")  # the exact name first
    with pytest.raises(AttnvizError, match=r"^'ollama:Smollm2:135m' matches 2 models of Ollama's store, in case only: 'ollama:SMOLLM2:135m', 'ollama:smollm2:135m'$"):
        find_gguf("ollama:Smollm2:135m")


def test_ollama_models_folder_is_OLLAMA_MODELS_when_set(home, tmp_path, monkeypatch):
    store = tmp_path / "elsewhere"
    pull(store, (*DEFAULT, "smollm2", "135m"), gguf_bytes("moved"))
    assert ollama_store() == home / ".ollama" / "models"
    monkeypatch.setenv("OLLAMA_MODELS", f' "{store}" ')  # Ollama trims spaces and quotes
    assert ollama_store() == store
    assert find_gguf("ollama:smollm2:135m").read_bytes() == gguf_bytes("moved")


def test_a_model_ollama_lacks_says_where_it_looked_and_how_to_get_it(ollama):
    with pytest.raises(AttnvizError) as caught:
        find_gguf("ollama:qwen3:0.6b")
    assert str(caught.value) == (
        f"no Ollama model 'ollama:qwen3:0.6b': no manifest '{ollama}/manifests/registry.ollama.ai/library/qwen3/0.6b' "
        "(Ollama's store: $OLLAMA_MODELS, else ~/.ollama/models); fetch it with: ollama pull qwen3:0.6b"
    )


# ---- hostile stores: each a one-line error, nothing read past its bound -------------------------------


def manifest_path(store: Path, model: str = "smollm2", tag: str = "135m") -> Path:
    return store / "manifests" / "registry.ollama.ai" / "library" / model / tag


def one_line_error(spec: str) -> str:
    with pytest.raises(AttnvizError) as caught:
        find_gguf(spec)
    message = str(caught.value)
    assert "\n" not in message and "\x1b" not in message, message
    return message


def test_a_manifest_claiming_2_gb_is_refused_before_it_is_read(ollama):
    path = manifest_path(ollama)
    with open(path, "r+b") as file:
        file.truncate(2 << 30)  # sparse: 2 GiB claimed, nothing written
    assert one_line_error("ollama:smollm2:135m") == f"Ollama manifest '{path}' is 2,147,483,648 bytes, over the {MANIFEST_LIMIT:,} it may be"


def test_a_manifest_that_is_a_fifo_or_a_link_to_a_device_is_refused_without_blocking(ollama):
    path = manifest_path(ollama)
    path.unlink()
    os.mkfifo(path)  # a plain open() would wait for a writer forever
    assert one_line_error("ollama:smollm2:135m") == f"Ollama manifest '{path}' is not a regular file"
    path.unlink()
    path.symlink_to("/dev/zero")
    assert one_line_error("ollama:smollm2:135m") == f"Ollama manifest '{path}' is not a regular file"


@pytest.mark.parametrize(("digest", "why"), [
    ("sha256:../../../../etc/passwd", "naming its model by 'sha256:../../../../etc/passwd', not sha256 and 64 hex digits"),
    ("sha256-" + "0" * 63, f"naming its model by 'sha256-{'0' * 63}', not sha256 and 64 hex digits"),
    ("sha256:" + "0" * 64 + "/../x", f"naming its model by 'sha256:{'0' * 64}/../x', not sha256 and 64 hex digits"),
    ("md5:" + "0" * 64, f"naming its model by 'md5:{'0' * 64}', not sha256 and 64 hex digits"),
    (7, "naming its model by '7', not sha256 and 64 hex digits"),
])
def test_a_manifest_naming_a_blob_outside_blobs_is_refused(ollama, digest, why):
    manifest = {"schemaVersion": 2, "layers": [{"mediaType": "application/vnd.ollama.image.model", "digest": digest, "size": 1}]}
    pull(ollama, (*DEFAULT, "evil", "latest"), gguf_bytes("evil"), manifest=json.dumps(manifest).encode())
    assert one_line_error("ollama:evil") == f"Ollama manifest '{manifest_path(ollama, 'evil', 'latest')}' is {why}"


@pytest.mark.parametrize(("manifest", "why"), [
    (b"{not json", "not a manifest (JSONDecodeError)"),
    (b"[]", "not a manifest (TypeError)"),
    (b'{"layers": [{"digest": "x"}]}', "without a model layer (application/vnd.ollama.image.model)"),
    (b'{"layers": [{"mediaType": "application/vnd.ollama.image.model"}]}', "not a manifest (KeyError)"),
    (b'{"schemaVersion": 2}', "not a manifest (KeyError)"),
])
def test_a_manifest_that_is_not_one_is_a_one_line_error(ollama, manifest, why):
    pull(ollama, (*DEFAULT, "bad", "latest"), gguf_bytes("bad"), manifest=manifest)
    assert one_line_error("ollama:bad") == f"Ollama manifest '{manifest_path(ollama, 'bad', 'latest')}' is {why}"


def test_a_missing_or_foreign_blob_is_a_one_line_error(ollama):
    blob = pull(ollama, (*DEFAULT, "gone", "latest"), gguf_bytes("gone"))
    blob.unlink()
    assert one_line_error("ollama:gone") == f"Ollama model 'ollama:gone': its blob '{blob}' is missing"
    blob.write_bytes(b"PK\x03\x04 a safetensors or zip file, not GGUF")
    assert one_line_error("ollama:gone") == f"Ollama model 'ollama:gone': its blob '{blob}' is not a GGUF file (it does not start with 'GGUF')"
    blob.unlink()
    blob.symlink_to("/dev/zero")
    assert one_line_error("ollama:gone") == f"Ollama model 'ollama:gone': its blob '{blob}' is not a regular file"


# ---- .gguf paths --------------------------------------------------------------------------------------


def test_a_gguf_path_is_found_when_it_is_a_regular_gguf_file(tmp_path):
    path = tmp_path / "SmolLM2.Q4_1.GGUF"
    path.write_bytes(gguf_bytes("path"))
    assert find_gguf(str(path)) == path
    link = tmp_path / "link.gguf"
    link.symlink_to(path)  # a link to a GGUF file is fine: what it points to is read
    assert find_gguf(str(link)) == link
    for spec in ("gpt2", "sentence-transformers/all-MiniLM-L6-v2", str(tmp_path), "model.safetensors"):
        assert find_gguf(spec) is None  # not a GGUF kind of name: the caller goes on to folders and Hub ids


def test_a_gguf_path_that_is_not_a_gguf_file_is_a_one_line_error(tmp_path):
    fifo, zero, folder, text = (tmp_path / n for n in ("fifo.gguf", "zero.gguf", "folder.gguf", "text.gguf"))
    os.mkfifo(fifo)
    zero.symlink_to("/dev/zero")
    folder.mkdir()
    text.write_text("hello")
    assert one_line_error(str(tmp_path / "none.gguf")) == f"GGUF file '{tmp_path}/none.gguf' is missing"
    for path in (fifo, zero, folder):
        assert one_line_error(str(path)) == f"GGUF file '{path}' is not a regular file"
    assert one_line_error(str(text)) == f"GGUF file '{text}' is not a GGUF file (it does not start with 'GGUF')"
    escaped = tmp_path / "bad\x1b[2Jname.gguf"
    assert one_line_error(str(escaped)) == f"GGUF file '{tmp_path}/bad\\x1b[2Jname.gguf' is missing"


# ---- LM Studio ----------------------------------------------------------------------------------------


def lmstudio_model(store: Path, publisher: str, model: str, *files: str) -> Path:
    folder = store / publisher / model
    folder.mkdir(parents=True)
    for name in files:
        (folder / name).write_bytes(gguf_bytes(name))
    return folder


def test_lmstudio_models_folder_is_where_lm_studio_keeps_it(home, tmp_path):
    assert lmstudio_store() == home / ".lmstudio" / "models"  # a fresh install
    (home / ".cache" / "lm-studio").mkdir(parents=True)
    assert lmstudio_store() == home / ".cache" / "lm-studio" / "models"  # an older install's home
    elsewhere = tmp_path / "lms-home"
    (home / ".lmstudio-home-pointer").write_text(f"{elsewhere}\n")
    assert lmstudio_store() == elsewhere / "models"  # the home LM Studio points to
    elsewhere.mkdir()
    (elsewhere / "settings.json").write_text(json.dumps({"downloadsFolder": str(tmp_path / "big-disk"), "theme": "dark"}))
    assert lmstudio_store() == tmp_path / "big-disk"  # moved in "My Models"
    (elsewhere / "settings.json").write_text("{broken")
    assert lmstudio_store() == elsewhere / "models"  # settings it cannot read leave the default
    (elsewhere / "settings.json").unlink()
    os.mkfifo(elsewhere / "settings.json")
    assert lmstudio_store() == elsewhere / "models"  # never blocks on a FIFO


def test_lmstudio_names_find_the_models_gguf(home):
    store = home / ".lmstudio" / "models"
    lmstudio_model(store, "lmstudio-community", "SmolLM2-135M-Instruct-GGUF", "SmolLM2-135M-Instruct-Q8_0.gguf")
    lmstudio_model(store, "ggml-org", "gemma-3-4b-it-GGUF", "gemma-3-4b-it-Q4_K_M.gguf", "mmproj-model-f16.gguf", "README.md")
    lmstudio_model(store, "bartowski", "Qwen3-0.6B-GGUF", "Qwen3-0.6B-Q4_K_M.gguf", "Qwen3-0.6B-Q8_0.gguf")
    assert find_gguf("lmstudio:lmstudio-community/SmolLM2-135M-Instruct-GGUF") == store / "lmstudio-community" / "SmolLM2-135M-Instruct-GGUF" / "SmolLM2-135M-Instruct-Q8_0.gguf"
    assert find_gguf("lmstudio:ggml-org/gemma-3-4b-it-GGUF").name == "gemma-3-4b-it-Q4_K_M.gguf"  # the vision projector is skipped
    assert find_gguf("lmstudio:bartowski/Qwen3-0.6B-GGUF/Qwen3-0.6B-Q8_0.gguf").read_bytes() == gguf_bytes("Qwen3-0.6B-Q8_0.gguf")
    assert one_line_error("lmstudio:bartowski/Qwen3-0.6B-GGUF") == (
        "LM Studio's 'bartowski/Qwen3-0.6B-GGUF' holds 2 GGUF models: name one, as "
        "'lmstudio:bartowski/Qwen3-0.6B-GGUF/Qwen3-0.6B-Q4_K_M.gguf', 'lmstudio:bartowski/Qwen3-0.6B-GGUF/Qwen3-0.6B-Q8_0.gguf'"
    )
    assert one_line_error("lmstudio:acme/none") == f"no LM Studio model 'lmstudio:acme/none': no folder '{store}/acme/none'"
    assert one_line_error("lmstudio:bartowski/Qwen3-0.6B-GGUF/Qwen3-4B.gguf") == f"LM Studio model '{store}/bartowski/Qwen3-0.6B-GGUF/Qwen3-4B.gguf' is missing"
    lmstudio_model(store, "acme", "vision-only", "mmproj-f16.gguf")
    assert one_line_error("lmstudio:acme/vision-only") == f"LM Studio's folder '{store}/acme/vision-only' holds no GGUF model (.gguf, not mmproj-*)"


@pytest.mark.parametrize("name", ["acme", "acme/model/x/y.gguf", "../models/x", "acme/..", "/etc/passwd", "acme//x", "acme/./x", "a\\b/c", "acme/x/", "acme/x/."])
def test_lmstudio_names_that_climb_or_are_not_publisher_model_are_refused(home, name):
    assert one_line_error(f"lmstudio:{name}") == (
        f"'lmstudio:{name}' is not an LM Studio model: lmstudio:PUBLISHER/MODEL or lmstudio:PUBLISHER/MODEL/FILE.gguf"
    )
    assert one_line_error("lmstudio:acme/model/readme.md") == "'lmstudio:acme/model/readme.md' names 'readme.md', not a .gguf file"


# ---- the listing ----------------------------------------------------------------------------------------


def test_gguf_models_lists_both_stores_by_the_names_model_takes(ollama, home):
    store = home / ".lmstudio" / "models"
    lmstudio_model(store, "ggml-org", "gemma-3-4b-it-GGUF", "gemma-3-4b-it-Q4_K_M.gguf", "mmproj-model-f16.gguf")
    lmstudio_model(store, "unsloth", "big-GGUF", "big-00001-of-00002.gguf", "big-00002-of-00002.gguf")
    blob = pull(ollama, (*DEFAULT, "gone", "latest"), gguf_bytes("gone"))
    blob.unlink()
    pull(ollama, (*DEFAULT, "evil", "latest"), b"", manifest=b'{"layers":[{"mediaType":"application/vnd.ollama.image.model","digest":"sha256:../x"}]}')
    (ollama / "manifests" / "registry.ollama.ai" / "library" / "bad\x1b[31m" / "latest").parent.mkdir()
    (ollama / "manifests" / "registry.ollama.ai" / "library" / "bad\x1b[31m" / "latest").write_text("{}")

    def ollama_blob(tag: str) -> tuple[Path, int]:
        data = gguf_bytes(tag)
        return ollama / "blobs" / f"sha256-{hashlib.sha256(data).hexdigest()}", len(data)

    gemma = store / "ggml-org" / "gemma-3-4b-it-GGUF" / "gemma-3-4b-it-Q4_K_M.gguf"
    part = store / "unsloth" / "big-GGUF"
    assert gguf_models() == [
        GGUFModel("ollama:hf.co/bartowski/SmolLM2-135M-Instruct-GGUF:Q4_K_M", "ollama", *ollama_blob("hf"), "gguf"),
        GGUFModel("ollama:acme/tiny:q4_1", "ollama", *ollama_blob("acme"), "gguf"),
        GGUFModel("ollama:bad\x1b[31m:latest", "ollama", None, 0, "not a valid Ollama name"),
        GGUFModel("ollama:evil:latest", "ollama", None, 0, "manifest naming its model by 'sha256:../x', not sha256 and 64 hex digits"),
        GGUFModel("ollama:gone:latest", "ollama", blob, 0, "blob missing"),
        GGUFModel("ollama:smollm2:135m", "ollama", *ollama_blob("smollm2"), "gguf"),
        GGUFModel("ollama:smollm2:latest", "ollama", *ollama_blob("smollm2 latest"), "gguf"),
        GGUFModel("lmstudio:ggml-org/gemma-3-4b-it-GGUF/gemma-3-4b-it-Q4_K_M.gguf", "lmstudio", gemma, len(GGUF) + 25, "gguf"),
        GGUFModel("lmstudio:unsloth/big-GGUF/big-00001-of-00002.gguf", "lmstudio", part / "big-00001-of-00002.gguf", len(GGUF) + 23, "part of 2 (split GGUF)"),
        GGUFModel("lmstudio:unsloth/big-GGUF/big-00002-of-00002.gguf", "lmstudio", part / "big-00002-of-00002.gguf", len(GGUF) + 23, "part of 2 (split GGUF)"),
    ]


def test_model_list_shows_the_stores_models_in_json_and_in_a_table(ollama, home, tmp_path):
    import jsonschema

    store = home / ".lmstudio" / "models"
    lmstudio_model(store, "evil\x1b]0;title\x07", "m", "x.gguf")
    env = {"HF_HUB_CACHE": str(tmp_path / "no-hub"), "HOME": str(home)}
    result = run("model", "list", "-f", "json", env=env)
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout)
    jsonschema.validate(record, json.loads(run("schema", "models").stdout))
    smol = next(m for m in record["models"] if m["name"] == "ollama:smollm2:135m")
    path = ollama / "blobs" / f"sha256-{hashlib.sha256(gguf_bytes('smollm2')).hexdigest()}"
    # the blob starts as a GGUF file would but is not one: listed, and said to be unreadable
    assert smol == {"name": "ollama:smollm2:135m", "source": "ollama", "folder": None, "file": str(path), "status": "not a GGUF file attnviz reads",
                    "architecture": None, "layers": None, "heads": None, "d_model": None, "size_bytes": len(gguf_bytes("smollm2"))}
    real = Path(__file__).resolve().parent / "models" / "tiny-llama" / "tiny-llama.q8_0.gguf"
    path.write_bytes(real.read_bytes())  # a real GGUF file: its shape read from its header
    smol = next(m for m in json.loads(run("model", "list", "-f", "json", env=env).stdout)["models"] if m["name"] == "ollama:smollm2:135m")
    assert smol | {"file": None} == {"name": "ollama:smollm2:135m", "source": "ollama", "folder": None, "file": None, "status": "ready",
                                     "architecture": "llama", "layers": 2, "heads": 4, "d_model": 64, "size_bytes": real.stat().st_size}
    assert [(m["name"], m["source"]) for m in record["models"]][-1] == ("lmstudio:evil\x1b]0;title\x07/m/x.gguf", "lmstudio")

    table = run("model", "list", env={**env, "COLUMNS": "200"})
    assert table.exit_code == 0 and "\x1b" not in table.stdout and "\x07" not in table.stdout
    lines = table.stdout.splitlines()
    assert lines[0] == f"no models in the Hugging Face cache at {tmp_path}/no-hub; get one with: attn model download sentence-transformers/all-MiniLM-L6-v2"
    assert f"GGUF models in Ollama's store ({ollama})" in lines
    assert f"GGUF models in LM Studio's models folder ({store})" in lines
    assert any("ollama:smollm2:135m" in line and "ready" in line for line in lines)
    assert any("lmstudio:evil\\x1b]0;title\\x07/m/x.gguf" in line for line in lines)


def test_model_list_leaves_out_stores_that_hold_nothing(home, tmp_path):
    (home / ".ollama" / "models" / "manifests").mkdir(parents=True)
    table = run("model", "list", env={"HF_HUB_CACHE": str(tmp_path / "no-hub"), "HOME": str(home), "COLUMNS": "200"})
    assert table.exit_code == 0 and table.stdout == (
        f"no models in the Hugging Face cache at {tmp_path}/no-hub; get one with: attn model download sentence-transformers/all-MiniLM-L6-v2\n"
    )


def test_model_list_table_puts_each_store_under_its_folder_with_only_the_columns_it_fills():
    from attnviz_cli.models.catalog import ModelEntry
    from attnviz_cli.render_model_table import model_list_table

    from .test_names import ENTRIES, rendered

    blob = Path("/home/me/.ollama/models/blobs/sha256-" + "a" * 64)
    found = [*ENTRIES,  # sizes as the real files': 98.4 MiB is 103,151,936 / 2**20
             ModelEntry("ollama:smollm2:135m", None, "gguf", size_bytes=103_151_936, source="ollama", file=blob),
             ModelEntry("ollama:gone:latest", None, "blob missing", source="ollama"),
             ModelEntry("lmstudio:bartowski/Qwen3-0.6B-GGUF/Qwen3-0.6B-Q8_0.gguf", None, "gguf", size_bytes=639_446_688, source="lmstudio")]
    stores = {"ollama": "/home/me/.ollama/models", "lmstudio": "/home/me/.lmstudio/models"}
    assert rendered(model_list_table(found, "/home/me/.cache/huggingface/hub", stores), 80) == """\
models in the Hugging Face cache (/home/me/.cache/huggingface/hub)
sentence-transformers/all-MiniLM-L6-v2
  bert · 6 layers × 12 heads · d_model 384 · 86.7 MiB · ready
distilbert/distilbert-base-uncased-finetuned-sst-2-english
  pickle only (pytorch_model.bin)

GGUF models in Ollama's store (/home/me/.ollama/models)
┏━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━┳━━━━━━━━━━━━━━┓
┃ model               ┃     size ┃ status       ┃
┡━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━╇━━━━━━━━━━━━━━┩
│ ollama:smollm2:135m │ 98.4 MiB │ gguf         │
│ ollama:gone:latest  │          │ blob missing │
└─────────────────────┴──────────┴──────────────┘

GGUF models in LM Studio's models folder (/home/me/.lmstudio/models)
┏━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┳━━━━━━━━━━━┳━━━━━━━━┓
┃ model                                                   ┃      size ┃ status ┃
┡━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━╇━━━━━━━━━━━╇━━━━━━━━┩
│ lmstudio:bartowski/Qwen3-0.6B-GGUF/Qwen3-0.6B-Q8_0.gguf │ 609.8 MiB │ gguf   │
└─────────────────────────────────────────────────────────┴───────────┴────────┘
"""


def test_model_list_reports_a_hostile_store_model_by_model_without_blocking_or_reading_it(ollama, home, tmp_path):
    """Each bad model is a status on its own row; the list still exits 0 with every good one."""
    huge = manifest_path(ollama, "huge", "latest")
    huge.parent.mkdir(parents=True)
    with open(huge, "wb") as file:
        file.truncate(2 << 30)  # 2 GiB claimed, sparse
    fifo = manifest_path(ollama, "fifo", "latest")
    fifo.parent.mkdir(parents=True)
    os.mkfifo(fifo)
    zero = pull(ollama, (*DEFAULT, "zero", "latest"), gguf_bytes("zero"))
    zero.unlink()
    zero.symlink_to("/dev/zero")
    store = home / ".lmstudio" / "models"
    lmstudio_model(store, "acme", "piped")
    os.mkfifo(store / "acme" / "piped" / "model.gguf")
    result = run("model", "list", "-f", "json", env={"HF_HUB_CACHE": str(tmp_path / "no-hub"), "HOME": str(home)})
    assert result.exit_code == 0, result.output
    status = {m["name"]: m["status"] for m in json.loads(result.stdout)["models"]}
    assert {name: status[name] for name in ("ollama:huge:latest", "ollama:fifo:latest", "ollama:zero:latest", "lmstudio:acme/piped/model.gguf")} == {
        "ollama:huge:latest": f"manifest 2,147,483,648 bytes, over the {MANIFEST_LIMIT:,} it may be",
        "ollama:fifo:latest": "manifest not a regular file",
        "ollama:zero:latest": "blob not a regular file",
        "lmstudio:acme/piped/model.gguf": "not a regular file",
    }
    assert status["ollama:smollm2:135m"] == "not a GGUF file attnviz reads"  # its magic, then no GGUF header


def test_lmstudio_names_with_escape_codes_are_printed_escaped(home):
    assert one_line_error("lmstudio:acme/\x1b[2J\x1b[31mred") == (
        f"no LM Studio model 'lmstudio:acme/\\x1b[2J\\x1b[31mred': no folder '{home}/.lmstudio/models/acme/\\x1b[2J\\x1b[31mred'"
    )

"""Model ids, revisions and the Hugging Face cache (issue 27, items 1 to 4): ids with and without an
organisation, a revision by name or commit hash, the download that reads config.json before any
weights, an empty --model and a pickle-only folder. The cache is built in tmp_path as huggingface_hub
lays it out; huggingface_hub itself, where installed, is the reference for what it would find."""

from __future__ import annotations

import fnmatch
import json
import shutil
import sys
import types
from pathlib import Path

import pytest

from attnviz_cli.errors import AttnvizError
from attnviz_cli.models import load_model
from attnviz_cli.models.catalog import cached_models, check_repo_id, download_model
from attnviz_cli.models.model import find_model, is_hub_id

from .conftest import need_module, run

MODELS = Path(__file__).parent / "models"
COMMIT_A = "a" * 40  # snapshots are named by commit hash
COMMIT_B = "0123456789abcdef0123456789abcdef01234567"


def cache_model(cache: Path, repo_id: str, source: str, commit: str, refs: tuple[str, ...] = ("main",)) -> Path:
    """``source`` (a tiny model of tests/models) in ``cache`` as huggingface_hub keeps ``repo_id`` at
    ``commit``, which each of ``refs`` names: models--{org}--{name} (or models--{name}), refs/, snapshots/."""
    base = cache / "--".join(("models", *repo_id.split("/")))
    snapshot = base / "snapshots" / commit
    shutil.copytree(MODELS / source, snapshot)
    for ref in refs:
        (base / "refs" / ref).parent.mkdir(parents=True, exist_ok=True)
        (base / "refs" / ref).write_text(commit)  # huggingface_hub writes the hash without a newline
    return snapshot


# ---- 1. ids without an organisation ---------------------------------------------------------------------


def test_an_id_without_an_organisation_is_found_listed_and_run(tmp_path):
    cache = tmp_path / "hub"
    snapshot = cache_model(cache, "gpt2", "tiny-gpt2", COMMIT_A)
    assert find_model("gpt2", cache) == snapshot
    env = {"HF_HUB_CACHE": str(cache), "HOME": str(tmp_path), "OLLAMA_MODELS": ""}  # no GGUF stores listed
    listed = json.loads(run("model", "list", "-f", "json", env=env).stdout)["models"]
    assert [(m["name"], m["status"], m["folder"]) for m in listed] == [("gpt2", "ready", str(snapshot))]
    used = run("inspect", "the bank", "--model", "gpt2", "-f", "json", env=env)
    assert used.exit_code == 0, used.output
    assert json.loads(used.stdout)["config"]["model"]["name"] == "gpt2"
    info = json.loads(run("model", "info", "gpt2", "-f", "json", env=env).stdout)
    assert (info["name"], info["folder"], info["architecture"]) == ("gpt2", str(snapshot), "gpt2")


@pytest.mark.parametrize(
    ("name", "valid"),
    [
        ("gpt2", True), ("bert-base-uncased", True), ("distilbert-base-uncased", True), ("roberta-base", True),
        ("sentence-transformers/all-MiniLM-L6-v2", True), ("org/name.v2", True), ("a" * 96, True),
        ("a" * 97, False), ("", False), ("org/name/extra", False), ("org--name", False), ("org/na..me", False),
        ("-gpt2", False), ("gpt2-", False), ("name.git", False), ("org/", False), ("/name", False), ("a b", False),
    ],
)
def test_hub_ids_are_what_huggingface_hub_accepts(name, valid):
    validators = need_module("huggingface_hub.utils", "huggingface_hub is not installed (the reference for Hub ids)")
    try:
        validators.validate_repo_id(name)
        accepted = True
    except validators.HFValidationError:
        accepted = False
    assert accepted is valid  # the table above is huggingface_hub's own answer
    assert is_hub_id(name) is valid


def test_download_takes_an_id_without_an_organisation_and_refuses_what_is_no_id():
    check_repo_id("gpt2")  # no error
    bad = run("model", "download", "not an id")
    assert bad.exit_code == 1
    assert bad.stderr == "attn: error: 'not an id' is not a Hub id: it looks like name or org/name, in letters, digits, '-', '_' and '.'\n"


# ---- 2. revisions -------------------------------------------------------------------------------------


def test_a_revision_is_read_from_refs_or_taken_as_a_commit_as_huggingface_hub_does(tmp_path):
    hub = need_module("huggingface_hub", "huggingface_hub is not installed (the reference for the cache's layout)")
    cache = tmp_path / "hub"
    main = cache_model(cache, "acme/tiny-bert", "tiny-bert", COMMIT_A)
    tagged = cache_model(cache, "acme/tiny-bert", "tiny-bert", COMMIT_B, refs=("v1.0", "refs/pr/1"))
    cases = {None: main, "main": main, "v1.0": tagged, "refs/pr/1": tagged, COMMIT_A: main, COMMIT_B: tagged}
    for revision, snapshot in cases.items():
        assert find_model("acme/tiny-bert", cache, revision) == snapshot
        reference = hub.try_to_load_from_cache("acme/tiny-bert", "config.json", cache_dir=cache, revision=revision)
        assert Path(reference).parent == snapshot
    for revision in ("v2.0", "b" * 40):
        assert hub.try_to_load_from_cache("acme/tiny-bert", "config.json", cache_dir=cache, revision=revision) is None
        with pytest.raises(AttnvizError, match=rf"no model 'acme/tiny-bert' at revision '{revision}'.*attn model download acme/tiny-bert --revision {revision}\)"):
            find_model("acme/tiny-bert", cache, revision)


def test_a_revision_never_leaves_the_cache_and_is_not_for_a_folder(tmp_path):
    cache = tmp_path / "hub"
    cache_model(cache, "acme/tiny-bert", "tiny-bert", COMMIT_A)
    for revision in ("../../x", "/etc", "a/../b", ".", "v1\\x"):
        with pytest.raises(AttnvizError, match=r"is not a revision: a branch, tag or commit hash"):
            find_model("acme/tiny-bert", cache, revision)
    with pytest.raises(AttnvizError, match=r"is a folder; a revision chooses a version of a Hub id"):
        find_model(MODELS / "tiny-bert", cache, "v1.0")
    with pytest.raises(AttnvizError, match=r"^no model named: the name is empty$"):
        find_model("", cache)  # not the current folder, which Path("") is


FORM = "(huggingface_hub: Repo id must be in the form 'repo_name' or 'namespace/repo_name')"


def test_a_name_that_is_no_folder_nor_id_is_not_looked_up_and_is_escaped(tmp_path):
    with pytest.raises(AttnvizError) as error:
        find_model("no/such/\x1b[31mfolder", tmp_path)
    assert str(error.value) == "no model 'no/such/\\x1b[31mfolder': not a folder, nor a Hub id " + FORM
    with pytest.raises(AttnvizError) as error:
        find_model("acme/m", tmp_path, "v\u202e1")
    assert "at revision 'v\\u202e1'" in str(error.value) and "--revision v\\u202e1)" in str(error.value)


def test_revision_on_inspect_compare_heads_and_model_info(tmp_path):
    cache = tmp_path / "hub"
    cache_model(cache, "acme/m", "tiny-bert", COMMIT_A)  # main is a BERT,
    cache_model(cache, "acme/m", "tiny-gpt2", COMMIT_B, refs=("v1.0",))  # v1.0 a GPT-2: which one ran shows
    env = {"HF_HUB_CACHE": str(cache)}
    for revision, architecture in ((None, "bert"), ("v1.0", "gpt2"), (COMMIT_B, "gpt2")):
        at = [] if revision is None else ["--revision", revision]
        inspected = run("inspect", "the bank", "--model", "acme/m", *at, "-f", "json", env=env)
        assert inspected.exit_code == 0, inspected.output
        assert json.loads(inspected.stdout)["config"]["model"]["architecture"] == architecture
        info = run("model", "info", "acme/m", *at, "-f", "json", env=env)
        assert json.loads(info.stdout)["architecture"] == architecture
        compared = run("compare", "the river bank", "the money bank", "--focus", "bank", "--model", "acme/m", *at, "-f", "json", env=env)
        assert compared.exit_code == 0, compared.output
        assert json.loads(compared.stdout)["config"]["model"]["architecture"] == architecture
        heads = run("heads", "-", "--model", "acme/m", *at, "-f", "json", input="the bank\n", env=env)
        assert heads.exit_code == 0, heads.output
        assert json.loads(heads.stdout)["config"]["model"]["architecture"] == architecture
    missing = run("inspect", "the bank", "--model", "acme/m", "--revision", "v2", env=env)
    assert missing.exit_code == 1 and "no model 'acme/m' at revision 'v2'" in missing.stderr


def schema(name: str) -> dict:
    return json.loads((Path(__file__).parent.parent / "attnviz_cli" / "schemas" / f"{name}.schema.json").read_text())


def test_the_revision_a_hub_id_ran_at_is_in_json_and_the_header_and_null_for_a_folder(tmp_path):
    jsonschema = need_module("jsonschema")
    cache = tmp_path / "hub"
    cache_model(cache, "acme/m", "tiny-bert", COMMIT_A)
    cache_model(cache, "acme/m", "tiny-bert", COMMIT_B, refs=("v1.0",))
    env = {"HF_HUB_CACHE": str(cache)}
    folder = str(MODELS / "tiny-bert")
    for spec, at, revision in (("acme/m", [], "main"), ("acme/m", ["--revision", "v1.0"], "v1.0"),
                               ("acme/m", ["--revision", COMMIT_B], COMMIT_B), (folder, [], None)):
        inspected = run("inspect", "the bank", "--model", spec, *at, "-f", "json", env=env)
        assert inspected.exit_code == 0, inspected.output
        record = json.loads(inspected.stdout)
        jsonschema.validate(record, schema("model-1"))
        assert record["config"]["model"]["revision"] == revision
        compared = run("compare", "the river bank", "the money bank", "--focus", "bank", "--model", spec, *at, "-f", "json", env=env)
        record = json.loads(compared.stdout)
        jsonschema.validate(record, schema("model-compare-1"))
        assert record["config"]["model"]["revision"] == revision
        heads = run("heads", "-", "--model", spec, *at, "-f", "json", input="the bank\n", env=env)
        record = json.loads(heads.stdout)
        jsonschema.validate(record, schema("heads-1"))
        assert record["config"]["model"]["revision"] == revision
        for command in (("inspect", "the bank"), ("compare", "the river bank", "the money bank", "--focus", "bank")):
            table = run(*command, "--model", spec, *at, env={**env, "COLUMNS": "200"})
            model_line = next(line for line in table.stdout.splitlines() if line.startswith("model"))
            shown = spec if revision is None else f"{spec} at revision {revision}"
            assert model_line.split(None, 1)[1].split(" · ")[0] == shown


def test_model_list_says_which_revision_a_model_without_main_has(tmp_path):
    cache = tmp_path / "hub"
    cache_model(cache, "acme/tagged", "tiny-bert", COMMIT_B, refs=("v1.0", "v1.1"))
    (cache / "models--acme--empty" / "refs").mkdir(parents=True)
    status = {e.name: e.status for e in cached_models(cache)}
    assert status == {"acme/empty": "no snapshot (refs/main)", "acme/tagged": "at --revision v1.0 or v1.1 only"}


# ---- 3. download: config.json first -------------------------------------------------------------------


@pytest.fixture
def fake_hub(tmp_path, monkeypatch):
    """A stand-in for huggingface_hub (the network cannot be used here) that lays files out as it does,
    from the tiny model whose name the id ends with, and records each call in order."""
    calls: list[tuple] = []
    cache = tmp_path / "hub"
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))

    def snapshot(repo_id: str, revision: str | None) -> Path:
        base = cache / "--".join(("models", *repo_id.split("/")))
        folder = base / "snapshots" / COMMIT_A
        folder.mkdir(parents=True, exist_ok=True)
        (base / "refs").mkdir(exist_ok=True)
        (base / "refs" / (revision or "main")).write_text(COMMIT_A)
        return folder

    def copy(repo_id: str, name: str, folder: Path) -> None:
        source = MODELS / repo_id.split("/")[-1] / name
        if repo_id.endswith("mamba"):
            (folder / name).write_text('{"model_type": "mamba"}')
        else:
            shutil.copy(source, folder / name)

    def hf_hub_download(repo_id, filename, *, revision=None, cache_dir=None, **_):
        calls.append(("hf_hub_download", repo_id, filename, revision, Path(cache_dir)))
        folder = snapshot(repo_id, revision)
        copy(repo_id, filename, folder)
        return str(folder / filename)

    def snapshot_download(repo_id, *, revision=None, allow_patterns=None, cache_dir=None, **_):
        calls.append(("snapshot_download", repo_id, tuple(allow_patterns), revision, Path(cache_dir)))
        folder = snapshot(repo_id, revision)
        files = [p.name for p in (MODELS / repo_id.split("/")[-1]).iterdir()]
        for name in sorted({f for f in files for pattern in allow_patterns if fnmatch.fnmatch(f, pattern)}):  # as huggingface_hub matches them
            copy(repo_id, name, folder)
        return str(folder)

    module = types.ModuleType("huggingface_hub")
    module.hf_hub_download = hf_hub_download  # type: ignore[attr-defined]
    module.snapshot_download = snapshot_download  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "huggingface_hub", module)
    return calls, cache


def test_download_refuses_an_unsupported_architecture_before_fetching_weights(fake_hub):
    calls, cache = fake_hub
    from attnviz_cli.models.model import ARCHITECTURES

    result = run("model", "download", "acme/mamba")
    assert result.exit_code == 1
    assert result.stderr.splitlines()[-1] == f"attn: error: model 'acme/mamba' is a 'mamba'; attnviz runs {', '.join(ARCHITECTURES)}"
    assert calls == [("hf_hub_download", "acme/mamba", "config.json", None, cache)]  # no weights asked for


def test_download_reads_config_json_then_the_files_a_run_needs_at_a_revision(fake_hub):
    calls, cache = fake_hub
    result = run("model", "download", "tiny-gpt2", "--revision", "v1.0")
    assert result.exit_code == 0 and result.stdout == "", result.output
    needed = ("config.json", "model.safetensors", "tokenizer.json", "model.safetensors.index.json", "model-*-of-*.safetensors")
    assert calls == [
        ("hf_hub_download", "tiny-gpt2", "config.json", "v1.0", cache),
        ("snapshot_download", "tiny-gpt2", needed, "v1.0", cache),
    ]
    assert result.stderr.splitlines()[-1] == f"attn: ready: --model tiny-gpt2 --revision v1.0 ({cache / 'models--tiny-gpt2' / 'snapshots' / COMMIT_A})"
    used = run("inspect", "the bank", "--model", "tiny-gpt2", "--revision", "v1.0", "-f", "json")
    assert used.exit_code == 0 and json.loads(used.stdout)["config"]["model"]["architecture"] == "gpt2"


def test_download_errors_are_one_escaped_line(fake_hub, monkeypatch):
    def refused(*_, **__):
        raise OSError("404 Client Error\x1b[31m: gone\nmore detail")

    monkeypatch.setattr(sys.modules["huggingface_hub"], "hf_hub_download", refused)
    with pytest.raises(AttnvizError) as error:
        download_model("acme/gone")
    assert str(error.value) == "cannot download 'acme/gone': OSError: 404 Client Error\\x1b[31m: gone"


# ---- 4. an empty --model; a pickle-only folder in model info ---------------------------------------------


@pytest.mark.parametrize(
    ("command", "name"),
    [
        (["inspect", "the bank", "--model", ""], "'--model'"), (["compare", "a", "b", "--focus", "a", "--model", ""], "'--model'"),
        (["heads", "--model", "", "-"], "'--model'"), (["model", "info", ""], "'MODEL'"),
    ],
)
def test_an_empty_model_says_so(command, name):
    result = run(*command)
    assert result.exit_code == 2
    option = name.strip("'")
    assert f"Invalid value for {name}: {option} is empty: give a model folder or a Hub id (is a shell variable unset?)" in result.stderr


def test_model_info_of_a_pickle_only_folder_says_what_inspect_says(tmp_path):
    pickled = tmp_path / "pickled"
    shutil.copytree(MODELS / "tiny-bert", pickled)
    (pickled / "model.safetensors").rename(pickled / "pytorch_model.bin")
    info = run("model", "info", str(pickled))
    inspected = run("inspect", "the bank", "--model", str(pickled))
    assert info.exit_code == inspected.exit_code == 1
    assert info.stderr == inspected.stderr
    assert "has only pytorch_model.bin, a pickle, which attnviz never loads" in info.stderr
    with pytest.raises(AttnvizError, match="a pickle, which attnviz never loads"):
        load_model(pickled)

"""Where users keep GGUF models: a ``.gguf`` path, Ollama's store and LM Studio's models folder.

``find_gguf(spec)`` turns what ``--model`` names into one GGUF file (or None: not a GGUF kind of name);
``gguf_models()`` lists every GGUF model of both stores, named as ``--model`` takes them. Both read only
the stores' own files (nothing is started, nothing is fetched), and treat them as untrusted: manifests are
bounded before they are read, and every file opened must be a regular file."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

from ..errors import AttnvizError, counted, printable, quoted
from ..small_files import FileProblem, open_regular, read_bounded, read_text

GGUF_MAGIC = b"GGUF"
MANIFEST_LIMIT = 1 << 20  # bytes: Ollama's manifests are ~1 KB; a bigger one is not Ollama's
SETTINGS_LIMIT = 1 << 20  # bytes of LM Studio's settings.json read for its models folder
POINTER_LIMIT = 4096  # bytes of ~/.lmstudio-home-pointer, one path

# Ollama's names (types/model/name.go): host/namespace/model:tag, each part checked by isValidPart.
OLLAMA_HOST, OLLAMA_NAMESPACE, OLLAMA_TAG = "registry.ollama.ai", "library", "latest"
OLLAMA_PARTS = ("host", "namespace", "model", "tag")
OLLAMA_PART = {
    "host": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.:-]{0,349}"),
    "namespace": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_-]{0,79}"),
    "model": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"),
    "tag": re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,79}"),
}
MISSING = "!MISSING!"  # a part promised by a separator but empty: invalid, as in Ollama
OLLAMA_MODEL_LAYER = "application/vnd.ollama.image.model"
DIGEST = re.compile(r"sha256[:-]([0-9a-fA-F]{64})")  # manifest.BlobsPath accepts just these
SPLIT_PART = re.compile(r"-\d{5}-of-(\d{5})\.gguf$", re.IGNORECASE)  # llama.cpp's gguf-split naming


class GGUFModel(NamedTuple):
    """A GGUF model of a store: its name as ``--model`` takes it, its file, and whether it looks usable."""

    name: str  # "ollama:smollm2:135m", "lmstudio:publisher/model/file.gguf"
    store: str  # "ollama" or "lmstudio"
    path: Path | None  # the GGUF file (an Ollama blob), None when the store does not say which
    size_bytes: int
    status: str  # "gguf" (a GGUF file, not yet read further), or what is wrong, in a few words


# -- the stores' folders ------------------------------------------------------------------------


def ollama_store() -> Path:
    """Ollama's models folder: $OLLAMA_MODELS (trimmed of spaces and quotes, as Ollama's envconfig.Var
    reads it), else ~/.ollama/models."""
    configured = os.environ.get("OLLAMA_MODELS", "").strip().strip("\"'")
    return Path(configured) if configured else Path.home() / ".ollama" / "models"


def lmstudio_home() -> Path:
    """LM Studio's home, as its findLMStudioHome picks it: the path in ~/.lmstudio-home-pointer, else
    ~/.cache/lm-studio (older installs) if it exists, else ~/.lmstudio."""
    home = Path.home()
    pointer = _small_text(home / ".lmstudio-home-pointer", POINTER_LIMIT)
    if pointer and pointer.strip():
        return home / pointer.strip()  # an absolute pointer replaces home; a relative one is under it
    legacy = home / ".cache" / "lm-studio"
    return legacy if legacy.is_dir() else home / ".lmstudio"


def lmstudio_store() -> Path:
    """LM Studio's models folder: its settings' ``downloadsFolder`` (where "My Models" moves it), else
    models/ in its home."""
    home = lmstudio_home()
    text = _small_text(home / "settings.json", SETTINGS_LIMIT)
    try:
        folder = json.loads(text).get("downloadsFolder") if text else None
    except (ValueError, AttributeError, RecursionError):
        folder = None
    return Path(folder) if isinstance(folder, str) and folder.strip() else home / "models"


def _small_text(path: Path, limit: int) -> str | None:
    """A small text file of a store's settings, or None when it is missing, not a regular file, over
    ``limit`` bytes or not UTF-8 (settings that cannot be read leave the defaults)."""
    try:
        return read_text(path, limit, "settings file")
    except AttnvizError:
        return None


# -- files, opened as untrusted (:mod:`attnviz_cli.small_files`) -------------------------------


def checked_gguf(path: Path, what: str = "GGUF file") -> int:
    """``path``'s size in bytes, once it is known to be a regular file that starts as GGUF files do."""
    fd, info = open_regular(path, what)
    try:
        magic = os.pread(fd, len(GGUF_MAGIC), 0)
    except OSError as error:
        raise FileProblem(what, path, f"unreadable: {error.strerror or error}") from error
    finally:
        os.close(fd)
    if magic != GGUF_MAGIC:
        raise FileProblem(what, path, "not a GGUF file (it does not start with 'GGUF')")
    return info.st_size


# -- the spec ----------------------------------------------------------------------------------


def find_gguf(spec: str) -> Path | None:
    """The GGUF file ``spec`` names: a path ending in .gguf, ``ollama:[HOST/][NAMESPACE/]NAME[:TAG]`` or
    ``lmstudio:PUBLISHER/MODEL[/FILE.gguf]``; None when ``spec`` is none of these (a folder, a Hub id)."""
    if spec.startswith("ollama:"):
        return ollama_gguf(spec.removeprefix("ollama:"))
    if spec.startswith("lmstudio:"):
        return lmstudio_gguf(spec.removeprefix("lmstudio:"))
    if spec.lower().endswith(".gguf"):
        path = Path(spec)
        checked_gguf(path)
        return path
    return None


# -- Ollama ------------------------------------------------------------------------------------


def parse_ollama_name(name: str) -> tuple[str, str, str, str]:
    """``name`` as Ollama's ParseName reads it: (host, namespace, model, tag), the defaults filled in
    (registry.ollama.ai, library, latest); a part Ollama would refuse (isValidPart) is an error."""
    rest, host, namespace, tag = name, "", "", ""
    if rest.rfind(":") > rest.rfind("/"):  # "/" cannot be in a tag, so a ":" after the last "/" starts one
        rest, tag = _cut_promised(rest, ":")
    if "/" not in rest:
        model = rest
    else:
        rest, model = _cut_promised(rest, "/")
        if "/" not in rest:
            namespace = rest
        else:
            host, namespace = _cut_promised(rest, "/")
            host = host.split("://", 1)[-1]  # a scheme says how to pull, not where the manifest is
    full = (host or OLLAMA_HOST, namespace or OLLAMA_NAMESPACE, model, tag or OLLAMA_TAG)
    if not _valid_ollama_name(full):
        raise AttnvizError(
            f"{quoted('ollama:' + name)} is not an Ollama model name: [HOST/][NAMESPACE/]NAME[:TAG], each part "
            "a letter, digit or '_' and then letters, digits, '_', '-' or '.' (no '.' in a namespace)"
        )
    return full


def _cut_promised(text: str, sep: str) -> tuple[str, str]:
    """``text`` cut at its last ``sep``; a side left empty is MISSING (which no part may be), as Ollama's
    cutPromised marks a part a separator promised."""
    before, _, after = text.rpartition(sep)
    return before or MISSING, after or MISSING


def _valid_ollama_name(parts: tuple[str, ...]) -> bool:
    return all(OLLAMA_PART[kind].fullmatch(part) for kind, part in zip(OLLAMA_PARTS, parts, strict=True))


def ollama_display(parts: tuple[str, str, str, str]) -> str:
    """The shortest name of a model, as ``ollama list`` shows it (DisplayShortest), after "ollama:"."""
    host, namespace, model, tag = parts
    if host.lower() != OLLAMA_HOST:
        return f"ollama:{host}/{namespace}/{model}:{tag}"
    if namespace.lower() != OLLAMA_NAMESPACE:
        return f"ollama:{namespace}/{model}:{tag}"
    return f"ollama:{model}:{tag}"


def ollama_gguf(name: str) -> Path:
    """The GGUF blob of Ollama's model ``name``: its manifest (found case-insensitively, as Ollama matches
    names), the layer of mediaType application/vnd.ollama.image.model, blobs/sha256-<hex>."""
    parts = parse_ollama_name(name)
    store = ollama_store()
    manifests = store / "manifests"
    manifest = manifests.joinpath(*parts)
    if not manifest.exists():
        folded = [found for found in _manifest_names(manifests) if [p.lower() for p in found] == [p.lower() for p in parts]]
        if len(folded) > 1:
            raise AttnvizError(f"{quoted('ollama:' + name)} matches {len(folded)} models of Ollama's store, in case only: "
                               + ", ".join(quoted(ollama_display(found)) for found in folded))
        if not folded:
            raise AttnvizError(
                f"no Ollama model {quoted('ollama:' + name)}: no manifest {quoted(str(manifest))} "
                f"(Ollama's store: $OLLAMA_MODELS, else ~/.ollama/models); fetch it with: ollama pull {printable(name)}"
            )
        manifest = manifests.joinpath(*folded[0])
    blob = model_blob(store, manifest)
    checked_gguf(blob, f"Ollama model {quoted('ollama:' + name)}: its blob")
    return blob


def _manifest_names(manifests: Path) -> Iterator[tuple[str, str, str, str]]:
    """(host, namespace, model, tag) of every manifest four folders down, as Ollama's Manifests globs
    them (the depth is fixed, so a link to a folder above cannot loop the walk)."""
    for host in _folders(manifests):
        for namespace in _folders(host):
            for model in _folders(namespace):
                for tag in _entries(model):
                    if not tag.is_dir():
                        yield host.name, namespace.name, model.name, tag.name


def _entries(path: Path) -> list[Path]:
    """What a folder holds, in name order; nothing when it is not a folder or cannot be read."""
    try:
        return sorted(path.iterdir())
    except OSError:
        return []


def _folders(path: Path) -> list[Path]:
    return [p for p in _entries(path) if p.is_dir()]


def model_blob(store: Path, manifest: Path) -> Path:
    """The blob of a manifest's model layer (the last one, as Ollama's GetModel takes it): the manifest
    is read only when it is a regular file of at most MANIFEST_LIMIT bytes, its digest only when it is
    sha256 and 64 hex digits, so it can name nothing outside blobs/."""
    what = "Ollama manifest"
    data = read_bounded(manifest, MANIFEST_LIMIT, what)
    try:
        layers = json.loads(data)["layers"]
        digests = [layer["digest"] for layer in layers if layer.get("mediaType") == OLLAMA_MODEL_LAYER]
    except (ValueError, KeyError, TypeError, AttributeError, RecursionError) as error:
        raise FileProblem(what, manifest, f"not a manifest ({type(error).__name__})") from error
    if not digests:
        raise FileProblem(what, manifest, f"without a model layer ({OLLAMA_MODEL_LAYER})")
    digest = digests[-1]
    match = DIGEST.fullmatch(digest) if isinstance(digest, str) else None
    if match is None:
        raise FileProblem(what, manifest, f"naming its model by {quoted(str(digest))}, not sha256 and 64 hex digits")
    return store / "blobs" / f"sha256-{match.group(1)}"


# -- LM Studio ---------------------------------------------------------------------------------


def lmstudio_gguf(name: str) -> Path:
    """The .gguf file of ``PUBLISHER/MODEL[/FILE.gguf]`` in LM Studio's models folder; without FILE, the
    folder's one language model (mmproj-*.gguf files are vision projectors, not models)."""
    parts = name.split("/")
    if len(parts) not in (2, 3) or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
        raise AttnvizError(f"{quoted('lmstudio:' + name)} is not an LM Studio model: lmstudio:PUBLISHER/MODEL or lmstudio:PUBLISHER/MODEL/FILE.gguf")
    folder = lmstudio_store() / parts[0] / parts[1]
    if len(parts) == 3:
        if not parts[2].lower().endswith(".gguf"):
            raise AttnvizError(f"{quoted('lmstudio:' + name)} names {quoted(parts[2])}, not a .gguf file")
        path = folder / parts[2]
        checked_gguf(path, "LM Studio model")
        return path
    if not folder.is_dir():
        raise AttnvizError(f"no LM Studio model {quoted('lmstudio:' + name)}: no folder {quoted(str(folder))}")
    files = _language_models(folder)
    if len(files) != 1:
        listed = ", ".join(quoted(f"lmstudio:{name}/{f.name}") for f in files)
        raise AttnvizError(
            f"LM Studio's {quoted(name)} holds {counted(len(files), 'GGUF model')}: name one, as {listed}" if files
            else f"LM Studio's folder {quoted(str(folder))} holds no GGUF model (.gguf, not mmproj-*)"
        )
    checked_gguf(files[0], "LM Studio model")
    return files[0]


def _language_models(folder: Path) -> list[Path]:
    """The .gguf files of a model folder, vision projectors (mmproj-*) left out."""
    return [p for p in _entries(folder) if p.name.lower().endswith(".gguf") and not p.name.lower().startswith("mmproj")]


# -- the listing -------------------------------------------------------------------------------


def gguf_models() -> list[GGUFModel]:
    """Every GGUF model of Ollama's store and LM Studio's models folder, each with a status: "gguf"
    when its file is a regular file starting as GGUF does, else what is wrong (one bad model never hides
    the others)."""
    return [*ollama_models(ollama_store()), *lmstudio_models(lmstudio_store())]


def _status(path: Path) -> tuple[int, str]:
    """A listed file's size and status: "gguf", or what is wrong with it."""
    try:
        return checked_gguf(path), "gguf"
    except FileProblem as problem:
        return 0, problem.status


def ollama_models(store: Path) -> list[GGUFModel]:
    """Every manifest of Ollama's ``store``, by its shortest name (as ``ollama list`` shows it)."""
    found = []
    for parts in _manifest_names(store / "manifests"):
        name = ollama_display(parts)
        if not _valid_ollama_name(parts):
            found.append(GGUFModel(name, "ollama", None, 0, "not a valid Ollama name"))
            continue
        try:
            blob = model_blob(store, store / "manifests" / Path(*parts))
        except FileProblem as problem:
            found.append(GGUFModel(name, "ollama", None, 0, f"manifest {problem.status}"))
            continue
        size, status = _status(blob)
        found.append(GGUFModel(name, "ollama", blob, size, f"blob {status}" if status != "gguf" else status))
    return found


def lmstudio_models(store: Path) -> list[GGUFModel]:
    """Every .gguf language model two folders down LM Studio's ``store`` (PUBLISHER/MODEL/FILE.gguf)."""
    found = []
    for publisher in _folders(store):
        for model in _folders(publisher):
            for path in _language_models(model):
                size, status = _status(path)
                split = SPLIT_PART.search(path.name)
                if split and status == "gguf":
                    status = f"part of {int(split.group(1))} (split GGUF)"
                found.append(GGUFModel(f"lmstudio:{publisher.name}/{model.name}/{path.name}", "lmstudio", path, size, status))
    return found

"""What models there are: those the Hugging Face cache holds (and whether attnviz can run each), one
model described from its files, and the one call that downloads a model, when the user asks for it."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from ..errors import AttnvizError, quoted
from .model import ARCHITECTURES, find_model, hub_cache, read_config
from .weights import read_header

FLOATS = ("F64", "F32", "F16", "BF16")  # parameters; integer tensors are buffers (position ids)
NEEDED = ("config.json", "model.safetensors", "tokenizer.json")  # all a run reads


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A model of the cache: its Hub id, where it is, and whether attnviz can run it (``status``)."""

    name: str
    folder: Path | None
    status: str  # "ready", or what stops it, in a few words
    architecture: str | None = None
    layers: int | None = None
    heads: int | None = None
    d_model: int | None = None
    size_bytes: int = 0


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """One model described from its files, without running it."""

    name: str
    folder: Path
    architecture: str
    layers: int
    heads: int
    d_model: int
    max_positions: int
    parameters: int
    stored_dtypes: tuple[str, ...]
    size_bytes: int
    tokenizer: str  # its model type: WordPiece, BPE...
    vocab_size: int


def _size(folder: Path) -> int:
    """Bytes of the files a run reads (the cache's snapshot files are links to its blobs)."""
    return sum((folder / name).stat().st_size for name in NEEDED if (folder / name).is_file())


def status_of(folder: Path) -> tuple[str, dict]:
    """"ready", or why attnviz cannot run the model in ``folder``; and its config.json, if it read."""
    try:
        raw = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return "no readable config.json", {}
    if not isinstance(raw, dict) or raw.get("model_type") not in ARCHITECTURES:
        kind = raw.get("model_type") if isinstance(raw, dict) else None
        return f"not supported: {kind!r}", {}
    if not (folder / "model.safetensors").is_file():
        return "pickle only (pytorch_model.bin)" if (folder / "pytorch_model.bin").is_file() else "no model.safetensors", raw
    if not (folder / "tokenizer.json").is_file():
        return "no tokenizer.json", raw
    return "ready", raw


def cached_models(cache: Path | None = None) -> list[ModelEntry]:
    """Every model of the Hugging Face cache, by Hub id, with whether attnviz can run it."""
    cache = cache or hub_cache()
    entries = []
    for repo in sorted(cache.glob("models--*")) if cache.is_dir() else []:
        name = repo.name.removeprefix("models--").replace("--", "/", 1)
        try:
            folder = find_model(name, cache)
        except AttnvizError:
            entries.append(ModelEntry(name, None, "no snapshot (refs/main)"))
            continue
        status, raw = status_of(folder)
        config = None
        if status == "ready":
            try:
                config = read_config(folder, "float32", name)
            except AttnvizError:
                status = "config.json lacks a field"
        entries.append(ModelEntry(
            name, folder, status, raw.get("model_type"), config.layers if config else None,
            config.heads if config else None, config.d_model if config else None, _size(folder),
        ))
    return entries


def describe_model(spec: str) -> ModelInfo:
    """``attn model info``: a model's shape, size and tokenizer, read from its files."""
    from .model import read_tokenizer

    folder = find_model(spec)
    config = read_config(folder, "float32", spec)
    path = folder / "model.safetensors"
    if not path.is_file():
        raise AttnvizError(f"model folder {quoted(str(folder))} has no model.safetensors")
    try:
        header, _ = read_header(path)
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise AttnvizError(f"model weights {quoted(str(path))} cannot be read: {error}") from error
    tokenizer = read_tokenizer(folder)
    kind = json.loads(tokenizer.to_str())["model"].get("type", "?")
    return ModelInfo(
        name=spec, folder=folder, architecture=config.architecture, layers=config.layers, heads=config.heads,
        d_model=config.d_model, max_positions=config.max_positions,
        parameters=sum(math.prod(entry["shape"]) for entry in header.values() if entry["dtype"] in FLOATS),
        stored_dtypes=tuple(sorted({entry["dtype"] for entry in header.values()})), size_bytes=_size(folder),
        tokenizer=kind, vocab_size=tokenizer.get_vocab_size(),
    )


def check_repo_id(repo_id: str) -> None:
    if repo_id.count("/") != 1 or any(not part for part in repo_id.split("/")):
        raise AttnvizError(f"{quoted(repo_id)} is not a Hub id: it looks like org/name")


def download_model(repo_id: str, revision: str | None = None) -> Path:
    """Fetch just the files a run reads into the Hugging Face cache, with huggingface_hub (the one
    network call attnviz makes, and only when asked), and return the snapshot folder."""
    check_repo_id(repo_id)
    try:
        from huggingface_hub import snapshot_download
    except ImportError as error:
        raise AttnvizError("attn model download needs huggingface_hub: pip install huggingface_hub") from error
    try:
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=list(NEEDED), cache_dir=hub_cache()))
    except Exception as error:  # huggingface_hub raises many kinds: offline, not found, gated, HTTP
        raise AttnvizError(f"cannot download {quoted(repo_id)}: {type(error).__name__}: {str(error).splitlines()[0] if str(error) else ''}") from error
    status, _ = status_of(folder)
    if status != "ready":
        raise AttnvizError(f"downloaded {quoted(repo_id)} to {quoted(str(folder))}, but attnviz cannot run it: {status}")
    return folder

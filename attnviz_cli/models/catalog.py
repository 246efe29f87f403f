"""What models there are: those the Hugging Face cache holds (and whether attnviz can run each), the GGUF
models of Ollama's and LM Studio's stores, one model described from its files, and the one call that
downloads a model, when the user asks for it."""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import AttnvizError, printable, quoted
from ..small_files import FileProblem
from .model import (
    ARCHITECTURES,
    cached_snapshot,
    config_of,
    find_model,
    hub_cache,
    is_hub_id,
    read_config,
    weights_files,
)
from .weights import SafetensorsFiles

FLOATS = ("F64", "F32", "F16", "BF16")  # parameters; integer tensors are buffers (position ids)
NEEDED = ("config.json", "model.safetensors", "tokenizer.json")  # all a run reads, unless its weights are in shards
SHARDS = ("model.safetensors.index.json", "model-*-of-*.safetensors")  # what a sharded checkpoint's weights are


@dataclass(frozen=True, slots=True)
class ModelEntry:
    """A model of the cache or a store: its name for --model, where it is, and whether attnviz can run
    it (``status``)."""

    name: str
    folder: Path | None
    status: str  # "ready", or what stops it, in a few words; "gguf" for a GGUF file not yet read
    architecture: str | None = None
    layers: int | None = None
    heads: int | None = None
    d_model: int | None = None
    size_bytes: int = 0
    source: str = "huggingface"  # or "ollama", "lmstudio": where it was found
    file: Path | None = None  # a store's GGUF file (an Ollama blob)


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
    kv_heads: int = 0  # key/value heads shared by groups of heads (grouped-query attention); 0: one per head
    d_head: int = 0  # each head's width; 0: d_model / heads
    gguf: bool = False  # folder is a GGUF file


def _size(folder: Path) -> int:
    """Bytes of the files a run reads (the cache's snapshot files are links to its blobs)."""
    return sum((folder / name).stat().st_size for name in NEEDED if (folder / name).is_file())


def status_of(folder: Path) -> tuple[str, dict]:
    """"ready", or why attnviz cannot run the model in ``folder``; and its config.json, if it read."""
    from ..small_files import CONFIG_BYTES, read_json

    try:
        raw = read_json(folder / "config.json", CONFIG_BYTES, "config.json")
    except FileProblem as problem:
        return "no config.json" if problem.status == "missing" else f"damaged: config.json {problem.status}", {}
    if not isinstance(raw, dict) or raw.get("model_type") not in ARCHITECTURES:
        kind = raw.get("model_type") if isinstance(raw, dict) else None
        return f"not supported: {kind!r}", {}
    if not (folder / "model.safetensors").is_file() and not (folder / "model.safetensors.index.json").is_file():
        return "pickle only (pytorch_model.bin)" if (folder / "pytorch_model.bin").is_file() else "no model.safetensors", raw
    if not (folder / "tokenizer.json").is_file():
        return "no tokenizer.json", raw
    return "ready", raw


def cached_models(cache: Path | None = None) -> list[ModelEntry]:
    """Every model of the Hugging Face cache, by Hub id, at main, with whether attnviz can run it."""
    cache = cache or hub_cache()
    entries = []
    for repo in sorted(cache.glob("models--*")) if cache.is_dir() else []:
        name = "/".join(repo.name.split("--")[1:])  # models--org--name -> org/name, models--gpt2 -> gpt2
        try:
            folder = cached_snapshot(repo, "main")
        except FileProblem as problem:  # one damaged model is listed as damaged, never hides the others
            entries.append(ModelEntry(name, None, f"damaged: {problem.path.relative_to(repo).as_posix()} {problem.status}"))
            continue
        if folder is None:
            entries.append(ModelEntry(name, None, _elsewhere(repo)))
            continue
        status, raw = status_of(folder)
        config = None
        if status == "ready":
            try:
                config = config_of(raw, "float32", name, "config.json")
            except AttnvizError as error:
                status = f"damaged: {error}"
        entries.append(ModelEntry(
            name, folder, status, raw.get("model_type"), config.layers if config else None,
            config.heads if config else None, config.d_model if config else None, _size(folder),
        ))
    return entries


def gguf_entries() -> list[ModelEntry]:
    """The GGUF models of Ollama's store and LM Studio's folder, as entries of the list (architecture,
    layers and heads are left for a reader of GGUF metadata to fill in, here, from ``model.path``)."""
    from .stores import gguf_models

    entries = []
    for model in gguf_models():
        entry = ModelEntry(model.name, None, model.status, size_bytes=model.size_bytes, source=model.store, file=model.path)
        if model.status == "gguf" and model.path is not None:
            entry = _gguf_entry(entry, model.path)
        entries.append(entry)
    return entries


def _gguf_entry(entry: ModelEntry, path: Path) -> ModelEntry:
    """``entry`` with its shape from its GGUF file's metadata (its header and metadata are read, no
    tensor), and whether attnviz runs it; a file that is not what it claims is a status, never an error
    that would hide the other models."""
    from .gguf_file import open_gguf

    try:
        gguf = open_gguf(path)
        raw = gguf.config()
    except (AttnvizError, TypeError, ValueError, AttributeError, RecursionError):
        return replace(entry, status="not a GGUF file attnviz reads")
    if raw.get("model_type") not in ARCHITECTURES:
        return replace(entry, status=f"a {printable(str(raw.get('model_type')))}: not run")
    try:
        config = config_of(raw, "float32", entry.name, "GGUF file")
    except (AttnvizError, TypeError, ValueError, AttributeError):
        return replace(entry, status="its config is not one attnviz reads")
    return replace(entry, status="ready", architecture=config.architecture, layers=config.layers, heads=config.heads, d_model=config.d_model)


def _elsewhere(repo: Path) -> str:
    """Why a repository of the cache has no snapshot at main: it has one at other revisions (say
    which, as --revision takes them), or none at all."""
    refs = repo / "refs"
    others = sorted(ref.relative_to(refs).as_posix() for ref in refs.rglob("*") if ref.is_file() and _snapshot_or_none(repo, ref.relative_to(refs).as_posix()))
    return f"at --revision {' or '.join(others)} only" if others else "no snapshot (refs/main)"


def _snapshot_or_none(repo: Path, revision: str) -> Path | None:
    """The snapshot of ``revision``, or None when it has none or its ref is damaged."""
    try:
        return cached_snapshot(repo, revision)
    except AttnvizError:
        return None


def describe_model(spec: str, revision: str | None = None) -> ModelInfo:
    """``attn model info``: a model's shape, size and tokenizer, read from its files (a Hub id's at
    ``revision``, main when None)."""
    from .model import read_tokenizer
    from .stores import find_gguf

    gguf = find_gguf(spec) if spec else None
    if gguf is not None:
        return _describe_gguf(spec, gguf)
    folder = find_model(spec, revision=revision)
    config = read_config(folder, "float32", spec)
    weights = SafetensorsFiles(weights_files(folder))  # each header checked by the safetensors library, as a run's are
    stored = {name: weights.stored_dtype(name) for name in weights.names}
    tokenizer = read_tokenizer(folder)
    kind = json.loads(tokenizer.to_str())["model"].get("type", "?")
    return ModelInfo(
        name=spec, folder=folder, architecture=config.architecture, layers=config.layers, heads=config.heads,
        d_model=config.d_model, max_positions=config.max_positions,
        parameters=sum(math.prod(weights.shape(name)) for name, dtype in stored.items() if dtype in FLOATS),
        stored_dtypes=tuple(sorted(set(stored.values()))), size_bytes=_size(folder),
        tokenizer=kind, vocab_size=tokenizer.get_vocab_size(), kv_heads=config.kv_heads, d_head=config.d_head,
    )


def _describe_gguf(spec: str, path: Path) -> ModelInfo:
    """``attn model info`` of a GGUF file: from its metadata and tensor table."""
    from gguf import GGMLQuantizationType

    from .gguf_file import open_gguf

    gguf = open_gguf(path)
    config = config_of(gguf.config(), "float32", spec, f"GGUF file {quoted(str(path))}")
    types = sorted({GGMLQuantizationType(info.ggml_type).name for info in gguf.tensors.values()})
    tokens = gguf.metadata.get("tokenizer.ggml.tokens")
    tokens = tokens if isinstance(tokens, list) else []
    return ModelInfo(
        name=spec, folder=path, architecture=config.architecture, layers=config.layers, heads=config.heads,
        d_model=config.d_model, max_positions=config.max_positions,
        parameters=sum(math.prod(info.shape) for info in gguf.tensors.values()), stored_dtypes=tuple(types),
        size_bytes=gguf.size, tokenizer=str(gguf.metadata.get("tokenizer.ggml.model", "?")), vocab_size=len(tokens),
        kv_heads=config.kv_heads, d_head=config.d_head, gguf=True,
    )


def check_repo_id(repo_id: str) -> None:
    if not is_hub_id(repo_id):
        raise AttnvizError(
            f"{quoted(repo_id)} is not a Hub id: it looks like name or org/name, in letters, digits, '-', '_' and '.'"
        )


def download_model(repo_id: str, revision: str | None = None) -> Path:
    """Fetch just the files a run reads into the Hugging Face cache, with huggingface_hub (the one
    network call attnviz makes, and only when asked), and return the snapshot folder. config.json comes
    first, alone: a model attnviz cannot run is refused before its weights are fetched."""
    check_repo_id(repo_id)
    try:
        from huggingface_hub import hf_hub_download, snapshot_download
    except ImportError as error:
        raise AttnvizError("attn model download needs huggingface_hub: pip install huggingface_hub") from error
    cache = hub_cache()
    with _fetching(repo_id):
        config = Path(hf_hub_download(repo_id, "config.json", revision=revision, cache_dir=cache))
    read_config(config.parent, "float32", repo_id)  # refuses an architecture attnviz does not run
    with _fetching(repo_id):
        folder = Path(snapshot_download(repo_id, revision=revision, allow_patterns=[*NEEDED, *SHARDS], cache_dir=cache))
    status, _ = status_of(folder)
    if status != "ready":
        raise AttnvizError(f"downloaded {quoted(repo_id)} to {quoted(str(folder))}, but attnviz cannot run it: {status}")
    return folder


@contextmanager
def _fetching(repo_id: str) -> Iterator[None]:
    """huggingface_hub's errors (offline, not found, gated, HTTP: many kinds) as one line naming the model."""
    try:
        yield
    except Exception as error:
        first = str(error).splitlines()[0] if str(error) else ""
        raise AttnvizError(f"cannot download {quoted(repo_id)}: {type(error).__name__}: {printable(first)}") from error

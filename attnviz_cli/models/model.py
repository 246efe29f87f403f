"""A model folder -> a :class:`Model` that runs text: its config, tokenizer and weights, checked."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..core import AttentionInputError
from ..errors import AttnvizError, library_failure, printable, quoted
from .architecture import Architecture, Params
from .bert import BERT, ROBERTA
from .config_fields import LAYER_COUNTS, FieldError, check_fields
from .distilbert import DISTILBERT
from .gemma import GEMMA2, GEMMA3
from .gpt2 import GPT2
from .layers import Attended, KeyValues, on_threads
from .llama import LLAMA, MISTRAL, QWEN2, QWEN3
from .olmo2 import OLMO2
from .phi3 import PHI3
from .weighting import norm_weighted, value_norms
from .weights import Checkpoint, SafetensorsFiles, Source

PAGES: dict[str, Architecture] = {  # config.json's model_type -> its page's record: a new page is registered here
    model_type: page for page in (
        BERT, ROBERTA, DISTILBERT, GPT2, LLAMA, MISTRAL, QWEN2, QWEN3, GEMMA2, GEMMA3, PHI3, OLMO2,
    ) for model_type in page.model_types
}
KEEP_BYTES = 256 * 2**20  # a model's weights up to this size, in the run's dtype, are read once and kept; larger ones a layer at a time
ARCHITECTURES = tuple(PAGES)  # the model_types attnviz runs


@dataclass(frozen=True, slots=True)
class ModelConfig:
    """What a run needs to know of a model, read from its config.json."""

    name: str  # as the user named it: a Hub id or a folder
    architecture: str  # its config.json model_type, one of ARCHITECTURES: which page runs it
    layers: int
    heads: int
    d_model: int
    max_positions: int  # tokens the model has positions for (RoBERTa: fewer than its table's rows)
    eps: float  # its layer norms' epsilon
    position_offset: int  # where its position ids start: 0, or for RoBERTa just after its padding id
    dtype: str  # "float32" or "float64": what the forward pass runs in
    revision: str | None = None  # the revision of a Hub id it ran at (a branch, tag or commit; "main" if none given); None for a folder
    kv_heads: int = 0  # key/value heads, which groups of query heads share (grouped-query attention); 0: one per head
    d_head: int = 0  # each head's width; 0: d_model / heads
    settings: Mapping[str, Any] = field(default_factory=dict, compare=False)  # what the page's blocks need besides (rotations, windows...)
    tied: bool = True  # its output head is its token embedding table (tie_word_embeddings), else lm_head.weight
    eos_ids: tuple[int, ...] = ()  # the tokens that end a text it generates: generation_config.json's, else config.json's
    bos_id: int | None = None  # config.json's bos_token_id (GPT-2: <|endoftext|>), put first where the tokenizer adds no BOS (TransformerLens' to_tokens)

    def __post_init__(self) -> None:
        object.__setattr__(self, "kv_heads", self.kv_heads or self.heads)
        object.__setattr__(self, "d_head", self.d_head or self.d_model // self.heads)

    def kv_head(self, head: int) -> int:
        """The key/value head query head ``head`` reads (transformers' repeat_kv): head // (heads / kv_heads)."""
        return head // (self.heads // self.kv_heads)

    @property
    def causal(self) -> bool:
        """Whether each token sees only those up to itself (GPT-2), not the whole text (BERT's family)."""
        return PAGES[self.architecture].causal


@dataclass(frozen=True, slots=True, eq=False)
class ModelRun:
    """One text through a model: its tokens and, for every layer and head, the attention weights."""

    token_ids: np.ndarray  # (T,)
    tokens: tuple[str, ...]  # the model's own tokens (word pieces, BPE), special ones included
    special: tuple[bool, ...]  # which tokens are special ([CLS], [SEP], <s>...)
    words: tuple[int | None, ...]  # the word of the text each token comes from (None for special ones)
    offsets: tuple[tuple[int, int], ...]  # each token's characters in the text: text[start:end]
    scores: np.ndarray  # (L, h, T, T) what enters each softmax: q.k/sqrt(d_k), -inf where masked
    attentions: np.ndarray  # (L, h, T, T) softmax weights, rows sum to 1
    hidden_states: np.ndarray  # (L + 1, T, d): the embeddings, then after each layer
    queries: np.ndarray  # (L, h, T, d_k): each head's queries, keys, values and output, layer by layer
    keys: np.ndarray
    values: np.ndarray
    head_outputs: np.ndarray
    truncated: int = 0  # tokens cut from the end of the text to fit the model's positions (--truncate)
    patterns: Any = None  # with Model.run(keep=...): every head's HeadPatterns, computed as each layer ran
    weighting: str = "attention"  # what ``attentions`` holds: the softmax weights, or "norm": value-weighted (Kobayashi et al. 2020), rows renormalised
    value_norms: np.ndarray | None = None  # (L, h, T) with weighting "norm": ||v_j^h W_O^h||, each head's value of key j times its rows of W_O


class Model:
    """A loaded model: ``run(text)`` tokenizes and runs the forward pass. ``params``: its weights as
    its architecture's page names them (``bert_params``, ``gpt2_params``...)."""

    def __init__(self, folder: Path, config: ModelConfig, params: dict[str, Any], tokenizer, source: Source | None = None) -> None:
        self.folder, self.config, self.params, self.tokenizer = folder, config, params, tokenizer
        self.source = source  # where the weights were read from: an untied output head is read from it when asked
        self._head: np.ndarray | None = None

    def lm_head(self) -> np.ndarray:
        """The output head (vocab, d): the last hidden state's logits are ``x @ head.T``. The token
        embedding table where the model ties them (GPT-2, SmolLM2), else ``lm_head.weight``; read once."""
        if self._head is None:
            wte = self.params["wte"]
            if self.config.tied or self.source is None:
                self._head = wte.whole()
            else:
                page = PAGES[self.config.architecture]
                ckpt = Checkpoint(self.source, np.dtype(self.config.dtype), (page.prefix, ""), page.marker)
                head = ckpt.outside("lm_head.weight", wte.shape[0], self.config.d_model)
                if head is None:
                    raise AttnvizError(f"model weights {quoted(str(self.source.path))} lack 'lm_head.weight', which config.json's tie_word_embeddings: false needs")
                self._head = head
        return self._head

    def run(self, text: str, truncate: bool = False, keep: Collection[int] | None = None, weighting: str = "attention") -> ModelRun:
        """``text`` through the model: its tokens, and every layer's attention and hidden state.
        ``truncate``: a text over the model's positions keeps its first tokens (see :meth:`encode`).
        ``keep``: the layers whose (h, T, T) matrices and per-head arrays a view needs (None: all); the
        others are dropped as soon as their heads' patterns are taken (``ModelRun.patterns``), so a long
        text holds one layer's attention at a time, not every layer's. ``weighting``: "norm" makes
        ``attentions`` (and the patterns) value-weighted (:func:`.weighting.norm_weighted`), the norms kept."""
        encoding, cut = self.encode(text, truncate)
        ids = np.asarray(encoding.ids, dtype=np.int64)
        self.check_memory(len(ids), keep)
        c, T = self.config, len(ids)
        dtype = np.dtype(c.dtype)
        shapes = {part: (c.heads, T, T) if part in ("scores", "weights") else (c.heads, T, c.d_head) for part in Attended._fields}
        patterns: list[Any] = []
        norms: list[np.ndarray] | None = [] if weighting == "norm" else None

        def shown(i: int, attended: Attended) -> Attended:  # the weights the views show: the softmax's, or value-weighted
            if norms is None:
                return attended
            try:
                return attended._replace(weights=norm_weighted(attended.weights, norms[i]))
            except ValueError as error:
                raise AttnvizError(f"{quoted(c.name)}, layer {i}, {error}") from None

        if keep is None:  # every layer's arrays, each copied into its place as the layer finishes, then freed
            stacks = {part: np.empty((c.layers, *shape), dtype) for part, shape in shapes.items()}

            def on_layer(i: int, attended: Attended) -> Attended | None:
                attended = shown(i, attended)
                for part in Attended._fields:
                    stacks[part][i] = getattr(attended, part)
                return None
        else:
            from .heads import head_patterns, punctuation_tokens

            special = tuple(bool(s) for s in encoding.special_tokens_mask)
            punctuation = punctuation_tokens(text, tuple(encoding.offsets), special)
            kept = set(keep)

            def on_layer(i: int, attended: Attended) -> Attended | None:
                attended = shown(i, attended)
                patterns.append(head_patterns(attended.weights, punctuation, c.causal))
                return attended if i in kept else None

        hidden, attentions = self.forward(ids, on_layer=on_layer, norms=norms)
        parts: dict[str, Any] = stacks if keep is None else {
            part: LayerStack([None if a is None else getattr(a, part) for a in attentions], shape, dtype) for part, shape in shapes.items()
        }
        return ModelRun(
            token_ids=ids, tokens=tuple(encoding.tokens), special=tuple(bool(s) for s in encoding.special_tokens_mask),
            words=tuple(encoding.word_ids), offsets=tuple(encoding.offsets),
            scores=parts["scores"], attentions=parts["weights"], hidden_states=stack_freeing(hidden),
            queries=parts["queries"], keys=parts["keys"], values=parts["values"], head_outputs=parts["head_outputs"],
            truncated=cut,
            patterns=None if keep is None else stacked_patterns(patterns),
            weighting=weighting, value_norms=None if norms is None else np.stack(norms),
        )

    def encode(self, text: str, truncate: bool = False) -> tuple[Any, int]:
        """The tokenizer's encoding of ``text`` (ids, tokens, offsets...) and how many of its tokens were
        cut: refused if it gives no tokens, or more than the model has positions for unless ``truncate``."""
        encoding = self.encode_many([text])[0]
        if truncate and len(encoding.ids) > self.config.max_positions:
            (kept,) = self.encode_truncated([text])
            return self.check_encoding(kept), len(encoding.ids) - len(kept.ids)
        return self.check_encoding(encoding), 0

    def encode_truncated(self, texts: list[str]) -> list:
        """The encodings of ``texts``, each cut to the model's positions as the tokenizer truncates (as
        transformers' ``truncation=True`` does): the first tokens kept, and the special tokens it adds
        ([CLS] ... [SEP], <s> ... </s>) still where it places them."""
        self.tokenizer.enable_truncation(self.config.max_positions)
        try:
            return self.encode_many(texts)
        finally:
            self.tokenizer.no_truncation()

    def encode_many(self, texts: list[str]) -> list:
        """The encodings of many texts at once (the tokenizer works on every core); unchecked. A tokenizer
        that fails on them (a tokenizer.json whose template names a token it lacks panics) is one error."""
        try:
            return self.tokenizer.encode_batch(texts)
        except BaseException as error:
            if not library_failure(error):
                raise
            raise AttnvizError(f"the tokenizer of {quoted(self.config.name)} fails on the text: {error}") from error

    def run_bytes(self, T: int, keep: Collection[int] | None = None) -> int:
        """The memory a run of ``T`` tokens holds: the scores and weights (h, T, T), queries, keys,
        values and head outputs (h, T, d_head) of every layer (of those in ``keep``, and of the one
        running), and the hidden states (T, d)."""
        c = self.config
        matrices = c.heads * T * T * 2 + c.heads * T * c.d_head * 4
        held = c.layers if keep is None else len(set(keep)) + 1
        return (held * matrices + (c.layers + 1) * T * c.d_model) * np.dtype(c.dtype).itemsize

    def check_memory(self, T: int, keep: Collection[int] | None = None) -> None:
        """Refuse a run that would take more than half this machine's memory, before it starts."""
        need, memory = self.run_bytes(T, keep), physical_memory()
        if memory and need > memory // 2:
            fits = T
            while fits > 1 and self.run_bytes(fits, keep) > memory // 2:
                fits = fits * 9 // 10
            raise AttnvizError(
                f"a run of {T:,} tokens through {quoted(self.config.name)} would hold {need / 2**30:.1f} GiB of attention "
                f"and states, more than half this machine's {memory / 2**30:.0f} GiB; about {fits:,} tokens fit"
            )

    def check_encoding(self, encoding):
        c = self.config
        if len(encoding.ids) == 0:
            raise AttnvizError("the text gives no tokens")
        if len(encoding.ids) > c.max_positions:
            raise AttnvizError(
                f"the text has {len(encoding.ids)} tokens, more than the {c.max_positions} positions of {quoted(c.name)} (--truncate keeps the first {c.max_positions})"
            )
        return encoding

    def forward(
        self, ids: np.ndarray, attention_only: bool = False, threads: int | None = None,
        on_layer: Callable[[int, Attended], Attended | None] | None = None, norms: list[np.ndarray] | None = None,
        *, caches: Sequence[KeyValues] | None = None,
    ) -> tuple[list[np.ndarray], list[Any]]:
        """The forward pass of token ``ids`` (T,), or of a batch of texts of one length (B, T): the
        hidden states (the embeddings, then after each layer) and each layer's attention.
        ``attention_only``: the last layer stops after its attention, and the hidden states lack it.
        ``threads``: how many to share a long input's work among (None: every usable core).
        ``on_layer(i, attention)``: what of layer i's attention to keep (None: nothing), as it is made.
        ``norms``: a list each layer's value norms (h, T) are appended to (:func:`run_layers`).
        ``caches`` (a decoder, decoding): each layer's keys and values of the tokens before ``ids`` (:func:`run_layers`)."""
        try:
            with on_threads(threads, ids.size):
                return run_layers(
                    PAGES[self.config.architecture], self.params, ids, self.config.heads, attention_only, on_layer, norms, caches=caches,
                )
        except FloatingPointError as error:
            raise AttnvizError(
                f"{quoted(self.config.name)} gives no finite result: {error} (its weights or config values are out of range for {self.config.dtype})"
            ) from None


def run_layers(
    page: Architecture, params: Params, ids: np.ndarray, n_head: int, attention_only: bool = False,
    on_layer: Callable[[int, Attended], Attended | None] | None = None, norms: list[np.ndarray] | None = None,
    *, caches: Sequence[KeyValues] | None = None,
) -> tuple[list[np.ndarray], list[Any]]:
    """``page``'s forward pass: its embedding of ``ids``, its layers one after the other, and its final
    step. ``attention_only``: the last layer stops after its attention (a sixth of the work of a
    6-layer model saved), and the hidden states lack its output. ``norms``: each layer's value norms
    ||v_j^h W_O^h|| (h, T) are appended to it (:func:`.weighting.value_norms`), before ``on_layer`` sees
    the layer. ``caches`` (a decoder's, one per layer): the keys and values of the ``caches[0].length``
    tokens before ``ids``, which each layer attends to and adds its own to; positions start after them.
    A number that overflows (or a NaN) is
    FloatingPointError naming the step where it first appeared: a result is finite or not given."""
    decoding: dict[str, Any] = {} if caches is None else {"start": caches[0].length}
    with np.errstate(all="ignore"):  # a number that overflows is refused here, step by step, not warned of
        step = "the embeddings"
        try:
            x = finite(page.embed(ids, params, **decoding))  # (T, d)
            hidden, attentions = [x], []
            blocks = params["blocks"]  # a list, or Layers that read each layer's weights as it comes
            for i in range(len(blocks) - attention_only):
                step = f"layer {i}"
                block = blocks[i]
                x, attended = page.layer(x, **block, n_head=n_head, **({} if caches is None else {"cache": caches[i]}))
                hidden.append(finite(x))
                if norms is not None:
                    norms.append(finite(value_norms(attended.values, block["attn_out"]["w"])))
                del block
                attentions.append(attended if on_layer is None else on_layer(i, attended))
                del attended  # a layer on_layer drops is freed before the next runs
            if attention_only:
                step = f"layer {len(blocks) - 1}"
                block = blocks[-1]
                attended = page.attend(x, block, n_head)
                if norms is not None:
                    norms.append(finite(value_norms(attended.values, block["attn_out"]["w"])))
                attentions.append(attended if on_layer is None else on_layer(len(blocks) - 1, attended))
            elif page.final is not None:
                step = "the final norm"
                hidden[-1] = finite(page.final(x, params))
        except (FloatingPointError, AttentionInputError) as error:  # the softmax refuses NaN or +inf scores
            raise FloatingPointError(f"a number overflowed or became NaN in {step}") from error
    return hidden, attentions


def finite(x: np.ndarray) -> np.ndarray:
    """``x``, a hidden state, when every number in it is finite (its attention weights are: the softmax
    refuses NaN and +inf scores); else the error :func:`run_layers` names the step of."""
    if not np.isfinite(x).all():
        raise FloatingPointError("not finite")
    return x


class LayerStack:
    """A run's (L, ...) arrays of which only some layers were kept (``Model.run(keep=...)``): read a layer
    at a time, ``stack[i]`` or ``stack[i, h, ...]``, as the views of one layer do; a layer dropped is an
    error that says so, never numbers that are not there."""

    def __init__(self, layers: list[np.ndarray | None], tail: tuple[int, ...], dtype: np.dtype) -> None:
        self._layers, self.dtype = layers, dtype
        self.shape = (len(layers), *tail)  # as the whole (L, ...) array would be
        self.ndim = len(self.shape)

    def __len__(self) -> int:
        return len(self._layers)

    def __getitem__(self, index: Any) -> np.ndarray:
        layer, rest = (index[0], index[1:]) if isinstance(index, tuple) else (index, ())
        array = self._layers[int(layer)]
        if array is None:
            raise LookupError(f"layer {int(layer)} of this run was not kept (Model.run(keep=...))")
        return array[rest] if rest else array

    def __array__(self, *_: Any, **__: Any) -> np.ndarray:
        raise TypeError("a run that kept some layers is read a layer at a time, not as one array")


def stacked_patterns(per_layer: list[Any]) -> Any:
    """Each layer's HeadPatterns (h, ...) stacked into one (L, h, ...)."""
    from dataclasses import fields

    from .heads import HeadPatterns

    return HeadPatterns(*(np.stack([getattr(p, f.name) for p in per_layer]) for f in fields(HeadPatterns)))


def physical_memory() -> int:
    """This machine's memory in bytes (0 if the system does not say)."""
    try:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


def stack_freeing(arrays: list[np.ndarray]) -> np.ndarray:
    """``np.stack(arrays)``, dropping each array from the list once it is copied: the peak memory is
    the result and one layer's array, not the result twice (a 502-token MiniLM run: 418 -> 280 MiB,
    most of it the weights read, 86 MiB, and the result, 161 MiB)."""
    out = np.empty((len(arrays), *arrays[0].shape), arrays[0].dtype)
    for i in range(len(arrays)):
        out[i] = arrays[i]
        arrays[i] = None  # type: ignore[call-overload]  # the list is the caller's to empty
    return out


def hub_cache() -> Path:
    """The Hugging Face cache: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub."""
    if os.environ.get("HF_HUB_CACHE"):
        return Path(os.environ["HF_HUB_CACHE"])
    if os.environ.get("HF_HOME"):
        return Path(os.environ["HF_HOME"]) / "hub"
    return Path.home() / ".cache" / "huggingface" / "hub"


# A Hub id as huggingface_hub's validate_repo_id accepts it: "name" or "org/name" of letters, digits, "-",
# "_" and "." (neither "--" nor ".." in it, not ending ".git", at most 96 characters a part, as huggingface_hub
# 1.0 bounds the org too)
HUB_ID = re.compile(r"^(\b[\w\-.]{1,96}\b/)?\b[\w\-.]{1,96}\b$")
COMMIT = re.compile(r"[0-9a-f]{1,64}")  # what a ref of the cache may hold: a commit hash (huggingface_hub writes 40 hex digits), a snapshot's name


def hub_id_problem(name: str) -> str | None:
    """Why ``name`` is not a Hub id, in huggingface_hub's words (validate_repo_id's HFValidationError,
    without the id it quotes); None if it is one."""
    if name.count("/") > 1:
        return "Repo id must be in the form 'repo_name' or 'namespace/repo_name'"
    if not HUB_ID.match(name):
        return ("Repo id must use alphanumeric chars, '-', '_' or '.'. The name cannot start or end with '-' or '.' "
                "and the maximum length is 96")
    if "--" in name or ".." in name:
        return "Cannot have -- or .. in repo_id"
    if name.endswith(".git"):
        return "Repo_id cannot end by '.git'"
    return None


def is_hub_id(name: str) -> bool:
    """Whether ``name`` is a Hub id ("gpt2", "sentence-transformers/all-MiniLM-L6-v2"), as huggingface_hub says."""
    return hub_id_problem(name) is None


def stays_inside(relative: str) -> bool:
    """Whether a path read from the user or the cache ("v1.0", "refs/pr/1", a commit) names a file
    below the folder it is joined to, never the folder itself or one above."""
    return not relative.startswith("/") and "\\" not in relative and all(part not in ("", ".", "..") for part in relative.split("/"))


def cached_snapshot(repo: Path, revision: str) -> Path | None:
    """The snapshot folder of ``revision`` in a repository of the cache (models--org--name), as
    huggingface_hub's try_to_load_from_cache finds it: refs/{revision} holds its commit, else the
    revision is a commit hash, the snapshot's name; None when the cache has no such snapshot. A ref
    that cannot be read, or holds anything but a commit hash (a path: the cache never points outside
    its snapshots/), is an error saying so."""
    from ..small_files import REF_BYTES, FileProblem, read_text

    if not stays_inside(revision):
        raise AttnvizError(f"{quoted(revision)} is not a revision: a branch, tag or commit hash")
    ref = repo / "refs" / revision
    try:
        commit = read_text(ref, REF_BYTES, "the Hugging Face cache's ref").strip()
    except FileProblem as problem:
        if problem.status != "missing":
            raise
        commit = revision
    else:
        if not COMMIT.fullmatch(commit):
            raise FileProblem("the Hugging Face cache's ref", ref, f"not a commit hash (it holds {quoted(commit)})")
    snapshot = repo / "snapshots" / commit
    if snapshot.is_symlink():  # huggingface_hub links files to blobs/, never a snapshot to a folder elsewhere
        raise FileProblem("the Hugging Face cache's snapshot", snapshot, "a link, where a folder belongs")
    return snapshot if COMMIT.fullmatch(commit) and snapshot.is_dir() else None


def repo_folder(cache: Path, repo_id: str) -> Path:
    """Where huggingface_hub keeps ``repo_id`` in ``cache``: models--org--name, or models--name."""
    return cache / "--".join(("models", *repo_id.split("/")))


def find_model(spec: str | Path, cache: Path | None = None, revision: str | None = None) -> Path:
    """The folder ``spec`` names: a folder itself, or a Hub id ("gpt2", "org/name") in the Hugging Face
    cache at ``revision`` (a branch, tag or commit hash; main when None). Offline: nothing is downloaded."""
    cache = cache or hub_cache()
    path, name = Path(spec), str(spec)
    if not name:
        raise AttnvizError("no model named: the name is empty")
    if is_folder(path):
        if revision is not None:
            raise AttnvizError(f"{quoted(name)} is a folder; a revision chooses a version of a Hub id")
        return path
    problem = hub_id_problem(name)
    if problem is not None:
        raise AttnvizError(f"no model {quoted(name)}: not a folder, nor a Hub id (huggingface_hub: {problem})")
    snapshot = cached_snapshot(repo_folder(cache, name), revision or "main")
    if snapshot is not None:
        return snapshot
    at = "" if revision is None else f" at revision {quoted(revision)}"
    again = "" if revision is None else f" --revision {printable(revision)}"
    raise AttnvizError(
        f"no model {quoted(name)}{at}: not a folder, nor in the Hugging Face cache at {quoted(str(cache))}; "
        f"fetch it once while online (attn model download {printable(name)}{again}) or give its folder"
    )


def is_folder(path: Path) -> bool:
    """Whether ``path`` is a folder; a name the file system refuses (too long) is not one."""
    try:
        return path.is_dir()
    except OSError:
        return False


def weights_files(folder: Path) -> list[Path]:
    """A model folder's model.safetensors, or the shards its model.safetensors.index.json names, each
    once, in the folder; an error saying why if it has none (a pickle is never loaded)."""
    index = folder / "model.safetensors.index.json"
    if not (folder / "model.safetensors").is_file() and index.is_file():
        from ..small_files import INDEX_BYTES, read_json

        raw = read_json(index, INDEX_BYTES, "model.safetensors.index.json")
        try:
            names = sorted(set(raw["weight_map"].values()))
        except (KeyError, TypeError, AttributeError) as error:
            raise AttnvizError(f"model folder {quoted(str(folder))}: model.safetensors.index.json cannot be read: {error}") from error
        if not names or not all(isinstance(n, str) and stays_inside(n) and "/" not in n for n in names):
            raise AttnvizError(f"model folder {quoted(str(folder))}: model.safetensors.index.json names no shards in the folder")
        missing = [n for n in names if not (folder / n).is_file()]
        if missing:
            raise AttnvizError(f"model folder {quoted(str(folder))} lacks the shard {quoted(missing[0])} its index names")
        return [folder / n for n in names]
    return [weights_file(folder)]


def weights_file(folder: Path) -> Path:
    """A model folder's model.safetensors; an error saying why if it has none (a pickle is never loaded)."""
    path = folder / "model.safetensors"
    if os.path.lexists(path):  # a regular file, or what its reader refuses by name (a FIFO, a device, a folder)
        return path
    if (folder / "pytorch_model.bin").is_file():
        raise AttnvizError(
            f"model {quoted(str(folder))} has only pytorch_model.bin, a pickle, which attnviz never loads; "
            "convert it to model.safetensors (safetensors' convert script, or save_pretrained(..., safe_serialization=True))"
        )
    raise AttnvizError(f"model folder {quoted(str(folder))} has no model.safetensors")


def load_model(
    spec: str | Path, *, dtype: str = "float32", revision: str | None = None, keep: bool | None = None,
    check: Callable[[ModelConfig], None] | None = None,
) -> Model:
    """The model ``spec`` names (a folder with config.json, model.safetensors (or its shards) and
    tokenizer.json, or a Hub id found in the Hugging Face cache, at ``revision``), ready to run.
    ``keep``: its weights read at load and kept (for many runs), or read a layer at a time as each
    runs (one run of a large model); None: kept if they take at most KEEP_BYTES in ``dtype``.
    ``check(config)``: what the caller asks of the model (a --layer it has), before its weights are read."""
    from .stores import find_gguf

    gguf = find_gguf(str(spec)) if str(spec) else None
    if gguf is not None:
        if revision is not None:
            raise AttnvizError(f"{quoted(str(spec))} is a GGUF file; a revision chooses a version of a Hub id")
        return load_gguf(gguf, str(spec), dtype, keep, check)
    folder = find_model(spec, revision=revision)
    at = None if is_folder(Path(spec)) else revision or "main"  # find_model took a folder before a Hub id
    raw = raw_config(folder, str(spec))  # an architecture attnviz does not run is said before its weights are looked for
    source = SafetensorsFiles(weights_files(folder))  # its headers only: config.json's counts are checked against them
    config = replace(config_of(raw, dtype, str(spec), config_where(folder), weights=source), revision=at)
    config = replace(config, eos_ids=generation_eos(folder) or config.eos_ids)
    if check is not None:
        check(config)
    return Model(folder, config, read_params(source, config, keep), read_tokenizer(folder), source)


def load_gguf(path: Path, name: str, dtype: str, keep: bool | None = None, check: Callable[[ModelConfig], None] | None = None) -> Model:
    """The model of a GGUF file (llama.cpp's format, which Ollama and LM Studio keep): its config and
    tokenizer from the file's metadata, its tensors dequantized by the gguf package, once: a copy of
    them in float32 is kept in the cache for the runs after (:mod:`.converted`)."""
    from .converted import converted_copy, copy_path
    from .gguf_file import open_gguf
    from .gguf_tokenizer import tokenizer_from_gguf

    gguf = open_gguf(path)
    source: Source = gguf.tensor_source()
    config = config_of(gguf.config(), dtype, name, f"GGUF file {quoted(str(path))}", weights=source)
    if check is not None:
        check(config)
    if not copy_path(path).is_file():
        read_params(source, config, keep=False)  # every tensor checked against the config before a copy is made
    copy = converted_copy(path, source)
    if copy is not None:  # the dequantized copy in the cache: the same values, read rather than dequantized
        try:
            source = SafetensorsFiles([copy])
        except AttnvizError:  # a copy damaged since it was made: dropped, and the file read itself
            copy.unlink(missing_ok=True)
    params = read_params(source, config, keep)
    tokenizer = tokenizer_from_gguf(gguf.metadata)
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return Model(path, config, params, tokenizer, source)


def read_params(source: Source, config: ModelConfig, keep: bool | None = None) -> Params:
    """``config``'s page's parameters from ``source``, checked against config.json first: as many
    layers in the weights as it says (counted from the names, before anything is built for them)."""
    page = PAGES[config.architecture]
    check_layer_count(config.layers, source)
    if keep is None:
        floats = sum(math.prod(source.shape(name)) for name in source.names)
        keep = floats * np.dtype(config.dtype).itemsize <= KEEP_BYTES
    checkpoint = Checkpoint(source, np.dtype(config.dtype), (page.prefix, ""), page.marker, keep=keep)
    return page.params(checkpoint, config)


def check_layer_count(says: int, source: Source) -> None:
    """Refuse a config that ``says`` a number of layers other than the checkpoint ``source`` holds."""
    counted = layers_in(source.names)
    if counted is not None and counted != says:
        held = "layers numbered with gaps" if counted < 0 else f"{counted} layers"
        raise AttnvizError(f"model weights {quoted(str(source.path))} hold {held}, where config.json says {says}")


LAYER_NUMBER = re.compile(r"(?:^|\.)(?:layers?|h|block)\.(\d+)\.")  # "model.layers.3.", "encoder.layer.3.", "h.3.", "transformer.layer.3."


def layers_in(names: set[str]) -> int | None:
    """How many layers a checkpoint's tensor names number (0 to n - 1, each present), or None if they
    number none."""
    numbers = {int(m.group(1)) for name in names if (m := LAYER_NUMBER.search(name))}
    if not numbers:
        return None
    return max(numbers) + 1 if numbers == set(range(max(numbers) + 1)) else -1


def read_config(folder: Path, dtype: str, name: str | None = None) -> ModelConfig:
    """The fields of config.json a run needs, checked."""
    name = name or folder.name
    return config_of(raw_config(folder, name), dtype, name, config_where(folder))


def raw_config(folder: Path, name: str) -> dict[str, Any]:
    """A model folder's config.json as read (bounded: see :mod:`attnviz_cli.small_files`), of an
    architecture attnviz runs."""
    from ..small_files import CONFIG_BYTES, read_json

    raw = read_json(folder / "config.json", CONFIG_BYTES, "config.json")
    if not isinstance(raw, dict) or "model_type" not in raw:
        raise AttnvizError(f"{config_where(folder)} has no model_type")
    check_architecture(raw, name)
    return raw


def config_where(folder: Path) -> str:
    return f"model folder {quoted(str(folder))}: config.json"


def check_architecture(raw: dict[str, Any], name: str) -> None:
    if raw.get("model_type") not in ARCHITECTURES:
        raise AttnvizError(f"model {quoted(name)} is a {quoted(str(raw.get('model_type')))}; attnviz runs {', '.join(ARCHITECTURES)}")


def config_of(raw: dict[str, Any], dtype: str, name: str, where: str, weights: Source | None = None) -> ModelConfig:
    """The fields a run needs of a config.json's contents ``raw`` (from a folder, or made from a GGUF
    file's metadata), checked; ``where`` names it in messages. With ``weights``, its layer count is
    checked against theirs first, before anything is made for each layer."""
    check_architecture(raw, name)
    architecture = raw["model_type"]
    says = next((raw[field] for field in LAYER_COUNTS if field in raw), None)
    if weights is not None and isinstance(says, int) and not isinstance(says, bool):
        check_layer_count(says, weights)
    try:
        check_fields(raw)  # every number any page reads, of the right kind and range, before a page reads it
        fields = PAGES[architecture].config(raw)  # layers, heads, d_model, max_positions, eps...
    except FieldError as error:
        raise AttnvizError(f"{where}: {error}") from error
    except KeyError as error:
        raise AttnvizError(f"{where} lacks {error}") from error
    except (TypeError, ValueError, OverflowError, ZeroDivisionError, AttributeError) as error:
        raise AttnvizError(f"{where} has a bad value: {error}") from error
    layers, heads, d_model = fields["layers"], fields["heads"], fields["d_model"]
    kv_heads = fields.get("kv_heads", heads)
    if layers < 1 or heads < 1 or kv_heads < 1 or heads % kv_heads or fields.get("d_head", 1) < 1 or ("d_head" not in fields and d_model % heads):
        sharing = f" sharing {kv_heads} key/value heads" if kv_heads != heads else ""
        raise AttnvizError(f"{where} has {layers} layers and {heads} heads{sharing} of width {d_model}")
    if fields["max_positions"] < 1:
        offset = fields.get("position_offset", 0)
        raise AttnvizError(f"{where} leaves the model {fields['max_positions']} positions (its max_position_embeddings less the {offset} its position ids start at)")
    tied = raw.get("tie_word_embeddings", True)  # PretrainedConfig's default
    return ModelConfig(
        name=name, architecture=architecture, dtype=dtype, tied=tied is not False, eos_ids=token_ids(raw.get("eos_token_id")),
        bos_id=next(iter(token_ids(raw.get("bos_token_id"))), None),
        **{"position_offset": 0, **fields},
    )


def token_ids(value: Any) -> tuple[int, ...]:
    """A config's eos_token_id (an int, a list of them, or none) as a tuple; anything else gives ()."""
    values = value if isinstance(value, list) else [value]
    return tuple(v for v in values if isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**31)


GENERATION_BYTES = 1 * 2**20  # generation_config.json is read up to this size (they are a few hundred bytes)


def generation_eos(folder: Path) -> tuple[int, ...]:
    """The eos_token_id of a model folder's generation_config.json (what transformers' generate stops
    at, before config.json's), or () if it has none or it cannot be read (read as every small file is:
    a regular file, bounded)."""
    from ..small_files import read_json

    path = folder / "generation_config.json"
    if not path.exists():
        return ()
    try:
        raw = read_json(path, GENERATION_BYTES, "generation_config.json")
    except AttnvizError:
        return ()
    return token_ids(raw.get("eos_token_id")) if isinstance(raw, dict) else ()


def read_tokenizer(folder: Path):
    """tokenizer.json, with its padding and truncation turned off (many pad every text to 128 tokens)."""
    from tokenizers import Tokenizer

    from ..small_files import TOKENIZER_BYTES, read_text

    text = read_text(folder / "tokenizer.json", TOKENIZER_BYTES, "tokenizer.json")
    try:
        tokenizer = Tokenizer.from_str(text)
    except BaseException as error:  # tokenizers raises its own Exception types, and panics
        if not library_failure(error):
            raise
        raise AttnvizError(f"model folder {quoted(str(folder))}: tokenizer.json cannot be read: {error}") from error
    tokenizer.no_padding()
    tokenizer.no_truncation()
    return tokenizer

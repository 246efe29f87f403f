"""A GGUF file's tokenizer, from its metadata (``tokenizer.ggml.*``), built with the tokenizers library
as Hugging Face transformers builds it for the same file, so that the ids are the ones transformers'
forward pass (the reference attnviz is tested against) sees.

transformers (4.57, ``integrations/ggml.py``) picks the tokenizer by the model's architecture
(``general.architecture``), not by ``tokenizer.ggml.pre``; where that differs from llama.cpp, this
follows transformers. What each architecture gets:

- llama with a SentencePiece vocabulary (``tokenizer.ggml.model`` "llama": Llama 2, TinyLlama, Mistral,
  whose files say "llama" too): BPE over the pieces with byte fallback, merges made from the scores when
  the file has none, spaces as "▁" and one prepended (``add_space_prefix``, default on);
- llama with a byte-level vocabulary ("gpt2": Llama 3, SmolLM2): byte-level BPE with GPT-2's split
  (llama.cpp splits by ``pre``: Llama 3's regex, SmolLM2's digits one by one, which its merges give too);
  both put BOS (the token of ``bos_token_id``) first, whatever ``add_bos_token`` says, as
  transformers' LlamaTokenizerFast does;
- qwen2, qwen3: byte-level BPE with Qwen2's split and NFC, no BOS;
- gpt2: byte-level BPE, no BOS;
- gemma2, gemma3: a Unigram model over the scores, byte fallback, BOS "<bos>" (llama.cpp merges by
  the scores instead, as SentencePiece BPE: transformers' way cuts words the model has whole, gemma-3-270m's
  "▁the" into "▁t" "he");
- phi3: BPE over the pieces with no normalizer or split, Phi-3's chat tokens, BOS.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import AttnvizError, library_failure, quoted

MAX_ENTRIES = 1 << 24  # tokens, merges, scores, token types: 2^24 is 64x the largest vocabulary in use (262k, Gemma 3)
# a vocabulary's characters in all, when its merges are made from its scores (each one a split tried in
# Python: gemma-3's 262,144 pieces, 1.48M characters, take 1.8 s here): ~5 s at most
MAX_SPLIT_CHARS = 1 << 22
MAX_TOKEN_CHARS = 4096  # one token's characters; real vocabularies' longest are runs of a few hundred spaces
CONTROL = 3  # a tokenizer.ggml.token_type value (llama.cpp's llama_token_type): the tokens transformers makes special
KINDS = ("gpt2", "llama")  # tokenizer.ggml.model: byte-level BPE, SentencePiece-style pieces with scores
NEEDS = {"qwen2": "gpt2", "gpt2": "gpt2", "gemma": "llama", "phi3": "llama"}  # the kind a family reads (llama: either)

# general.architecture -> the tokenizer transformers builds for it
FAMILIES = {
    "llama": "llama",
    "qwen2": "qwen2", "qwen3": "qwen2", "qwen2moe": "qwen2", "qwen3moe": "qwen2",
    "gpt2": "gpt2",
    "gemma2": "gemma", "gemma3": "gemma",
    "phi3": "phi3",
}
QWEN2_SPLIT = r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
QWEN2_SPECIAL = ("<|endoftext|>", "<|im_start|>", "<|im_end|>")
PHI3_SPECIAL = (  # (token, rstrip): transformers' GGUFPhi3Converter adds these whatever the file says
    ("</s>", True), ("<|endoftext|>", False), ("<|assistant|>", True), ("<|placeholder1|>", True),
    ("<|placeholder2|>", True), ("<|placeholder3|>", True), ("<|placeholder4|>", True), ("<|system|>", True),
    ("<|end|>", True), ("<|placeholder5|>", True), ("<|placeholder6|>", True), ("<|user|>", True),
)


def tokenizer_from_gguf(metadata: Mapping[str, Any]) -> Any:
    """The ``tokenizers.Tokenizer`` of a GGUF file whose metadata (key -> plain value: str, int, bool,
    lists or NumPy arrays) is ``metadata``: the one transformers builds for the same file, with no
    padding or truncation. Metadata it cannot build one from is an AttnvizError naming the key."""
    architecture = text(metadata, "general.architecture")
    kind = text(metadata, "tokenizer.ggml.model")
    if kind not in KINDS:
        raise AttnvizError(f"GGUF tokenizer model {quoted(kind)} is not supported (supported: {', '.join(KINDS)})")
    family = FAMILIES.get(architecture)
    tokens = strings(metadata, "tokenizer.ggml.tokens")
    try:
        if family is None or NEEDS.get(family, kind) != kind:
            # an architecture transformers has no tokenizer for (OLMo 2), or a vocabulary of another kind than
            # it expects there: built as for Llama, which reads either kind (byte-level BPE or pieces with
            # scores), BOS first only if the file says so, as llama.cpp reads it
            tokenizer = llama_tokenizer(metadata, tokens)
            if not flag(metadata, "tokenizer.ggml.add_bos_token", False):
                tokenizer.post_processor = None
            return tokenizer
        build = {"llama": llama_tokenizer, "qwen2": qwen2_tokenizer, "gpt2": gpt2_tokenizer, "gemma": gemma_tokenizer, "phi3": phi3_tokenizer}[family]
        return build(metadata, tokens)
    except AttnvizError:
        raise
    except BaseException as error:  # tokenizers raises its own Exception types on what it cannot build, and panics
        if not library_failure(error):
            raise
        raise AttnvizError(f"the GGUF tokenizer cannot be built: {quoted(str(error))}") from error


def llama_tokenizer(metadata: Mapping[str, Any], tokens: list[str]) -> Any:
    """transformers' GGUFLlamaConverter and LlamaTokenizerFast: SentencePiece-style BPE, or byte-level
    BPE for a "gpt2" vocabulary (Llama 3), with the file's control tokens special and BOS first."""
    from tokenizers import AddedToken, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import BPE

    byte_level = metadata.get("tokenizer.ggml.model") == "gpt2"
    merges = merge_pairs(metadata, tokens)
    unk = token_at(metadata, "tokenizer.ggml.unknown_token_id", tokens)
    bos = token_at(metadata, "tokenizer.ggml.bos_token_id", tokens)
    if bos is None:
        raise AttnvizError("GGUF metadata has no 'tokenizer.ggml.bos_token_id' (the llama tokenizer puts BOS first)")
    tokenizer = Tokenizer(BPE(vocabulary(tokens), merges, unk_token=unk, fuse_unk=True, byte_fallback=True))
    types = token_types(metadata, tokens)
    if types is None:  # no types: the unknown and BOS tokens are the special ones (its "EOS" is BOS too)
        control = [t for t in (unk, bos) if t is not None]
    else:
        control = [tokens[i] for i in np.flatnonzero(types == CONTROL)]
    tokenizer.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in control])
    add_prefix_space = flag(metadata, "tokenizer.ggml.add_space_prefix", True)
    steps = [decoders.ByteFallback(), decoders.Fuse(), decoders.Replace("▁", " ")]
    if byte_level:
        tokenizer.normalizer = normalizers.Sequence([])
        tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=True)
        steps.append(decoders.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=True))
    else:
        prefix = [normalizers.Prepend("▁")] if add_prefix_space else []
        tokenizer.normalizer = normalizers.Sequence([*prefix, normalizers.Replace(" ", "▁")])
    tokenizer.decoder = decoders.Sequence(steps + ([decoders.Strip(" ", 1, 0)] if add_prefix_space else []))
    add_own_special(tokenizer, [bos, unk])  # LlamaTokenizerFast's (its EOS is BOS: the converter swaps them)
    tokenizer.post_processor = bos_first(tokenizer, bos)
    return tokenizer


def qwen2_tokenizer(metadata: Mapping[str, Any], tokens: list[str]) -> Any:
    """transformers' GGUFQwen2Converter and Qwen2TokenizerFast: byte-level BPE after NFC and Qwen2's
    split (digits one by one), its three chat tokens special, nothing added around the text."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
    from tokenizers.models import BPE

    tokenizer = Tokenizer(BPE(vocabulary(tokens), merge_pairs(metadata, tokens), continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False, byte_fallback=False))
    tokenizer.normalizer = normalizers.NFC()
    tokenizer.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(QWEN2_SPLIT), behavior="isolated", invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=flag(metadata, "tokenizer.ggml.add_space_prefix", False), use_regex=False),
    ])
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    tokenizer.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in QWEN2_SPECIAL])
    return tokenizer


def gpt2_tokenizer(metadata: Mapping[str, Any], tokens: list[str]) -> Any:
    """transformers' GGUFGPTConverter and GPT2TokenizerFast: byte-level BPE with GPT-2's split,
    "<|endoftext|>" special, nothing added around the text."""
    from tokenizers import Tokenizer, decoders, pre_tokenizers, processors
    from tokenizers.models import BPE

    tokenizer = Tokenizer(BPE(vocabulary(tokens), merge_pairs(metadata, tokens), continuing_subword_prefix="", end_of_word_suffix="", fuse_unk=False))
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=flag(metadata, "tokenizer.ggml.add_space_prefix", False))
    tokenizer.decoder = decoders.ByteLevel()
    tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    add_own_special(tokenizer, ["<|endoftext|>"])  # GPT2TokenizerFast's BOS, EOS and unknown
    return tokenizer


def gemma_tokenizer(metadata: Mapping[str, Any], tokens: list[str]) -> Any:
    """transformers' GGUFGemmaConverter and GemmaTokenizerFast: a Unigram model over the file's scores
    (a piece of plain spaces as "▁"s, "<0x09>" as a tab), spaces as "▁", BOS "<bos>" first."""
    from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import Unigram

    pieces = [
        "\t" if t == "<0x09>" else "▁" * len(t) if " " in t and not t.strip() else t
        for t in tokens
    ]
    unk = index(metadata, "tokenizer.ggml.unknown_token_id", tokens)
    tokenizer = Tokenizer(Unigram(list(zip(pieces, scores(metadata, tokens), strict=True)), unk, byte_fallback=True))
    tokenizer.normalizer = normalizers.Replace(" ", "▁")
    tokenizer.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    prefix = [decoders.Strip(" ", 1, 0)] if flag(metadata, "tokenizer.ggml.add_space_prefix", True) else []
    tokenizer.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse(), *prefix])
    add_own_special(tokenizer, ["<bos>", "<eos>", "<unk>", "<pad>"])  # GemmaTokenizerFast's, by name, not the file's ids
    tokenizer.post_processor = bos_first(tokenizer, "<bos>")
    return tokenizer


def phi3_tokenizer(metadata: Mapping[str, Any], tokens: list[str]) -> Any:
    """transformers' GGUFPhi3Converter and LlamaTokenizerFast: BPE over the pieces as they are (no
    normalizer and no split: a space is not turned into "▁"), Phi-3's chat tokens special, BOS first."""
    from tokenizers import AddedToken, Tokenizer, decoders
    from tokenizers.models import BPE

    bos = token_at(metadata, "tokenizer.ggml.bos_token_id", tokens)
    if bos is None:
        raise AttnvizError("GGUF metadata has no 'tokenizer.ggml.bos_token_id' (the phi3 tokenizer puts BOS first)")
    tokenizer = Tokenizer(BPE(vocabulary(tokens), merge_pairs(metadata, tokens)))
    tokenizer.add_special_tokens([AddedToken(t, rstrip=rstrip, lstrip=False, normalized=False, special=True) for t, rstrip in PHI3_SPECIAL])
    prefix = [decoders.Strip(" ", 1, 0)] if flag(metadata, "tokenizer.ggml.add_space_prefix", True) else []
    tokenizer.decoder = decoders.Sequence([decoders.ByteFallback(), decoders.Fuse(), decoders.Replace("▁", " "), *prefix])
    named = ("tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.unknown_token_id", "tokenizer.ggml.padding_token_id")
    add_own_special(tokenizer, [token_at(metadata, key, tokens) for key in named])
    tokenizer.post_processor = bos_first(tokenizer, bos)
    return tokenizer


def add_own_special(tokenizer: Any, names: list[str | None]) -> None:
    """What transformers' tokenizer class adds on top of the converter's: its own special tokens
    (BOS, EOS, unknown, padding, in that order), each one not added already, so the converter's stay
    as they are (Phi-3's "</s>" keeps the spaces after it)."""
    from tokenizers import AddedToken

    added = {t.content for t in tokenizer.get_added_tokens_decoder().values()}
    tokenizer.add_special_tokens([AddedToken(t, normalized=False, special=True) for t in dict.fromkeys(names) if t is not None and t not in added])


def bos_first(tokenizer: Any, bos: str) -> Any:
    """LlamaTokenizerFast's post-processor: ``bos`` before the text (and before a pair's second text)."""
    from tokenizers import processors

    return processors.TemplateProcessing(
        single=f"{bos}:0 $A:0", pair=f"{bos}:0 $A:0 {bos}:1 $B:1", special_tokens=[(bos, tokenizer.token_to_id(bos))]
    )


def vocabulary(tokens: list[str]) -> dict[str, int]:
    """Token -> id; a token listed twice keeps its last id, as transformers' dict does."""
    return {t: i for i, t in enumerate(tokens)}


def merge_pairs(metadata: Mapping[str, Any], tokens: list[str]) -> list[tuple[str, str]]:
    """The BPE merges in rank order: the file's ("a b" each), else made from the scores as transformers'
    GGUFTokenizerSkeleton does (every split of a piece into two pieces, ranked by the piece's score)."""
    if "tokenizer.ggml.merges" not in metadata:
        characters = sum(map(len, tokens))
        if characters > MAX_SPLIT_CHARS:
            raise AttnvizError(f"GGUF vocabulary has no merges and {characters:,} characters, more than the {MAX_SPLIT_CHARS:,} made into merges here")
        return merges_from_scores(tokens, scores(metadata, tokens))
    merges = strings(metadata, "tokenizer.ggml.merges")
    pairs = [tuple(m.split(" ")) for m in merges]
    bad = next((m for m, pair in zip(merges, pairs, strict=True) if len(pair) != 2 or not pair[0] or not pair[1]), None)
    if bad is not None:
        raise AttnvizError(f"GGUF merge {quoted(bad)} is not two tokens joined by one space")
    return pairs  # type: ignore[return-value]  # each checked to be a pair just above


def merges_from_scores(tokens: list[str], scores: list[float]) -> list[tuple[str, str]]:
    """Merges for a vocabulary that has none (llama.cpp writes none for SentencePiece models):
    transformers' GGUFTokenizerSkeleton's rule, with a set for its list look-ups. For each piece, each
    split into two known pieces, by their scores (highest first); all, by the piece's score (stable)."""
    score = {t: scores[i] for i, t in enumerate(tokens)}
    known = set(tokens)
    merges: list[tuple[str, str, float]] = []
    for piece, piece_score in score.items():
        local = [(piece[:i], piece[i:], piece_score) for i in range(1, len(piece)) if piece[:i] in known and piece[i:] in known]
        merges.extend(sorted(local, key=lambda m: (score[m[0]], score[m[1]]), reverse=True))
    merges.sort(key=lambda m: m[2], reverse=True)
    return [(left, right) for left, right, _ in merges]


def text(metadata: Mapping[str, Any], key: str) -> str:
    value = metadata.get(key)
    if value is None:
        raise AttnvizError(f"GGUF metadata has no {quoted(key)}")
    if not isinstance(value, str):
        raise AttnvizError(f"GGUF metadata {quoted(key)} is not a string")
    return value


def flag(metadata: Mapping[str, Any], key: str, default: bool) -> bool:
    value = metadata.get(key, default)
    if not isinstance(value, bool | np.bool_):
        raise AttnvizError(f"GGUF metadata {quoted(key)} is not a boolean")
    return bool(value)


def index(metadata: Mapping[str, Any], key: str, tokens: list[str]) -> int | None:
    """The token id ``key`` holds, checked to be one of ``tokens``; None when the key is absent."""
    value = metadata.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise AttnvizError(f"GGUF metadata {quoted(key)} is not an integer")
    if not 0 <= int(value) < len(tokens):
        raise AttnvizError(f"GGUF metadata {quoted(key)} is {int(value)}, not a token id (0-{len(tokens) - 1})")
    return int(value)


def token_at(metadata: Mapping[str, Any], key: str, tokens: list[str]) -> str | None:
    i = index(metadata, key, tokens)
    return None if i is None else tokens[i]


def sized(metadata: Mapping[str, Any], key: str, length: int | None = None) -> Sequence[Any]:
    """The list ``key`` holds, its length checked (at most MAX_ENTRIES; ``length`` when given) before
    anything in it is read."""
    value = metadata.get(key)
    if value is None:
        raise AttnvizError(f"GGUF metadata has no {quoted(key)}")
    if isinstance(value, str | bytes) or not hasattr(value, "__len__") or not hasattr(value, "__getitem__"):
        raise AttnvizError(f"GGUF metadata {quoted(key)} is not a list")
    n = len(value)
    if n > MAX_ENTRIES:
        raise AttnvizError(f"GGUF metadata {quoted(key)} has {n:,} entries, more than the {MAX_ENTRIES:,} read")
    if length is not None and n != length:
        raise AttnvizError(f"GGUF metadata {quoted(key)} has length {n:,} for {length:,} tokens")
    return value


def strings(metadata: Mapping[str, Any], key: str) -> list[str]:
    value = [*sized(metadata, key)]
    if not all(isinstance(s, str) for s in value):
        raise AttnvizError(f"GGUF metadata {quoted(key)} is not a list of strings")
    if key == "tokenizer.ggml.tokens" and not value:
        raise AttnvizError(f"GGUF metadata {quoted(key)} is empty")
    if any(len(s) > MAX_TOKEN_CHARS for s in value):
        raise AttnvizError(f"GGUF metadata {quoted(key)} has an entry longer than {MAX_TOKEN_CHARS:,} characters")
    return [str(s) for s in value]  # NumPy's str_ as plain str


def token_types(metadata: Mapping[str, Any], tokens: list[str]) -> np.ndarray | None:
    if "tokenizer.ggml.token_type" not in metadata:
        return None
    value = np.asarray(sized(metadata, "tokenizer.ggml.token_type", len(tokens)))
    if value.ndim != 1 or value.dtype.kind not in "iu":
        raise AttnvizError("GGUF metadata 'tokenizer.ggml.token_type' is not a list of integers")
    return value


def scores(metadata: Mapping[str, Any], tokens: list[str]) -> list[float]:
    value = np.asarray(sized(metadata, "tokenizer.ggml.scores", len(tokens)))
    if value.ndim != 1 or value.dtype.kind not in "iuf":
        raise AttnvizError("GGUF metadata 'tokenizer.ggml.scores' is not a list of numbers")
    return value.astype(np.float64).tolist()  # float32's values exactly, as transformers reads them

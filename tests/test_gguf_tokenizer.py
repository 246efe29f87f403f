"""tokenizer_from_gguf against Hugging Face transformers' tokenizer for the same GGUF file: encodings
recorded by tests/models/make_gguf_tokenizers.py (SmolLM2-135M-Instruct's file, and six hand-made
vocabularies: SentencePiece-style and byte-level BPE under llama, qwen2, gpt2, a Unigram gemma3, phi3),
and live when transformers is installed; then metadata it must refuse, each in one line."""

from __future__ import annotations

import importlib.util
import itertools
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from attnviz_cli.errors import AttnvizError
from attnviz_cli.models.gguf_tokenizer import MAX_ENTRIES, merges_from_scores, tokenizer_from_gguf

from .conftest import REAL_GGUF, need_module, need_real

MODELS = Path(__file__).resolve().parent / "models"
TINY = json.loads((MODELS / "gguf-tokenizer-tiny.json").read_text(encoding="utf-8"))
SMOLLM2_RECORD = json.loads((MODELS / "gguf-tokenizer-smollm2.json").read_text(encoding="utf-8"))


def recorder() -> ModuleType:
    """tests/models/make_gguf_tokenizers.py, for its GGUF writer and reader and SmolLM2's path."""
    spec = importlib.util.spec_from_file_location("make_gguf_tokenizers", MODELS / "make_gguf_tokenizers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def encoded(tokenizer: Any, text: str) -> dict[str, Any]:
    """What attnviz's model pipeline reads of an encoding, as the recording holds it."""
    e = tokenizer.encode(text)
    return {
        "ids": e.ids, "tokens": e.tokens, "offsets": [list(o) for o in e.offsets],
        "special_tokens_mask": e.special_tokens_mask, "word_ids": e.word_ids,
    }


def assert_encodes_as(tokenizer: Any, texts: list[str], wanted: list[dict[str, Any]]) -> None:
    for text, want in zip(texts, wanted, strict=True):
        assert encoded(tokenizer, text) == want, text


@pytest.mark.parametrize("case", sorted(TINY["cases"]))
def test_tiny_vocabularies_encode_as_transformers_recorded(case):
    record = TINY["cases"][case]
    assert_encodes_as(tokenizer_from_gguf(record["metadata"]), TINY["texts"], record["encodings"])


def test_the_recordings_cover_what_the_pipeline_meets():
    """The texts hold special tokens typed in, byte fallback, BOS added or not: each case differs from
    the others somewhere, and the SentencePiece ones fall back to bytes for CJK."""
    ids = {case: [e["ids"] for e in record["encodings"]] for case, record in TINY["cases"].items()}
    assert len({json.dumps(v) for v in ids.values()}) == len(ids)
    sp = TINY["cases"]["llama-sentencepiece"]
    cjk = sp["encodings"][TINY["texts"].index("日本語のテキスト")]
    assert cjk["tokens"][:3] == ["<s>", "▁", "<0xE6>"]  # BOS, the prefix space, then bytes
    assert [e["special_tokens_mask"][0] for e in TINY["cases"]["qwen2"]["encodings"]] == [0] * len(TINY["texts"])


def test_merges_from_scores_by_hand():
    """"abc" splits as a+bc (scores -5, -1) and ab+c (-2, 0): ab+c ranks first among abc's merges; all
    merges rank by the merged piece's score: bc (-1), ab (-2), then abc's two (-3)."""
    tokens = ["a", "b", "c", "ab", "bc", "abc", "cab"]
    scores = [-5.0, 0.0, 0.0, -2.0, -1.0, -3.0, -1.0]
    assert merges_from_scores(tokens, scores) == [("b", "c"), ("c", "ab"), ("a", "b"), ("ab", "c"), ("a", "bc")]


AB = ["".join(p) for n in (1, 2, 3) for p in itertools.product("ab", repeat=n)]  # every piece of 2 and 3 splits


@pytest.mark.slow
@settings(max_examples=60, deadline=None)
@given(st.permutations(AB), st.lists(st.sampled_from([0.0, -1.0, -1.5, -2.0, -7.25]), min_size=len(AB) + 1, max_size=len(AB) + 1), st.sampled_from(AB))
def test_merges_from_scores_as_transformers(pieces, scores, repeated):
    """The same merges, in the same order, as transformers' GGUFTokenizerSkeleton, on vocabularies where
    every piece splits in several ways, with tied scores and a token listed twice."""
    ggml = need_module("transformers.integrations.ggml")
    tokens = [*pieces, repeated]
    assert merges_from_scores(tokens, scores) == ggml.GGUFTokenizerSkeleton({"tokens": tokens, "scores": scores}).merges


def test_importing_it_costs_no_tokenizers():
    """attn's start-up may import the module: tokenizers (and gguf) load only when a tokenizer is built."""
    code = "import sys, attnviz_cli.models.gguf_tokenizer; print(sorted(m for m in ('tokenizers', 'gguf') if m in sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"


@pytest.mark.parametrize("case", ["llama-bpe", "llama-sentencepiece", "qwen2"])
def test_truncation_keeps_bos_and_the_first_tokens(case):
    """What attnviz's --truncate does (Model.encode_truncated): tokenizers' truncation counts the BOS
    the post-processor adds, so 5 tokens are BOS (if any) and the text's first ones."""
    tokenizer = tokenizer_from_gguf(TINY["cases"][case]["metadata"])
    text = "Don't, can't, WON'T, we've, they'll, I'd, she's, you're"
    full = tokenizer.encode(text)
    tokenizer.enable_truncation(5)
    cut = tokenizer.encode(text)
    assert len(full.ids) > 5
    assert (cut.ids, cut.offsets, cut.special_tokens_mask) == (full.ids[:5], full.offsets[:5], full.special_tokens_mask[:5])


def test_numpy_arrays_are_read_as_lists():
    record = TINY["cases"]["gemma3"]
    metadata = dict(record["metadata"])
    metadata["tokenizer.ggml.tokens"] = np.array(metadata["tokenizer.ggml.tokens"])
    metadata["tokenizer.ggml.scores"] = np.array(metadata["tokenizer.ggml.scores"], dtype=np.float32)
    metadata["tokenizer.ggml.token_type"] = np.array(metadata["tokenizer.ggml.token_type"], dtype=np.int32)
    metadata["tokenizer.ggml.unknown_token_id"] = np.uint32(metadata["tokenizer.ggml.unknown_token_id"])
    metadata["tokenizer.ggml.add_bos_token"] = np.bool_(True)
    assert_encodes_as(tokenizer_from_gguf(metadata), TINY["texts"], record["encodings"])


def test_a_saved_copy_encodes_the_same():
    """A built tokenizer saved as tokenizer.json and read back (a copy kept in a cache) is the same."""
    from tokenizers import Tokenizer

    for record in TINY["cases"].values():
        copy = Tokenizer.from_str(tokenizer_from_gguf(record["metadata"]).to_str())
        assert_encodes_as(copy, TINY["texts"], record["encodings"])


@pytest.mark.slow
@pytest.mark.parametrize("case", sorted(TINY["cases"]))
def test_tiny_vocabularies_live(case, tmp_path):
    """Each hand-made vocabulary written to a GGUF file and loaded by transformers: the same tokenizer
    (its whole tokenizer.json) and the same encodings."""
    need_module("torch", "torch is not installed (transformers reads GGUF files only with it)")
    need_module("gguf")
    transformers = need_module("transformers")
    record = TINY["cases"][case]
    path = tmp_path / f"{case}.gguf"
    recorder().write_gguf(path, record["metadata"])
    theirs = transformers.AutoTokenizer.from_pretrained(str(tmp_path), gguf_file=path.name)
    mine = tokenizer_from_gguf(record["metadata"])
    assert json.loads(mine.to_str()) == json.loads(theirs.backend_tokenizer.to_str())
    assert_encodes_as(mine, TINY["texts"], [encoded(theirs.backend_tokenizer, t) for t in TINY["texts"]])


# Texts made of pieces that tokenizers treat specially: special tokens typed in, "▁" and byte-piece
# names, runs of spaces and newlines, contractions, digits; and any characters between them.
PIECES = [" ", "  ", "\n", "\r\n", "\t", "'s", "'LL", "2026", "<s>", "</s>", "<unk>", "<|im_start|>", "<|endoftext|>", "<|user|>", "▁", "<0x41>", "é", "e\u0301", "\u212b", "🙂"]
TEXTS = st.lists(st.one_of(st.text(max_size=10), st.sampled_from(PIECES)), max_size=8).map("".join)


@pytest.fixture(scope="module")
def transformers_tiny(tmp_path_factory) -> dict[str, Any]:
    """transformers' tokenizer of each hand-made vocabulary's GGUF file, loaded once."""
    need_module("torch", "torch is not installed (transformers reads GGUF files only with it)")
    need_module("gguf")
    transformers = need_module("transformers")
    folder = tmp_path_factory.mktemp("gguf")
    loaded = {}
    for case, record in TINY["cases"].items():
        recorder().write_gguf(folder / f"{case}.gguf", record["metadata"])
        loaded[case] = transformers.AutoTokenizer.from_pretrained(str(folder), gguf_file=f"{case}.gguf").backend_tokenizer
    return loaded


@pytest.mark.slow
@settings(max_examples=150, deadline=None)
@given(TEXTS)
def test_any_text_encodes_as_transformers(transformers_tiny, text):
    for case, theirs in transformers_tiny.items():
        assert encoded(tokenizer_from_gguf_cached(case), text) == encoded(theirs, text), case


BUILT: dict[str, Any] = {}


def tokenizer_from_gguf_cached(case: str) -> Any:
    if case not in BUILT:
        BUILT[case] = tokenizer_from_gguf(TINY["cases"][case]["metadata"])
    return BUILT[case]


# The real files: SmolLM2-135M-Instruct (llama, byte-level BPE) and gemma-3-270m (gemma3, Unigram)
METADATA: dict[str, dict[str, Any]] = {}


def real_metadata(name: str) -> dict[str, Any]:
    """The file's metadata, read once (gguf's reader takes seconds over a large vocabulary)."""
    if name not in METADATA:
        need_module("gguf")
        METADATA[name] = recorder().read_metadata(need_real(name))
    return METADATA[name]


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REAL_GGUF))
def test_real_files_encode_as_transformers_recorded(name):
    record = json.loads((MODELS / f"gguf-tokenizer-{name}.json").read_text(encoding="utf-8"))
    assert record["file"] == need_real(name).name
    assert_encodes_as(tokenizer_from_gguf(real_metadata(name)), record["texts"], record["encodings"])


@pytest.mark.slow
def test_smollm2_puts_bos_first_as_transformers_does():
    """transformers' LlamaTokenizerFast puts BOS (<|im_start|>, id 1) first although the file says
    add_bos_token = false; the ids transformers' forward pass sees are these."""
    metadata = real_metadata("smollm2")
    assert metadata["tokenizer.ggml.add_bos_token"] is False
    assert encoded(tokenizer_from_gguf(metadata), "Hello world") == {
        "ids": [1, 19556, 905], "tokens": ["<|im_start|>", "Hello", "Ġworld"], "offsets": [[0, 0], [0, 5], [5, 11]],
        "special_tokens_mask": [1, 0, 0], "word_ids": [None, 0, 1],
    }


@pytest.mark.slow
def test_gemma3_is_transformers_unigram():
    """transformers reads Gemma's scores as a Unigram model's (llama.cpp merges by them, as SentencePiece
    BPE): words the model knows whole come out in pieces. attnviz follows transformers, the reference."""
    tokens = tokenizer_from_gguf(real_metadata("gemma3")).encode("I sat on the river bank").tokens
    assert tokens == ["<bos>", "I", "▁s", "at", "▁on", "▁t", "he", "▁r", "iv", "er", "▁b", "ank"]


@pytest.mark.slow
def test_smollm2_live():
    need_module("torch", "torch is not installed (transformers reads GGUF files only with it)")
    transformers = need_module("transformers")
    path = need_real("smollm2")
    theirs = transformers.AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    mine = tokenizer_from_gguf(real_metadata("smollm2"))
    assert json.loads(mine.to_str()) == json.loads(theirs.backend_tokenizer.to_str())
    assert_encodes_as(mine, SMOLLM2_RECORD["texts"], [encoded(theirs.backend_tokenizer, t) for t in SMOLLM2_RECORD["texts"]])


class Claimed:
    """A list that says it holds ``n`` entries and holds none: what a reader that trusted a file's
    count would hand over. Reading any entry fails the test."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> str:
        raise AssertionError("an entry was read before the length was checked")


def refused(changes: dict[str, Any], case: str = "llama-bpe") -> str:
    metadata = dict(TINY["cases"][case]["metadata"])
    for key, value in changes.items():
        if value is None:
            del metadata[key]
        else:
            metadata[key] = value
    with pytest.raises(AttnvizError) as error:
        tokenizer_from_gguf(metadata)
    message = str(error.value)
    assert "\n" not in message
    return message


def test_missing_keys_are_named():
    assert refused({"general.architecture": None}) == "GGUF metadata has no 'general.architecture'"
    assert refused({"tokenizer.ggml.model": None}) == "GGUF metadata has no 'tokenizer.ggml.model'"
    assert refused({"tokenizer.ggml.tokens": None}) == "GGUF metadata has no 'tokenizer.ggml.tokens'"
    assert refused({"tokenizer.ggml.bos_token_id": None}) == (
        "GGUF metadata has no 'tokenizer.ggml.bos_token_id' (the llama tokenizer puts BOS first)"
    )
    assert refused({"tokenizer.ggml.scores": None}, "gemma3") == "GGUF metadata has no 'tokenizer.ggml.scores'"


def test_unknown_model_types_name_the_supported_ones_and_other_architectures_build_by_the_files_kind():
    assert refused({"tokenizer.ggml.model": "bert"}) == "GGUF tokenizer model 'bert' is not supported (supported: gpt2, llama)"
    # an architecture transformers builds no tokenizer for (OLMo 2), or a vocabulary of another kind than it
    # expects there: built as for Llama, which reads either kind
    for architecture, case in (("olmo2", "llama-sentencepiece"), ("qwen2", "llama-sentencepiece"), ("olmo2", "llama-bpe")):
        metadata = TINY["cases"][case]["metadata"]
        own = tokenizer_from_gguf(metadata)
        other = tokenizer_from_gguf({**metadata, "general.architecture": architecture})
        text = "I sat on the river bank, 12 times"
        ids = own.encode(text).ids  # transformers puts BOS first under llama whatever the file says; llama.cpp, as told
        bos = metadata["tokenizer.ggml.bos_token_id"]
        assert ids[0] == bos
        assert other.encode(text).ids == (ids if metadata.get("tokenizer.ggml.add_bos_token", False) else ids[1:])
    assert refused({"tokenizer.ggml.model": "t5\x1b[2J"}) == "GGUF tokenizer model 't5\\x1b[2J' is not supported (supported: gpt2, llama)"


def test_bad_merges_and_lists_are_refused():
    merges = TINY["cases"]["llama-bpe"]["metadata"]["tokenizer.ggml.merges"]
    assert refused({"tokenizer.ggml.merges": ["ab", *merges]}) == "GGUF merge 'ab' is not two tokens joined by one space"
    assert refused({"tokenizer.ggml.merges": ["a b c", *merges]}) == "GGUF merge 'a b c' is not two tokens joined by one space"
    assert refused({"tokenizer.ggml.merges": [" b", *merges]}) == "GGUF merge ' b' is not two tokens joined by one space"
    assert refused({"tokenizer.ggml.token_type": [1, 1, 3]}) == "GGUF metadata 'tokenizer.ggml.token_type' has length 3 for 600 tokens"
    assert refused({"tokenizer.ggml.scores": [0.0]}, "gemma3") == "GGUF metadata 'tokenizer.ggml.scores' has length 1 for 468 tokens"
    assert refused({"tokenizer.ggml.tokens": "abc"}) == "GGUF metadata 'tokenizer.ggml.tokens' is not a list"
    assert refused({"tokenizer.ggml.tokens": ["a", 2]}) == "GGUF metadata 'tokenizer.ggml.tokens' is not a list of strings"
    assert refused({"tokenizer.ggml.tokens": []}) == "GGUF metadata 'tokenizer.ggml.tokens' is empty"
    assert refused({"tokenizer.ggml.tokens": ["x" * 5000]}) == (
        "GGUF metadata 'tokenizer.ggml.tokens' has an entry longer than 4,096 characters"
    )
    assert refused({"tokenizer.ggml.token_type": ["1"] * 600}) == "GGUF metadata 'tokenizer.ggml.token_type' is not a list of integers"
    assert refused({"tokenizer.ggml.token_type": [True] * 600}) == "GGUF metadata 'tokenizer.ggml.token_type' is not a list of integers"
    assert refused({"tokenizer.ggml.token_type": [[1, 1]] * 600}) == "GGUF metadata 'tokenizer.ggml.token_type' is not a list of integers"
    assert refused({"tokenizer.ggml.scores": ["0"] * 468}, "gemma3") == "GGUF metadata 'tokenizer.ggml.scores' is not a list of numbers"
    assert refused({"tokenizer.ggml.bos_token_id": 600}) == "GGUF metadata 'tokenizer.ggml.bos_token_id' is 600, not a token id (0-599)"
    assert refused({"tokenizer.ggml.bos_token_id": "0"}) == "GGUF metadata 'tokenizer.ggml.bos_token_id' is not an integer"
    assert refused({"tokenizer.ggml.add_space_prefix": 1}) == "GGUF metadata 'tokenizer.ggml.add_space_prefix' is not a boolean"


def test_lengths_are_checked_before_anything_is_read():
    assert refused({"tokenizer.ggml.tokens": Claimed(10**8)}) == (
        f"GGUF metadata 'tokenizer.ggml.tokens' has 100,000,000 entries, more than the {MAX_ENTRIES:,} read"
    )
    assert refused({"tokenizer.ggml.merges": Claimed(MAX_ENTRIES + 1)}) == (
        "GGUF metadata 'tokenizer.ggml.merges' has 16,777,217 entries, more than the 16,777,216 read"
    )
    assert refused({"tokenizer.ggml.token_type": Claimed(10**8)}) == (
        "GGUF metadata 'tokenizer.ggml.token_type' has 100,000,000 entries, more than the 16,777,216 read"
    )


def test_merges_are_made_from_scores_only_for_a_bounded_vocabulary():
    tokens = ["x" * 4000 + str(i) for i in range(1100)]  # 4.4M characters: 4.4M splits to try
    message = refused({"tokenizer.ggml.tokens": tokens, "tokenizer.ggml.scores": [0.0] * 1100, "tokenizer.ggml.token_type": [1] * 1100}, "llama-sentencepiece")
    assert message == "GGUF vocabulary has no merges and 4,403,290 characters, more than the 4,194,304 made into merges here"


def test_what_tokenizers_cannot_build_is_one_line():
    """A BOS token that TemplateProcessing cannot hold (its template syntax takes "name:type")."""
    tokens = list(TINY["cases"]["llama-bpe"]["metadata"]["tokenizer.ggml.tokens"])
    tokens[0] = "a:b:c"
    assert refused({"tokenizer.ggml.tokens": tokens}).startswith("the GGUF tokenizer cannot be built: '")

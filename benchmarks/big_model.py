"""A 1.5-2B bfloat16 decoder, read a layer at a time: peak memory and wall time of a 512-token run
(issue 28: at most the weights' file size plus 600 MB).

    python benchmarks/big_model.py FOLDER [--model qwen2.5-1.5b] [--tokens 512] [--runs 1] [--profile]

If FOLDER has no config.json, first makes in it (never in the repo: 3-3.5 GB) a model with random
weights and the config of Qwen2.5-1.5B (or SmolLM2-1.7B), made by transformers in bfloat16 and saved
by its save_pretrained as safetensors shards of at most ``--shard-size`` (2 GB: the real checkpoints
are one 3.1-3.4 GB file, which transformers' default 5 GB would keep whole; shards exercise
model.safetensors.index.json), with the tiny Qwen2 test model's byte-level BPE tokenizer (300 ids,
all valid in the model's vocabulary). Needs torch and transformers for that step only.

Then runs, each in a fresh process (``--runs`` times, in turn), and prints each one's wall time and
peak resident memory (the process's ru_maxrss from os.wait4) against the file size:
- Python importing attnviz's model code (the floor a run starts from);
- the Python API, ``load_model(FOLDER).run(text)``;
- the same with glibc's malloc returning each freed array to the system (``MMAP_FIXED``): what
  the run holds, without the memory the allocator keeps;
- ``attn inspect TEXT --model FOLDER -f json --fields tokens,heads.patterns`` (a small record);
- ``attn inspect TEXT --model FOLDER -f json``, the whole record (every head's scores and weights),
  written to /dev/null.
TEXT is made of single-token words, checked to be ``--tokens`` tokens long.

``--profile``: also one in-process run under tracemalloc, through the steps ``attn inspect -f json``
takes, printing after each the peak resident memory so far, the memory resident now, and what NumPy
and Python allocated (held now, and the most held during the step), with the bytes of the arrays a
run keeps (``Model.run_bytes``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

from model import cold

HERE = Path(__file__).resolve().parent
TOKENIZER = HERE.parent / "tests" / "models" / "tiny-qwen2" / "tokenizer.json"
MB = 10**6  # the MB; MiB are printed beside
MARGIN = 600 * MB  # the target: the peak at most the weights' file size plus this
# glibc's malloc raises its mmap threshold (up to 32 MiB) when a mapped block is freed, so that later
# arrays of a layer's size come from its heap, which keeps freed memory resident; fixed, every array
# over 128 KiB is mapped and unmapped when freed: the peak then shows what the run holds
MMAP_FIXED = "MALLOC_MMAP_THRESHOLD_=131072"

CONFIGS = {  # config.json of each real checkpoint, as the Hub has it (weights bfloat16, tied embeddings)
    "qwen2.5-1.5b": {  # Qwen/Qwen2.5-1.5B
        "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "hidden_size": 1536, "intermediate_size": 8960,
        "num_hidden_layers": 28, "num_attention_heads": 12, "num_key_value_heads": 2, "vocab_size": 151936,
        "max_position_embeddings": 131072, "rope_theta": 1000000.0, "rms_norm_eps": 1e-6, "hidden_act": "silu",
        "tie_word_embeddings": True, "use_sliding_window": False, "sliding_window": 131072, "max_window_layers": 28,
        "bos_token_id": 151643, "eos_token_id": 151643, "initializer_range": 0.02,
    },
    "smollm2-1.7b": {  # HuggingFaceTB/SmolLM2-1.7B
        "model_type": "llama", "architectures": ["LlamaForCausalLM"], "hidden_size": 2048, "intermediate_size": 8192,
        "num_hidden_layers": 24, "num_attention_heads": 32, "num_key_value_heads": 32, "vocab_size": 49152,
        "max_position_embeddings": 8192, "rope_theta": 130000.0, "rms_norm_eps": 1e-5, "hidden_act": "silu",
        "tie_word_embeddings": True, "bos_token_id": 0, "eos_token_id": 0, "initializer_range": 0.02,
    },
}

PROFILE = """
import os, resource, sys, time, tracemalloc
tracemalloc.start()
import numpy as np
from attnviz_cli.models import load_model
from attnviz_cli.models import model as M
from attnviz_cli.models.pipeline import ModelShow, inspect_run
from attnviz_cli.cli.model_runs import model_json

folder, text = sys.argv[1], sys.argv[2]
MiB, start = 2**20, time.perf_counter()

def mark(step):
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.reset_peak()
    resident = int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    print(f"  {step:<52} {time.perf_counter() - start:6.1f} s  peak {resident_peak():6.0f}  now {resident / MiB:6.0f}"
          f"  allocated {current / MiB:6.0f} (at most {peak / MiB:6.0f})", flush=True)

def resident_peak():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

forward = M.Model.forward
def marked_forward(self, *args, **kwargs):
    done = forward(self, *args, **kwargs)
    mark("forward: each layer's arrays held, unstacked")
    return done
M.Model.forward = marked_forward

print("  step (MiB)", flush=True)
mark("imports")
model = load_model(folder)
mark("load_model (layers left in the files)")
layer = model.params["blocks"][0]
mark("one layer's weights read (and held) in float32")
held = sum(v.nbytes for part in layer.values() if isinstance(part, dict) for v in part.values() if isinstance(v, np.ndarray))
del layer
run = model.run(text)
mark(f"run: stacked into a ModelRun ({len(run.tokens)} tokens)")
result = inspect_run(run, model.config, text, ModelShow())
mark("inspect_run: every head's patterns")
data = model_json(result, ("tokens", "heads.patterns"), pretty=True)
mark(f"-f json --fields tokens,heads.patterns: {len(data) / MiB:.1f} MiB")
del data
data = model_json(result, (), pretty=True)
mark(f"-f json, the whole record: {len(data) / MiB:.0f} MiB")
del data
data = model_json(result, (), pretty=False)
mark(f"the same record compact (-f jsonl): {len(data) / MiB:.0f} MiB")
print(f"  one layer's weights in float32: {held / MiB:.0f} MiB; the arrays a run keeps (Model.run_bytes): {model.run_bytes(len(run.tokens)) / MiB:.0f} MiB")
print("  of which (L, h, T, T) scores and weights:", f"{(run.scores.nbytes + run.attentions.nbytes) / MiB:.0f} MiB;",
      "queries, keys, values, head outputs:", f"{(run.queries.nbytes + run.keys.nbytes + run.values.nbytes + run.head_outputs.nbytes) / MiB:.0f} MiB;",
      "hidden states:", f"{run.hidden_states.nbytes / MiB:.0f} MiB")
"""


def make(folder: Path, name: str, shard_size: str) -> None:
    """A model with ``name``'s config and random bfloat16 weights, saved in ``folder``, with a tokenizer."""
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    fields = CONFIGS[name]
    vocab = json.loads(TOKENIZER.read_text(encoding="utf-8"))["model"]["vocab"]
    assert len(vocab) <= fields["vocab_size"], "the tokenizer's ids must be valid in the model"
    torch.manual_seed(0)
    config = AutoConfig.for_model(**fields)
    model = AutoModelForCausalLM.from_config(config, torch_dtype=torch.bfloat16)
    model.save_pretrained(folder, max_shard_size=shard_size, safe_serialization=True)
    shutil.copyfile(TOKENIZER, folder / "tokenizer.json")


def text_of(folder: Path, tokens: int) -> str:
    """A text of ``tokens`` tokens by the folder's tokenizer: its whole-word tokens in turn."""
    from tokenizers import Tokenizer

    tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
    words = sorted(w[1:] for w in tokenizer.get_vocab() if w.startswith("Ġ") and w[1:].isalpha())
    words = [w for w in words if len(tokenizer.encode(" " + w).ids) == 1 and len(tokenizer.encode(w).ids) == 1]
    text = " ".join(words[i % len(words)] for i in range(tokens))
    got = len(tokenizer.encode(text).ids)
    if got != tokens:
        sys.exit(f"the text has {got} tokens, not {tokens}")
    return text


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="where the model is (made there first if it has no config.json)")
    parser.add_argument("--model", choices=sorted(CONFIGS), default="qwen2.5-1.5b", help="whose config to make")
    parser.add_argument("--shard-size", default="2GB", help="save_pretrained's max_shard_size")
    parser.add_argument("--tokens", type=int, default=512)
    parser.add_argument("--runs", type=int, default=1, help="fresh processes per command (0: none)")
    parser.add_argument("--profile", action="store_true", help="also one run, step by step, under tracemalloc")
    args = parser.parse_args()
    folder = args.folder.resolve()
    if not (folder / "config.json").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        print(f"making {args.model} in {folder} ...", flush=True)
        # in a process of its own: a child's ru_maxrss starts at its parent's resident memory when it
        # forks (Linux keeps it across exec), and making the model holds 4 GB
        code = f"from big_model import make; from pathlib import Path; make(Path({str(folder)!r}), {args.model!r}, {args.shard_size!r})"
        subprocess.run([sys.executable, "-c", code], cwd=HERE, check=True)
    shards = sorted(folder.glob("*.safetensors"))
    size = sum(path.stat().st_size for path in shards)
    config = json.loads((folder / "config.json").read_text(encoding="utf-8"))
    print(
        f"{folder}: {config['model_type']}, {config['num_hidden_layers']} layers x {config['num_attention_heads']} heads "
        f"({config['num_key_value_heads']} kv), d_model {config['hidden_size']}; weights {size / MB:,.0f} MB "
        f"({size / 2**20:,.0f} MiB) in {len(shards)} file{'s' if len(shards) > 1 else ''}; target peak <= {(size + MARGIN) / MB:,.0f} MB"
    )
    text = text_of(folder, args.tokens)
    attn = shutil.which("attn") or sys.exit("attn is not on PATH: pip install -e . first")
    api = f"from attnviz_cli.models import load_model; run = load_model({str(folder)!r}).run({text!r}); assert len(run.tokens) == {args.tokens}"
    rows = {
        "python, attnviz's model code imported": [sys.executable, "-c", "import attnviz_cli.models.model, tokenizers, safetensors"],
        "load_model(FOLDER).run(text)": [sys.executable, "-c", api],
        f"the same, {MMAP_FIXED}": ["env", MMAP_FIXED, sys.executable, "-c", api],
        "attn inspect -f json --fields tokens,heads.patterns": [attn, "inspect", text, "--model", str(folder), "-f", "json", "--fields", "tokens,heads.patterns"],
        "attn inspect -f json (the whole record)": [attn, "inspect", text, "--model", str(folder), "-f", "json"],
    }
    if args.runs:
        print(f"{args.tokens} tokens, each in a fresh process, {args.runs} run{'s' if args.runs > 1 else ''} each in turn: wall time, peak RSS, peak minus the file size")
        runs: dict[str, list[tuple[float, float]]] = {name: [] for name in rows}
        for _ in range(args.runs):
            for name, argv in rows.items():
                runs[name].append(cold(argv))
        for name, done in runs.items():
            seconds, peak = min(r[0] for r in done), max(r[1] for r in done) * 2**20
            verdict = "" if name.startswith("python,") else ("   meets the target" if peak - size <= MARGIN else "   over the target")
            print(f"  {name:<52} {seconds:6.1f} s {peak / MB:7,.0f} MB  {(peak - size) / MB:+7,.0f} MB{verdict}")
    if args.profile:
        print(f"in one process, under tracemalloc (slower), the steps of attn inspect -f json, {args.tokens} tokens:")
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        subprocess.run([sys.executable, "-c", PROFILE, str(folder), text], check=True, env=env)


if __name__ == "__main__":
    main()

"""Real pretrained transformers, their forward pass in NumPy: BERT-family and GPT-2 models, and the
decoder LLMs (Llama, Mistral, Qwen2/3, Gemma 2/3, Phi-3, OLMo 2), from a folder in the Hugging Face layout
(config.json, model.safetensors or its shards, tokenizer.json) or a GGUF file (a path, ``ollama:NAME``,
``lmstudio:PUBLISHER/MODEL``).

    >>> from attnviz_cli.models import load_model                      # doctest: +SKIP
    >>> run = load_model("path/to/all-MiniLM-L6-v2").run("I sat on the river bank")
    >>> run.tokens, run.attentions.shape, run.hidden_states.shape       # (L, h, T, T), (L + 1, T, d)

Each architecture is a page (bert.py, distilbert.py, gpt2.py, llama.py, gemma.py, phi3.py, olmo2.py): its checkpoint's names mapped once to
plain parameter dicts, and its forward pass in a few lines of the pieces in layers.py, gathered in an
:class:`~.architecture.Architecture` record that model.py registers and runs, layer by layer. safetensors,
tokenizers and huggingface_hub are imported in this package only (inside the functions that need them),
so no other command pays for them.
"""

from __future__ import annotations

from .model import Model, ModelConfig, ModelRun, load_model

__all__ = ["Model", "ModelConfig", "ModelRun", "load_model"]

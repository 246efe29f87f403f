"""``attn generate``: a decoder continues a prompt, a token at a time, and shows where each new token looked."""

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Optional

import typer

from . import reporting_errors
from .options import Dtype, DtypeOption, RevisionOption, named_model
from .output import check_saves, out, saved, say, stdin_binary

EXAMPLES = """\
Examples:

\b
  attn generate "The capital of France is" --model $SMOLLM2
  attn generate "Tell me a joke" --model $SMOLLM2 --chat --max-new-tokens 40
  attn generate "The old man fixed his nets while" --model M --layer 20 --skip-first
  attn generate "Once upon a time" --model M --temperature 0.8 --top-k 40 --seed 3
  attn generate "Once upon a time" --model M -f jsonl | jq -c '[.text, .looked[0]]'
  attn generate "Once upon a time" --model M --save story.html
"""

PROMPT_BYTES = 1 << 20  # a prompt read from stdin: at most this much


class GenerateFormat(StrEnum):
    table = "table"
    jsonl = "jsonl"
    json = "json"


def add_to(app: typer.Typer) -> None:
    app.command(epilog=EXAMPLES)(generate)


def generate(
    prompt: Annotated[str, typer.Argument(metavar="PROMPT", help="The text to continue, or - to read it from stdin.")],
    model: Annotated[str, typer.Option("--model", help="A decoder (Llama, Mistral, Qwen2/3, Gemma 2/3, Phi-3, OLMo 2, GPT-2): a folder, a Hub id in the Hugging Face cache, a .gguf file, ollama:NAME[:TAG] or lmstudio:PUBLISHER/MODEL.", show_default=False, callback=named_model)],
    max_new_tokens: Annotated[int, typer.Option("--max-new-tokens", min=1, max=100_000, help="Stop after this many new tokens (or at the model's end-of-text token, or its last position).")] = 20,
    temperature: Annotated[float, typer.Option("--temperature", min=0.0, max=100.0, help="0: greedy, the most likely token each time (as transformers' do_sample=False); above 0: draw from softmax(logits / T).")] = 0.0,
    top_k: Annotated[Optional[int], typer.Option("--top-k", min=1, help="Draw only among the K most likely tokens (with --temperature; alone, it samples at temperature 1).", show_default=False)] = None,
    seed: Annotated[int, typer.Option("--seed", min=0, max=2**63 - 1, help="Seed of the draws (NumPy's default_rng): the same seed, the same text.")] = 0,
    chat: Annotated[bool, typer.Option("--chat", help="Wrap PROMPT in the model's chat template (tokenizer_config.json's chat_template, or a GGUF file's tokenizer.chat_template) as a user's message, as transformers' apply_chat_template does.")] = False,
    layer: Annotated[Optional[int], typer.Option("--layer", min=0, help="Where each token looked in this layer alone (0-based); the mean over every layer when left out. JSON keeps just this layer.", show_default=False)] = None,
    head: Annotated[Optional[int], typer.Option("--head", min=0, help="Where each token looked in this head alone (0-based), of each layer or of --layer; the mean over every head when left out. JSON keeps just this head.", show_default=False)] = None,
    skip_first: Annotated[bool, typer.Option("--skip-first", help="Leave the first token out of the ranking of where each token looked: many heads park their weight on it whatever it is (an attention sink).")] = False,
    fmt: Annotated[GenerateFormat, typer.Option("--format", "-f", help="table (a line per token as it comes, for people), jsonl (a record per token as it comes) or json (the whole run).")] = GenerateFormat.table,
    save: Annotated[Optional[Path], typer.Option("--save", metavar="FILE.html", help="Also write a self-contained page: the text, each new token clickable to show what it looked at.", show_default=False)] = None,
    revision: RevisionOption = None,
    dtype: DtypeOption = Dtype.float32,
) -> None:
    """Continue PROMPT with a decoder, greedily by default, keeping each layer's keys and values
    between tokens; show each new token as it comes and the earlier tokens it attended to most."""
    saves = check_saves([save] if save is not None else None, ("html",))
    with reporting_errors():
        import numpy as np

        from ..models import load_model
        from ..models.generate import GREEDY, Sampling, generate_text
        from ..models.pipeline import said
        from ..render_generate import View, header_lines, run_record, token_line, token_record

        text = prompt_text = said(read_prompt() if prompt == "-" else prompt)  # valid UTF-8, not blank: as inspect's text
        loaded = load_model(model, dtype=dtype.value, revision=revision, keep=True)  # every step runs every layer: read once
        config = loaded.config
        for name, value, count in (("--layer", layer, config.layers), ("--head", head, config.heads)):
            if value is not None and value >= count:
                raise typer.BadParameter(f"{value} is past the model's {count} (0 to {count - 1})", param_hint=name)
        if chat:
            from ..models.chat import chat_prompt

            text = chat_prompt(loaded, text)
        ids, pieces, labels = prompt_tokens(loaded, text, chat)
        sampling = GREEDY if temperature == 0 and top_k is None else Sampling(temperature or 1.0, top_k, np.random.default_rng(seed))
        view = View(layer, head, skip_first)
        if fmt is GenerateFormat.table:
            out(header_lines(labels, config, view).encode())
        records, texts = [], []
        stopped = None  # the last token's reason (generate makes at least one)
        for new in generate_text(loaded, ids, max_new_tokens, sampling):
            texts.append(new.text)
            labels.append(new.text or new.token)  # a token that ends inside a character: its piece
            if fmt is GenerateFormat.table:
                out(token_line(new, labels, view, last=len(ids) + max_new_tokens - 2).encode())
                if saves:
                    records.append(token_record(new, labels, config, view, loaded.tokenizer))
            else:
                record = token_record(new, labels, config, view, loaded.tokenizer)
                if fmt is GenerateFormat.jsonl:
                    from ..render_json import dumps

                    out(dumps(record))
                records.append(record)
            stopped = new.step.stopped
        notes = {"eos": "stopped at the model's end-of-text token", "max_positions": f"stopped at the model's last position ({config.max_positions})"}
        if stopped in notes:
            say(notes[stopped])
        settings = {"max_new_tokens": max_new_tokens, "temperature": sampling.temperature, "top_k": top_k,
                    "seed": None if sampling is GREEDY else seed, "chat": chat, "layer": layer, "head": head, "skip_first": skip_first}
        record = run_record(text, ids, pieces, records, stopped, config, settings) if fmt is GenerateFormat.json or saves else {}
        if fmt is GenerateFormat.json:
            from ..render_json import dumps

            out(dumps(record, pretty=True))
        elif fmt is GenerateFormat.table:
            from ..render_generate import text_line

            made = "".join(texts)
            out(text_line(made if chat else prompt_text + made).encode())
        if saves:
            from ..render_generate_html import generate_page

            def write(path: Path) -> None:
                path.write_text(generate_page(record, labels), encoding="utf-8")

            saved(saves, write)


def read_prompt() -> str:
    """All of stdin, up to PROMPT_BYTES, spaces around it stripped; a byte that is not UTF-8 kept as a lone
    surrogate, as argv keeps it, for :func:`~attnviz_cli.errors.valid_text` to replace."""
    from ..errors import AttnvizError

    data = stdin_binary("the prompt", "PROMPT").read(PROMPT_BYTES + 1)
    if len(data) > PROMPT_BYTES:
        raise AttnvizError(f"the prompt on stdin is over {PROMPT_BYTES >> 20} MiB")
    return data.decode("utf-8", errors="surrogateescape").strip()


def prompt_tokens(model, text: str, chat: bool) -> tuple[list[int], list[str], list[str]]:
    """The prompt's ids (the tokenizer's special tokens added, as transformers' tokenizer(text) adds
    them; none with --chat, whose template writes its own), its tokens (the tokenizer's pieces) and
    each token's text for people: its characters of the prompt, or its piece for a special token."""
    from ..errors import AttnvizError

    encoding = model.tokenizer.encode(text, add_special_tokens=not chat)
    if not encoding.ids:
        raise AttnvizError("the prompt gives no tokens")
    labels = [text[start:end] if end > start else token for (start, end), token in zip(encoding.offsets, encoding.tokens, strict=True)]
    return list(encoding.ids), list(encoding.tokens), labels

"""A chat model's prompt: the user's text wrapped in the model's chat template, rendered as transformers'
``apply_chat_template`` renders it (utils/chat_template_utils.py): Jinja2's ImmutableSandboxedEnvironment
with trim_blocks and lstrip_blocks, its ``tojson`` filter (no HTML escaping), ``raise_exception`` and
``strftime_now``, given ``messages``, ``add_generation_prompt=True`` and the special tokens' texts.

The template comes from the model's folder (chat_template.jinja, else tokenizer_config.json's
``chat_template``) or from a GGUF file's ``tokenizer.chat_template``. A template is code from the model's
author: the sandbox keeps it from Python's internals, and a render that runs past RENDER_SECONDS is stopped.
"""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..errors import AttnvizError, quoted
from ..small_files import read_json, read_text

if TYPE_CHECKING:
    from .model import Model

CONFIG_BYTES = 16 * 2**20  # tokenizer_config.json is read up to this size (its added tokens can make it a few MB)
TEMPLATE_BYTES = 2**20  # a chat template up to this size (they are a few KB)
RENDER_SECONDS = 10  # a render that takes longer is stopped (a template can loop)
PRODUCT_SIZE = 2**20  # a template's * or ** makes at most this many characters, items or bits (a prompt's text is at most 1 MiB)
SPECIAL = ("bos_token", "eos_token", "unk_token", "pad_token")  # the special tokens' texts a template is given
GGUF_IDS = {"bos_token": "bos", "eos_token": "eos", "unk_token": "unknown", "pad_token": "padding"}  # their ids' keys in a GGUF file


def chat_prompt(model: Model, text: str) -> str:
    """``text`` as a user's message in ``model``'s chat template, with the prompt for the assistant's reply."""
    template, special = chat_template(model)
    return render(template, [{"role": "user", "content": text}], special, model.config.name)


def render(template: str, messages: list[dict[str, Any]], special: dict[str, str], name: str) -> str:
    """``template`` rendered as transformers renders it; its errors (a syntax error, ``raise_exception``,
    what the sandbox refuses) are one line naming the model."""
    import jinja2
    import jinja2.ext
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None, sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(format: str) -> str:
        return datetime.now().strftime(format)

    class Bounded(ImmutableSandboxedEnvironment):
        intercepted_binops = frozenset({"*", "**"})  # the products that can make a huge string or number in one step

        def call_binop(self, context: Any, operator: str, left: Any, right: Any) -> Any:
            if (size := product_size(operator, left, right)) > PRODUCT_SIZE:
                raise OverflowError(f"a product of {size:,} characters, items or bits, over {PRODUCT_SIZE:,}")
            return super().call_binop(context, operator, left, right)

    try:
        environment = Bounded(trim_blocks=True, lstrip_blocks=True, extensions=[jinja2.ext.loopcontrols])
        environment.filters["tojson"] = tojson
        environment.globals |= {"raise_exception": raise_exception, "strftime_now": strftime_now}
        with time_limit(RENDER_SECONDS):
            return environment.from_string(template).render(messages=messages, tools=None, documents=None, add_generation_prompt=True, **special)
    except (jinja2.TemplateError, TypeError, ValueError, AttributeError, LookupError, ArithmeticError, RecursionError, TimeoutError,
            MemoryError) as error:  # ArithmeticError: an OverflowError too, Bounded's among them
        message = str(error).splitlines()[0] if str(error) else type(error).__name__
        raise AttnvizError(f"the chat template of {quoted(name)} fails: {quoted(message)}") from None


def product_size(operator: str, left: Any, right: Any) -> int:
    """How big ``left * right`` or ``left ** right`` would be, before it is made: the characters or items
    of a repeated string or list, the bits of an integer; 0 for the others (floats overflow by themselves)."""
    if operator == "*":
        for sequence, times in ((left, right), (right, left)):
            if isinstance(sequence, (str, list, tuple)) and isinstance(times, int):
                return len(sequence) * max(times, 0)
        if isinstance(left, int) and isinstance(right, int):
            return left.bit_length() + right.bit_length()
    elif operator == "**" and isinstance(left, int) and isinstance(right, int) and right > 0:
        return (abs(left).bit_length() - 1) * right + 1
    return 0


@contextmanager
def time_limit(seconds: int) -> Iterator[None]:
    """A TimeoutError in the ``with`` after ``seconds`` (on the main thread, where Unix signals arrive;
    elsewhere, no limit)."""
    if not hasattr(signal, "SIGALRM") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(*_: Any) -> None:
        raise TimeoutError(f"its render ran past {seconds} s")

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def chat_template(model: Model) -> tuple[str, dict[str, str]]:
    """``model``'s chat template and the special tokens' texts it is given; an error if it has none."""
    source = Path(model.folder)
    if source.is_file():  # a GGUF file
        from .gguf_file import open_gguf

        metadata = open_gguf(source).metadata
        template = metadata.get("tokenizer.chat_template")
        ids = {key: metadata.get(f"tokenizer.ggml.{name}_token_id") for key, name in GGUF_IDS.items()}
        special = {key: model.tokenizer.id_to_token(i) for key, i in ids.items() if isinstance(i, int)}
    else:
        config = tokenizer_config(source / "tokenizer_config.json")
        template = config.get("chat_template")
        jinja = source / "chat_template.jinja"
        if jinja.is_file():  # where transformers 4.50 and later save it
            template = read_text(jinja, TEMPLATE_BYTES, "chat template")
        special = {key: token for key in SPECIAL if (token := token_text(config.get(key))) is not None}
    if isinstance(template, list):  # named templates: [{"name": "default", "template": ...}, ...]
        named = {t.get("name"): t.get("template") for t in template if isinstance(t, dict)}
        template = named.get("default")
    if not isinstance(template, str) or not template.strip():
        raise AttnvizError(f"model {quoted(model.config.name)} has no chat template (tokenizer_config.json's chat_template, or a GGUF file's tokenizer.chat_template); leave out --chat")
    if len(template.encode("utf-8", "surrogatepass")) > TEMPLATE_BYTES:
        raise AttnvizError(f"the chat template of {quoted(model.config.name)} is over {TEMPLATE_BYTES >> 20} MiB")
    return template, {k: v for k, v in special.items() if v}


def token_text(value: Any) -> str | None:
    """A special token as tokenizer_config.json gives it: its text, or an AddedToken's ``content``."""
    if isinstance(value, dict):
        value = value.get("content")
    return value if isinstance(value, str) else None


def tokenizer_config(path: Path) -> dict[str, Any]:
    """A model folder's tokenizer_config.json, read as every small file is (a regular file, up to
    CONFIG_BYTES, JSON of bounded depth); {} if there is none."""
    if not path.exists():
        return {}
    raw = read_json(path, CONFIG_BYTES, "tokenizer_config.json")
    return raw if isinstance(raw, dict) else {}

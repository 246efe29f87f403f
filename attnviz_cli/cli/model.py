"""``attn model``: list, describe and download the real transformers --model runs."""

from typing import Annotated, Optional

import typer

from ..errors import printable
from . import reporting_errors
from .options import ReportFormat, ReportFormatOption, RevisionOption, named_model
from .output import report, say

EXAMPLES = """\
Examples:

\b
  attn model list
  attn model info sentence-transformers/all-MiniLM-L6-v2
  attn model download sentence-transformers/all-MiniLM-L6-v2
  attn inspect "I sat on the river bank" --model sentence-transformers/all-MiniLM-L6-v2 --focus bank
"""

model_app = typer.Typer(
    help="List, describe and download the real transformers --model runs (BERT, RoBERTa, DistilBERT, GPT-2).",
    epilog=EXAMPLES, no_args_is_help=True, rich_markup_mode=None,
)


def add_to(app: typer.Typer) -> None:
    app.add_typer(model_app, name="model")


@model_app.command("list", epilog=EXAMPLES)
def model_list(fmt: ReportFormatOption = ReportFormat.table) -> None:
    """The models of the Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub),
    the GGUF models of Ollama's store ($OLLAMA_MODELS or ~/.ollama/models) and of LM Studio's models
    folder (~/.lmstudio/models, or where its settings moved it), and whether --model can run each. Offline."""
    with reporting_errors():
        from ..models.catalog import cached_models, gguf_entries
        from ..models.model import hub_cache
        from ..models.stores import lmstudio_store, ollama_store
        from ..render_model_json import model_list_record

        found = cached_models() + gguf_entries()
        stores = {"ollama": str(ollama_store()), "lmstudio": str(lmstudio_store())}
        report(model_list_record(found), lambda: _table().model_list_table(found, str(hub_cache()), stores), fmt)


@model_app.command("info", epilog=EXAMPLES)
def model_info(
    spec: Annotated[str, typer.Argument(metavar="MODEL", help="A model folder, or a Hub id (name or org/name) in the Hugging Face cache.", callback=named_model)],
    revision: RevisionOption = None,
    fmt: ReportFormatOption = ReportFormat.table,
) -> None:
    """Architecture, layers and heads, widths, positions, parameters, size and tokenizer, from the files."""
    with reporting_errors():
        from ..models.catalog import describe_model
        from ..render_model_json import model_info_record

        info = describe_model(spec, revision)
        report(model_info_record(info), lambda: _table().model_info_table(info), fmt)


def _table():
    """The tables of models, imported only for a table (they import Rich)."""
    from .. import render_model_table

    return render_model_table


@model_app.command("download", epilog=EXAMPLES)
def model_download(
    repo_id: Annotated[str, typer.Argument(metavar="ID", help="A Hub id: name or org/name.")],
    revision: Annotated[Optional[str], typer.Option("--revision", help="A branch, tag or commit hash; main when left out. Later runs name it with --revision too.", show_default=False)] = None,
) -> None:
    """Fetch a model's config.json, model.safetensors and tokenizer.json into the Hugging Face cache
    (the only command of attn that uses the network); later runs find it offline by its id."""
    with reporting_errors():
        from ..models.catalog import check_repo_id, download_model

        check_repo_id(repo_id)
        say(f"downloading {printable(repo_id)} (config.json, model.safetensors, tokenizer.json)")
        folder = download_model(repo_id, revision)
        at = "" if revision is None else f" --revision {printable(revision)}"
        say(f"ready: --model {printable(repo_id)}{at} ({printable(str(folder))})")

"""``attn schema``: the JSON Schemas of attnviz's JSON output."""

from pathlib import Path
from typing import Annotated, Optional

import typer

from . import reporting_errors
from .output import out

SCHEMAS = {
    "inspect": "inspect-1.schema.json", "compare": "compare-1.schema.json", "error": "error-1.schema.json",
    "vectors": "vectors-1.schema.json", "model": "model-1.schema.json", "model-compare": "model-compare-1.schema.json",
    "models": "models-1.schema.json", "heads": "heads-1.schema.json", "generate": "generate-1.schema.json",
}


def add_to(app: typer.Typer) -> None:
    app.command()(schema)


def schema(
    name: Annotated[Optional[str], typer.Argument(metavar="NAME", help="inspect, compare, error, vectors, model, model-compare, models, heads or generate; all of them when left out.", show_default=False)] = None,
) -> None:
    """Print the JSON Schema of attnviz's JSON output: one by name, or all keyed by their schema id."""
    import json

    folder = Path(__file__).resolve().parent.parent / "schemas"
    if name is not None and name not in SCHEMAS:
        raise typer.BadParameter(f"no schema {name!r}; choose from {', '.join(SCHEMAS)}", param_hint="NAME")
    chosen = [name] if name else list(SCHEMAS)
    loaded = {n: json.loads((folder / SCHEMAS[n]).read_text(encoding="utf-8")) for n in chosen}
    document = loaded[name] if name else {schema["title"]: schema for schema in loaded.values()}
    with reporting_errors():
        out((json.dumps(document, indent=2, ensure_ascii=False) + "\n").encode())

"""``python -m attnviz_cli`` runs the ``attn`` command."""

from .cli import app

app(prog_name="attn")

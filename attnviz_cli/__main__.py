"""``python -m attnviz_cli`` runs the ``attn`` command."""

from .main import main

main()

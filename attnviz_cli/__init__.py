"""attnviz: see self-attention over real word embeddings, in a terminal or as JSON.

The public names are loaded when first used, so that ``attn`` (see :mod:`attnviz_cli.main`) can set
up its process before NumPy is imported.
"""

from __future__ import annotations

TYPE_CHECKING = False  # typing.TYPE_CHECKING without importing typing: `attn` reaches its own
# Ctrl-C handling sooner (see main.py), and a package import costs nothing
if TYPE_CHECKING:
    from typing import Any

    from .attention_types import Attention
    from .core import AttentionInputError, causal_mask, self_attention, softmax

__version__ = "0.1.0"  # the package's version (pyproject.toml reads it from here)
__all__ = ["Attention", "AttentionInputError", "__version__", "causal_mask", "self_attention", "softmax"]
_FROM_CORE = ("AttentionInputError", "causal_mask", "self_attention", "softmax")


def __getattr__(name: str) -> Any:
    """The public names, imported when first asked for."""
    if name in _FROM_CORE:
        from . import core

        return getattr(core, name)
    if name == "Attention":
        from .attention_types import Attention

        return Attention
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

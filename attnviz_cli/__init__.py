"""attnviz: see self-attention over real word embeddings, in a terminal or as JSON.

The public names are loaded when first used, so that ``attn`` (see :mod:`attnviz_cli.main`) can set
up its process before NumPy is imported.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .core import AttentionInputError, causal_mask, self_attention, softmax
    from .results import Attention

__all__ = ["Attention", "AttentionInputError", "__version__", "causal_mask", "self_attention", "softmax"]
_FROM_CORE = ("AttentionInputError", "causal_mask", "self_attention", "softmax")


def __getattr__(name: str) -> Any:
    """The public names, imported when first asked for; ``__version__`` from the installed package's
    metadata (lazily too: importlib.metadata costs ~35 ms, a fifth of a cold start of ``attn``)."""
    if name in _FROM_CORE:
        from . import core

        return getattr(core, name)
    if name == "Attention":
        from .results import Attention

        return Attention
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("attnviz-cli")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"

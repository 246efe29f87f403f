"""attnviz: see self-attention over real word embeddings, in a terminal or as JSON."""

from .core import AttentionInputError, causal_mask, self_attention, softmax
from .results import Attention

__all__ = ["Attention", "AttentionInputError", "__version__", "causal_mask", "self_attention", "softmax"]


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed package's metadata when first asked for.

    Lazily, because importlib.metadata costs ~35 ms, a fifth of a cold start of ``attn``.
    """
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("attnviz-cli")
    except PackageNotFoundError:  # a source tree that was never installed
        return "0+unknown"

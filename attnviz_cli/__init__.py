"""attnviz: see self-attention over real word embeddings, in a terminal or as JSON."""

from importlib.metadata import PackageNotFoundError, version

from .core import AttentionInputError, causal_mask, self_attention, softmax
from .results import Attention

try:
    __version__ = version("attnviz-cli")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

__all__ = ["Attention", "AttentionInputError", "__version__", "causal_mask", "self_attention", "softmax"]

"""A model's tensors from ``model.safetensors``: read by Hugging Face's safetensors (no pickle), in the
dtype the forward pass runs in, each converted once, when first used."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..errors import AttnvizError, quoted


class Weights:
    """Tensors by their Hugging Face names, with the name ``prefix`` of the base model ("bert.",
    "roberta.", "transformer." or "") found once, so the forward passes can use bare names."""

    def __init__(self, path: Path, dtype: np.dtype, prefixes: tuple[str, ...], marker: str) -> None:
        from safetensors import SafetensorError, safe_open

        self.path, self.dtype = path, np.dtype(dtype)
        try:
            self._file = safe_open(str(path), framework="numpy")
            self.names = set(self._file.keys())
        except (SafetensorError, OSError, ValueError) as error:
            raise AttnvizError(f"model weights {quoted(str(path))} cannot be read: {error}") from error
        found = [p for p in prefixes if p + marker in self.names]
        if not found:
            raise AttnvizError(f"model weights {quoted(str(path))} have no {marker!r}: not the architecture config.json names")
        self.prefix = found[0]
        self._cache: dict[str, np.ndarray] = {}

    def __getitem__(self, name: str) -> np.ndarray:
        if name not in self._cache:
            if name not in self.names:
                raise AttnvizError(f"model weights {quoted(str(self.path))} lack {name!r}")
            from safetensors import SafetensorError

            try:
                tensor = self._file.get_tensor(name)
            except (SafetensorError, OSError, ValueError) as error:
                raise AttnvizError(f"model weights {quoted(str(self.path))}: {name!r} cannot be read: {error}") from error
            array = np.asarray(tensor, dtype=self.dtype)
            if not np.isfinite(array).all():
                raise AttnvizError(f"model weights {quoted(str(self.path))}: {name!r} holds NaN or infinite values")
            self._cache[name] = array
        return self._cache[name]

    def linear(self, name: str) -> np.ndarray:
        """A Linear layer's weight as (in, out), to apply as x @ W (PyTorch stores it (out, in))."""
        return self[name + ".weight"].T

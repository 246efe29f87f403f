"""``--save``: an inspection written to a file, by the file's extension, whole or not at all."""

from __future__ import annotations

import os
from pathlib import Path

from .errors import AttnvizError, quoted
from .results import Inspection

SAVE_FORMATS = ("svg", "png", "pdf", "html")


def check_save_path(path: Path) -> str | None:
    """Why ``path`` cannot be saved to (an extension we do not write, a folder), or None."""
    if path.suffix.lower().lstrip(".") not in SAVE_FORMATS:
        return f"{str(path)!r} has no extension of {', '.join('.' + f for f in SAVE_FORMATS)}"
    if path.is_dir():
        return f"{str(path)!r} is a directory"
    return None


def save(inspection: Inspection, path: Path, dpi: int = 200) -> None:
    """Write ``path`` whole or not at all: into a hidden file beside it, then renamed into place."""
    staging = path.with_name(f".{path.name}.partial-{os.getpid()}")
    fmt = path.suffix.lower().lstrip(".")
    try:
        if fmt == "html":
            from .render_html import inspection_html

            staging.write_text(inspection_html(inspection), encoding="utf-8")
        else:
            from .render_figure import save_figure

            save_figure(inspection, staging, dpi=dpi, fmt=fmt)
        os.replace(staging, path)
    except OSError as error:
        raise AttnvizError(f"cannot write {quoted(str(path))}: {error.strerror or error}") from error
    finally:
        staging.unlink(missing_ok=True)

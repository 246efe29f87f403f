"""``--save``: an inspection written to a file, by the file's extension, whole or not at all."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import AttnvizError, quoted, usable_path
from .results import Inspection

if TYPE_CHECKING:  # the model code is imported by the commands that run a model, not here
    from .models import ModelConfig
    from .models.pipeline import ModelInspection
    from .models.words import WordComparison

SAVE_FORMATS = ("svg", "png", "pdf", "html")


FIGURE_FORMATS = ("svg", "png", "pdf")


def check_save_path(path: Path, formats: tuple[str, ...] = SAVE_FORMATS) -> str | None:
    """Why ``path`` cannot be saved to (an extension of none of ``formats``, a folder, a name the file
    system refuses), or None."""
    if path.suffix.lower().lstrip(".") not in formats:
        return f"{quoted(str(path))} has no extension of {', '.join('.' + f for f in formats)}"
    try:
        usable_path(path, "file")
    except AttnvizError as error:
        return str(error)
    if path.is_dir():
        return f"{quoted(str(path))} is a directory"
    return None


PAGE_CELLS = 2_000_000  # heads x T x T in one page: about 40 MB of numbers, what a browser still opens briskly


def check_page_size(cells: int, what: str, advice: str) -> None:
    """Refuse a page of more than PAGE_CELLS weights: ``what`` it would show and ``advice`` are named."""
    if cells > PAGE_CELLS:
        raise AttnvizError(f"a page of {what} ({cells:,} cells) would be too large to open (at most {PAGE_CELLS:,}); {advice}")


def save(inspection: Inspection, path: Path, dpi: int = 200) -> None:
    """Write ``inspection`` to ``path``: a page (.html) or a figure, whole or not at all."""
    heads, T = inspection.attention.heads, len(inspection.tokens)
    if path.suffix.lower() == ".html":
        check_page_size(heads * T * T, f"{heads} heads x {T} x {T} weights", "use fewer --heads or tokens, or -f json --fields for the numbers")

    def write(staging: Path, fmt: str) -> None:
        if fmt == "html":
            from .render_html import inspection_html

            staging.write_text(inspection_html(inspection), encoding="utf-8")
        else:
            from .render_figure import save_figure

            save_figure(inspection, staging, dpi=dpi, fmt=fmt)

    write_whole(path, write)


def write_whole(path: Path, write: Callable[[Path, str], None]) -> None:
    """``write(staging, fmt)`` into a hidden file beside ``path``, then renamed into place: ``path`` is
    written whole or not at all. ``fmt`` is the extension, without its dot, in lower case."""
    staging = path.with_name(f".attnviz-{os.getpid()}.partial{path.suffix}")  # short, whatever the name
    try:
        write(staging, path.suffix.lower().lstrip("."))
        os.replace(staging, path)
    except OSError as error:
        raise AttnvizError(f"cannot write {quoted(str(path))}: {error.strerror or error}") from error
    finally:
        staging.unlink(missing_ok=True)


def save_model(result: ModelInspection, path: Path, dpi: int = 200) -> None:
    """Write every layer and head of a model run to ``path``: the model page (.html) or every head as a
    thumbnail (.svg/.png/.pdf), whole or not at all."""
    config = result.config
    if path.suffix.lower() == ".html":
        T = len(result.run.tokens)
        check_page_size(
            config.layers * config.heads * T * T, f"{config.layers} x {config.heads} heads over {T} tokens",
            "use --layer L for one layer's page, or a shorter text",
        )

    def write(staging: Path, fmt: str) -> None:
        if fmt == "html":
            from .render_model_html import model_page_html

            staging.write_text(model_page_html(result), encoding="utf-8")
        else:
            from .render_figure import save_model_figure

            save_model_figure(result, staging, dpi=dpi, fmt=fmt)

    write_whole(path, write)


def save_drift(comparison: WordComparison, config: ModelConfig, path: Path, dpi: int = 200) -> None:
    """Write the cosine of a word's two vectors, layer by layer, to ``path`` as a figure."""
    from .render_figure import save_drift_figure

    write_whole(path, lambda staging, fmt: save_drift_figure(comparison, config, staging, dpi=dpi, fmt=fmt))


def save_heads(record: dict, path: Path, dpi: int = 200) -> None:
    """Write a corpus's layer x head grid (an ``attnviz.heads/1`` record) to ``path``: a page (.html)
    or a figure (.svg/.png/.pdf), whole or not at all."""

    def write(staging: Path, fmt: str) -> None:
        if fmt == "html":
            from .render_heads_html import heads_page_html

            staging.write_text(heads_page_html(record), encoding="utf-8")
        else:
            from .render_figure import save_heads_figure

            save_heads_figure(record, staging, dpi=dpi, fmt=fmt)

    write_whole(path, write)

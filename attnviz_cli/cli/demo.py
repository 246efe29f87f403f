"""``attn demo``: a guided tour of static attention, or of a real model's (--model)."""

from typing import Annotated, Optional

import typer

from . import reporting_errors
from .options import DemoFormat, DemoFormatOption
from .output import out, show


def add_to(app: typer.Typer) -> None:
    app.command()(demo)


def demo(
    model: Annotated[Optional[str], typer.Option("--model", help="Tour a real transformer instead (a folder or a Hub id in the Hugging Face cache): 'bank' layer by layer, the head that reads 'river', every head at a glance.", show_default=False)] = None,
    fmt: DemoFormatOption = DemoFormat.table,
) -> None:
    """A guided tour: 'bank' in two contexts, a tiny example worked step by step, then several heads."""
    with reporting_errors():
        if model is not None:
            from ..demo import model_tour, model_tour_of
            from ..models import load_model

            computed = model_tour_of(load_model(model))
            if fmt is DemoFormat.markdown:
                from ..render_demo_markdown import model_tour_markdown

                out(model_tour_markdown(computed).encode())
                return
            show(lambda width: model_tour(computed, width=width))
            return
        from ..demo import tour, tour_of
        from ..loading import load

        stops = tour_of(load(None))
        if fmt is DemoFormat.markdown:
            from ..render_demo_markdown import tour_markdown

            out(tour_markdown(stops).encode())
            return
        show(lambda width: tour(stops, width=width))

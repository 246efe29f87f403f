"""``attn demo``: a guided tour of static attention, or of a real model's (--model)."""

from typing import Annotated, Optional

import typer

from . import reporting_errors
from .output import show


def add_to(app: typer.Typer) -> None:
    app.command()(demo)


def demo(
    model: Annotated[Optional[str], typer.Option("--model", help="Tour a real transformer instead (a folder or a Hub id in the Hugging Face cache): 'bank' layer by layer, the head that reads 'river', every head at a glance.", show_default=False)] = None,
) -> None:
    """A guided tour: 'bank' in two contexts, a tiny example worked step by step, then several heads."""
    with reporting_errors():
        if model is not None:
            from ..demo import model_tour, model_tour_of
            from ..models import load_model

            computed = model_tour_of(load_model(model))
            show(lambda width: model_tour(computed, width=width))
            return
        from ..demo import tour, tour_of
        from ..loading import load

        stops = tour_of(load(None))
        show(lambda width: tour(stops, width=width))

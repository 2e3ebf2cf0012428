"""The Solara page of `mittelbau dashboard` (needs the `dashboard` extra).

Run through `mittelbau dashboard`, which starts the Solara server on localhost; a scenario
file to start from is passed in the environment variable MITTELBAU_DASHBOARD_SCENARIO.
"""

from __future__ import annotations

import html
import os
import re

import matplotlib

matplotlib.use("Agg")

import solara
from mesa.visualization import SolaraViz

from mittelbau.core.scenario import load_scenario
from mittelbau.dashboard import captions, charts
from mittelbau.dashboard.app_server import SCENARIO_VARIABLE
from mittelbau.dashboard.controls import model_params
from mittelbau.dashboard.paired import PairedModel
from mittelbau.dashboard.stakes import stakes_figure


def _figure(build):
    def view(model: PairedModel):
        return solara.FigureMatplotlib(build(model), format="png", dpi=90)

    view.__name__ = build.__name__
    return view


def _sentence(text: str, test_id: str):
    """A caption as HTML (bold marked by **): plain HTML needs no script, where Solara's
    Markdown would load a diagram library from the CDN."""
    body = re.sub(r"\*\*(.+?)\*\*", r"<b>\1</b>", html.escape(text))
    return solara.HTML(
        tag="div",
        unsafe_innerHTML=f'<p data-testid="{test_id}">{body}</p>',
        style="padding: 0 12px; font-size: 15px",
    )


# slider labels on a line of their own above the slider (registry labels are longer than the
# sidebar leaves beside a slider, which would squeeze the slider to nothing), and every
# slider's value shown on its thumb
CSS = """
.v-input__slider .v-input__slot { flex-wrap: wrap; }
.v-input__slider .v-input__slot > .v-label {
    flex-basis: 100%; height: auto; line-height: 1.3; white-space: normal; margin-bottom: 2px;
}
.v-input__slider .v-slider { flex: 1 1 100%; margin-top: 30px; }
.v-input__slider .v-slider__thumb-label-container { display: block !important; }
"""


def Status(model: PairedModel):
    return solara.Column(
        children=[
            solara.Style(CSS),
            _sentence(captions.status(model), "status"),
            _sentence(captions.settings(model), "settings"),
        ]
    )


def Comparison(model: PairedModel):
    return _sentence(captions.comparison(model), "comparison")


def make_page(scenario_file: str | None = None):
    """The SolaraViz page for a scenario file (defaults when None)."""
    scenario = load_scenario(scenario_file)
    values = scenario.params.model_dump()
    params = model_params(values)
    start = {k: (v["value"] if isinstance(v, dict) else v) for k, v in params.items()}
    return SolaraViz(
        PairedModel(**start),
        components=[
            (Status, 0),
            (_figure(charts.stage_shares_figure), 0),
            (_figure(stakes_figure), 0),  # value added at stake beside the stage shares
            (_figure(charts.middle_figure), 0),
            (_figure(charts.size_figure), 0),
            (_figure(charts.network_figure), 1),
            (Comparison, 2),
            (_figure(charts.compare_figure), 2),
        ],
        model_params=params,
        name=f"mittelbau — {scenario.name}",
        play_interval=150,
    )


page = make_page(os.environ.get(SCENARIO_VARIABLE) or None)

"""The Solara page of `mittelbau dashboard` (needs the `dashboard` extra).

Run through `mittelbau dashboard`, which starts the Solara server on localhost; a scenario
file to start from is passed in the environment variable MITTELBAU_DASHBOARD_SCENARIO.
"""

from __future__ import annotations

import html
import os
import re

import solara
import solara.lab
from mesa.visualization import SolaraViz
from mesa.visualization.utils import update_counter

from mittelbau.core.scenario import load_scenario
from mittelbau.dashboard import captions, charts, readout
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
# slider's value shown on its thumb, in a label as wide as the value (a budget of 1500000
# does not fit the round label of a fixed width), kept inside the sidebar at either end
CSS = """
.v-input__slider .v-input__slot { flex-wrap: wrap; }
.v-input__slider .v-input__slot > .v-label {
    flex-basis: 100%; height: auto; line-height: 1.3; white-space: normal; margin-bottom: 2px;
}
.v-input__slider .v-slider { flex: 1 1 100%; margin: 30px 30px 0; }
.v-input__slider .v-slider__thumb-label-container { display: block !important; }
.v-input__slider .v-slider__thumb-label {
    width: auto !important; min-width: 28px; height: 22px !important; padding: 0 6px;
    border-radius: 11px !important; white-space: nowrap;
    transform: translateY(-6px) translateX(-50%) !important;
}
.v-input__slider .v-slider__thumb-label > * { transform: none !important; }
.views img { max-width: 100%; height: auto; }
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


def Outcomes(model: PairedModel):
    """The outcome registry's yearly outcomes in the current year, with their definitions."""
    cells = "".join(
        f"<tr><td>{html.escape(label)}</td><td style='text-align:right'><b>{html.escape(value)}</b></td>"
        f"<td style='color:#666'>{html.escape(definition)}</td></tr>"
        for label, value, definition in readout.outcome_rows(model)
    )
    return solara.HTML(
        tag="div",
        unsafe_innerHTML=f'<table data-testid="outcomes" style="font-size:13px">{cells}</table>',
        style="padding: 0 12px",
    )


# the tabs of the page, named by what they show: (title, sentences and tables, figures)
TABS = (
    (
        "Stage shares",
        [],
        # value added at stake beside the stage shares
        [charts.stage_shares_figure, stakes_figure, charts.middle_figure, charts.size_figure],
    ),
    ("Outcomes", [Outcomes], []),
    ("Firm network", [], [charts.network_figure]),
    ("Against the baseline", [Comparison], [charts.compare_figure]),
)


@solara.component
def Views(model: PairedModel):
    """The status line and the tabs; drawn anew after every step (Mesa's update signal)."""
    update_counter.get()
    with solara.Column() as main:
        Status(model)
        with solara.lab.Tabs(lazy=True):
            for title, texts, figures in TABS:
                with solara.lab.Tab(title):
                    for text in texts:
                        text(model)
                    with solara.Div(classes=["views"]), solara.GridFixed(columns=2):
                        for build in figures:
                            _figure(build)(model)
    return main


@solara.component
def Dashboard(scenario_file: str | None = None):
    """The page: Mesa's SolaraViz for the controls (Step, Play, Reset and the registry's
    parameters in the sidebar), the views in named tabs beside it."""
    scenario = load_scenario(scenario_file)
    params = solara.use_memo(lambda: model_params(scenario.params.model_dump()), [scenario_file])
    start = {k: (v["value"] if isinstance(v, dict) else v) for k, v in params.items()}
    first = solara.use_memo(lambda: PairedModel(**start), [scenario_file])
    model = solara.use_reactive(first)
    solara.Title("mittelbau")
    SolaraViz(
        model, components=[], model_params=params, name=f"mittelbau — {scenario.name}", play_interval=150
    )
    Views(model.value)


def make_page(scenario_file: str | None = None):
    """The page for a scenario file (defaults when None)."""
    return Dashboard(scenario_file)


page = make_page(os.environ.get(SCENARIO_VARIABLE) or None)

"""Run a scenario from start to horizon: the plain-function view of the model."""

from __future__ import annotations

from collections.abc import Callable

from mittelbau.model import MittelbauModel
from mittelbau.outputs import RunResult, collect
from mittelbau.scenario import Scenario, load_scenario


def simulate(
    scenario: Scenario | None = None, on_year: Callable[[MittelbauModel], None] | None = None
) -> RunResult:
    """Build the model of `scenario` (defaults when None), run it to its horizon and return its
    tables and summary. `on_year` is called after every simulated year (for progress)."""
    scenario = scenario or load_scenario(None)
    model = MittelbauModel(scenario.params)
    for _ in range(scenario.params.years):
        model.step()
        if on_year is not None:
            on_year(model)
    return collect(model, scenario)

"""Run a scenario from start to horizon: the plain-function view of the model."""

from __future__ import annotations

from collections.abc import Callable

from mittelbau.core.model import MittelbauModel
from mittelbau.core.scenario import Params, Scenario, load_scenario
from mittelbau.experiments.outputs import RunResult, collect
from mittelbau.levers import enabled, without_levers


def runs_needed(params: Params) -> int:
    """Model runs a scenario takes: itself; with levers also the same-seed run without any
    programme, and with several levers each lever alone."""
    on = enabled(params)
    return 1 + (1 if on else 0) + (len(on) if len(on) > 1 else 0)


def simulate(
    scenario: Scenario | None = None, on_year: Callable[[MittelbauModel], None] | None = None
) -> RunResult:
    """Build the model of `scenario` (defaults when None), run it to its horizon and return its
    tables and summary. With levers switched on, the same seed is also run without any
    programme (and each lever alone, for a mix), on common random numbers, to count the
    additional upward moves. `on_year` is called after every simulated year (for progress)."""
    scenario = scenario or load_scenario(None)
    params = scenario.params

    def run(p: Params) -> MittelbauModel:
        model = MittelbauModel(p)
        for _ in range(p.years):
            model.step()
            if on_year is not None:
                on_year(model)
        return model

    model = run(params)
    on = enabled(params)
    if not on:
        return collect(model, scenario)
    no_policy = run(without_levers(params))
    alone = {on[0]: model} if len(on) == 1 else {n: run(without_levers(params, (n,))) for n in on}
    return collect(model, scenario, no_policy, alone)

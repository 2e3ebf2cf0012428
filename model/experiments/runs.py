"""Run a scenario from start to horizon: the plain-function view of the model."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence

from mittelbau.core.batch import ModelBatch, batch_groups
from mittelbau.core.model import MittelbauModel
from mittelbau.core.scenario import Params, Scenario, load_scenario
from mittelbau.experiments.outputs import RunResult, collect, outcomes
from mittelbau.levers import enabled, without_levers

BATCH_SIZE = 16  # most runs stepped together (core.batch.ModelBatch) by `simulate_batch`
BATCH_ROWS = 64_000  # most firms of all runs stepped together (memory: a batch holds them all)


def runs_needed(params: Params) -> int:
    """Model runs a scenario takes: itself; with levers also the same-seed run without any
    programme, and with several levers each lever alone."""
    on = enabled(params)
    return 1 + (1 if on else 0) + (len(on) if len(on) > 1 else 0)


def run_parameters(params: Params) -> list[Params]:
    """The parameter sets of a scenario's runs (`runs_needed`): itself; with levers the same
    seed without any programme; with several levers each lever alone."""
    on = enabled(params)
    if not on:
        return [params]
    alone = [without_levers(params, (n,)) for n in on] if len(on) > 1 else []
    return [params, without_levers(params), *alone]


def _collect(scenario: Scenario, models: list[MittelbauModel]) -> RunResult:
    on = enabled(scenario.params)
    if not on:
        return collect(models[0], scenario)
    model, no_policy = models[0], models[1]
    alone = {on[0]: model} if len(on) == 1 else dict(zip(on, models[2:], strict=True))
    return collect(model, scenario, no_policy, alone)


def _run(
    p: Params, on_year: Callable[[MittelbauModel], None] | None = None, outcomes_only: bool = False
) -> MittelbauModel:
    model = MittelbauModel(p, outcomes_only=outcomes_only)
    for _ in range(p.years):
        model.step()
        if on_year is not None:
            on_year(model)
    return model


def simulate(
    scenario: Scenario | None = None, on_year: Callable[[MittelbauModel], None] | None = None
) -> RunResult:
    """Build the model of `scenario` (defaults when None), run it to its horizon and return its
    tables and summary. With levers switched on, the same seed is also run without any
    programme (and each lever alone, for a mix), on common random numbers, to count the
    additional upward moves. `on_year` is called after every simulated year (for progress)."""
    scenario = scenario or load_scenario(None)
    if not isinstance(scenario, Scenario):
        raise TypeError(
            f"scenario = {type(scenario).__name__} {str(scenario)[:60]}; allowed: a Scenario "
            "(load_scenario(path, ['name=value', …]))"
        )
    return _collect(scenario, [_run(p, on_year) for p in run_parameters(scenario.params)])


def _batched_models(
    scenarios: Sequence[Scenario], batch_size: int, outcomes_only: bool = False
) -> Iterator[tuple[Scenario, list[MittelbauModel]]]:
    """Each scenario with its finished runs (`run_parameters`), the runs of all scenarios
    stepped together in batches of up to `batch_size` runs and BATCH_ROWS firms that share
    firms, region and years (`core.batch.ModelBatch`)."""
    needed = [run_parameters(s.params) for s in scenarios]
    flat = [p for ps in needed for p in ps]
    models: list[MittelbauModel | None] = [None] * len(flat)
    for group in batch_groups(flat, batch_size, BATCH_ROWS):
        for i, model in zip(group, ModelBatch([flat[i] for i in group], outcomes_only).run(), strict=True):
            models[i] = model
    k = 0
    for scenario, ps in zip(scenarios, needed, strict=True):
        yield scenario, models[k : k + len(ps)]
        models[k : k + len(ps)] = [None] * len(ps)  # let finished runs go
        k += len(ps)


def simulate_batch(scenarios: Sequence[Scenario], batch_size: int = BATCH_SIZE) -> list[RunResult]:
    """`simulate` of every scenario, their runs (counterfactuals included) stepped together in
    batches of up to `batch_size` runs and BATCH_ROWS firms that share firms, region and years
    (`core.batch.ModelBatch`); each result is exactly that of `simulate` alone."""
    return [_collect(scenario, models) for scenario, models in _batched_models(scenarios, batch_size)]


def _outcomes(scenario: Scenario, models: list[MittelbauModel]) -> dict[str, bool | float | None]:
    return outcomes(models[0], models[1] if enabled(scenario.params) else None)


def simulate_outcomes(scenario: Scenario) -> dict[str, bool | float | None]:
    """The outcomes at the horizon of `simulate(scenario)` (its summary's "outcomes"), without
    building its tables or keeping firm economics: what sampled experiments keep of a run."""
    return _outcomes(scenario, [_run(p, outcomes_only=True) for p in run_parameters(scenario.params)])


def simulate_outcomes_batch(
    scenarios: Sequence[Scenario], batch_size: int = BATCH_SIZE
) -> list[dict[str, bool | float | None]]:
    """`simulate_outcomes` of every scenario, their runs stepped together as in `simulate_batch`."""
    return [
        _outcomes(scenario, models)
        for scenario, models in _batched_models(scenarios, batch_size, outcomes_only=True)
    ]

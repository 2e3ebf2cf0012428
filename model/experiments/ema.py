"""The model for EMA Workbench (the `discovery` extra): an EMA `Model` whose uncertainties,
levers and outcomes come from the registries.

Uncertainties are the factors of a study (`sensitivity.factors`: the registry's uncertainties
over their exploration ranges, the mechanisms' switches among them, the economics' parameters,
which no outcome reads, left out), levers its lever parameters (numeric
ones over their exploration ranges, targeting and other choices as categories; start and end
years stay as the scenario sets them), outcomes those of the outcome registry
(`mittelbau.core.outcomes`), and every other value of the scenario a constant — so
`perform_experiments(ema_model(), …)` followed by EMA's PRIM runs as it stands:

    from ema_workbench import perform_experiments
    from ema_workbench.analysis import prim

    model = ema_model()
    experiments, outcomes = perform_experiments(model, scenarios=200, policies=4)
    box = prim.Prim(experiments, outcomes["hollowed"] > 0.5).find_box()
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

from mittelbau.core.outcomes import OUTCOMES
from mittelbau.core.parameters import REGISTRY, Parameter
from mittelbau.core.scenario import Scenario, load_scenario, make_params
from mittelbau.experiments.experiment import run_outputs
from mittelbau.experiments.extras import needs_extra
from mittelbau.experiments.sensitivity import factors

with warnings.catch_warnings():  # the library's notice about its optional ipyparallel
    warnings.simplefilter("ignore")
    try:
        from ema_workbench import (
            CategoricalParameter,
            Constant,
            IntegerParameter,
            Model,
            RealParameter,
            ScalarOutcome,
        )
    except ImportError as exc:  # pragma: no cover - the extra is installed where this is used
        raise ImportError(needs_extra("the EMA Workbench interface", "discovery")) from exc


def ema_parameter(p: Parameter) -> RealParameter | IntegerParameter | CategoricalParameter:
    """A registry entry as an EMA parameter over its exploration range (choices: categories)."""
    if p.choices:
        return CategoricalParameter(p.name, list(p.choices), default=p.default)
    if p.kind is int:
        return IntegerParameter(p.name, int(p.explore_low), int(p.explore_high), default=p.default)
    return RealParameter(p.name, float(p.explore_low), float(p.explore_high), default=float(p.default))


def lever_parameters(names: Sequence[str] | None = None) -> list[Parameter]:
    """The levers EMA varies: `names` if given, otherwise every lever parameter but the start
    and end years."""
    levers = [p for p in REGISTRY if p.role == "lever"]
    if names:
        by_name = {p.name: p for p in levers}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise ValueError(f"lever {unknown[0]!r} is unknown; allowed: {', '.join(by_name)}")
        return [by_name[n] for n in names]
    return [p for p in levers if not p.name.endswith(("_start_year", "_end_year"))]


def evaluate(**values: Any) -> dict[str, float]:
    """One run from registry values given as keywords (EMA passes uncertainties, levers and
    constants this way), returning the outcomes."""
    return run_outputs(make_params(values, "EMA experiment"))


def ema_model(
    scenario: Scenario | None = None,
    uncertainties: Sequence[str] | None = None,
    levers: Sequence[str] | None = None,
    name: str = "mittelbau",
) -> Model:
    """The EMA `Model` of a scenario (default: the registry defaults). `uncertainties` and
    `levers` choose registry parameters by name (default: the numeric uncertainties the outcomes
    can read and the mechanism switches, as a study's (`sensitivity.factors`), all levers but
    their start and end years; a parameter named as an uncertainty is not also a
    lever); every other value of the scenario is a constant, and an uncertainty the scenario
    sets (its file or --set) stays at its value: no default uncertainty, an error when named
    (levers vary over their ranges, whatever the scenario sets). Every
    experiment runs with the scenario's seed: common random numbers across experiments."""
    scenario = scenario or load_scenario(None)
    varied_u = factors(uncertainties, held=scenario.overrides, region=scenario.params.region)
    named = {p.name for p in varied_u}
    varied_l = [p for p in lever_parameters(levers) if p.name not in named]
    varied = {p.name for p in (*varied_u, *varied_l)}
    model = Model(name, function=evaluate)
    model.uncertainties = [ema_parameter(p) for p in varied_u]
    model.levers = [ema_parameter(p) for p in varied_l]
    model.outcomes = [ScalarOutcome(o) for o in OUTCOMES]
    model.constants = [Constant(k, v) for k, v in scenario.params.model_dump().items() if k not in varied]
    return model

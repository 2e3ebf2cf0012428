"""The parameters a run's outcomes do not read, given its other values.

Runs of one seed whose parameters differ only in these give the same outcomes at the horizon,
draw for draw (tested for each such parameter at the ends of its range, with every mechanism
and programme on that can be): an experiment runs one of them and gives its outcomes to the
others (`mittelbau.experiments.experiment.evaluate_points`). They are

- a mechanism's parameters while its switch is off (`mechanisms.PARAMETERS`);
- a programme's parameters while it is off (`levers.enabled`), its switch excepted;
- for runs keeping only their outcomes (whose economics are not kept), the economics'
  parameters, but the region's number of firms while a programme is on: the programmes spend
  per firm of the region (`MittelbauModel.population_scale`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from mittelbau.core.mechanisms import PARAMETERS, active
from mittelbau.core.parameters import REGISTRY
from mittelbau.core.scenario import Params, make_params
from mittelbau.levers import SPECS, enabled

ECONOMICS_PARAMETERS = frozenset(p.name for p in REGISTRY if p.group == "economics")
SCALE_PARAMETER = "region_firms"  # read by the programmes' spending too


def inert_parameters(params: Params, outcomes_only: bool = True) -> frozenset[str]:
    """The parameters the outcomes of a run with `params` do not read (module docstring)."""
    on_mechanisms = active(params)
    on_levers = enabled(params)
    inert = {name for mech, names in PARAMETERS.items() if mech not in on_mechanisms for name in names}
    inert |= {p.name for s in SPECS if s.name not in on_levers for p in s.parameters if p.name != s.switch}
    if outcomes_only:
        inert |= ECONOMICS_PARAMETERS - ({SCALE_PARAMETER} if on_levers else set())
    return frozenset(inert)


def outcome_key(params: Params, outcomes_only: bool = True) -> tuple:
    """What a run's outcomes depend on: its seed and every parameter it reads
    (`inert_parameters`). Runs with equal keys have the same outcomes."""
    inert = inert_parameters(params, outcomes_only)
    return (outcomes_only, *((k, v) for k, v in params.model_dump().items() if k not in inert))


def unread_factors(base: Params, points: Sequence[Mapping[str, Any]], names: Sequence[str]) -> list[str]:
    """Of `names`, those that the outcomes of no run read at any of `points` (overrides of
    `base`, runs keeping only their outcomes), in order."""
    left = set(names)
    dump = base.model_dump()
    for point in points:
        if not left:
            break
        left &= inert_parameters(make_params({**dump, **point}))
    return [n for n in names if n in left]

"""Policy levers (sources §5): funding, cooperation programmes, application centres.

Each lever is a real mechanism with a budget or capacity, acting on firms through a small
hook (`Lever.act`, called once a year before the capabilities change). A lever whose switch
parameter is 0 is not built at all, so "off" is exactly the model without it.

A lever is one module of this package holding its mechanism and its `SPEC` (a `LeverSpec`):
the modules are found here, so adding a lever means adding its module, nothing else.
"""

from __future__ import annotations

import importlib
import pkgutil

import numpy as np

from mittelbau.core.categories import START_YEAR
from mittelbau.levers.base import Lever, LeverSpec, LeverYear, Reach, in_target


def _find_specs() -> tuple[LeverSpec, ...]:
    specs = []
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, LeverSpec):
            specs.append(spec)
    specs.sort(key=lambda s: s.order)
    names = [s.name for s in specs]
    orders = [s.order for s in specs]
    if len(set(names)) < len(names) or len(set(orders)) < len(orders):
        raise ValueError(f"levers {names} with orders {orders}; allowed: unique names and orders")
    return tuple(specs)


SPECS: tuple[LeverSpec, ...] = _find_specs()
BY_LEVER: dict[str, LeverSpec] = {s.name: s for s in SPECS}
LEVER_NAMES: tuple[str, ...] = tuple(BY_LEVER)


def lever_parameters() -> tuple:
    """The registry entries of every lever, lever by lever."""
    return tuple(p for spec in SPECS for p in spec.parameters)


def enabled(params) -> list[str]:
    """Names of the levers a parameter set switches on."""
    return [s.name for s in SPECS if s.is_on(params)]


def without_levers(params, keep: tuple[str, ...] = ()):
    """The same parameters with every lever but `keep` switched off."""
    return params.with_overrides({s.switch: 0 for s in SPECS if s.name not in keep})


def build_levers(params, n: int, rng: np.random.Generator) -> list[Lever]:
    """The switched-on levers' mechanisms, in their acting order."""
    return [s.build(params, n, rng) for s in SPECS if s.is_on(params)]


def idle_levers(params) -> list[str]:
    """A sentence for each switched-on lever whose years lie wholly outside the simulated ones
    (2016 to the horizon): it is built but never acts or spends."""
    first, horizon = START_YEAR + 1, START_YEAR + params.years
    if params.years == 0:  # the 2015 state only: no programme acts, as asked
        return []
    notes = []
    for s in SPECS:
        start, end = getattr(params, s.start_year), getattr(params, s.end_year)
        if s.is_on(params) and (start > horizon or end < first):
            notes.append(
                f"{s.name} runs {start}–{end}, outside the simulated years {first}–{horizon}, "
                f"so it never acts; to act, {s.start_year} must be {horizon} or earlier (or "
                "years reach its start)"
            )
    return notes


def unused_lever_settings(params, overrides) -> list[str]:
    """A sentence for each switched-off lever whose other parameters `overrides` (a scenario's
    file and --set values) sets while leaving its switch at its default 0: they do nothing."""
    notes = []
    for s in SPECS:
        keys = [k for k in overrides if k.startswith(f"{s.name}_") and k != s.switch]
        # a programme switched off on purpose (its switch set to 0) keeps its settings quietly
        if keys and not s.is_on(params) and s.switch not in overrides:
            verb = "does" if len(keys) == 1 else "do"
            notes.append(
                f"{s.name} is off ({s.switch} = {getattr(params, s.switch):g}), so {', '.join(keys)} "
                f"set for it {verb} nothing; to switch it on, set {s.switch} above 0"
            )
    return notes


def planned_lever_cost(params, spec: LeverSpec, years: int | None = None) -> float:
    """Public money a lever plans over the simulated years (start 2016): its yearly cost
    (funding budget, cooperation projects, centres' running costs) in its active years; 0 for
    a lever switched off."""
    if not spec.is_on(params):
        return 0.0
    horizon = range(START_YEAR + 1, START_YEAR + 1 + (params.years if years is None else years))
    start, end = getattr(params, spec.start_year), getattr(params, spec.end_year)
    return float(spec.yearly_cost(params) * sum(1 for y in horizon if start <= y <= end))


def planned_public_cost(params, years: int | None = None) -> float:
    """Public money the scenario plans over the simulated years: every lever's
    `planned_lever_cost`."""
    return float(sum(planned_lever_cost(params, s, years) for s in SPECS))


# spending below this share of the plan is reported: an equal-cost comparison needs it spent
SPENT_SHARE = 0.9


def underspent_together(spent: float, planned: float) -> str | None:
    """The sentence for programmes that together spent (`spent`, €) under SPENT_SHARE of what
    they plan together (`planned`); None where they did not."""
    if planned > 0 and spent < SPENT_SHARE * planned:
        return f"all programmes together spent €{spent / 1e6:.1f} M of their €{planned / 1e6:.1f} M planned"
    return None


def unreached(spent: dict[str, float], reached: dict[str, float]) -> list[str]:
    """A sentence for each lever that spent money (`spent`: € by lever) but reached no firm
    (`reached`: firms by lever): running costs paid for nothing."""
    return [
        f"{name} spent €{eur / 1e6:.1f} M and reached no firm"
        for name, eur in spent.items()
        if eur > 0 and reached.get(name, 0) == 0
    ]


def underspent(params, spent: dict[str, float]) -> list[str]:
    """A sentence for each lever whose spending (`spent`: € by lever) falls short of
    SPENT_SHARE of its plan (too few firms applied or were eligible, or whole projects or
    agents rounded the year's spending down)."""
    notes = []
    for name, eur in spent.items():
        plan = planned_lever_cost(params, BY_LEVER[name])
        if plan > 0 and eur < SPENT_SHARE * plan:
            notes.append(
                f"{name} spent €{eur / 1e6:.1f} M of the €{plan / 1e6:.1f} M planned ({eur / plan:.0%}): "
                "compare programmes at equal cost on what they spent"
            )
    return notes


__all__ = [
    "BY_LEVER",
    "LEVER_NAMES",
    "SPECS",
    "SPENT_SHARE",
    "Lever",
    "LeverSpec",
    "LeverYear",
    "Reach",
    "build_levers",
    "enabled",
    "idle_levers",
    "in_target",
    "lever_parameters",
    "planned_lever_cost",
    "planned_public_cost",
    "underspent",
    "underspent_together",
    "unreached",
    "unused_lever_settings",
    "without_levers",
]

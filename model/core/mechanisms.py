"""Switchable mechanisms that can hollow the middle (docs/odd.md, section 7.6), vectorised over
firms.

Each mechanism is named by its registry switch (`mech_<name>`, "on"/"off") and acts through a
narrow hook: hazard multipliers for the year (`MechanismYear`: DT gain, BM gain, BM loss, exit)
and a few state updates (platform capture before the exits, leapfrogging after the capability
change, training after learning). All their draws come from the mechanisms' own generator,
spawned apart from the core streams, with a fixed size per firm and mechanism: switching a
mechanism off shifts no other draw, and with every mechanism off the step is the one without
them, draw for draw.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from mittelbau.core.categories import COMPLEXITIES, ENGAGEMENT_LEVELS, SIZE_CLASSES, START_YEAR
from mittelbau.core.dynamics import MAX_TECHNIQUES, REF_TECHNIQUES
from mittelbau.core.population import FirmTable, dt_items_of
from mittelbau.core.region_data import in_order, load_traits

if TYPE_CHECKING:
    from mittelbau.core.scenario import Params
    from mittelbau.core.stacking import RowParams

NAMES = (
    "service_neglect",
    "lockin",
    "rising_bar",
    "platform_capture",
    "delayed_slump",
    "leapfrog",
)
# the registry parameters each mechanism reads (beside its switch): the service revenue is
# drawn for every firm, but read only by the service neglect and the economics
PARAMETERS: dict[str, tuple[str, ...]] = {
    "service_neglect": (
        "service_revenue_mean",
        "service_revenue_concentration",
        "service_below_value",
        "neglect_effect",
    ),
    "lockin": ("lockin_response",),
    "rising_bar": ("bar_growth", "bar_effect", "it_specialist_bonus", "training_learning"),
    "platform_capture": ("capture_rate", "capture_exit_factor", "capture_adoption_factor"),
    "delayed_slump": ("slump_delay", "slump_depth"),
    "leapfrog": ("leap_rate",),
}
SIMPLE = COMPLEXITIES.index("simple")
INTERNAL = ENGAGEMENT_LEVELS.index("internal")  # 'watching' and 'internal': not engaged (§4.3)
PARTNERS = ENGAGEMENT_LEVELS.index("partners")
SLUMP_RAMP_YEARS = 5  # the slump deepens linearly over five years once it begins


def switch(name: str) -> str:
    """Registry name of a mechanism's switch."""
    return f"mech_{name}"


def active(p: Params) -> tuple[str, ...]:
    """The mechanisms switched on in a parameter set, in NAMES order."""
    return tuple(n for n in NAMES if getattr(p, switch(n)) == "on")


@dataclass(frozen=True)
class MechanismYear:
    """What the switched-on mechanisms do to each firm's hazards this year (all ones: nothing)."""

    dt_gain: np.ndarray
    bm_gain: np.ndarray
    bm_loss: np.ndarray
    exit: np.ndarray


# ---- state drawn at synthesis ------------------------------------------------------------------
def draw_state(state: FirmTable, p: Params, rng: np.random.Generator) -> None:
    """Draw the mechanisms' firm state in place: service revenue share (beta with mean
    `service_revenue_mean`, sources §2.12), IT specialists and training by size (sources §6.2);
    no firm starts as a platform supplier."""
    draw_states(state, [p], [rng], [len(state)])


def draw_states(
    state: FirmTable, params: Sequence[Params], rngs: Sequence[np.random.Generator], sizes: Sequence[int]
) -> None:
    """`draw_state` of the firms of several runs stacked (run r: the next `sizes[r]` rows, its
    parameters `params[r]`): each run draws from `rngs[r]` what it draws alone, the rest is
    computed once for the stack."""
    n = len(state)
    skills = load_traits()["it_skills"]
    specialists = in_order(skills["specialists_by_size"], SIZE_CLASSES)[state.size]
    training = in_order(skills["training_by_size"], SIZE_CLASSES)[state.size]
    u, revenue = [], []
    for p, rng, k in zip(params, rngs, sizes, strict=True):
        mean, c = p.service_revenue_mean, p.service_revenue_concentration
        u.append(rng.random((2, k)))
        revenue.append(rng.beta(mean * c, (1.0 - mean) * c, k))
    u_all = u[0] if len(u) == 1 else np.concatenate(u, axis=1)
    state.service_revenue = revenue[0] if len(revenue) == 1 else np.concatenate(revenue)
    state.it_specialist = u_all[0] < specialists
    state.trains = u_all[1] < training
    state.platform = np.zeros(n, dtype=bool)


def customer_power(customers: sparse.csr_array, size: np.ndarray) -> np.ndarray:
    """Per firm: the share of its customers in a larger size class than its own (0 without
    customers) — the market power of final-product makers over smaller suppliers (§7.5)."""
    ptr = customers.indptr
    degree = np.diff(ptr)
    larger = size[customers.indices] > np.repeat(size, degree)  # per tie, in row order
    count = np.concatenate([[0], np.cumsum(larger)])  # larger customers before each tie
    return (count[ptr[1:]] - count[ptr[:-1]]) / np.maximum(degree, 1)


# ---- one function per mechanism ----------------------------------------------------------------
def service_neglect(state: FirmTable, power: np.ndarray, p: Params | RowParams) -> np.ndarray:
    """BM loss multiplier: 1 + `neglect_effect` · shortfall of the realised service revenue
    share below the mean, realised = share · (1 − `service_below_value` · customer power)."""
    realised = state.service_revenue * (1.0 - p.service_below_value * power)
    shortfall = np.clip(1.0 - realised / p.service_revenue_mean, 0.0, 1.0)
    return 1.0 + p.neglect_effect * shortfall


def locked_in(state: FirmTable, reached: np.ndarray) -> np.ndarray:
    """Stage-1 firms not engaged (watching or internal only) that no programme reaches."""
    return ~state.bm & ~state.dt & (state.engagement <= INTERNAL) & ~reached


def lockin(state: FirmTable, reached: np.ndarray, p: Params | RowParams) -> np.ndarray:
    """Adoption multiplier (DT and BM): `lockin_response` for locked-in firms."""
    return np.where(locked_in(state, reached), p.lockin_response, 1.0)


def bar(year: int, p: Params | RowParams) -> float | np.ndarray:
    """The digital competence the DT hazard is measured against in simulated `year`: three
    techniques in 2016, growing by `bar_growth` a year up to all the techniques asked about
    (`MAX_TECHNIQUES`, beyond which no firm's techniques go)."""
    return np.minimum(REF_TECHNIQUES + p.bar_growth * (year - 1 - START_YEAR), MAX_TECHNIQUES)


def rising_bar(state: FirmTable, year: int, p: Params | RowParams) -> np.ndarray:
    """DT gain multiplier exp(−`bar_effect` · shortfall): the part of the bar above both three
    techniques and the firm's competence (techniques + `it_specialist_bonus` for firms with IT
    specialists). 1 in the first projected year, so the 2015 state carries no jump."""
    competence = state.techniques + p.it_specialist_bonus * state.it_specialist
    shortfall = np.maximum(0.0, bar(year, p) - np.maximum(competence, REF_TECHNIQUES))
    return np.exp(-p.bar_effect * shortfall)


def train(state: FirmTable, p: Params) -> None:
    """Firms without DT that train add `training_learning` techniques (up to the maximum)."""
    grow = state.trains & ~state.dt
    state.techniques[:] = np.where(  # in place: a run's rows of a stack of runs see it
        grow, np.minimum(state.techniques + p.training_learning, MAX_TECHNIQUES), state.techniques
    )


def capture(
    state: FirmTable,
    pressure: np.ndarray | float,
    p: Params | RowParams,
    u: np.ndarray,
    where: np.ndarray | bool = True,
) -> np.ndarray:
    """Exposed stage-1 firms (simple product, threatened BM) become platform suppliers with
    hazard `capture_rate` · pressure; returns the newly captured (state updated in place).
    `where`: the firms whose run has the mechanism on (all by default)."""
    exposed = ~state.bm & ~state.dt & (state.complexity == SIMPLE) & state.threatened & ~state.platform
    new = exposed & (u < -np.expm1(-p.capture_rate * pressure)) & where
    state.platform |= new
    return new


def platform_effects(state: FirmTable, p: Params | RowParams) -> tuple[np.ndarray, np.ndarray]:
    """Adoption and exit multipliers of platform suppliers."""
    return (
        np.where(state.platform, p.capture_adoption_factor, 1.0),
        np.where(state.platform, p.capture_exit_factor, 1.0),
    )


def delayed_slump(state: FirmTable, year: int, p: Params | RowParams) -> np.ndarray:
    """BM gain multiplier of firms without a service strategy: 1 up to the year 2016 +
    `slump_delay` (the delay counts from the first projected year), then falling linearly, by
    `slump_depth` / SLUMP_RAMP_YEARS a year, to 1 − `slump_depth` SLUMP_RAMP_YEARS years later."""
    ramp = np.clip((year - 1 - START_YEAR - p.slump_delay) / SLUMP_RAMP_YEARS, 0.0, 1.0)
    return np.where(state.service_strategy, 1.0, 1.0 - p.slump_depth * ramp)


def leapfrog(
    state: FirmTable,
    candidates: np.ndarray,
    p: Params | RowParams,
    u: np.ndarray,
    factor: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Which candidates (stage-1 survivors that gained nothing this year) at engagement
    'partners' or beyond acquire DT and BM together, with hazard `leap_rate` × `factor` (the
    year's DT and BM gain multipliers of the other mechanisms: a leap is a gain of both)."""
    return candidates & (state.engagement >= PARTNERS) & (u < -np.expm1(-p.leap_rate * factor))


# ---- the hook into the step --------------------------------------------------------------------
class Mechanisms:
    """The mechanisms of one run: their hazard multipliers and state updates per year."""

    def __init__(self, p: Params) -> None:
        self.p = p
        self.on = active(p)

    def __bool__(self) -> bool:
        return bool(self.on)

    def after_learning(self, state: FirmTable) -> None:
        """Training of firms without DT (part of the rising bar)."""
        if "rising_bar" in self.on:
            train(state, self.p)


# ---- the mechanisms of several runs stacked -----------------------------------------------------
def start_of_year(
    state: FirmTable,
    year: int,
    pressure: np.ndarray | float,
    reached: np.ndarray,
    power: Callable[[], np.ndarray],
    u_capture: np.ndarray,
    on: Mapping[str, np.ndarray | bool],
    p: Params | RowParams,
    update: bool = True,
) -> MechanismYear:
    """The mechanisms' state updates at the start of the year (platform capture, in place) and
    this year's hazard multipliers, for the firms of one or more runs stacked: `on[name]` marks
    the firms of the runs with mechanism `name` on (True: all; absent: none), `p` and
    `pressure` are per firm where the runs differ, `u_capture` the capture draws (one per firm
    of a run with any mechanism on; read where platform capture is on), `power` gives each
    firm's customer power (`customer_power`) when service neglect asks for it. A mechanism's
    multiplier is 1 where it is off, and x · 1 is x, so each run's multipliers are exactly those
    of the run alone. `update=False` gives the gain multipliers of `state` as it is, capturing
    no one (the deadweight's counterfactual, `dynamics.change_capabilities`, which reads no
    loss or exit multiplier: those stay 1)."""
    n = len(state)

    def only(name: str, x: np.ndarray) -> np.ndarray:
        where = on[name]
        return x if where is True else np.where(where, x, 1.0)

    dt_gain, bm_gain, bm_loss, ex = np.ones(n), np.ones(n), np.ones(n), np.ones(n)
    if "platform_capture" in on:
        if update:
            capture(state, pressure, p, u_capture, on["platform_capture"])
        adopt, ex = (only("platform_capture", x) for x in platform_effects(state, p))
        dt_gain, bm_gain = dt_gain * adopt, bm_gain * adopt
    if "service_neglect" in on and update:
        bm_loss = bm_loss * only("service_neglect", service_neglect(state, power(), p))
    if "lockin" in on:
        m = only("lockin", lockin(state, reached, p))
        dt_gain, bm_gain = dt_gain * m, bm_gain * m
    if "rising_bar" in on:
        dt_gain = dt_gain * only("rising_bar", rising_bar(state, year, p))
    if "delayed_slump" in on:
        bm_gain = bm_gain * only("delayed_slump", delayed_slump(state, year, p))
    return MechanismYear(dt_gain, bm_gain, bm_loss, ex)


def leapfrog_runs(
    state: FirmTable,
    candidates: np.ndarray,
    item_draw: np.ndarray,
    p: Params | RowParams,
    rngs: Sequence[np.random.Generator],
    sizes: Sequence[int],
    where: np.ndarray | bool,
    factor: np.ndarray | float = 1.0,
) -> np.ndarray:
    """Leapfrogging after the capability change, for the runs with leapfrogging on, their firms
    stacked in `state` (`where` marks them; run r: `sizes[r]` firms, in order), at the leap
    hazard times `factor` (`leapfrog`): each run draws
    from `rngs[r]` one number per firm, then its leapers' DT items from a side stream spawned
    from it; the rest is computed once. Leapers gain BM and DT (in place). Returns the firms
    that leapt 1 → 3."""
    drawn = np.concatenate([rng.random(k) for rng, k in zip(rngs, sizes, strict=True)])
    if where is True:
        u = drawn
    else:
        u = np.ones(len(state))  # no leap where the mechanism is off
        u[where] = drawn
    items = [rng.spawn(1)[0] for rng in rngs]
    leap = leapfrog(state, candidates, p, u, factor) & where
    state.bm |= leap  # in place: a run's rows of a stack of runs see it
    state.dt |= leap
    mine = leap if where is True else leap[where]
    offsets = np.cumsum([0, *sizes[:-1]])
    counts = np.add.reduceat(mine.astype(np.int64), offsets) if len(sizes) > 1 else [mine.sum()]
    draws = [rng.random((int(k), len(item_draw))) for rng, k in zip(items, counts, strict=True)]
    state.dt_items[leap] = dt_items_of(np.ones(int(leap.sum()), bool), item_draw, np.concatenate(draws))
    return leap

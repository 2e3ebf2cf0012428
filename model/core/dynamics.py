"""The annual step, vectorised over firms. One step is one year.

Order within a year (all hazards read the state at the start of the year, so the update is
synchronous and independent of any firm order):
1. exposures: adoption shares among network partners, customers and industry peers;
2. exit of firms (market pressure on stage-1 firms with simple products and a threatened BM);
3. capability change of survivors: DT adoption/loss, BM adoption/loss (with its motive), at
   each firm type's run-up hazards (mittelbau.core.runup);
4. competence learning and engagement drift (from 2016: techniques and engagement are the
   2015/16 survey readings, drawn at the end of the run-up);
5. entry: each exit is replaced by an entrant drawn from the region's structure, taking over
   the exiting firm's place in the value chain and its customer–supplier ties.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mittelbau.core.categories import COMPLEXITIES, SIZE_CLASSES
from mittelbau.core.population import FirmTable, dt_items_of

if TYPE_CHECKING:
    from mittelbau.core.mechanisms import MechanismYear
    from mittelbau.core.scenario import Params
    from mittelbau.core.stacking import RowParams

REF_TECHNIQUES = 3.0  # reference firm's digital techniques (lower bound of the modal band, §4.4)
REF_ENGAGEMENT = 1  # reference engagement level: 'internal'
MAX_TECHNIQUES = 10.0  # IHK 2016 asked about 10 digital techniques (sources §4.4)
SIMPLE = COMPLEXITIES.index("simple")
MOTIVES = ("intrinsic", "peers", "customers", "competition")  # sources §4.2


@dataclass(frozen=True)
class Exposure:
    """What each firm sees of others at the start of the year, relative to what the run-up
    expects there (1: as many adopters as expected)."""

    peer_bm: np.ndarray  # BM share among firms of its industry
    social_dt: np.ndarray  # DT share among its network partners and industry peers
    customer_bm: np.ndarray  # BM share among its customers


@dataclass(frozen=True)
class BaseHazards:
    """Each firm's adoption hazards of this year before its own traits and the social terms:
    its type's run-up hazards (`runup.RunUp`), switched off before the DT wave, times the
    projection factors from 2016 on."""

    dt: np.ndarray  # DT adoption hazard at the firm's BM status
    bm: np.ndarray
    dt_loss: np.ndarray | float  # 0 before the DT wave
    # per firm: the mean trait factor of the firms without DT of its size class, and of the
    # firms without BM of its size class and DT status (`trait_norms`; None: traits off)
    dt_norm: np.ndarray | None
    bm_norm: np.ndarray | None


def hazard_to_probability(h: np.ndarray) -> np.ndarray:
    """Annual event probability of a constant hazard h (per year): 1 − exp(−h)."""
    h = np.asarray(h, dtype=float)
    if h.ndim == 0:
        return -np.expm1(-h)
    p = np.negative(h)  # one array, changed in place
    np.expm1(p, out=p)
    return np.negative(p, out=p)


@dataclass(frozen=True)
class Boost:
    """What the policy levers do to each firm's hazards this year (all ones / False: nothing)."""

    dt: np.ndarray  # multiplier of the DT adoption hazard
    bm: np.ndarray  # multiplier of the BM adoption hazard
    finance_relief: np.ndarray  # financing constraint lifted (funded firms)

    @classmethod
    def none(cls, n: int) -> Boost:
        return cls(np.ones(n), np.ones(n), np.zeros(n, dtype=bool))


def dt_traits(
    state: FirmTable, p: Params | RowParams, finance_relief: np.ndarray | bool = False
) -> np.ndarray:
    """The DT hazard's factor of the firm's own traits: financing, digital techniques and
    engagement (known from the 2015/16 surveys on)."""
    constrained = state.financing_constraint & ~np.asarray(finance_relief)
    return (
        np.where(constrained, p.dt_finance_factor, 1.0)
        * np.exp(p.dt_competence_effect * (state.techniques - REF_TECHNIQUES))
        * np.exp(p.engagement_effect * (state.engagement - REF_ENGAGEMENT))
    )


def bm_traits(state: FirmTable, p: Params | RowParams) -> np.ndarray:
    """The BM hazard's factor of the firm's own traits: engagement (no size or finance term,
    sources §2.10)."""
    return np.exp(p.engagement_effect * (state.engagement - REF_ENGAGEMENT))


def trait_norms(state: FirmTable, p: Params) -> tuple[np.ndarray, np.ndarray]:
    """Mean trait factors of the firms at risk in the 2015 state: of the DT factor over firms
    without DT per size class, of the BM factor over firms without BM per size class and DT
    status. Dividing by them keeps each type's mean hazard where the run-up left it (the traits
    depend on size and DT only, so these groups suffice); 1 for a group without such firms, or
    whose firms all have a factor of 0 (every one financing-constrained at a
    `dt_finance_factor` of 0): no mean hazard to keep there, and those firms stay at 0."""
    k = len(SIZE_CLASSES)  # every size class (1 where no firm of a class is at risk)

    def means(x: np.ndarray, at_risk: np.ndarray, group: np.ndarray, m: int) -> np.ndarray:
        s = np.bincount(group[at_risk], weights=x[at_risk], minlength=m)
        c = np.bincount(group[at_risk], minlength=m)
        return np.where(s > 0, s / np.maximum(c, 1), 1.0)

    size = state.size.astype(np.int64)
    dt_norm = means(dt_traits(state, p), ~state.dt, size, k)
    bm_norm = means(bm_traits(state, p), ~state.bm, size * 2 + state.dt, 2 * k).reshape(k, 2)
    return dt_norm, bm_norm


def dt_hazard(
    state: FirmTable,
    base: BaseHazards,
    exposure: Exposure,
    p: Params | RowParams,
    factor: np.ndarray | float = 1.0,
    finance_relief: np.ndarray | bool = False,
) -> np.ndarray:
    """Annual DT adoption hazard (firms without DT use the result); `factor` and
    `finance_relief` carry the policy levers."""
    traits = 1.0 if base.dt_norm is None else dt_traits(state, p, finance_relief) / base.dt_norm
    return base.dt * factor * traits * ((1.0 - p.dt_social_weight) + p.dt_social_weight * exposure.social_dt)


def bm_channels(exposure: Exposure, pressure: np.ndarray | float, p: Params | RowParams) -> np.ndarray:
    """Relative BM hazard per motive channel (columns in MOTIVES order); with peers and
    customers adopting as expected and pressure 1 the columns are the motive shares of
    sources §4.2."""
    n = len(exposure.peer_bm)
    channels = np.empty((n, len(MOTIVES)))
    channels[:, 0] = p.bm_weight_intrinsic
    np.multiply(p.bm_weight_peers, exposure.peer_bm, out=channels[:, 1])
    np.multiply(p.bm_weight_customers, exposure.customer_bm, out=channels[:, 2])
    channels[:, 3] = p.bm_weight_competition * pressure
    return channels


def bm_hazard(state: FirmTable, base: BaseHazards, channels: np.ndarray, p: Params | RowParams) -> np.ndarray:
    """Annual BM adoption hazard: no size or finance term (sources §2.10)."""
    traits = 1.0 if base.bm_norm is None else bm_traits(state, p) / base.bm_norm
    # the channels summed left to right, column by column: the sum over each row (numpy adds
    # a row's few terms in this order too), without a reduction along a short axis
    total = channels[:, 0].copy()
    for k in range(1, channels.shape[1]):
        total += channels[:, k]
    return base.bm * traits * total


def exit_hazard(state: FirmTable, pressure: np.ndarray | float, p: Params | RowParams) -> np.ndarray:
    """Annual exit hazard; stage-1 firms with simple products and a threatened main BM are
    exposed to the digital pressure (sources §2.13, §4.9)."""
    exposed = (~state.bm & ~state.dt) & (state.complexity == SIMPLE) & state.threatened
    return p.exit_rate * (1.0 + p.pressure_exit_factor * pressure * exposed)


def choose_motive(channels: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Which channel triggered each adoption, in proportion to the channel hazards
    (`u` uniform on [0, 1), one per row)."""
    cum = np.cumsum(channels, axis=1)
    return ((u * cum[:, -1])[:, None] >= cum).sum(axis=1)


@dataclass(frozen=True)
class CapabilityChange:
    gain_dt: np.ndarray
    gain_bm: np.ndarray
    anyway: np.ndarray  # every gain of the firm would also have happened without the levers
    channels: np.ndarray  # the BM motive channels of every firm (`bm_channels`)

    def rows(self, part: slice) -> CapabilityChange:
        """The change of the firms in `part` (one run of several stacked)."""
        return CapabilityChange(
            self.gain_dt[part], self.gain_bm[part], self.anyway[part], self.channels[part]
        )


def capability_draws(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.random.Generator]:
    """The draws that decide the capability events of `n` firms (one per firm and event), and
    the side stream of what is drawn per gain (DT items, motives), which never shifts them."""
    return rng.random((4, n)), rng.spawn(1)[0]


def change_capabilities(
    state: FirmTable,
    base: BaseHazards,
    exposure: Exposure,
    pressure: np.ndarray | float,
    survivors: np.ndarray,
    p: Params | RowParams,
    u: np.ndarray,
    boost: Boost | None = None,
    mech: MechanismYear | None = None,
    unreached: tuple[FirmTable, Exposure, MechanismYear | None] | None = None,
) -> CapabilityChange:
    """Adopt and lose BM and DT for surviving firms, in place, by the draws `u`
    (`capability_draws`); the DT items and motives of the gains follow (`draw_gains_runs`).

    The draws that decide events have a fixed size (one per firm and event), so a run with
    levers and the same-seed run without them see the same random numbers (common random
    numbers); `boost` None means no lever acts. A lever-reached firm's
    gain is counted as happening 'anyway' when the same draw also falls below the hazard
    without the lever — the in-model counterfactual behind deadweight: the hazard of the firm
    as it would be without any programme contact (`unreached`: its state, exposure and
    mechanisms' multipliers so — the engagement, techniques, ties and lock-in the programmes
    changed undone; by default the state as it is), without the levers' multipliers. The
    draws and the hazards that decide the events are the same with or without it: only what
    counts as 'anyway' depends on it. `mech` carries the
    switchable mechanisms' hazard multipliers (None: every mechanism off). Every operation is
    elementwise per firm, so the firms of several runs stacked (with per-firm parameters and
    pressure) change exactly as each run alone.
    """
    had_bm, had_dt = state.bm.copy(), state.dt.copy()

    # mechanisms (model/core/mechanisms.py): multipliers of the gain and loss hazards
    m_dt, m_bm, m_loss = (1.0, 1.0, 1.0) if mech is None else (mech.dt_gain, mech.bm_gain, mech.bm_loss)
    h_dt0 = dt_hazard(state, base, exposure, p) * m_dt
    channels = bm_channels(exposure, pressure, p)
    h_bm0 = bm_hazard(state, base, channels, p) * m_bm
    p_dt0, p_bm0 = hazard_to_probability(h_dt0), hazard_to_probability(h_bm0)
    if boost is None:
        p_dt, p_bm = p_dt0, p_bm0
    else:
        h_dt = dt_hazard(state, base, exposure, p, boost.dt, boost.finance_relief) * m_dt
        p_dt = hazard_to_probability(h_dt)
        p_bm = hazard_to_probability(boost.bm * h_bm0)
        if unreached is not None:  # 'anyway': the hazards without any programme contact
            s0, e0, mech0 = unreached
            u_dt, u_bm = (1.0, 1.0) if mech0 is None else (mech0.dt_gain, mech0.bm_gain)
            p_dt0 = hazard_to_probability(dt_hazard(s0, base, e0, p) * u_dt)
            p_bm0 = hazard_to_probability(bm_hazard(s0, base, bm_channels(e0, pressure, p), p) * u_bm)
    loss_bm = p.bm_loss_rate * np.where(state.service_strategy, p.bm_loss_strategy_factor, 1.0) * m_loss

    gain_dt = survivors & ~had_dt & (u[0] < p_dt)
    lose_dt = survivors & had_dt & (u[1] < hazard_to_probability(np.full(len(state), base.dt_loss)))
    gain_bm = survivors & ~had_bm & (u[2] < p_bm)
    lose_bm = survivors & had_bm & (u[3] < hazard_to_probability(loss_bm))
    anyway = (~gain_dt | (u[0] < p_dt0)) & (~gain_bm | (u[2] < p_bm0))

    state.dt = (had_dt | gain_dt) & ~lose_dt
    state.bm = (had_bm | gain_bm) & ~lose_bm
    state.dt_items[lose_dt] = False
    return CapabilityChange(gain_dt, gain_bm, anyway, channels)


def draw_gains_runs(
    state: FirmTable,
    change: CapabilityChange,
    item_draw: np.ndarray,
    sides: Sequence[np.random.Generator],
    run: np.ndarray,
) -> np.ndarray:
    """The DT items of the firms that gained DT (in place) and the motive of each BM gain, for
    the runs of a stack (`run`: each row's run, in order; one run alone is a stack of one):
    run r draws from the side stream `sides[r]` of its `capability_draws`, in its own order
    (its DT gains' items, then its BM gains' motives), and the items and motives of all runs
    are computed at once. Returns the BM introductions per run and motive (runs × MOTIVES)."""
    gain_dt, gain_bm = change.gain_dt, change.gain_bm
    runs = len(sides)
    if runs == 1:
        n_dt, n_bm = np.array([gain_dt.sum()]), np.array([gain_bm.sum()])
    else:
        n_dt, n_bm = np.bincount(run[gain_dt], minlength=runs), np.bincount(run[gain_bm], minlength=runs)
    u_items, u_motive = [], []
    for side, k_dt, k_bm in zip(sides, n_dt.tolist(), n_bm.tolist(), strict=True):
        u_items.append(side.random((k_dt, len(item_draw))))  # firms × items (`dt_items_of`)
        u_motive.append(side.random(k_bm))
    k = int(n_dt.sum())
    state.dt_items[gain_dt] = dt_items_of(np.ones(k, bool), item_draw, np.concatenate(u_items))
    motives = choose_motive(change.channels[gain_bm], np.concatenate(u_motive))
    if runs == 1:
        return np.bincount(motives, minlength=len(MOTIVES))[None, :]
    counted = np.bincount(run[gain_bm] * len(MOTIVES) + motives, minlength=runs * len(MOTIVES))
    return counted.reshape(runs, len(MOTIVES))


def learning_steps(mean: float, u: np.ndarray) -> np.ndarray:
    """Whole techniques added in a year at a mean of `mean` per year: the integer part, plus
    one where the uniform draw `u` falls below the fraction (so the survey's whole-technique
    bands see any mean, sources §4.4)."""
    whole = np.floor(mean)
    return whole + (u < mean - whole)


def learning_draws(rng: np.random.Generator, n: int) -> np.ndarray:
    """The draws of `learn_and_engage` for `n` firms: one per firm for learning, one for
    engagement."""
    return rng.random((2, n))


def learn_and_engage(
    state: FirmTable, pressure: np.ndarray | float, p: Params | RowParams, u: np.ndarray
) -> None:
    """Digital techniques grow with DT use, in whole techniques (`learning_steps`); watching and
    internal-only firms move outward. `u` are the `learning_draws`; the columns are updated
    in place (so that a run's rows of a stack of runs see it)."""
    gained = learning_steps(p.competence_learning, u[0])
    state.techniques[:] = np.where(
        state.dt,
        np.minimum(state.techniques + gained, MAX_TECHNIQUES),
        state.techniques,
    )
    drift = (state.engagement <= REF_ENGAGEMENT) & (
        u[1] < np.minimum(1.0, p.engagement_drift_rate * pressure)
    )
    state.engagement[:] = (state.engagement + drift).astype(np.int8)

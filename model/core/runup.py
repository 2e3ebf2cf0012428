"""The run-up to the 2015 survey state: start state, per-type adoption hazards by inversion.

The model starts at `runup_start_year` with fewer business models (BM) and digital techniques in
services (DT) than in 2015 and runs its own yearly dynamics up to 2015 (sources §7.1: service-based
BMs spread since about 2000, DT in a later wave). The adoption hazards of each firm type (a cell
of industry × size × batch × complexity × service strategy, `structure_cells`) are the ones
under which the expected-value (mean-field) run-up of the same dynamics arrives at the 2015
cross-section of the fitted propensities: P(BM), P(DT | BM) and P(DT | no BM) per type (where
the dynamics can reach it; `RunUp.unreachable_share`).
Three targets, three hazards per type: the BM hazard and the DT hazards of firms without and
with a BM. Their ratio is the BM–DT coupling the 2015 within-type association implies.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from mittelbau.core.categories import START_YEAR
from mittelbau.core.population import structure_cells
from mittelbau.core.propensities import load_propensities, logistic
from mittelbau.core.region_data import load_region

# parameters the inversion depends on (besides the region); its cache key
RUNUP_PARAMETERS = (
    "runup_start_year",
    "bm_start_odds",
    "dt_wave_start_year",
    "dt_start_odds",
    "bm_loss_rate",
    "bm_loss_strategy_factor",
    "dt_loss_rate",
    "bm_weight_peers",
    "bm_weight_customers",
    "bm_weight_competition",
    "digital_pressure_growth",
)
LOG_H_RANGE = (-16.0, 4.0)  # bracket of the log-hazards searched (1e-7 to 55 per year)
BISECTIONS = 32
ROUNDS = 20  # most rounds of the two DT hazards' joint solution
TOLERANCE = 1e-3  # rounds stop when no log-hazard changes by more


def pressure_index(year: int, growth: float) -> float:
    """Digital pressure at the start of simulated `year`: 1 at the start of 2016 (the end of the
    2015 survey year), linear in time, never below 0."""
    return max(0.0, 1.0 + growth * (year - 1 - START_YEAR))


def channel_sum(year: int, p) -> float:
    """Sum of the BM motive channels (sources §4.2) when peers and customers adopt as expected."""
    return (
        p.bm_weight_intrinsic
        + p.bm_weight_peers
        + p.bm_weight_customers
        + p.bm_weight_competition * pressure_index(year, p.digital_pressure_growth)
    )


@dataclass(frozen=True)
class RunUp:
    """The solved run-up of one region and parameter set.

    `h_bm` (cells) and `h_dt` (cells × 2: without, with BM) are the adoption hazards of each
    firm type per year at reference conditions; `expected` (years × cells × 2 × 2) the mean-field
    probability of each (BM, DT) state at the end of each year from the start year to 2015."""

    first_year: int
    dt_wave_start_year: int
    h_bm: np.ndarray
    h_dt: np.ndarray
    expected: np.ndarray
    target: np.ndarray  # cells × 2 × 2: the 2015 cross-section
    weight: np.ndarray  # cells: expected population share of each type

    def state_in(self, year: int) -> np.ndarray:
        """Expected (BM, DT) probabilities per type at the end of `year` (2015 after it)."""
        return self.expected[min(year, START_YEAR) - self.first_year]

    @property
    def coupling(self) -> float:
        """Implied BM–DT coupling: the population-weighted median over firm types of the DT
        adoption hazard with a BM over the one without (a median, since in some types one of
        the two sits at the end of its bracket)."""
        ratio = self.h_dt[:, 1] / self.h_dt[:, 0]
        order = np.argsort(ratio)
        cum = np.cumsum(self.weight[order])
        return float(ratio[order][np.searchsorted(cum, 0.5 * cum[-1])])

    @property
    def unreachable_share(self) -> float:
        """Population share of firm types whose 2015 state the dynamics miss by more than one
        point (DT among firms without a BM kept too high by firms that dropped their BM)."""
        gap = np.abs(self.expected[-1] - self.target).max(axis=(1, 2))
        return float(self.weight[gap > 0.01].sum())

    @property
    def max_error(self) -> float:
        """Largest gap between the mean-field 2015 state and the cross-section over firm types
        (probability of a (BM, DT) state)."""
        return float(np.abs(self.expected[-1] - self.target).max())


def cross_section(region_code: str) -> tuple[np.ndarray, np.ndarray, dict[str, np.ndarray]]:
    """The fitted 2015 probabilities per firm type: P(BM) and P(DT | BM = 0, 1), with weights."""
    region = load_region(region_code)
    cells = structure_cells(region)
    props = load_propensities()
    c = cells.codes
    args = (c["industry"], c["size"], c["batch"], c["complexity"], c["service_strategy"])
    shift = region.innovation_shift
    p_bm = logistic(props.bm.intercept + props.bm.innovation * shift + props.bm.structural(*args))
    dt_lo = props.dt.intercept + props.dt.innovation * shift + props.dt.structural(*args)
    p_dt = np.column_stack([logistic(dt_lo), logistic(dt_lo + props.dt.bm)])
    return p_bm, p_dt, {"weight": cells.weight / cells.weight.sum(), **c}


def joint(p_bm: np.ndarray, p_dt: np.ndarray) -> np.ndarray:
    """cells × 2 × 2 probabilities of (BM, DT) from P(BM) and P(DT | BM)."""
    pb = np.stack([1 - p_bm, p_bm], axis=1)
    return pb[:, :, None] * np.stack([1 - p_dt, p_dt], axis=2)


def mean_field(
    q0: np.ndarray,
    h_bm: np.ndarray,
    h_dt: np.ndarray,
    loss_bm: np.ndarray,
    chan: np.ndarray,
    dt_on: np.ndarray,
    loss_dt: float,
) -> np.ndarray:
    """Expected (BM, DT) state per type after each simulated year, stacked (years × cells × 2 × 2),
    from `q0` (cells × 2 × 2); `chan` and `dt_on` hold one value per year.

    The same synchronous yearly update as the agents: from the state at the start of the year,
    BM is gained or lost, and DT gained (at the hazard of the firm's BM status) or lost,
    independently; exits are replaced by entrants of the same expected state."""
    out = np.empty((len(chan), *q0.shape))
    q00, q01, q10, q11 = q0[:, 0, 0], q0[:, 0, 1], q0[:, 1, 0], q0[:, 1, 1]
    stay_bm = np.exp(-loss_bm)
    for k in range(len(chan)):
        g_bm = -np.expm1(-h_bm * chan[k])
        g0, g1 = -np.expm1(-h_dt[..., 0] * dt_on[k]), -np.expm1(-h_dt[..., 1] * dt_on[k])
        s_dt = np.exp(-loss_dt * dt_on[k])
        # DT after the year, by BM status at its start
        d0 = q00 * g0 + q01 * s_dt  # no BM at the start, DT at the end
        n0 = q00 + q01 - d0
        d1 = q10 * g1 + q11 * s_dt
        n1 = q10 + q11 - d1
        # BM after the year: no-BM firms gain it, BM firms keep it, independently of DT
        q11 = d0 * g_bm + d1 * stay_bm
        q10 = n0 * g_bm + n1 * stay_bm
        q01 = d0 + d1 - q11
        q00 = n0 + n1 - q10
        out[k, :, 0, 0], out[k, :, 0, 1], out[k, :, 1, 0], out[k, :, 1, 1] = q00, q01, q10, q11
    return out


def _bisect(gap, shape: tuple[int, ...]) -> np.ndarray:
    """Elementwise, the log-hazard where the increasing function `gap` crosses 0 (the bracket's
    end where it does not: a target the dynamics cannot reach)."""
    lo, hi = np.full(shape, LOG_H_RANGE[0]), np.full(shape, LOG_H_RANGE[1])
    for _ in range(BISECTIONS):
        mid = 0.5 * (lo + hi)
        above = gap(mid) > 0
        hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
    return 0.5 * (lo + hi)


def start_state(p_bm: np.ndarray, p_dt: np.ndarray, bm_odds: float, dt_odds: float) -> np.ndarray:
    """cells × 2 × 2: the 2015 probabilities with the odds of BM and of DT (given BM) scaled by
    the start odds ratios, so every type keeps its structural pattern at a lower level."""

    def scaled(p: np.ndarray, ratio: float) -> np.ndarray:
        return ratio * p / (1 - p + ratio * p)

    return joint(scaled(p_bm, bm_odds), scaled(p_dt, dt_odds))


@lru_cache(maxsize=64)
def _solve(region_code: str, values: tuple) -> RunUp:
    p = _Values(dict(zip(RUNUP_PARAMETERS, values, strict=True)))
    p_bm, p_dt, c = cross_section(region_code)
    n = len(p_bm)
    first = int(p.runup_start_year)
    years = range(first + 1, START_YEAR + 1)
    chan = np.array([channel_sum(y, p) for y in years])
    dt_on = np.array([1.0 if y >= p.dt_wave_start_year else 0.0 for y in years])
    loss_bm = p.bm_loss_rate * np.where(c["service_strategy"], p.bm_loss_strategy_factor, 1.0)
    q0 = start_state(p_bm, p_dt, p.bm_start_odds, p.dt_start_odds)

    def end(h_bm: np.ndarray, h_dt: np.ndarray) -> np.ndarray:
        return mean_field(q0, h_bm, h_dt, loss_bm, chan, dt_on, p.dt_loss_rate)[-1]

    # BM does not depend on DT: its hazard follows from the BM marginal alone
    h_bm = np.exp(_bisect(lambda x: end(np.exp(x), np.zeros((n, 2)))[:, 1].sum(axis=1) - p_bm, (n,)))
    # the two DT hazards barely act on each other's target: solve each with the other held, both
    # at once (the types stacked twice), and repeat until they settle
    q0_2, h_bm_2, loss_bm_2 = np.concatenate([q0, q0]), np.tile(h_bm, 2), np.tile(loss_bm, 2)
    h_dt = np.full((n, 2), 0.05)
    for _ in range(ROUNDS):
        old = h_dt.copy()

        def gap(x: np.ndarray, old: np.ndarray = old) -> np.ndarray:
            trial = np.exp(x)
            both = np.concatenate(
                [np.column_stack([trial[:, 0], old[:, 1]]), np.column_stack([old[:, 0], trial[:, 1]])]
            )
            e = mean_field(q0_2, h_bm_2, both, loss_bm_2, chan, dt_on, p.dt_loss_rate)[-1]
            e0, e1 = e[:n, 0], e[n:, 1]  # DT among firms without / with a BM, each in its own copy
            return np.column_stack([e0[:, 1] / e0.sum(axis=1), e1[:, 1] / e1.sum(axis=1)]) - p_dt

        h_dt = np.exp(_bisect(gap, (n, 2)))
        if np.abs(np.log(h_dt) - np.log(old)).max() < TOLERANCE:
            break
    path = np.concatenate([q0[None], mean_field(q0, h_bm, h_dt, loss_bm, chan, dt_on, p.dt_loss_rate)])
    return RunUp(first, int(p.dt_wave_start_year), h_bm, h_dt, path, joint(p_bm, p_dt), c["weight"])


class _Values:
    """Attribute access to the run-up's parameter values (and the derived intrinsic weight)."""

    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)
        self.bm_weight_intrinsic = (
            1.0 - values["bm_weight_peers"] - values["bm_weight_customers"] - values["bm_weight_competition"]
        )


def solve_runup(region_code: str, params) -> RunUp:
    """The run-up of `region_code` under `params` (cached per region and the values it uses)."""
    return _solve(region_code, tuple(getattr(params, k) for k in RUNUP_PARAMETERS))

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

import functools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

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
CACHE_SIZE = 64  # run-ups kept (the most recently used), shared by single runs and batches
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
    key: tuple = ()  # the region and the values of RUNUP_PARAMETERS it was solved for

    def state_in(self, year: int) -> np.ndarray:
        """Expected (BM, DT) probabilities per type at the end of `year` (2015 after it)."""
        return self.expected[min(year, START_YEAR) - self.first_year]

    @functools.cached_property
    def _levels(self) -> tuple[np.ndarray, np.ndarray]:
        return self.expected[:, :, 1].sum(axis=2), self.expected[:, :, :, 1].sum(axis=2)

    def levels_in(self, year: int) -> tuple[np.ndarray, np.ndarray]:
        """Expected P(BM) and P(DT) per type at the end of `year` (2015 after it)."""
        k = min(year, START_YEAR) - self.first_year
        bm, dt = self._levels
        return bm[k], dt[k]

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
    loss_dt: float | np.ndarray,
    every_year: bool = True,
) -> np.ndarray:
    """Expected (BM, DT) state per type after each simulated year, stacked (years × cells × 2 × 2),
    from `q0` (cells × 2 × 2); `chan` (the BM channel sum) and `dt_on` (1 in the years of the DT
    wave, 0 before) hold one value per year (or per year and type, years × cells), `loss_dt` one
    value (or one per type). With `every_year=False` only the last year's state is kept (1 × cells
    × 2 × 2): what the inversion's bisections read.

    The same synchronous yearly update as the agents: from the state at the start of the year,
    BM is gained or lost, and DT gained (at the hazard of the firm's BM status) or lost,
    independently; exits are replaced by entrants of the same expected state. The DT gain and
    keep probabilities are those of the wave (times 1) or none (times 0, keeping all): the same
    numbers as the hazards times `dt_on`, with the exponentials taken once rather than yearly."""
    g_bm, s_dt = year_factors(h_bm, chan, dt_on, loss_dt)
    return advance(q0, g_bm, s_dt, h_dt, np.exp(-loss_bm), dt_on, every_year)


def year_factors(
    h_bm: np.ndarray, chan: np.ndarray, dt_on: np.ndarray, loss_dt: float | np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The yearly BM gain and DT keep probabilities of `mean_field` (years × types): what does
    not depend on the DT hazards, computed once for the bisections over them."""
    chan, dt_on = np.asarray(chan, dtype=float), np.asarray(dt_on, dtype=float)
    # one value per year applies to every type
    chan = chan if chan.ndim == 2 else chan[:, None]
    dt_on = dt_on if dt_on.ndim == 2 else dt_on[:, None]
    return -np.expm1(-np.asarray(h_bm) * chan), np.where(dt_on > 0, np.exp(-loss_dt), 1.0)


def advance(
    q0: np.ndarray,
    g_bm: np.ndarray,
    s_dt: np.ndarray,
    h_dt: np.ndarray,
    stay_bm: np.ndarray,
    dt_on: np.ndarray,
    every_year: bool = True,
) -> np.ndarray:
    """`mean_field` from its yearly factors (`year_factors`) and BM keep probabilities."""
    years = len(g_bm)
    out = np.empty((years if every_year else 1, *q0.shape))
    q00, q01, q10, q11 = q0[:, 0, 0], q0[:, 0, 1], q0[:, 1, 0], q0[:, 1, 1]
    gain0, gain1 = -np.expm1(-h_dt[..., 0]), -np.expm1(-h_dt[..., 1])
    for k in range(years):
        g0, g1, gb, sd = gain0 * dt_on[k], gain1 * dt_on[k], g_bm[k], s_dt[k]
        # DT after the year, by BM status at its start
        d0 = q00 * g0 + q01 * sd  # no BM at the start, DT at the end
        n0 = q00 + q01 - d0
        d1 = q10 * g1 + q11 * sd
        n1 = q10 + q11 - d1
        # BM after the year: no-BM firms gain it, BM firms keep it, independently of DT
        q11 = d0 * gb + d1 * stay_bm
        q10 = n0 * gb + n1 * stay_bm
        q01 = d0 + d1 - q11
        q00 = n0 + n1 - q10
        if every_year or k == years - 1:
            o = out[k if every_year else 0]
            o[:, 0, 0], o[:, 0, 1], o[:, 1, 0], o[:, 1, 1] = q00, q01, q10, q11
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


def _solve(region_code: str, points: list[tuple]) -> list[RunUp]:
    """The run-ups of `points` (values of RUNUP_PARAMETERS, one start year) solved together:
    the types of all points are stacked as rows, so each bisection step and each year of the
    mean-field run-up is one array operation for all of them. Every operation is elementwise
    per row (or sums over a row's own states), and each point stops its DT rounds at its own
    convergence, so every point's run-up is that of the point solved alone, bit for bit."""
    ps = [_Values(dict(zip(RUNUP_PARAMETERS, v, strict=True))) for v in points]
    starts = sorted({int(p.runup_start_year) for p in ps})
    if len(starts) > 1:
        raise ValueError(
            f"run-ups solved together with runup_start_year = {', '.join(map(str, starts))}; "
            "allowed: one start year (the years of the run-up are shared)"
        )
    p_bm, p_dt, c = cross_section(region_code)
    n, k = len(p_bm), len(ps)
    first = starts[0]
    years = range(first + 1, START_YEAR + 1)
    # per year × row (the types of point 0, then those of point 1, …)
    chan = np.repeat(np.array([[channel_sum(y, p) for p in ps] for y in years]), n, axis=1)
    wave = [[1.0 if y >= p.dt_wave_start_year else 0.0 for p in ps] for y in years]
    dt_on = np.repeat(np.array(wave), n, axis=1)
    loss_dt = np.repeat([p.dt_loss_rate for p in ps], n)
    loss_bm = np.concatenate(
        [p.bm_loss_rate * np.where(c["service_strategy"], p.bm_loss_strategy_factor, 1.0) for p in ps]
    )
    q0 = np.concatenate([start_state(p_bm, p_dt, p.bm_start_odds, p.dt_start_odds) for p in ps])
    target_bm, target_dt = np.tile(p_bm, k), np.tile(p_dt, (k, 1))

    def end(h_bm: np.ndarray, h_dt: np.ndarray) -> np.ndarray:
        return mean_field(q0, h_bm, h_dt, loss_bm, chan, dt_on, loss_dt, every_year=False)[-1]

    # BM does not depend on DT: its hazard follows from the BM marginal alone
    no_dt = np.zeros((n * k, 2))
    h_bm = np.exp(_bisect(lambda x: end(np.exp(x), no_dt)[:, 1].sum(axis=1) - target_bm, (n * k,)))
    # the two DT hazards barely act on each other's target: solve each with the other held, both
    # at once (the types stacked twice), and repeat until they settle; a point whose hazards
    # have settled leaves the rounds
    h_dt = np.full((n * k, 2), 0.05)
    active = np.arange(k)
    for _ in range(ROUNDS):
        rows = (active[:, None] * n + np.arange(n)).ravel()
        old = h_dt[rows]
        h_dt[rows] = _dt_round(
            q0[rows],
            h_bm[rows],
            loss_bm[rows],
            chan[:, rows],
            dt_on[:, rows],
            loss_dt[rows],
            target_dt[rows],
            old,
        )
        change = np.abs(np.log(h_dt[rows]) - np.log(old)).reshape(len(active), 2 * n).max(axis=1)
        active = active[~(change < TOLERANCE)]
        if not len(active):
            break
    path = np.concatenate([q0[None], mean_field(q0, h_bm, h_dt, loss_bm, chan, dt_on, loss_dt)])
    out = []
    for i, (p, values) in enumerate(zip(ps, points, strict=True)):
        part = slice(i * n, (i + 1) * n)
        out.append(
            RunUp(
                first,
                int(p.dt_wave_start_year),
                h_bm[part].copy(),
                h_dt[part].copy(),
                path[:, part].copy(),
                joint(p_bm, p_dt),
                c["weight"],
                (region_code, values),
            )
        )
    return out


def _dt_round(
    q0: np.ndarray,
    h_bm: np.ndarray,
    loss_bm: np.ndarray,
    chan: np.ndarray,
    dt_on: np.ndarray,
    loss_dt: np.ndarray,
    p_dt: np.ndarray,
    old: np.ndarray,
) -> np.ndarray:
    """One round of the DT hazards of the types given (rows): each of the two solved with the
    other held at `old`, both at once (the types stacked twice)."""
    m = len(q0)
    q0_2 = np.concatenate([q0, q0])
    dt_on_2 = np.tile(dt_on, 2)
    # what the trial DT hazards do not change: the yearly BM gains and DT keep probabilities,
    # and the years before any row's DT wave (no DT gained or lost: the state at the wave's start)
    g_bm, s_dt = year_factors(np.tile(h_bm, 2), np.tile(chan, 2), dt_on_2, np.tile(loss_dt, 2))
    stay_bm = np.exp(-np.tile(loss_bm, 2))
    before = int(np.argmax(dt_on_2.any(axis=1))) if dt_on_2.any() else 0
    if before:
        q0_2 = advance(q0_2, g_bm[:before], s_dt[:before], np.zeros((2 * m, 2)), stay_bm, dt_on_2, False)[-1]
    g_bm, s_dt, dt_on_2 = g_bm[before:], s_dt[before:], dt_on_2[before:]

    def gap(x: np.ndarray) -> np.ndarray:
        trial = np.exp(x)
        both = np.concatenate(
            [np.column_stack([trial[:, 0], old[:, 1]]), np.column_stack([old[:, 0], trial[:, 1]])]
        )
        e = advance(q0_2, g_bm, s_dt, both, stay_bm, dt_on_2, every_year=False)[-1]
        e0, e1 = e[:m, 0], e[m:, 1]  # DT among firms without / with a BM, each in its own copy
        return np.column_stack([e0[:, 1] / e0.sum(axis=1), e1[:, 1] / e1.sum(axis=1)]) - p_dt

    return np.exp(_bisect(gap, (m, 2)))


class _Values:
    """Attribute access to the run-up's parameter values (and the derived intrinsic weight)."""

    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)
        self.bm_weight_intrinsic = (
            1.0 - values["bm_weight_peers"] - values["bm_weight_customers"] - values["bm_weight_competition"]
        )


_CACHE: OrderedDict[tuple, RunUp] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def runup_key(region_code: str, params) -> tuple:
    """What a run-up depends on: the region and the values of RUNUP_PARAMETERS."""
    return (region_code, tuple(getattr(params, k) for k in RUNUP_PARAMETERS))


def solve_runups(region_code: str, params: Sequence) -> list[RunUp]:
    """The run-up of `region_code` under each parameter set of `params` (one runup_start_year):
    the distinct ones not yet cached solved together (`_solve`), each as it is solved alone."""
    keys = [runup_key(region_code, p) for p in params]
    with _CACHE_LOCK:  # threads of one worker share the cache
        found = {k: _CACHE[k] for k in keys if k in _CACHE}
    missing = list(dict.fromkeys(k for k in keys if k not in found))
    if missing:
        found.update(zip(missing, _solve(region_code, [values for _, values in missing]), strict=True))
    with _CACHE_LOCK:
        for k in dict.fromkeys(keys):
            _CACHE[k] = found[k]
            _CACHE.move_to_end(k)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    return [found[k] for k in keys]


def solve_runup(region_code: str, params) -> RunUp:
    """The run-up of `region_code` under `params` (cached per region and the values it uses)."""
    return solve_runups(region_code, [params])[0]


def clear_cache() -> None:
    """Forget every solved run-up (for timing the inversion)."""
    with _CACHE_LOCK:
        _CACHE.clear()

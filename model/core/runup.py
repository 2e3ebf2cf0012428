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

The hazards are solved on the log-hazards by a safeguarded root finder vectorised over types
(`_crossings`, `_roots`: Chandrupatla's inverse quadratic interpolation, bisection where it is
unsafe or slow), each type stopping when its bracket is narrower than X_TOLERANCE and left alone
from then on. BM first, from the BM marginal alone; then the two DT hazards in rounds, each
solved with the other held, the first round over the whole bracket and later ones first within
a narrow bracket around the value the last moves predict (`_near`; its signs checked, and where
the crossing lies outside it the rest of the bracket on that side). About 120 evaluations of
the mean-field run-up per solve where 32 bisections per hazard took 363: about 25 ms of processor
time per point alone and 8 ms per point when 16 points are solved together, against 70 and 35 ms
(`benchmarks/bench_runup.py`).
"""

from __future__ import annotations

import functools
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mittelbau.core.categories import STAGE_TOLERANCE, START_YEAR
from mittelbau.core.population import structure_cells
from mittelbau.core.propensities import load_propensities, logistic
from mittelbau.core.region_data import load_region

if TYPE_CHECKING:
    from mittelbau.core.scenario import Params

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
X_TOLERANCE = 1e-11  # width of a crossing's final bracket in log-hazard
MAX_STEPS = 200  # steps of the root finder at most (a safeguard: about 10 are taken)
WARP_WIDTH = 0.1  # brackets wider than this (log-hazard) are interpolated in the warped variable
CHUNK = 8192  # rows evaluated at once
REGATHER = 0.75  # open rows are gathered anew when fewer than this share of those gathered
ROUNDS = 20  # most rounds of the two DT hazards' joint solution
TOLERANCE = 1e-3  # rounds stop when no log-hazard changes by more
# a DT round's first bracket around each hazard (`_near`): in the second round ± WARM_WIDTH times the
# type's larger last move; later ± WARM_LAST times that plus WARM_PRED times the predicted move;
# WARM_FLOOR added
WARM_WIDTH, WARM_LAST, WARM_PRED, WARM_FLOOR = 4.0, 0.1, 0.5, 1e-5


def pressure_index(year: int, growth: float) -> float:
    """Digital pressure at the start of simulated `year`: 1 at the start of 2016 (the end of the
    2015 survey year), linear in time, never below 0."""
    return max(0.0, 1.0 + growth * (year - 1 - START_YEAR))


def channel_sum(year: int, p: Params | _Values) -> float:
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
        the two sits at the end of its bracket). Where such types hold half the firms or more
        (`bracketed_share`), the median is one of theirs and means only 'at least'."""
        ratio = self.h_dt[:, 1] / self.h_dt[:, 0]
        order = np.argsort(ratio)
        cum = np.cumsum(self.weight[order])
        return float(ratio[order][np.searchsorted(cum, 0.5 * cum[-1])])

    @functools.cached_property
    def bracketed_share(self) -> float:
        """Population share of firm types with a DT hazard at an end of the searched bracket
        (`LOG_H_RANGE`): their 2015 state is out of the dynamics' reach, and the coupling
        their hazards give is only a bound (the true one would be stronger)."""
        log_h = np.log(self.h_dt)
        ends = (log_h <= LOG_H_RANGE[0] + 1e-6) | (log_h >= LOG_H_RANGE[1] - 1e-6)
        return float(self.weight[ends.any(axis=1)].sum() / self.weight.sum())

    @functools.cached_property
    def expected_stage_shares(self) -> np.ndarray:
        """Stage shares 1–3 of the mean-field 2015 state over the region's types."""
        return stage_shares_of(self.expected[-1], self.weight)

    @functools.cached_property
    def target_stage_shares(self) -> np.ndarray:
        """Stage shares 1–3 of the 2015 cross-section the run-up is solved for."""
        return stage_shares_of(self.target, self.weight)

    @functools.cached_property
    def stage_gap(self) -> float:
        """Largest difference between the run-up's expected 2015 stage shares and the
        cross-section's (a share): about 0.007 for Stuttgart at the defaults; it grows with
        `bm_loss_rate` (firms dropping a BM keep their DT, which no hazard can undo) and with
        more DT at the wave's start. Above STAGE_TOLERANCE the run starts its projection
        away from the surveyed state."""
        return float(np.abs(self.expected_stage_shares - self.target_stage_shares).max())

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


def miss_note(gaps: Sequence[float]) -> str | None:
    """A report's line when runs start their projection farther from the 2015 cross-section
    than STAGE_TOLERANCE (their `runup_gap` outcomes); None when none does."""
    g = np.asarray(gaps, dtype=float)
    g = g[np.isfinite(g)]
    off = int((g > STAGE_TOLERANCE).sum())
    if not off:
        return None
    return (
        f"{off} of {len(g)} runs start their projection more than {100 * STAGE_TOLERANCE:g} points "
        f"from the 2015 cross-section (largest {100 * g.max():.1f} points; outcome `runup_gap`): "
        "at their parameters the run-up cannot reach the surveyed state, above all where "
        "`bm_loss_rate` is high (docs/odd.md, 'What the data cannot give')."
    )


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


def stage_shares_of(q: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Stage shares 1–3 of (BM, DT) probabilities per type (cells × 2 × 2) with the types'
    weights: stage 1 neither, stage 2 one of the two, stage 3 both."""
    per_type = np.stack([q[:, 0, 0], q[:, 0, 1] + q[:, 1, 0], q[:, 1, 1]], axis=1)
    return weight @ per_type / weight.sum()


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
    × 2 × 2).

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
    not depend on the DT hazards, computed once for the root finder's steps over them."""
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
    # the DT gain probabilities of every year at once: one value per year applies to every type
    on = np.asarray(dt_on, dtype=float)[:years]
    on = on if on.ndim == 2 else on[:, None]
    gain0, gain1 = gain0 * on, gain1 * on
    for k in range(years):
        g0, g1, gb, sd = gain0[k], gain1[k], g_bm[k], s_dt[k]
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


def _bm_end(p0: np.ndarray, g_bm: np.ndarray, stay_bm: np.ndarray) -> np.ndarray:
    """P(BM) after the years of `g_bm` (years × types) from `p0`: the BM marginal of
    `advance`, which does not depend on DT."""
    p = p0
    for gb in g_bm:
        p = p * stay_bm + (1 - p) * gb
    return p


def _gap(gather, evaluate, n: int, block: int | None = None):
    """The function `gap(x, rows)` of `_crossings` for `n` rows, from `gather(rows)`, the data
    of some rows (an index array, or a slice within one block of `block` rows), and
    `evaluate(x, data)`, their gap at the log-hazards `x`. Rows are gathered and evaluated in
    parts of at most CHUNK rows (longer arrays overflow the processor's cache and cost about
    twice as much per row), and the parts are kept while the same rows are asked for (a root
    finder's steps). `rows` None: every row in order, once or more, taken in place where that
    is more than one part."""
    memo: list = [None, None]
    block = block or n
    whole = [
        slice(a, min(a + CHUNK, b + block)) for b in range(0, n, block) for a in range(b, b + block, CHUNK)
    ]
    whole_data = [gather(part) for part in whole]

    def gap(x: np.ndarray, rows: np.ndarray | None) -> np.ndarray:
        if rows is None:
            if len(x) > CHUNK:
                return np.concatenate(
                    [
                        evaluate(x[a + part.start : a + part.stop], d)
                        for a in range(0, len(x), n)
                        for part, d in zip(whole, whole_data, strict=True)
                    ]
                )
            rows = np.tile(np.arange(n), len(x) // n)
        if memo[0] is not rows:
            memo[:] = [rows, [gather(rows[a : a + CHUNK]) for a in range(0, len(rows), CHUNK)]]
        if len(memo[1]) == 1:
            return evaluate(x, memo[1][0])
        return np.concatenate([evaluate(x[i * CHUNK : (i + 1) * CHUNK], d) for i, d in enumerate(memo[1])])

    return gap


def _take(a: np.ndarray, rows: np.ndarray | slice, axis: int = 0) -> np.ndarray:
    """The rows `rows` of `a` along `axis`: a view for a slice, else a copy (np.take: faster
    than indexing)."""
    if isinstance(rows, slice):
        return a[(slice(None),) * axis + (rows,)]
    return np.take(a, rows, axis=axis)


def _crossings(
    gap,
    n: int,
    scale: np.ndarray,
    guess: np.ndarray | None = None,
    width: np.ndarray | None = None,
) -> np.ndarray:
    """For each of `n` rows, the log-hazard where the increasing function `gap` crosses 0 (the
    end of LOG_H_RANGE where it does not: a target the dynamics cannot reach). Searched in the
    whole range, or first within `width` of `guess`: a narrow bracket whose signs are checked,
    and where the crossing lies outside it, the rest of the range on that side.

    `gap(x, rows)` is the gap of the rows `rows` (indices of the `n` rows, in any order, repeats
    allowed) at the log-hazards `x`, elementwise. Every step is elementwise too and each row
    stops at its own convergence (`_roots`), so a row's crossing depends on its own values
    alone, whatever other rows are solved with it."""
    lo_end, hi_end = LOG_H_RANGE
    rows = np.arange(n)
    if guess is None:
        lo, hi = np.full(n, lo_end), np.full(n, hi_end)
    else:
        # within the range: a guess predicted far outside it (a tiny move divided by another
        # in `_near`) gives the range's end
        lo, hi = np.clip(guess - width, lo_end, hi_end), np.clip(guess + width, lo_end, hi_end)
    f = gap(np.concatenate([lo, hi]), None)
    f_lo, f_hi = f[:n], f[n:]
    # a crossing below the bracket (the gap above 0 at its lower end) or above it: the rest of
    # the range on that side, its far end evaluated for those rows only
    below = (f_lo > 0) & (lo > lo_end)
    above = (f_hi < 0) & (hi < hi_end) & ~below
    if below.any() or above.any():
        far = np.flatnonzero(below | above)
        f_far = gap(np.where(below[far], lo_end, hi_end), far)
        hi[below], f_hi[below] = lo[below], f_lo[below]
        lo[below], f_lo[below] = lo_end, f_far[below[far]]
        lo[above], f_lo[above] = hi[above], f_hi[above]
        hi[above], f_hi[above] = hi_end, f_far[above[far]]
    # an exact zero at an end, or no crossing in the range: that end
    x = np.where(f_lo >= 0, lo, np.where(f_hi <= 0, hi, np.nan))
    o = np.isnan(x)
    if o.any():
        x[o] = _roots(gap, rows[o], lo[o], f_lo[o], hi[o], f_hi[o], scale[o])
    return x


def _roots(
    gap,
    rows: np.ndarray,
    x1: np.ndarray,
    f1: np.ndarray,
    x2: np.ndarray,
    f2: np.ndarray,
    scale: np.ndarray,
) -> np.ndarray:
    """Chandrupatla's root finder, vectorised over `rows`, each with its bracket [x1, x2] (in
    either order; gap `f1` < 0 < `f2` or the reverse): a secant step first, then inverse
    quadratic interpolation through the bracket's ends and the point last dropped where that is
    safe, else bisection; bisection too where three steps have neither halved a row's bracket
    nor cut its smallest gap a hundredfold. Brackets wider than WARP_WIDTH are interpolated in
    the warped variable of `_warp` (`scale` per row), in which the gap is closer to linear.
    A row stops when its bracket is narrower than X_TOLERANCE (its midpoint returned) or it
    meets an exact zero, and from then on its value never changes; every decision is the row's
    own, so its crossing is the same whatever rows are solved with it. Written in numpy, not
    with scipy.optimize: a run's imports must not load it (lean start-up, tests/test_startup.py)."""
    out = np.empty(len(rows))
    left = np.arange(len(rows))  # positions in `out` of the rows still open
    x3, f3 = x2, f2
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(np.abs(x2 - x1) > WARP_WIDTH, _secant(x1, f1, x2, f2, scale), f1 / (f1 - f2))
    t_min = 0.4 * X_TOLERANCE / np.abs(x2 - x1)
    t = np.clip(t, t_min, 1 - t_min)
    checked, checked_f = np.abs(x2 - x1), np.minimum(np.abs(f1), np.abs(f2))
    # the rows evaluated: those open, and those closed since the rows were gathered (their
    # values unused) until fewer than the share REGATHER of them are open
    evaluated, at, x_all = rows, np.arange(len(rows)), x1.copy()
    for step in range(MAX_STEPS):
        x = x1 + t * (x2 - x1)
        if len(at) == len(evaluated):
            f = gap(x, evaluated)
        else:
            x_all[at] = x
            f = gap(x_all, evaluated)[at]
        # the new point replaces the end on its side; the end it replaces is kept as the third
        same = (f > 0) == (f1 > 0)
        x3, f3 = np.where(same, x1, x2), np.where(same, f1, f2)
        x2, f2 = np.where(same, x2, x1), np.where(same, f2, f1)
        x1, f1 = x, f
        dx = np.abs(x2 - x1)
        done = (f == 0) | (dx < X_TOLERANCE)
        if done.any():
            out[left[done]] = np.where(f[done] == 0, x[done], 0.5 * (x1[done] + x2[done]))
            keep = ~done
            if len(at) == len(evaluated):
                x_all = x.copy()
            left, at = left[keep], at[keep]
            if len(at) < REGATHER * len(evaluated):
                evaluated, x_all, at = evaluated[at], x_all[at], np.arange(len(at))
            x1, f1, x2, f2, x3, f3 = x1[keep], f1[keep], x2[keep], f2[keep], x3[keep], f3[keep]
            dx, checked, checked_f, scale = dx[keep], checked[keep], checked_f[keep], scale[keep]
            if not len(at):
                return out
        with np.errstate(divide="ignore", invalid="ignore"):
            # interpolation in the warped variable where the bracket is wide
            wide = dx > WARP_WIDTH
            warped = wide.any()
            u1, u2, u3 = (
                (np.where(wide, _warp(v, scale), v) for v in (x1, x2, x3)) if warped else (x1, x2, x3)
            )
            xi = (u1 - u2) / (u3 - u2)
            phi = (f1 - f2) / (f3 - f2)
            alpha = (u3 - u1) / (u2 - u1)
            t = f1 / (f1 - f2) * f3 / (f3 - f2) - alpha * f1 / (f3 - f1) * f2 / (f2 - f3)
            safe = (1 - np.sqrt(1 - xi) < phi) & (phi < np.sqrt(xi))
            if warped:
                t = np.where(wide, (_unwarp(u1 + t * (u2 - u1), scale) - x1) / (x2 - x1), t)
            safe &= np.isfinite(t)
        if step % 3 == 2:  # every third step (all rows of a call start together)
            best = np.minimum(np.abs(f1), np.abs(f2))
            safe &= (dx <= 0.5 * checked) | (best <= 0.01 * checked_f)
            checked, checked_f = dx, best
        t = np.where(safe, t, 0.5)
        # at least a fraction of the tolerance away from either end: near the root the bracket
        # closes to below the tolerance from the side of its nearer end
        t_min = 0.4 * X_TOLERANCE / dx
        t = np.clip(t, t_min, 1 - t_min)
    out[left] = 0.5 * (x1 + x2)
    return out


def _warp(x: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The share of firms a log-hazard `x` acting `scale` times (years, or the years' channel
    sum) would move: the variable the root finder interpolates in, in which the gap of a
    target is close to linear."""
    return -np.expm1(-scale * np.exp(x))


def _unwarp(u: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The log-hazard of the warped value `u` (`_warp` inverted)."""
    return np.log(-np.log1p(-u) / scale)


def _secant(x1: np.ndarray, f1: np.ndarray, x2: np.ndarray, f2: np.ndarray, scale: np.ndarray) -> np.ndarray:
    """The secant step's fraction of the way from x1 to x2 (in the warped variable), bisection
    where it is not finite."""
    u1 = _warp(x1, scale)
    t = (_unwarp(u1 + f1 / (f1 - f2) * (_warp(x2, scale) - u1), scale) - x1) / (x2 - x1)
    return np.where(np.isfinite(t), t, 0.5)


def start_state(p_bm: np.ndarray, p_dt: np.ndarray, bm_odds: float, dt_odds: float) -> np.ndarray:
    """cells × 2 × 2: the 2015 probabilities with the odds of BM and of DT (given BM) scaled by
    the start odds ratios, so every type keeps its structural pattern at a lower level."""

    def scaled(p: np.ndarray, ratio: float) -> np.ndarray:
        return ratio * p / (1 - p + ratio * p)

    return joint(scaled(p_bm, bm_odds), scaled(p_dt, dt_odds))


def _solve(region_code: str, points: list[tuple]) -> list[RunUp]:
    """The run-ups of `points` (values of RUNUP_PARAMETERS, one start year) solved together:
    the types of all points are stacked as rows, so each root-finder step and each year of the
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

    # BM does not depend on DT: its hazard follows from the BM marginal alone
    p0_bm, stay_bm = q0[:, 1].sum(axis=1), np.exp(-loss_bm)

    def bm_rows(rows: np.ndarray | slice) -> tuple:
        return *(_take(a, rows) for a in (p0_bm, stay_bm, target_bm)), _take(chan, rows, 1)

    def bm_gap(x: np.ndarray, data: tuple) -> np.ndarray:
        p0, stay, target, ch = data
        return _bm_end(p0, -np.expm1(-np.exp(x) * ch), stay) - target

    h_bm = np.exp(_crossings(_gap(bm_rows, bm_gap, n * k), n * k, chan.sum(axis=0)))
    # the two DT hazards barely act on each other's target: solve each with the other held, both
    # at once (the types stacked twice), and repeat until they settle; a point whose hazards
    # have settled leaves the rounds. From the second round on, each hazard is searched first
    # near the value its last moves predict (`_near`)
    h_dt = np.full((n * k, 2), 0.05)
    x_dt = np.log(h_dt)
    moves = np.zeros((2, n * k, 2))  # each log-hazard's move in the last round and the one before
    active = np.arange(k)
    for r in range(ROUNDS):
        rows = (active[:, None] * n + np.arange(n)).ravel()
        old, x_old = np.take(h_dt, rows, axis=0), np.take(x_dt, rows, axis=0)
        x = _dt_round(
            *(np.take(a, rows, axis=0) for a in (q0, h_bm, loss_bm)),
            *(np.take(a, rows, axis=1) for a in (chan, dt_on)),
            *(np.take(a, rows, axis=0) for a in (loss_dt, target_dt)),
            old,
            _near(x_old, np.take(moves, rows, axis=1), r),
        )
        moves[1, rows], moves[0, rows], x_dt[rows] = moves[0, rows], x - x_old, x
        h_dt[rows] = np.exp(x)
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


def _near(x: np.ndarray, moves: np.ndarray, r: int) -> tuple[np.ndarray, np.ndarray] | None:
    """Where round `r` (from 0) searches the DT log-hazards `x` (rows × 2) first: nowhere in the
    first round (the whole range); in the second within a multiple of the larger of the
    type's two last moves; from the third on around the move predicted from the other hazard's
    last move (each hazard's move follows the move of the one held, at the rate seen in the
    round before), within a multiple of that prediction and of the larger last move."""
    if r == 0:
        return None
    last = np.abs(moves[0]).max(axis=1, keepdims=True)
    if r == 1:
        return x, np.broadcast_to(WARM_WIDTH * last + WARM_FLOOR, x.shape).copy()
    with np.errstate(divide="ignore", invalid="ignore"):
        pred = moves[0] / moves[1][:, ::-1] * moves[0][:, ::-1]
    pred = np.where(np.isfinite(pred), pred, 0.0)
    return x + pred, WARM_LAST * last + WARM_PRED * np.abs(pred) + WARM_FLOOR


def _dt_round(
    q0: np.ndarray,
    h_bm: np.ndarray,
    loss_bm: np.ndarray,
    chan: np.ndarray,
    dt_on: np.ndarray,
    loss_dt: np.ndarray,
    p_dt: np.ndarray,
    old: np.ndarray,
    near: tuple[np.ndarray, np.ndarray] | None = None,
) -> np.ndarray:
    """One round of the DT log-hazards of the types given (rows): each of the two solved with the
    other held at `old`, both at once (the types stacked twice), searched first within
    `near[1]` of `near[0]` (rows × 2 each) when given."""
    m = len(q0)
    # what the trial DT hazards do not change: the yearly BM gains and DT keep probabilities,
    # and the years before any row's DT wave (no DT gained or lost: the state at the wave's start)
    g_bm, s_dt = year_factors(h_bm, chan, dt_on, loss_dt)
    stay_bm = np.exp(-loss_bm)
    before = int(np.argmax(dt_on.any(axis=1))) if dt_on.any() else 0
    if before:
        q0 = advance(q0, g_bm[:before], s_dt[:before], np.zeros((m, 2)), stay_bm, dt_on, False)[-1]
    g_bm, s_dt, dt_on = g_bm[before:], s_dt[before:], np.asarray(dt_on, dtype=float)[before:]
    # the DT keep probabilities and wave switches one value per year where every row has the
    # same (the same numbers, not gathered row by row)
    shared = bool((s_dt == s_dt[:, :1]).all() and (dt_on == dt_on[:, :1]).all())
    if shared:
        yearly, s_dt, dt_on = g_bm[None], s_dt[:, 0], dt_on[:, 0]
    else:
        yearly = np.stack([g_bm, s_dt, dt_on])
    # row j of the 2m solved: the hazard of BM status j // m of type j % m, the other one held
    held, status = np.concatenate([old, old]), np.repeat([0, 1], m)
    target = np.concatenate([p_dt[:, 0], p_dt[:, 1]])

    def dt_rows(rows: np.ndarray | slice) -> tuple:
        h, b, p = (_take(a, rows) for a in (held, status, target))
        # the types of the rows (a slice lies within one copy of them)
        types = slice(rows.start % m, rows.start % m + len(b)) if isinstance(rows, slice) else rows % m
        q, stay = _take(q0, types), _take(stay_bm, types)
        return q, h, stay, 2 * np.arange(len(b)) + b, p, _take(yearly, types, 2)

    def dt_gap(x: np.ndarray, data: tuple) -> np.ndarray:
        q, held_rows, stay, own, p, year_rows = data  # own: the row's BM status, flat
        g, s, on = (year_rows[0], s_dt, dt_on) if shared else year_rows
        both = held_rows.copy()
        np.put(both, own, np.exp(x))
        e = np.take(advance(q, g, s, both, stay, on, False)[-1].reshape(-1, 2), own, axis=0)
        return e[:, 1] / (e[:, 0] + e[:, 1]) - p  # DT among firms of the row's BM status

    wave_years = np.full(m, dt_on.sum()) if shared else yearly[2].sum(axis=0)
    wave_years = np.tile(np.maximum(wave_years, 1.0), 2)
    start = (None,) * 2 if near is None else tuple(a.T.ravel() for a in near)
    return _crossings(_gap(dt_rows, dt_gap, 2 * m, m), 2 * m, wave_years, *start).reshape(2, m).T


class _Values:
    """Attribute access to the run-up's parameter values (and the derived intrinsic weight)."""

    def __init__(self, values: dict) -> None:
        self.__dict__.update(values)
        self.bm_weight_intrinsic = (
            1.0 - values["bm_weight_peers"] - values["bm_weight_customers"] - values["bm_weight_competition"]
        )


_CACHE: OrderedDict[tuple, RunUp] = OrderedDict()
_CACHE_LOCK = threading.Lock()


def runup_key(region_code: str, params: Params) -> tuple:
    """What a run-up depends on: the region and the values of RUNUP_PARAMETERS."""
    return (region_code, tuple(getattr(params, k) for k in RUNUP_PARAMETERS))


def solve_runups(region_code: str, params: Sequence[Params]) -> list[RunUp]:
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


def solve_runup(region_code: str, params: Params) -> RunUp:
    """The run-up of `region_code` under `params` (cached per region and the values it uses)."""
    return solve_runups(region_code, [params])[0]


def clear_cache() -> None:
    """Forget every solved run-up (for timing the inversion)."""
    with _CACHE_LOCK:
        _CACHE.clear()

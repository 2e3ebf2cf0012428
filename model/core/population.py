"""Population synthesis: draw a region's firms from its structure (sources §3) and the shared
traits (sources §4), then their capabilities — from the fitted 2015 propensities, or from
per-type state probabilities such as a year of the run-up."""

from __future__ import annotations

import itertools
from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cache

import numpy as np
from scipy.special import logit, ndtri

from mittelbau.core.categories import (
    BATCH_TYPES,
    COMPLEXITIES,
    ENGAGEMENT_LEVELS,
    INDUSTRIES,
    MARKET_POSITIONS,
    POSITIONS,
    SIZE_CLASSES,
)
from mittelbau.core.propensities import Propensities, load_propensities, logistic
from mittelbau.core.region_data import Region, in_order, load_region, load_traits, normalised


@dataclass
class FirmTable:
    """Column arrays of a set of firms, one row per firm."""

    industry: np.ndarray
    size: np.ndarray
    batch: np.ndarray
    complexity: np.ndarray
    position: np.ndarray
    market: np.ndarray
    financing_constraint: np.ndarray
    service_strategy: np.ndarray
    threatened: np.ndarray
    techniques: np.ndarray
    engagement: np.ndarray
    bm: np.ndarray
    dt: np.ndarray
    dt_items: np.ndarray  # (n, 4) booleans, order DT_ITEMS
    # state of the switchable mechanisms (model/core/mechanisms.py): neutral values from
    # `synthesise`, drawn from the mechanisms' own stream by `mechanisms.draw_state`
    service_revenue: np.ndarray  # service revenue share (sources §2.12)
    it_specialist: np.ndarray  # employs IT specialists (sources §6.2)
    trains: np.ndarray  # covers skills gaps by training (sources §6.2)
    platform: np.ndarray  # a platform supplier (sources §7.3)

    def __len__(self) -> int:
        return len(self.industry)

    @property
    def stage(self) -> np.ndarray:
        """1 + BM + DT (sources §1): 1 product maker, 2 product-service, 3 digital BM."""
        bm, dt = self.bm, self.dt
        if bm.dtype != np.bool_ or dt.dtype != np.bool_:
            bm, dt = bm.astype(np.bool_), dt.astype(np.bool_)
        stage = bm.view(np.int8) + dt.view(np.int8)  # booleans are bytes of 0 or 1
        stage += 1
        return stage

    def replace_rows(self, rows: np.ndarray, other: FirmTable, keep: tuple[str, ...] = ()) -> None:
        """Overwrite `rows` with the firms of `other` (same length), except the fields in `keep`."""
        for name in self.__dataclass_fields__:
            if name not in keep:
                getattr(self, name)[rows] = getattr(other, name)


def service_strategy_logit(
    industry: np.ndarray, size: np.ndarray, batch: np.ndarray, complexity: np.ndarray
) -> np.ndarray:
    """Structural log-odds of treating services as a competitive factor (sources §2.11),
    relative to the reference share; the regional level is added by `solve_intercept`."""
    eff = load_traits()["service_strategy_effects"]
    by_industry = logit(in_order(eff["industry_shares"], INDUSTRIES)) - logit(eff["reference_share"])
    return (
        by_industry[industry]
        + eff["per_size_class"] * size
        + eff["single_unit"] * (batch == BATCH_TYPES.index("single"))
        + eff["simple_product"] * (complexity == COMPLEXITIES.index("simple"))
    )


def solve_intercept(log_odds: np.ndarray, share: float, weights: np.ndarray | None = None) -> float:
    """The intercept that makes the (weighted) mean probability equal `share`: bisection on
    [-30, 30] (the mean rises with the intercept) until the bracket cannot shrink any more.
    Solved once per region; bisection keeps `scipy.optimize` off the model's import path."""
    w = np.ones_like(log_odds) if weights is None else weights
    low, high = -30.0, 30.0
    while True:
        mid = 0.5 * (low + high)
        if mid in (low, high):
            return mid
        if np.average(logistic(mid + log_odds), weights=w) < share:
            low = mid
        else:
            high = mid


@dataclass(frozen=True)
class StructureCells:
    """Every combination of industry × size × batch × complexity × service strategy, with its
    expected population weight in a region (attributes are drawn independently)."""

    codes: dict[str, np.ndarray]
    weight: np.ndarray
    service_strategy_intercept: float


def cell_index(
    industry: np.ndarray,
    size: np.ndarray,
    batch: np.ndarray,
    complexity: np.ndarray,
    service_strategy: np.ndarray,
) -> np.ndarray:
    """Row of each firm's type in `structure_cells` (the same order)."""
    flat = ((industry.astype(np.int64) * len(SIZE_CLASSES) + size) * len(BATCH_TYPES) + batch) * len(
        COMPLEXITIES
    ) + complexity
    n_flat = len(INDUSTRIES) * len(SIZE_CLASSES) * len(BATCH_TYPES) * len(COMPLEXITIES)
    return flat + n_flat * service_strategy.astype(np.int64)


def structure_cells(region: Region) -> StructureCells:
    grid = np.array(
        list(
            itertools.product(
                range(len(INDUSTRIES)),
                range(len(SIZE_CLASSES)),
                range(len(BATCH_TYPES)),
                range(len(COMPLEXITIES)),
            )
        )
    )
    ind, size, batch, cplx = grid.T
    w = region.industry[ind] * region.size[size] * region.batch[batch] * region.complexity[cplx]
    ss_logit = service_strategy_logit(ind, size, batch, cplx)
    a = solve_intercept(ss_logit, region.service_strategy_share, weights=w)
    p_ss = logistic(a + ss_logit)

    def twice(x: np.ndarray) -> np.ndarray:
        return np.concatenate([x, x])

    codes = {
        "industry": twice(ind),
        "size": twice(size),
        "batch": twice(batch),
        "complexity": twice(cplx),
        "service_strategy": np.repeat([0, 1], len(ind)),
    }
    return StructureCells(codes, np.concatenate([w * (1 - p_ss), w * p_ss]), a)


def normal_scores(code: np.ndarray, sizes: Sequence[int] | None = None) -> np.ndarray:
    """Rank-based standard-normal scores of non-negative integer codes (ranked in the order of
    the codes): the normal quantile of (rank − ½) / n, ties sharing the mean of their ranks
    (`scipy.stats.norm.ppf` of `rankdata`, the same values). `code` may hold several runs'
    firms stacked (`sizes` rows each, one run when None): each is ranked among its own run's.
    The codes are few (size classes, technique counts), so the ranks come from counting each
    code within its run, without sorting; the quantile is taken once per run and code."""
    n = len(code)
    if n <= 1:
        return np.zeros(n)
    code = code.astype(np.int64)
    levels = int(code.max()) + 1
    if sizes is None or len(sizes) == 1:
        counts = np.bincount(code, minlength=levels)
        ends = np.cumsum(counts)  # each code's last rank; its first is that minus its count
        z = ndtri((0.5 * ((ends - counts) + ends + 1) - 0.5) / n)
        return z[code]
    runs = np.asarray(sizes, dtype=np.int64)
    key = np.repeat(np.arange(len(runs)) * levels, runs) + code
    counts = np.bincount(key, minlength=len(runs) * levels).reshape(len(runs), levels)
    ends = np.cumsum(counts, axis=1)  # ranks within each run
    z = ndtri((0.5 * ((ends - counts) + ends + 1) - 0.5) / runs[:, None])
    return z.ravel()[key]


def correlated_category(
    code: np.ndarray,
    shares: np.ndarray,
    correlation: float,
    noise: np.ndarray,
    sizes: Sequence[int] | None = None,
) -> np.ndarray:
    """Categories 0..k-1 with the given shares, rank-correlated with the integer codes `code`
    (Gaussian copula, `noise` the standard-normal draws, one per firm; ranks within each run
    of `sizes`, `normal_scores`); higher codes tend to higher categories."""
    latent = correlation * normal_scores(code, sizes) + np.sqrt(1 - correlation**2) * noise
    thresholds = ndtri(np.cumsum(shares)[:-1])
    return np.searchsorted(thresholds, latent).astype(np.int8)


def dt_items_of(dt: np.ndarray, draw: np.ndarray, u: np.ndarray) -> np.ndarray:
    """Which of the four DT items (sources §2.3) each DT firm uses, from uniform draws `u`
    (firms × items) against each item's share `draw`; an empty draw uses internet."""
    items = (u < draw) & dt[:, None]
    empty = dt & ~items.any(axis=1)
    items[empty, 0] = True
    return items


def draw_capabilities(
    table_structure: dict[str, np.ndarray],
    props: Propensities,
    shift: float,
    u_bm: np.ndarray,
    u_dt: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """BM, then DT given BM, from the structural propensities (`u_bm`, `u_dt`: uniform draws);
    `shift` is the region's innovation shift (Region.innovation_shift)."""
    s = table_structure
    args = (s["industry"], s["size"], s["batch"], s["complexity"], s["service_strategy"])
    p_bm = logistic(props.bm.intercept + props.bm.innovation * shift + props.bm.structural(*args))
    bm = u_bm < p_bm
    dt_lo = props.dt.intercept + props.dt.innovation * shift + props.dt.structural(*args)
    p_dt = logistic(dt_lo + props.dt.bm * bm)
    return bm, u_dt < p_dt


@cache
def _service_strategy_intercept(code: str) -> float:
    return structure_cells(load_region(code)).service_strategy_intercept


def draw_state(cum: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """BM and DT of firms from the cumulated (BM, DT) probabilities of each firm's type (firms ×
    4, the states in the order (0, 0), (0, 1), (1, 0), (1, 1)) and uniform draws `u`."""
    k = (u[:, None] * cum[:, -1:] >= cum[:, :-1]).sum(axis=1)
    return k >= 2, (k % 2) == 1


def draw_survey_traits(table: FirmTable, rng: np.random.Generator) -> None:
    """Digital techniques and engagement (IHK 2016, sources §4.3–4.4) given each firm's DT and
    size, in place."""
    n = len(table)
    noise, u = rng.standard_normal(n), rng.random(n)
    survey_traits(table, noise, u, rng.standard_normal(n))


def survey_traits(
    table: FirmTable,
    noise: np.ndarray,
    u: np.ndarray,
    engagement_noise: np.ndarray,
    sizes: Sequence[int] | None = None,
) -> None:
    """`draw_survey_traits` from its draws (`noise` and `u` of the techniques, then the
    engagement's), for the firms of the runs of `sizes` stacked, in place."""
    eng = load_traits()["engagement"]
    table.techniques = techniques_of(table.dt, table.size, noise, u, sizes)
    table.engagement = correlated_category(
        table.techniques.astype(np.int64),  # whole techniques here (`techniques_of`)
        normalised(eng["shares"], ENGAGEMENT_LEVELS),
        eng["correlation"],
        engagement_noise,
        sizes,
    )


def synthesise(
    region: Region, n: int, rng: np.random.Generator, state_probs: np.ndarray | None = None
) -> FirmTable:
    """Draw `n` firms of `region`: structure, traits, then capabilities — from the fitted 2015
    propensities, or from per-type (BM, DT) probabilities `state_probs` (types × 2 × 2, the
    order of `structure_cells`), such as a year of the run-up. Also used for entrants: the
    structure and capabilities of any `n` ≥ 1 firms are drawn from the region's expected
    shares, but the traits ranked within the batch drawn (digital techniques, engagement,
    market position: rank scores against the batch's own DT and size) follow their bands
    only in batches of some dozens: a lone firm gets the median score."""
    return synthesise_runs(region, [n], [rng], [state_probs])[0]


def synthesise_runs(
    region: Region,
    sizes: Sequence[int],
    rngs: Sequence[np.random.Generator],
    state_probs: Sequence[np.ndarray | None],
) -> list[FirmTable]:
    """`synthesise` for several runs at once (the first firms of a batch of runs): run r draws
    `sizes[r]` firms from its own generator `rngs[r]`, in the order and sizes of `synthesise`
    alone, and the firms of all runs are then computed as one stack (ranks within each run's
    firms), so each run's table is exactly the one `synthesise` gives it. A run of no firms
    draws nothing. `state_probs` are all None or all arrays."""
    table = synthesise_stack(region, sizes, rngs, state_probs)
    if len(sizes) == 1:
        return [table]
    ends = np.cumsum(sizes)
    return [
        FirmTable(**{f.name: getattr(table, f.name)[e - k : e] for f in fields(FirmTable)})
        for k, e in zip(sizes, ends, strict=True)
    ]


def synthesise_stack(
    region: Region,
    sizes: Sequence[int],
    rngs: Sequence[np.random.Generator],
    state_probs: Sequence[np.ndarray | None],
) -> FirmTable:
    """`synthesise_runs` as one table: the firms of run r are its `sizes[r]` rows, in order."""
    traits = load_traits()
    props = load_propensities()
    from_state = state_probs[0] is not None
    position_shares = normalised(traits["value_chain_position"]["shares"], POSITIONS)
    items = len(props.dt_item_draw)

    # the categorical columns: `Generator.choice(k, n, p=shares)` is the searchsorted of its
    # uniform draws in the normalised cumulated shares, so the draws are taken run by run (in
    # the order of `choice`) and the categories found once for the stack
    cdfs = [
        np.asarray(shares, dtype=float).cumsum()
        for shares in (region.industry, region.size, region.batch, region.complexity, position_shares)
    ]
    uniforms = 4 if from_state else 5  # financing, threatened, service strategy, BM (and DT)

    def draws(rng: np.random.Generator, n: int) -> list[np.ndarray]:
        """One run's draws in the order of drawing them one column at a time (the columns'
        consecutive draws taken as one block each: the same numbers)."""
        picks = rng.random(5 * n).reshape(5, n)  # industry, size, batch, complexity, position
        market_noise = rng.standard_normal(n)
        block = rng.random(uniforms * n + n * items)
        tech_noise, u_tech, eng_noise = rng.standard_normal(n), rng.random(n), rng.standard_normal(n)
        u = block[: uniforms * n].reshape(uniforms, n)
        u_items = block[uniforms * n :].reshape(n, items)
        return [picks, market_noise, u, u_items, tech_noise, u_tech, eng_noise]

    # the runs with firms to draw (a stand-in of none when there are none, drawing nothing)
    kept = [(rng, k, p) for rng, k, p in zip(rngs, sizes, state_probs, strict=True) if k]
    kept = kept or [(np.random.default_rng(0), 0, state_probs[0])]
    counted = [k for _, k, _ in kept]
    drawn = [draws(rng, k) for rng, k, _ in kept]
    if len(drawn) == 1:
        picks, market_noise, u, u_items, tech_noise, u_tech, eng_noise = drawn[0]
    else:
        # picks and u hold one row per column (firms along axis 1), the rest firms along axis 0
        axes = (1, 0, 1, 0, 0, 0, 0)
        picks, market_noise, u, u_items, tech_noise, u_tech, eng_noise = (
            np.concatenate(c, axis=a) for a, c in zip(axes, zip(*drawn, strict=True), strict=True)
        )
    industry, size, batch, complexity, position = (
        np.searchsorted(cdf / cdf[-1], x, side="right").astype(np.int8)
        for cdf, x in zip(cdfs, picks, strict=True)
    )
    u_fin, u_threat, u_ss = u[:3]
    n = len(industry)

    mp = traits["market_position"]
    market_shares = normalised(mp["shares"], MARKET_POSITIONS)
    # latent ordered from many competitors (low) to leader (high): reverse the label order
    market = (len(MARKET_POSITIONS) - 1) - correlated_category(
        size, market_shares[::-1], mp["size_correlation"], market_noise, counted
    )

    fin_rate = in_order(traits["financing_constraint"]["by_size"], SIZE_CLASSES)
    financing_constraint = u_fin < fin_rate[size]
    threatened = u_threat < traits["threatened"]["share"]

    ss_logit = service_strategy_logit(industry, size, batch, complexity)
    service_strategy = u_ss < logistic(_service_strategy_intercept(region.code) + ss_logit)

    structure = {
        "industry": industry,
        "size": size,
        "batch": batch,
        "complexity": complexity,
        "service_strategy": service_strategy,
    }
    if from_state:
        u_state = u[3]
        probs = [p for _, _, p in kept]
        table4 = np.concatenate([p.reshape(len(p), 4) for p in probs])
        cell = cell_index(industry, size, batch, complexity, service_strategy)
        if len(probs) > 1:  # each run's types, in the rows of its own probabilities
            cell = cell + np.repeat(np.arange(len(probs)) * len(probs[0]), counted)
        # the cumulated probabilities of the firms' own types only (each row cumulated alone)
        bm, dt = draw_state(np.cumsum(table4[cell], axis=1), u_state)
    else:
        u_bm, u_dt = u[3], u[4]
        bm, dt = draw_capabilities(structure, props, region.innovation_shift, u_bm, u_dt)
    table = FirmTable(
        industry=industry,
        size=size,
        batch=batch,
        complexity=complexity,
        position=position,
        market=market.astype(np.int8),
        financing_constraint=financing_constraint,
        service_strategy=service_strategy,
        threatened=threatened,
        techniques=np.zeros(n),
        engagement=np.zeros(n, dtype=np.int8),
        bm=bm,
        dt=dt,
        dt_items=dt_items_of(dt, props.dt_item_draw, u_items),
        service_revenue=np.zeros(n),
        it_specialist=np.zeros(n, dtype=bool),
        trains=np.zeros(n, dtype=bool),
        platform=np.zeros(n, dtype=bool),
    )
    survey_traits(table, tech_noise, u_tech, eng_noise, counted)
    return table


def draw_techniques(dt: np.ndarray, size: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Number of the 10 digital techniques used (sources §4.4), rank-correlated with DT and size."""
    noise = rng.standard_normal(len(dt))
    return techniques_of(dt, size, noise, rng.random(len(dt)))


def techniques_of(
    dt: np.ndarray,
    size: np.ndarray,
    noise: np.ndarray,
    u: np.ndarray,
    sizes: Sequence[int] | None = None,
) -> np.ndarray:
    """`draw_techniques` from its draws (`noise` of the band, `u` of the count within it), for
    the firms of the runs of `sizes` stacked."""
    spec = load_traits()["digital_techniques"]
    bands = np.array(spec["bands"], dtype=float)
    # ranked by DT, then size class (the order of the score 2·DT + size/2)
    score = len(SIZE_CLASSES) * dt.astype(np.int64) + size
    band = correlated_category(score, bands[:, 2] / bands[:, 2].sum(), spec["correlation"], noise, sizes)
    low, high = bands[band, 0], bands[band, 1]
    count = low + np.floor(u * (high - low + 1))
    return count.astype(np.float64)

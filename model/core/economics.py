"""Firm economics (docs/odd.md, 'Economics'): what the stages are worth in employees, revenue,
service revenue and value added, and where value added goes — to the region's firms, to
platform owners, or out of the region with the firms that exit.

Per firm, drawn once at synthesis or entry from the economics' own stream (so no other draw
moves): employees within its size class (a Pareto law, `employee_size_exponent`); revenue =
employees × revenue per employee of its industry; value added = revenue × the industry's
value-added share. The service revenue share is the mechanisms' state `service_revenue`
(sources §2.12). A platform supplier loses `platform_margin_loss` of its value added to the
platform owner (sources §7.2, §7.3). An entrant starts at `entrant_start_share` of its full
size and grows linearly over `entrant_growth_years`.

Accounting (every year, in agent units; × population_scale gives the region's totals):
value added in the region's firms + captured by platforms + lost through exits not replaced
= the value added of the 2015 firm table (the accounting starts at the end of the run-up).
The last term is kept from flows (value added of exits at exit, of entrants at entry and their
growth), so the identity checks the bookkeeping rather than holding by definition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from scipy import sparse

from mittelbau.core.categories import INDUSTRIES, SIZE_CLASSES
from mittelbau.core.population import FirmTable

if TYPE_CHECKING:
    from mittelbau.core.scenario import Params

# employees of each size class (sources §3.2): lower bound and upper bound (inclusive)
SIZE_BOUNDS = np.array([(20, 49), (50, 99), (100, 249), (250, 499)], dtype=float)
GROUP_NAMES = (
    ["all"]
    + [f"size:{c}" for c in SIZE_CLASSES]
    + [f"industry:{i}" for i in INDUSTRIES]
    + [f"stage:{k}" for k in (1, 2, 3)]
)
# the stocks of a year, in € (…_eur) or persons: the region's totals that summaries compare
STOCKS = (
    "employment",
    "revenue_eur",
    "service_revenue_eur",
    "value_added_eur",
    "value_added_captured_eur",
    "employment_platform_suppliers",
    "employment_stuck_stage1",
)
# economics.csv, per year and group: the firms, the stocks, and the year's exits
MEASURES = ("firms", *STOCKS, "exits", "employment_exited", "value_added_exited_eur")
# identity terms, recorded for the group 'all' only (a firm's group changes over its life)
TOTALS = ("value_added_lost_exits_eur", "value_added_reference_eur", "employment_lost_exits")


def draw_employees(size: np.ndarray, exponent: float, rng: np.random.Generator) -> np.ndarray:
    """Employees within each firm's size class: a Pareto law with `exponent` (density ∝
    x^−(exponent+1)) on [lower, upper + 1), rounded down; exponent 0 is log-uniform."""
    lo, hi = SIZE_BOUNDS[size, 0], SIZE_BOUNDS[size, 1] + 1.0
    u = rng.random(len(size))
    if exponent == 0:
        x = lo * (hi / lo) ** u
    else:
        a, b = lo**-exponent, hi**-exponent
        x = (a - u * (a - b)) ** (-1.0 / exponent)
    return np.minimum(np.floor(x), hi - 1.0)


def industry_values(p: Params, prefix: str) -> np.ndarray:
    """A registry value per industry (`<prefix>_<industry>`), in INDUSTRIES order."""
    return np.array([getattr(p, f"{prefix}_{i}") for i in INDUSTRIES], dtype=float)


class Economics:
    """Per-firm economics of one run and the yearly record of where value added goes.

    `full_*` arrays hold a firm's full size; `grown` is the share of it an entrant has reached
    (1 for the 2015 firms)."""

    def __init__(self, state: FirmTable, p: Params, scale: float, rng: np.random.Generator) -> None:
        self.p, self.scale = p, scale
        self.revenue_per_employee = industry_values(p, "revenue_per_employee")
        self.value_added_share = industry_values(p, "value_added_share")
        n = len(state)
        self.employees = np.zeros(n)
        self.revenue = np.zeros(n)
        self.value_added = np.zeros(n)
        self.grown = np.ones(n)
        self.age = np.zeros(n, dtype=np.int64)
        self.entrant = np.zeros(n, dtype=bool)
        self._draw(np.arange(n), state, rng)
        self.reference_va = float(self.value_added.sum())
        self.reference_jobs = float(self.employees.sum())
        self.exited_va = self.exited_jobs = 0.0  # cumulative, at the firms' size when they left
        self.entered_va = self.entered_jobs = 0.0  # cumulative: at entry plus growth since
        self.year_exits = np.zeros((len(GROUP_NAMES), 3))  # this year: firms, jobs, value added
        self.records: list[np.ndarray] = []  # per year: groups × (MEASURES + TOTALS), agent units
        self.service_share_mean: list[float] = []  # per year: mean over firms (as surveyed, §2.12)

    def _draw(self, rows: np.ndarray, firms: FirmTable, rng: np.random.Generator) -> None:
        self.employees[rows] = draw_employees(firms.size, self.p.employee_size_exponent, rng)
        self.revenue[rows] = self.employees[rows] * self.revenue_per_employee[firms.industry]
        self.value_added[rows] = self.revenue[rows] * self.value_added_share[firms.industry]

    def _share_grown(self, age: np.ndarray) -> np.ndarray:
        years = self.p.entrant_growth_years
        if years == 0:
            return np.ones(len(age))
        start = self.p.entrant_start_share
        return np.minimum(1.0, start + (1.0 - start) * age / years)

    # ---- views (agent units) ---------------------------------------------------------------
    @property
    def jobs(self) -> np.ndarray:
        """Persons each firm employs at its current size."""
        return self.employees * self.grown

    def gross_value_added(self) -> np.ndarray:
        """Value added each firm produces at its current size, before platform capture."""
        return self.value_added * self.grown

    # ---- events ---------------------------------------------------------------------------
    def exit(self, rows: np.ndarray, state: FirmTable, stage: np.ndarray) -> None:
        """Firms in `rows` leave (their `stage` when they left): their jobs and value added
        are booked as exited, by group."""
        jobs, va = self.jobs[rows], self.gross_value_added()[rows]
        self.exited_jobs += float(jobs.sum())
        self.exited_va += float(va.sum())
        members = membership(state.size[rows], state.industry[rows], stage)
        self.year_exits += members @ np.column_stack([np.ones(len(rows)), jobs, va])

    def enter(self, rows: np.ndarray, entrants: FirmTable, rng: np.random.Generator) -> None:
        """Entrants take `rows` at `entrant_start_share` of their full size."""
        self._draw(rows, entrants, rng)
        self.age[rows] = 0
        self.entrant[rows] = True
        self.grown[rows] = self._share_grown(self.age[rows])
        self.entered_jobs += float(self.jobs[rows].sum())
        self.entered_va += float(self.gross_value_added()[rows].sum())

    def grow(self) -> None:
        """A year older: entrants grow towards their full size (booked as entered)."""
        self.age += 1
        before_jobs, before_va = self.jobs.sum(), self.gross_value_added().sum()
        self.grown = np.where(self.entrant, self._share_grown(self.age), 1.0)
        self.entered_jobs += float(self.jobs.sum() - before_jobs)
        self.entered_va += float(self.gross_value_added().sum() - before_va)

    # ---- the yearly record ----------------------------------------------------------------
    def record(self, state: FirmTable, stuck: np.ndarray) -> None:
        """Stocks of the current table and this year's exits, by group; `stuck` marks the firms
        of the 2015 table still in stage 1."""
        gross = self.gross_value_added()
        captured = gross * self.p.platform_margin_loss * state.platform
        jobs = self.jobs
        revenue = self.revenue * self.grown
        columns = np.column_stack(
            (
                np.ones(len(state)),
                jobs,
                revenue,
                revenue * state.service_revenue,
                gross - captured,
                captured,
                jobs * state.platform,
                jobs * stuck,
            )
        )
        k = columns.shape[1]
        table = np.zeros((len(GROUP_NAMES), len(MEASURES) + len(TOTALS)))
        table[:, :k] = membership(state.size, state.industry, state.stage) @ columns
        table[:, k : len(MEASURES)] = self.year_exits
        table[1:, len(MEASURES) :] = np.nan
        table[0, len(MEASURES) :] = (
            self.exited_va - self.entered_va,
            self.reference_va,
            self.exited_jobs - self.entered_jobs,
        )
        self.records.append(table)
        self.service_share_mean.append(float(state.service_revenue.mean()))
        self.year_exits = np.zeros_like(self.year_exits)

    def region_records(self) -> np.ndarray:
        """years × groups × columns in the region's units (agent sums × population_scale)."""
        return np.stack(self.records) * self.scale


def membership(size: np.ndarray, industry: np.ndarray, stage: np.ndarray) -> sparse.csc_array:
    """Groups × firms indicator matrix: each firm belongs to 'all', its size class, its
    industry and its stage (rows of GROUP_NAMES, in ascending order per firm), so sums by
    group are one product."""
    k_size, k_ind, n = len(SIZE_CLASSES), len(INDUSTRIES), len(size)
    rows = np.column_stack(
        [
            np.zeros(n, dtype=np.int64),
            1 + size.astype(np.int64),
            1 + k_size + industry.astype(np.int64),
            k_size + k_ind + stage.astype(np.int64),
        ]
    ).ravel()
    indptr = np.arange(0, 4 * n + 1, 4)
    return sparse.csc_array((np.ones(4 * n), rows, indptr), shape=(len(GROUP_NAMES), n))


def column_names() -> tuple[str, ...]:
    """Columns of a record (MEASURES, then the identity terms)."""
    return MEASURES + TOTALS

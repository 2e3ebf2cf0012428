"""The Mesa model: a region's manufacturing SMEs moving between business-model stages."""

from __future__ import annotations

from typing import Any

import mesa
import numpy as np

from mittelbau.categories import INDUSTRIES, SIZE_CLASSES, START_YEAR
from mittelbau.dynamics import (
    MOTIVES,
    REF_BM_SHARE,
    Exposure,
    change_capabilities,
    exit_hazard,
    hazard_to_probability,
    learn_and_engage,
    structural_log_hazards,
)
from mittelbau.firm import Firm
from mittelbau.indicators import (
    hollowing_ratio,
    middle_share,
    polarisation_index,
    stage_shares,
    upward_rate,
)
from mittelbau.network import neighbour_share, supplier_network
from mittelbau.population import synthesise
from mittelbau.propensities import load_propensities
from mittelbau.region_data import load_region
from mittelbau.scenario import Params, make_params


class MittelbauModel(mesa.Model):
    """Firms of one region from the 2015 survey state, stepped one year at a time.

    Build with a validated `Params` (see `mittelbau.scenario`) or keyword overrides of the
    registry defaults: `MittelbauModel(region="nord", firms=2000, seed=7)`.
    """

    def __init__(self, params: Params | None = None, **overrides: Any) -> None:
        params = make_params(overrides) if params is None else params.with_overrides(overrides)
        super().__init__(rng=params.seed)
        self.params = params
        self.region = load_region(params.region)
        self.props = load_propensities()
        self.state = synthesise(self.region, params.firms, self.rng)
        self.customers = supplier_network(
            self.state.industry,
            self.state.position,
            params.customers_per_supplier,
            params.same_industry_ties,
            self.rng,
        )
        self.suppliers = self.customers.T.tocsr()
        self.ties = (self.customers + self.suppliers).tocsr()
        self.ties.data[:] = 1.0
        self.tie_degree = np.asarray(self.ties.sum(axis=1)).ravel()
        self.customer_degree = np.asarray(self.customers.sum(axis=1)).ravel()
        self.x_dt, self.x_bm = structural_log_hazards(self.state, self.props, self.region.innovation_shift)
        self.firm_at = np.empty(params.firms, dtype=object)
        self._add_firms(np.arange(params.firms))

        self.stage_counts: list[np.ndarray] = []  # per year: (groups × 3) counts
        self.transitions: list[np.ndarray] = []  # per year from 2016: 4 × 4 from/to (0 = outside)
        self.bm_motives: list[np.ndarray] = []
        self.datacollector = mesa.DataCollector(
            model_reporters={
                "year": "year",
                "stage1": lambda m: m.recorded_shares[0],
                "stage2": lambda m: m.recorded_shares[1],
                "stage3": lambda m: m.recorded_shares[2],
                "middle_share": lambda m: middle_share(m.recorded_shares),
                "polarisation_index": lambda m: polarisation_index(m.recorded_shares),
                "hollowing_ratio": lambda m: hollowing_ratio(m.recorded_shares),
                "upward_rate": lambda m: upward_rate(m.transitions[-1]) if m.transitions else None,
            }
        )
        self._record()

    # ---- state views ------------------------------------------------------------------------
    @property
    def year(self) -> int:
        return START_YEAR + int(self.time)

    @property
    def shares(self) -> np.ndarray:
        """Stage shares of all firms now."""
        return stage_shares(self.state.stage)

    @property
    def pressure(self) -> float:
        """Digital pressure index at the start of the current year (2015 = 1)."""
        return 1.0 + self.params.digital_pressure_growth * (self.year - START_YEAR)

    def exposure(self) -> Exposure:
        s = self.state
        peer_bm = _group_mean(s.bm, s.industry, len(INDUSTRIES))
        peer_dt = _group_mean(s.dt, s.industry, len(INDUSTRIES))
        return Exposure(
            peer_bm=peer_bm,
            peer_dt=peer_dt,
            network_dt=neighbour_share(self.ties, self.tie_degree, s.dt, peer_dt),
            # final-product makers sell outside the region: their customers are taken as
            # neutral (reference share), so the customer channel keeps its §4.2 weight
            customer_bm=neighbour_share(
                self.customers, self.customer_degree, s.bm, np.full(len(s), REF_BM_SHARE)
            ),
        )

    # ---- the step -----------------------------------------------------------------------------
    def step(self) -> None:
        """One year: exposures, exits, capability change, learning, entry, records."""
        p, s = self.params, self.state
        pressure = self.pressure
        exposure = self.exposure()
        before = s.stage
        exits = self.rng.random(len(s)) < hazard_to_probability(exit_hazard(s, pressure, p))
        motives = change_capabilities(
            s,
            self.x_dt,
            self.x_bm,
            exposure,
            pressure,
            ~exits,
            p,
            self.props.dt_item_draw,
            self.rng,
        )
        learn_and_engage(s, pressure, p, self.rng)
        rows = np.flatnonzero(exits)
        self._replace(rows)
        after = s.stage
        matrix = np.zeros((4, 4), dtype=np.int64)
        np.add.at(matrix, (before[~exits], after[~exits]), 1)
        matrix[:, 0] = 0
        matrix[1:, 0] = np.bincount(before[exits], minlength=4)[1:]
        matrix[0, 1:] = np.bincount(after[exits], minlength=4)[1:]
        self.transitions.append(matrix)
        self.bm_motives.append(motives)
        self._record()

    def run(self) -> MittelbauModel:
        """Run to the horizon `years`."""
        if self.params.years:
            self.run_for(self.params.years)
        return self

    # ---- entry and exit -----------------------------------------------------------------------
    def _add_firms(self, rows: np.ndarray) -> None:
        for firm in Firm.create_agents(self, len(rows), row=rows):
            self.firm_at[firm.row] = firm

    def _replace(self, rows: np.ndarray) -> None:
        """Exiting firms leave; entrants of the region's structure take their rows, keeping the
        row's value-chain position and customer–supplier ties (the market slot)."""
        if len(rows) == 0:
            return
        for firm in self.firm_at[rows]:
            firm.remove()
        entrants = synthesise(self.region, len(rows), self.rng)
        self.state.replace_rows(rows, entrants, keep=("position",))
        x_dt, x_bm = structural_log_hazards(entrants, self.props, self.region.innovation_shift)
        self.x_dt[rows], self.x_bm[rows] = x_dt, x_bm
        # entrants one by one: create_agents would also build a throw-away AgentSet
        self.firm_at[rows] = [Firm(self, r) for r in rows]

    # ---- records ------------------------------------------------------------------------------
    def _record(self) -> None:
        s = self.state
        stage = s.stage - 1
        counts = [np.bincount(stage, minlength=3)[None, :]]
        for codes, k in ((s.size, len(SIZE_CLASSES)), (s.industry, len(INDUSTRIES))):
            counts.append(np.bincount(codes * 3 + stage, minlength=k * 3).reshape(k, 3))
        self.stage_counts.append(np.vstack(counts))
        self.recorded_shares = counts[0][0] / len(s)  # read by the reporters: computed once
        self.datacollector.collect(self)

    @property
    def motive_totals(self) -> dict[str, int]:
        total = np.sum(self.bm_motives, axis=0) if self.bm_motives else np.zeros(len(MOTIVES))
        return {m: int(c) for m, c in zip(MOTIVES, total, strict=True)}


def _group_mean(x: np.ndarray, group: np.ndarray, k: int) -> np.ndarray:
    """Per firm: the mean of `x` over the firms of its group."""
    sums = np.bincount(group, weights=x.astype(float), minlength=k)
    counts = np.bincount(group, minlength=k)
    return (sums / np.maximum(counts, 1))[group]

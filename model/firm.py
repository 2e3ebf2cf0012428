"""Firm agents: Mesa agents that are handles on one row of the model's state arrays."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

from mittelbau.categories import (
    BATCH_TYPES,
    COMPLEXITIES,
    ENGAGEMENT_LEVELS,
    INDUSTRIES,
    MARKET_POSITIONS,
    POSITIONS,
    SIZE_CLASSES,
)

if TYPE_CHECKING:
    from mittelbau.model import MittelbauModel


class Firm(mesa.Agent):
    """A manufacturing SME (20–499 employees). Its state lives in `model.state` at `row`; the
    step is vectorised over all rows in `mittelbau.dynamics`, so firms have no `step` of their own."""

    model: MittelbauModel

    def __init__(self, model: MittelbauModel, row: int) -> None:
        super().__init__(model)
        self.row = int(row)

    def _get(self, name: str):
        return getattr(self.model.state, name)[self.row]

    @property
    def region(self) -> str:
        return self.model.region.code

    @property
    def industry(self) -> str:
        return INDUSTRIES[self._get("industry")]

    @property
    def size_class(self) -> str:
        return SIZE_CLASSES[self._get("size")]

    @property
    def batch_type(self) -> str:
        return BATCH_TYPES[self._get("batch")]

    @property
    def complexity(self) -> str:
        return COMPLEXITIES[self._get("complexity")]

    @property
    def position(self) -> str:
        return POSITIONS[self._get("position")]

    @property
    def market_position(self) -> str:
        return MARKET_POSITIONS[self._get("market")]

    @property
    def engagement(self) -> str:
        return ENGAGEMENT_LEVELS[self._get("engagement")]

    @property
    def service_strategy(self) -> bool:
        return bool(self._get("service_strategy"))

    @property
    def financing_constraint(self) -> bool:
        return bool(self._get("financing_constraint"))

    @property
    def bm(self) -> bool:
        return bool(self._get("bm"))

    @property
    def dt(self) -> bool:
        return bool(self._get("dt"))

    @property
    def stage(self) -> int:
        """1 + BM + DT (facts.md §1)."""
        return 1 + int(self.bm) + int(self.dt)

    @property
    def digital_competence(self) -> float:
        """Share of the 10 digital techniques of IHK 2016 in use (facts.md §4.4)."""
        return float(self._get("techniques")) / 10.0

    @property
    def customers(self) -> list[Firm]:
        """Firms in the region that buy from this firm."""
        c = self.model.customers
        cols = c.indices[c.indptr[self.row] : c.indptr[self.row + 1]]
        return [self.model.firm_at[j] for j in cols]

    @property
    def suppliers(self) -> list[Firm]:
        """Firms in the region that this firm buys from."""
        s = self.model.suppliers
        cols = s.indices[s.indptr[self.row] : s.indptr[self.row + 1]]
        return [self.model.firm_at[j] for j in cols]

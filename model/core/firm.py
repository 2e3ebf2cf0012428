"""Firm agents: Mesa agents that are handles on one row of the model's state arrays."""

from __future__ import annotations

from typing import TYPE_CHECKING

import mesa

from mittelbau.core.categories import (
    BATCH_TYPES,
    COMPLEXITIES,
    ENGAGEMENT_LEVELS,
    INDUSTRIES,
    MARKET_POSITIONS,
    POSITIONS,
    SIZE_CLASSES,
)
from mittelbau.core.dynamics import MAX_TECHNIQUES

if TYPE_CHECKING:
    from mittelbau.core.model import MittelbauModel


def _category(column: str, labels: tuple[str, ...], doc: str) -> property:
    return property(lambda self: labels[getattr(self.model.state, column)[self.row]], doc=doc)


def _flag(column: str, doc: str) -> property:
    return property(lambda self: bool(getattr(self.model.state, column)[self.row]), doc=doc)


class Firm(mesa.Agent):
    """A manufacturing SME (20–499 employees): the handle of one row of `model.state`. The step
    is vectorised over all rows in `mittelbau.core.dynamics`, so firms have no `step` of their own.
    The row is a market slot: when its firm exits, an entrant takes it over, and `firm_id`
    and `entry_year` say which firm occupies it now."""

    model: MittelbauModel

    def __init__(self, model: MittelbauModel, row: int) -> None:
        super().__init__(model)
        self.row = int(row)

    firm_id = property(lambda self: int(self.model.firm_id[self.row]), doc="Occupant's id")
    entry_year = property(lambda self: int(self.model.entry_year[self.row]), doc="Year of entry")
    region = property(lambda self: self.model.region.code, doc="Region code")
    industry = _category("industry", INDUSTRIES, "Industry group (sources §3.1)")
    size_class = _category("size", SIZE_CLASSES, "Employees (sources §3.2)")
    batch_type = _category("batch", BATCH_TYPES, "Batch type (sources §3.3)")
    complexity = _category("complexity", COMPLEXITIES, "Product complexity (sources §3.4)")
    position = _category("position", POSITIONS, "Value-chain position")
    market_position = _category("market", MARKET_POSITIONS, "Market position (sources §4.6)")
    engagement = _category("engagement", ENGAGEMENT_LEVELS, "Engagement (sources §4.3)")
    service_strategy = _flag("service_strategy", "Services a competitive factor (sources §2.11)")
    financing_constraint = _flag("financing_constraint", "Financing an obstacle (sources §4.5)")
    threatened = _flag("threatened", "Main BM felt threatened (sources §4.7)")
    bm = _flag("bm", "Offers a service-based business model (sources §1)")
    dt = _flag("dt", "Uses digital technology in its service business (sources §1)")

    @property
    def stage(self) -> int:
        """1 + BM + DT (sources §1)."""
        return 1 + int(self.bm) + int(self.dt)

    @property
    def digital_competence(self) -> float:
        """Share of the 10 digital techniques of IHK 2016 in use (sources §4.4)."""
        return float(self.model.state.techniques[self.row]) / MAX_TECHNIQUES

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

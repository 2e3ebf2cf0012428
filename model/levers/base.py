"""What every policy lever shares: targeting, the yearly hook, and its records."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mittelbau.core.categories import SIZE_CLASSES

if TYPE_CHECKING:
    from mittelbau.core.model import MittelbauModel
    from mittelbau.core.population import FirmTable


def in_target(target: str, state: FirmTable) -> np.ndarray:
    """Firms a targeting rule admits: all, small (< 100 employees), very_small (< 50),
    stage1, stage2."""
    n = len(state)
    match target:
        case "all":
            return np.ones(n, dtype=bool)
        case "small":
            return state.size <= SIZE_CLASSES.index("50-99")
        case "very_small":
            return state.size == SIZE_CLASSES.index("20-49")
        case "stage1":
            return state.stage == 1
        case "stage2":
            return state.stage == 2
    raise ValueError(f"unknown target {target!r}")


def first_in_random_order(candidates: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of up to `k` candidates, taken in a random order (first come, first served)."""
    rows = np.flatnonzero(candidates)
    return rng.permutation(rows)[: max(int(k), 0)]


def agents_for(firms: float, scale: float, rng: np.random.Generator) -> int:
    """Agents that stand for `firms` of the region when each agent stands for `scale` firms
    (the model's population_scale): rounded at random to one of the two nearest integers, so
    the expected number is exact whatever the number of agents. Always one draw."""
    x = max(float(firms), 0.0) / scale
    return int(np.floor(x) + (rng.random() < x - np.floor(x)))


@dataclass
class LeverYear:
    """A lever's action in one year: whom it reached, what it cost, what it does to hazards."""

    reached: np.ndarray
    spent_eur: float
    dt: np.ndarray | None = None  # hazard multipliers (None: 1)
    bm: np.ndarray | None = None
    finance_relief: np.ndarray | None = None


@dataclass
class Lever:
    """Base of the levers: a yearly hook `act`, row hygiene on exit, and the record of reach.

    A lever object exists only when its programme is switched on, so "off" is exactly the
    model without it.
    """

    n: int
    name: str = "lever"
    reached_by: np.ndarray = field(init=False)  # firms first reached, by size class × stage
    seen: np.ndarray = field(init=False)
    firm_cost_eur: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.reached_by = np.zeros((len(SIZE_CLASSES), 3), dtype=np.int64)
        self.seen = np.zeros(self.n, dtype=bool)

    def act(self, model: MittelbauModel, year: int, rng: np.random.Generator) -> LeverYear:
        raise NotImplementedError

    def drop_rows(self, rows: np.ndarray) -> None:
        """Firms that exit leave the programme; their rows start afresh for entrants."""
        self.seen[rows] = False

    def note_reach(self, reached: np.ndarray, state: FirmTable) -> None:
        new = reached & ~self.seen
        np.add.at(self.reached_by, (state.size[new], state.stage[new] - 1), 1)
        self.seen |= reached

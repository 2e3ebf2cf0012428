"""What every policy lever shares: its spec, targeting, the yearly hook, and its records."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from mittelbau.core.categories import SIZE_CLASSES, TARGETS
from mittelbau.core.registry_entry import Parameter

if TYPE_CHECKING:
    from mittelbau.core.model import MittelbauModel
    from mittelbau.core.population import FirmTable
    from mittelbau.core.scenario import Params


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
    raise ValueError(f"unknown target {target!r}; allowed: {', '.join(TARGETS)}")


def first_in_random_order(candidates: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """Rows of up to `k` candidates, taken in a random order (first come, first served)."""
    rows = np.flatnonzero(candidates)
    return rng.permutation(rows)[: max(int(k), 0)]


@dataclass(frozen=True)
class LeverSpec:
    """Everything the package needs to know about a policy lever, declared once in its module.

    `name` is the lever's one spelling: its registry group, the prefix of its parameters
    (`<name>_…`) and its label in outputs. The registry, scenario validation, sensitivity
    grouping, dashboard controls and captions, and the planned cost all read the specs.
    """

    name: str
    title: str  # label in the dashboard, e.g. "Funding"
    order: int  # levers act in this order each year, which fixes their random streams
    switch: str  # the parameter whose value 0 means "no such programme"
    target: str  # the targeting parameter (a rule of `in_target`)
    parameters: tuple[Parameter, ...]  # its registry entries, start and end year among them
    build: Callable[[Params, int, np.random.Generator], Lever]  # params, firms, generator
    yearly_cost: Callable[[Params], float]  # planned public € in each active year
    caption: Callable[[Params], str]  # the programme in words, for the dashboard

    def __post_init__(self) -> None:
        names = {p.name for p in self.parameters}
        wrong = [p.name for p in self.parameters if not p.name.startswith(f"{self.name}_")]
        wrong += [p.name for p in self.parameters if p.group != self.name]
        missing = {self.switch, self.target, self.start_year, self.end_year} - names
        if wrong or missing:
            raise ValueError(
                f"lever {self.name!r}: parameters {sorted(set(wrong))} do not start with "
                f"'{self.name}_' or are not in group {self.name!r}, or {sorted(missing)} are "
                "missing; allowed: parameters named and grouped after the lever, with its "
                "switch, target, start and end year among them"
            )

    @property
    def start_year(self) -> str:
        return f"{self.name}_start_year"

    @property
    def end_year(self) -> str:
        return f"{self.name}_end_year"

    def is_on(self, params: Params) -> bool:
        return getattr(params, self.switch) > 0


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
class Reach:
    """Firms reached at least once (a firm counts once, however often it is reached), by size
    class × stage when first reached; a row's record ends when its firm exits. Each lever
    keeps one, and a run with programmes one for all of them together (distinct firms)."""

    n: int
    reached_by: np.ndarray = field(init=False)  # firms first reached, by size class × stage
    seen: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.reached_by = np.zeros((len(SIZE_CLASSES), 3), dtype=np.int64)
        self.seen = np.zeros(self.n, dtype=bool)

    def note(self, reached: np.ndarray, state: FirmTable) -> None:
        new = reached & ~self.seen
        np.add.at(self.reached_by, (state.size[new], state.stage[new] - 1), 1)
        self.seen |= reached

    def drop_rows(self, rows: np.ndarray) -> None:
        self.seen[rows] = False


@dataclass
class Lever:
    """Base of the levers: a yearly hook `act`, row hygiene on exit, and the record of reach.

    A lever object exists only when its programme is switched on, so "off" is exactly the
    model without it.
    """

    n: int
    name: str = "lever"
    reach: Reach = field(init=False)
    firm_cost_eur: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        self.reach = Reach(self.n)

    def act(self, model: MittelbauModel, year: int, rng: np.random.Generator) -> LeverYear:
        raise NotImplementedError

    def drop_rows(self, rows: np.ndarray) -> None:
        """Firms that exit leave the programme; their rows start afresh for entrants."""
        self.reach.drop_rows(rows)

    def undo_contact(self, engagement: np.ndarray, techniques: np.ndarray) -> None:
        """Take out of the firms' engagement and techniques (in place) what this programme's
        earlier contacts changed for good: the deadweight's counterfactual. Called before this
        year's contact, whose changes the columns given do not hold. Nothing by default: a
        lever that acts on hazards alone."""

    def note_reach(self, reached: np.ndarray, state: FirmTable) -> None:
        self.reach.note(reached, state)

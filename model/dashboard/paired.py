"""The dashboard's model: a scenario's run and its same-seed twin without programmes.

`PairedModel` is a `MittelbauModel` that steps a twin built from the same parameters with
every lever switched off, so the "compare with baseline" view shows what the programmes add
on common random numbers. The programme run itself is exactly the run `mittelbau run` makes
with the same parameters and seed.
"""

from __future__ import annotations

from collections import deque
from typing import Any

import networkx as nx
import numpy as np
import pandas as pd

from mittelbau.core.categories import SIZE_CLASSES, START_YEAR
from mittelbau.core.model import UNSET, MittelbauModel
from mittelbau.core.parameters import BY_NAME
from mittelbau.core.scenario import Params
from mittelbau.experiments.outputs import upward_moves
from mittelbau.levers import enabled, without_levers

NETWORK_SAMPLE = 300  # firms drawn in the network view


def read_seed(value: Any) -> tuple[int, str | None]:
    """The seed control is a text field: decimal digits give the seed; anything else keeps the
    registry default, with a notice naming the value and what is allowed."""
    text = str(value).strip().replace("_", "")
    default = int(BY_NAME["seed"].default)
    if not (text.isascii() and text.isdecimal()) or int(text) > 2**32 - 1:
        allowed = BY_NAME["seed"].allowed()
        return default, f"seed {str(value)!r} is invalid (allowed: {allowed}); using {default}"
    return int(text), None


class PairedModel(MittelbauModel):
    """A run with its programmes and, beside it, the same seed without any programme."""

    def __init__(self, params: Params | None = None, *, seed: Any = UNSET, **kwargs: Any) -> None:
        # the seed control is a text field: read here (an invalid one gives a notice), then
        # passed on as Mesa's seed
        self.notice: str | None = None
        if isinstance(seed, str | int):
            seed, self.notice = read_seed(seed)
        self.baseline: MittelbauModel | None = None  # built after the run-up (which steps alone)
        super().__init__(params, seed=seed, **kwargs)
        self.levers_on = enabled(self.params)
        self.baseline = MittelbauModel(without_levers(self.params)) if self.levers_on else None
        self._network: tuple[np.ndarray, np.ndarray] | None = None
        # Mesa makes `step` advance its clock before the year is simulated: at the horizon,
        # neither happens
        self._clock_step = self.step
        self.step = self._step_to_horizon

    def step(self) -> None:
        super().step()
        if self.baseline is not None:
            self.baseline.step()

    def _step_to_horizon(self) -> None:
        """Mesa's step (its clock, then the year), up to the horizon and no further: the page's
        reset marks a run running whatever its horizon, and its render interval steps several
        years at a time."""
        if self.year >= START_YEAR + self.params.years:
            self.running = False
            return
        self._clock_step()

    # ---- views ------------------------------------------------------------------------------
    def history(self) -> pd.DataFrame:
        """Headline indicators per year so far (the DataCollector's model table)."""
        return self.datacollector.get_model_vars_dataframe().set_index("year")

    def baseline_history(self) -> pd.DataFrame:
        """The twin's indicators; the run's own when no programme is switched on."""
        return (self.baseline or self).datacollector.get_model_vars_dataframe().set_index("year")

    def size_shares(self) -> pd.DataFrame:
        """Stage shares (rows: size classes, columns: stages 1–3) now."""
        counts = self.stage_counts[-1][1 : 1 + len(SIZE_CLASSES)]
        shares = counts / np.maximum(counts.sum(axis=1, keepdims=True), 1)
        return pd.DataFrame(shares, index=list(SIZE_CLASSES), columns=[1, 2, 3])

    def programme_effect(self) -> dict[str, float]:
        """So far: public money spent, upward moves with and without programmes, and the
        difference in the middle-tier share (percentage points)."""
        twin = self.baseline or self
        moves, without = upward_moves(self), upward_moves(twin)
        return {
            "spent_eur": float(sum(r[2] for r in self.lever_records)),
            "upward_moves": moves,
            "upward_moves_baseline": without,
            "additional_moves": moves - without,
            "middle_pp": 100 * (self.recorded_shares[1] - twin.recorded_shares[1]),
        }

    def network_sample(self, size: int = NETWORK_SAMPLE) -> tuple[np.ndarray, np.ndarray]:
        """Rows of a connected part of the firm network (breadth-first from a few firms) and
        their layout positions, fixed for the run. Drawn from a generator of its own, so
        looking at the network never changes the run."""
        if self._network is None:
            rng = np.random.default_rng([self.params.seed, 1])
            n = len(self.state)
            size = min(size, n)
            seen: dict[int, None] = {}
            for start in rng.permutation(n):
                queue = deque([int(start)])
                while queue and len(seen) < size:
                    row = queue.popleft()
                    if row in seen:
                        continue
                    seen[row] = None
                    queue.extend(
                        int(r) for r in self.ties.indices[self.ties.indptr[row] : self.ties.indptr[row + 1]]
                    )
                if len(seen) >= size:
                    break
            rows = np.fromiter(seen, dtype=np.int64)
            graph = nx.from_scipy_sparse_array(self.ties[rows][:, rows])
            pos = nx.spring_layout(graph, seed=int(self.params.seed) % 2**32, iterations=60)
            self._network = rows, np.array([pos[i] for i in range(len(rows))])
        return self._network

    def sample_edges(self) -> np.ndarray:
        """Current ties among the sampled firms (pairs of positions in the sample); cooperation
        projects add ties as the run goes."""
        rows, _ = self.network_sample()
        sub = self.ties[rows][:, rows].tocoo()
        keep = sub.row < sub.col
        return np.column_stack([sub.row[keep], sub.col[keep]])

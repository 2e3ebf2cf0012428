"""Structural propensities of the initial capabilities (fitted in calibration/).

A firm's log-odds of offering a service-based business model (BM) and of using digital
technology in its service business (DT) are sums of effects of its structure. BM has no size
term (sources §2.10: no size effect); DT depends on BM, which carries the strong BM–DT
association that the stage shares imply (sources §2.1–2.2, §2.14). The resulting 2015
probabilities per firm type are the state the model's run-up must arrive at
(`mittelbau.core.runup`), which turns them into each type's adoption hazards.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np

from mittelbau.core.categories import BATCH_TYPES, COMPLEXITIES, DT_ITEMS, INDUSTRIES, SIZE_CLASSES

PROPENSITY_FILE = "initial_propensities.toml"


@dataclass(frozen=True)
class LogitEffects:
    """Additive log-odds effects; reference categories carry 0."""

    intercept: float
    industry: np.ndarray
    size: np.ndarray
    batch: np.ndarray
    complexity: np.ndarray
    service_strategy: float = 0.0
    bm: float = 0.0
    innovation: float = 0.0  # factor on the region's innovation shift (Region.innovation_shift)

    def structural(
        self,
        industry: np.ndarray,
        size: np.ndarray,
        batch: np.ndarray,
        complexity: np.ndarray,
        service_strategy: np.ndarray,
    ) -> np.ndarray:
        """Log-odds without the intercept and the BM term, per firm."""
        return (
            self.industry[industry]
            + self.size[size]
            + self.batch[batch]
            + self.complexity[complexity]
            + self.service_strategy * service_strategy
        )

    @classmethod
    def from_table(cls, table: dict) -> LogitEffects:
        def vec(key: str, labels: tuple[str, ...]) -> np.ndarray:
            given = table.get(key, {})
            return np.array([float(given.get(label, 0.0)) for label in labels])

        return cls(
            intercept=float(table["intercept"]),
            industry=vec("industry", INDUSTRIES),
            size=vec("size", SIZE_CLASSES),
            batch=vec("batch", BATCH_TYPES),
            complexity=vec("complexity", COMPLEXITIES),
            service_strategy=float(table.get("service_strategy", 0.0)),
            bm=float(table.get("bm", 0.0)),
            innovation=float(table.get("innovation", 0.0)),
        )


@dataclass(frozen=True)
class Propensities:
    bm: LogitEffects
    dt: LogitEffects
    dt_item_draw: np.ndarray  # independent draw probabilities of the DT items, order DT_ITEMS


@cache
def load_propensities() -> Propensities:
    """The committed result of calibration/fit_initial_state.py."""
    from mittelbau import calibration

    path = Path(calibration.__file__).resolve().parent / PROPENSITY_FILE
    data = tomllib.loads(path.read_text("utf-8"))
    return Propensities(
        bm=LogitEffects.from_table(data["bm"]),
        dt=LogitEffects.from_table(data["dt"]),
        dt_item_draw=np.array([data["dt_items"]["draw"][k] for k in DT_ITEMS]),
    )


def logistic(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))

"""Region files (structure per region) and the trait file (traits shared by all regions)."""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import numpy as np
from scipy.special import logit

from mittelbau.core.categories import BATCH_TYPES, COMPLEXITIES, INDUSTRIES, REGIONS, SIZE_CLASSES

DATA_DIR = Path(__file__).resolve().parent


def _read_toml(path: Path) -> dict:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def in_order(table: dict[str, float], labels: tuple[str, ...]) -> np.ndarray:
    """The table's values in the order of `labels`; the keys must be exactly the labels."""
    missing = set(labels) - set(table)
    extra = set(table) - set(labels)
    if missing or extra:
        raise ValueError(f"table must have exactly {labels}; missing {missing}, extra {extra}")
    return np.array([table[k] for k in labels], dtype=float)


def normalised(shares: dict[str, float], labels: tuple[str, ...]) -> np.ndarray:
    """Shares in the order of `labels`, divided by their sum (survey rounding)."""
    values = in_order(shares, labels)
    return values / values.sum()


@dataclass(frozen=True)
class Region:
    """The structure of one region's manufacturing SMEs (sources §3) and its regional data."""

    code: str
    name: str
    industry: np.ndarray
    size: np.ndarray
    batch: np.ndarray
    complexity: np.ndarray
    service_strategy_share: float
    service_innovator_share: float
    firms: int  # manufacturing SMEs the region has (its file's [population]; an assumption)
    firms_range: tuple[int, int]  # the range its file states for that count
    service_revenue_mean: float  # mean service revenue share (sources §2.12)

    @property
    def innovation_shift(self) -> float:
        """Log-odds shift of the BM and DT propensities: the region's share of service innovators
        against Germany's (sources §2.12), read as a head start in digital BM innovation
        (sources §2.13: 'a high share of SMEs began early')."""
        germany = load_region("germany").service_innovator_share  # its file: the reference
        return float(logit(self.service_innovator_share) - logit(germany))


@cache
def load_region(code: str) -> Region:
    """Read `regions/<code>.toml` into normalised share vectors."""
    if code not in REGIONS:
        raise ValueError(f"unknown region {code!r}; allowed: {', '.join(REGIONS)}")
    data = _read_toml(DATA_DIR / "regions" / f"{code}.toml")
    return Region(
        code=code,
        name=data["name"],
        industry=normalised(data["industry"]["shares"], INDUSTRIES),
        size=normalised(data["size"]["shares"], SIZE_CLASSES),
        batch=normalised(data["batch"]["shares"], BATCH_TYPES),
        complexity=normalised(data["complexity"]["shares"], COMPLEXITIES),
        service_strategy_share=float(data["service_strategy"]["share"]),
        service_innovator_share=float(data["service_innovators"]["share"]),
        firms=int(data["population"]["firms"]),
        firms_range=(int(data["population"]["low"]), int(data["population"]["high"])),
        service_revenue_mean=float(data["service_revenue"]["mean"]),
    )


@cache
def load_traits() -> dict:
    """The shared trait table `traits.toml` (sources §4 and named assumptions)."""
    return _read_toml(DATA_DIR / "traits.toml")


def raw_sample_size(code: str) -> int:
    """The survey sample of a region's SMEs (EMP 2015; `sample_smes` of its region file)."""
    return int(_read_toml(DATA_DIR / "regions" / f"{code}.toml")["sample_smes"])

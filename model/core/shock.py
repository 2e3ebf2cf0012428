"""A temporary demand-and-pressure shock (the `covid-2020` scenario), acting only through the
existing hazards.

In each of `shock_years` years from `shock_year` on:
- the digital pressure index rises by `shock_pressure`: the pressure term of the exit hazard of
  exposed stage-1 firms, the competition channel of the BM hazard and the outward drift of
  engagement all read the raised index (`model.MittelbauModel.pressure_in`);
- every firm's exit hazard is multiplied by 1 + `shock_exit_factor` (the demand shock).

With both magnitudes at their defaults (0) nothing changes: the functions return the exact
neutral values (0.0 and 1.0), so a run is byte-identical to one without the shock. The shock
draws no random numbers. Sources §6.4 reports what firms did during the COVID-19 pandemic; the
size of the shock is a stated assumption, and the comparison with sources §6.4 is a validation
(`calibration/validation.py`), not a fit.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mittelbau.core.scenario import Params


def in_shock(year: int, p: Params) -> bool:
    """Whether simulated `year` is one of the shock's years."""
    return p.shock_year <= year < p.shock_year + p.shock_years


def shock_pressure(year: int, p: Params) -> float:
    """Addition to the digital pressure index in simulated `year` (0.0 outside the shock)."""
    return float(p.shock_pressure) if in_shock(year, p) else 0.0


def shock_exit_multiplier(year: int, p: Params) -> float:
    """Multiplier of every firm's exit hazard in simulated `year` (1.0 outside the shock)."""
    return 1.0 + float(p.shock_exit_factor) if in_shock(year, p) else 1.0

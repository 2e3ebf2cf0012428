"""The yearly outcomes of the outcome registry as they stand now, for the dashboard's table."""

from __future__ import annotations

import math

from mittelbau.core.outcomes import OUTCOMES, Outcome
from mittelbau.dashboard.paired import PairedModel


def formatted(outcome: Outcome, value: object) -> str:
    """A value as the page shows it: shares in %, yes/no outcomes in words, '–' for none."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "–"
    if outcome.kind is bool:
        return "yes" if value else "no"
    if outcome.unit.startswith("share"):
        return f"{100 * float(value):.1f} %"
    return f"{float(value):.3g}"


def outcome_rows(model: PairedModel) -> list[tuple[str, str, str]]:
    """(label, value in the current year, definition) of every yearly outcome, in registry order."""
    now = model.history().iloc[-1]
    return [(o.label, formatted(o, now[o.name]), o.definition) for o in OUTCOMES.values() if o.yearly]

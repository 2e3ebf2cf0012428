"""Category labels of firm attributes; arrays on the model hold the index into these tuples."""

from __future__ import annotations

START_YEAR = 2015  # EMP 2015 survey state (sources §2.1)
# how near the run-up's expected 2015 stage shares must come to the cross-section's: the 1.5
# points within which the fitted cross-section itself must meet Stuttgart's surveyed shares
# (calibration/initial_state_targets.toml); a run-up farther off is reported (`RunUp.stage_gap`)
STAGE_TOLERANCE = 0.015

INDUSTRIES = ("food", "paper", "chemicals", "metal", "electronics", "machinery", "other")
SIZE_CLASSES = ("20-49", "50-99", "100-249", "250-499")
BATCH_TYPES = ("single", "small_medium", "large")
COMPLEXITIES = ("simple", "medium", "complex")
POSITIONS = ("final", "system", "parts", "job_shop")
MARKET_POSITIONS = ("leader", "few_competitors", "many_competitors")
ENGAGEMENT_LEVELS = ("watching", "internal", "partners", "experts")
DT_ITEMS = ("internet", "mobile", "sensors", "vr_ar")
# Targeting rules of the policy levers (mittelbau.levers.base.in_target).
TARGETS = ("all", "small", "very_small", "stage1", "stage2")
REGIONS = ("stuttgart", "nord", "muenchen", "rhein-ruhr", "germany")

# Reference categories of the structural propensity models (coefficient 0).
REFERENCE = {"industry": "metal", "size": "20-49", "batch": "small_medium", "complexity": "medium"}

# Firm attributes a calibration target's group may select on ("size:20-49+50-99").
GROUP_ATTRIBUTES = {
    "industry": INDUSTRIES,
    "size": SIZE_CLASSES,
    "batch": BATCH_TYPES,
    "complexity": COMPLEXITIES,
}


def group_codes(group: str) -> tuple[str, list[int]] | None:
    """The attribute and category codes a target group names: 'all' (None: every firm) or
    '<attribute>:<label>+<label>…', e.g. 'size:20-49+50-99'."""
    if group == "all":
        return None
    attr, _, labels = group.partition(":")
    allowed = GROUP_ATTRIBUTES.get(attr)
    wanted = labels.split("+")
    if allowed is None or not labels or any(lab not in allowed for lab in wanted):
        options = "; ".join(f"{a}: {', '.join(labs)}" for a, labs in GROUP_ATTRIBUTES.items())
        raise ValueError(
            f"group {group!r} is invalid; allowed: 'all' or '<attribute>:<label>+<label>…' with {options}"
        )
    return attr, [allowed.index(lab) for lab in wanted]

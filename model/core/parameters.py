"""The one parameter registry: every parameter with unit, default, range and source.

Scenario files, the command line, calibration and sensitivity analysis read it. A `source`
that starts with "sources" cites the record of the studies (calibration/sources.toml),
"calibrated:" names the committed fit (calibration/dynamic_parameters.toml) the default
comes from, and "assumption:" names the
reason for a value the studies do not give. The entries of the policy levers are declared
in their modules (`mittelbau.levers`) and joined here. Each entry has a role (setting, lever or
uncertainty, from its group) and an exploration range beside its validation range.
"""

from __future__ import annotations

import tomllib
from dataclasses import replace
from pathlib import Path

from mittelbau import calibration
from mittelbau.core.categories import REGIONS
from mittelbau.core.registry_entry import Parameter, Role
from mittelbau.levers import SPECS, lever_parameters

_FIT_FILE = Path(calibration.__file__).resolve().parent / "dynamic_parameters.toml"
_FIT = tomllib.loads(_FIT_FILE.read_text("utf-8")) if _FIT_FILE.exists() else {}


def calibrated(name: str, assumed: float, reason: str) -> tuple[float, str]:
    """The default of a dynamic parameter: its posterior median in the committed fit
    (calibration/dynamic_parameters.toml) when there is one, otherwise the stated assumption."""
    if name in _FIT:
        f = _FIT[name]
        return float(f["median"]), (
            f"calibrated: calibration/dynamic_parameters.toml v{_FIT['version']} (ABC-SMC to "
            f"sources §4.1–4.4; posterior median, 90 % interval {f['q05']:.3g}–{f['q95']:.3g})"
        )
    return assumed, reason


P = Parameter


def P_fit(
    name: str, assumed: float, unit: str, description: str, reason: str, low: float, high: float
) -> Parameter:
    """A dynamic parameter whose default comes from the committed fit when there is one."""
    default, source = calibrated(name, assumed, reason)
    return Parameter(name, default, unit, description, source, low, high)


_ENTRIES: tuple[Parameter, ...] = (
    # ---- run -----------------------------------------------------------------------------
    P(
        "region",
        "stuttgart",
        "-",
        "Region whose firm population is synthesised",
        "sources §3.1 (regions of the study)",
        choices=REGIONS,
        group="run",
        control=True,
    ),
    P(
        "firms",
        4000,
        "firms",
        "Number of firm agents",
        "assumption: order of magnitude of manufacturing SMEs with 20–499 employees in a "
        "metropolitan region; the studies give no count (shares are scale-free)",
        100,
        1_000_000,
        group="run",
        control=True,
        control_high=20_000,
    ),
    P(
        "years",
        20,
        "years",
        "Projection horizon; 0 writes the 2015 initial state only",
        "model brief (10–20 years ahead)",
        0,
        60,
        group="run",
        control=True,
    ),
    P(
        "seed",
        20170501,
        "-",
        "Root seed of the run's random generator",
        "assumption: any fixed integer; one seed reproduces a run exactly",
        0,
        2**32 - 1,
        group="run",
        control=True,
    ),
    # ---- DT adoption -------------------------------------------------------------------
    P_fit(
        "dt_adoption_rate",
        0.01,
        "1/year",
        "Annual DT adoption hazard of a reference firm (metal, 20–49 employees, small/medium "
        "series, medium complexity, unconstrained, 3 techniques, engagement 'internal')",
        "assumption: a low reference rate (the survey targets say little about DT adoption)",
        0.0,
        0.5,
    ),
    P(
        "dt_social_weight",
        0.5,
        "share",
        "Share of the DT hazard driven by adoption among network partners and industry peers "
        "at reference adoption levels",
        "assumption: sources §4.3 (exchange with partners "
        "matters in all groups) gives the direction, not the size",
        0.0,
        0.95,
    ),
    P(
        "dt_finance_factor",
        0.6,
        "factor",
        "Multiplier of the DT hazard for financially constrained firms",
        "sources §4.5 (financing named by 46 %, more by smaller firms); size assumed",
        0.0,
        1.0,
    ),
    P(
        "dt_competence_effect",
        0.15,
        "log-hazard per technique",
        "Change of the DT log-hazard per digital technique used beyond three",
        "sources §4.5 (lacking prerequisites: 28 % of low- vs 4 % of high-digital firms); size assumed",
        0.0,
        0.5,
    ),
    P(
        "engagement_effect",
        0.3,
        "log-hazard per level",
        "Change of the DT and BM log-hazards per engagement level beyond 'internal'",
        "sources §4.3 (cooperating firms are at a markedly higher level); size assumed",
        0.0,
        1.0,
    ),
    P(
        "capability_coupling",
        2.0,
        "factor",
        "Multiplier of the DT hazard for BM firms and of the BM hazard for DT firms",
        "assumption: sources §2.1–2.2, §2.14 (BM and DT go together far more often than by "
        "chance: the cross-section's DT-on-BM log-odds effect is fitted in calibration/); the "
        "dynamic size of the effect is assumed",
        1.0,
        10.0,
    ),
    P(
        "dt_loss_rate",
        0.01,
        "1/year",
        "Annual hazard of giving up digital service technology",
        "assumption: DT is rarely abandoned once used",
        0.0,
        0.1,
    ),
    # ---- BM adoption -------------------------------------------------------------------
    P_fit(
        "bm_adoption_rate",
        0.01,
        "1/year",
        "Annual hazard of introducing a service-based BM for a reference firm (metal, small/"
        "medium series, medium complexity, no service strategy) at reference social conditions",
        "assumption: below the 13 %/year rate of any new complementary BM implied by sources "
        "§4.1 (34 % within 3 years), since only service-based BMs count; to be calibrated",
        0.0,
        0.5,
    ),
    P(
        "bm_weight_peers",
        0.28,
        "share",
        "Share of BM introductions reacting to innovators in the industry (peers)",
        "sources §4.2 (28 %); range ±50 %, so the three motive shares never exceed 1",
        0.14,
        0.42,
    ),
    P(
        "bm_weight_customers",
        0.20,
        "share",
        "Share of BM introductions at the main customer's wish (network customers)",
        "sources §4.2 (20 %); range ±50 %",
        0.10,
        0.30,
    ),
    P(
        "bm_weight_competition",
        0.18,
        "share",
        "Share of BM introductions under competitive pressure (digital pressure trend)",
        "sources §4.2 (18 %); the intrinsic share is the remainder (34 %); range ±50 %",
        0.09,
        0.27,
    ),
    P(
        "bm_loss_rate",
        0.03,
        "1/year",
        "Annual hazard of dropping a service-based BM for a firm without a service strategy",
        "assumption: sources §2.12–2.13 (weak service revenue leads to neglect of services)",
        0.0,
        0.2,
    ),
    P(
        "bm_loss_strategy_factor",
        0.5,
        "factor",
        "Multiplier of the BM loss hazard for firms that treat services as a competitive factor",
        "assumption: sources §2.11–2.13 (strategic anchoring keeps services alive)",
        0.0,
        1.0,
    ),
    # ---- competence and engagement ----------------------------------------------------
    P_fit(
        "competence_learning",
        0.3,
        "techniques/year",
        "Digital techniques a DT user adds per year (up to 10)",
        "assumption: sources §4.4 (users of more techniques are DT users)",
        0.0,
        2.0,
    ),
    P_fit(
        "engagement_drift_rate",
        0.04,
        "1/year",
        "Annual probability that a watching or internal-only firm moves one engagement level "
        "outward, scaled by the digital pressure index",
        "assumption: sources §4.3 (about 40 % not yet engaged in 2016)",
        0.0,
        0.3,
    ),
    # ---- market pressure, exit, entry --------------------------------------------------
    P(
        "digital_pressure_growth",
        0.04,
        "1/year",
        "Linear growth of the digital pressure index (2015 = 1) from platform entrants",
        "assumption: sources §4.9 (21 % expect a threat in future, 7 % now)",
        0.0,
        0.2,
    ),
    P(
        "exit_rate",
        0.02,
        "1/year",
        "Base annual exit hazard of a firm",
        "assumption: typical annual exit rate of established manufacturing SMEs",
        0.0,
        0.1,
    ),
    P(
        "pressure_exit_factor",
        1.0,
        "factor per pressure unit",
        "Extra relative exit hazard of stage-1 firms with simple products and a threatened main "
        "BM, per unit of the digital pressure index",
        "assumption: sources §2.13, §4.9 (platform entrants take value added)",
        0.0,
        5.0,
    ),
    # ---- network -----------------------------------------------------------------------
    P(
        "customers_per_supplier",
        3,
        "ties",
        "Customers each supplier firm (system, parts, job shop) has in the region",
        "assumption: SMEs serve a few main customers (sources §4.8: two thirds earn 75–100 % "
        "with their main BM)",
        1,
        10,
        group="network",
    ),
    P(
        "same_industry_ties",
        0.5,
        "share",
        "Probability that a customer tie stays within the supplier's industry",
        "assumption",
        0.0,
        1.0,
        group="network",
    ),
    # ---- indicators --------------------------------------------------------------------
    P(
        "hollowing_threshold",
        0.5,
        "ratio",
        "The middle has hollowed out when stage 2 falls below this fraction of the smaller pole "
        "(stage 1 or 3)",
        "assumption: 'two worlds' (sources §2.13) read as a middle less than half the size of either pole",
        0.1,
        1.0,
        group="indicators",
    ),
)

# ---- roles and exploration ranges ---------------------------------------------------------
# The role follows from the group: run settings and indicator definitions are held fixed,
# lever parameters are policy choices, everything else is uncertain.
SETTING_GROUPS = frozenset({"run", "indicators"})
LEVER_GROUPS = frozenset(s.name for s in SPECS)

# Ranges experiments sample where the validation range (what a scenario may set) is wider than
# is sensible to explore; every other parameter is explored over its validation range.
EXPLORATION: dict[str, tuple[float, float]] = {
    "funding_budget_eur": (0.0, 5e6),  # a regional programme, not the €100 M a year allowed
    "funding_grant_eur": (10_000.0, 200_000.0),
    "cooperation_projects_per_year": (0, 50),
    "cooperation_cost_per_project_eur": (50_000.0, 1e6),
    "centres_number": (0, 10),
    "centres_capacity": (10, 200),
    "centres_access_cost_eur": (0.0, 10_000.0),
    "centres_running_cost_eur": (100_000.0, 2e6),
}


def role_of(group: str) -> Role:
    """A registry group's role in experiments: setting, lever or uncertainty."""
    if group in SETTING_GROUPS:
        return "setting"
    return "lever" if group in LEVER_GROUPS else "uncertainty"


def _assembled(entries: tuple[Parameter, ...]) -> tuple[Parameter, ...]:
    """The entries with their roles and exploration ranges."""
    unknown = set(EXPLORATION) - {p.name for p in entries}
    if unknown:
        raise ValueError(f"exploration ranges for unknown parameters: {sorted(unknown)}")
    out = []
    for p in entries:
        span = EXPLORATION.get(p.name)
        if span is not None and not (p.low <= span[0] < span[1] <= p.high):
            raise ValueError(
                f"exploration range of {p.name!r} = {span} is invalid; allowed: a range within "
                f"{p.low:g}–{p.high:g}"
            )
        out.append(replace(p, role=role_of(p.group), exploration=span))
    return tuple(out)


REGISTRY: tuple[Parameter, ...] = _assembled(_ENTRIES + lever_parameters())
BY_NAME: dict[str, Parameter] = {p.name: p for p in REGISTRY}

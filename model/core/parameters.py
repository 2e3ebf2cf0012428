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
            "calibration/targets.toml, sources §2.1–2.2, §2.12, §2.14, §4.1–4.4, §4.8, §7.1; posterior "
            f"median, 90 % interval {f['q05']:.3g}–{f['q95']:.3g})"
        )
    return assumed, reason


P = Parameter
# assumptions of the firm economics per industry (see the registry entries for the reasons)
REVENUE_PER_EMPLOYEE = {
    "food": 220_000.0,
    "paper": 180_000.0,
    "chemicals": 260_000.0,
    "metal": 140_000.0,
    "electronics": 170_000.0,
    "machinery": 200_000.0,
    "other": 160_000.0,
}
VALUE_ADDED_SHARE = {
    "food": 0.25,
    "paper": 0.33,
    "chemicals": 0.32,
    "metal": 0.45,
    "electronics": 0.40,
    "machinery": 0.38,
    "other": 0.38,
}
SWITCH = ("off", "on")  # choices of a mechanism switch


def P_fit(
    name: str,
    assumed: float,
    unit: str,
    description: str,
    reason: str,
    low: float,
    high: float,
    group: str = "dynamics",
) -> Parameter:
    """A dynamic parameter whose default comes from the committed fit when there is one."""
    default, source = calibrated(name, assumed, reason)
    return Parameter(name, default, unit, description, source, low, high, group=group)


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
        "Number of firm agents; each stands for population_scale = region_firms / firms firms of the region",
        "assumption: enough agents for shares to be precise to under a percentage point; the "
        "region's count is region_firms (shares are scale-free, totals and budgets are scaled)",
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
        "Projection horizon after 2015; 0 writes the run-up to the 2015 state only",
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
    # ---- run-up to the 2015 state (mittelbau.core.runup) ------------------------------
    P(
        "runup_start_year",
        2000,
        "year",
        "First year of the model: the run-up starts here and reaches the 2015 survey state",
        "sources §7.1 (service-based BMs developed since the beginning of the millennium)",
        1995,
        2005,
        group="runup",
    ),
    P(
        "bm_start_odds",
        0.15,
        "odds ratio",
        "Odds of offering a service-based BM at the run-up's start relative to 2015, in every "
        "firm type (Stuttgart: BM share 18 % in 2000 at the default)",
        "assumption: sources §7.1 (service-based BMs developed since about 2000; product-related "
        "services were offered before), §2.2 (41–46 % offer one in 2015): a few points a year at most",
        0.02,
        0.6,
        group="runup",
    ),
    P(
        "dt_wave_start_year",
        2003,
        "year",
        "First year in which DT spreads (and is given up); before it, DT stays as at the start",
        "assumption: sources §7.1 dates the digital wave in services from the mid-2010s, but "
        "with 50–58 % DT users in 2015 (sources §2.14, from §2.1–2.3) and internet and mobile devices "
        "the common items (sources §2.3) it must have started about a decade earlier; from "
        "2003 no size class's expected stage shares move more than 5 points in a run-up year",
        2000,
        2012,
        group="runup",
    ),
    P(
        "dt_start_odds",
        0.15,
        "odds ratio",
        "Odds of using DT (given BM) in the run-up's first year relative to 2015, in every firm "
        "type (Stuttgart: DT share 23 % at the default, which stays until the DT wave starts)",
        "assumption (the studies give DT shares for 2015 only, sources §2.3, §2.14; some DT is taken "
        "to predate the wave); the 2015 shares follow from it",
        0.02,
        0.6,
        group="runup",
    ),
    # ---- DT adoption -------------------------------------------------------------------
    P(
        "dt_adoption_factor",
        1.0,
        "factor",
        "Multiplier of every firm type's DT adoption hazard from 2016 on, against the hazard "
        "that carried the run-up to the 2015 state (1: the run-up's pace goes on)",
        "assumption: no break in the survey year; the hazards themselves follow from the run-up "
        "(sources §2.1, §2.14, §7.1)",
        0.0,
        5.0,
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
        "bm_adoption_factor",
        1.0,
        "factor",
        "Multiplier of every firm type's BM adoption hazard from 2016 on, against the hazard "
        "that carried the run-up to the 2015 state (1: the run-up's pace goes on)",
        "assumption: no break in the survey year; the hazards themselves follow from the run-up "
        "(sources §2.2, §7.1)",
        0.0,
        5.0,
    ),
    P_fit(
        "bm_service_share",
        0.35,
        "share",
        "Share of a manufacturer's complementary BM introductions that are service-based (the "
        "model's BM); only the measurement model of the survey's BM introductions reads it "
        "(calibration/targets.toml)",
        "assumption: sources §4.1 counts any complementary BM; 46 % offer a service-based BM "
        "(sources §2.2) against 94 % with any complementary BM, about half of them several "
        "(sources §4.8), so service-based ones are at most about half of all; prior uniform "
        "0.15–0.6",
        0.15,
        0.6,
        group="measurement",
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
    P_fit(
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
        "Mean number of digital techniques a DT user adds per year (up to 10), in whole "
        "techniques: the integer part every year and one more with probability the fraction",
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
        "Linear growth of the digital pressure index (1 in 2016, the first projected year) from "
        "platform entrants",
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
        "assumption: sources §4.9, §7.2, §7.3 (platform entrants take value added)",
        0.0,
        5.0,
    ),
    # ---- a temporary demand-and-pressure shock (mittelbau.core.shock) ------------------
    P(
        "shock_year",
        2020,
        "year",
        "First year of the demand-and-pressure shock (acts only where a magnitude is above 0)",
        "sources §6.4 (the COVID-19 pandemic, 2020)",
        2016,
        2075,
        group="shock",
    ),
    P(
        "shock_years",
        2,
        "years",
        "Years the shock lasts",
        "assumption: the pandemic's restrictions lasted through 2020 and 2021; sources §6.4 "
        "gives no duration",
        1,
        10,
        group="shock",
    ),
    P(
        "shock_pressure",
        0.0,
        "pressure index units",
        "Addition to the digital pressure index in each shock year: raises the exit hazard of "
        "exposed stage-1 firms, the competition channel of the BM hazard, engagement drift "
        "and, where platform capture is on, the capture hazard (0: no shock)",
        "assumption: no shock in the baseline; the covid-2020 scenario sets 1 (the pandemic "
        "moved sales, service and customer contact to digital channels, read as doubling the "
        "2020 index of about 1.2); sources §6.4 gives no size",
        0.0,
        5.0,
        group="shock",
    ),
    P(
        "shock_exit_factor",
        0.0,
        "relative increase",
        "Relative increase of every firm's exit hazard in each shock year, the demand shock (0: no shock)",
        "assumption: no shock in the baseline; the covid-2020 scenario sets 0.5 (a demand slump "
        "of a severe recession year, damped by state support); sources §6.4 gives no size",
        0.0,
        5.0,
        group="shock",
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
        "Probability that a supplier draws a customer tie within its own industry (otherwise from "
        "all industries, its own included; entrants take over a leaving firm's ties, not its "
        "industry, so the share of ties within one industry thins over the years)",
        "assumption",
        0.0,
        1.0,
        group="network",
    ),
    # ---- mechanisms that can hollow the middle (docs/odd.md, section 7.6) ----------------
    P(
        "mech_service_neglect",
        "off",
        "-",
        "Weak service revenue feeds neglect: the BM loss hazard rises as a firm's realised "
        "service revenue share falls below the sector mean",
        "sources §2.12, §2.13, §7.5 (a possibility the study names, not a measured effect; "
        "off by default so the calibrated structure is the reference)",
        choices=SWITCH,
        group="mechanisms",
    ),
    P(
        "service_revenue_mean",
        0.0,
        "share of revenue",
        "Mean service revenue share (direct and indirect billing) of the synthesised firms; "
        "0 = the region's mean (its file's [service_revenue])",
        "sources §2.12 (Stuttgart 10 %, Germany 11 %)",
        0.0,
        0.3,
        group="mechanisms",
    ),
    P_fit(
        "service_revenue_concentration",
        10.0,
        "-",
        "Concentration a + b of the beta distribution of the service revenue share",
        "assumption: the studies give the mean only; 10 gives a standard deviation of about "
        "9 pp around a mean of 10 %",
        2.0,
        100.0,
        group="mechanisms",
    ),
    P(
        "service_below_value",
        0.5,
        "share",
        "Share of its service value a supplier does not bill when all its customers are larger "
        "than itself (services given away or sold below value)",
        "sources §2.12, §7.5 (market power of final-product makers over smaller suppliers); size assumed",
        0.0,
        0.9,
        group="mechanisms",
    ),
    P(
        "neglect_effect",
        1.0,
        "factor",
        "Extra relative BM loss hazard of a firm with no realised service revenue (linear in "
        "the shortfall below the mean)",
        "assumption: sources §7.5 gives the direction ('further neglect of the service "
        "business'), not the size; 1 doubles the loss hazard at zero revenue",
        0.0,
        5.0,
        group="mechanisms",
    ),
    P(
        "mech_lockin",
        "off",
        "-",
        "Stage-1 lock-in: stage-1 firms not engaged (watching, internal only) barely respond "
        "until engagement drift or a programme wakes them",
        "sources §4.3, §4.9 (about 40 % not engaged; firms that have not engaged do not see the challenge)",
        choices=SWITCH,
        group="mechanisms",
    ),
    P(
        "lockin_response",
        0.3,
        "factor",
        "Multiplier of the DT and BM adoption hazards of locked-in firms",
        "assumption: sources §4.3, §4.9 ('do not see the challenge') gives the direction; 'barely "
        "respond' read as under a third",
        0.0,
        1.0,
        group="mechanisms",
    ),
    P(
        "mech_rising_bar",
        "off",
        "-",
        "The rising bar: the digital competence needed for DT grows with the frontier; IT "
        "specialists and training decide who keeps up",
        "sources §2.10, §6.2, §7.4 (firms < 100 employees risk being decoupled step by step)",
        choices=SWITCH,
        group="mechanisms",
    ),
    P(
        "bar_growth",
        0.2,
        "techniques/year",
        "Yearly growth of the digital competence the DT hazard is measured against (from "
        "three techniques in 2016 up to the ten asked about)",
        "assumption: about a DT user's learning (competence_learning, as fitted), so users "
        "about keep pace and non-users fall behind",
        0.0,
        1.0,
        group="mechanisms",
    ),
    P(
        "bar_effect",
        0.15,
        "log-hazard per technique",
        "Fall of the DT log-hazard per technique a firm's competence lies below the bar",
        "assumption: the same size as dt_competence_effect (sources §4.5)",
        0.0,
        0.5,
        group="mechanisms",
    ),
    P(
        "it_specialist_bonus",
        2.0,
        "techniques",
        "Digital competence an IT specialist adds to a firm's techniques against the bar",
        "assumption: sources §6.2 (IT specialists in 12 % of 10–49 vs 43 % of 50–249); size assumed",
        0.0,
        5.0,
        group="mechanisms",
    ),
    P(
        "training_learning",
        0.15,
        "techniques/year",
        "Techniques a firm without DT that covers skills gaps by training adds per year",
        "assumption: sources §6.2 (training in 18 % of 10–49 vs 43 % of 50–249); below the "
        "fitted learning by use (competence_learning)",
        0.0,
        1.0,
        group="mechanisms",
    ),
    P(
        "mech_platform_capture",
        "off",
        "-",
        "Platform capture: stage-1 makers of simple products with a threatened BM become "
        "platform suppliers, lose margin and may exit",
        "sources §4.9, §7.2, §7.3",
        choices=SWITCH,
        group="mechanisms",
    ),
    P(
        "capture_rate",
        0.05,
        "1/year per pressure unit",
        "Hazard that an exposed stage-1 firm becomes a platform supplier, per unit of the "
        "digital pressure index",
        "assumption: sources §4.9 (7 % threatened now, 21 % possibly in future: about a "
        "fifth of the exposed within a few years)",
        0.0,
        0.5,
        group="mechanisms",
    ),
    P(
        "capture_exit_factor",
        2.0,
        "factor",
        "Multiplier of a platform supplier's exit hazard (lost margin)",
        "assumption: sources §7.2, §7.3 (value added moves to the platform); size assumed",
        1.0,
        10.0,
        group="mechanisms",
    ),
    P(
        "capture_adoption_factor",
        0.5,
        "factor",
        "Multiplier of a platform supplier's DT and BM adoption hazards (dependency)",
        "assumption: sources §7.3 (dependencies on the platform); size assumed",
        0.0,
        1.0,
        group="mechanisms",
    ),
    P(
        "mech_delayed_slump",
        "off",
        "-",
        "Delayed slump: where services carry little strategic weight, success lowers the BM "
        "adoption hazard after a delay",
        "sources §2.13 ('with a delay' a slump in new BM offers)",
        choices=SWITCH,
        group="mechanisms",
    ),
    P(
        "slump_delay",
        5,
        "years",
        "Years after 2016 before the slump begins (it deepens linearly over the next five)",
        "assumption: sources §2.13 says 'with a delay', not how long",
        0,
        20,
        group="mechanisms",
    ),
    P(
        "slump_depth",
        0.5,
        "share",
        "Fall of the BM adoption hazard of firms without a service strategy once the slump is complete",
        "assumption: sources §2.13 gives the direction only",
        0.0,
        1.0,
        group="mechanisms",
    ),
    P(
        "mech_leapfrog",
        "off",
        "-",
        "Leapfrogging: stage-1 firms exchanging with partners acquire DT and BM together "
        "(1 → 3), e.g. through a digital partner",
        "sources §2.13 (the 2 → 3 flow depends on stage 2's size), §4.3, §5.2",
        choices=SWITCH,
        group="mechanisms",
    ),
    P(
        "leap_rate",
        0.02,
        "1/year",
        "Hazard that a stage-1 firm at engagement 'partners' or beyond acquires DT and BM together "
        "(times the other mechanisms' DT and BM gain multipliers)",
        "assumption: below the reference adoption rates' order of a few per cent a year",
        0.0,
        0.2,
        group="mechanisms",
    ),
    # ---- firm economics (model/core/economics.py, docs/odd.md 'Economics') ---------------
    P(
        "region_firms",
        0,
        "firms",
        "Manufacturing SMEs (20–499 employees) the region has; 0 = its region file's count. "
        "population_scale = region_firms / firms turns agent sums into the region's totals",
        "assumption: the studies give no count; each region file states its count and range",
        0,
        1_000_000,
        group="economics",
    ),
    P(
        "employee_size_exponent",
        1.0,
        "-",
        "Pareto exponent of employees within a firm's size class (0: log-uniform)",
        "assumption: firm sizes follow a Pareto law with an exponent near 1 (Zipf's law of firm "
        "sizes), so more firms lie near a class's lower bound; the studies give classes only "
        "(sources §3.2)",
        0.0,
        2.0,
        group="economics",
    ),
    *(
        P(
            f"revenue_per_employee_{industry}",
            eur,
            "€/employee/year",
            f"Revenue per employee in the {industry} industry",
            "assumption: order of magnitude of revenue per person employed in German "
            "manufacturing SMEs of the industry around 2015; the studies give no figure; "
            "range ± half",
            eur / 2,
            eur * 1.5,
            group="economics",
        )
        for industry, eur in REVENUE_PER_EMPLOYEE.items()
    ),
    *(
        P(
            f"value_added_share_{industry}",
            share,
            "share of revenue",
            f"Gross value added as a share of revenue in the {industry} industry",
            "assumption: order of magnitude of the value-added ratio of German manufacturing "
            "by industry (low where bought-in materials dominate, as in food); the studies give "
            "no figure",
            0.15,
            0.6,
            group="economics",
        )
        for industry, share in VALUE_ADDED_SHARE.items()
    ),
    P(
        "platform_margin_loss",
        0.3,
        "share of value added",
        "Share of a platform supplier's value added that moves to the platform owner",
        "assumption: sources §7.2, §7.3 ('part of value added would then no longer take place "
        "in industry') give the direction, not the size",
        0.05,
        0.8,
        group="economics",
    ),
    P(
        "entrant_start_share",
        0.5,
        "share",
        "An entrant's employees and value added in its entry year, as a share of its full size",
        "assumption: entrants start small and grow; the studies give no figure",
        0.0,
        1.0,
        group="economics",
    ),
    P(
        "entrant_growth_years",
        5,
        "years",
        "Years an entrant takes to reach its full size (linearly); 0 = full size at entry",
        "assumption: the studies give no figure",
        0,
        20,
        group="economics",
    ),
    P(
        "discount_rate",
        0.03,
        "1/year",
        "Rate at which programme costs and value added kept are discounted to 2015, the first "
        "year of the accounting",
        "assumption: a social discount rate of a few per cent a year for public programmes",
        0.0,
        0.1,
        group="economics",
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
    P(
        "middle_shrink_pp",
        2.0,
        "pp",
        "The middle shrinks when stage 2 at the horizon lies at least this far below 2015",
        "assumption: a fall clearly beyond the sampling noise of a 4,000-firm run (about "
        "0.7 pp standard deviation)",
        0.0,
        20.0,
        group="indicators",
    ),
)

# ---- roles and exploration ranges ---------------------------------------------------------
# The role follows from the group: run settings, indicator definitions, the shock (a
# scenario's event, not an uncertain rate) and the measurement models of the calibration
# (which the simulation never reads) are held fixed, lever parameters are policy choices,
# everything else is uncertain.
SETTING_GROUPS = frozenset({"run", "indicators", "shock", "measurement"})
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
    # the calibration's 90 % interval reaches 0.061 (calibration/dynamic_parameters.toml); the
    # faster BMs are lost, the further the run-up arrives from the 2015 state (firms dropping a
    # BM keep their DT): 1.5 points off at about 0.051, 2.0 at 0.06, 8.6 at 0.2
    "bm_loss_rate": (0.0, 0.06),
    # 0 stands for the region's own mean (its file's), not for a mean of 0: explored above it,
    # or Morris, whose levels include the ends, would run the region's mean at the bottom level
    "service_revenue_mean": (0.01, 0.3),
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

"""The economics record's columns per group, and how entrants grow to their full size."""

import numpy as np
import pytest

from mittelbau.core.categories import INDUSTRIES, SIZE_CLASSES
from mittelbau.core.economics import GROUP_NAMES, Economics, column_names
from mittelbau.core.model import MittelbauModel
from mittelbau.core.population import synthesise
from mittelbau.core.region_data import load_region
from mittelbau.core.scenario import make_params

SCALE = 2.5  # region firms per agent


def firms(n, seed=0):
    return synthesise(load_region("stuttgart"), n, np.random.default_rng(seed))


def groups(table):
    """Each group of GROUP_NAMES as a mask over the firms, built from its name."""
    stage = table.stage
    out = {"all": np.ones(len(table), bool)}
    out |= {f"size:{c}": table.size == i for i, c in enumerate(SIZE_CLASSES)}
    out |= {f"industry:{c}": table.industry == i for i, c in enumerate(INDUSTRIES)}
    out |= {f"stage:{k}": stage == k for k in (1, 2, 3)}
    assert list(out) == GROUP_NAMES
    return out


def recorded(table, p, stuck=None, seed=1):
    """A 2015 firm table's economics and its first record (groups × columns, region units)."""
    econ = Economics(table, p, SCALE, np.random.default_rng(seed))
    econ.record(table, np.zeros(len(table), bool) if stuck is None else stuck)
    return econ, econ.region_records()[-1]


def column(record, name):
    return record[:, column_names().index(name)]


def test_service_revenue_is_revenue_times_each_firms_service_share():
    """Revenue = employees × the industry's revenue per employee; service revenue = revenue ×
    the firm's service revenue share, summed per group: below revenue wherever the shares are."""
    table = firms(400)
    rng = np.random.default_rng(2)
    table.service_revenue = rng.uniform(0.0, 0.4, len(table))
    table.service_revenue[:50] = 0.0  # no service revenue at all
    p = make_params({})
    econ, rec = recorded(table, p)
    per_employee = np.array([getattr(p, f"revenue_per_employee_{i}") for i in INDUSTRIES])
    revenue = econ.employees * per_employee[table.industry]
    service = revenue * table.service_revenue
    for g, (name, members) in enumerate(groups(table).items()):
        assert column(rec, "revenue_eur")[g] == pytest.approx(SCALE * revenue[members].sum(), rel=1e-12), name
        assert column(rec, "service_revenue_eur")[g] == pytest.approx(
            SCALE * service[members].sum(), rel=1e-12, abs=1e-6
        ), name
    # the whole region: a mean service share of about 0.2 (0.175 with the 50 firms at 0)
    share = column(rec, "service_revenue_eur")[0] / column(rec, "revenue_eur")[0]
    assert 0.12 < share < 0.25


def test_service_revenue_of_three_firms_by_hand():
    """Three firms, shares 0, 10 % and 50 %: the service revenue is 0.1 · r₁ + 0.5 · r₂."""
    table = firms(3)
    table.service_revenue = np.array([0.0, 0.1, 0.5])
    econ, rec = recorded(table, make_params({}))
    r = econ.revenue
    assert column(rec, "revenue_eur")[0] == pytest.approx(SCALE * r.sum())
    assert column(rec, "service_revenue_eur")[0] == pytest.approx(SCALE * (0.1 * r[1] + 0.5 * r[2]))


def test_stuck_employment_counts_the_persons_of_stuck_firms_only():
    """`employment_stuck_stage1` sums the persons of the firms marked stuck, per group: not of
    the other stage-1 firms, nor of any firm in stages 2 and 3."""
    table = firms(400, seed=5)
    stage1 = np.flatnonzero(table.stage == 1)
    stuck = np.zeros(len(table), bool)
    stuck[stage1[::2]] = True  # half the stage-1 firms
    econ, rec = recorded(table, make_params({}), stuck)
    jobs = econ.jobs
    for g, (name, members) in enumerate(groups(table).items()):
        expected = SCALE * jobs[members & stuck].sum()
        assert column(rec, "employment_stuck_stage1")[g] == pytest.approx(expected, rel=1e-12), name
    stuck_jobs, stage1_jobs = column(rec, "employment_stuck_stage1"), column(rec, "employment")
    s1 = GROUP_NAMES.index("stage:1")
    assert 0.3 < stuck_jobs[0] / stage1_jobs[s1] < 0.7
    assert stuck_jobs[GROUP_NAMES.index("stage:2")] == 0 and stuck_jobs[GROUP_NAMES.index("stage:3")] == 0


def test_platform_employment_and_captured_value_are_those_of_platform_suppliers():
    """`employment_platform_suppliers` sums the persons of platform suppliers only; they lose
    `platform_margin_loss` of their value added to the platform owner, the others nothing."""
    table = firms(400, seed=6)
    table.platform = np.arange(len(table)) % 5 == 0
    p = make_params({"platform_margin_loss": 0.4})
    econ, rec = recorded(table, p)
    jobs, gross = econ.jobs, econ.gross_value_added()
    for g, (name, members) in enumerate(groups(table).items()):
        mine = members & table.platform
        assert column(rec, "employment_platform_suppliers")[g] == pytest.approx(
            SCALE * jobs[mine].sum(), rel=1e-12
        ), name
        captured = SCALE * 0.4 * gross[mine].sum()
        assert column(rec, "value_added_captured_eur")[g] == pytest.approx(captured, rel=1e-12), name
        kept = SCALE * gross[members].sum() - captured
        assert column(rec, "value_added_eur")[g] == pytest.approx(kept, rel=1e-12), name
    share = column(rec, "employment_platform_suppliers")[0] / column(rec, "employment")[0]
    assert 0.1 < share < 0.3  # a fifth of the firms


def test_a_run_records_the_persons_of_platform_suppliers_and_of_stuck_2015_firms():
    """After a short run with platform capture: the horizon's record holds the persons of the
    platform suppliers and of the 2015 stage-1 firms still in stage 1 (not their entrants'),
    each a part of the employment only."""
    m = MittelbauModel(firms=400, seed=1, years=3, mech_platform_capture="on", capture_rate=0.5).run()
    s, jobs = m.state, m.economics.jobs
    rec = m.economics.region_records()[-1][0]
    c = column_names().index
    scale = m.population_scale
    stuck = (m.firm_id == m.start_firm) & (m.start_stage == 1) & (s.stage == 1)
    assert 0 < s.platform.sum() < len(s) and 0 < stuck.sum() < (s.stage == 1).sum()
    assert rec[c("employment_platform_suppliers")] == pytest.approx(scale * jobs[s.platform].sum())
    assert rec[c("employment_stuck_stage1")] == pytest.approx(scale * jobs[stuck].sum())
    assert rec[c("employment_platform_suppliers")] < rec[c("employment")]
    assert rec[c("employment_stuck_stage1")] < rec[c("employment")]


# ---- entrants ----------------------------------------------------------------------------------
def test_an_entrant_grows_linearly_to_its_full_size():
    """An entrant starts at `entrant_start_share` of its full size and grows by (1 − start) /
    `entrant_growth_years` a year: 0.4, 0.6, 0.8, then 1 for good; the 2015 firms stay at 1.
    Its persons and value added follow, and the growth is booked as entered."""
    table = firms(60, seed=8)
    p = make_params({"entrant_start_share": 0.4, "entrant_growth_years": 3})
    econ = Economics(table, p, 1.0, np.random.default_rng(9))
    rows = np.arange(5)
    entrants = firms(5, seed=10)
    table.replace_rows(rows, entrants)
    econ.enter(rows, entrants, np.random.default_rng(11))
    others = np.arange(5, 60)
    full_jobs, full_va = econ.employees[rows].copy(), econ.value_added[rows].copy()
    entered = [econ.entered_jobs]
    for share in (0.4, 0.6, 0.8, 1.0, 1.0):
        if share != 0.4:
            econ.grow()
            entered.append(econ.entered_jobs)
        np.testing.assert_allclose(econ.grown[rows], share)
        np.testing.assert_array_equal(econ.grown[others], 1.0)
        np.testing.assert_allclose(econ.jobs[rows], share * full_jobs)
        np.testing.assert_allclose(econ.gross_value_added()[rows], share * full_va)
    # booked as entered: 0.4 of the full size at entry, then 0.2 a year for three years
    np.testing.assert_allclose(np.diff(entered), full_jobs.sum() * np.array([0.2, 0.2, 0.2, 0.0]))
    assert entered[0] == pytest.approx(0.4 * full_jobs.sum())
    # the record's employment: the 2015 firms whole and the entrants at their full size by now
    econ.record(table, np.zeros(len(table), bool))
    total = column(econ.region_records()[-1], "employment")[0]
    assert total == pytest.approx(econ.employees.sum())


def test_an_entrant_grows_from_its_start_share_with_age():
    """Half size at entry over five years: 0.5, 0.6, …, 1.0, strictly rising until then."""
    table = firms(20, seed=12)
    p = make_params({"entrant_start_share": 0.5, "entrant_growth_years": 5})
    econ = Economics(table, p, 1.0, np.random.default_rng(13))
    econ.enter(np.array([3]), firms(1, seed=14), np.random.default_rng(15))
    shares = [econ.grown[3]]
    for _ in range(6):
        econ.grow()
        shares.append(econ.grown[3])
    np.testing.assert_allclose(shares, [0.5, 0.6, 0.7, 0.8, 0.9, 1.0, 1.0])


def test_without_growth_years_an_entrant_enters_at_full_size():
    table = firms(20, seed=12)
    p = make_params({"entrant_start_share": 0.5, "entrant_growth_years": 0})
    econ = Economics(table, p, 1.0, np.random.default_rng(13))
    econ.enter(np.array([3]), firms(1, seed=14), np.random.default_rng(15))
    assert econ.grown[3] == 1.0 and econ.jobs[3] == econ.employees[3]

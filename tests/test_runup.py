"""The run-up to the 2015 survey state: inversion, arrival at the EMP 2015 targets, no kink."""

import numpy as np
import pytest

from mittelbau.calibration.fit_initial_state import ATTRIBUTES, load_targets
from mittelbau.core.categories import SIZE_CLASSES
from mittelbau.core.mechanisms import NAMES
from mittelbau.core.model import MittelbauModel
from mittelbau.core.runup import solve_runup
from mittelbau.core.scenario import make_params

FIRMS, SEEDS = 20_000, range(5)


def stage_shares_of(q: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Stage shares of per-type (BM, DT) probabilities (types × 2 × 2) with type weights."""
    s = np.einsum("c,cbd->bd", weight, q) / weight.sum()
    return np.array([s[0, 0], s[0, 1] + s[1, 0], s[1, 1]])


@pytest.mark.parametrize("region", ["stuttgart", "germany"])
def test_inversion_reaches_the_2015_cross_section(region):
    """The mean-field run-up under the solved hazards ends at the fitted 2015 cross-section:
    within one point in every stage share of the region and in each type's BM share (types
    near 100 % BM reach it only up to their losses: 0.6 points at the calibrated loss rate), and
    within one point in the (BM, DT) states of most types."""
    r = solve_runup(region, make_params({"region": region}))
    end, target = r.expected[-1], r.target
    assert np.abs(stage_shares_of(end, r.weight) - stage_shares_of(target, r.weight)).max() < 0.01
    assert np.abs(end[:, 1].sum(axis=1) - target[:, 1].sum(axis=1)).max() < 0.01
    assert r.unreachable_share < 0.25 and r.max_error < 0.06, (r.unreachable_share, r.max_error)
    assert 10 < r.coupling < 100  # the 2015 within-type association, as a hazard ratio
    first = stage_shares_of(r.expected[0], r.weight)
    assert first[0] > stage_shares_of(target, r.weight)[0] + 0.25  # far fewer adopters in 2000


def test_inversion_follows_the_start_assumptions():
    """A later start of the DT wave needs faster DT adoption; a higher starting BM share slower
    BM adoption; the start state itself scales every type's odds."""
    base = solve_runup("stuttgart", make_params({}))
    late = solve_runup("stuttgart", make_params({"dt_wave_start_year": 2010}))
    high = solve_runup("stuttgart", make_params({"bm_start_odds": 0.5}))
    w = base.weight
    assert np.average(np.log(late.h_dt[:, 1] / base.h_dt[:, 1]), weights=w) > 0.2
    assert np.average(np.log(high.h_bm / base.h_bm), weights=w) < -0.2
    assert base.first_year == 2000 and len(base.expected) == 16


def test_runup_years_are_records_and_levers_wait_for_2016():
    """Records run from 2000; a programme starting in 2016 leaves the run-up untouched (common
    random numbers) and changes the years after it."""
    plain = MittelbauModel(firms=3000, seed=4, years=5).run()
    funded = MittelbauModel(firms=3000, seed=4, years=5, funding_budget_eur=3e6).run()
    ind = plain.datacollector.get_model_vars_dataframe()
    assert list(ind["year"]) == list(range(2000, 2021))
    a, b = np.stack(plain.stage_counts), np.stack(funded.stage_counts)
    assert np.array_equal(a[:16], b[:16]) and not np.array_equal(a[16:], b[16:])
    assert min(r[0] for r in funded.lever_records) == 2016


def test_mechanisms_wait_for_2016_and_the_verdicts_follow_the_2015_firms():
    """Every mechanism on leaves the run-up untouched (the 2015 state stays the survey's) and
    changes the years after it; the firms the verdict indicators follow are those of 2015."""
    on = {f"mech_{n}": "on" for n in NAMES}
    plain = MittelbauModel(firms=3000, seed=4, years=5).run()
    mech = MittelbauModel(firms=3000, seed=4, years=5, **on).run()
    a, b = np.stack(plain.stage_counts), np.stack(mech.stage_counts)
    assert np.array_equal(a[:16], b[:16]) and not np.array_equal(a[16:], b[16:])
    assert np.array_equal(np.bincount(mech.start_stage, minlength=4)[1:], b[15, 0])
    assert (mech.entry_year[mech.firm_id == mech.start_firm] <= 2015).all()
    assert (mech.start_firm != np.arange(3000)).any()  # rows changed hands in the run-up


@pytest.fixture(scope="module")
def runs():
    """Stage shares (seeds × years × groups × 3) of 2000–2035 at 20,000 firms, and one model,
    with the projection factors at 1: the run-up's pace goes on (the calibrated
    `bm_adoption_factor` breaks it in 2016 on purpose, docs/odd.md section 7.3)."""
    shares, model = [], None
    for seed in SEEDS:
        model = MittelbauModel(
            firms=FIRMS, seed=seed, years=20, bm_adoption_factor=1.0, dt_adoption_factor=1.0
        ).run()
        counts = np.stack(model.stage_counts)
        shares.append(counts / counts.sum(axis=2, keepdims=True))
    return np.array(shares), model


@pytest.mark.slow
def test_no_kink_at_2015(runs):
    """For all firms and every size class, each stage share changes from 2015 to 2016 by less
    than 1.5 points more or less than from 2014 to 2015 (mean of 5 seeds); without programmes
    no size class moves more than 5 points in a projected year."""
    shares, model = runs
    mean = shares.mean(axis=0)
    k = model.runup_years  # the 2015 row
    groups = 1 + len(SIZE_CLASSES)
    kink = (mean[k + 1] - mean[k]) - (mean[k] - mean[k - 1])
    assert np.abs(kink[:groups]).max() < 0.015, kink[:groups]
    moves = np.abs(np.diff(mean[k:, :groups], axis=0))
    assert moves.max() < 0.05, moves.max()


@pytest.mark.slow
def test_agents_follow_the_mean_field_run_up(runs):
    """The agents' run-up is the mean-field path it was solved on: all-firm stage shares within
    one point of it in every year 2000–2015."""
    shares, model = runs
    r = model.runup
    expected = np.array([stage_shares_of(q, r.weight) for q in r.expected])
    observed = shares.mean(axis=0)[: len(expected), 0]
    assert np.abs(observed - expected).max() < 0.01, np.abs(observed - expected).max()


def _stat(models, target: dict) -> float:
    values = []
    for m in models:
        t = m.state
        if target["group"] == "all":
            mask = np.ones(len(t), bool)
        else:
            attr, labels = target["group"].split(":", 1)
            mask = np.isin(getattr(t, attr), [ATTRIBUTES[attr].index(lab) for lab in labels.split("+")])
        x = {"stage_share": t.stage == target.get("stage"), "bm_share": t.bm, "dt_share": t.dt}
        values.append(x[target["statistic"]][mask].mean())
    return float(np.mean(values))


@pytest.fixture(scope="module")
def at_2015():
    return {
        region: [MittelbauModel(region=region, firms=FIRMS, seed=s, years=0) for s in (11, 12, 13)]
        for region in ("stuttgart", "germany")
    }


@pytest.mark.slow
@pytest.mark.parametrize(
    "target",
    load_targets(),
    ids=lambda t: f"{t['population']}-{t['statistic']}{t.get('stage', '')}-{t['group']}",
)
def test_runup_ends_at_every_2015_target(target, at_2015):
    """The EMP 2015 targets (Stuttgart 35/28/38 within 1.5 points, BM/DT shares, Germany's
    level and gradients) hold for the model's 2015 state, the end of its run-up (mean of three
    seeds at 20,000 firms)."""
    value = _stat(at_2015[target["population"]], target)
    assert abs(value - target["value"]) <= target["tolerance"], value


def reference_mean_field(q0, h_bm, h_dt, loss_bm, chan, dt_on, loss_dt):
    """The yearly update of `mean_field` written out year by year, every factor taken anew."""
    q = q0.copy()
    out = []
    for k in range(len(chan)):
        g_bm = -np.expm1(-h_bm * chan[k])
        g0, g1 = -np.expm1(-h_dt[:, 0]) * dt_on[k], -np.expm1(-h_dt[:, 1]) * dt_on[k]
        s_dt = np.where(dt_on[k] > 0, np.exp(-loss_dt), 1.0)
        q00, q01, q10, q11 = q[:, 0, 0], q[:, 0, 1], q[:, 1, 0], q[:, 1, 1]
        d0, d1 = q00 * g0 + q01 * s_dt, q10 * g1 + q11 * s_dt
        n0, n1 = q00 + q01 - d0, q10 + q11 - d1
        stay = np.exp(-loss_bm)
        new = np.empty_like(q)
        new[:, 1, 1] = d0 * g_bm + d1 * stay
        new[:, 1, 0] = n0 * g_bm + n1 * stay
        new[:, 0, 1] = d0 + d1 - new[:, 1, 1]
        new[:, 0, 0] = n0 + n1 - new[:, 1, 0]
        q = new
        out.append(q)
    return np.stack(out)


@pytest.mark.parametrize("per_type, loss_per_type", [(False, False), (False, True), (True, True)])
def test_mean_field_is_the_yearly_update_bit_for_bit(per_type, loss_per_type):
    """`mean_field` takes the factors that do not depend on the DT hazards once (`year_factors`)
    and advances with them: every year's state is the plain yearly update's, bit for bit, with
    one channel sum and wave switch per year or one per year and type, and one DT loss rate or
    one per type."""
    from mittelbau.core.runup import mean_field

    rng = np.random.default_rng(8)
    cells, years = 40, 12
    q0 = rng.dirichlet(np.ones(4), cells).reshape(cells, 2, 2)
    h_bm, h_dt = rng.uniform(0, 0.3, cells), rng.uniform(0, 0.4, (cells, 2))
    loss_bm = rng.uniform(0, 0.1, cells)
    if per_type:
        chan = rng.uniform(0.5, 1.5, (years, cells))
        dt_on = (np.arange(years)[:, None] >= rng.integers(0, years, cells)).astype(float)
    else:
        chan = rng.uniform(0.5, 1.5, years)
        dt_on = (np.arange(years) >= 4).astype(float)
    loss_dt = rng.uniform(0, 0.05, cells) if loss_per_type else 0.02
    got = mean_field(q0, h_bm, h_dt, loss_bm, chan, dt_on, loss_dt)
    expected = reference_mean_field(q0, h_bm, h_dt, loss_bm, chan, dt_on, loss_dt)
    assert got.tobytes() == expected.tobytes()
    last = mean_field(q0, h_bm, h_dt, loss_bm, chan, dt_on, loss_dt, every_year=False)
    assert last.shape == (1, cells, 2, 2) and last[0].tobytes() == expected[-1].tobytes()

"""The run-up to the 2015 survey state: inversion, arrival at the EMP 2015 targets, no kink."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from mittelbau.calibration.fit_initial_state import ATTRIBUTES, load_targets
from mittelbau.cli import app
from mittelbau.core import runup
from mittelbau.core.categories import SIZE_CLASSES, START_YEAR
from mittelbau.core.mechanisms import NAMES
from mittelbau.core.model import MittelbauModel
from mittelbau.core.parameters import BY_NAME, REGISTRY
from mittelbau.core.region_data import DATA_DIR
from mittelbau.core.runup import RUNUP_PARAMETERS, solve_runup
from mittelbau.core.scenario import Scenario, make_params
from mittelbau.experiments.runs import simulate_outcomes

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


def test_the_run_ups_miss_of_2015_grows_with_the_bm_loss_rate_and_is_reported(tmp_path):
    """Firms dropping a BM keep their DT, so the faster BMs are lost the further the run-up
    arrives from the cross-section's stage shares (too many firms with DT alone, in stage 2).
    The miss is each run's `runup_gap` outcome and summary entry, and a warning above 1.5
    points; experiments explore `bm_loss_rate` only where it stays near the tolerance."""

    gaps = []
    for rate in (0.0, 0.03, 0.06, 0.1, 0.2):
        r = solve_runup("stuttgart", make_params({"bm_loss_rate": rate}))
        got, want = stage_shares_of(r.expected[-1], r.weight), stage_shares_of(r.target, r.weight)
        assert r.stage_gap == pytest.approx(np.abs(got - want).max(), abs=1e-12)
        assert np.allclose(r.expected_stage_shares, got) and np.allclose(r.target_stage_shares, want)
        gaps.append(r.stage_gap)
    assert gaps == sorted(gaps) and gaps[0] < 0.002 and gaps[-1] > 0.08
    assert gaps[2] < 0.025  # the exploration range's top: about the tolerance
    assert BY_NAME["bm_loss_rate"].explore_high == 0.06 and BY_NAME["bm_loss_rate"].high == 0.2
    high = solve_runup("stuttgart", make_params({"bm_loss_rate": 0.2}))
    assert high.expected_stage_shares[1] > high.target_stage_shares[1] + 0.08  # stage 2
    assert high.bracketed_share > 0.5 > solve_runup("stuttgart", make_params({})).bracketed_share
    # reported: the summary, the outcome (also of a run keeping only its outcomes), a warning
    out = tmp_path / "high"
    res = CliRunner().invoke(
        app, ["run", "--set", "firms=300", "--set", "years=1", "--set", "bm_loss_rate=0.2", "--out", str(out)]
    )
    assert res.exit_code == 0
    assert "warning: the run-up's expected state arrives at 26.7 / 36.2 / 37.1 % in 2015" in res.output

    summary = json.loads((out / "summary.json").read_text())
    assert summary["runup"]["stage_share_gap"] == round(high.stage_gap, 6) == summary["outcomes"]["runup_gap"]

    lean = simulate_outcomes(
        Scenario("high", "", make_params({"firms": 300, "years": 1, "bm_loss_rate": 0.2}))
    )
    assert lean["runup_gap"] == summary["outcomes"]["runup_gap"]
    res = CliRunner().invoke(
        app, ["run", "--set", "firms=300", "--set", "years=1", "--out", str(tmp_path / "d")]
    )
    assert res.exit_code == 0 and "warning" not in res.output
    assert runup.miss_note([0.01, 0.015]) is None
    note = runup.miss_note([0.02, 0.031, 0.01, float("nan")])
    assert (
        note.startswith("2 of 3 runs start their projection more than 1.5 points") and "largest 3.1" in note
    )


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


def bisect(gap, shape: tuple[int, ...], steps: int) -> np.ndarray:
    """The inversion's first root finder: `steps` bisections of the log-hazards over the whole
    bracket LOG_H_RANGE."""
    lo, hi = np.full(shape, runup.LOG_H_RANGE[0]), np.full(shape, runup.LOG_H_RANGE[1])
    for _ in range(steps):
        mid = 0.5 * (lo + hi)
        above = gap(mid) > 0
        hi, lo = np.where(above, mid, hi), np.where(above, lo, mid)
    return 0.5 * (lo + hi)


def bisection_runup(region: str, p, steps: int = 32) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The hazards of the inversion as first written (32 bisections: BM, then DT rounds from the
    whole bracket until no log-hazard moves by 1e-3), from the plain mean-field run-up, and the
    2015 state they lead to."""
    p_bm, p_dt, c = runup.cross_section(region)
    n = len(p_bm)
    years = range(p.runup_start_year + 1, START_YEAR + 1)
    chan = np.array([runup.channel_sum(y, p) for y in years])
    dt_on = np.array([float(y >= p.dt_wave_start_year) for y in years])
    loss_bm = p.bm_loss_rate * np.where(c["service_strategy"], p.bm_loss_strategy_factor, 1.0)
    q0 = runup.start_state(p_bm, p_dt, p.bm_start_odds, p.dt_start_odds)

    def end(h_bm, h_dt):
        return runup.mean_field(q0, h_bm, h_dt, loss_bm, chan, dt_on, p.dt_loss_rate, every_year=False)[-1]

    no_dt = np.zeros((n, 2))
    h_bm = np.exp(bisect(lambda x: end(np.exp(x), no_dt)[:, 1].sum(axis=1) - p_bm, (n,), steps))
    h_dt = np.full((n, 2), 0.05)
    for _ in range(runup.ROUNDS):
        held = h_dt

        def gap(x, held=held):
            e0 = end(h_bm, np.column_stack([np.exp(x[:, 0]), held[:, 1]]))[:, 0]
            e1 = end(h_bm, np.column_stack([held[:, 0], np.exp(x[:, 1])]))[:, 1]
            return np.column_stack([e0[:, 1] / e0.sum(axis=1), e1[:, 1] / e1.sum(axis=1)]) - p_dt

        h_dt = np.exp(bisect(gap, (n, 2), steps))
        if np.abs(np.log(h_dt) - np.log(held)).max() < runup.TOLERANCE:
            break
    return h_bm, h_dt, end(h_bm, h_dt)


def random_runup_points(count: int, seed: int) -> list[dict]:
    """Run-up parameter values drawn uniformly over their registry ranges."""
    rng = np.random.default_rng(seed)
    entries = {e.name: e for e in REGISTRY}
    points = []
    for _ in range(count):
        point = {}
        for name in RUNUP_PARAMETERS:
            e = entries[name]
            x = rng.uniform(e.low, e.high)
            point[name] = round(x) if e.kind is int else float(x)
        points.append(point)
    return points


REGION_POINTS = [{"region": f.stem} for f in sorted((DATA_DIR / "regions").glob("*.toml"))]


@pytest.mark.parametrize("point", REGION_POINTS + random_runup_points(5, 3), ids=str)
def test_inversion_agrees_with_bisection(point):
    """The hazards of every type agree with those of bisection to 1e-7 relative with 52 steps
    (resolution 4e-15 in log-hazard). With the 32 steps the inversion first took (resolution
    4.7e-9) they agree as closely as those do with 52: a few DT hazards of types without a BM
    depend on the other DT hazard a hundredfold, so the 32 steps' own error moves them by up to
    about 2e-6. Types whose target the dynamics cannot reach keep the bracket's end, and the
    unreachable share and largest error are those of bisection."""
    p = make_params(point)
    r = runup._solve(p.region, [runup.runup_key(p.region, p)[1]])[0]
    *fine, _ = bisection_runup(p.region, p, 52)
    *first, end = bisection_runup(p.region, p, 32)
    for new, ref, old in zip((r.h_bm, r.h_dt), fine, first, strict=True):
        assert np.abs(new / ref - 1).max() < 1e-7, np.abs(new / ref - 1).max()
        assert (np.abs(new / old - 1) <= np.abs(old / ref - 1) + 1e-7).all()
        at_end = np.abs(np.log(old)[..., None] - np.array(runup.LOG_H_RANGE)).min(axis=-1) < 1e-8
        assert np.isin(np.log(new)[at_end], runup.LOG_H_RANGE).all()
    gap = np.abs(end - r.target).max(axis=(1, 2))
    assert r.unreachable_share == pytest.approx(float(r.weight[gap > 0.01].sum()), abs=1e-12)
    assert r.max_error == pytest.approx(float(gap.max()), abs=1e-9)
    assert len(REGION_POINTS) >= 5 and 0 < r.unreachable_share < 1


def test_root_finder_rows_are_independent():
    """The root finder on increasing functions of known crossings: each row's crossing to within
    the tolerance, the bracket's end where there is none, and bit for bit the same whether a
    row is solved with all others, with half of them, alone, or warm-started near its root."""
    rng = np.random.default_rng(5)
    n = 400
    root = rng.uniform(-12, 2, n)
    root[:10] = [-20, -18, 6, 9, -16, 4, -30, 30, -17, 5]  # outside the range, or at its ends
    steep, level = rng.uniform(0.3, 3, n), rng.uniform(0.2, 0.9, n)

    def gap_of(rows_all):
        def gather(rows):
            return root[rows_all][rows], steep[rows_all][rows], level[rows_all][rows]

        def evaluate(x, data):
            r, s, lv = data
            return lv * np.tanh(s * (x - r)) + 0.1 * (np.exp(x - r) - 1) / (np.exp(x - r) + 1)

        return runup._gap(gather, evaluate, len(rows_all))

    everything = runup._crossings(gap_of(np.arange(n)), n, np.full(n, 10.0))
    inside = (root > -16) & (root < 4)
    assert np.abs(everything - root)[inside].max() < runup.X_TOLERANCE
    assert (everything[~inside] == np.clip(root[~inside], *runup.LOG_H_RANGE)).all()
    half = np.arange(0, n, 2)
    alone = [runup._crossings(gap_of(np.array([i])), 1, np.full(1, 10.0))[0] for i in range(0, n, 37)]
    assert (
        runup._crossings(gap_of(half), len(half), np.full(len(half), 10.0)).tobytes()
        == everything[half].tobytes()
    )
    assert np.array(alone).tobytes() == everything[::37].tobytes()
    warm = runup._crossings(gap_of(np.arange(n)), n, np.full(n, 10.0), everything + 1e-3, np.full(n, 0.01))
    assert np.abs(warm - everything).max() < runup.X_TOLERANCE


def test_a_search_predicted_past_the_range_stays_within_it():
    """At this point of a Sobol design (the run-up parameters of one of 4,096 points) a later
    round's predicted log-hazard (`runup._near`: a tiny move divided by another) lay far past
    the searched range; the bracket is clipped to the range, so no hazard overflows and the
    solution stays in it."""
    params = make_params(
        {
            "bm_start_odds": 0.49384218571707605,
            "dt_start_odds": 0.2835344333201647,
            "bm_loss_rate": 0.17919540144503118,
            "bm_loss_strategy_factor": 0.5181504283100367,
            "dt_loss_rate": 0.04692271128296852,
            "bm_weight_peers": 0.3435735942050815,
            "bm_weight_customers": 0.22660367842763662,
            "bm_weight_competition": 0.2617567988857627,
            "digital_pressure_growth": 0.15654971078038216,
        }
    )
    runup.clear_cache()
    with np.errstate(over="raise"):
        found = solve_runup(params.region, params)
    runup.clear_cache()
    low, high = runup.LOG_H_RANGE
    x = np.log(found.h_dt)
    assert np.isfinite(x).all() and (x >= low).all() and (x <= high).all()

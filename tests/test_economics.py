"""Firm economics: service revenue against the surveys, the accounting identity, region scale,
and what programmes keep in € and jobs."""

import numpy as np
import pandas as pd
import pytest

from mittelbau.core.economics import SIZE_BOUNDS, column_names, draw_employees
from mittelbau.core.model import MittelbauModel
from mittelbau.core.region_data import raw_sample_size
from mittelbau.core.scenario import Scenario, make_params
from mittelbau.experiments import stakes
from mittelbau.experiments.outputs import collect, upward_moves
from mittelbau.levers import without_levers

CAPTURE = dict(mech_platform_capture="on", mech_service_neglect="on", capture_rate=0.3)


@pytest.mark.parametrize(("region", "survey"), [("stuttgart", 0.10), ("germany", 0.11)])
def test_2015_service_revenue_share_within_the_surveys_sampling_error(region, survey):
    """sources §2.12: mean over firms; the standard error is the firms' spread over √ sample."""
    m = MittelbauModel(region=region, firms=20_000, years=0, seed=5)
    share = m.state.service_revenue
    se = share.std() / np.sqrt(raw_sample_size(region))
    assert abs(m.economics.service_share_mean[0] - survey) < 2 * se
    assert stakes.headline(m)["service_revenue_share_mean"] == pytest.approx(share.mean(), abs=1e-6)
    # sources §4.8: about two thirds earn 75–100 % with the main BM and 6 % earn more than half
    # elsewhere, so service revenue above half of revenue must be rarer than that
    assert (share > 0.5).mean() < 0.06 and (share > 0.25).mean() < 1 / 3


def test_employees_lie_in_their_size_class_and_crowd_its_lower_bound():
    rng = np.random.default_rng(1)
    size = rng.integers(0, 4, 50_000)
    e = draw_employees(size, 1.0, rng)
    assert np.all(e >= SIZE_BOUNDS[size, 0]) and np.all(e <= SIZE_BOUNDS[size, 1])
    small = e[size == 0]
    assert np.median(small) < 35  # Pareto 1 on 20–49: median 20·50/35 ≈ 28.6, not the midpoint
    flat = draw_employees(size, 0.0, rng)[size == 0]
    assert np.median(small) < np.median(flat) < 35


@pytest.mark.parametrize("extra", [{}, CAPTURE])
def test_value_added_and_jobs_are_conserved_every_year(extra):
    """In firms + captured by platforms + lost through exits not replaced = the first table's
    total, every year; the last term comes from the flows of exits, entries and growth."""
    m = MittelbauModel(firms=3000, years=20, seed=2, **extra).run()
    rec = m.economics.region_records()[:, 0]
    c = column_names().index
    reference = rec[0, c("value_added_eur")]
    total = rec[:, c("value_added_eur")] + rec[:, c("value_added_captured_eur")]
    total = total + rec[:, c("value_added_lost_exits_eur")]
    np.testing.assert_allclose(total, reference, rtol=1e-9)
    np.testing.assert_allclose(rec[:, c("value_added_reference_eur")], reference)
    jobs = rec[:, c("employment")] + rec[:, c("employment_lost_exits")]
    np.testing.assert_allclose(jobs, rec[0, c("employment")], rtol=1e-9)
    assert rec[1:, c("exits")].sum() > 0 and rec[-1, c("value_added_lost_exits_eur")] != 0
    if extra:
        assert rec[-1, c("value_added_captured_eur")] > 0
    # the region's totals: agents × population_scale firms in every year
    assert np.allclose(rec[:, c("firms")], m.params.region_firms)
    # the run's summary: the same terms at the horizon and the exits cumulated from 2016
    head = stakes.headline(m)
    assert head["at_horizon"]["firms"] == pytest.approx(rec[-1, c("firms")])
    assert head["exits"] == pytest.approx(rec[1:, c("exits")].sum())
    assert head["employment_lost_exits"] == pytest.approx(rec[-1, c("employment_lost_exits")], abs=0.01)
    assert head["value_added_reference_eur"] == pytest.approx(reference)


def test_groups_add_up_to_all():
    m = MittelbauModel(firms=2000, years=5, seed=3, **CAPTURE).run()
    table = stakes.economics_table(m)
    last = table[table["year"] == table["year"].max()].set_index("group")
    for prefix in ("size:", "industry:", "stage:"):
        part = last[last.index.str.startswith(prefix)]
        for key in ("value_added_eur", "employment", "employment_exited", "service_revenue_eur"):
            assert part[key].sum() == pytest.approx(last.loc["all", key])


def paired(seed: int, **kw):
    p = make_params({"years": 10, "seed": seed, **kw})
    return MittelbauModel(p).run(), MittelbauModel(without_levers(p)).run()


def test_value_kept_is_undefined_not_zero_when_nothing_is_kept():
    """Without exits (and no capture) the firms, their jobs and value added are the same with
    and without the programme: nothing is kept, so € per € kept is undefined."""
    m, base = paired(1, firms=2000, funding_budget_eur=2e6, exit_rate=0.0, pressure_exit_factor=0.0)
    out = stakes.kept(m, base)
    assert out["value_added_kept_eur"] == 0 and out["jobs_kept"] == 0
    assert out["eur_per_value_added_kept"] is None and out["eur_per_job_kept"] is None
    summary = collect(m, Scenario("s", "", make_params({})), base, {"funding": m}).summary
    assert summary["policy"]["eur_per_value_added_kept"] is None
    assert summary["levers"]["funding"]["eur_per_job_kept"] is None


def test_value_kept_is_the_discounted_difference_and_its_price():
    """A strong platform capture and a programme for stage-1 firms (at a seed where the kept
    value is positive: single runs are noisy, since entrants differ once exits do)."""
    strong = dict(
        mech_platform_capture="on",
        capture_rate=0.5,
        platform_margin_loss=0.8,
        capture_exit_factor=5.0,
        pressure_exit_factor=3.0,
    )
    m, base = paired(6, firms=3000, funding_budget_eur=1e7, funding_target="stage1", **strong)
    out = stakes.kept(m, base)
    c = column_names().index
    mine, theirs = m.economics.region_records()[:, 0], base.economics.region_records()[:, 0]
    d = 1.03 ** -np.arange(len(mine))
    va = (d * (mine[:, c("value_added_eur")] - theirs[:, c("value_added_eur")])).sum()
    assert out["value_added_kept_eur"] == pytest.approx(va, abs=0.01)
    assert va > 0 and out["jobs_kept"] > 0
    spent, first = np.zeros(len(mine)), stakes.years_of(m)[0]
    for year, _, eur, *_ in m.lever_records:
        spent[year - first] += eur
    assert out["eur_per_value_added_kept"] == pytest.approx((d * spent).sum() / va, rel=1e-5)
    assert out["eur_per_job_kept"] == pytest.approx(spent.sum() / out["jobs_kept"], rel=1e-5)


@pytest.mark.slow
def test_doubling_agents_with_the_same_budget_gives_the_same_region_outcomes():
    """3,000 firms of the region as 1,500 or 3,000 agents, the same €3 M a year: the firms the
    programme funds, its additional upward moves and the stage shares, all in the region's
    terms, agree within sampling error."""
    out = {}
    for firms in (1500, 3000):
        reached, extra, stage1 = [], [], []
        for seed in range(8):
            m, base = paired(seed, firms=firms, region_firms=3000, funding_budget_eur=3e6)
            s = m.population_scale
            reached.append(int(m.levers[0].reach.reached_by.sum()) * s)
            extra.append((upward_moves(m) - upward_moves(base)) * s)
            stage1.append(m.shares[0] - base.shares[0])
        out[firms] = np.array([reached, extra, stage1])
    small, large = out[1500], out[3000]
    se = np.sqrt(small.var(axis=1, ddof=1) / 8 + large.var(axis=1, ddof=1) / 8)
    diff = small.mean(axis=1) - large.mean(axis=1)
    assert np.all(np.abs(diff) < 3 * se + 1e-12), (diff, se)
    # the budget funds the same number of the region's firms (not the same number of agents)
    assert small[0].mean() == pytest.approx(large[0].mean(), rel=0.05)


def test_price_of_what_is_kept_is_undefined_where_nothing_is_kept():
    assert stakes.price(100.0, (0.0, -5.0, 5.0)) == (None, 20.0, None)
    assert stakes.price(100.0, (-1.0, -5.0, -0.5)) == (None, None, None)
    assert stakes.price(100.0, (4.0, 2.0, 5.0)) == (25.0, 20.0, 50.0)
    # nothing spent: the price is 0, bounds included, even where the interval reaches zero
    assert stakes.price(0.0, (4.0, -1.0, 5.0)) == (0.0, 0.0, 0.0)
    assert stakes.price(0.0, (-1.0, -2.0, 5.0)) == (None, 0.0, None)  # nothing kept on average
    # the report's cell, as the levers table says it
    cell = {"p": 1.5, "p_low": 0.7, "p_high": None, "k_low": -1.0}
    assert stakes._price_cell(pd.Series(cell), "p", "{:.2f}", "k") == "1.50 [0.70–unbounded]"
    assert stakes._price_cell(pd.Series(cell | {"p": None}), "p", "{:.2f}", "k").startswith("undefined")
    # the amount kept has no interval (one run): nor has its price
    one = cell | {"p_high": None, "p_low": None, "k_low": float("nan")}
    assert (
        stakes._price_cell(pd.Series(one), "p", "{:.2f}", "k")
        == "1.50 (no interval from fewer than two independent runs)"
    )


def test_dashboard_shows_value_added_at_stake_by_stage():
    from mittelbau.dashboard.paired import PairedModel
    from mittelbau.dashboard.stakes import stakes_figure

    m = PairedModel(firms=1000, years=5, seed=2, **CAPTURE)
    for _ in range(3):
        m.step()
    fig = stakes_figure(m)
    layers = fig.axes[0].collections[:5]
    table = stakes.economics_table(m)
    whole = table[table["group"] == "all"]
    # the stacked layers reach the first table's value added (in firms + captured + lost)
    top = layers[-1].get_paths()[0].vertices[:, 1].max()
    assert top == pytest.approx(whole["value_added_reference_eur"].iloc[0] / 1e9, rel=1e-6)
    stage1 = table[table["group"] == "stage:1"]["value_added_eur"].to_numpy() / 1e9
    heights = layers[0].get_paths()[0].vertices[:, 1]
    assert heights.max() == pytest.approx(stage1.max(), rel=1e-9)


def test_report_shows_what_is_at_stake_and_what_is_kept(tmp_path):
    from mittelbau.experiments.ensemble import load_ensemble, run_ensemble
    from mittelbau.experiments.report import write_report

    small = {"firms": 600, "years": 4, "seed": 11}
    centres = small | {"centres_number": 2}
    scenarios = [
        Scenario("baseline", "", make_params(small), overrides=small),
        Scenario("centres", "", make_params(centres), overrides=centres),
    ]
    run_ensemble(scenarios, 3, tmp_path)
    ens = load_ensemble(tmp_path)
    assert set(ens["economics"]["scenario"]) == {"baseline", "centres"}
    table = stakes.stakes_table(ens).set_index(["scenario", "outcome"])
    horizon = [
        r["summary"]["economics"]["at_horizon"]["value_added_eur"]
        for r in ens["summaries"]
        if r["scenario"] == "baseline"
    ]
    assert table.loc[("baseline", "value_added_eur"), "median"] == pytest.approx(np.median(horizon))
    kept = stakes.kept_table(ens).set_index("lever")
    assert kept.loc["programme", "runs"] == 3
    text = write_report(tmp_path).read_text()
    assert "## What is at stake" in text and (tmp_path / "stakes.png").exists()
    row = next(line for line in text.splitlines() if line.startswith("| centres | programme |"))
    va, price = kept.loc["programme", ["value_added_kept_eur", "eur_per_value_added_kept"]]
    assert row.startswith(f"| centres | programme | {va * 1e-6:,.1f} [")  # the mean, its interval
    cell = row.split(" | ")[3]  # € per € kept: a price where something is kept, else undefined
    assert cell.startswith(f"{price:,.2f} [") if va > 0 else cell.startswith("undefined")


@pytest.mark.parametrize("region", ["stuttgart", "nord", "muenchen", "rhein-ruhr", "germany"])
def test_population_scale_comes_from_the_region_file(region):
    """Each region file states its firm count within its range and with its reason; the model
    divides it by the agents, and an explicit region_firms overrides it."""
    import tomllib

    from mittelbau.core.region_data import DATA_DIR

    data = tomllib.loads((DATA_DIR / "regions" / f"{region}.toml").read_text("utf-8"))["population"]
    assert data["low"] <= data["firms"] <= data["high"] and data["source"] == "assumption"
    assert len(data["assumption"]) > 40
    m = MittelbauModel(region=region, firms=500, years=0)
    assert m.population_scale == data["firms"] / 500
    assert MittelbauModel(region=region, firms=500, years=0, region_firms=1000).population_scale == 2.0


def test_the_accounting_starts_with_the_2015_state():
    """economics.csv covers 2015 to the horizon, the years of indicators.csv from 2015 on; its
    first value added is that of the 2015 firms."""
    m = MittelbauModel(firms=2000, seed=2, years=4).run()
    years = m.datacollector.get_model_vars_dataframe()["year"]
    table = stakes.economics_table(m)
    assert sorted(table["year"].unique()) == [y for y in years if y >= 2015] == list(range(2015, 2020))
    first = table[(table["year"] == 2015) & (table["group"] == "all")].iloc[0]
    assert first["value_added_reference_eur"] == pytest.approx(first["value_added_eur"])
    assert first["exits"] == 0 and first["value_added_lost_exits_eur"] == 0

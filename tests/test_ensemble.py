"""Ensembles: same results whatever the executor, nothing lost, failures reported, report."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
from conftest import footprint, left_behind

from mittelbau.core.scenario import load_scenario
from mittelbau.experiments.ensemble import EnsembleError, load_ensemble, replicate_seeds, run_ensemble
from mittelbau.experiments.executors import ExecutionError
from mittelbau.experiments.intervals import band, mean_interval, wilson_interval
from mittelbau.experiments.report import lever_table, paired_differences, write_report
from mittelbau.experiments.store import FolderError

TABLES = ("stage_shares", "transitions", "indicators", "levers", "economics", "runs")


@pytest.fixture(scope="module")
def scenarios(root):
    small = ["firms=800", "years=5"]
    return [
        load_scenario(root / "scenarios" / "baseline.toml", small),
        load_scenario(root / "scenarios" / "policy-mix.toml", small),
    ]


def same_tables(a, b) -> bool:
    """Every table and every run's summary."""
    return all(a[t].equals(b[t]) for t in TABLES) and a["summaries"] == b["summaries"]


def test_replicate_seeds_are_spawned_and_stable():
    seeds = replicate_seeds(7, 5)
    assert seeds[:3] == replicate_seeds(7, 3) and len(set(seeds)) == 5
    assert seeds != replicate_seeds(8, 5)


@pytest.mark.slow
def test_one_worker_two_processes_and_dask_give_identical_tables(tmp_path, scenarios):
    runs = {}
    for executor, workers in (("local", 1), ("local", 2), ("dask", 2)):
        out = tmp_path / f"{executor}-{workers}"
        before = footprint()
        counts = run_ensemble(scenarios, 3, out, executor=executor, workers=workers)
        assert not left_behind(before), executor  # the Dask cluster's servers and workers end with it
        assert counts == {"planned": 6, "skipped": 0, "ran": 6, "failed": 0, "recomputed": 0}
        runs[(executor, workers)] = load_ensemble(out)
    first = runs[("local", 1)]
    assert len(first["indicators"]["replicate"].unique()) == 3
    assert not first["levers"].empty and set(first["levers"]["scenario"]) == {"policy-mix"}
    for key, other in runs.items():
        assert same_tables(first, other), key


def test_a_report_of_scenarios_at_the_2015_state_only_compares_them(tmp_path, root):
    """At a horizon of 2015 there are no moves after it: every pair differs by zero, none is
    missing."""
    scens = [
        load_scenario(root / "scenarios" / f"{n}.toml", ["firms=300", "years=0"])
        for n in ("baseline", "funding")
    ]
    run_ensemble(scens, 2, tmp_path)
    diffs = paired_differences(load_ensemble(tmp_path))
    assert diffs["pairs"].tolist() == [2] and diffs["upward_moves"].tolist() == [0.0]
    assert (
        "| funding | 2 | yes | +0.00 [+0.00, +0.00] | +0.0 [+0.0, +0.0] |"
        in write_report(tmp_path).read_text()
    )


def test_rerun_resumes_with_exactly_the_missing_runs(tmp_path, scenarios):
    full = tmp_path / "full"
    run_ensemble(scenarios, 4, full)
    part = tmp_path / "part"
    run_ensemble(scenarios, 4, part)
    for rep in ("rep-0001", "rep-0003"):  # as if these had not finished
        import shutil

        shutil.rmtree(part / "runs" / "baseline" / rep)
    (part / "runs" / "baseline" / ".rep-0003.tmp-123").mkdir()  # a write cut off half-way
    counts = run_ensemble(scenarios, 4, part, workers=2)
    assert counts == {"planned": 8, "skipped": 6, "ran": 2, "failed": 0, "recomputed": 0}
    assert not list((part / "runs").glob("*/.rep-*"))
    assert same_tables(load_ensemble(full), load_ensemble(part))
    # more replications extend the ensemble; the first four are kept
    counts = run_ensemble(scenarios, 5, part)
    assert counts["skipped"] == 8 and counts["ran"] == 2


@pytest.mark.slow
def test_killed_ensemble_restarts_and_completes(tmp_path, root):
    args = [
        sys.executable,
        "-m",
        "mittelbau.cli",
        "run",
        str(root / "scenarios" / "baseline.toml"),
        "--set",
        "firms=1500",
        "--set",
        "years=10",
        "--replications",
        "24",
        "--workers",
        "1",
        "--quiet",
    ]
    out = tmp_path / "killed"
    proc = subprocess.Popen([*args, "--out", str(out)], start_new_session=True)
    deadline = time.time() + 120
    while len(list(out.glob("runs/*/rep-*/summary.json"))) < 4 and time.time() < deadline:
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    done = len(list(out.glob("runs/*/rep-*/summary.json")))
    assert 4 <= done < 24
    res = subprocess.run([*args[:-1], "--out", str(out)], capture_output=True, text=True, check=True)
    assert f"{24 - done} runs done, {done} already in" in res.stdout
    clean = tmp_path / "clean"
    subprocess.run([*args, "--out", str(clean)], check=True)
    assert same_tables(load_ensemble(out), load_ensemble(clean))


FLAKY = """
import sys
import mittelbau.experiments.ensemble as ens
from mittelbau.experiments.ensemble import EnsembleError, replicate_seeds, run_ensemble
from mittelbau.core.scenario import load_scenario

root, out, workers = sys.argv[1], sys.argv[2], int(sys.argv[3])
scens = [load_scenario(f"{root}/scenarios/{n}.toml", ["firms=800", "years=5"])
         for n in ("baseline", "policy-mix")]
bad = replicate_seeds(scens[0].params.seed, 3)[1]
real = ens.simulate

def flaky(scenario, on_year=None):
    if scenario.params.seed == bad and scenario.name == "baseline":
        raise RuntimeError("worker lost its mind")
    return real(scenario, on_year)

real_batch = ens.simulate_batch

def flaky_batch(scenarios, *args):
    if any(s.params.seed == bad and s.name == "baseline" for s in scenarios):
        raise RuntimeError("worker lost its mind")
    return real_batch(scenarios, *args)

ens.simulate = flaky
ens.simulate_batch = flaky_batch
try:
    run_ensemble(scens, 3, out, workers=workers)
except EnsembleError as exc:
    print(exc)
print("BAD", bad)
"""


def test_work_a_dead_worker_took_is_said_once_and_other_failures_are_listed():
    from concurrent.futures.process import BrokenProcessPool

    from mittelbau.experiments.executors import failure_report

    dead = BrokenProcessPool("A process in the process pool was terminated abruptly")
    failures = [(f"run {k}", dead) for k in range(12)] + [("run 12", ValueError("no such thing"))]
    message = failure_report(failures, 40, "runs", "rerun the same command to retry them")
    head, *rest = message.splitlines()
    assert head == (
        "12 of 40 runs were not run: a worker process ended abruptly (killed, or out of memory?); "
        "1 of 40 runs failed (the others are kept; rerun the same command to retry them):"
    )
    assert rest == ["  run 12: ValueError: no such thing"]
    only_dead = failure_report(failures[:3], 5, "batches", "rerun to retry them")
    assert "\n" not in only_dead and only_dead.endswith("(the others are kept; rerun to retry them)")


@pytest.mark.parametrize("workers", [1, 2])
def test_a_failing_run_is_reported_and_the_others_are_kept(tmp_path, scenarios, root, workers):
    """Run in a fresh process, so that the two workers are forked with the failure in place."""
    out = tmp_path / "flaky"
    res = subprocess.run(
        [sys.executable, "-c", FLAKY, str(root), str(out), str(workers)],
        capture_output=True,
        text=True,
        check=True,
    )
    message, bad_seed = res.stdout, res.stdout.split("BAD ")[1].strip()
    assert "1 of 6 runs failed" in message and f"seed {bad_seed}" in message
    assert "'baseline', replicate 1" in message and "worker lost its mind" in message
    assert len(list(out.glob("runs/*/rep-*/summary.json"))) == 5
    assert run_ensemble(scenarios, 3, out)["ran"] == 1  # a rerun retries only the failed run


def test_a_folder_holds_one_ensemble(tmp_path, scenarios, root):
    out = tmp_path / "e"
    run_ensemble(scenarios[:1], 2, out)
    other = load_scenario(root / "scenarios" / "baseline.toml", ["firms=900", "years=5"])
    with pytest.raises(FolderError, match=r"other parameters \(firms 800 there, 900 asked\)"):
        run_ensemble([other], 2, out)
    with pytest.raises(EnsembleError, match="names must differ"):
        run_ensemble([scenarios[0], scenarios[0]], 2, tmp_path / "f")
    with pytest.raises(ExecutionError, match=r"--scheduler goes with"):
        run_ensemble(scenarios, 2, tmp_path / "g", scheduler="tcp://127.0.0.1:1")


def test_report_is_written_with_figures_and_verdicts(tmp_path, scenarios):
    out = tmp_path / "r"
    run_ensemble(scenarios, 3, out)
    text = write_report(out).read_text()
    for name in ("fan_stage_shares.png", "middle_and_hollowing.png", "size_classes_at_horizon.png"):
        assert (out / name).read_bytes()[:4] == b"\x89PNG" and name in text
    assert "**baseline**" in text and "**policy-mix**" in text and "| policy-mix | funding |" in text
    assert "Differences from 'baseline'" in text


def test_a_middle_hollow_for_a_while_is_said_apart_from_one_hollow_at_the_horizon(tmp_path, root):
    """München's middle dips below a threshold of 1 in 2016–2017 and recovers: the verdict
    counts the runs hollowed in some year and says how many still are at the horizon."""
    from mittelbau.experiments.report import verdict_sentence, verdicts

    muenchen = ["firms=800", "years=6", "region=muenchen", "hollowing_threshold=1.0"]
    run_ensemble([load_scenario(root / "scenarios" / "baseline.toml", muenchen)], 4, tmp_path)
    ens = load_ensemble(tmp_path)
    row = verdicts(ens).iloc[0]
    ind = ens["indicators"]
    end = ind[ind["year"] == ind["year"].max()]
    assert row.p_hollowed_end == end["hollowed"].astype(bool).mean() < row.p_hollowed
    said = verdict_sentence(row)
    assert f"in {row.p_hollowed:.0%} of 4 runs" in said
    assert said.endswith(f"still hollowed out in 2021 in {row.p_hollowed_end:.0%} of the runs.")
    for r in ens["summaries"]:  # each run's own sentence says it recovered
        h = r["summary"]["headline"]
        if h["year_hollowed"] is not None and not r["summary"]["outcomes"]["hollowing_ratio"] < 1.0:
            assert "but is no longer hollowed out in 2021" in h["verdict"] or (
                h["year_hollowed"] == 2015 and "but is not in 2021" in h["verdict"]
            )


def test_a_report_of_one_run_per_scenario_says_it_has_no_interval(tmp_path, scenarios):
    import re

    run_ensemble(scenarios, 1, tmp_path)
    text = write_report(tmp_path).read_text()
    assert not re.search(r"\bnan\b", text, re.IGNORECASE)
    diff = next(line for line in text.splitlines() if line.startswith("| policy-mix | 1 |"))
    assert diff.count("(no interval from fewer than two independent runs)") == 2
    lever = next(line for line in text.splitlines() if line.startswith("| policy-mix | funding |"))
    assert "(no interval from fewer than two independent runs)" in lever or "undefined" in lever
    assert "unbounded" not in lever


def test_the_price_of_a_move_counts_runs_that_bought_none_as_unbounded(tmp_path, root):
    """A run whose programme bought no additional move has no finite price: the outcomes
    table's median and band count it as infinite (as discovery does), not leave it out, which
    would make the price look cheaper."""
    from mittelbau.experiments.report import outcome_table

    short = ["firms=600", "years=3", "funding_end_year=2017"]
    run_ensemble([load_scenario(root / "scenarios" / "equal-budget" / "funding.toml", short)], 8, tmp_path)
    ens = load_ensemble(tmp_path)
    prices = [r["summary"]["outcomes"]["cost_per_additional_upward_move"] for r in ens["summaries"]]
    none = sum(p is None for p in prices)
    assert 0 < none < len(prices)  # the case: some runs bought no move
    x = np.array([np.inf if p is None else p for p in prices])
    row = next(line for line in outcome_table(ens) if "`cost_per_additional_upward_move`" in line)
    # percentiles with the infinite prices above every finite one (any stand-in does)
    big = np.where(np.isinf(x), 1e15, x)
    median, low = (v if v <= x[np.isfinite(x)].max() else np.inf for v in np.percentile(big, [50, 5]))
    said = "unbounded" if median == np.inf else f"{median:,.0f}"
    assert f"| {said} [{low:,.0f}–unbounded] ({none} of 8 runs: no additional move" in row
    assert median > np.median(x[np.isfinite(x)])  # leaving them out gave the lower price


def test_a_band_of_prices_some_unbounded_interpolates_towards_them_only():
    """numpy's percentile gives NaN at a rank on a finite value whose neighbour is infinite:
    the band says the value there, and unbounded only where it interpolates towards inf."""
    from mittelbau.experiments.intervals import band_of_unbounded

    inf = np.inf
    assert band_of_unbounded([300_000, 150_000, inf]) == (300_000, 165_000, inf)
    assert band_of_unbounded([5e3, 6e3, 7e3, inf, inf])[0] == 7e3
    assert band_of_unbounded([inf, inf]) == (inf, inf, inf)
    assert band_of_unbounded([1.0, 2.0, 3.0]) == pytest.approx(band(np.array([1.0, 2.0, 3.0])))


def test_a_report_on_an_unfinished_ensemble_says_so_or_refuses(tmp_path, scenarios):
    import shutil

    out = tmp_path / "u"
    run_ensemble(scenarios, 3, out)
    shutil.rmtree(out / "runs" / "baseline" / "rep-0002")  # as if interrupted
    notes = []
    text = write_report(out, on_note=notes.append).read_text()
    assert "**Incomplete:** 5 of 6 runs of the design have finished (baseline 2 of 3)" in text
    assert notes == [text.splitlines()[2].replace("**", "")]
    assert "**baseline**: " in text and "of 2 runs" in text
    for rep in ("rep-0000", "rep-0001"):
        shutil.rmtree(out / "runs" / "baseline" / rep)
    (out / "report.md").unlink()
    with pytest.raises(EnsembleError, match=r"has no finished runs of baseline to report on"):
        write_report(out)
    assert not (out / "report.md").exists()
    # a complete ensemble: no note
    run_ensemble(scenarios, 3, out)
    notes.clear()
    assert "Incomplete" not in write_report(out, on_note=notes.append).read_text() and not notes


def test_verdict_sentences_give_the_median_year_as_a_year():
    from mittelbau.experiments.report import verdict_sentence

    table = pd.DataFrame(
        {
            "scenario": ["a", "b"],
            "runs": [10, 10],
            "design_effect": [1.0, 1.0],
            "horizon": [2035, 2035],
            "p_hollowed": [0.0, 0.3],
            "p_low": [0.0, 0.1],
            "p_high": [0.28, 0.6],
            "median_year": [None, 2031],
        }
    )  # pandas makes the mixed column float with NaN, as the report's table is
    a, b = (verdict_sentence(r, posterior=True) for r in table.itertuples())
    assert a.endswith("design effect 1.00).") and "nan" not in a
    assert b.endswith("median year 2031.")
    assert verdict_sentence(next(table.iloc[1:].itertuples())).endswith("median year 2031.")


# ---- intervals: do they contain the truth in constructed cases of known distribution -------
def test_mean_and_wilson_intervals_cover_at_their_level():
    rng = np.random.default_rng(0)
    trials = 2000
    hit_mean = sum(
        lo <= 0.3 <= hi for _, lo, hi in (mean_interval(rng.normal(0.3, 0.05, 20)) for _ in range(trials))
    )
    hit_share = sum(
        lo <= 0.2 <= hi
        for _, lo, hi in (wilson_interval(int(rng.binomial(40, 0.2)), 40) for _ in range(trials))
    )
    # 90 % intervals: coverage within ±3 binomial standard errors of 0.90
    tol = 3 * np.sqrt(0.9 * 0.1 / trials)
    assert abs(hit_mean / trials - 0.90) < tol
    assert abs(hit_share / trials - 0.90) < tol + 0.02  # Wilson is slightly conservative
    med, lo, hi = band(rng.normal(0, 1, 100_000))
    assert abs(lo + 1.645) < 0.03 and abs(hi - 1.645) < 0.03 and abs(med) < 0.02


def test_paired_difference_interval_contains_a_known_effect():
    """Two scenarios whose end stage-2 shares differ by exactly 1.5 pp plus noise shared per
    replicate: the paired interval contains 1.5 pp and is far narrower than the noise."""
    rng = np.random.default_rng(1)
    n = 30
    common = rng.normal(0.30, 0.02, n)  # replicate effect shared by both scenarios (CRN)
    rows = []
    for name, shift in (("baseline", 0.0), ("policy", 0.015)):
        s2 = common + shift + rng.normal(0, 0.002, n)
        for r in range(n):
            rows.append({"scenario": name, "replicate": r, "year": 2035, "stage2": s2[r]})
    ind = pd.DataFrame(rows)
    # moves after 2015 differ by 3; the run-up's (2010), which no scenario changes, are left out
    trans = pd.DataFrame(
        [
            {"scenario": s, "replicate": r, "year": y, "from_stage": 1, "to_stage": 2, "firms": f}
            for s in ("baseline", "policy")
            for r in range(n)
            for y, f in ((2010, 50 + (s == "policy") * 7), (2016, 10 + (s == "policy") * 3))
        ]
    )
    seeds = list(range(n))
    ens = {
        "indicators": ind,
        "transitions": trans,
        "manifest": {
            "scenarios": {
                name: {"seeds": seeds, "parameters": dict(region="stuttgart", firms=1000, region_firms=0)}
                for name in ("baseline", "policy")
            }
        },
        # each agent stands for 0.75 of the region's firms: the moves are the region's
        "summaries": [
            {"scenario": s, "summary": {"economics": {"population_scale": 0.75}}}
            for s in ("baseline", "policy")
        ],
    }
    d = paired_differences(ens).iloc[0]
    assert d.stage2_low < 1.5 < d.stage2_high and d.stage2_high - d.stage2_low < 0.3
    assert d.upward_moves == 3 * 0.75 and d.common_random_numbers and d.same_firms
    # the same seeds on another region's firms are no common random numbers: other firms
    ens["manifest"]["scenarios"]["policy"]["parameters"]["region"] = "nord"
    d = paired_differences(ens).iloc[0]
    assert not d.common_random_numbers and not d.same_firms
    # the region's firms given as the number it has by default are the same firms; another
    # number (another population_scale) is not
    ens["manifest"]["scenarios"]["policy"]["parameters"] |= {"region": "stuttgart", "region_firms": 3000}
    assert paired_differences(ens).iloc[0].same_firms
    ens["summaries"][-1]["summary"]["economics"]["population_scale"] = 1.5
    assert not paired_differences(ens).iloc[0].same_firms


def test_wilson_interval_contains_the_share_at_the_ends():
    for n in (1, 7, 30, 1000):
        assert wilson_interval(0, n)[:2] == (0.0, 0.0)
        p, lo, hi = wilson_interval(n, n)
        assert p == 1.0 == hi and lo < 1.0


def test_the_price_of_a_move_counts_every_run_the_lever_added_none_in():
    """€ per additional move is the mean cost over the mean additional moves of all runs, not a
    median over the runs that added moves (which would drop the others); undefined where the
    mean is not above 0."""

    def lever(cost: float, moves: float) -> dict:
        return {
            "total_cost_eur": cost,
            "firms_reached_region": 10.0,
            "additional_upward_moves_region": moves,
            "cost_per_additional_upward_move_eur": cost / moves if moves > 0 else None,
            "deadweight_share": 0.5,
        }

    def ens(moves: list[float]) -> dict:
        return {
            "manifest": {"scenarios": {"s": {}}},
            "summaries": [
                {
                    "scenario": "s",
                    "replicate": r,
                    # a plan of €5 a year for 20 years: €100, all spent
                    "summary": {
                        "levers": {"funding": lever(100.0, m)},
                        "parameters": {"funding_budget_eur": 5.0},
                    },
                }
                for r, m in enumerate(moves)
            ],
        }

    row = lever_table(ens([10.0, 0.0, -5.0, 20.0])).iloc[0]
    assert row["cost_per_additional_upward_move_eur"] == pytest.approx(100.0 / 6.25)  # not 100/15
    assert row["cost_per_additional_upward_move_eur_runs"] == 4
    assert (row["planned_cost_eur"], row["mean_cost_eur"]) == (100.0, 100.0)
    # the bounds: the mean cost over the bounds of the mean's interval, which here reaches 0
    assert np.isnan(row["cost_per_additional_upward_move_eur_high"])
    assert row["cost_per_additional_upward_move_eur_low"] < 16
    none = lever_table(ens([0.0, -2.0, 1.0])).iloc[0]
    assert np.isnan(none["cost_per_additional_upward_move_eur"])


def test_the_levers_table_prices_the_programmes_together(tmp_path, scenarios):
    """A scenario of several programmes gets a row of all of them in one run: its mean cost
    over its mean additional moves, from the runs' policy records, beside each lever alone."""
    from mittelbau.experiments.report import TOGETHER

    run_ensemble(scenarios, 3, tmp_path)
    ens = load_ensemble(tmp_path)
    table = lever_table(ens).set_index(["scenario", "lever"])
    assert ("baseline", TOGETHER) not in table.index  # no programme, no row
    row = table.loc[("policy-mix", TOGETHER)]
    policy = [r["summary"]["policy"] for r in ens["summaries"] if r["scenario"] == "policy-mix"]
    cost = np.mean([q["total_cost_eur"] for q in policy])
    moves = np.mean([q["additional_upward_moves_region"] for q in policy])
    assert row["mean_cost_eur"] == pytest.approx(cost)
    assert row["cost_per_additional_upward_move_eur"] == pytest.approx(cost / moves)
    assert row["deadweight_share_runs"] == 0  # not defined for programmes together
    assert row["planned_cost_eur"] == pytest.approx(policy[0]["planned_cost_eur"])
    # the mix costs as much as its levers' runs alone together plan
    alone = table.loc["policy-mix"].drop(TOGETHER)
    assert row["planned_cost_eur"] == pytest.approx(alone["planned_cost_eur"].sum())
    text = write_report(tmp_path).read_text()
    line = next(x for x in text.splitlines() if x.startswith(f"| policy-mix | {TOGETHER} |"))
    assert f"| {cost / moves:,.0f} [" in line and line.endswith("| – |")


def test_intervals_of_a_posterior_ensemble_count_its_draws_not_its_runs():
    """Runs of one parameter draw share its parameters: the interval of a mean over them is the
    one over the draws' means, wider than one over the runs taken as independent."""
    from mittelbau.experiments.intervals import draw_mean_interval, mean_interval

    rng = np.random.default_rng(1)
    draws, m = 30, 4
    x = np.repeat(rng.normal(0, 1, draws), m) + rng.normal(0, 0.1, draws * m)
    replicates = np.arange(draws * m)  # replicate r runs draw r // m
    mean, lo, hi = draw_mean_interval(x, replicates, m)
    naive = mean_interval(x)
    assert mean == pytest.approx(x.mean())
    assert hi - lo > 1.8 * (naive[2] - naive[1])  # about √m wider when the draws make the spread
    assert draw_mean_interval(x, replicates, 1) == naive and draw_mean_interval(x, replicates, None) == naive

"""The command line end to end: outputs, reproducibility, and invalid input."""

import io
import json
import os
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from mittelbau.cli import app

runner = CliRunner()


def run(*args: str):
    return runner.invoke(app, ["run", *args])


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, root):
    out = tmp_path_factory.mktemp("runs") / "baseline"
    res = run(
        str(root / "scenarios" / "baseline.toml"),
        "--set",
        "firms=1500",
        "--set",
        "years=6",
        "--out",
        str(out),
    )
    assert res.exit_code == 0, res.output
    return out, res.output


def test_output_files_and_columns(small_run):
    out, output = small_run
    names = sorted(p.name for p in out.iterdir())
    assert names == [
        "economics.csv",
        "indicators.csv",
        "levers.csv",
        "stage_shares.csv",
        "stage_shares.png",
        "summary.json",
        "transitions.csv",
    ]
    shares = pd.read_csv(out / "stage_shares.csv")
    assert list(shares.columns) == ["year", "group_by", "group", "stage", "share"]
    assert set(shares["year"]) == set(range(2000, 2022))  # the run-up from 2000, then 2016–2021
    assert set(shares["group_by"]) == {"all", "size", "industry"}
    pairs = set(zip(shares["group_by"], shares["group"], strict=True))
    assert {("all", "all"), ("size", "20-49"), ("size", "250-499"), ("industry", "machinery")} <= pairs
    sums = shares.groupby(["year", "group_by", "group"])["share"].sum()
    assert ((sums - 1).abs() < 1e-5).all()
    assert (shares.groupby(["year", "group_by", "group"]).size() == 3).all()
    # all firms, each size class and each industry: three partitions of the same firms
    assert len(sums) == 22 * (1 + 4 + 7)
    levers = pd.read_csv(out / "levers.csv")
    assert levers.empty and list(levers.columns) == [
        "year",
        "lever",
        "spent_eur",
        "firms_reached",
        "upward_moves",
        "deadweight",
    ]
    trans = pd.read_csv(out / "transitions.csv")
    assert list(trans.columns) == ["year", "from_stage", "to_stage", "firms"]
    assert set(trans["year"]) == set(range(2001, 2022))
    assert (
        trans.groupby("year")["firms"].sum()
        == 1500 + trans[trans.from_stage == 0].groupby("year")["firms"].sum()
    ).all()
    econ = pd.read_csv(out / "economics.csv")
    assert list(econ.columns[:4]) == ["year", "group", "firms", "employment"]
    assert set(econ["year"]) == set(range(2015, 2022)) and "stage:1" in set(econ["group"])
    assert np.allclose(econ.query("group == 'all'")["firms"], 3000)  # the region's firms
    assert (out / "stage_shares.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "hollow" in output


def test_the_readme_names_the_columns_of_indicators_csv(small_run, root):
    """The README's row for indicators.csv names its columns, in order (`stage1`–`stage3` for
    the three stage shares)."""
    import re

    readme = (root / "README.md").read_text(encoding="utf-8")
    row = next(line for line in readme.splitlines() if line.startswith("| `indicators.csv` |"))
    named = re.findall(r"`([a-z_0-9]+)`", row.replace("`stage1`–`stage3`", "`stage1` `stage2` `stage3`"))
    columns = list(pd.read_csv(small_run[0] / "indicators.csv").columns)
    assert named == columns


def test_the_readme_prints_what_make_baseline_prints(tmp_path, root):
    """The Quick start's block is the baseline run's output at the defaults, line by line (a
    line ending in '…' up to that point)."""
    readme = (root / "README.md").read_text(encoding="utf-8")
    block = readme.split("`make baseline` writes `results/baseline/` and prints the verdict:")[1]
    shown = block.split("```text\n", 1)[1].split("```", 1)[0].splitlines()
    res = runner.invoke(app, ["run", "baseline", "--out", str(tmp_path / "b")])
    assert res.exit_code == 0, res.output
    printed = [line for line in res.output.splitlines() if line.strip()][: len(shown)]
    assert len(shown) >= 5
    for want, got in zip(shown, printed, strict=True):
        if want.endswith("…)"):
            assert got.startswith(want[:-2]), (want, got)
        else:
            assert got == want


def test_summary_holds_scenario_parameters_seed_version_headline(small_run):
    out, _ = small_run
    s = json.loads((out / "summary.json").read_text())
    assert s["scenario"]["name"] == "baseline"
    assert s["parameters"]["firms"] == 1500 and s["parameters"]["region"] == "stuttgart"
    assert s["seed"] == s["parameters"]["seed"]
    assert s["mittelbau_version"]
    h = s["headline"]
    shares = pd.read_csv(out / "stage_shares.csv").query("group == 'all' and year == 2021")
    assert h["stage_shares_end"]["stage2"] == pytest.approx(shares["share"].iloc[1], abs=1e-6)
    assert h["hollowed"] == (h["year_hollowed"] is not None)
    assert s["years"] == [2015, 2021] and s["runup"]["years"] == [2000, 2015]
    start = pd.read_csv(out / "stage_shares.csv").query("group == 'all' and year == 2015")
    assert h["stage_shares_start"]["stage2"] == pytest.approx(start["share"].iloc[1], abs=1e-6)
    assert s["runup"]["implied_coupling"] > 5  # the 2015 within-type association is strong
    assert set(h["bm_introductions_by_motive"]) == {"intrinsic", "peers", "customers", "competition"}
    # the outcomes at the horizon, as the outcome registry summarises the yearly indicators
    ind = pd.read_csv(out / "indicators.csv")
    o = s["outcomes"]
    assert o["hollowed"] is h["hollowed"] and ind["hollowed"].dtype == bool
    projected = ind[ind["year"] >= 2015]  # the run-up's years are not summarised
    assert o["hollowed"] == bool(projected["hollowed"].any())
    assert o["middle_share"] == pytest.approx(ind["middle_share"].iloc[-1], abs=1e-6)
    assert o["middle_share"] == h["stage_shares_end"]["stage2"]
    assert o["upward_rate"] == pytest.approx(ind.loc[ind["year"] > 2015, "upward_rate"].mean(), abs=1e-6)
    assert ind["upward_rate"].isna().tolist() == [True] + [False] * 21  # no move before the first year
    # the verdict indicators: undefined in the run-up, registry outcomes at the horizon
    assert ind.loc[ind["year"] < 2015, "stuck_share"].isna().all()
    assert projected["stuck_share"].iloc[0] == 1.0  # every 2015 stage-1 firm is in stage 1 then
    assert o["stuck_share"] == pytest.approx(ind["stuck_share"].iloc[-1], abs=1e-6) == h["stuck_share"]
    gap = projected["competence_gap"].to_numpy()
    assert o["competence_gap"] == pytest.approx(gap[-1], abs=1e-6)
    assert h["competence_gap"] == [pytest.approx(gap[0], abs=1e-6), o["competence_gap"]]
    assert o["competence_gap_widens"] is bool(gap[-1] > gap[0]) is h["competence_gap_widens"]
    change = 100 * (projected["stage2"].iloc[-1] - projected["stage2"].iloc[0])
    assert o["middle_shrinks"] is bool(change <= -s["parameters"]["middle_shrink_pp"])
    assert s["definitions"]["stuck_share"]["unit"] == "share"
    assert o["cost_per_additional_upward_move"] is None  # no programme
    assert s["definitions"]["upward_rate"]["at_horizon"].startswith("the mean over the simulated years")
    assert s["definitions"]["hollowed"]["kind"] == "bool"


def test_the_run_line_shows_the_figures_the_price_is_computed_from():
    """Moves of the region's firms may be fractional (agents × population_scale): shown with
    their decimal, so the printed price follows from the printed figures; a competence gap
    that widens is shown with the decimals that show it widening."""
    from mittelbau.cli import _moves, _other_verdicts

    assert (_moves(7.5), _moves(-3.0), _moves(1200.0), _moves(0.04)) == ("+7.5", "-3", "+1,200", "+0.04")
    head = {
        "middle_shrinks": False,
        "stuck_share": 0.5,
        "stuck_closed_share": 0.1,
        "stuck_share_small": 0.5,
        "competence_gap": [1.55, 1.59],
        "competence_gap_widens": True,
    }
    assert "1.55 → 1.59 techniques (widens)" in _other_verdicts(head)
    assert "1.5 → 3.7 techniques" in _other_verdicts(head | {"competence_gap": [1.5, 3.7]})
    assert "1.6001 → 1.6003 techniques (widens)" in _other_verdicts(
        head | {"competence_gap": [1.6001, 1.6003]}
    )
    assert "1.6 → 1.6 techniques (does not widen)" in _other_verdicts(
        head | {"competence_gap": [1.6, 1.6], "competence_gap_widens": False}
    )


def test_years_zero_writes_the_initial_state_only(tmp_path, root):
    out = tmp_path / "nord"
    res = run(
        str(root / "scenarios" / "baseline.toml"),
        "--set",
        "region=nord",
        "--set",
        "firms=2000",
        "--set",
        "years=0",
        "--seed",
        "7",
        "--out",
        str(out),
    )
    assert res.exit_code == 0, res.output
    shares = pd.read_csv(out / "stage_shares.csv")
    assert set(shares["year"]) == set(range(2000, 2016))  # the run-up only
    assert pd.read_csv(out / "transitions.csv")["year"].max() == 2015
    s = json.loads((out / "summary.json").read_text())
    assert s["region"] == "Nord" and s["seed"] == 7 and "Initial state" in s["headline"]["verdict"]


def test_same_seed_gives_byte_identical_files_other_seed_differs(tmp_path, root):
    base = str(root / "scenarios" / "baseline.toml")
    for name, seed in (("a", "3"), ("b", "3"), ("c", "4")):
        res = run(
            base,
            "--set",
            "firms=800",
            "--set",
            "years=4",
            "--seed",
            seed,
            "--out",
            str(tmp_path / name),
            "--quiet",
        )
        assert res.exit_code == 0 and res.output == ""
    for f in ("stage_shares.csv", "transitions.csv", "indicators.csv", "summary.json", "stage_shares.png"):
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    assert (tmp_path / "a" / "transitions.csv").read_bytes() != (
        tmp_path / "c" / "transitions.csv"
    ).read_bytes()


def _scenario(tmp_path, text: str, name="s.toml"):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


INVALID = {
    "unknown key": ("[parameters]\nfirmz = 10\n", ["'firmz'", "did you mean 'firms'", "`mittelbau params`"]),
    "empty file": ("", ["the scenario file is empty", "allowed: name, description and a [parameters] table"]),
    "wrong type": ('[parameters]\nfirms = "many"\n', ["'firms'", "'many'", "an integer"]),
    "out of range": (
        "[parameters]\ndt_adoption_factor = 7.5\n",
        ["'dt_adoption_factor'", "7.5", "from 0 to 5"],
    ),
    "bad choice": ('[parameters]\nregion = "bavaria"\n', ["'region'", "'bavaria'", "'nord'"]),
    "malformed": ("[parameters\nfirms = 10\n", ["malformed TOML"]),
    "top-level key": ('nmae = "x"\n', ["'nmae' = 'x'", "name, description, [parameters]"]),
    "top-level table": ("[params]\nfirms = 10\n", ["'params' = a table of firms", "[parameters]"]),
    "end before start": (
        "[parameters]\nfunding_start_year = 2030\nfunding_end_year = 2020\n",
        ["funding_end_year = 2020 is before funding_start_year = 2030", "allowed: an end year"],
    ),
    "bool for number": (
        "[parameters]\nexit_rate = true\n",
        ["'exit_rate'", "True", "allowed: a number from 0"],
    ),
}


def test_a_scenario_file_with_a_byte_order_mark_is_read(tmp_path):
    """Editors on some systems save UTF-8 with a byte-order mark; the file means the same."""
    from mittelbau.core.scenario import load_scenario

    path = tmp_path / "bom.toml"
    path.write_bytes('\ufeffname = "bom"\n[parameters]\nyears = 3\n'.encode())
    scenario = load_scenario(path)
    assert scenario.name == "bom" and scenario.params.years == 3


@pytest.mark.parametrize("case", INVALID)
def test_invalid_scenario_stops_with_one_message_and_writes_nothing(tmp_path, case):
    text, fragments = INVALID[case]
    out = tmp_path / "out"
    res = run(_scenario(tmp_path, text), "--out", str(out))
    assert res.exit_code == 2
    message = res.stderr if hasattr(res, "stderr") else res.output
    assert message.startswith("error: ") and message.count("error:") == 1
    for fragment in fragments:
        assert fragment in message, (fragment, message)
    assert not out.exists() and sorted(os.listdir(tmp_path)) == ["s.toml"]


def test_a_set_repairs_what_the_file_alone_gets_wrong(tmp_path):
    """The file's values and --set are validated together: a programme whose end year the file
    puts before its start runs once --set moves the end."""
    path = _scenario(
        tmp_path,
        "[parameters]\nfunding_budget_eur = 1e6\nfunding_start_year = 2030\nfunding_end_year = 2020\n",
    )
    settings = ["--set", "firms=300", "--set", "years=2", "-q"]
    assert run(path, *settings, "--out", str(tmp_path / "a")).exit_code == 2
    res = run(path, *settings, "--set", "funding_end_year=2035", "--out", str(tmp_path / "b"))
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "b" / "summary.json").read_text())["parameters"]["funding_end_year"] == 2035


def test_a_folder_named_like_a_library_scenario_does_not_hide_it(tmp_path, monkeypatch):
    from mittelbau.core.scenario import bundled_scenarios, resolve_scenario

    monkeypatch.chdir(tmp_path)
    (tmp_path / "baseline").mkdir()  # e.g. an earlier --out baseline
    assert resolve_scenario("baseline") == bundled_scenarios()["baseline"]
    (tmp_path / "mine").mkdir()  # a folder that is no library name stays what was given
    assert resolve_scenario("mine") == Path("mine")


def test_missing_and_unreadable_files(tmp_path):
    out = tmp_path / "out"
    res = run(str(tmp_path / "nope.toml"), "--out", str(out))
    assert res.exit_code == 2 and "scenario file not found" in res.output
    bad = tmp_path / "bin.toml"
    bad.write_bytes(b"\xff\xfe\x00garbage")
    res = run(str(bad), "--out", str(out))
    assert res.exit_code == 2 and "cannot read scenario file" in res.output
    res = run(str(tmp_path), "--out", str(out))  # a folder
    assert res.exit_code == 2 and "cannot read" in res.output
    assert not out.exists()


def test_bad_set_assignments(tmp_path, root):
    base = str(root / "scenarios" / "baseline.toml")
    out = tmp_path / "out"
    res = run(base, "--set", "firms", "--out", str(out))
    assert res.exit_code == 2 and "key=value" in res.output
    res = run(base, "--set", "years=-1", "--out", str(out))
    assert res.exit_code == 2 and "'years' = -1" in res.output and "from 0 to 60" in res.output
    assert f"{base} with --set: parameter 'years'" in res.output
    # a bad value of the file's own is the file's, whatever --set adds
    bad = tmp_path / "bad.toml"
    bad.write_text("[parameters]\ncentres_reach = 50\n")
    res = run(str(bad), "--set", "firms=300", "--out", str(out))
    assert res.exit_code == 2 and f"error: {bad}: parameter 'centres_reach' = 50" in res.output
    res = run(str(bad), "--set", "centres_reach=0.5", "--set", "firmz=3", "--out", str(out))
    assert res.exit_code == 2 and f"{bad} with --set: unknown parameter 'firmz'" in res.output
    assert not out.exists()


def test_params_command_lists_the_registry():
    res = runner.invoke(app, ["params", "--format", "csv"])
    assert res.exit_code == 0
    lines = res.output.strip().splitlines()
    assert lines[0] == (
        "name,group,role,unit,default,low,high,explore_low,explore_high,choices,description,source"
    )
    assert any(line.startswith("bm_weight_peers,") and "sources §4.2" in line for line in lines)
    table = pd.read_csv(io.StringIO(res.output))
    seed = table.set_index("name").loc["seed"]
    assert seed["high"] == 2**32 - 1 and seed["role"] == "setting"
    budget = table.set_index("name").loc["funding_budget_eur"]
    assert (budget["role"], budget["high"], budget["explore_high"]) == ("lever", 1e8, 5e6)


def test_params_json_has_numbers_roles_and_both_ranges():
    res = runner.invoke(app, ["params", "--format", "json"])
    assert res.exit_code == 0
    rows = {r["name"]: r for r in json.loads(res.output)}
    assert rows["seed"]["high"] == 4294967295 and isinstance(rows["seed"]["high"], int)
    assert rows["dt_adoption_factor"]["role"] == "uncertainty"
    assert rows["dt_adoption_factor"]["explore_high"] == rows["dt_adoption_factor"]["high"] == 5.0
    assert rows["centres_number"]["role"] == "lever" and rows["centres_number"]["explore_high"] == 10
    assert rows["region"]["choices"][0] == "stuttgart" and rows["region"]["low"] is None
    assert {r["role"] for r in rows.values()} == {"setting", "lever", "uncertainty"}


def test_flags_are_shown_as_flags_in_help():
    for command in (["run"], ["sensitivity", "sobol"], ["discover"]):
        res = runner.invoke(app, [*command, "--help"])
        assert res.exit_code == 0 and "--quiet" in res.output
        assert "<bool>" not in res.output, command


def test_params_text_listing_is_wrapped_and_bad_format_is_refused():
    res = runner.invoke(app, ["params"])
    assert res.exit_code == 0
    assert max(len(line) for line in res.output.splitlines()) <= 100
    assert "funding_budget_eur = 0.0 €/year  [funding, lever]" in res.output
    bad = runner.invoke(app, ["params", "--format", "xml"])
    assert bad.exit_code == 2 and "'xml'" in bad.output and "text, md, csv, json" in bad.output


def test_lever_scenario_writes_levers_table_and_summary(tmp_path, root):
    out = tmp_path / "mix"
    res = run(
        str(root / "scenarios" / "policy-mix.toml"),
        "--set",
        "firms=2000",
        "--set",
        "years=5",
        "--out",
        str(out),
    )
    assert res.exit_code == 0, res.output
    levers = pd.read_csv(out / "levers.csv")
    assert list(levers.columns) == [
        "year",
        "lever",
        "spent_eur",
        "firms_reached",
        "upward_moves",
        "deadweight",
    ]
    assert set(levers["lever"]) == {"funding", "cooperation", "centres"}
    assert set(levers["year"]) == set(range(2016, 2021))
    s = json.loads((out / "summary.json").read_text())
    # a lever's figures are those of its run alone: the funding scenario of the mix's funding
    alone = run(
        str(root / "scenarios" / "policy-mix.toml"),
        *("--set", "firms=2000", "--set", "years=5"),
        *("--set", "cooperation_projects_per_year=0", "--set", "centres_number=0"),
        "--out",
        str(tmp_path / "funding-alone"),
    )
    assert alone.exit_code == 0, alone.output
    by_itself = json.loads((tmp_path / "funding-alone" / "summary.json").read_text())["levers"]["funding"]
    assert s["levers"]["funding"] == by_itself
    for name, lv in s["levers"].items():
        assert lv["deadweight_moves"] <= lv["upward_moves_of_reached"]
        assert sum(lv["firms_reached_by_size"].values()) == lv["firms_reached"]
        assert sum(lv["firms_reached_by_start_stage"].values()) == lv["firms_reached"]
        if lv["additional_upward_moves"] > 0:
            # moves of the region's firms: 2,000 agents for Stuttgart's 3,000 firms
            assert lv["additional_upward_moves_region"] == 1.5 * lv["additional_upward_moves"]
            assert lv["cost_per_additional_upward_move_eur"] == pytest.approx(
                lv["total_cost_eur"] / lv["additional_upward_moves_region"], abs=0.01
            )
        assert f"{name}: €" in res.output
    policy = s["policy"]
    assert policy["total_cost_eur"] == pytest.approx(levers["spent_eur"].sum())
    assert policy["additional_upward_moves"] == (
        policy["upward_moves"] - policy["upward_moves_without_programmes"]
    )
    from mittelbau.cli import _moves

    total = (
        f"all programmes together: €{policy['total_cost_eur'] / 1e6:.1f} M, "
        f"{_moves(policy['additional_upward_moves_region'])} upward moves"
    )
    # each programme's figures are those of its run alone, then all of them together
    assert "  each programme run alone:\n  funding: €" in res.output and total in res.output
    assert pd.read_csv(out / "levers.csv").shape[0] == 15


def test_summary_is_standard_json_when_a_pole_empties(tmp_path, root):
    """Every firm reaches stage 3: the hollowing ratio has no pole to divide by (infinite in
    the model), written as null — summary.json parses with any JSON reader."""
    out = tmp_path / "empty-pole"
    settings = ["firms=100", "years=60", "bm_adoption_factor=5", "dt_adoption_factor=5"]
    settings += ["bm_loss_rate=0", "dt_loss_rate=0", "exit_rate=0"]
    res = run(*(a for s in settings for a in ("--set", s)), "--out", str(out), "-q")
    assert res.exit_code == 0, res.output

    def refuse(token: str):
        raise ValueError(f"{token} is not JSON")

    s = json.loads((out / "summary.json").read_text(), parse_constant=refuse)
    assert s["headline"]["hollowing_ratio"][1] is None and s["outcomes"]["hollowing_ratio"] is None
    assert s["headline"]["hollowing_ratio"][0] > 0

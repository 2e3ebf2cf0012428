"""The dashboard's parts without a browser: controls from the registry, the paired model,
its figures and sentences, the offline page scripts and the command's input checks."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

from mittelbau.cli import app
from mittelbau.core.model import MittelbauModel
from mittelbau.core.outcomes import OUTCOMES
from mittelbau.core.parameters import BY_NAME, REGISTRY
from mittelbau.core.scenario import load_scenario
from mittelbau.dashboard import captions, charts, readout
from mittelbau.dashboard.controls import control_parameters, model_params, slider_step
from mittelbau.dashboard.paired import PairedModel, read_seed
from mittelbau.experiments.outputs import upward_moves
from mittelbau.levers import without_levers

LEVER_MAIN = {
    "funding_budget_eur",
    "funding_target",
    "cooperation_projects_per_year",
    "cooperation_target",
    "centres_number",
    "centres_capacity",
    "centres_target",
}


def test_controls_come_from_the_registry():
    params = model_params()
    assert {"region", "firms", "seed"} | LEVER_MAIN <= set(params)
    assert set(params) == {p.name for p in REGISTRY if p.control}
    for p in control_parameters():
        c = params[p.name]
        if p.choices:
            assert c["type"] == "Select" and c["values"] == list(p.choices) and c["value"] == p.default
        elif p.name == "seed":
            assert c["type"] == "InputText" and c["value"] == str(p.default)
        else:
            assert c["type"] == ("SliderInt" if p.kind is int else "SliderFloat")
            assert c["min"] == p.low and c["value"] == p.default
            assert p.low < c["max"] <= p.high  # capped for interactive use, never beyond the range
            assert (c["max"] - c["min"]) / c["step"] >= 10
    assert params["firms"]["max"] == BY_NAME["firms"].control_high


def test_scenario_values_start_the_controls_and_fix_the_rest(root):
    scen = load_scenario(root / "scenarios" / "policy-mix.toml")
    values = scen.params.model_dump()
    params = model_params(values)
    assert params["funding_budget_eur"]["value"] == scen.params.funding_budget_eur > 0
    assert params["cooperation_target"]["value"] == scen.params.cooperation_target
    # non-control settings pass unchanged, as fixed values
    assert params["funding_grant_eur"] == scen.params.funding_grant_eur
    assert len(params) == len(values)
    # a value above a slider's usual end widens the slider rather than being cut
    big = model_params({"firms": 50_000})
    assert big["firms"]["max"] == 50_000 and big["firms"]["value"] == 50_000


def test_slider_step():
    assert slider_step(100, 20_000, integer=True) == 100
    assert slider_step(0, 5e6, integer=False) == 100_000
    assert slider_step(0, 10, integer=True) == 1
    assert slider_step(0.0, 1.0, integer=False) == pytest.approx(0.01)


def test_seed_text():
    assert read_seed("  12_345 ") == (12345, None)
    assert read_seed(7) == (7, None)
    default = BY_NAME["seed"].default
    seed, notice = read_seed("abc")
    assert seed == default and "'abc'" in notice and "0 to 4294967295" in notice
    assert read_seed(str(2**32))[0] == default
    # digits that are no decimal number (a superscript two) are an invalid seed, not an error
    seed, notice = read_seed("²")
    assert seed == default and "'²'" in notice


def test_a_run_steps_no_further_than_its_horizon():
    """The page's reset marks a run running whatever its horizon, and its render interval
    steps several years at once: a step at the horizon changes nothing."""
    at_start = PairedModel(firms=200, years=0)
    at_start.running = True  # as the page's reset leaves it
    at_start.step()
    assert at_start.year == 2015 and not at_start.running
    short = PairedModel(firms=200, years=2, funding_budget_eur=1e6)
    for _ in range(4):  # two steps more than its horizon
        short.step()
    assert short.year == 2017 and short.baseline.year == 2017 and not short.running
    assert list(short.history().index)[-1] == 2017


def test_the_server_opens_a_library_scenario_by_its_name_and_no_scenario_without_one(monkeypatch, tmp_path):
    from mittelbau.core.scenario import bundled_scenarios
    from mittelbau.dashboard.app_server import SCENARIO_VARIABLE, server_environment

    monkeypatch.chdir(tmp_path)  # a name is not a file here
    env = server_environment("policy-mix")
    assert env[SCENARIO_VARIABLE] == str(bundled_scenarios()["policy-mix"].resolve())
    # a scenario named in the environment by an earlier server is not opened again
    monkeypatch.setenv(SCENARIO_VARIABLE, env[SCENARIO_VARIABLE])
    assert SCENARIO_VARIABLE not in server_environment(None)


LEVERS = {"firms": 1200, "years": 6, "seed": "4242", "cooperation_projects_per_year": 6, "centres_number": 1}


@pytest.fixture(scope="module")
def paired():
    model = PairedModel(**LEVERS)
    while model.running:
        model.step()
    return model


def test_paired_model_is_the_run_and_its_same_seed_twin(paired):
    params = {**LEVERS, "seed": 4242}
    alone = MittelbauModel(**params).run()
    twin = MittelbauModel(without_levers(alone.params)).run()
    assert paired.year == 2021 and paired.time == 21 and not paired.running  # run-up from 2000
    np.testing.assert_array_equal(paired.state.stage, alone.state.stage)
    np.testing.assert_array_equal(paired.baseline.state.stage, twin.state.stage)
    h = paired.history()
    assert list(h.index) == list(range(2000, 2022))
    np.testing.assert_allclose(h[["stage1", "stage2", "stage3"]].to_numpy().sum(axis=1), 1.0)
    effect = paired.programme_effect()
    assert effect["upward_moves"] == upward_moves(alone)
    assert effect["upward_moves_baseline"] == upward_moves(twin)
    assert effect["spent_eur"] == pytest.approx(sum(r[2] for r in alone.lever_records))
    assert effect["spent_eur"] > 0


def test_outcome_table_reads_the_outcome_registry(paired):
    rows = readout.outcome_rows(paired)
    assert [r[0] for r in rows] == [o.label for o in OUTCOMES.values() if o.yearly]
    now = {label: value for label, value, _ in rows}
    assert now["middle-tier share"] == f"{100 * paired.recorded_shares[1]:.1f} %"
    assert now["middle hollowed"] == ("yes" if paired.history()["hollowed"].iloc[-1] else "no")
    rate = paired.history()["upward_rate"].iloc[-1]
    assert now["upward rate"] == f"{100 * rate:.1f} %" and 0 < rate < 1
    fresh = PairedModel(firms=200, years=1)  # at the 2015 state, after the run-up
    shown = {label: value for label, value, _ in readout.outcome_rows(fresh)}
    assert (
        fresh.year == 2015
        and shown["upward rate"] == f"{100 * fresh.history()['upward_rate'].iloc[-1]:.1f} %"
    )
    assert shown["stuck in stage 1"] == "100.0 %"  # every 2015 stage-1 firm is still in stage 1 in 2015


def test_without_levers_there_is_no_twin():
    model = PairedModel(firms=300, years=2)
    model.step()
    assert model.baseline is None and model.levers_on == []
    assert model.baseline_history().equals(model.history())
    assert "No programme is switched on" in captions.comparison(model)


def test_network_sample_is_connected_fixed_and_leaves_the_run_alone(paired):
    import networkx as nx

    rows, xy = paired.network_sample()
    assert len(rows) == 300 == len(set(rows.tolist())) and xy.shape == (300, 2)
    assert paired.network_sample()[0] is rows  # fixed for the run
    edges = paired.sample_edges()
    graph = nx.Graph(edges.tolist())
    assert nx.number_connected_components(graph) <= 3  # grown breadth-first from few firms
    fresh = PairedModel(**LEVERS)
    fresh.network_sample()
    fresh.step()
    other = PairedModel(**LEVERS)
    other.step()
    np.testing.assert_array_equal(fresh.state.stage, other.state.stage)


def test_figures_show_the_model_data(paired):
    h = paired.history()
    fig = charts.stage_shares_figure(paired)
    lines = fig.axes[0].get_lines()
    for k, line in zip((1, 2, 3), lines, strict=True):
        np.testing.assert_allclose(line.get_ydata(), 100 * h[f"stage{k}"].to_numpy())
    mid = charts.middle_figure(paired)
    np.testing.assert_allclose(mid.axes[0].get_lines()[0].get_ydata(), 100 * h["middle_share"].to_numpy())
    size = charts.size_figure(paired)
    widths = np.array([bar.get_width() for bar in size.axes[0].patches]).reshape(3, 4)
    np.testing.assert_allclose(widths.sum(axis=0), 100)
    np.testing.assert_allclose(widths.T / 100, paired.size_shares().to_numpy())
    net = charts.network_figure(paired)
    counts = [len(c.get_offsets()) for c in net.axes[0].collections if hasattr(c, "get_offsets")][-3:]
    rows, _ = paired.network_sample()
    assert counts == [int((paired.state.stage[rows] == k).sum()) for k in (1, 2, 3)]
    agents = len(paired.state)
    firms = round(agents * paired.population_scale)
    assert f"{len(rows)} of {agents:,} agents ({firms:,} firms)" in net.axes[0].get_title()
    comp = charts.compare_figure(paired).axes[0].get_lines()
    b = paired.baseline_history()
    np.testing.assert_allclose(comp[1].get_ydata(), 100 * b["stage1"].to_numpy())


def test_sentences_state_the_numbers(paired):
    s = paired.recorded_shares
    text = captions.status(paired)
    assert f"Year {paired.year}" in text and f"stage 2 {100 * s[1]:.1f} %" in text
    said = captions.comparison(paired)
    e = paired.programme_effect()
    # moves of the region's firms: agents × population_scale, as the € per move
    extra = e["additional_moves"] * paired.population_scale
    assert f"{extra:+,.0f} additional" in said and f"€{e['spent_eur']:,.0f}" in said
    assert captions.settings(paired).startswith(
        "Programmes of this run: cooperation 6 projects a year (digital partner, for all); "
        "1 application centre(s) × 50 firms a year (for all)."
    )
    assert "Programmes of this run: none." in captions.settings(PairedModel(firms=200, years=1))
    bad = PairedModel(firms=200, years=1, seed="twelve")
    assert captions.status(bad).startswith("**Note: seed 'twelve' is invalid")


def test_page_scripts_are_named_from_the_installed_solara():
    pytest.importorskip("solara")
    from mittelbau.dashboard import assets

    needed = assets.required()
    assert any(spec.startswith("requirejs@") for spec in needed)
    assert any(spec.startswith("@widgetti/vue-grid-layout@") for spec in needed)
    assert all("@" in spec[1:] for spec in needed)


def test_dashboard_command_checks_its_scenario(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_text("[parameters]\nfunding_budget_eur = -5\n")
    res = CliRunner().invoke(app, ["dashboard", str(bad), "--no-open"])
    assert res.exit_code == 2
    assert "funding_budget_eur" in res.output and "-5" in res.output


def test_server_listens_on_localhost_by_default():
    from mittelbau.dashboard.app_server import SCENARIO_VARIABLE, server_command, server_environment

    cmd = server_command("127.0.0.1", 8765, open_browser=False)
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and "--no-open" in cmd
    env = server_environment(None)
    assert env["SOLARA_TELEMETRY_MIXPANEL_ENABLE"] == "False" and SCENARIO_VARIABLE not in env
    import inspect

    from mittelbau.cli import dashboard

    assert inspect.signature(dashboard).parameters["host"].default == "127.0.0.1"


def test_the_server_keeps_warning_filters_and_drops_solaras_cookie_warning(monkeypatch):
    """Solara's warning about cookies in frames of other sites, printed on every page load from
    127.0.0.1, is filtered in the server; filters the user set are kept, and other warnings show."""
    import os
    import subprocess
    import sys

    from mittelbau.dashboard.app_server import server_environment

    monkeypatch.setenv("PYTHONWARNINGS", "ignore::ResourceWarning")
    env = server_environment(None)
    assert env["PYTHONWARNINGS"].startswith("ignore::ResourceWarning,")
    script = (
        "import warnings\n"
        "warnings.warn('Cookies with samesite=none require https, but the scheme is http')\n"
        "warnings.warn('another warning')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], env={**os.environ, **env}, capture_output=True, text=True
    )
    assert done.returncode == 0 and "samesite" not in done.stderr and "another warning" in done.stderr


def test_dashboard_command_names_the_missing_extra(monkeypatch):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "solara" else real(name, *a)
    )
    res = CliRunner().invoke(app, ["dashboard", "--no-open"])
    assert res.exit_code == 2 and "'dashboard' extra" in res.output
    # how to install it, in a checkout (the tests run from one): from the lock
    assert "run `make dev` in the project folder" in res.output


def test_dashboard_command_names_missing_page_scripts(monkeypatch):
    pytest.importorskip("solara")
    from mittelbau.dashboard import assets

    monkeypatch.setattr(assets, "missing", lambda: ["requirejs@2.3.6"])
    res = CliRunner().invoke(app, ["dashboard", "--no-open"])
    assert res.exit_code == 2
    assert "requirejs@2.3.6" in res.output and "python -m mittelbau.dashboard.assets" in res.output


def test_the_printed_address_is_one_a_browser_takes():
    from mittelbau.cli import dashboard_address

    assert dashboard_address("127.0.0.1", 8765) == "http://127.0.0.1:8765"
    assert dashboard_address("::1", 8765) == "http://[::1]:8765"
    assert dashboard_address("localhost", 0).startswith("http://localhost on a free port")

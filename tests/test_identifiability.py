"""Which parameters drive the verdicts, and whether the targets identify them."""

import tomllib

import pandas as pd

from mittelbau.calibration.identifiability import (
    IDENTIFIABILITY_FILE,
    VERDICT_OUTPUTS,
    classify,
    drivers,
    screened_factors,
    write_identifiability,
)
from mittelbau.core.parameters import BY_NAME


def _indices() -> pd.DataFrame:
    rows = [
        ("stuck_share", "bm_adoption_factor", 0.40, 0.10),
        ("hollowing_ratio", "bm_adoption_factor", 0.10, 0.05),
        ("stuck_share", "exit_rate", 0.08, 0.20),
        ("hollowing_ratio", "exit_rate", 0.30, 0.40),
        ("stuck_share", "competence_learning", 0.04, 0.01),
        ("stuck_share", "engagement_drift_rate", 0.06, 0.01),
    ]
    return pd.DataFrame(rows, columns=["output", "factor", "ST", "ST_conf"])


def _recovery() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "parameter": ["bm_adoption_factor", "competence_learning", "engagement_drift_rate"],
            "truth": [1.0, 0.5, 0.03],
            "median": [1.1, 0.45, 0.05],
            "q05": [0.8, 0.3, 0.0],
            "q95": [1.4, 0.7, 0.2],
            "sd_ratio": [0.3, 0.2, 0.8],
            "recovered": [True, True, True],
            "identified": [True, True, False],
        }
    )


def test_drivers_are_the_factors_above_the_threshold_on_any_indicator():
    top = drivers(_indices())
    assert list(top["factor"]) == ["bm_adoption_factor", "exit_rate", "engagement_drift_rate"]
    assert list(top["output"]) == ["stuck_share", "hollowing_ratio", "stuck_share"]
    # clear: the lower end of the interval stays above 0.05 on some indicator
    assert list(top["clear"]) == [True, False, False]


def test_a_driver_is_identified_only_when_fitted_and_narrowed():
    table = classify(drivers(_indices()), _recovery()).set_index("parameter")
    assert table.loc["bm_adoption_factor", "status"] == "identified"
    assert table.loc["exit_rate", "status"] == "assumption"  # not fitted
    assert table.loc["engagement_drift_rate", "status"] == "assumption"  # fitted, sd ratio 0.8
    assert "competence_learning" not in table.index  # fitted, but drives no verdict
    # narrowed in the recovery but not in the fit to the surveys: not identified
    wide = classify(drivers(_indices()), _recovery(), {"bm_adoption_factor": 0.75}).set_index("parameter")
    assert wide.loc["bm_adoption_factor", "status"] == "assumption"
    assert wide.loc["bm_adoption_factor", "sd_ratio"] == 0.75


def test_the_written_file_lists_the_assumptions_that_drive_the_answer(tmp_path):
    path = tmp_path / "identifiability.toml"
    table = classify(drivers(_indices()), _recovery())
    write_identifiability(table, {"n": 32, "seed": 1}, _recovery(), path)
    data = tomllib.loads(path.read_text())
    assert data["assumptions_that_drive_the_answer"] == ["engagement_drift_rate", "exit_rate"]
    assert data["identified_drivers"] == ["bm_adoption_factor"]
    assert data["driver"]["exit_rate"]["ci95_half_width"] == 0.4
    assert data["recovery"]["engagement_drift_rate"]["sd_ratio"] == 0.8


def test_the_screen_varies_the_uncertain_parameters_that_act_on_the_stages():
    names = screened_factors()
    assert "bm_adoption_factor" in names and "mech_lockin" in names
    assert not any(BY_NAME[n].group in ("economics", "run", "measurement") for n in names)


def test_committed_identifiability_names_every_driver_identified_or_assumed():
    data = tomllib.loads(IDENTIFIABILITY_FILE.read_text())
    assert data["screen"]["outputs"] == list(VERDICT_OUTPUTS)
    drivers_ = data["driver"]
    assert set(data["assumptions_that_drive_the_answer"]) | set(data["identified_drivers"]) == set(drivers_)
    for name, d in drivers_.items():
        assert d["total_index"] > data["driver_index"]
        identified = d.get("sd_ratio", 1.0) < data["identified_sd_ratio"]
        assert d["status"] == ("identified" if identified else "assumption"), name
    for name, r in data["recovery"].items():
        assert r["q05"] <= r["median"] <= r["q95"], name
        assert r["recovered"] == (r["q05"] <= r["truth"] <= r["q95"]), name
        assert r["identified"] == (r["sd_ratio"] < data["identified_sd_ratio"]), name


def test_readme_names_every_assumption_that_drives_the_answer(root):
    readme = (root / "README.md").read_text()
    data = tomllib.loads(IDENTIFIABILITY_FILE.read_text())
    assert "calibration/identifiability.toml" in readme
    missing = [n for n in data["assumptions_that_drive_the_answer"] if f"`{n}`" not in readme]
    assert not missing, missing


def test_cli_refuses_a_truth_outside_the_fitted_parameters_and_a_missing_recovery(tmp_path):
    from typer.testing import CliRunner

    from mittelbau.cli import app

    out = tmp_path / "out"
    bad = CliRunner().invoke(app, ["calibrate", "identify", "--truth", "exit_rate=0.1", "--out", str(out)])
    assert bad.exit_code == 2 and "--truth 'exit_rate=0.1' is invalid" in bad.output
    high = CliRunner().invoke(
        app, ["calibrate", "identify", "--truth", "bm_loss_rate=0.9", "--out", str(out)]
    )
    assert high.exit_code == 2 and "'0.9' is invalid; allowed: a number from 0 to 0.2" in high.output
    twice = CliRunner().invoke(
        app,
        [
            "calibrate",
            "identify",
            "--truth",
            "bm_loss_rate=0.03",
            "--truth",
            "bm_loss_rate=0.04",
            "--out",
            str(out),
        ],
    )
    assert twice.exit_code == 2 and "--truth bm_loss_rate is given twice" in twice.output
    missing = CliRunner().invoke(
        app, ["calibrate", "identifiability", "--recovery", str(tmp_path / "none"), "--out", str(out)]
    )
    assert missing.exit_code == 2 and "holds no identifiability.csv" in missing.output
    assert not out.exists()


def test_the_screen_shows_its_progress_and_warns_of_wide_intervals(tmp_path):
    from typer.testing import CliRunner

    from mittelbau.cli import app

    recovery = tmp_path / "recovery"
    recovery.mkdir()
    (recovery / "identifiability.csv").write_text(
        "parameter,truth,median,q05,q95,sd_ratio,recovered,identified\n"
        "bm_loss_rate,0.03,0.04,0.02,0.07,0.24,True,True\n"
    )
    res = CliRunner().invoke(
        app,
        [
            *("calibrate", "identifiability", "--recovery", str(recovery)),
            *("--n", "8", "--firms", "100", "--out", str(tmp_path / "screen")),
        ],
    )
    assert res.exit_code == 0, res.output
    k = len(screened_factors())
    assert f"identifiability: {8 * (k + 2)}/{8 * (k + 2)} runs" in res.output
    assert "too uncertain to rank; use more --n" in res.output and "--samples" not in res.output
    # a screen of an earlier version in the folder (other outcomes, another fingerprint) is
    # refused, offering --overwrite, which this command has
    import json

    path = tmp_path / "screen" / "runs" / "experiment.json"
    manifest = json.loads(path.read_text())
    manifest["outcomes"] = dict(list(manifest["outcomes"].items())[:-1])
    manifest["fingerprint"] = "0" * 64
    path.write_text(json.dumps(manifest))
    args = ["calibrate", "identifiability", "--recovery", str(recovery), "--n", "8", "--firms", "100"]
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "screen")])
    assert res.exit_code == 2 and "allowed: another --out, or --overwrite to replace it" in res.output
    res = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "screen"), "--overwrite"])
    assert res.exit_code == 0, res.output
    # a screen of another seed: refused with what this command can do (no --samples here)
    res = CliRunner().invoke(app, [*args, "--seed", "3", "--out", str(tmp_path / "screen")])
    assert res.exit_code == 2 and "another scenario seed" in res.output
    assert "a larger --n (it continues the runs the folder holds)" in res.output
    assert "--samples" not in res.output and "--trajectories" not in res.output

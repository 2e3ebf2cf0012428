"""The fit report: target bookkeeping, statistics, and the README's headline."""

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from mittelbau.calibration.fit_report import STATISTICS, fit_table, load_targets, write_fit_report
from mittelbau.cli import app
from mittelbau.core.model import MittelbauModel


def test_targets_are_unique_and_complete():
    targets = load_targets()
    ids = [t["id"] for t in targets]
    assert len(ids) == len(set(ids))
    for t in targets:
        assert 0 < t["value"] < 1 and t["n"] > 0 and t["source"].startswith("sources §")
    sections = {t["source"].split()[1].rstrip(",") for t in targets}
    assert {"§2.1", "§2.2", "§2.5", "§2.9", "§4.1", "§4.2", "§4.3", "§4.4", "§4.6"} <= sections


def test_statistics_read_the_model_state():
    m = MittelbauModel(firms=3000, seed=2, years=3, bm_adoption_factor=5.0)
    eng = STATISTICS["engagement_share"](m, {"level": "partners"})
    assert eng == pytest.approx((m.state.engagement == 2).mean())
    assert STATISTICS["bm_introduced_since"](m, {"since": 2016}) == 0.0
    m.run()
    since = STATISTICS["bm_introduced_since"](m, {"since": 2016})
    assert since == pytest.approx((m.bm_introduced >= 2016).mean()) and since > 0.05
    shares = [
        STATISTICS["bm_motive_share"](m, {"motive": k})
        for k in ("intrinsic", "peers", "customers", "competition")
    ]
    assert sum(shares) == pytest.approx(1.0)
    bands = [
        STATISTICS["techniques_share"](m, {"low": lo, "high": hi}) for lo, hi in ((0, 2), (3, 5), (6, 10))
    ]
    assert sum(bands) == pytest.approx(1.0)  # fractional learning never falls between bands
    still = MittelbauModel(firms=2000, seed=2, years=3, bm_adoption_factor=0.0).run()
    assert STATISTICS["bm_introduced_since"](still, {"since": 2016}) == 0.0


def test_fit_table_scores_each_target_by_its_standard_error():
    table = fit_table(replications=3, firms=1500, seed=5)
    se = np.sqrt(table.observed_se**2 + table.simulated_sd**2 / 3)
    assert np.allclose(table.z, (table.simulated_mean - table.observed) / se)
    upper = table.bound == "upper"
    assert upper.sum() == 1  # sources §4.1, a one-sided reading
    assert (table.within_2se[~upper] == (table.z[~upper].abs() <= 2)).all()
    assert (table.within_2se[upper] == (table.z[upper] <= 2)).all()
    assert np.allclose(table.observed_se, np.sqrt(table.observed * (1 - table.observed) / table.n))


@pytest.mark.slow
def test_readme_headline_is_the_current_fit(root, tmp_path):
    _, table = write_fit_report(tmp_path)  # the defaults of `mittelbau calibrate report`
    readme = (root / "README.md").read_text()
    headline = re.search(r"\*\*(\d+) of (\d+) targets within 2 standard errors\*\*", readme)
    assert headline, "README lacks the fit headline"
    assert (int(headline[1]), int(headline[2])) == (int(table.within_2se.sum()), len(table))


def test_cli_report_writes_its_files(tmp_path):
    res = CliRunner().invoke(
        app, ["calibrate", "report", "--out", str(tmp_path), "--replications", "2", "--firms", "600"]
    )
    assert res.exit_code == 0, res.output
    assert "targets within 2 standard errors" in res.output
    for name in ("fit_report.md", "fit_report.csv", "fit_report.png", "region_predictions.csv"):
        assert (tmp_path / name).exists(), name
    bad = CliRunner().invoke(app, ["calibrate", "report", "--replications", "1"])
    assert bad.exit_code == 2 and "--replications = 1 is invalid; allowed: 2 or more" in bad.output

"""The fit report: target bookkeeping, statistics, and the README's headline."""

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from mittelbau.calibration.fit_report import (
    STATISTICS,
    any_introduction_share,
    fit_table,
    load_targets,
    mantel_haenszel_log_or,
    standard_error,
    subgroup_samples,
    write_fit_report,
)
from mittelbau.cli import app
from mittelbau.core.model import MittelbauModel


def test_targets_are_unique_and_complete():
    targets = load_targets()
    ids = [t["id"] for t in targets]
    assert len(ids) == len(set(ids))
    for t in targets:
        assert t["source"].startswith("sources §")
        if t.get("unit", "share") == "share":
            assert 0 < t["value"] < 1 and t["n"] > 0
        else:
            assert t["se"] > 0 and t["measurement"]
    sections = {s.strip(",") for t in targets for s in t["source"].split()[1:]}
    assert {
        "§2.1",
        "§2.2",
        "§2.5",
        "§2.9",
        "§2.12",
        "§4.1",
        "§4.2",
        "§4.3",
        "§4.4",
        "§4.6",
        "§4.8",
        "§7.1",
    } <= sections
    # the run-up's 2015 targets take the place of the static ones of the same figure
    for population in ("stuttgart", "germany"):
        for capability in ("bm", "dt"):
            assert f"{population}:{capability}_share:all" not in ids
            assert f"runup_{capability}_{population}" in ids


def test_introductions_measurement_model_numbers():
    """sources §4.1: with 10 % service-based introductions among the firms and half of all
    introductions service-based, 1 − 0.9² = 19 % report any introduction."""
    assert any_introduction_share(0.1, 0.5) == pytest.approx(0.19)
    assert any_introduction_share(0.1, 1.0) == pytest.approx(0.1)  # all service-based: as simulated
    assert any_introduction_share(0.0, 0.3) == 0.0
    m = MittelbauModel(firms=2000, seed=3, years=3, bm_service_share=0.25).run()
    final = m.state.position == 0
    s = (m.bm_introduced[final] >= 2016).mean()
    got = STATISTICS["bm_introduced_any_since"](m, {"group": "position:final", "since": 2016})
    assert 0 < s < got == pytest.approx(1 - (1 - s) ** 4)


def test_within_type_association_is_the_mantel_haenszel_log_odds_ratio():
    def table(a: int, b: int, c: int, d: int) -> tuple[list[int], list[int]]:
        """Firms with (x, y) = (1, 1) a times, (1, 0) b, (0, 1) c, (0, 0) d."""
        return [1] * (a + b) + [0] * (c + d), [1] * a + [0] * b + [1] * c + [0] * d

    # no association within either type (odds ratios 8·1 / (2·4) and 1·8 / (4·2)), though the
    # pooled table has odds ratio 9·9 / (6·6): the within-type log odds ratio is 0
    (x0, y0), (x1, y1) = table(8, 2, 4, 1), table(1, 4, 2, 8)
    x, y = np.array(x0 + x1), np.array(y0 + y1)
    stratum = np.array([0] * 15 + [1] * 15)
    assert mantel_haenszel_log_or(x, y, stratum) == pytest.approx(0.0, abs=1e-12)
    assert mantel_haenszel_log_or(x, y, np.zeros(30, dtype=int)) == pytest.approx(np.log(2.25))
    # a common odds ratio of 4 in two types of different size and level
    (x0, y0), (x1, y1) = table(4, 1, 1, 1), table(2, 2, 1, 4)
    got = mantel_haenszel_log_or(np.array(x0 + x1), np.array(y0 + y1), np.array([0] * 7 + [1] * 9))
    assert got == pytest.approx(np.log(4.0))


def test_a_target_the_model_cannot_meet_is_reported_as_failing():
    """A constructed case: 95 % BM providers in 2015 and a within-type association of 0."""
    targets = [
        {
            "id": "impossible_bm",
            "population": "stuttgart",
            "statistic": "bm_share",
            "group": "all",
            "year": 2015,
            "value": 0.95,
            "n": 113,
            "source": "sources §2.2",
        },
        {
            "id": "no_coupling",
            "population": "stuttgart",
            "statistic": "bm_dt_log_odds_ratio",
            "year": 2015,
            "value": 0.0,
            "se": 0.1,
            "unit": "log odds ratio",
            "source": "sources §2.1",
        },
        {
            "id": "lower_bound_met",
            "population": "stuttgart",
            "statistic": "bm_share",
            "group": "all",
            "year": 2015,
            "value": 0.2,
            "n": 113,
            "bound": "lower",
            "source": "sources §2.2",
        },
    ]
    table = fit_table(replications=2, firms=800, seed=4, targets=targets).set_index("target")
    assert not table.loc["impossible_bm", "within_2se"] and table.loc["impossible_bm", "z"] < -10
    assert not table.loc["no_coupling", "within_2se"] and table.loc["no_coupling", "z"] > 5
    assert table.loc["lower_bound_met", "within_2se"]
    assert standard_error(targets[1]) == 0.1


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
    assert sum(bands) == pytest.approx(1.0)
    assert (m.state.techniques == np.floor(m.state.techniques)).all()  # learning adds whole techniques
    still = MittelbauModel(firms=2000, seed=2, years=3, bm_adoption_factor=0.0).run()
    assert STATISTICS["bm_introduced_since"](still, {"since": 2016}) == 0.0


def test_fit_table_scores_each_target_by_its_standard_error():
    table = fit_table(replications=3, firms=1500, seed=5)
    se = np.sqrt(table.observed_se**2 + table.simulated_sd**2 / 3)
    assert np.allclose(table.z, (table.simulated_mean - table.observed) / se)
    upper = table.bound == "upper"
    assert upper.sum() == 2  # sources §4.8, the revenue shares read as bounds
    assert (table.within_2se[~upper] == (table.z[~upper].abs() <= 2)).all()
    assert (table.within_2se[upper] == (table.z[upper] <= 2)).all()
    shares = table.unit == "share"
    p = table.observed[shares]
    assert np.allclose(table.observed_se[shares], np.sqrt(p * (1 - p) / table.n[shares]))
    assert (table.observed_se[~shares] < 0.5).all() and table.fitted.sum() == 19


def test_a_subgroup_target_takes_the_binomial_error_of_its_part_of_the_sample():
    targets = [t for t in load_targets() if t["population"] == "germany" and t["statistic"] == "stage_share"]
    whole = next(t for t in targets if t["group"] == "all")
    sized = {t["group"]: t for t in subgroup_samples(targets, 2000, 1)}
    model = MittelbauModel(region="germany", firms=2000, years=0, seed=1)
    large = sized["size:250-499"]
    assert large["n"] == round(1208 * (model.state.size == 3).mean()) and large["n"] < 200
    assert sized["all"]["n"] == whole["n"] == 1208
    assert sum(t["n"] for g, t in sized.items() if g.startswith("industry:")) == pytest.approx(1208, abs=4)
    assert standard_error(large) == pytest.approx(np.sqrt(0.4 * 0.6 / large["n"]))


def test_a_target_no_run_has_a_value_for_is_missed_and_said_so(monkeypatch):
    """Too few firms for a target's group: no run has a value; the target has no simulated
    mean or z (not 0, and no warning of numpy's), and counts as missed."""
    import pandas as pd

    from mittelbau.calibration import fit_report

    targets = load_targets()[:2]

    def sims(targets, replications, firms, seed):
        return pd.DataFrame({targets[0]["id"]: [np.nan] * 3, targets[1]["id"]: [0.3, 0.31, 0.29]})

    monkeypatch.setattr(fit_report, "simulated", sims)
    with np.errstate(all="raise"):
        table = fit_table(replications=3, firms=100, seed=1, targets=targets)
    assert np.isnan(table.z.iloc[0]) and np.isnan(table.simulated_mean.iloc[0])
    assert not table.within_2se.iloc[0] and np.isfinite(table.z.iloc[1])


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
    from mittelbau.calibration.validation import FILES

    assert all((tmp_path / name).exists() for name in FILES)
    # the same folder's report without validation leaves no validation file of the one before
    args = ["--out", str(tmp_path), "--replications", "2", "--firms", "600", "--no-validation"]
    assert CliRunner().invoke(app, ["calibrate", "report", *args]).exit_code == 0
    assert not any((tmp_path / name).exists() for name in FILES)
    assert "Checks against data not used in fitting" not in (tmp_path / "fit_report.md").read_text()
    bad = CliRunner().invoke(app, ["calibrate", "report", "--replications", "1"])
    assert bad.exit_code == 2 and "--replications = 1 is invalid; allowed: 2 or more" in bad.output


@pytest.mark.parametrize(
    ("change", "said"),
    [
        (
            lambda text: text.replace('level = "watching"', 'level = "expert"', 1),
            "level = 'expert'; allowed: watching",
        ),
        (lambda text: text + "\n[[target\n", "is not valid TOML"),
        (
            lambda text: text.replace('group = "position:final"', 'group = "position:retail"', 1),
            "'position:retail'",
        ),
        (lambda text: None, "cannot be read"),
        (lambda text: re.sub(r"(?m)^year = 2016\n", "", text, count=1), "has no year"),
        (lambda text: re.sub(r"(?m)^n = 203$", "n = 0", text, count=1), "n = 0; allowed: a number above 0"),
        (
            lambda text: re.sub(r"(?m)^year = 2016$", "year = 2010", text, count=1),
            "allowed: a year from 2015",
        ),
        (lambda text: re.sub(r"(?m)^from_year = 2016\n", "", text, count=1), "needs from_year"),
    ],
    ids=[
        "unknown level",
        "broken file",
        "unknown position",
        "missing file",
        "no year",
        "n 0",
        "early",
        "from",
    ],
)
def test_a_broken_targets_file_is_one_line_before_anything_runs(tmp_path, monkeypatch, change, said):
    """`calibrate report`, `fit` and `identify` read and check the targets first: a file that
    cannot be read or a target that cannot be measured is one line naming it, and nothing is
    written."""
    import shutil

    from mittelbau.calibration import fit_report

    folder = tmp_path / "calibration"
    shutil.copytree(fit_report.CALIBRATION, folder, ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    text = change((folder / "targets.toml").read_text("utf-8"))
    if text is None:
        (folder / "targets.toml").unlink()
    else:
        (folder / "targets.toml").write_text(text, "utf-8")
    monkeypatch.setattr(fit_report, "CALIBRATION", folder)
    for command in (["calibrate", "report"], ["calibrate", "fit"], ["calibrate", "identify"]):
        out = tmp_path / "out"
        res = CliRunner().invoke(app, [*command, "--out", str(out)])
        assert res.exit_code == 2, res.output
        lines = res.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and said in lines[0], res.stderr
        assert not out.exists()


def test_a_report_that_fails_part_way_leaves_the_one_before_whole(tmp_path, monkeypatch):
    """The report's files replace those of the report before only once all are written: a
    validation that fails after the fit report was written leaves the earlier files as they
    were, no new one beside them and no staging folder."""
    from mittelbau.calibration import validation

    out = tmp_path / "r"
    args = ["calibrate", "report", "--firms", "500", "--replications", "2", "--out", str(out)]
    assert CliRunner().invoke(app, args).exit_code == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}

    def broken(*_args, **_kw):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(validation, "append_to_report", broken)
    again = ["calibrate", "report", "--firms", "600", "--replications", "2", "--out", str(out)]
    res = CliRunner().invoke(app, again)
    assert res.exit_code == 1 and "No space left on device" in res.stderr, res.output
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before

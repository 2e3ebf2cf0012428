"""Dynamic calibration: distance, seeds, recovery of a known parameter, the committed set."""

import tomllib

import numpy as np
import pandas as pd
import pytest

from mittelbau.calibration.dynamic_fit import (
    FITTED,
    PARAMETER_FILE,
    FitResult,
    distance,
    dynamic_targets,
    fit,
    particle_seed,
    simulate,
    write_parameter_set,
)
from mittelbau.calibration.posterior import effective_sample_size
from mittelbau.core.parameters import BY_NAME
from mittelbau.experiments.posterior import POSTERIOR_FILE


def test_targets_of_the_fit_carry_dynamic_information():
    targets = dynamic_targets()
    ids = {t["id"] for t in targets}
    assert {"runup_bm_stuttgart", "bm_dt_association_stuttgart", "bm_introduced_3y_suppliers"} <= ids
    assert {"bm_dropped_3y", "techniques_6_plus", "motive_peers", "service_revenue_over_50"} <= ids
    # the 2015 shares drawn straight from their targets stay out of the distance
    assert not ids & {"market_leaders", "threatened_main_bm", "stuttgart_dt_internet"}
    assert {t["population"] for t in targets} == {"stuttgart"}  # Germany's: in the report only
    assert all(t.get("measurement") for t in targets if t["year"] == 2015 or "since" in t)


def test_loss_is_zero_on_data_made_by_the_model_itself():
    targets = dynamic_targets()
    truth = {"competence_learning": 0.3}
    synthetic = simulate(truth, 11, 2000, targets)
    assert distance(simulate(truth, 11, 2000, targets), synthetic, targets) == 0.0
    noise = distance(simulate(truth, 12, 2000, targets), synthetic, targets)
    wrong = distance(simulate({"competence_learning": 1.5}, 12, 2000, targets), synthetic, targets)
    assert noise < wrong / 3


def test_a_bound_adds_only_on_its_wrong_side():
    targets = [t for t in dynamic_targets() if t.get("bound") == "upper"]
    t = targets[0]
    observed = {t["id"]: t["value"]}
    assert distance({t["id"]: t["value"] - 0.2}, observed, [t]) == 0.0
    assert distance({t["id"]: t["value"] + 0.1}, observed, [t]) > 5
    low = {**t, "bound": "lower"}
    assert distance({t["id"]: t["value"] + 0.2}, observed, [low]) == 0.0
    assert distance({t["id"]: t["value"] - 0.1}, observed, [low]) > 5


def test_particle_seeds_follow_the_particle():
    a = particle_seed({"x": 0.1, "y": 2.0}, 7)
    assert a == particle_seed({"y": 2.0, "x": 0.1}, 7)
    assert a != particle_seed({"x": 0.1000001, "y": 2.0}, 7) and a != particle_seed({"x": 0.1, "y": 2.0}, 8)


def identified_in_committed_fit() -> list[str]:
    """The fitted parameters the report calls identified: sd ratio below 0.5 in the fit to the
    surveys and in the recovery from synthetic data."""
    fitted = tomllib.loads(PARAMETER_FILE.read_text())
    return [n for n in FITTED if max(fitted[n]["sd_ratio"], fitted[n].get("recovery_sd_ratio", 1.0)) < 0.5]


@pytest.mark.slow
def test_fit_recovers_every_identified_parameter(tmp_path):
    """Synthetic targets made at a known point away from the defaults: the fit of the
    parameters the report calls identified (the others held at the truth) covers each truth
    with its 90 % interval; a finished fit resumes without rerunning; another design is refused."""
    names = tuple(identified_in_committed_fit())
    assert names, "the committed fit identifies no parameter"
    truth = {n: BY_NAME[n].low + 0.3 * (BY_NAME[n].high - BY_NAME[n].low) for n in names}
    targets = dynamic_targets()
    observed = simulate(truth, 5, 1000, targets)
    kw = dict(population_size=60, generations=4, firms=1000, seed=3)
    result = fit(tmp_path, names, observed, resume=False, **kw)
    for r in result.posterior.itertuples():
        assert r.q05 <= truth[r.parameter] <= r.q95, r.parameter
    assert result.sample is not None and result.sample["weight"].sum() == pytest.approx(1.0)
    again = fit(tmp_path, names, observed, resume=True, **kw)  # finished: nothing reruns
    assert again.evaluations == result.evaluations
    with pytest.raises(ValueError, match="another design"):
        fit(tmp_path, names, observed, resume=True, **{**kw, "firms": 800})


def test_a_history_without_its_design_or_cut_short_is_refused_with_one_line(tmp_path):
    """A fit folder's history is continued only under the design it records (fit.json, written
    before the history): without that record, or cut short as it was made, it is refused,
    offering --fresh."""
    names = ("bm_loss_rate",)
    targets = dynamic_targets()
    observed = simulate({"bm_loss_rate": 0.03}, 1, 300, targets)
    kw = dict(population_size=4, generations=1, firms=300, seed=3)
    before = np.random.get_state()  # noqa: NPY002 - a caller's global state, which the fit must keep
    fit(tmp_path, names, observed, resume=False, **kw)
    after = np.random.get_state()  # noqa: NPY002
    assert np.array_equal(after[1], before[1]) and after[2:] == before[2:]
    design = (tmp_path / "fit.json").read_text()
    (tmp_path / "fit.json").unlink()
    with pytest.raises(ValueError, match=r"without a record of its design \(fit.json\); allowed: --fresh"):
        fit(tmp_path, names, observed, resume=True, **{**kw, "firms": 400})
    (tmp_path / "fit.json").write_text(design)
    (tmp_path / "abc.db").write_bytes(b"SQLite format 3\0" + bytes(84))
    with pytest.raises(ValueError, match=r"cannot be read \(DatabaseError: .*allowed: --fresh"):
        fit(tmp_path, names, observed, resume=True, **kw)
    again = fit(tmp_path, names, observed, resume=False, **kw)  # --fresh: anew, the record first
    assert again.generations == 1 and (tmp_path / "fit.json").read_text() == design
    # a history whose record of wall time was lost (killed as it began) resumes, counting anew
    (tmp_path / "wall_seconds.txt").unlink()
    more = fit(tmp_path, names, observed, resume=True, **{**kw, "generations": 2})
    assert more.generations == 2 and more.wall_seconds > 0


def _result() -> FitResult:
    post = pd.DataFrame(
        [
            {
                "parameter": "competence_learning",
                "median": 0.1,
                "mean": 0.1,
                "sd": 0.01,
                "q05": 0.08,
                "q95": 0.12,
                "prior_sd": 0.14,
                "sd_ratio": 0.07,
            }
        ]
    )
    sample = pd.DataFrame({"weight": [0.5, 0.25, 0.25], "competence_learning": [0.1, 0.09, 0.12]})
    return FitResult(post, 8, 12.5, 4000, sample, 321.0, 2)


def test_effective_sample_size_of_the_weights():
    assert effective_sample_size(np.ones(50)) == pytest.approx(50.0)
    assert effective_sample_size(np.array([1.0, 0.0, 0.0])) == pytest.approx(1.0)
    assert _result().ess == pytest.approx(1 / (0.25 + 0.0625 + 0.0625))


def test_parameter_set_is_versioned_and_round_trips(tmp_path):
    path = tmp_path / "set.toml"
    recovery = pd.DataFrame(
        [{"parameter": "competence_learning", "truth": 0.3, "sd_ratio": 0.2, "recovered": True}]
    )
    write_parameter_set(_result(), {"population": 200, "seed": 1}, path)
    write_parameter_set(_result(), {"population": 200, "seed": 1}, path, recovery)
    data = tomllib.loads(path.read_text())
    assert data["version"] == 2 and data["competence_learning"]["median"] == 0.1
    assert data["evaluations"] == 4000 and data["wall_seconds"] == 321.0 and data["workers"] == 2
    assert data["effective_sample_size"] == pytest.approx(2.667, abs=1e-3) and data["particles"] == 3
    assert data["competence_learning"]["recovery_covered"] is True
    assert data["not_identified"] == {}


def test_registry_defaults_are_the_committed_fit():
    fitted = tomllib.loads(PARAMETER_FILE.read_text())
    for name in FITTED:
        assert BY_NAME[name].default == pytest.approx(fitted[name]["median"])
        assert BY_NAME[name].source.startswith("calibrated: calibration/dynamic_parameters.toml")
    assert set(fitted["not_identified"]) <= set(FITTED)


def test_committed_posterior_sample_is_the_committed_fit():
    """calibration/posterior.csv: weights summing to 1, then every fitted parameter inside its
    registry range; its weighted median is the registry default (up to the sample's ties)."""
    sample = pd.read_csv(POSTERIOR_FILE, comment="#")
    fitted = tomllib.loads(PARAMETER_FILE.read_text())
    assert list(sample.columns) == ["weight", *FITTED]
    assert sample["weight"].sum() == pytest.approx(1.0) and (sample["weight"] >= 0).all()
    assert len(sample) == fitted["particles"]
    assert effective_sample_size(sample["weight"].to_numpy()) == pytest.approx(
        fitted["effective_sample_size"], rel=1e-3
    )
    for name in FITTED:
        x = sample[name].to_numpy()
        assert (x >= BY_NAME[name].low).all() and (x <= BY_NAME[name].high).all()
        order = np.argsort(x)
        cum = np.cumsum(sample["weight"].to_numpy()[order])
        assert x[order][np.searchsorted(cum, 0.5)] == pytest.approx(fitted[name]["median"], rel=1e-4)

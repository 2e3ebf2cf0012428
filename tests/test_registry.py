"""The registry is complete, sourced and documented."""

import re
import subprocess
import tomllib
from pathlib import Path

import pytest

from mittelbau.core.parameters import BY_NAME, REGISTRY
from mittelbau.core.registry_table import registry_table
from mittelbau.core.scenario import make_params


def test_every_parameter_has_unit_range_and_source():
    for p in REGISTRY:
        assert p.unit and p.description and p.source, p.name
        assert p.source.startswith(("sources", "assumption", "model brief", "calibrated:")), p.name
        if not p.choices:
            assert p.low <= p.default <= p.high, p.name
    make_params({})  # defaults validate


def test_every_citation_names_an_entry_of_the_sources_record(root):
    """Code, data, docs and tests cite `sources §N.M`; each must be an entry (or `§N` a
    section) of the project's own record, calibration/sources.toml."""
    record = tomllib.loads((root / "calibration" / "sources.toml").read_text("utf-8"))
    known = set(record["entry"]) | set(record["section"])
    cited: dict[str, str] = {}
    for path in _tracked(root):
        if path.suffix in {".py", ".toml", ".md", ".ipynb"}:
            for c in re.findall(r"sources §(\d+(?:\.\d+)?)", path.read_text("utf-8")):
                cited.setdefault(c, str(path.relative_to(root)))
    assert len(cited) > 30  # the registry, data files and docs cite the record throughout
    unknown = {c: f for c, f in cited.items() if c not in known}
    assert not unknown, f"citations of entries the record does not have: {unknown}"
    for key, entry in record["entry"].items():
        assert entry["study"] in record["studies"], key
        for fig in entry["figures"]:
            assert "value" in fig or "low" in fig or "high" in fig, (key, fig["name"])


def test_no_tracked_file_reaches_outside_the_repository(root):
    """A user's clone has nothing beside it: no file of the project names a relative path that
    climbs out of the repository, nor an absolute path of a machine."""
    climbing = re.compile(r"(?<![\w.])((?:\.\./)+)[\w.-]")
    absolute = re.compile(r"(?<![\w.~])/(?:work|root|home|tmp|opt)/")
    # a scenario name that tries to escape its output folder, refused on purpose by that test
    deliberate = {"tests/test_reliability.py: ../../e"}
    offenders = []
    for p in _tracked(root):
        if p.suffix in {".png", ".txt"} or p == Path(__file__).resolve():
            continue
        text = p.read_text("utf-8", errors="ignore")
        for m in climbing.finditer(text):
            if not (p.parent / m.group(1)).resolve().is_relative_to(root.resolve()):
                offenders.append(f"{p.relative_to(root)}: {m.group(0)}")
        offenders += [f"{p.relative_to(root)}: {m.group(0)}" for m in absolute.finditer(text)]
    assert [o for o in offenders if o not in deliberate] == []


def test_the_outside_path_check_catches_a_sibling_folder(root, tmp_path):
    """The rule above on a constructed case: one level up from the repository's root is out,
    one level up from a subfolder is in."""
    climbing = re.compile(r"(?<![\w.])((?:\.\./)+)[\w.-]")
    up = climbing.search("see ../elsewhere/notes.md").group(1)
    assert not (root / up).resolve().is_relative_to(root.resolve())
    assert (root / "docs" / up).resolve().is_relative_to(root.resolve())


def _tracked(root) -> list:
    files = subprocess.run(
        ["git", "ls-files"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split()
    return [root / f for f in files if (root / f).is_file()]


def test_odd_holds_the_current_parameter_table(root):
    odd = (root / "docs" / "odd.md").read_text()
    assert registry_table("md") in odd, "regenerate with: python -m mittelbau.core.registry_table docs/odd.md"


def test_motive_shares_cannot_exceed_one_anywhere_in_their_ranges():
    """sources §4.2: intrinsic = 1 − peers − customers − competition must stay ≥ 0 for every
    value a scenario or a sensitivity sample may take."""
    highest = sum(
        BY_NAME[n].high for n in ("bm_weight_peers", "bm_weight_customers", "bm_weight_competition")
    )
    assert highest <= 1.0
    assert make_params({}).bm_weight_intrinsic == pytest.approx(0.34)


def test_public_api_resolves_to_the_documented_objects():
    import types

    import mittelbau

    for name in mittelbau.__all__:
        value = getattr(mittelbau, name)
        assert not isinstance(value, types.ModuleType), name  # no submodule shadows a name
    # importing a submodule must not rebind a public name
    import mittelbau.experiments.runs

    assert callable(mittelbau.simulate) and mittelbau.simulate.__module__ == "mittelbau.experiments.runs"
    with pytest.raises(AttributeError):
        _ = mittelbau.no_such_name


def test_numpy_scalars_and_integral_floats_validate_where_an_integer_is_expected():
    import numpy as np

    from mittelbau.core.scenario import ScenarioError

    p = make_params({"customers_per_supplier": np.int64(4), "firms": 300.0, "exit_rate": np.float64(0.05)})
    assert (p.customers_per_supplier, p.firms, p.exit_rate) == (4, 300, 0.05)
    assert type(p.customers_per_supplier) is int and type(p.firms) is int
    for bad, allowed in (
        ({"firms": 300.5}, "an integer from 100 to 1000000"),
        ({"customers_per_supplier": np.int64(40)}, "an integer from 1 to 10"),
        ({"firms": True}, "an integer from 100"),
    ):
        with pytest.raises(ScenarioError, match=allowed):
            make_params(bad)


def test_roles_follow_the_groups_and_exploration_ranges_lie_within_validation():
    roles = {p.name: p.role for p in REGISTRY}
    assert roles["seed"] == roles["firms"] == roles["hollowing_threshold"] == "setting"
    assert roles["dt_adoption_factor"] == roles["customers_per_supplier"] == "uncertainty"
    assert roles["funding_budget_eur"] == roles["centres_reach"] == "lever"
    budget = BY_NAME["funding_budget_eur"]
    assert (budget.low, budget.high, budget.explore_low, budget.explore_high) == (0.0, 1e8, 0.0, 5e6)
    for p in REGISTRY:
        if not p.choices:
            assert p.low <= p.explore_low < p.explore_high <= p.high or p.low == p.high, p.name
    assert BY_NAME["dt_adoption_factor"].exploration is None


def test_no_exploration_range_samples_a_parameter_at_its_stand_in_value():
    """A 0 that stands for the region's own value (its mean service revenue share) is not a
    value of the parameter: experiments explore above it, or a Morris study's bottom level
    (Morris samples the range's ends) would run the region's mean while the analysis reads 0.
    The region's number of firms, whose 0 stands for its file's count, is explored over the
    file's range instead (`sensitivity.factors`)."""
    from SALib.sample import morris as morris_sample

    from mittelbau.core.parameters import BY_NAME
    from mittelbau.experiments.sensitivity import MORRIS_LEVELS, factors, problem

    assert BY_NAME["service_revenue_mean"].explore_low > 0
    chosen = factors(["service_revenue_mean", "exit_rate"])
    x = morris_sample.sample(problem(chosen), 10, num_levels=MORRIS_LEVELS, seed=1)
    assert x[:, 0].min() == BY_NAME["service_revenue_mean"].explore_low > 0

"""The registry is complete, sourced and documented."""

import re

import pytest

from mittelbau.parameters import BY_NAME, REGISTRY
from mittelbau.registry_table import registry_table
from mittelbau.scenario import make_params


def test_every_parameter_has_unit_range_and_source():
    for p in REGISTRY:
        assert p.unit and p.description and p.source, p.name
        assert p.source.startswith(("facts.md", "assumption", "model brief", "calibrated:")), p.name
        if not p.choices:
            assert p.low <= p.default <= p.high, p.name
    make_params({})  # defaults validate


def test_cited_sections_exist_in_facts(root):
    facts = root.parent / "shared" / "study" / "facts.md"
    if not facts.exists():
        pytest.fail("../shared/study/facts.md is missing beside the repository")
    text = facts.read_text()
    sections = set(re.findall(r"^## §(\d+)", text, re.M))
    numbered = set(re.findall(r"^(\d+\.\d+) ", text, re.M))
    sources = [p.source for p in REGISTRY]
    for f in (root / "model").rglob("*.toml"):
        sources.append(f.read_text())
    sources += [f.read_text() for f in (root / "calibration").glob("*.toml")]
    cited = set()
    for s in sources:
        cited |= set(re.findall(r"facts\.md §(\d+(?:\.\d+)?)", s))
    assert cited
    for c in cited:
        assert c in numbered or c in sections, c


def test_odd_holds_the_current_parameter_table(root):
    odd = (root / "docs" / "odd.md").read_text()
    assert registry_table("markdown") in odd, "regenerate with: mittelbau params"


def test_motive_shares_cannot_exceed_one_anywhere_in_their_ranges():
    """facts.md §4.2: intrinsic = 1 − peers − customers − competition must stay ≥ 0 for every
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
    import mittelbau.runs

    assert callable(mittelbau.simulate) and mittelbau.simulate.__module__ == "mittelbau.runs"
    with pytest.raises(AttributeError):
        _ = mittelbau.no_such_name

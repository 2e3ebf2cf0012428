"""A lever is one module with one spec: a new lever added as one file appears in the registry,
scenario validation, sensitivity groups, dashboard controls and captions, the planned cost,
the run's records and the EMA Workbench model — with nothing else edited."""

import json
import shutil
import subprocess
import sys
import textwrap

import pytest

from mittelbau.core.parameters import REGISTRY
from mittelbau.levers import SPECS, LeverSpec
from mittelbau.levers.funding import PARAMETERS as FUNDING_PARAMETERS

DUMMY = '''
"""Innovation vouchers: a lever of the spec test."""

from dataclasses import dataclass

import numpy as np

from mittelbau.core.registry_entry import Parameter
from mittelbau.levers.base import Lever, LeverSpec, LeverYear, first_in_random_order, in_target


@dataclass
class Vouchers(Lever):
    p: object = None
    name: str = "vouchers"

    def act(self, model, year, rng):
        p, s = self.p, model.state
        if not p.vouchers_start_year <= year <= p.vouchers_end_year:
            return LeverYear(np.zeros(self.n, dtype=bool), 0.0)
        users = first_in_random_order(in_target(p.vouchers_target, s), p.vouchers_number, rng)
        reached = np.zeros(self.n, dtype=bool)
        reached[users] = True
        return LeverYear(reached, 1000.0 * len(users), dt=np.where(reached, p.vouchers_hazard_factor, 1.0))


def _p(name, default, low, high, **kw):
    return Parameter(name, default, "-", "A setting of the test lever", "assumption: test", low, high,
                     group="vouchers", **kw)


SPEC = LeverSpec(
    name="vouchers",
    title="Vouchers",
    order=4,
    switch="vouchers_number",
    target="vouchers_target",
    parameters=(
        _p("vouchers_number", 0, 0, 500, control=True),
        Parameter("vouchers_target", "all", "-", "Who may use a voucher", "assumption: test",
                  choices=("all", "small"), group="vouchers", control=True),
        _p("vouchers_hazard_factor", 3.0, 1.0, 10.0),
        _p("vouchers_start_year", 2016, 2016, 2075),
        _p("vouchers_end_year", 2035, 2016, 2075),
    ),
    build=lambda params, n, rng: Vouchers(n=n, p=params),
    yearly_cost=lambda p: 1000.0 * p.vouchers_number,
    caption=lambda p: f"vouchers {p.vouchers_number} a year (for {p.vouchers_target})",
)
'''

CHECK = """
import json
from mittelbau.core.parameters import BY_NAME, REGISTRY
from mittelbau.core.scenario import ScenarioError, make_params
from mittelbau.dashboard.captions import settings
from mittelbau.dashboard.controls import model_params
from mittelbau.dashboard.paired import PairedModel
from mittelbau.experiments.sensitivity import factors, problem
from mittelbau.levers import LEVER_NAMES, planned_public_cost

found = {"levers": list(LEVER_NAMES)}
found["registry"] = {p.name: [p.group, p.role] for p in REGISTRY if p.name.startswith("vouchers_")}
found["valid"] = make_params({"vouchers_number": 7}).vouchers_number
errors = []
for bad in ({"vouchers_number": -1}, {"vouchers_start_year": 2030, "vouchers_end_year": 2020}):
    try:
        make_params(bad)
    except ScenarioError as exc:
        errors.append(str(exc))
found["errors"] = errors
found["uncertain"] = [p.name for p in factors() if p.name.startswith("vouchers_")]
levers = factors(include_levers=True)
found["lever_factors"] = [p.name for p in levers if p.name.startswith("vouchers_")]
spec = problem(levers, grouped=True)
found["groups"] = sorted(set(spec["groups"]))
controls = model_params()
found["control"] = controls["vouchers_number"]["label"]
found["planned"] = planned_public_cost(make_params({"vouchers_number": 10, "years": 5}))
model = PairedModel(firms=300, years=2, seed=3, vouchers_number=20)
model.step()
found["caption"] = settings(model)
found["records"] = sorted({r[1] for r in model.lever_records})
from mittelbau.experiments.ema import ema_model
found["ema_levers"] = [lv.name for lv in ema_model().levers if lv.name.startswith("vouchers_")]
print(json.dumps(found))
"""


def test_a_lever_added_as_one_module_appears_everywhere(tmp_path, root):
    package = tmp_path / "mittelbau"
    skip = shutil.ignore_patterns("__pycache__")
    shutil.copytree(root / "model", package, ignore=skip)
    shutil.copytree(root / "calibration", package / "calibration", ignore=skip)
    (package / "levers" / "vouchers.py").write_text(textwrap.dedent(DUMMY), encoding="utf-8")
    res = subprocess.run(
        [sys.executable, "-c", CHECK],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "MPLBACKEND": "Agg"},
        timeout=600,
    )
    assert res.returncode == 0, res.stderr
    found = json.loads(res.stdout.strip().splitlines()[-1])
    assert found["levers"] == ["funding", "cooperation", "centres", "vouchers"]
    assert found["registry"] == {
        n: ["vouchers", "lever"]
        for n in (
            "vouchers_number",
            "vouchers_target",
            "vouchers_hazard_factor",
            "vouchers_start_year",
            "vouchers_end_year",
        )
    }
    assert found["valid"] == 7
    assert "'vouchers_number' = -1" in found["errors"][0] and "from 0 to 500" in found["errors"][0]
    assert "vouchers_end_year = 2020 is before vouchers_start_year = 2030" in found["errors"][1]
    assert found["uncertain"] == []  # a lever's parameters are never uncertainties
    assert found["lever_factors"] == ["vouchers_number", "vouchers_hazard_factor"]
    assert {"funding", "cooperation", "centres", "vouchers"} <= set(found["groups"])
    assert found["control"] == "Vouchers: a setting of the test lever"
    assert found["planned"] == 10 * 1000.0 * 5  # five active years of the horizon
    assert "vouchers 20 a year (for all)" in found["caption"]
    assert found["records"] == ["vouchers"]
    assert found["ema_levers"] == ["vouchers_number", "vouchers_target", "vouchers_hazard_factor"]


def test_the_specs_spell_each_lever_one_way():
    for spec in SPECS:
        assert all(p.name.startswith(f"{spec.name}_") and p.group == spec.name for p in spec.parameters)
    lever_entries = [p for p in REGISTRY if p.role == "lever"]
    assert [p.name for p in lever_entries] == [p.name for s in SPECS for p in s.parameters]
    assert {p.group for p in lever_entries} == {"funding", "cooperation", "centres"}


def test_a_spec_with_a_misnamed_parameter_is_refused():
    with pytest.raises(ValueError, match="do not start with 'grants_'"):
        LeverSpec(
            name="grants",
            title="Grants",
            order=9,
            switch="funding_budget_eur",
            target="funding_target",
            parameters=FUNDING_PARAMETERS,
            build=lambda params, n, rng: None,
            yearly_cost=lambda p: 0.0,
            caption=lambda p: "",
        )

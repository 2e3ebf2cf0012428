"""Docking: the vectorised step against the per-firm reference (tests/reference_model.py)."""

import numpy as np
import pytest

from mittelbau.core.mechanisms import NAMES
from mittelbau.core.model import MittelbauModel

from reference_model import ReferenceModel

FIRMS, YEARS, SEEDS = 1000, 10, range(16)
# every mechanism on, at rates that make each of them act visibly within ten years
MECHANISMS = {f"mech_{n}": "on" for n in NAMES} | {
    "capture_rate": 0.3,
    "bar_growth": 0.5,
    "slump_delay": 2,
    "leap_rate": 0.05,
}
STRUCTURES = pytest.mark.parametrize("structure", [{}, MECHANISMS], ids=["mechanisms off", "mechanisms on"])


@pytest.mark.slow
@STRUCTURES
def test_vectorised_step_docks_with_per_firm_reference(structure):
    ref, vec = [], []
    for seed in SEEDS:
        r = ReferenceModel(firms=FIRMS, seed=seed, years=YEARS, **structure)
        r.run_for(YEARS)
        ref.append(r.history)
        m = MittelbauModel(firms=FIRMS, seed=seed, years=YEARS, **structure).run()
        shares = m.datacollector.get_model_vars_dataframe()[["stage1", "stage2", "stage3"]]
        vec.append(shares.iloc[m.runup_years :])  # the projection from the 2015 state
    ref, vec = np.array(ref), np.array(vec)
    assert np.array_equal(ref[:, 0], vec[:, 0])  # same initial population
    diff = ref.mean(axis=0) - vec.mean(axis=0)
    se = np.sqrt(ref.var(axis=0, ddof=1) / len(SEEDS) + vec.var(axis=0, ddof=1) / len(SEEDS))
    z = np.abs(diff[1:]) / np.maximum(se[1:], 1e-9)
    assert z.max() < 4.0, (diff, se)
    assert np.abs(diff).max() < 0.02
    # the trajectories really move, so agreement is not trivial
    assert np.abs(vec.mean(axis=0)[-1] - vec.mean(axis=0)[0]).max() > 0.05


@pytest.mark.slow
@STRUCTURES
def test_docking_detects_a_different_mechanism(structure):
    """The same comparison separates a model with twice the BM adoption hazards: it moves firms
    into stage 3 (with the mechanisms on, lock-in holds part of stage 1 back, so the change
    shows in stage 3 more than in stage 1)."""
    base = 1.0  # the run-up's pace (the calibrated factor is 3.07: doubled, beyond its range)
    ref, vec = [], []
    for seed in SEEDS:
        r = ReferenceModel(firms=FIRMS, seed=seed, years=YEARS, bm_adoption_factor=2 * base, **structure)
        r.run_for(YEARS)
        ref.append(r.history[-1])
        m = MittelbauModel(firms=FIRMS, seed=seed, years=YEARS, bm_adoption_factor=base, **structure).run()
        vec.append(m.shares)
    ref, vec = np.array(ref), np.array(vec)
    diff = ref.mean(axis=0) - vec.mean(axis=0)
    z = diff / np.sqrt(ref.var(axis=0, ddof=1) / len(SEEDS) + vec.var(axis=0, ddof=1) / len(SEEDS))
    assert diff[0] < 0 and z[0] < -4.0, (diff, z)  # stage 1 empties faster
    assert diff[2] > 0.03 and z[2] > 4.0, (diff, z)  # beyond the docking test's bounds (0.02, 4)

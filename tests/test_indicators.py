import numpy as np
import pytest

from mittelbau.core.indicators import (
    hollowing_ratio,
    is_hollowed,
    polarisation_index,
    stage_shares,
    upward_rate,
)


def test_stage_shares():
    assert np.allclose(stage_shares(np.array([1, 1, 2, 3])), [0.5, 0.25, 0.25])


@pytest.mark.parametrize(
    ("shares", "expected"),
    [
        ((1, 0, 0), 0.0),
        ((0.5, 0, 0.5), 1.0),
        ((0, 1, 0), 0.0),
        ((1 / 3, 1 / 3, 1 / 3), 2 * 8 / 27),
        (
            (0.35, 0.28, 0.38),
            2 * (0.35**2 * (0.28 + 2 * 0.38) + 0.28**2 * (0.35 + 0.38) + 0.38**2 * (2 * 0.35 + 0.28)),
        ),
    ],
)
def test_polarisation_index(shares, expected):
    assert polarisation_index(np.array(shares)) == pytest.approx(expected)


def test_polarisation_rises_as_the_middle_empties():
    assert polarisation_index(np.array([0.4, 0.2, 0.4])) > polarisation_index(np.array([0.35, 0.3, 0.35]))


def test_hollowing_ratio_and_verdict():
    assert hollowing_ratio(np.array([0.35, 0.28, 0.38])) == pytest.approx(0.8)
    assert is_hollowed(np.array([0.45, 0.1, 0.45]), 0.5)
    assert not is_hollowed(np.array([0.05, 0.1, 0.85]), 0.5)  # middle moved up: no two worlds
    # hollowed means the ratio below the threshold: at it, not yet
    assert hollowing_ratio(np.array([0.4, 0.2, 0.4])) == 0.5
    assert not is_hollowed(np.array([0.4, 0.2, 0.4]), 0.5)
    assert is_hollowed(np.array([0.4, 0.2, 0.4]), 0.5 + 1e-9)
    assert hollowing_ratio(np.array([0.0, 0.3, 0.7])) == float("inf")


def test_upward_rate():
    t = np.zeros((4, 4), int)
    t[1, 1], t[1, 2], t[1, 3], t[1, 0] = 70, 20, 5, 5
    assert upward_rate(t) == pytest.approx(0.25)
    assert np.isnan(upward_rate(np.zeros((4, 4), int)))  # no stage-1 firm: no rate, not 0


@pytest.mark.parametrize(
    ("hollowed", "first", "said"),
    [
        ((False, False, False), None, "does not hollow out by 2017"),
        ((False, True, True), 2016, "hollows out by 2016 and still is in 2017"),
        # below the threshold for a while only: said, with the horizon's state
        ((False, True, False), 2016, "hollows out in 2016 but is no longer hollowed out in 2017"),
        # a threshold under which the starting state itself is hollow: said as such
        ((True, True, False), 2015, "hollowed out already in 2015, the starting state, but is not in 2017"),
        ((True, True, True), 2015, "hollowed out already in 2015, the starting state, and still is in 2017"),
    ],
)
def test_the_verdict_names_a_middle_hollow_from_the_start(hollowed, first, said):
    import pandas as pd

    from mittelbau.experiments.outputs import verdict

    ind = pd.DataFrame(
        {
            "year": [2015, 2016, 2017],
            "stage1": [0.4, 0.45, 0.45],
            "stage2": [0.2, 0.1, 0.1],
            "stage3": [0.4, 0.45, 0.45],
            "hollowed": hollowed,
        }
    )
    year, sentence = verdict(ind, 0.6)
    assert year == first and said in sentence

"""What the rising bar's training, platform capture and the delayed slump do to constructed firms."""

import numpy as np
import pytest

from mittelbau.core.categories import COMPLEXITIES, START_YEAR
from mittelbau.core.mechanisms import SLUMP_RAMP_YEARS, Mechanisms, capture, delayed_slump, start_of_year
from mittelbau.core.population import synthesise
from mittelbau.core.region_data import load_region
from mittelbau.core.scenario import make_params

FIRST = START_YEAR + 1  # the first projected year


def firms(n, seed=0):
    return synthesise(load_region("stuttgart"), n, np.random.default_rng(seed))


def exposed(n):
    """`n` stage-1 makers of simple products with a threatened BM, none a platform supplier."""
    table = firms(n)
    table.bm[:] = False
    table.dt[:] = False
    table.complexity[:] = COMPLEXITIES.index("simple")
    table.threatened[:] = True
    table.platform[:] = False
    return table


# ---- the rising bar: training ------------------------------------------------------------------
def test_training_adds_techniques_to_training_firms_without_dt_only():
    """Firms that train and have no DT add `training_learning` techniques (up to the ten asked
    about); firms that train but already use DT, and firms that do not train, keep theirs."""
    table = firms(6)
    table.trains = np.array([True, True, True, True, False, False])
    table.dt = np.array([False, False, True, False, False, True])
    table.bm = np.array([False, True, False, False, False, False])  # a BM does not matter
    table.techniques = np.array([2.0, 4.0, 2.0, 9.75, 2.0, 2.0])
    p = make_params({"mech_rising_bar": "on", "training_learning": 0.5})
    Mechanisms(p).after_learning(table)
    np.testing.assert_array_equal(table.techniques, [2.5, 4.5, 2.0, 10.0, 2.0, 2.0])
    # a second year: the firm at ten stays there, the others without DT keep learning
    Mechanisms(p).after_learning(table)
    np.testing.assert_array_equal(table.techniques, [3.0, 5.0, 2.0, 10.0, 2.0, 2.0])


def test_training_leaves_dt_users_alone_in_a_whole_population():
    """On a synthesised population: every training firm without DT gains exactly
    `training_learning` (below the maximum), no DT user and no firm that does not train gains."""
    table = firms(600, seed=3)
    rng = np.random.default_rng(4)
    table.trains = rng.random(len(table)) < 0.5
    table.techniques = np.minimum(table.techniques, 9.0)
    assert (table.trains & table.dt).sum() > 20 and (table.trains & ~table.dt).sum() > 20
    before = table.techniques.copy()
    Mechanisms(make_params({"mech_rising_bar": "on", "training_learning": 0.25})).after_learning(table)
    gained = table.techniques - before
    np.testing.assert_array_equal(gained[table.trains & ~table.dt], 0.25)
    np.testing.assert_array_equal(gained[table.dt | ~table.trains], 0.0)
    # with the rising bar off nobody trains
    again = table.techniques.copy()
    Mechanisms(make_params({"training_learning": 0.25})).after_learning(table)
    np.testing.assert_array_equal(table.techniques, again)


# ---- platform capture --------------------------------------------------------------------------
def test_capture_probability_is_one_minus_exp_of_rate_times_pressure():
    """An exposed firm is captured when its draw lies below 1 − exp(−`capture_rate` · pressure):
    draws just below the threshold are captured, just above not; at zero pressure no draw is."""
    rate = 0.2
    pressure = np.array([0.0, 0.5, 1.0, 2.0, 5.0])
    threshold = 1.0 - np.exp(-rate * pressure)  # 0, 0.0952, 0.1813, 0.3297, 0.6321
    assert threshold[-1] == pytest.approx(0.6321, abs=1e-4)
    p = make_params({"capture_rate": rate})
    below = exposed(5)
    new = capture(below, pressure, p, threshold * (1 - 1e-9))
    np.testing.assert_array_equal(new, [False, True, True, True, True])
    np.testing.assert_array_equal(below.platform, new)
    above = exposed(5)
    new = capture(above, pressure, p, threshold + 1e-9)
    assert not new.any() and not above.platform.any()
    # zero pressure: not even a draw of 0 is captured
    zero = exposed(5)
    assert not capture(zero, 0.0, p, np.zeros(5)).any()


def test_captured_share_follows_the_pressure():
    """Over many exposed firms with uniform draws, the share captured in a year is
    1 − exp(−rate · pressure) within sampling error, for each pressure."""
    n, rate = 20_000, 0.3
    p = make_params({"capture_rate": rate})
    rng = np.random.default_rng(7)
    for pressure in (0.0, 0.5, 2.0):
        table = exposed(n)
        share = capture(table, pressure, p, rng.random(n)).mean()
        expected = 1.0 - np.exp(-rate * pressure)
        assert abs(share - expected) <= 4 * np.sqrt(expected * (1 - expected) / n) + 1e-12, pressure
    assert share > 0.4  # 1 − e^−0.6 ≈ 0.45 at pressure 2


def test_capture_at_the_start_of_the_year_reads_each_firms_pressure():
    """Through the year's hook: only firms under pressure are captured, and the captured get
    the platform suppliers' adoption and exit multipliers."""
    p = make_params(
        {
            "mech_platform_capture": "on",
            "capture_rate": 0.5,
            "capture_adoption_factor": 0.25,
            "capture_exit_factor": 3.0,
        }
    )
    table = exposed(4)
    pressure = np.array([0.0, 0.0, 1.0, 1.0])
    u = np.array([0.0, 0.3, 0.3, 0.5])  # threshold at pressure 1: 1 − e^−0.5 ≈ 0.393
    year = start_of_year(
        table, FIRST, pressure, np.zeros(4, bool), lambda: np.zeros(4), u, {"platform_capture": True}, p
    )
    np.testing.assert_array_equal(table.platform, [False, False, True, False])
    np.testing.assert_allclose(year.exit, [1.0, 1.0, 3.0, 1.0])
    np.testing.assert_allclose(year.dt_gain, [1.0, 1.0, 0.25, 1.0])
    np.testing.assert_allclose(year.bm_gain, [1.0, 1.0, 0.25, 1.0])


# ---- the delayed slump --------------------------------------------------------------------------
@pytest.mark.parametrize("delay", [0, 4])
def test_delayed_slump_first_acts_the_year_after_its_delay(delay):
    """The delay counts from the first projected year (2016): the BM gain multiplier of firms
    without a service strategy is 1 up to and including 2016 + delay, then falls by
    `slump_depth` / 5 a year to 1 − `slump_depth`; firms with a service strategy keep 1."""
    depth = 0.5
    p = make_params({"slump_delay": delay, "slump_depth": depth})
    table = firms(2)
    table.service_strategy = np.array([False, True])
    start = FIRST + delay  # the last year without the slump
    expected = {
        FIRST: 1.0,
        start: 1.0,
        start + 1: 0.9,
        start + 2: 0.8,
        start + 4: 0.6,
        start + SLUMP_RAMP_YEARS: 0.5,
        start + SLUMP_RAMP_YEARS + 10: 0.5,
    }
    for year, m in expected.items():
        np.testing.assert_allclose(delayed_slump(table, year, p), [m, 1.0], err_msg=str(year))
    for year in range(FIRST, start + 1):
        np.testing.assert_array_equal(delayed_slump(table, year, p), [1.0, 1.0])


def test_the_slump_reaches_the_bm_gain_of_the_year():
    """Through the year's hook the slump multiplies the BM gain only, from the year after the
    delay on."""
    p = make_params({"mech_delayed_slump": "on", "slump_delay": 2, "slump_depth": 1.0})
    table = firms(2)
    table.service_strategy = np.array([False, True])

    def year(y):
        return start_of_year(
            table, y, 1.0, np.zeros(2, bool), lambda: np.zeros(2), np.ones(2), {"delayed_slump": True}, p
        )

    np.testing.assert_array_equal(year(FIRST + 2).bm_gain, [1.0, 1.0])
    hit = year(FIRST + 3)
    np.testing.assert_allclose(hit.bm_gain, [0.8, 1.0])
    np.testing.assert_array_equal(hit.dt_gain, [1.0, 1.0])
    np.testing.assert_allclose(year(FIRST + 7).bm_gain, [0.0, 1.0])

"""Random streams spawned through `streams.Seeds` are numpy's, bit for bit, whether their
seeds are hashed together (`settle`) or one at a time."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mittelbau.core import batch as batch_module
from mittelbau.core import model as model_module
from mittelbau.core import streams
from mittelbau.core.batch import ModelBatch
from mittelbau.core.model import Cohort, MittelbauModel, _RunYear
from mittelbau.core.scenario import make_params
from mittelbau.core.streams import SETTLE_MIN, Seeds, generator, settle

entropy = st.one_of(
    st.integers(0, 2**32 - 1),
    st.integers(0, 2**200),
    st.lists(st.integers(0, 2**64), min_size=1, max_size=6),
)
keys = st.lists(st.integers(0, 2**40), max_size=7).map(tuple)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(entropy, keys), min_size=SETTLE_MIN, max_size=3 * SETTLE_MIN))
def test_seeds_hashed_together_are_numpys(cases):
    seeds = [Seeds(e, k) for e, k in cases]
    for s in seeds[::3]:
        assert s.pool is not None  # some pools known before, their states not
    settle(seeds)  # at least SETTLE_MIN: one array pass
    for s, (e, k) in zip(seeds, cases, strict=True):
        ref = np.random.SeedSequence(e, spawn_key=k)
        assert np.array_equal(s.pool, ref.pool)
        assert np.array_equal(s.generate_state(4, np.uint64), ref.generate_state(4, np.uint64))
        assert np.array_equal(s.generate_state(5), ref.generate_state(5))


@settings(max_examples=30, deadline=None)
@given(entropy, st.lists(st.integers(1, 4), min_size=1, max_size=5))
def test_spawned_generators_draw_numpys_numbers(e, spawns):
    """A tree of spawns from a root, with the children's seeds peeked and hashed together
    before they are spawned, draws what numpy's generators draw."""
    ours, ref = generator(Seeds(e)), np.random.default_rng(np.random.SeedSequence(e))
    for n in spawns:
        seq = ours.bit_generator.seed_seq
        first = seq.n_children_spawned
        peek = [seq.child(first + i) for i in range(n)]
        settle(peek + [c.child(0) for c in peek] + [Seeds(i) for i in range(SETTLE_MIN)])
        for a, b in zip(ours.spawn(n), ref.spawn(n), strict=True):
            assert np.array_equal(a.random(3), b.random(3))
            side_a, side_b = a.spawn(1)[0], b.spawn(1)[0]
            assert np.array_equal(side_a.integers(2**62, size=3), side_b.integers(2**62, size=3))
        assert np.array_equal(ours.random(2), ref.random(2))


def test_spawning_past_children_peeked_out_of_order_gives_numpys_seeds():
    """Children made before they are spawned (`child`) are handed out by `spawn` in their
    place among children made anew, and a child index beyond 32 bits takes two words."""
    seq, ref = Seeds(2**70 + 5, (3,)), np.random.SeedSequence(2**70 + 5, spawn_key=(3,))
    peeked = seq.child(2)
    kids = seq.spawn(4)
    assert kids[2] is peeked
    assert [k.spawn_key for k in kids] == [(3, i) for i in range(4)]
    far = np.random.SeedSequence(2**70 + 5, spawn_key=(3, 2**40))
    for a, b in zip([*kids, seq.child(2**40)], [*ref.spawn(4), far], strict=True):
        assert np.array_equal(a.generate_state(4, np.uint64), b.generate_state(4, np.uint64))
    with pytest.raises(ValueError, match=r"child 3 of .* was spawned"):
        seq.child(3)


def test_a_runs_batch_streams_are_its_own_generator():
    """`batch_streams` gives a run the generator numpy gives its seed, spawning through
    `Seeds`; after the run's first draws it is an error."""
    ours = MittelbauModel(firms=100, seed=31, run_up=False, populate=False)
    ours.batch_streams()
    ref = MittelbauModel(firms=100, seed=31, run_up=False, populate=False)
    assert isinstance(ours.rng.bit_generator.seed_seq, Seeds)
    assert not isinstance(ref.rng.bit_generator.seed_seq, Seeds)
    for a, b in zip(ours.rng.spawn(2), ref.rng.spawn(2), strict=True):
        assert np.array_equal(a.random(4), b.random(4))
    assert np.array_equal(ours.rng.random(4), ref.rng.random(4))
    built = MittelbauModel(firms=100, seed=31, run_up=False)
    with pytest.raises(ValueError, match="batch_streams after populate"):
        built.batch_streams()


def test_a_batch_hashes_every_yearly_stream_before_its_runs_spawn_them(monkeypatch):
    """The seeds `_RunYear.seeds` (settled a few years ahead) and
    `_RunYear.economics_seeds` (each year) name are all those a year draws from, and
    `MittelbauModel.populate_seeds` those a run spawns as it is populated: building and
    stepping a batch (run-up and projection, economics, levers and mechanisms included)
    hashes each of them in `settle` before it is spawned, none alone."""
    state = {"advance": False, "populate": False, "settle": False}
    alone = []
    numpy_hash, advance, settle_seeds = Seeds._numpy, Cohort.advance, model_module.settle
    populate, batch_settle = MittelbauModel.populate, batch_module.settle

    def hashed(self):
        if (state["advance"] or state["populate"]) and not state["settle"]:
            alone.append(self)
        return numpy_hash(self)

    def within(key, call):
        def wrapped(*args):
            state[key] = True
            try:
                return call(*args)
            finally:
                state[key] = False

        return wrapped

    monkeypatch.setattr(Seeds, "_numpy", hashed)
    monkeypatch.setattr(Cohort, "advance", within("advance", advance))
    monkeypatch.setattr(model_module, "settle", within("settle", settle_seeds))
    monkeypatch.setattr(MittelbauModel, "populate", within("populate", populate))
    monkeypatch.setattr(batch_module, "settle", within("settle", batch_settle))
    points = [
        {"firms": 100, "years": 3, "seed": s, "funding_budget_eur": 5e5 * (s % 2), "mech_leapfrog": "on"}
        for s in range(8)
    ]
    batch = ModelBatch([make_params(p) for p in points])
    assert len(batch.runs) * len(_RunYear.seeds(batch.runs[0], False)) >= SETTLE_MIN
    batch.run()
    assert batch.runs[0].economics is not None and len(batch.runs[1].lever_records) > 0
    assert alone == []


def test_bad_entropy_and_dtype_are_errors():
    with pytest.raises(ValueError, match="seed entropy = -1"):
        Seeds(-1).assembled()
    with pytest.raises(ValueError, match="allowed: uint32, uint64"):
        streams._generate(np.zeros((1, 4), np.uint32), 2, np.int64)

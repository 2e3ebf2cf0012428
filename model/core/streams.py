"""Random streams spawned as numpy's `SeedSequence` spawns them, with the seeding hash of many
streams computed together.

A run spawns up to eight streams a year (its core, entry, lever and mechanism streams and
their side streams). Spawned one at a time through `np.random.SeedSequence`, as a run alone
spawns them, each costs about 8 µs of hashing and bookkeeping, a tenth of a batched run's
time. `Seeds` is a spawnable seed sequence of numpy's algorithm (O'Neill's `seed_seq` variant:
entropy and spawn key mixed into a pool of four 32-bit words, the generator state hashed from
the pool) whose children are plain objects until their state is needed: the runs of a batch
spawn through it (`MittelbauModel.batch_streams`), and `settle` hashes the pools and states of
the year's seeds of all of them in one pass of array operations; a generator made from a
settled seed costs about 1 µs. Every stream is the one numpy gives for the same seed and spawn
key, bit for bit (tested against `np.random.SeedSequence`); seeds not settled beforehand are
hashed by numpy itself.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.random.bit_generator import ISpawnableSeedSequence

# numpy's SeedSequence constants (numpy/random/bit_generator.pyx)
_POOL = 4
_INIT_A = 0x43B0D7E5
_MULT_A = 0x931E8875
_INIT_B = 0x8B51F9DD
_MULT_B = 0x58F38DED
_MIX_L = np.uint32(0xCA01F9DD)
_MIX_R = np.uint32(0x4973F715)
_MASK = 0xFFFFFFFF
# below this many seeds numpy's own hashing, one seed at a time, is faster than one array pass
SETTLE_MIN = 24


def _words(value: int) -> list[int]:
    """A non-negative integer as numpy's seed words: 32-bit words, least significant first."""
    if value < 0:
        raise ValueError(f"seed entropy = {value} is invalid; allowed: integers 0 or more")
    words = [value & _MASK]
    value >>= 32
    while value:
        words.append(value & _MASK)
        value >>= 32
    return words


def _entropy_words(entropy: int | Sequence[int]) -> list[int]:
    if isinstance(entropy, (int, np.integer)):
        return _words(int(entropy))
    return [w for e in entropy for w in _words(int(e))]


class Seeds(ISpawnableSeedSequence):
    """A seed sequence of numpy's algorithm with default pool size: `entropy` (an integer or
    a sequence of them) and `spawn_key`. `spawn(n)` gives the next n children; `child(i)`
    makes a child not spawned yet (kept until it is), so that its seed can be settled before;
    the pool and the state a bit generator reads are hashed on first use, or for many seeds at
    once by `settle`."""

    __slots__ = (
        "_children",
        "_pool",
        "_prefix",
        "_state",
        "_words",
        "entropy",
        "n_children_spawned",
        "spawn_key",
    )

    def __init__(
        self,
        entropy: int | Sequence[int],
        spawn_key: tuple[int, ...] = (),
        _words: tuple[int, ...] | None = None,
    ) -> None:
        self.entropy = entropy
        self.spawn_key = tuple(spawn_key)
        self.n_children_spawned = 0
        self._children: dict[int, Seeds] | None = None  # made, not spawned yet (`child`)
        self._words = _words  # the assembled entropy words, when known
        self._prefix: tuple[int, ...] | None = None  # the children's words but their index
        self._pool: np.ndarray | None = None
        self._state: np.ndarray | None = None

    @property
    def pool_size(self) -> int:
        return _POOL

    @property
    def pool(self) -> np.ndarray:
        if self._pool is None:
            self._pool = self._numpy().pool
        return self._pool

    def _numpy(self) -> np.random.SeedSequence:
        return np.random.SeedSequence(self.entropy, spawn_key=self.spawn_key)

    def assembled(self) -> tuple[int, ...]:
        """The entropy words the pool mixes: the run entropy (padded to the pool size when a
        spawn key follows) and the spawn key."""
        if self._words is None:
            run = _entropy_words(self.entropy)
            key = [w for k in self.spawn_key for w in _words(int(k))]
            if key and len(run) < _POOL:
                run = run + [0] * (_POOL - len(run))
            self._words = tuple(run + key)
        return self._words

    def child(self, i: int) -> Seeds:
        """Child `i`, not spawned yet: made once and kept until it is spawned (so that its
        seed can be hashed with others before, `settle`)."""
        if i < self.n_children_spawned:
            raise ValueError(f"child {i} of {self!r} was spawned; allowed: {self.n_children_spawned} or more")
        if self._children is None:
            self._children = {}
        kid = self._children.get(i)
        if kid is None:
            kid = self._children[i] = self._make(i)
        return kid

    def _make(self, i: int) -> Seeds:
        if self._prefix is None:
            run = _entropy_words(self.entropy)
            key = [w for k in self.spawn_key for w in _words(int(k))]
            self._prefix = tuple(run + [0] * (_POOL - len(run)) + key)
        words = (*self._prefix, i) if 0 <= i <= _MASK else (*self._prefix, *_words(i))
        return Seeds(self.entropy, (*self.spawn_key, i), words)

    def spawn(self, n_children: int) -> list[Seeds]:
        first = self.n_children_spawned
        self.n_children_spawned += n_children
        kept = self._children
        if not kept:
            return [self._make(i) for i in range(first, first + n_children)]
        # a child made before (`child`) is no longer kept here once spawned
        return [kept.pop(i, None) or self._make(i) for i in range(first, first + n_children)]

    def generate_state(self, n_words: int, dtype: type = np.uint32) -> np.ndarray:
        if n_words == 4 and np.dtype(dtype) == np.uint64:
            settle([self])
            return self._state
        return self._numpy().generate_state(n_words, dtype)

    def __repr__(self) -> str:
        return f"Seeds(entropy={self.entropy!r}, spawn_key={self.spawn_key!r})"


def generator(seeds: np.random.SeedSequence | Seeds) -> np.random.Generator:
    """numpy's default generator (PCG64) seeded by `seeds` (numpy's seed sequence or `Seeds`)."""
    return np.random.Generator(np.random.PCG64(seeds))


def _constants(init: int, mult: int, count: int) -> np.ndarray:
    """The hash constants of `count` successive hashes: c[0] = init, c[k + 1] = c[k] * mult."""
    out = [init]
    for _ in range(count):
        out.append((out[-1] * mult) & _MASK)
    return np.array(out, dtype=np.uint32)


# enough constants for keys of up to 60 words (deeper seeds take numpy's own hashing)
_MOST_WORDS = 64
_CONST_A = _constants(_INIT_A, _MULT_A, _POOL * _MOST_WORDS)
_CONST_B = _constants(_INIT_B, _MULT_B, 2 * _MOST_WORDS)


def _hashmix(value: np.ndarray, k: int, n: int) -> np.ndarray:
    """numpy's `hashmix` of `value` by the hash calls k … k + n − 1 (one per row of the result)."""
    value = value ^ _CONST_A[k : k + n, None]
    value = value * _CONST_A[k + 1 : k + n + 1, None]
    return value ^ (value >> np.uint32(16))


def _mix(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    r = _MIX_L * x - _MIX_R * y
    return r ^ (r >> np.uint32(16))


def _pools(words: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The pools (one row each) of seeds whose assembled entropy is the first `lengths[i]`
    words of row i of `words` (zero beyond): numpy's `mix_entropy` of every row at once. Each
    source word's hashes into the other pool words do not change the source, so they run as
    one array operation."""
    pool = _hashmix(words[:, :_POOL].T, 0, _POOL)
    k = _POOL
    for src in range(_POOL):
        dst = [d for d in range(_POOL) if d != src]
        pool[dst] = _mix(pool[dst], _hashmix(pool[src][None, :], k, _POOL - 1))
        k += _POOL - 1
    for src in range(_POOL, words.shape[1]):
        mixed = _mix(pool, _hashmix(words[:, src][None, :], k, _POOL))
        pool = np.where(lengths > src, mixed, pool)  # shorter rows are done
        k += _POOL
    return np.ascontiguousarray(pool.T)


def _generate(pools: np.ndarray, n_words: int, dtype: type = np.uint32) -> np.ndarray:
    """numpy's `generate_state` of each row of `pools`."""
    wide = np.dtype(dtype) == np.uint64
    if not wide and np.dtype(dtype) != np.uint32:
        raise ValueError(f"dtype = {dtype}; allowed: uint32, uint64")
    count = 2 * n_words if wide else n_words
    value = pools[:, np.arange(count) % _POOL] ^ _CONST_B[:count]
    value = value * _CONST_B[1 : count + 1]
    out = value ^ (value >> np.uint32(16))
    if wide:
        return np.ascontiguousarray(out).astype("<u4").view("<u8").astype(np.uint64)
    return out


def settle(seeds: Sequence[Seeds]) -> None:
    """Hash the pools and PCG64 states of `seeds` (those not hashed yet), many in one pass."""
    unsettled = [s for s in seeds if s._state is None]
    if not unsettled:
        return
    if len(unsettled) < SETTLE_MIN:
        for s in unsettled:
            seq = s._numpy()
            s._pool, s._state = seq.pool, seq.generate_state(4, np.uint64)
        return
    fresh = [s for s in unsettled if s._pool is None]
    pools = None
    if fresh:
        assembled = [s.assembled() for s in fresh]
        lengths = np.array([len(a) for a in assembled])
        if lengths.max() > _MOST_WORDS:
            for s in fresh:
                s._pool = s._numpy().pool
        else:
            pools = _pools(_word_rows(assembled, lengths), lengths)
            for s, pool in zip(fresh, pools, strict=True):
                s._pool = pool
    if pools is None or len(fresh) < len(unsettled):
        pools = np.stack([s._pool for s in unsettled])
    states = _generate(pools, 4, np.uint64)
    for s, state in zip(unsettled, states, strict=True):
        s._state = state


def _word_rows(assembled: list[tuple[int, ...]], lengths: np.ndarray) -> np.ndarray:
    """The assembled words of seeds as the rows of one array (zero beyond each row's length, at
    least a pool's width), filled one length at a time."""
    width = max(_POOL, int(lengths.max()))
    if (lengths == width).all():
        return np.array(assembled, dtype=np.uint32)
    words = np.zeros((len(assembled), width), dtype=np.uint32)
    for length in np.unique(lengths).tolist():
        rows = np.flatnonzero(lengths == length)
        words[rows, :length] = np.array([assembled[r] for r in rows.tolist()], dtype=np.uint32)
    return words

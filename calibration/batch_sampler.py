"""A pyabc sampler that evaluates particles in batches, with the result of pyabc's single-core
sampler draw for draw.

pyabc proposes a particle inside `simulate_one` (from the prior, or by perturbing the last
generation) with NumPy's global generator, then calls the model, then judges the particle;
with a distance and acceptor that draw nothing (a plain distance function, the uniform
acceptor) the model is the only step after the proposal, and the model draws only from its own
generator. `BatchSampler` therefore samples in rounds:

1. record: with the global generator's state saved, call `simulate_one` for the round's
   particles, the model (`ParticleModel`) storing each proposal's parameters and stopping the
   call before any evaluation;
2. evaluate: the recorded parameter sets not yet evaluated are evaluated together (in batches,
   spread over worker processes: `execute`), each exactly as alone;
3. replay: restore the generator's state and call `simulate_one` again, one particle at a time,
   exactly as `SingleCoreSampler` does (until `n` accepted or, with `check_max_eval`, `max_eval`
   evaluations); the model now answers from the evaluated statistics of equal parameters, and
   evaluates on the spot any parameter set it does not know, so the answer is always the
   model's.

The replay draws the same proposals as the recording, in the same order, so the particles,
their count and the generator's state afterwards are those of the single-core sampler. Particles
recorded beyond the point where the replay stops are kept for the generation's next round (its
proposals continue the same sequence) and dropped at its end.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Sequence

import numpy as np
from pyabc.sampler import SingleCoreSampler

from mittelbau.experiments.executors import LocalPool, execute

Evaluate = Callable[[list[dict]], list[dict]]


class _Recorded(Exception):
    """Raised by the model while recording: the proposal is stored, not evaluated."""


def parameter_key(par: dict) -> tuple:
    """What identifies a particle's parameter set: its names and exact values."""
    return tuple(sorted((k, float(v)) for k, v in par.items()))


class ParticleModel:
    """The model function pyabc calls with a particle's parameters: its statistics, taken from
    those evaluated in batch (`known`) when present, evaluated on the spot otherwise
    (`evaluate([par])[0]`); while `recording` is a list it stores the parameters there and
    raises instead. `evaluate` must be a pure function of each parameter set alone."""

    def __init__(self, evaluate: Evaluate) -> None:
        self.evaluate = evaluate
        self.recording: list[dict] | None = None
        self.known: dict[tuple, dict] = {}
        self.runs = 0  # parameter sets evaluated, in batch or on the spot

    def __call__(self, par: dict) -> dict:
        par = dict(par)
        if self.recording is not None:
            self.recording.append(par)
            raise _Recorded
        found = self.known.get(parameter_key(par))
        if found is None:
            self.runs += 1
            found = self.evaluate([par])[0]
        return dict(found)


def _evaluate_chunk(item: tuple[Evaluate, list[dict]]) -> list[dict]:
    evaluate, pars = item
    return evaluate(pars)


class BatchSampler(SingleCoreSampler):
    """pyabc's single-core sampling with the particles evaluated in rounds of up to `batch` ×
    `workers` parameter sets: `workers` processes evaluate `batch` each (`evaluate` of a list,
    a module-level function or a picklable object when `workers` > 1). The result is that of
    `SingleCoreSampler(check_max_eval)` with the same global NumPy generator state, whatever
    `batch` and `workers` (see the module's description). `progress(t, accepted, n,
    evaluations)` is called after every round of generation `t`."""

    def __init__(
        self,
        model: ParticleModel,
        batch: int = 16,
        workers: int = 1,
        check_max_eval: bool = False,
        progress: Callable[[int, int, int, int], None] | None = None,
    ) -> None:
        if batch < 1:
            raise ValueError(f"batch = {batch} is invalid; allowed: 1 or more")
        if workers < 1:
            raise ValueError(f"workers = {workers} is invalid; allowed: 1 or more")
        super().__init__(check_max_eval=check_max_eval)
        self.model = model
        self.batch = batch
        self.workers = workers
        self.acceptance_rate = 1.0  # of the last generation: how many to propose in a round
        # called after every round: generation, particles accepted, particles wanted, evaluations
        self.progress = progress
        self._pool: LocalPool | None = None  # the worker processes, started on first use

    def close(self) -> None:
        """End the worker processes (started by the first round that needs them)."""
        if self._pool is not None:
            self._pool.close()
            self._pool = None

    def __enter__(self) -> BatchSampler:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def sample_until_n_accepted(
        self,
        n,
        simulate_one,
        t,
        *,
        max_eval=np.inf,
        all_accepted=False,
        ana_vars=None,
    ):
        nr_simulations = accepted = 0
        sample = self._create_empty_sample()
        self.model.known.clear()
        try:
            while accepted < n:
                if self.check_max_eval and nr_simulations >= max_eval:
                    break
                size = self._round_size(n - accepted, accepted, nr_simulations, all_accepted)
                if self.check_max_eval and max_eval < math.inf:
                    size = max(1, min(size, math.ceil(max_eval - nr_simulations)))
                state = np.random.get_state()  # noqa: NPY002 - pyabc proposes from the global generator
                self._evaluate(self._record(simulate_one, size))
                np.random.set_state(state)  # noqa: NPY002
                for _ in range(size):
                    if self.check_max_eval and nr_simulations >= max_eval:
                        break
                    particle = simulate_one()
                    sample.append(particle)
                    nr_simulations += 1
                    accepted += bool(particle.accepted)
                    if accepted >= n:
                        break
                if self.progress is not None:
                    self.progress(t, accepted, n, nr_simulations)
        finally:
            self.model.recording = None
            self.model.known.clear()
        self.nr_evaluations_ = nr_simulations
        if nr_simulations and not all_accepted:
            self.acceptance_rate = accepted / nr_simulations
        if sample.n_accepted < n:
            sample.ok = False
        return sample

    def _round_size(self, missing: int, accepted: int, tried: int, all_accepted: bool) -> int:
        """Particles to propose in the next round: those expected to give the `missing`
        acceptances at the acceptance rate seen so far (this generation's, else the last
        one's), at most `batch` × `workers`."""
        rate = 1.0 if all_accepted else (accepted / tried if accepted else self.acceptance_rate)
        return max(1, min(self.batch * self.workers, math.ceil(missing / max(rate, 1e-9))))

    def _record(self, simulate_one: Callable, size: int) -> list[dict]:
        """The parameter sets of the next `size` proposals, none evaluated."""
        self.model.recording = recorded = []
        try:
            for _ in range(size):
                with contextlib.suppress(_Recorded):
                    simulate_one()
        finally:
            self.model.recording = None
        return recorded

    def _evaluate(self, pars: Sequence[dict]) -> None:
        """Evaluate the parameter sets not yet known, in chunks of up to `batch`, over up to
        `workers` processes; the results are stored in the model."""
        todo = list({parameter_key(p): p for p in pars if parameter_key(p) not in self.model.known}.values())
        if not todo:
            return
        per = max(1, min(self.batch, math.ceil(len(todo) / self.workers)))
        chunks = [todo[i : i + per] for i in range(0, len(todo), per)]
        items = [(self.model.evaluate, chunk) for chunk in chunks]
        if len(chunks) == 1:
            done = execute(_evaluate_chunk, items)
        else:  # one pool of workers for every round of the fit (`close` ends it)
            if self._pool is None:
                self._pool = LocalPool(self.workers)
            done = self._pool.map(_evaluate_chunk, items)
        with contextlib.closing(done):  # an error or Ctrl-C here stops the pool's work at once
            for (_, chunk), found in done:
                if isinstance(found, BaseException):
                    raise found
                for par, statistics in zip(chunk, found, strict=True):
                    self.model.known[parameter_key(par)] = statistics
        self.model.runs += len(todo)

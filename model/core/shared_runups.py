"""Which runs can share a run-up, and the run-ups kept for later batches.

A run's run-up (its years up to the 2015 state) depends on its seed and on the parameters that
act before 2016. Runs that agree in these have the same run-up, firm for firm and draw for
draw, so a batch of runs (`mittelbau.core.batch.ModelBatch`) runs it once and the others take
it over (`MittelbauModel.adopt_runup`): runs keeping only their outcomes wherever they differ in
PROJECTION_PARAMETERS alone, runs keeping their records (whose run-up years' records read other
parameters of the projection, such as the verdict indicators') wherever they differ in
PROGRAMME_PARAMETERS alone. The run-ups run are kept in this process for the batches that
follow, up to RUNUP_STATES_FIRMS firms.
"""

from __future__ import annotations

from collections import OrderedDict

from mittelbau.core.model import RunUpState
from mittelbau.core.parameters import REGISTRY
from mittelbau.core.scenario import Params

# parameters that act only from 2016 on: the programmes (they start in 2016 at the earliest),
# the mechanisms (but the service revenue drawn with the first firms), the projection's own
# dynamics (the adoption factors, traits and learning), the shock (from 2016), the economics
# (from the 2015 state), the verdict indicators and the survey measurement. Runs of one seed
# that differ only in these have the same run-up, firm for firm and draw for draw (tested for
# each, at the ends of its range).
_PROJECTION_GROUPS = ("funding", "cooperation", "centres", "shock", "economics", "indicators", "measurement")
_PROJECTION_DYNAMICS = (
    "dt_adoption_factor",
    "dt_finance_factor",
    "dt_competence_effect",
    "engagement_effect",
    "bm_adoption_factor",
    "competence_learning",
    "engagement_drift_rate",
)
_RUNUP_MECHANISM_STATE = ("service_revenue_mean", "service_revenue_concentration")
PROJECTION_PARAMETERS = frozenset(
    [p.name for p in REGISTRY if p.group in _PROJECTION_GROUPS]
    + [p.name for p in REGISTRY if p.group == "mechanisms" and p.name not in _RUNUP_MECHANISM_STATE]
    + list(_PROJECTION_DYNAMICS)
)


# run-ups kept for the batches that follow (in this process): at most this many firms in all
RUNUP_STATES_FIRMS = 256_000


class KeptRunUps(OrderedDict[tuple, RunUpState]):
    """Run-ups by key, the least recently kept first, with the firms they hold in all."""

    def __init__(self) -> None:
        super().__init__()
        self.firms = 0

    def keep(self, key: tuple, runup: RunUpState) -> None:
        """Keep `runup` under `key` as the most recent, then drop the least recent while more than
        RUNUP_STATES_FIRMS firms are kept."""
        old = self.pop(key, None)
        self.firms += runup.firms - (0 if old is None else old.firms)
        self[key] = runup
        while self.firms > RUNUP_STATES_FIRMS:
            self.firms -= self.popitem(last=False)[1].firms

    def clear(self) -> None:
        super().clear()
        self.firms = 0


RUNUP_STATES = KeptRunUps()


def keeps(firms: int) -> bool:
    """Whether a run-up of `firms` firms is kept for later batches (`keep_runup_state`)."""
    return firms <= RUNUP_STATES_FIRMS


def keep_runup_state(key: tuple, runup: RunUpState) -> RunUpState:
    """Keep the run-up of `key` for later batches (unless it alone has more firms than
    RUNUP_STATES_FIRMS), the least recently kept dropped first so that those kept hold at most
    RUNUP_STATES_FIRMS firms; returns it."""
    if keeps(runup.firms):
        RUNUP_STATES.keep(key, runup)
    return runup


def clear_runup_states() -> None:
    """Forget the run-ups kept (`keep_runup_state`)."""
    RUNUP_STATES.clear()


# the programmes' parameters (a subset of PROJECTION_PARAMETERS): runs keeping their records
# share a run-up only where they differ in these (a scenario and its counterfactual runs), as
# the run-up years' records read other parameters of the projection (the verdict indicators)
PROGRAMME_PARAMETERS = frozenset(p.name for p in REGISTRY if p.group in ("funding", "cooperation", "centres"))


def runup_state_key(params: Params, outcomes_only: bool = True) -> tuple:
    """What a run's run-up depends on: its seed and every parameter but PROJECTION_PARAMETERS
    for a run keeping only its outcomes, but PROGRAMME_PARAMETERS for one keeping its records.
    Runs with equal keys have the same run-up."""
    free = PROJECTION_PARAMETERS if outcomes_only else PROGRAMME_PARAMETERS
    return (outcomes_only, *((k, v) for k, v in params.model_dump().items() if k not in free))

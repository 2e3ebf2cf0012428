"""Per-firm reference implementation of the annual step, for docking (not used by the package).

Plain Mesa: every firm is an agent with its own scalar state and a `decide`/`advance` pair
(synchronous update), computing its hazards with scalar arithmetic from the formulas in
docs/odd.md. It shares with the vectorised model only the 2015 state at the end of its run-up
(the mechanisms' firm state included), the network, the solved run-up (each firm type's hazards
and expected state), the 2015 trait means and the entrant draw; the projected step, the
switchable mechanisms included, is written independently.
"""

from __future__ import annotations

import math

import mesa
import numpy as np

from mittelbau.core.categories import COMPLEXITIES
from mittelbau.core.mechanisms import draw_state
from mittelbau.core.model import MittelbauModel
from mittelbau.core.population import cell_index, synthesise

SIMPLE = COMPLEXITIES.index("simple")
FIELDS = (
    "industry",
    "size",
    "batch",
    "complexity",
    "position",
    "market",
    "financing_constraint",
    "service_strategy",
    "threatened",
    "techniques",
    "engagement",
    "bm",
    "dt",
    "service_revenue",
    "it_specialist",
    "trains",
    "platform",
)


def on(p, name: str) -> bool:
    return getattr(p, f"mech_{name}") == "on"


class RefFirm(mesa.Agent):
    def __init__(
        self,
        model: ReferenceModel,
        values: dict,
        customers: list[int],
        ties: list[int],
        slot: int,
    ) -> None:
        super().__init__(model)
        for name, v in values.items():
            setattr(self, name, v.item() if hasattr(v, "item") else v)
        run_up = model.run_up
        self.cell = int(
            cell_index(
                *(
                    np.array([values[k]])
                    for k in ("industry", "size", "batch", "complexity", "service_strategy")
                )
            )[0]
        )
        self.h_bm = float(run_up.h_bm[self.cell])
        self.h_dt = [float(run_up.h_dt[self.cell, 0]), float(run_up.h_dt[self.cell, 1])]
        e = run_up.state_in(2015)[self.cell]  # the 2015 expectation: the social references
        self.e_bm, self.e_dt = float(e[1, 0] + e[1, 1]), float(e[0, 1] + e[1, 1])
        self.customers, self.ties, self.slot = customers, ties, slot
        self.next: dict | None = None

    @property
    def stage(self) -> int:
        return 1 + int(self.bm) + int(self.dt)

    def decide(self) -> None:
        m, p = self.model, self.model.params
        d = m.pressure
        snap = m.snapshot
        exposed = not self.bm and not self.dt and self.complexity == SIMPLE and self.threatened
        platform = self.platform
        if on(p, "platform_capture") and exposed and not platform:
            platform = self.random.random() < 1.0 - math.exp(-p.capture_rate * d)
        h_exit = p.exit_rate * (1.0 + p.pressure_exit_factor * d * exposed)
        if platform:  # platform_capture is on
            h_exit *= p.capture_exit_factor
        if self.random.random() < 1.0 - math.exp(-h_exit):
            self.next = None
            return
        years = m.year - 2015  # 0 in the first projected year
        adopt = p.capture_adoption_factor if platform else 1.0
        if on(p, "lockin") and not self.bm and not self.dt and self.engagement <= 1:
            adopt *= p.lockin_response
        peer_bm, ref_peer_bm = snap["peer_bm"][self.industry], snap["ref_bm"][self.industry]
        peer_dt, ref_peer_dt = snap["peer_dt"][self.industry], snap["ref_dt"][self.industry]
        if self.ties:
            net_dt = sum(snap["dt"][j] for j in self.ties) / len(self.ties)
            ref_net_dt = sum(snap["e_dt"][j] for j in self.ties) / len(self.ties)
        else:
            net_dt, ref_net_dt = peer_dt, ref_peer_dt
        if self.customers:
            cust = sum(snap["bm"][j] for j in self.customers) / sum(snap["e_bm"][j] for j in self.customers)
        else:
            cust = 1.0
        eng = math.exp(p.engagement_effect * (self.engagement - 1))
        dt_norm, bm_norm = m.trait_norms
        bar_factor = slump_factor = 1.0
        if on(p, "rising_bar"):
            competence = self.techniques + p.it_specialist_bonus * self.it_specialist
            bar = min(3.0 + p.bar_growth * years, 10.0)
            bar_factor = math.exp(-p.bar_effect * max(0.0, bar - max(competence, 3.0)))
        if on(p, "delayed_slump") and not self.service_strategy:
            slump_factor = 1.0 - p.slump_depth * min(1.0, max(0.0, (years - p.slump_delay) / 5.0))
        bm, dt = self.bm, self.dt
        if not self.dt:
            social = (net_dt + peer_dt) / (ref_net_dt + ref_peer_dt)
            h = (
                self.h_dt[int(self.bm)]
                * p.dt_adoption_factor
                * (p.dt_finance_factor if self.financing_constraint else 1.0)
                * math.exp(p.dt_competence_effect * (self.techniques - 3.0))
                * eng
                / dt_norm[self.size]
                * ((1 - p.dt_social_weight) + p.dt_social_weight * social)
                * adopt
                * bar_factor
            )
            dt = self.random.random() < 1.0 - math.exp(-h)
        elif self.random.random() < 1.0 - math.exp(-p.dt_loss_rate):
            dt = False
        if not self.bm:
            channels = (
                p.bm_weight_intrinsic
                + p.bm_weight_peers * peer_bm / ref_peer_bm
                + p.bm_weight_customers * cust
                + p.bm_weight_competition * d
            )
            h = self.h_bm * p.bm_adoption_factor * eng / bm_norm[self.size][int(self.dt)] * channels * adopt
            h *= slump_factor
            bm = self.random.random() < 1.0 - math.exp(-h)
        else:
            loss = p.bm_loss_rate * (p.bm_loss_strategy_factor if self.service_strategy else 1.0)
            if on(p, "service_neglect"):
                larger = [snap["size"][j] > self.size for j in self.customers]
                power = sum(larger) / len(larger) if larger else 0.0
                realised = self.service_revenue * (1.0 - p.service_below_value * power)
                loss *= 1.0 + p.neglect_effect * min(1.0, max(0.0, 1.0 - realised / p.service_revenue_mean))
            if self.random.random() < 1.0 - math.exp(-loss):
                bm = False
        if (
            on(p, "leapfrog")
            and not (self.bm or self.dt or bm or dt)
            and self.engagement >= 2
            # a leap is a DT and a BM gain: both gain multipliers of the other mechanisms
            and self.random.random()
            < 1.0 - math.exp(-p.leap_rate * (adopt * bar_factor) * (adopt * slump_factor))
        ):
            bm = dt = True
        whole = math.floor(p.competence_learning)
        step = whole + (self.random.random() < p.competence_learning - whole)
        techniques = min(self.techniques + step, 10.0) if dt else self.techniques
        if on(p, "rising_bar") and self.trains and not dt:
            techniques = min(techniques + p.training_learning, 10.0)
        engagement = self.engagement
        if engagement <= 1 and self.random.random() < min(1.0, p.engagement_drift_rate * d):
            engagement += 1
        self.next = {
            "bm": bm,
            "dt": dt,
            "techniques": techniques,
            "engagement": engagement,
            "platform": platform,
        }

    def advance(self) -> None:
        if self.next is not None:
            for k, v in self.next.items():
                setattr(self, k, v)


class ReferenceModel(mesa.Model):
    """The same model as MittelbauModel, stepped firm by firm."""

    def __init__(self, **overrides) -> None:
        vec = MittelbauModel(**overrides)  # 2015 state after the run-up, network, run-up solution
        super().__init__(rng=vec.params.seed + 1)
        self.params, self.region, self.props = vec.params, vec.region, vec.props
        self.run_up, self.trait_norms = vec.runup, vec.trait_norms
        self.year = 2015
        n = len(vec.state)
        cust, ties = vec.customers, vec.ties
        self.slots = [None] * n
        for i in range(n):
            values = {f: getattr(vec.state, f)[i] for f in FIELDS}
            self.slots[i] = RefFirm(
                self,
                values,
                cust.indices[cust.indptr[i] : cust.indptr[i + 1]].tolist(),
                ties.indices[ties.indptr[i] : ties.indptr[i + 1]].tolist(),
                i,
            )
        self.history = [self.shares()]

    @property
    def pressure(self) -> float:
        return 1.0 + self.params.digital_pressure_growth * (self.year - 2015)

    def shares(self) -> np.ndarray:
        counts = np.zeros(3)
        for a in self.slots:
            counts[a.stage - 1] += 1
        return counts / len(self.slots)

    def step(self) -> None:
        k = max(a.industry for a in self.slots) + 1
        peer = np.zeros((k, 5))
        for a in self.slots:
            peer[a.industry] += (1, a.bm, a.dt, a.e_bm, a.e_dt)
        n = np.maximum(peer[:, 0], 1)
        self.snapshot = {
            "peer_bm": peer[:, 1] / n,
            "peer_dt": peer[:, 2] / n,
            "ref_bm": peer[:, 3] / n,
            "ref_dt": peer[:, 4] / n,
            "bm": [a.bm for a in self.slots],
            "dt": [a.dt for a in self.slots],
            "size": [a.size for a in self.slots],
            "e_bm": [a.e_bm for a in self.slots],
            "e_dt": [a.e_dt for a in self.slots],
        }
        self.agents.shuffle_do("decide")
        self.agents.do("advance")
        for a in [a for a in self.slots if a.next is None]:
            self._replace(a)
        self.year += 1
        self.history.append(self.shares())

    def _replace(self, firm: RefFirm) -> None:
        new = synthesise(self.region, 1, self.rng, self.run_up.state_in(2015))
        draw_state(new, self.params, self.rng)
        values = {f: getattr(new, f)[0] for f in FIELDS}
        values["position"] = firm.position
        firm.remove()
        self.slots[firm.slot] = RefFirm(self, values, firm.customers, firm.ties, firm.slot)

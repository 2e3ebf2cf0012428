"""Per-firm reference implementation of the annual step, for docking (not used by the package).

Plain Mesa: every firm is an agent with its own scalar state and a `decide`/`advance` pair
(synchronous update), computing its hazards with scalar arithmetic from the formulas in
docs/odd.md. It shares only the initial population, the network and the entrant draw with the
vectorised model; the step, the switchable mechanisms included, is written independently.
"""

from __future__ import annotations

import math

import mesa
import numpy as np

from mittelbau.core.categories import COMPLEXITIES
from mittelbau.core.dynamics import structural_log_hazards
from mittelbau.core.mechanisms import draw_state
from mittelbau.core.model import MittelbauModel
from mittelbau.core.population import synthesise

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
        x_dt: float,
        x_bm: float,
        customers: list[int],
        ties: list[int],
        slot: int,
    ) -> None:
        super().__init__(model)
        for name, v in values.items():
            setattr(self, name, v.item() if hasattr(v, "item") else v)
        self.x_dt, self.x_bm = float(x_dt), float(x_bm)
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
        peer_bm = snap["peer_bm"][self.industry]
        peer_dt = snap["peer_dt"][self.industry]
        net_dt = (sum(snap["dt"][j] for j in self.ties) / len(self.ties)) if self.ties else peer_dt
        cust_bm = sum(snap["bm"][j] for j in self.customers) / len(self.customers) if self.customers else 0.46
        eng = math.exp(p.engagement_effect * (self.engagement - 1))
        bm, dt = self.bm, self.dt
        if not self.dt:
            social = 0.5 * (net_dt + peer_dt) / 0.58
            h = (
                p.dt_adoption_rate
                * math.exp(self.x_dt)
                * (p.capability_coupling if self.bm else 1.0)
                * (p.dt_finance_factor if self.financing_constraint else 1.0)
                * math.exp(p.dt_competence_effect * (self.techniques - 3.0))
                * eng
                * ((1 - p.dt_social_weight) + p.dt_social_weight * social)
                * adopt
            )
            if on(p, "rising_bar"):
                competence = self.techniques + p.it_specialist_bonus * self.it_specialist
                bar = 3.0 + p.bar_growth * years
                h *= math.exp(-p.bar_effect * max(0.0, bar - max(competence, 3.0)))
            dt = self.random.random() < 1.0 - math.exp(-h)
        elif self.random.random() < 1.0 - math.exp(-p.dt_loss_rate):
            dt = False
        if not self.bm:
            channels = (
                p.bm_weight_intrinsic
                + p.bm_weight_peers * peer_bm / 0.46
                + p.bm_weight_customers * cust_bm / 0.46
                + p.bm_weight_competition * d
            )
            h = (
                p.bm_adoption_rate
                * math.exp(self.x_bm)
                * (p.capability_coupling if self.dt else 1.0)
                * eng
                * channels
                * adopt
            )
            if on(p, "delayed_slump") and not self.service_strategy:
                h *= 1.0 - p.slump_depth * min(1.0, max(0.0, (years - p.slump_delay) / 5.0))
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
            and self.random.random() < 1.0 - math.exp(-p.leap_rate)
        ):
            bm = dt = True
        techniques = min(self.techniques + p.competence_learning, 10.0) if dt else self.techniques
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
        vec = MittelbauModel(**overrides)  # initial population, network, structural effects
        super().__init__(rng=vec.params.seed + 1)
        self.params, self.region, self.props = vec.params, vec.region, vec.props
        self.year = 2015
        n = len(vec.state)
        cust, ties = vec.customers, vec.ties
        self.slots = [None] * n
        for i in range(n):
            values = {f: getattr(vec.state, f)[i] for f in FIELDS}
            self.slots[i] = RefFirm(
                self,
                values,
                vec.x_dt[i],
                vec.x_bm[i],
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
        peer = np.zeros((k, 3))
        for a in self.slots:
            peer[a.industry] += (1, a.bm, a.dt)
        self.snapshot = {
            "peer_bm": peer[:, 1] / np.maximum(peer[:, 0], 1),
            "peer_dt": peer[:, 2] / np.maximum(peer[:, 0], 1),
            "bm": [a.bm for a in self.slots],
            "dt": [a.dt for a in self.slots],
            "size": [a.size for a in self.slots],
        }
        self.agents.shuffle_do("decide")
        self.agents.do("advance")
        for a in [a for a in self.slots if a.next is None]:
            self._replace(a)
        self.year += 1
        self.history.append(self.shares())

    def _replace(self, firm: RefFirm) -> None:
        new = synthesise(self.region, 1, self.rng)
        draw_state(new, self.params, self.rng)
        values = {f: getattr(new, f)[0] for f in FIELDS}
        values["position"] = firm.position
        x_dt, x_bm = structural_log_hazards(new, self.props, self.region.innovation_shift)
        firm.remove()
        self.slots[firm.slot] = RefFirm(self, values, x_dt[0], x_bm[0], firm.customers, firm.ties, firm.slot)

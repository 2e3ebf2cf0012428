"""Server-side cost of one dashboard step: stepping the run and its same-seed twin without
programmes, and drawing the figures of each tab as PNG. Prints figures; asserts nothing.

    .venv/bin/python benchmarks/bench_dashboard.py
"""

from __future__ import annotations

import io
import time

import matplotlib

matplotlib.use("Agg")

from mittelbau.dashboard import charts
from mittelbau.dashboard.paired import PairedModel
from mittelbau.dashboard.stakes import stakes_figure

FIGURES = {
    "shares": (charts.stage_shares_figure, stakes_figure, charts.middle_figure, charts.size_figure),
    "network": (charts.network_figure,),
    "baseline": (charts.compare_figure,),
}
STEPS = 10


def draw(model: PairedModel, builders) -> float:
    """Seconds to build and render the figures, as the page does on every step."""
    t0 = time.perf_counter()
    for build in builders:
        build(model).savefig(io.BytesIO(), format="png", dpi=90)
    return time.perf_counter() - t0


print(
    f"{'firms':>7} {'step (both runs)':>17} " + " ".join(f"{p:>9}" for p in FIGURES) + "   (seconds per step)"
)
for firms in (4_000, 20_000, 100_000):
    model = PairedModel(firms=firms, seed=1, years=STEPS, cooperation_projects_per_year=10, centres_number=2)
    model.network_sample()  # the layout is computed once per run, on first view
    step = draw_time = 0.0
    pages = dict.fromkeys(FIGURES, 0.0)
    for _ in range(STEPS):
        t0 = time.perf_counter()
        model.step()
        step += time.perf_counter() - t0
        for tab, builders in FIGURES.items():
            pages[tab] += draw(model, builders)
    print(f"{firms:>7,} {step / STEPS:>17.3f} " + " ".join(f"{v / STEPS:>9.3f}" for v in pages.values()))

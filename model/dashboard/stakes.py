"""The dashboard's figure of what is at stake: the region's value added by stage, what
platform owners capture and what exits have cost so far (docs/odd.md, 'Economics')."""

from __future__ import annotations

from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mittelbau.core.model import MittelbauModel
from mittelbau.experiments.plots import STAGE_COLOURS, STAGE_NAMES
from mittelbau.experiments.stakes import economics_table

SIZE = (6.4, 3.6)


def stakes_figure(model: MittelbauModel) -> Figure:
    """Value added of the region's firms per year by stage (stacked, € bn), with the value
    added captured by platforms and lost through exits not replaced on top."""
    table = economics_table(model)
    wide = table.pivot(index="year", columns="group", values="value_added_eur") / 1e9
    whole = table[table["group"] == "all"].set_index("year")
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.subplots()
    years = wide.index.to_numpy()
    layers = [wide[f"stage:{k}"] for k in (1, 2, 3)]
    lost = whole["value_added_lost_exits_eur"].clip(lower=0)  # entrants may outgrow the exits
    layers += [whole["value_added_captured_eur"] / 1e9, lost / 1e9]
    ax.stackplot(
        years,
        *layers,
        labels=[f"stage {STAGE_NAMES[k]}" for k in (1, 2, 3)]
        + ["captured by platforms", "lost through exits not replaced"],
        colors=[STAGE_COLOURS[k] for k in (1, 2, 3)] + ["#cc79a7", "#d55e00"],
        alpha=0.9,
    )
    stuck = whole["employment_stuck_stage1"].iloc[-1]
    ax.set(
        ylabel="€ bn per year (region)",
        title=f"Value added at stake, {model.params.region_firms:,} firms · "
        f"{stuck:,.0f} persons in stage-1 firms still stuck",
    )
    ax.title.set_fontsize(9)
    ax.set_xlim(years[0], max(years[-1], years[0] + 1))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("year")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="lower left")
    return fig

"""The dashboard's figures, built from a `PairedModel` (matplotlib, rendered on the server,
so the page needs no chart library from the internet)."""

from __future__ import annotations

import math

import numpy as np
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from mittelbau.dashboard.paired import PairedModel
from mittelbau.experiments.plots import STAGE_COLOURS, STAGE_NAMES

SIZE = (6.4, 3.6)


def _year_axis(ax, years) -> None:
    first = int(min(years))
    ax.set_xlim(first, max(int(max(years)), first + 1))
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("year")
    ax.grid(alpha=0.3)


def stage_shares_figure(model: PairedModel) -> Figure:
    """Stage shares of all firms, year by year."""
    h = model.history()
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.subplots()
    for k in (1, 2, 3):
        ax.plot(
            h.index,
            100 * h[f"stage{k}"],
            color=STAGE_COLOURS[k],
            lw=2,
            marker="o",
            ms=3,
            label=STAGE_NAMES[k],
        )
    ax.set(ylim=(0, 100), ylabel="share of firms (%)", title=f"Stage shares, {model.params.region}")
    _year_axis(ax, h.index)
    ax.legend(fontsize=8, loc="upper left")
    return fig


def middle_figure(model: PairedModel) -> Figure:
    """The middle tier's share and the hollowing ratio against its threshold."""
    h = model.history()
    threshold = model.params.hollowing_threshold
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.subplots()
    ax.plot(
        h.index,
        100 * h["middle_share"],
        color=STAGE_COLOURS[2],
        lw=2,
        marker="o",
        ms=3,
        label="stage-2 share (%)",
    )
    ax.set(ylabel="stage-2 share (%)", ylim=(0, max(50, 100 * h["middle_share"].max() + 5)))
    ax2 = ax.twinx()
    ratio = h["hollowing_ratio"].replace(math.inf, np.nan)
    ax2.plot(
        h.index, ratio, color="black", lw=1.5, ls="--", marker=".", label="hollowing ratio s2 / min(s1, s3)"
    )
    ax2.axhline(threshold, color="#d55e00", lw=1, ls=":", label=f"hollowed below {threshold:g}")
    ax2.set(ylabel="hollowing ratio", ylim=(0, max(2.0, float(np.nanmax(ratio.to_numpy(), initial=0)) * 1.1)))
    hollow = ratio < threshold
    if hollow.any():
        ax2.fill_between(h.index, 0, threshold, where=hollow.to_numpy(), color="#d55e00", alpha=0.15)
    _year_axis(ax, h.index)
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="lower left")
    ax.set_title("Middle tier and hollowing")
    return fig


def size_figure(model: PairedModel) -> Figure:
    """Stage shares by size class now (stacked bars)."""
    shares = model.size_shares()
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.subplots()
    left = np.zeros(len(shares))
    for k in (1, 2, 3):
        ax.barh(shares.index, 100 * shares[k], left=left, color=STAGE_COLOURS[k], label=STAGE_NAMES[k])
        left += 100 * shares[k].to_numpy()
    ax.set(
        xlim=(0, 100), xlabel="share of firms (%)", ylabel="employees", title=f"By size class, {model.year}"
    )
    ax.invert_yaxis()
    ax.legend(fontsize=8, loc="lower right", framealpha=0.9)
    return fig


def network_figure(model: PairedModel) -> Figure:
    """A connected part of the customer–supplier network, firms coloured by stage."""
    rows, xy = model.network_sample()
    edges = model.sample_edges()
    stage = model.state.stage[rows]
    size = model.state.size[rows]
    fig = Figure(figsize=(6.4, 5.2), layout="constrained")
    ax = fig.subplots()
    if len(edges):
        segs = np.stack([xy[edges[:, 0]], xy[edges[:, 1]]], axis=1)
        ax.add_collection(LineCollection(segs, colors="#999999", linewidths=0.5, alpha=0.6))
    for k in (1, 2, 3):
        on = stage == k
        ax.scatter(
            xy[on, 0],
            xy[on, 1],
            s=12 + 14 * size[on],
            color=STAGE_COLOURS[k],
            edgecolors="white",
            linewidths=0.4,
            label=f"{STAGE_NAMES[k]} ({on.mean():.0%})",
            zorder=2,
        )
    ax.set_axis_off()
    agents = len(model.state)
    ax.set_title(
        f"Firm network, {len(rows)} of {agents:,} agents "
        f"({round(agents * model.population_scale):,} firms), {model.year}"
    )
    ax.legend(fontsize=8, loc="lower left", framealpha=0.9)
    return fig


def compare_figure(model: PairedModel) -> Figure:
    """Stage shares with the programmes (solid) and without (dashed), same seed."""
    h, b = model.history(), model.baseline_history()
    fig = Figure(figsize=SIZE, layout="constrained")
    ax = fig.subplots()
    for k in (1, 2, 3):
        ax.plot(h.index, 100 * h[f"stage{k}"], color=STAGE_COLOURS[k], lw=2, label=f"{STAGE_NAMES[k]}")
        ax.plot(b.index, 100 * b[f"stage{k}"], color=STAGE_COLOURS[k], lw=1.5, ls="--")
    ax.plot([], [], color="black", lw=2, label="with programmes")
    ax.plot([], [], color="black", lw=1.5, ls="--", label="baseline (no programme)")
    ax.set(ylim=(0, 100), ylabel="share of firms (%)", title="Compared with the baseline, same seed")
    _year_axis(ax, h.index)
    ax.legend(fontsize=8, loc="upper left", ncol=2)
    return fig

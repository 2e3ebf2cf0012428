"""The dashboard's sentences: the state now, and what the programmes have added so far."""

from __future__ import annotations

from mittelbau.core.indicators import hollowing_ratio, is_hollowed
from mittelbau.dashboard.paired import PairedModel
from mittelbau.levers import BY_LEVER


def status(model: PairedModel) -> str:
    s = model.recorded_shares
    threshold = model.params.hollowing_threshold
    verdict = "hollowed out" if is_hollowed(s, threshold) else "not hollowed out"
    notice = f"**Note: {model.notice}.** " if model.notice else ""
    return notice + (
        f"**Year {model.year}** ({model.params.region}, {len(model.state):,} agents for "
        f"{round(len(model.state) * model.population_scale):,} firms, seed "
        f"{model.params.seed}): stage 1 {100 * s[0]:.1f} %, stage 2 {100 * s[1]:.1f} %, "
        f"stage 3 {100 * s[2]:.1f} %. Hollowing ratio {hollowing_ratio(s):.2f} "
        f"(hollowed below {threshold:g}): the middle is **{verdict}**."
    )


def settings(model: PairedModel) -> str:
    """The programmes of the run on the page, in words (the controls apply on Reset)."""
    parts = [BY_LEVER[name].caption(model.params) for name in model.levers_on]
    running = "; ".join(parts) if parts else "none"
    return f"Programmes of this run: {running}. Changed controls apply when you press Reset."


def comparison(model: PairedModel) -> str:
    if not model.levers_on:
        return (
            "**No programme is switched on**: this run is the baseline. Set a funding budget, "
            "cooperation projects or application centres, then press Reset."
        )
    e = model.programme_effect()
    extra = e["additional_moves"]
    # moves of agents × population_scale = moves of the region's firms, which the € buy
    scale = model.population_scale
    per_move = (
        f"€{e['spent_eur'] / (extra * scale):,.0f} per additional move of a firm"
        if extra > 0
        else "no additional move yet"
    )
    return (
        f"**Programmes: {', '.join(model.levers_on)}.** Spent so far: €{e['spent_eur']:,.0f}. "
        f"Upward moves of the region's firms {e['upward_moves'] * scale:,.0f} against "
        f"{e['upward_moves_baseline'] * scale:,.0f} without programmes: "
        f"**{extra * scale:+,.0f} additional**, {per_move}. Middle tier "
        f"{round(e['middle_pp'], 1) + 0.0:+.1f} percentage points against the baseline "
        f"(year {model.year}, one seed; ensembles give the uncertainty)."
    )

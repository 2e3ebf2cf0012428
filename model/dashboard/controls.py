"""Dashboard controls, generated from the parameter registry.

The registry marks the parameters an analyst changes interactively (`control=True`); this
module turns them into the `model_params` of Mesa's SolaraViz: a select for parameters with
choices, a text field for the seed, sliders for the rest, each with the registry's default,
range (up to the exploration range's end) and unit.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any

from mittelbau.core.parameters import REGISTRY, Parameter
from mittelbau.levers import BY_LEVER


def control_parameters() -> list[Parameter]:
    """The registry entries shown as dashboard controls, in registry order."""
    return [p for p in REGISTRY if p.control]


def slider_step(low: float, high: float, integer: bool) -> float | int:
    """A round step giving about 50–100 positions between `low` and `high`."""
    span = high - low
    step = 10 ** math.floor(math.log10(span / 50)) if span > 0 else 1
    return max(1, int(step)) if integer else step


def label(p: Parameter) -> str:
    """A short label: the description up to its first ';' or ':', the lever's name in front
    where the text does not say it, and the unit."""
    text = re.split(r"[;:]", p.description, maxsplit=1)[0].strip()
    lever = BY_LEVER[p.group].title if p.group in BY_LEVER else None
    if lever and lever.lower()[:6] not in text.lower():
        text = f"{lever}: {text[0].lower()}{text[1:]}"
    return text if p.unit in ("-", "") else f"{text} ({p.unit})"


def control(p: Parameter, value: Any) -> dict[str, Any]:
    """One SolaraViz user parameter for registry entry `p`, starting at `value`."""
    if p.choices:
        return {"type": "Select", "value": value, "values": list(p.choices), "label": label(p)}
    if p.name == "seed":  # any of 2^32 integers: typed, not slid
        return {"type": "InputText", "value": str(value), "label": label(p)}
    integer = p.kind is int
    low = p.low if p.low is not None else 0
    high = p.control_high if p.control_high is not None else p.explore_high
    high = max(high, value)  # a scenario may set more than the slider's usual end
    return {
        "type": "SliderInt" if integer else "SliderFloat",
        "value": value,
        "min": int(low) if integer else float(low),
        "max": int(high) if integer else float(high),
        "step": slider_step(low, high, integer),
        "label": label(p),
    }


def model_params(values: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """SolaraViz `model_params`: one control per registry control entry, starting at `values`
    (a scenario's parameters) or the registry default; every other entry of `values` is passed
    on fixed, so a scenario's non-interactive settings hold across resets."""
    values = dict(values or {})
    params: dict[str, Any] = {}
    for p in control_parameters():
        params[p.name] = control(p, values.pop(p.name, p.default))
    params.update(values)
    return params

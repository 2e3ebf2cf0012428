"""One entry of the parameter registry: name, default, unit, ranges, source, group and role.

The class lives apart from the registry (`mittelbau.core.parameters`) so that the lever modules
can declare their own entries without importing the registry they are part of.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Role = Literal["uncertainty", "lever", "setting"]


@dataclass(frozen=True)
class Parameter:
    name: str
    default: int | float | str
    unit: str
    description: str
    source: str
    low: float | None = None
    high: float | None = None
    choices: tuple[str, ...] | None = None
    group: str = "dynamics"
    # shown as a dashboard control; its slider spans the exploration range, or up to
    # control_high where even that is wider than is useful interactively
    control: bool = False
    control_high: float | None = None
    # set when the registry is assembled: the role follows from the group, the exploration
    # range from a short table of overrides (`mittelbau.core.parameters`)
    role: Role = "uncertainty"
    exploration: tuple[float, float] | None = None

    @property
    def kind(self) -> type:
        return type(self.default)

    @property
    def explore_low(self) -> float | None:
        """Lower end of the range experiments sample (the validation range unless narrowed)."""
        return self.exploration[0] if self.exploration else self.low

    @property
    def explore_high(self) -> float | None:
        """Upper end of the range experiments sample (the validation range unless narrowed)."""
        return self.exploration[1] if self.exploration else self.high

    def allowed(self) -> str:
        """What a value must be, in words, for error messages and documentation."""
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        noun = "an integer" if self.kind is int else "a number"
        return f"{noun} from {number_text(self.low)} to {number_text(self.high)}"

    def annotation(self) -> object:
        if self.choices:
            return Literal[self.choices]  # type: ignore[valid-type]
        return self.kind


def number_text(x: float | None) -> str:
    """A range end as written in messages and tables: integral values without a decimal point."""
    return str(int(x)) if x is not None and float(x).is_integer() else f"{x:g}"

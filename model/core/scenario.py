"""Scenario files (TOML overrides of the registry defaults) and their validation.

A scenario file holds `name`, `description` and a `[parameters]` table whose keys are registry
names. A scenario is given by path or by the name of one in the library shipped with the
package (`baseline`, `equal-budget/funding`; the repository's `scenarios/` folder). Every
problem is reported as one `ScenarioError` naming the key, the value given and what is
allowed, before anything runs or is written.
"""

from __future__ import annotations

import difflib
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model, model_validator

from mittelbau import scenarios as library
from mittelbau.core.parameters import BY_NAME, REGISTRY
from mittelbau.core.registry_entry import Parameter
from mittelbau.levers import SPECS

SCENARIO_KEYS = {"name": str, "description": str, "parameters": dict}
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,79}")
PLAIN_NAME_ALLOWED = (
    "a plain name of up to 80 letters, digits, '.', '_' and '-', starting with a letter or "
    "digit (it names output folders)"
)


class ScenarioError(ValueError):
    """Invalid scenario input; `key`, `value` and `allowed` say what and how to fix it."""

    def __init__(
        self, where: str, problem: str, key: str | None = None, value: Any = None, allowed: str | None = None
    ) -> None:
        self.where, self.problem = where, problem
        self.key, self.value, self.allowed = key, value, allowed
        parts = [f"{where}: {problem}"]
        if allowed:
            parts.append(f"allowed: {allowed}")
        super().__init__("; ".join(parts))

    def __reduce__(self):  # picklable, so a worker process can report it
        return (type(self), (self.where, self.problem, self.key, self.value, self.allowed))


class _ParamsBase(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)

    @model_validator(mode="after")
    def _end_years_not_before_start_years(self) -> _ParamsBase:
        for lever in SPECS:
            start, end = getattr(self, lever.start_year), getattr(self, lever.end_year)
            if end < start:
                raise ValueError(
                    f"{lever.end_year} = {end} is before {lever.start_year} = {start}; "
                    "allowed: an end year not before the start year"
                )
        return self

    @property
    def bm_weight_intrinsic(self) -> float:
        """Share of BM introductions on the firm's own initiative (sources §4.2: 34 %)."""
        return 1.0 - self.bm_weight_peers - self.bm_weight_customers - self.bm_weight_competition

    def with_overrides(self, overrides: Mapping[str, Any], where: str = "override") -> Params:
        return make_params({**self.model_dump(), **overrides}, where)


def _field(p: Any) -> tuple[object, Any]:
    if p.choices:
        return (p.annotation(), Field(p.default, description=p.description))
    return (p.annotation(), Field(p.default, ge=p.low, le=p.high, description=p.description))


Params = create_model(  # type: ignore[call-overload]
    "Params", __base__=_ParamsBase, **{p.name: _field(p) for p in REGISTRY}
)


def _allowed_for(key: str) -> str:
    if key in BY_NAME:
        return BY_NAME[key].allowed()
    close = difflib.get_close_matches(key, BY_NAME, n=1)
    if close:  # the likely one, and where the others are listed
        return f"did you mean {close[0]!r}? (every registry parameter: `mittelbau params`)"
    return "registry parameters: " + ", ".join(sorted(BY_NAME))


def _plain(p: Parameter, value: Any) -> Any:
    """Numpy scalars as Python values, and an integral float as an integer where the parameter
    is one (samplers and array code hand over `np.int64(4)` or `4.0`)."""
    if isinstance(value, np.generic):
        value = value.item()
    if p.kind is int and isinstance(value, float) and value.is_integer():
        return int(value)
    return value


def make_params(values: Mapping[str, Any], where: str = "parameters") -> Params:
    """Validate a mapping of registry names to values (missing names take their defaults)."""
    values = {k: _plain(BY_NAME[k], v) if k in BY_NAME else v for k, v in values.items()}
    for key, value in values.items():
        if key not in BY_NAME:
            raise ScenarioError(
                where, f"unknown parameter {key!r} = {value!r}", key, value, _allowed_for(key)
            )
        if isinstance(value, float) and not math.isfinite(value):
            raise ScenarioError(
                where, f"parameter {key!r} = {value!r} is not finite", key, value, _allowed_for(key)
            )
    try:
        return Params(**values)
    except ValidationError as exc:
        err = exc.errors()[0]
        if not err["loc"]:  # cross-field rule
            raise ScenarioError(where, err["msg"].removeprefix("Value error, ")) from None
        key = str(err["loc"][0])
        value = err["input"]
        raise ScenarioError(
            where, f"parameter {key!r} = {value!r} is invalid", key, value, _allowed_for(key)
        ) from None


def parse_assignment(text: str) -> tuple[str, Any]:
    """`key=value` from the command line; the value is read as a TOML value (numbers, booleans,
    quoted strings), falling back to a bare string such as `nord`."""
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key:
        raise ScenarioError("--set", f"{text!r} is not of the form key=value", allowed="key=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key, value


def check_name(name: str, where: str) -> str:
    """A scenario name names folders, so it must be a plain name: no separators, no '..'."""
    if not isinstance(name, str) or not PLAIN_NAME.fullmatch(name) or ".." in name:
        raise ScenarioError(where, f"'name' = {name!r} is invalid", "name", name, PLAIN_NAME_ALLOWED)
    return name


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    params: Params
    overrides: dict[str, Any] = field(default_factory=dict)
    path: str | None = None


def bundled_scenarios() -> dict[str, Path]:
    """The scenario library by name: each file's path below the library without `.toml`."""
    folder = Path(library.__file__).resolve().parent
    return {p.relative_to(folder).with_suffix("").as_posix(): p for p in sorted(folder.rglob("*.toml"))}


def resolve_scenario(given: str | Path) -> Path:
    """A scenario file: `given` itself when it is a file, else the library's scenario of that
    name (a folder of that name does not hide it); the error lists the library when neither
    is found."""
    path = Path(given)
    if path.is_file() or (path.exists() and str(given) not in bundled_scenarios()):
        return path
    found = bundled_scenarios().get(str(given))
    if found is not None:
        return found
    raise ScenarioError(
        str(given),
        "scenario file not found",
        allowed="a path to a readable TOML file or a scenario of the library: "
        + ", ".join(bundled_scenarios()),
    )


def _shown(value: Any) -> str:
    """A value as the error names it: a table by its keys, anything else as written."""
    if isinstance(value, dict):
        return "a table of " + (", ".join(map(str, value)) or "nothing")
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def load_scenario(
    path: str | Path | None,
    assignments: Iterable[str] = (),
    seed: int | None = None,
    name: str | None = None,
) -> Scenario:
    """Read a scenario file or library scenario (the defaults when `path` is None), apply
    `--set` assignments and a seed, and validate everything. `name` renames the result (e.g.
    one file run for several regions in one ensemble)."""
    if isinstance(assignments, str):  # one string would be read as its characters
        raise TypeError(
            f"assignments = {assignments!r}; allowed: a list of 'name=value' strings, e.g. [{assignments!r}]"
        )
    data: dict[str, Any] = {"name": "defaults", "description": "registry defaults"}
    where = "defaults"
    if path is not None:
        path = resolve_scenario(path)
        where = str(path)
        try:
            text = path.read_text(encoding="utf-8-sig")  # with or without a byte-order mark
        except FileNotFoundError:
            raise ScenarioError(
                where, "scenario file not found", allowed="a path to a readable TOML file"
            ) from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ScenarioError(
                where,
                f"cannot read scenario file ({exc.__class__.__name__})",
                allowed="a readable UTF-8 TOML file",
            ) from None
        try:
            data = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise ScenarioError(where, f"malformed TOML: {exc}", allowed="valid TOML") from None
        for key, value in data.items():
            if key not in SCENARIO_KEYS:
                raise ScenarioError(
                    where,
                    f"unknown top-level key {key!r} = {_shown(value)}",
                    key,
                    value,
                    "name, description, [parameters]",
                )
            if not isinstance(value, SCENARIO_KEYS[key]):
                kind = "a table" if SCENARIO_KEYS[key] is dict else "a string"
                raise ScenarioError(where, f"{key!r} = {value!r} has the wrong type", key, value, kind)
        if not data:
            raise ScenarioError(
                where, "the scenario file is empty", allowed="name, description and a [parameters] table"
            )
        data.setdefault("name", Path(path).stem)
        data.setdefault("description", "")
    overrides = dict(data.get("parameters", {}))
    cli: dict[str, Any] = dict(parse_assignment(a) for a in assignments)
    if seed is not None:
        cli["seed"] = seed
    # the file's values with --set over them, validated together: a --set may repair what the
    # file alone gets wrong (an end year before the start year it moves)
    overrides.update(cli)
    try:
        params = make_params(
            overrides, where if not cli else "--set" if path is None else f"{where} with --set"
        )
    except ScenarioError as exc:
        if exc.key is None or exc.key in cli or path is None:
            raise
        # a bad key of the file's own, not of a --set: the file alone is named
        raise ScenarioError(where, exc.problem, exc.key, exc.value, exc.allowed) from None
    return Scenario(
        name=check_name(name or data["name"], where),
        description=data["description"],
        params=params,
        overrides=overrides,
        path=None if path is None else str(path),
    )

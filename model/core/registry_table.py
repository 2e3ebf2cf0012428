"""The registry in four forms: a wrapped text listing for people, a Markdown table for
docs/odd.md, and CSV and JSON for tools (numbers as numbers, with units, roles and both the
validation and the exploration range)."""

from __future__ import annotations

import csv
import io
import json
import shutil
import sys
import textwrap
from pathlib import Path
from typing import Any

from mittelbau.core.parameters import REGISTRY, Parameter
from mittelbau.core.registry_entry import number_text

FORMATS = ("text", "md", "csv", "json")
COLUMNS = (
    "name",
    "group",
    "role",
    "unit",
    "default",
    "low",
    "high",
    "explore_low",
    "explore_high",
    "choices",
    "description",
    "source",
)


def _number(p: Parameter, x: float | None) -> int | float | None:
    """A range end in the parameter's own type: integers stay integers (the seed's bound is
    4294967295, not 4.29497e+09)."""
    if x is None:
        return None
    return int(x) if p.kind is int else float(x)


def records() -> list[dict[str, Any]]:
    """One dict per registry entry, values in their own types (None where not applicable)."""
    return [
        {
            "name": p.name,
            "group": p.group,
            "role": p.role,
            "unit": p.unit,
            "default": p.default,
            "low": _number(p, p.low),
            "high": _number(p, p.high),
            "explore_low": _number(p, p.explore_low),
            "explore_high": _number(p, p.explore_high),
            "choices": list(p.choices) if p.choices else None,
            "description": p.description,
            "source": p.source,
        }
        for p in REGISTRY
    ]


def _range(low: float | None, high: float | None, choices: tuple[str, ...] | None) -> str:
    if choices:
        return ", ".join(choices)
    return f"{number_text(low)} – {number_text(high)}"


def _markdown() -> str:
    header = ["name", "group", "role", "unit", "default", "range", "explored", "description", "source"]
    rows = [
        [
            p.name,
            p.group,
            p.role,
            p.unit,
            str(p.default),
            _range(p.low, p.high, p.choices),
            _range(p.explore_low, p.explore_high, p.choices),
            p.description,
            p.source,
        ]
        for p in REGISTRY
    ]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _csv() -> str:
    buf = io.StringIO()
    writer = csv.DictWriter(buf, COLUMNS, lineterminator="\n")
    writer.writeheader()
    for r in records():
        writer.writerow({**r, "choices": "|".join(r["choices"]) if r["choices"] else None})
    return buf.getvalue()


def _text(width: int) -> str:
    body = textwrap.TextWrapper(width=width, initial_indent="    ", subsequent_indent="    ")
    blocks = []
    for p in REGISTRY:
        unit = "" if p.unit in ("-", "") else f" {p.unit}"
        explored = "" if p.exploration is None else f"; explored {_range(*p.exploration, None)}"
        allowed = f"one of {', '.join(p.choices)}" if p.choices else _range(p.low, p.high, None)
        lines = [f"{p.name} = {p.default}{unit}  [{p.group}, {p.role}]"]
        lines += body.wrap(f"allowed: {allowed}{explored}")
        lines += body.wrap(p.description)
        lines += body.wrap(f"source: {p.source}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def registry_table(fmt: str = "md", width: int | None = None) -> str:
    """The registry as `text` (wrapped to `width`, default the terminal's, at most 100),
    `md`, `csv` or `json`."""
    match fmt:
        case "md" | "markdown":
            return _markdown()
        case "csv":
            return _csv()
        case "json":
            return json.dumps(records(), indent=2, ensure_ascii=False) + "\n"
        case "text":
            return _text(width or min(shutil.get_terminal_size().columns, 100))
    raise ValueError(f"format {fmt!r} is invalid; allowed: {', '.join(FORMATS)}")


START, END = "<!-- registry table: start -->", "<!-- registry table: end -->"


def update_document(path: Path) -> None:
    """Replace the table between the registry-table markers of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{registry_table('md')}{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    update_document(Path(sys.argv[1]))

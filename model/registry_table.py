"""The registry as a table (Markdown for docs/odd.md, CSV for tools)."""

from __future__ import annotations

import csv
import io

from mittelbau.parameters import REGISTRY, Parameter


def _range(p: Parameter) -> str:
    if p.choices:
        return ", ".join(p.choices)
    return f"{p.low:g} – {p.high:g}"


def registry_table(fmt: str = "markdown") -> str:
    header = ["name", "group", "unit", "default", "range", "description", "source"]
    rows = [[p.name, p.group, p.unit, str(p.default), _range(p), p.description, p.source] for p in REGISTRY]
    if fmt == "csv":
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerows([header, *rows])
        return buf.getvalue()
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(c.replace("|", "\\|") for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"

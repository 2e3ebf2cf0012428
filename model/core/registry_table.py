"""The registry as a table (Markdown for docs/odd.md, CSV for tools)."""

from __future__ import annotations

import csv
import io
import sys
from pathlib import Path

from mittelbau.core.parameters import REGISTRY, Parameter


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


START, END = "<!-- registry table: start -->", "<!-- registry table: end -->"


def update_document(path: Path) -> None:
    """Replace the table between the registry-table markers of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    path.write_text(f"{head}{START}\n{registry_table()}{END}{tail}", encoding="utf-8")


if __name__ == "__main__":
    update_document(Path(sys.argv[1]))

"""The optional extras of the package and what to say when a command needs one that is missing."""

from __future__ import annotations

import sys
from pathlib import Path

# the project folder of a checkout (its Makefile installs the extras from the lock); an
# installed package has none
PROJECT = Path(__file__).resolve().parents[2]


def in_checkout(root: Path | None = None) -> bool:
    """Whether the package runs from a checkout of the project (an editable install; `root`:
    the folder around the package, by default its own)."""
    root = PROJECT if root is None else root
    return (root / "Makefile").is_file() and (root / "pyproject.toml").is_file()


def needs_extra(what: str, extra: str, root: Path | None = None, prefix: str | None = None) -> str:
    """The one-line message for `what` (a command or interface) that needs the optional
    `extra`, saying how to install it: from the lock with `make dev` when mittelbau runs from a
    checkout's own `.venv` (pip is not in the environment `make` builds, and a package installed
    beside the lock would not stay); the checkout with its extra, into the environment that
    runs mittelbau (`prefix`, by default this interpreter's), from a checkout run otherwise; the
    package with its extra elsewhere."""
    root = PROJECT if root is None else root
    prefix = sys.prefix if prefix is None else prefix
    if in_checkout(root) and Path(prefix).resolve() == (root / ".venv").resolve():
        how = "run `make dev` in the project folder (every extra, from the lock)"
    elif in_checkout(root):
        how = (
            f"install `.[{extra}]` from the project folder into the environment that runs mittelbau "
            "(pip or uv), or use the project's own environment (`make dev`)"
        )
    else:
        how = f"install `mittelbau[{extra}]` into the environment that runs mittelbau (pip or uv)"
    return f"{what} needs the '{extra}' extra, which is not installed; to use it, {how}"

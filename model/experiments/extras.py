"""The optional extras of the package and what to say when a command needs one that is missing."""

from __future__ import annotations


def needs_extra(what: str, extra: str) -> str:
    """The one-line message for `what` (a command or interface) that needs the optional
    `extra`: how to install it from the project's lock, or with the Python that runs mittelbau."""
    return (
        f"{what} needs the '{extra}' extra; allowed: install it with `make dev` in the project "
        f"folder (every extra, from the lock), or `python -m pip install -e '.[{extra}]'` run with "
        "the Python of the environment that runs mittelbau"
    )

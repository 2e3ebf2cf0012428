"""The layers of docs/architecture.md, enforced on the package's own imports."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PACKAGE_DIRS = {
    "mittelbau": ROOT / "model",
    "mittelbau.calibration": ROOT / "calibration",
    "mittelbau.scenarios": ROOT / "scenarios",
}

# layer of a module: the first matching prefix; what each layer may import (besides itself)
LAYERS = {
    "mittelbau.core": "core",
    "mittelbau.levers": "levers",
    "mittelbau.experiments": "experiments",
    "mittelbau.calibration": "calibration",
    "mittelbau.cli": "front",
    "mittelbau.dashboard": "front",
}
MAY_IMPORT = {
    "core": {"core", "levers", "data"},
    "levers": {"core", "levers"},
    "experiments": {"core", "levers", "experiments", "data"},
    "calibration": {"core", "levers", "experiments", "calibration", "data"},
    "front": {"core", "levers", "experiments", "calibration", "front", "data"},
}


def layer(module: str) -> str | None:
    if module in ("mittelbau.calibration", "mittelbau.scenarios"):
        return "data"  # the package itself holds the committed data files, read by path
    for prefix, name in LAYERS.items():
        if module == prefix or module.startswith(prefix + "."):
            return name
    return None


def modules() -> dict[str, Path]:
    found = {}
    for package, folder in PACKAGE_DIRS.items():
        for path in folder.rglob("*.py"):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            found[".".join((package, *parts))] = path
    return found


def imported(path: Path) -> set[str]:
    """mittelbau modules imported anywhere in the file (top level or inside functions)."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names if a.name.startswith("mittelbau")}
        elif isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("mittelbau"):
            names.add(node.module)
            # `from mittelbau import calibration` names a subpackage
            names |= {f"{node.module}.{a.name}" for a in node.names if node.module == "mittelbau"}
    return names


def violations(found: dict[str, Path]) -> list[str]:
    bad = []
    for module, path in found.items():
        own = layer(module)
        if own is None or own == "data":
            continue
        for target in imported(path):
            other = layer(target)
            if other is not None and other not in MAY_IMPORT[own]:
                bad.append(f"{module} ({own}) imports {target} ({other})")
    return bad


def test_every_module_belongs_to_a_layer():
    unplaced = [m for m in modules() if m != "mittelbau" and layer(m) is None]
    assert unplaced == []


def test_no_module_imports_a_layer_above_it():
    assert violations(modules()) == []


@pytest.mark.parametrize(
    ("module", "target"),
    [
        ("mittelbau.core.model", "mittelbau.experiments.ensemble"),
        ("mittelbau.core.dynamics", "mittelbau.calibration.fit_report"),
        ("mittelbau.experiments.report", "mittelbau.cli"),
        ("mittelbau.levers.funding", "mittelbau.experiments.runs"),
    ],
)
def test_the_rule_catches_an_upward_import(tmp_path, module, target):
    path = tmp_path / "m.py"
    path.write_text(f"import {target}\n")
    assert violations({module: path}) != []


def test_only_the_command_line_chooses_a_matplotlib_backend():
    """Figures are `Figure` objects saved to files (`plots.save_figure`): a library function
    never imports pyplot or sets the backend of the process that calls it (a notebook, a
    server); the command line picks the file backend for itself."""
    offenders = []
    for name, path in modules().items():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names = [a.name for a in node.names]
                target = node.module if isinstance(node, ast.ImportFrom) else None
                if (
                    "matplotlib.pyplot" in names
                    or target == "matplotlib.pyplot"
                    or (target == "matplotlib" and "pyplot" in names)
                ):
                    offenders.append(name)
            elif isinstance(node, ast.Call) and ast.unparse(node.func) == "matplotlib.use":
                offenders.append(name)
    assert sorted(set(offenders)) == ["mittelbau.cli"]

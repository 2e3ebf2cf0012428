"""The project as others get it: the lock check, the wheel and its data, the scenario library."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

from mittelbau.cli import app
from mittelbau.core.scenario import ScenarioError, bundled_scenarios, load_scenario


def _uv(root: Path) -> Path:
    uv = root / ".tools" / "bin" / "uv"
    if not uv.exists():
        pytest.fail(f"no uv at {uv.relative_to(root)}: `make dev` installs it")
    return uv


def _tracked_copy(root: Path, dest: Path) -> Path:
    """The repository's tracked files (as a fresh clone has them) copied to `dest`."""
    files = subprocess.run(
        ["git", "ls-files", "-z"], cwd=root, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, files):
        if (root / name).is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / name, dest / name)
    return dest


def test_library_scenarios_run_by_name_from_anywhere(root, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no scenarios/ folder here
    assert {"baseline", "policy-mix", "equal-budget/funding"} <= set(bundled_scenarios())
    by_name = load_scenario("baseline", ["years=3"])
    by_path = load_scenario(root / "scenarios" / "baseline.toml", ["years=3"])
    assert by_name.name == "baseline" and by_name.params == by_path.params
    nested = load_scenario("equal-budget/funding")
    assert nested.params == load_scenario(root / "scenarios" / "equal-budget" / "funding.toml").params
    assert nested.params.funding_budget_eur > 0
    with pytest.raises(
        ScenarioError, match=r"nosuch: scenario file not found.*baseline, centres, cooperation"
    ):
        load_scenario("nosuch")
    res = CliRunner().invoke(app, ["run", "nosuch", "--out", str(tmp_path / "out")])
    assert res.exit_code == 2 and "scenario of the library" in res.output
    assert not (tmp_path / "out").exists()


@pytest.mark.slow
def test_lock_check_fails_when_pyproject_changes_without_the_lock(root, tmp_path):
    shutil.copy2(root / "pyproject.toml", tmp_path / "pyproject.toml")
    shutil.copytree(root / "requirements", tmp_path / "requirements")
    check = ["bash", str(tmp_path / "requirements" / "lock.sh"), str(_uv(root)), "--check"]
    same = subprocess.run(check, capture_output=True, text=True)
    assert same.returncode == 0, same.stderr
    # uv itself is locked with its hashes, at the version make installed
    tools = (root / "requirements" / "tools.txt").read_text()
    pin = tools.split()[0]
    assert pin.startswith("uv==") and tools.count("--hash=sha256:") > 5
    version = subprocess.run([str(_uv(root)), "--version"], capture_output=True, text=True).stdout
    assert version.split()[1] == pin.removeprefix("uv==")
    text = (tmp_path / "pyproject.toml").read_text()
    (tmp_path / "pyproject.toml").write_text(
        text.replace('    "pyarrow>=15",\n', '    "pyarrow>=15",\n    "six>=1.16",\n')
    )
    changed = subprocess.run(check, capture_output=True, text=True)
    assert changed.returncode != 0
    for name in ("core", "all"):
        assert f"requirements/{name}.txt does not match pyproject.toml: run 'make lock'" in changed.stderr
    assert "six==" in changed.stderr
    # the check never writes the lock
    assert (tmp_path / "requirements" / "core.txt").read_bytes() == (
        root / "requirements" / "core.txt"
    ).read_bytes()
    # a core pin that all.txt does not hold (make baseline would move it under the extras)
    core = tmp_path / "requirements" / "core.txt"
    core.write_text(re.sub(r"^numpy==\S+", "numpy==1.0.0", core.read_text(), flags=re.M))
    moved = subprocess.run(check, capture_output=True, text=True)
    assert moved.returncode != 0
    said = "requirements/core.txt pins what requirements/all.txt pins otherwise or not at all:"
    assert f"{said}\nnumpy==1.0.0" in moved.stderr


@pytest.mark.slow
def test_wheel_ships_its_data_and_runs_a_library_scenario_by_name(root, tmp_path):
    uv = _uv(root)
    src = _tracked_copy(root, tmp_path / "src")
    # without byte-compiling, setuptools notes that it skips it: not a packaging problem
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    constraints = src / "requirements" / "build.txt"  # the locked build backend
    built = subprocess.run(
        [uv, "build", "--wheel", "--build-constraints", constraints, "--out-dir", tmp_path / "dist", src],
        capture_output=True,
        text=True,
        env=env,
    )
    assert built.returncode == 0, built.stderr
    log = built.stdout + built.stderr
    assert "warning" not in log.lower(), log  # packages and their data configured in full
    (wheel,) = (tmp_path / "dist").glob("mittelbau-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for folder, packaged in (
        ("scenarios", "mittelbau/scenarios"),
        ("scenarios/equal-budget", "mittelbau/scenarios/equal-budget"),
        ("model/core/regions", "mittelbau/core/regions"),
        ("model/core", "mittelbau/core"),
        ("calibration", "mittelbau/calibration"),
    ):
        files = [*(root / folder).glob("*.toml"), *(root / folder).glob("*.csv")]  # data files
        assert files, folder
        for f in files:
            assert f"{packaged}/{f.name}" in names, f"{folder}/{f.name} is not in the wheel"

    venv = tmp_path / "venv"
    subprocess.run([uv, "venv", "--quiet", "--python", root / ".venv" / "bin" / "python", venv], check=True)
    python = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "sync", "--quiet", "--python", python, root / "requirements" / "core.txt"], check=True
    )
    subprocess.run([uv, "pip", "install", "--quiet", "--python", python, "--no-deps", wheel], check=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    where = subprocess.run(
        [python, "-c", "import mittelbau; print(mittelbau.__file__)"],
        cwd=elsewhere,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert Path(where.strip()).is_relative_to(venv)
    out = tmp_path / "baseline"
    ran = subprocess.run(
        [
            venv / "bin" / "mittelbau",
            "run",
            "baseline",
            "--set",
            "firms=200",
            "--set",
            "years=2",
            "--out",
            out,
        ],
        cwd=elsewhere,
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["scenario"]["name"] == "baseline" and summary["scenario"]["file"] == "baseline.toml"
    assert summary["years"] == [2015, 2017] and "stage shares 2017" in ran.stdout


def test_a_missing_extra_is_installed_from_the_lock_in_a_checkout_and_by_name_elsewhere(root, tmp_path):
    from mittelbau.experiments.extras import in_checkout, needs_extra

    assert in_checkout() and in_checkout(root)  # the tests run from a checkout
    here = needs_extra("scenario discovery", "discovery", root, str(root / ".venv"))
    assert here.startswith("scenario discovery needs the 'discovery' extra, which is not installed")
    assert "run `make dev` in the project folder" in here and "mittelbau[" not in here
    # a checkout run from an environment of its own: the checkout's extra into that one
    own = needs_extra("scenario discovery", "discovery", root, str(tmp_path / "conda"))
    assert "install `.[discovery]` from the project folder into the environment" in own
    # an installed package: no Makefile beside it, so the extra by name (no `make`, no `-e .`)
    wheel = needs_extra("scenario discovery", "discovery", tmp_path)
    assert "`mittelbau[discovery]`" in wheel and "make" not in wheel
    (tmp_path / "Makefile").write_text("")
    assert not in_checkout(tmp_path)  # a Makefile alone is not the project
    (tmp_path / "pyproject.toml").write_text("")
    assert in_checkout(tmp_path)

"""Lean start-up: a model run and the command line load only the libraries they use
(plotting when a figure is written, optimisation and statistics for fitting and reports)."""

import json
import subprocess
import sys

HEAVY = ("matplotlib", "scipy.stats", "scipy.optimize", "SALib", "pyabc", "distributed")


def loaded_after(code: str) -> dict:
    """Which of HEAVY a fresh interpreter has loaded after running `code`, and what `code`
    leaves in `result`."""
    report = f"loaded = [m for m in {HEAVY!r} if m in sys.modules]"
    probe = f"import json, sys\nresult = None\n{code}\n{report}\nprint(json.dumps([loaded, result]))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    loaded, result = json.loads(out.stdout.splitlines()[-1])
    return {"loaded": loaded, "result": result}


def test_a_model_run_loads_no_plotting_statistics_or_optimisation():
    got = loaded_after(
        "from mittelbau.core.model import MittelbauModel\n"
        "m = MittelbauModel(firms=300, seed=2, years=3, funding_budget_eur=1e6).run()\n"
        "result = [m.year, int(m.state.stage.sum())]"
    )
    assert got["loaded"] == []
    from mittelbau.core.model import MittelbauModel

    same = MittelbauModel(firms=300, seed=2, years=3, funding_budget_eur=1e6).run()
    assert got["result"] == [2018, int(same.state.stage.sum())]  # the run itself, whatever loads


def test_the_runs_of_ensembles_and_experiments_load_no_plotting():
    """What a worker process imports to run a model and collect its outputs."""
    got = loaded_after(
        "import mittelbau.experiments.experiment, mittelbau.experiments.ensemble\n"
        "from mittelbau.experiments.runs import simulate\n"
        "from mittelbau.core.scenario import load_scenario\n"
        "r = simulate(load_scenario(None, ['firms=300', 'years=2'], 4))\n"
        "result = len(r.stage_shares)"
    )
    assert got["loaded"] == [] and got["result"] > 0


def test_the_command_line_loads_its_libraries_per_command():
    got = loaded_after(
        "from typer.testing import CliRunner\n"
        "from mittelbau.cli import app\n"
        "out = CliRunner().invoke(app, ['params', '--format', 'md'])\n"
        "result = [out.exit_code, out.output.count('|') > 100]"
    )
    assert got["loaded"] == [] and got["result"] == [0, True]


def test_the_console_entry_point_runs_the_command_and_freezes_what_is_left(root):
    """`mittelbau` is `cli.main`: the command runs (its exit status kept), then the objects
    left are frozen so the interpreter's exit does not collect them."""
    import tomllib

    scripts = tomllib.loads((root / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["mittelbau"] == "mittelbau.cli:main"
    got = loaded_after(
        "import gc\nfrom mittelbau import cli\nsys.argv = ['mittelbau', 'params']\n"
        "try:\n    cli.main()\nexcept SystemExit as e:\n    code = e.code\n"
        "result = [code, gc.get_freeze_count() > 1000]"
    )
    assert got["result"] == [0, True]

"""mittelbau — agent-based simulation of polarisation in the business-model stages of
manufacturing SMEs (Fraunhofer ISI 2017 for IHK Region Stuttgart).

The public API, importable from `mittelbau` directly (loaded on first use, so the command
line stays quick):

- scenarios and parameters: `load_scenario`, `Scenario`, `ScenarioError`, `REGISTRY`,
  `REGIONS`, `SIZE_CLASSES`
- one run: `MittelbauModel`, `simulate`, `RunResult`
- ensembles and their comparison: `run_ensemble`, `load_ensemble`, `verdicts`,
  `verdict_sentence`, `horizon_outcomes`, `paired_differences`, `lever_table`, `write_report`
- what is at stake in € and persons: `economics_table` (one run), `stakes_table` and
  `kept_table` (ensembles: outcomes at the horizon, value added and jobs kept per lever)
- sensitivity analysis and scenario discovery: `sensitivity_factors`, `run_sensitivity`,
  `discover`, and `ema_model` (the model for EMA Workbench, with the `discovery` extra)
- outcomes, indicators and intervals: `OUTCOMES` (the outcome registry), `middle_share`,
  `hollowing_ratio`, `is_hollowed`, `polarisation_index`, `band`, `mean_interval`,
  `wilson_interval`
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import Any

try:
    __version__ = version("mittelbau")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

# public name -> (module, name in that module)
_API = {
    "load_scenario": ("core.scenario", "load_scenario"),
    "Scenario": ("core.scenario", "Scenario"),
    "ScenarioError": ("core.scenario", "ScenarioError"),
    "REGISTRY": ("core.parameters", "REGISTRY"),
    "REGIONS": ("core.categories", "REGIONS"),
    "SIZE_CLASSES": ("core.categories", "SIZE_CLASSES"),
    "MittelbauModel": ("core.model", "MittelbauModel"),
    "simulate": ("experiments.runs", "simulate"),
    "RunResult": ("experiments.outputs", "RunResult"),
    "run_ensemble": ("experiments.ensemble", "run_ensemble"),
    "load_ensemble": ("experiments.ensemble", "load_ensemble"),
    "verdicts": ("experiments.report", "verdicts"),
    "verdict_sentence": ("experiments.report", "verdict_sentence"),
    "horizon_outcomes": ("experiments.report", "horizon_outcomes"),
    "paired_differences": ("experiments.report", "paired_differences"),
    "lever_table": ("experiments.report", "lever_table"),
    "write_report": ("experiments.report", "write_report"),
    "economics_table": ("experiments.stakes", "economics_table"),
    "stakes_table": ("experiments.stakes", "stakes_table"),
    "kept_table": ("experiments.stakes", "kept_table"),
    "sensitivity_factors": ("experiments.sensitivity", "factors"),
    "run_sensitivity": ("experiments.sensitivity_study", "run_study"),
    "discover": ("experiments.discovery", "discover"),
    "ema_model": ("experiments.ema", "ema_model"),
    "OUTCOMES": ("core.outcomes", "OUTCOMES"),
    "middle_share": ("core.indicators", "middle_share"),
    "hollowing_ratio": ("core.indicators", "hollowing_ratio"),
    "is_hollowed": ("core.indicators", "is_hollowed"),
    "polarisation_index": ("core.indicators", "polarisation_index"),
    "band": ("experiments.intervals", "band"),
    "mean_interval": ("experiments.intervals", "mean_interval"),
    "wilson_interval": ("experiments.intervals", "wilson_interval"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name in _API:
        module, attr = _API[name]
        value = getattr(import_module(f"mittelbau.{module}"), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mittelbau' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))

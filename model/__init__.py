"""mittelbau — agent-based simulation of polarisation in the business-model stages of
manufacturing SMEs (Fraunhofer ISI 2017 for IHK Region Stuttgart).

The public API, importable from `mittelbau` directly (loaded on first use, so the command
line stays quick):

- scenarios and parameters: `load_scenario`, `Scenario`, `ScenarioError`, `REGISTRY`,
  `REGIONS`, `SIZE_CLASSES`
- one run: `MittelbauModel`, `simulate`, `RunResult`
- ensembles and their comparison: `run_ensemble`, `load_ensemble`, `verdicts`,
  `verdict_sentence`, `paired_differences`, `lever_table`, `write_report`
- sensitivity analysis and scenario discovery: `sensitivity_factors`, `run_sensitivity`,
  `discover`
- indicators and intervals: `middle_share`, `hollowing_ratio`, `is_hollowed`,
  `polarisation_index`, `band`, `mean_interval`, `wilson_interval`
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("mittelbau")
except PackageNotFoundError:  # running from a source tree without installation
    __version__ = "0+unknown"

# public name -> (module, name in that module)
_API = {
    "load_scenario": ("scenario", "load_scenario"),
    "Scenario": ("scenario", "Scenario"),
    "ScenarioError": ("scenario", "ScenarioError"),
    "REGISTRY": ("parameters", "REGISTRY"),
    "REGIONS": ("categories", "REGIONS"),
    "SIZE_CLASSES": ("categories", "SIZE_CLASSES"),
    "MittelbauModel": ("model", "MittelbauModel"),
    "simulate": ("runs", "simulate"),
    "RunResult": ("outputs", "RunResult"),
    "run_ensemble": ("ensemble", "run_ensemble"),
    "load_ensemble": ("ensemble", "load_ensemble"),
    "verdicts": ("report", "verdicts"),
    "verdict_sentence": ("report", "verdict_sentence"),
    "paired_differences": ("report", "paired_differences"),
    "lever_table": ("report", "lever_table"),
    "write_report": ("report", "write_report"),
    "sensitivity_factors": ("sensitivity", "factors"),
    "run_sensitivity": ("sensitivity_study", "run_study"),
    "discover": ("discovery", "discover"),
    "middle_share": ("indicators", "middle_share"),
    "hollowing_ratio": ("indicators", "hollowing_ratio"),
    "is_hollowed": ("indicators", "is_hollowed"),
    "polarisation_index": ("indicators", "polarisation_index"),
    "band": ("intervals", "band"),
    "mean_interval": ("intervals", "mean_interval"),
    "wilson_interval": ("intervals", "wilson_interval"),
}

__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        module, attr = _API[name]
        value = getattr(import_module(f"mittelbau.{module}"), attr)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mittelbau' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_API))

"""Start-up and build costs: a whole `mittelbau run` process at 4,000 firms, the import time
of the command line and of a run, and building a model of a million firms (time and memory
per firm). Prints figures; asserts nothing.

Processes run with bytecode caches (in a temporary folder), as an installed package has them
after its first start; the first, uncached start is run once and not counted. Wall times
depend on the machine's load: the CPU time of the child process is printed beside them.

"Build" is split into the construction (population synthesis, supplier network, state and
records) and the run-up (the yearly steps from the run-up's first year to the 2015 state).
Memory is what tracemalloc sees numpy and Python allocate: retained after the build, and the
peak while building.

    .venv/bin/python benchmarks/bench_startup.py
"""

from __future__ import annotations

import gc
import json
import os
import re
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

import numpy as np

from mittelbau.core.model import MittelbauModel
from mittelbau.core.population import synthesise

CLI = Path(sys.executable).with_name("mittelbau")
REPEATS = 3


def child_env(cache: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    return env | {"PYTHONPYCACHEPREFIX": cache}


def timed_process(args: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    """Wall and CPU seconds (user + system) of one child process."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    subprocess.run(args, env=env, cwd=cwd, check=True, capture_output=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def median_process(args: list[str], env: dict[str, str], cwd: str) -> tuple[float, float]:
    subprocess.run(args, env=env, cwd=cwd, check=True, capture_output=True)  # fills the caches
    runs = [timed_process(args, env, cwd) for _ in range(REPEATS)]
    return statistics.median(w for w, _ in runs), statistics.median(c for _, c in runs)


def import_ms(module: str, env: dict[str, str], cwd: str) -> float:
    """Cumulative import time of `module` (python -X importtime), median of REPEATS."""
    code = f"import {module}"
    times = []
    for _ in range(REPEATS + 1):
        out = subprocess.run(
            [sys.executable, "-X", "importtime", "-c", code], env=env, cwd=cwd, capture_output=True, text=True
        ).stderr
        top = [line for line in out.splitlines() if re.search(rf"\|\s{re.escape(module)}$", line)]
        times.append(int(top[-1].split("|")[1]) / 1000)
    return statistics.median(times[1:])


# the parts of a single run in a fresh interpreter, in the order `mittelbau run` meets them
PHASES = """
import json, time
from pathlib import Path
marks = [time.process_time()]
import mittelbau.cli
marks.append(time.process_time())
from mittelbau.experiments.outputs import write_run
from mittelbau.experiments.runs import simulate
from mittelbau.core.scenario import load_scenario
marks.append(time.process_time())
result = simulate(load_scenario("baseline", ["firms=4000"], None))
marks.append(time.process_time())
import matplotlib
matplotlib.use("Agg")
from mittelbau.experiments.plots import plot_stage_shares
marks.append(time.process_time())
write_run(result, Path("run"), figure=False)
marks.append(time.process_time())
plot_stage_shares(result.stage_shares, result.summary, Path("stage_shares.png"))
marks.append(time.process_time())
print(json.dumps([b - a for a, b in zip(marks, marks[1:])]))
"""
PHASE_NAMES = (
    "import the command line",
    "import the model and its outputs",
    "build and run (35 years with the run-up)",
    "import matplotlib",
    "write the tables",
    "draw and write the figure",
)


def phases(env: dict[str, str], cwd: str) -> list[float]:
    """CPU seconds of each part of a single run (PHASE_NAMES), median of REPEATS."""
    runs = []
    for _ in range(REPEATS + 1):
        out = subprocess.run([sys.executable, "-c", PHASES], env=env, cwd=cwd, capture_output=True, text=True)
        runs.append(json.loads(out.stdout.splitlines()[-1]))
    return [statistics.median(col) for col in zip(*runs[1:], strict=True)]


class _Timed(MittelbauModel):
    """The model with the moment its run-up starts noted, to split the build."""

    def run_for(self, duration: int) -> None:
        if not hasattr(self, "runup_started"):
            self.runup_started = time.perf_counter()
        super().run_for(duration)


def build(firms: int) -> tuple[float, float, int]:
    """Construction and run-up seconds, and run-up years, of one build."""
    gc.collect()
    t0 = time.perf_counter()
    m = _Timed(firms=firms, seed=1)
    return m.runup_started - t0, time.perf_counter() - m.runup_started, m.runup_years


def memory(firms: int) -> tuple[float, float]:
    """KB per firm retained after one build and at its peak (timed apart: tracing slows
    allocation)."""
    gc.collect()
    tracemalloc.start()
    m = MittelbauModel(firms=firms, seed=1)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    del m
    return current / firms / 1024, peak / firms / 1024


def entrant_synthesis(entrants: int = 120, repeats: int = 500) -> float:
    """Seconds to synthesise one year's entrants at 4,000 firms (about 3 % exit a year)."""
    m = MittelbauModel(firms=4_000, seed=1)
    probs, rng = m.runup.state_in(2015), np.random.default_rng(0)
    t0 = time.perf_counter()
    for _ in range(repeats):
        synthesise(m.region, entrants, rng, probs)
    return (time.perf_counter() - t0) / repeats


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        env = child_env(str(Path(tmp) / "bytecode"))
        out = str(Path(tmp) / "run")
        wall, cpu = median_process(
            [str(CLI), "run", "baseline", "--set", "firms=4000", "--out", out, "--overwrite", "-q"], env, tmp
        )
        print(f"mittelbau run baseline at 4,000 firms, whole process: {wall:.2f} s wall, {cpu:.2f} s CPU")
        wall, cpu = median_process([str(CLI), "--help"], env, tmp)
        print(f"mittelbau --help, whole process: {wall:.2f} s wall, {cpu:.2f} s CPU")
        worker = [sys.executable, "-c", "import mittelbau.experiments.experiment"]
        wall, cpu = median_process(worker, env, tmp)
        print(f"a worker's imports (experiments), whole process: {wall:.2f} s wall, {cpu:.2f} s CPU")
        print("\nparts of a single run at 4,000 firms (CPU, fresh interpreter)")
        for name, cpu in zip(PHASE_NAMES, phases(env, tmp), strict=True):
            print(f"  {name:<42} {cpu:6.3f} s")
        print("\nimport time (python -X importtime, cumulative)")
        for module, what in (
            ("mittelbau.cli", "every command"),
            ("mittelbau.core.model", "the model"),
            ("mittelbau.experiments.runs", "a run and its outputs (what a worker loads)"),
            ("matplotlib.figure", "figures, when one is written"),
        ):
            print(f"  {module:<30} {import_ms(module, env, tmp):7.0f} ms   {what}")

    # also solves the run-up's inversion, once per process, before the builds are timed
    entry_ms = entrant_synthesis() * 1e3
    print(f"\none year's entrants at 4,000 firms (120 firms) synthesised in {entry_ms:.2f} ms")
    firms = 1_000_000
    builds = [build(firms) for _ in range(REPEATS)]
    construction, runup, years = (statistics.median(col) for col in zip(*builds, strict=True))
    retained, peak = memory(firms)
    print(f"\nbuild at {firms:,} firms (median of {REPEATS})")
    print(f"  construction (synthesis, network, state): {construction:.2f} s")
    print(f"  run-up to the 2015 state ({years} yearly steps): {runup:.2f} s")
    print(f"  memory: {retained:.3f} KB per firm retained, {peak:.3f} KB per firm at the peak")


if __name__ == "__main__":
    main()

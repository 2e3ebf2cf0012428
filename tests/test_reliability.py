"""Results you can trust: folders bound to their design, damaged runs recomputed, one writer per
folder, plain scenario names, every bad option a one-line error before anything is written,
workers that die with their parent, and faults that end in a correct result or a clear error."""

import contextlib
import errno
import json
import os
import re
import signal
import subprocess
import sys
import time

import pandas as pd
import psutil
import pyarrow.parquet as pq
import pytest
from conftest import is_service
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from mittelbau.cli import app
from mittelbau.core.parameters import REGISTRY
from mittelbau.experiments.ensemble import EnsembleError, load_ensemble
from mittelbau.experiments.store import folder_lock

runner = CliRunner()
TINY = ["--set", "firms=200", "--set", "years=2"]
TABLES = ("stage_shares", "transitions", "indicators", "levers")


def cli(*args: str):
    return runner.invoke(app, list(args))


def one_error_line(res) -> str:
    """The command's error output, checked to be exactly one line starting with 'error: '."""
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr
    return lines[0]


def listing(folder) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


@pytest.fixture(scope="module")
def base(root) -> str:
    return str(root / "scenarios" / "baseline.toml")


@pytest.fixture(scope="module")
def ensemble(tmp_path_factory, base):
    """A finished two-replicate ensemble of the baseline (200 firms, 2 years)."""
    out = tmp_path_factory.mktemp("ens") / "e"
    res = cli("run", base, *TINY, "--replications", "2", "--workers", "1", "--out", str(out), "-q")
    assert res.exit_code == 0, res.output
    return out


def copy_of(ensemble, tmp_path):
    import shutil

    target = tmp_path / "e"
    shutil.copytree(ensemble, target)
    return target


# ---- 1. an ensemble folder is bound to its design ---------------------------------------------
def test_1_other_parameters_other_scenarios_or_fewer_runs_are_refused(ensemble, tmp_path, base, root):
    out = copy_of(ensemble, tmp_path)
    manifest = (out / "ensemble.json").read_bytes()
    before = listing(out)
    cases = {
        "firms=300": (
            ["run", base, "--set", "firms=300", "--set", "years=2", "--replications", "2"],
            "scenario 'baseline' with other parameters (firms 200 there, 300 asked)",
        ),
        "other scenario": (
            ["run", str(root / "scenarios" / "policy-mix.toml"), *TINY, "--replications", "2"],
            "it holds scenario 'baseline', which this command does not run",
        ),
        "other seed": (
            ["run", base, *TINY, "--seed", "5", "--replications", "2"],
            "(seed 20170501 there, 5 asked)",
        ),
    }
    for name, (args, fragment) in cases.items():
        res = cli(*args, "--out", str(out), "--workers", "1")
        assert res.exit_code == 2, (name, res.output)
        line = one_error_line(res)
        assert "is bound to another ensemble design" in line and fragment in line, (name, line)
        assert (out / "ensemble.json").read_bytes() == manifest and listing(out) == before
    # a strict extension — more replications of the same scenario — adds only the new runs
    res = cli("run", base, *TINY, "--replications", "3", "--workers", "1", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert res.stdout.strip().startswith(f"1 runs done, 2 already in {out}/")
    assert json.loads((out / "ensemble.json").read_text())["replications"] == 3


def test_1_fewer_replications_of_an_ensemble_are_refused(tmp_path, base, root):
    mix = str(root / "scenarios" / "policy-mix.toml")
    out = tmp_path / "two"
    res = cli("run", base, mix, *TINY, "--replications", "2", "--workers", "1", "--out", str(out), "-q")
    assert res.exit_code == 0, res.output
    res = cli("run", base, mix, *TINY, "--replications", "1", "--workers", "1", "--out", str(out))
    assert res.exit_code == 2
    assert "it holds 2 replications per scenario, 1 asked" in one_error_line(res)
    assert len(load_ensemble(out)["summaries"]) == 4


def test_an_ensemble_is_typed_parquet_with_its_parameters(ensemble):
    levers = pq.read_schema(ensemble / "runs" / "baseline" / "rep-0000" / "levers.parquet")
    assert pq.read_metadata(ensemble / "runs" / "baseline" / "rep-0000" / "levers.parquet").num_rows == 0
    kinds = {c: str(levers.field(c).type) for c in ("scenario", "replicate", "seed", "year", "spent_eur")}
    assert kinds["scenario"] in ("string", "large_string")
    assert [kinds[c] for c in ("replicate", "seed", "year", "spent_eur")] == [
        "int64",
        "int64",
        "int64",
        "double",
    ]
    runs = pd.read_parquet(ensemble / "runs.parquet")
    assert list(runs.columns[:3]) == ["scenario", "replicate", "seed"] and len(runs) == 2
    assert (runs["firms"] == 200).all() and (runs["years"] == 2).all() and "middle_share" in runs
    loaded = load_ensemble(ensemble)
    assert loaded["runs"].equals(runs) and loaded["levers"].empty
    assert str(loaded["levers"]["spent_eur"].dtype) == "float64"


# ---- 2. damaged runs are recomputed, never used ------------------------------------------------
def test_2_a_truncated_run_file_is_recomputed_and_said_so(ensemble, tmp_path, base):
    out = copy_of(ensemble, tmp_path)
    clean = load_ensemble(out)
    data = out / "runs" / "baseline" / "rep-0001" / "indicators.parquet"
    data.write_bytes(data.read_bytes()[: data.stat().st_size // 2])
    with pytest.raises(EnsembleError, match=r"rep-0001 is damaged \(indicators.parquet does not match"):
        load_ensemble(out)
    res = cli("run", base, *TINY, "--replications", "2", "--workers", "1", "--out", str(out))
    assert res.exit_code == 0, res.output
    assert "runs/baseline/rep-0001 is damaged (indicators.parquet does not match its checksum)" in res.output
    assert f"1 runs done, 1 already in {out}/" in res.stdout and "1 damaged runs recomputed" in res.stdout
    again = load_ensemble(out)
    assert all(again[t].equals(clean[t]) for t in TABLES)


def test_2_a_truncated_summary_is_one_line_naming_the_run(ensemble, tmp_path):
    out = copy_of(ensemble, tmp_path)
    summary = out / "runs" / "baseline" / "rep-0000" / "summary.json"
    summary.write_text(summary.read_text()[:100])
    res = cli("report", str(out))
    assert res.exit_code == 2
    line = one_error_line(res)
    assert f"run {out}/runs/baseline/rep-0000 is damaged (summary.json does not match its checksum)" in line


# ---- 3. a scenario's name is a plain name, never a path ----------------------------------------
@pytest.mark.parametrize("name", ["../../escaped", "", "a/b", ".hidden", "..", "x" * 81])
def test_3_scenario_names_are_plain_names(tmp_path, name, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "s.toml").write_text(f"name = {json.dumps(name)}\n[parameters]\nfirms = 200\nyears = 1\n")
    for args in (["run", "s.toml"], ["run", "s.toml", "--replications", "2"]):
        res = cli(*args)
        assert res.exit_code == 2
        line = one_error_line(res)
        assert f"'name' = {name!r} is invalid" in line and "a plain name" in line
    assert sorted(os.listdir(tmp_path)) == ["s.toml"]


# ---- 4. workers die with their parent ------------------------------------------------------------
@pytest.mark.parametrize("executor", ["local", pytest.param("dask", marks=pytest.mark.slow)])
def test_4_workers_die_when_the_parent_is_killed(tmp_path, base, executor):
    args = [sys.executable, "-m", "mittelbau.cli", "run", base, "--set", "firms=300", "--set", "years=3"]
    args += ["--replications", "200", "--workers", "2", "--executor", executor]
    args += ["--out", str(tmp_path / "k"), "--quiet"]
    parent = subprocess.Popen(args)
    deadline = time.time() + 60
    workers: list[psutil.Process] = []
    while time.time() < deadline:
        workers = psutil.Process(parent.pid).children(recursive=True)
        if len(workers) >= 2 and (executor == "local" or list((tmp_path / "k").glob("runs/*/rep-*"))):
            break
        time.sleep(0.05)
    assert len(workers) >= 2
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert alive == []


@pytest.mark.parametrize(
    ("command", "overwrite"),
    [(["sensitivity", "sobol", "--samples", "8"], False), (["run", "--replications", "200"], True)],
)
def test_4_ctrl_c_ends_the_command_and_its_workers_at_once(tmp_path, base, command, overwrite):
    """Ctrl-C reaches every process of the command (the terminal signals its process group):
    the workers ignore it and the command ends them with the work queued for them, says in one
    line that the finished runs are kept and how to resume (without --overwrite, which would
    empty the folder again), and exits 130; a second Ctrl-C soon after does not leave it
    waiting on its workers. The command then resumes."""
    out = tmp_path / "c"
    args = [sys.executable, "-m", "mittelbau.cli", command[0], *command[1:-2], base, *command[-2:]]
    args += ["--set", "firms=500", "--set", "years=6", "--workers", "2", "--out", str(out)]
    restart = ["--overwrite"] if overwrite else []
    args += [*restart, "--quiet"]
    parent = subprocess.Popen(args, start_new_session=True, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 90
    workers: list[psutil.Process] = []
    while time.time() < deadline:  # work finished, and workers at work (between pools there are none)
        if list(out.glob("**/batch-*")) + list(out.glob("runs/*/rep-*")):
            workers = [w for w in psutil.Process(parent.pid).children(recursive=True) if not is_service(w)]
            if workers:
                break
        time.sleep(0.05)
    assert workers, "no workers started"
    os.killpg(parent.pid, signal.SIGINT)
    time.sleep(0.3)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(parent.pid, signal.SIGINT)
    _, err = parent.communicate(timeout=30)
    assert parent.returncode == 130, err
    last = err.strip().splitlines()[-1]
    assert last.startswith("interrupted: the finished runs are kept in"), err
    assert last.endswith(
        "the same command without --overwrite resumes them" if overwrite else "the same command resumes them"
    )
    _, alive = psutil.wait_procs(workers, timeout=5)
    assert alive == []
    again = subprocess.run(
        [a for a in args if a not in ("--overwrite", "--quiet")], capture_output=True, text=True, timeout=300
    )
    assert again.returncode == 0, again.stderr
    assert "runs kept from the output folder" in again.stderr or " already in " in again.stdout


# ---- 5. one folder, one writer ------------------------------------------------------------------
def test_5_a_second_writer_stops_at_once(ensemble, tmp_path, base):
    out = copy_of(ensemble, tmp_path)
    before = listing(out)
    with folder_lock(out):
        res = cli("run", base, *TINY, "--replications", "3", "--workers", "1", "--out", str(out))
        for command in (["sensitivity", "morris", "--trajectories", "2"], ["discover", "--samples", "4"]):
            study = tmp_path / "s"
            (study / "runs").mkdir(parents=True, exist_ok=True)
            (study / "indices.csv").write_text("being written")
            # --overwrite too: the folder is emptied only by its lock's holder
            for extra in ([], ["--overwrite"]):
                with folder_lock(study):
                    other = cli(
                        *command,
                        base,
                        *TINY,
                        "--factors",
                        "exit_rate",
                        "--replications",
                        "1",
                        "--workers",
                        "1",
                        "--out",
                        str(study),
                        *extra,
                    )
                assert other.exit_code == 2 and "being written by another mittelbau process" in other.stderr
                assert sorted(os.listdir(study)) == [".lock", "indices.csv", "runs"], extra
    assert res.exit_code == 2
    line = one_error_line(res)
    assert f"{out} is being written by another mittelbau process (pid {os.getpid()})" in line
    assert listing(out) == before


def test_5_overwrite_empties_a_study_folder_holding_its_lock(tmp_path, base):
    study = tmp_path / "s"
    (study / "runs").mkdir(parents=True)
    (study / "notes.txt").write_text("old")
    command = ["sensitivity", "morris", base, *TINY, "--trajectories", "2", "--factors", "exit_rate"]
    res = cli(*command, "--replications", "1", "--workers", "1", "--out", str(study), "--overwrite", "-q")
    assert res.exit_code == 0, res.output
    assert "notes.txt" not in os.listdir(study) and (study / "indices.csv").exists()


def test_5_a_single_run_has_one_writer_too(tmp_path, base):
    from mittelbau.experiments.store import run_lock

    out = tmp_path / "single"
    with run_lock(out):
        res = cli("run", base, *TINY, "--out", str(out))
    assert res.exit_code == 2
    assert f"{out} is being written by another mittelbau process (pid {os.getpid()})" in one_error_line(res)
    assert not out.exists()
    assert cli("run", base, *TINY, "--out", str(out)).exit_code == 0  # the lock ended with its holder
    assert (out / "summary.json").exists()


def test_5_two_ensembles_into_one_folder_one_stops_the_other_completes(tmp_path, base):
    out = tmp_path / "both"
    small = ["--set", "firms=400", "--set", "years=3", "--replications", "80"]  # several seconds
    args = [sys.executable, "-m", "mittelbau.cli", "run", base, *small]
    first = subprocess.Popen([*args, "--workers", "1", "--out", str(out), "--quiet"])
    deadline = time.time() + 60
    while time.time() < deadline and not list(out.glob("runs/*/rep-*")):
        time.sleep(0.05)
    res = cli("run", base, *small, "--workers", "1", "--out", str(out))
    assert first.wait(timeout=120) == 0
    assert res.exit_code == 2
    assert f"is being written by another mittelbau process (pid {first.pid})" in one_error_line(res)
    done = load_ensemble(out)
    assert sorted(done["runs"]["replicate"]) == list(range(80))


# ---- 6. output paths are checked first, never mixed -----------------------------------------------
def test_6_output_paths(tmp_path, base, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "file").write_text("x")
    for out, fragment in (
        ("file", "--out 'file' is a file"),
        ("", "--out '' is invalid; allowed: a folder path"),
        ("/sys/mittelbau-out", "--out '/sys/mittelbau-out' is not writable"),
    ):
        for extra in ([], ["--replications", "2"]):
            res = cli("run", base, *TINY, *extra, "--out", out)
            assert res.exit_code == 2 and fragment in one_error_line(res), res.output
    old = tmp_path / "old"
    old.mkdir()
    (old / "notes.txt").write_text("mine")
    res = cli("run", base, *TINY, "--out", "old")
    assert res.exit_code == 2 and "--out 'old' is not empty" in one_error_line(res)
    res = cli("run", base, *TINY, "--replications", "2", "--out", "old")
    assert res.exit_code == 2 and "is not empty and holds no earlier ensemble" in one_error_line(res)
    (tmp_path / ".old.tmp-999999999-x").mkdir()  # left by a write whose process has ended
    res = cli("run", base, *TINY, "--out", "old", "--overwrite", "-q")
    assert res.exit_code == 0, res.output
    assert "notes.txt" not in os.listdir(old) and "summary.json" in os.listdir(old)
    res = cli("run", base, *TINY, "--out", ".", "--overwrite")
    assert res.exit_code == 2 and "--out '.' holds the current folder" in one_error_line(res)
    assert sorted(os.listdir(tmp_path)) == ["file", "old"]
    # an ensemble's folder is not a study's, though both keep their runs in runs/
    res = cli("run", base, *TINY, "--replications", "2", "--workers", "1", "--out", "ens", "-q")
    assert res.exit_code == 0, res.output
    before = listing(tmp_path / "ens")
    for command in (["sensitivity", "morris", "--trajectories", "2"], ["discover", "--samples", "4"]):
        res = cli(*command, base, *TINY, "--factors", "exit_rate", "--out", "ens")
        assert res.exit_code == 2 and "is not empty and holds no earlier experiment" in one_error_line(res)
    assert listing(tmp_path / "ens") == before
    # the refit of the initial state checks its folder before it fits
    res = cli("fit-initial-state", "--out", "file")
    assert res.exit_code == 2 and "--out 'file' is a file" in one_error_line(res)


# ---- 7. every option checked before anything runs ---------------------------------------------
BAD_OPTIONS = {
    "calibrate fit --population 0": (["calibrate", "fit", "--population", "0"], "--population = 0"),
    "calibrate fit --generations 0": (["calibrate", "fit", "--generations", "0"], "--generations = 0"),
    "morris --trajectories 0": (["sensitivity", "morris", "--trajectories", "0"], "--trajectories = 0"),
    "morris --replications 0": (["sensitivity", "morris", "--replications", "0"], "--replications = 0"),
    "sobol --samples 10": (["sensitivity", "sobol", "--samples", "10"], "--samples = 10"),
    "discover --samples 0": (["discover", "--samples", "0"], "--samples = 0"),
    "calibrate report --seed -1": (["calibrate", "report", "--seed", "-1"], "--seed = -1 is invalid"),
    "calibrate validate --firms": (
        ["calibrate", "validate", "--firms", "2000000"],
        "--firms = 2000000 is invalid; allowed: 100 to 1,000,000",
    ),
    "calibrate fit --seed": (["calibrate", "fit", "--seed", "4294967296"], "--seed = 4294967296"),
    "calibrate identify --seed": (
        ["calibrate", "identify", "--seed", "4294967000"],
        "(the synthetic targets take --seed + 1000)",
    ),
    "calibrate identifiability --n 4": (
        ["calibrate", "identifiability", "--n", "4"],
        "--n = 4 is invalid; allowed: a power of two from 8 to 65,536",
    ),
    "discover --replications 0": (["discover", "--replications", "0"], "--replications = 0"),
    "discover --min-density 5": (["discover", "--min-density", "5"], "--min-density = 5.0"),
    "discover --factors ,": (["discover", "--factors", ","], "--factors ',' names no parameter"),
    "dashboard --port 99999": (["dashboard", "--port", "99999"], "--port = 99999"),
    "repeated --set": (
        ["run", "--set", "firms=-5", "--set", "firms=300"],
        "--set firms is given twice ('firms=-5', 'firms=300')",
    ),
    "--seed and --set seed": (["run", "--seed", "3", "--set", "seed=4"], "--seed 3 and --set 'seed=4'"),
    "--workers 0": (["run", "--replications", "2", "--workers", "0"], "--workers = 0"),
    "one scenario twice": (
        ["run", "baseline", "baseline"],
        "scenarios baseline, baseline are all named 'baseline'",
    ),
    "executor options on a single run": (["run", "--workers", "2"], "--workers given for a single run"),
    "unknown executor": (["run", "--replications", "2", "--executor", "ray"], "--executor 'ray'"),
    "scheduler without dask": (
        ["run", "--replications", "2", "--scheduler", "tcp://127.0.0.1:1"],
        "goes with --executor dask",
    ),
    "unreachable scheduler": (
        ["run", "--replications", "2", "--executor", "dask", "--scheduler", "tcp://127.0.0.1:1"],
        "--scheduler 'tcp://127.0.0.1:1' did not answer",
    ),
}


def test_7_a_scheduler_address_that_accepts_and_never_answers_fails_in_one_line(tmp_path, base):
    """A listener that accepts the connection and says nothing (a dead tunnel, another service)
    is given up after the connection's deadline, not waited on for ever."""
    import socket
    import threading

    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            with contextlib.suppress(OSError):  # a timeout, or the listener closed at the end
                held.append(listener.accept()[0])

    threading.Thread(target=accept, daemon=True).start()
    try:
        args = [
            sys.executable,
            "-m",
            "mittelbau.cli",
            "run",
            base,
            "--replications",
            "2",
            "--set",
            "firms=200",
        ]
        args += ["--executor", "dask", "--scheduler", f"tcp://127.0.0.1:{port}", "--out", str(tmp_path / "d")]
        res = subprocess.run(args, capture_output=True, text=True, timeout=120)
    finally:
        stop.set()
        for conn in held:
            conn.close()
        listener.close()
    assert res.returncode == 2
    said = f"error: --scheduler 'tcp://127.0.0.1:{port}' did not answer as a Dask scheduler within"
    assert any(line.startswith(said) for line in res.stderr.splitlines()), res.stderr
    assert held and not (tmp_path / "d").exists()


def test_7_a_running_cluster_left_without_workers_is_warned_of_once(monkeypatch, caplog):
    """Work out on a cluster whose workers are all gone waits for one: said once it has lasted,
    again only after a worker came and went."""
    import threading

    from mittelbau.experiments import executors

    monkeypatch.setattr(executors, "NO_WORKERS_SECONDS", 0.2)
    monkeypatch.setattr(executors, "WORKERS_CHECK_SECONDS", 0.02)
    # none for 30 checks (at least 0.6 s), one for 5, then none for good
    counts = [0] * 30 + [1] * 5 + [0] * 40
    asked = []

    class Cluster:
        def scheduler_info(self):
            asked.append(1)
            return {"workers": dict.fromkeys(range(counts[min(len(asked), len(counts)) - 1]))}

    stop = threading.Event()
    watcher = threading.Thread(target=executors.watch_workers, args=(Cluster(), "tcp://h:1", stop))
    with caplog.at_level("WARNING", logger=executors.__name__):
        watcher.start()
        deadline = time.time() + 60
        while len(asked) < len(counts) + 20 and time.time() < deadline:
            time.sleep(0.05)
        stop.set()
        watcher.join(5)
    said = [r.getMessage() for r in caplog.records]
    assert len(said) == 2, said
    assert said[0].startswith("warning: no Dask worker has been connected to tcp://h:1 for 0 s; the work")


def test_7_a_recovery_table_and_a_fit_folder_of_another_design_are_one_line_errors(tmp_path):
    rec = tmp_path / "rec"
    rec.mkdir()
    (rec / "identifiability.csv").write_text("")
    res = cli("calibrate", "fit", "--recovery", str(rec), "--out", str(tmp_path / "fit"))
    assert res.exit_code == 2 and "is not a readable table (EmptyDataError)" in one_error_line(res)
    (rec / "identifiability.csv").write_text("parameter,median\nbm_loss_rate,0.03\n")
    res = cli("calibrate", "identifiability", "--recovery", str(rec), "--out", str(tmp_path / "s"))
    assert res.exit_code == 2 and "has no column truth, sd_ratio, recovered" in one_error_line(res)
    assert not (tmp_path / "fit").exists() and not (tmp_path / "s").exists()
    # a folder holding a fit of other settings: resumed by no one, started anew with --fresh
    other = tmp_path / "identify"
    other.mkdir()
    (other / "abc.db").write_text("")
    (other / "fit.json").write_text("{}")
    res = cli("calibrate", "identify", "--firms", "100", "--out", str(other))
    assert res.exit_code == 2 and "holds a fit of another design" in one_error_line(res)
    assert "--fresh" in one_error_line(res)
    res = cli("calibrate", "identify", "--help")
    assert "--fresh" in res.output


@pytest.mark.parametrize("case", BAD_OPTIONS)
def test_7_bad_options_exit_2_with_one_line_and_write_nothing(tmp_path, case, monkeypatch):
    monkeypatch.chdir(tmp_path)
    args, fragment = BAD_OPTIONS[case]
    res = cli(*args, "--out", str(tmp_path / "out")) if args[0] != "dashboard" else cli(*args)
    assert res.exit_code == 2, res.output
    assert fragment in one_error_line(res)
    assert os.listdir(tmp_path) == []


@pytest.mark.parametrize(
    "command",
    [
        ["calibrate", "report"],
        ["calibrate", "validate"],
        ["calibrate", "fit"],
        ["calibrate", "identifiability"],
        ["calibrate", "identify"],
        ["fit-initial-state"],
    ],
    ids=lambda c: " ".join(c),
)
def test_7_an_empty_out_of_a_calibration_command_is_refused(tmp_path, command, monkeypatch):
    """`--out ''` names no folder: refused, not taken as the current folder."""
    extra = []
    if command[-1] == "identifiability":  # its recovery table is read first
        recovery = tmp_path / "recovery"
        recovery.mkdir()
        table = "parameter,truth,sd_ratio,recovered\nbm_loss_rate,0.03,0.2,True\n"
        (recovery / "identifiability.csv").write_text(table)
        extra = ["--recovery", str(recovery)]
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    res = cli(*command, *extra, "--out", "")
    assert res.exit_code == 2, res.output
    assert "--out '' is invalid; allowed: a folder path" in one_error_line(res)
    assert os.listdir(work) == []


def test_5_a_calibration_command_stops_at_another_writer(tmp_path):
    out = tmp_path / "v"
    with folder_lock(out):
        res = cli("calibrate", "validate", "--out", str(out), "--firms", "200", "--replications", "2")
    assert res.exit_code == 2, res.output
    assert "is being written by another mittelbau process" in one_error_line(res)
    assert sorted(p.name for p in out.iterdir()) == [".lock"]


def test_7_workers_are_capped_at_the_runs(tmp_path, base):
    res = cli("run", base, *TINY, "--replications", "2", "--workers", "40", "--out", str(tmp_path / "w"))
    assert res.exit_code == 0, res.output
    assert "(1 scenario × 2 replications, local, 2 workers)" in res.stdout


def test_7_scenarios_of_other_horizons_are_refused_before_anything_is_written(tmp_path, base):
    """An ensemble compares its scenarios at one horizon: scenarios whose years differ are a
    one-line error naming each (before, the runs ran and the report failed)."""
    short = tmp_path / "short.toml"
    short.write_text('name = "short"\ndescription = "ten years"\n\n[parameters]\nyears = 10\n')
    out = tmp_path / "mixed"
    res = cli("run", base, str(short), "--set", "firms=200", "--replications", "2", "--out", str(out))
    assert res.exit_code == 2
    line = one_error_line(res)
    assert "years = baseline 20, short 10" in line and "allowed: one horizon" in line
    assert not out.exists()


def test_7_a_missing_dask_extra_from_python_writes_nothing(tmp_path, monkeypatch):
    """The functions the commands call refuse `executor="dask"` without the extra before they
    touch the folder (the command line checks first itself)."""
    import importlib.util

    from mittelbau.core.scenario import load_scenario
    from mittelbau.experiments.ensemble import run_ensemble
    from mittelbau.experiments.executors import ExecutionError
    from mittelbau.experiments.experiment import evaluate_points

    found = importlib.util.find_spec

    def find_spec(name, *args):
        return None if name == "distributed" else found(name, *args)

    monkeypatch.setattr(importlib.util, "find_spec", find_spec)
    scenario = load_scenario("baseline", ["firms=200", "years=2"])
    for call in (
        lambda out: run_ensemble([scenario], 2, out, "dask", 2),
        lambda out: evaluate_points(scenario, [{}], 1, out, "dask", 2),
    ):
        with pytest.raises(ExecutionError, match="needs the 'dask' extra"):
            call(tmp_path / "out")
        assert not (tmp_path / "out").exists()


def test_7_discovery_without_its_extra_runs_and_writes_nothing(tmp_path, monkeypatch):
    """Scenario discovery without EMA Workbench is refused before its sample runs, from Python
    and from the command line, not after every point has run."""
    import importlib.util

    from mittelbau.core.scenario import load_scenario
    from mittelbau.experiments import discovery

    found = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "ema_workbench" else found(name, *a)
    )
    ran = []
    monkeypatch.setattr(discovery, "evaluate_points", lambda *a, **k: ran.append(1))
    with pytest.raises(ImportError, match="needs the 'discovery' extra"):
        discovery.discover(load_scenario("baseline", ["firms=200"]), tmp_path / "out", samples=4)
    res = CliRunner().invoke(app, ["discover", "--samples", "4", "--out", str(tmp_path / "cli")])
    assert res.exit_code == 2 and "error: scenario discovery needs the 'discovery' extra" in res.output
    assert not ran and not (tmp_path / "out").exists() and not (tmp_path / "cli").exists()


def test_7_experiments_on_a_running_cluster_are_cut_for_its_workers(tmp_path, monkeypatch):
    """A sampled experiment on a running Dask cluster cuts its work for the cluster's workers,
    not for `--workers` (the submitting machine's cores by default), as ensembles do."""
    from mittelbau.core.scenario import load_scenario
    from mittelbau.experiments import experiment

    pieces_sent = []

    def execute(fn, items, executor, workers, scheduler, **kw):
        pieces_sent.append(len(items))
        for item in items:
            yield item, fn(item)

    monkeypatch.setattr(experiment, "dask_workers", lambda scheduler, workers: 4 if scheduler else workers)
    monkeypatch.setattr(experiment, "execute", execute)
    monkeypatch.setattr(experiment, "BATCH_RUNS", 1)
    scenario = load_scenario("baseline", ["firms=100", "years=1"])
    points = [{"exit_rate": 0.01 + 0.001 * k} for k in range(32)]
    experiment.evaluate_points(scenario, points, 1, tmp_path / "a", "dask", 1, scheduler="tcp://127.0.0.1:1")
    experiment.evaluate_points(scenario, points, 1, tmp_path / "b", "local", 1)
    # 32 batches: 8 pieces of 8 for one worker; for 4 workers, pieces of 2 (four each)
    assert pieces_sent == [16, 4]


# ---- 8. messages that must not mislead -------------------------------------------------------------
def test_8_zero_cost_per_move_and_open_host(tmp_path, root, monkeypatch):
    import dataclasses

    import mittelbau.experiments.runs as runs

    real = runs.simulate

    def free(scenario, on_year=None):
        result = real(scenario, on_year)
        for lever in result.summary["levers"].values():
            lever |= {
                "total_cost_eur": 0.0,
                "additional_upward_moves": 15,
                "additional_upward_moves_region": 15.0,
            }
            lever["cost_per_additional_upward_move_eur"] = 0.0
        if result.summary["policy"]:  # the programmes together: free as well
            result.summary["policy"] |= {
                "total_cost_eur": 0.0,
                "additional_upward_moves": 15,
                "additional_upward_moves_region": 15.0,
                "cost_per_additional_upward_move_eur": 0.0,
            }
        return dataclasses.replace(result)

    monkeypatch.setattr(runs, "simulate", free)
    mix = str(root / "scenarios" / "funding.toml")
    res = cli("run", mix, *TINY, "--out", str(tmp_path / "f"))
    assert res.exit_code == 0, res.output
    assert "+15 upward moves against no programme, €0 per additional move" in res.stdout
    assert "no additional moves" not in res.stdout
    from mittelbau.dashboard import app_server

    monkeypatch.setattr(app_server, "serve", lambda *a, **k: 0)  # the warning, not a server
    res = cli("dashboard", "--host", "0.0.0.0", "--port", "0", "--no-open")
    assert "warning: --host 0.0.0.0 makes the dashboard reachable from other machines" in res.stderr


# ---- property tests: any invalid value of an option or a scenario key ------------------------------
INT_OPTIONS = {  # command, option, least valid value
    ("run",): [("--replications", 1)],
    ("run", "--replications", "2"): [("--workers", 1)],
    ("run", "--posterior"): [("--seeds-per-draw", 1)],
    ("sensitivity", "morris"): [("--trajectories", 2), ("--replications", 1), ("--workers", 1)],
    ("discover",): [("--samples", 2), ("--replications", 1), ("--workers", 1)],
    ("calibrate", "fit"): [
        ("--population", 2),
        ("--generations", 1),
        ("--firms", 100),
        ("--workers", 1),
        ("--batch", 0),
    ],
    ("calibrate", "report"): [("--replications", 2), ("--firms", 100)],
}
CASES = [(cmd, opt, low) for cmd, opts in INT_OPTIONS.items() for opt, low in opts]


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=st.sampled_from(CASES), offset=st.integers(min_value=1, max_value=10**12))
def test_any_too_small_integer_option_exits_2_naming_it(tmp_path, case, offset):
    command, option, low = case
    out = tmp_path / "out"
    value = low - offset
    res = cli(*command, option, str(value), "--out", str(out))
    assert res.exit_code == 2, res.output
    assert f"{option} = {value} is invalid" in one_error_line(res)
    assert not out.exists()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    density=st.one_of(
        st.floats(max_value=0.0, allow_nan=False),
        st.floats(min_value=1.0, exclude_min=True),
        st.just(float("nan")),
    ),
    port=st.one_of(st.integers(max_value=-1), st.integers(min_value=65536)),
)
def test_any_density_or_port_out_of_range_exits_2(tmp_path, density, port):
    out = tmp_path / "out"
    res = cli("discover", "--min-density", repr(density), "--out", str(out))
    assert res.exit_code == 2 and "--min-density" in one_error_line(res)
    assert not out.exists()
    res = cli("dashboard", "--port", str(port))
    assert res.exit_code == 2 and f"--port = {port} is invalid" in one_error_line(res)


NUMERIC = [p for p in REGISTRY if not p.choices and p.low is not None and p.high is not None]


def _invalid_value(p):
    outside = [
        st.floats(max_value=p.low, exclude_max=True, allow_nan=False, allow_infinity=False),
        st.floats(min_value=p.high, exclude_min=True, allow_nan=False, allow_infinity=False),
        st.sampled_from([float("nan"), float("inf"), "many", True]),
    ]
    return st.one_of(*outside)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_invalid_scenario_value_exits_2_naming_the_key(tmp_path, data):
    import tomli_w

    p = data.draw(st.sampled_from(NUMERIC))
    value = data.draw(_invalid_value(p))
    if p.kind is int and isinstance(value, float) and value.is_integer() and p.low <= value <= p.high:
        return  # an integral float inside the range is that integer
    path = tmp_path / "s.toml"
    text = tomli_w.dumps({"name": "s", "parameters": {p.name: value}})
    path.write_text(text.replace("nan", "nan").replace("inf", "inf"))
    out = tmp_path / "out"
    replications = data.draw(st.sampled_from(["1", "2"]))
    res = cli("run", str(path), "--replications", replications, "--out", str(out))
    assert res.exit_code == 2, (p.name, value, res.output)
    line = one_error_line(res)
    # the key, the value (an integral float of an integer parameter as that integer) and what
    # is allowed
    shown = {repr(value)}
    if p.kind is int and isinstance(value, float) and value.is_integer():
        shown.add(repr(int(value)))
    assert any(f"'{p.name}' = {v} " in line for v in shown) and "; allowed: " in line, line
    assert not out.exists()


# ---- fault injection: a killed worker, a corrupt run, a full disk ----------------------------------
def test_fault_a_killed_worker_ends_in_a_clear_error_then_a_complete_result(tmp_path, base):
    out = tmp_path / "f"
    args = [sys.executable, "-m", "mittelbau.cli", "run", base, "--set", "firms=200", "--set", "years=2"]
    args += ["--replications", "48", "--workers", "2", "--out", str(out), "--quiet"]
    parent = subprocess.Popen(args, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    workers: list[psutil.Process] = []
    while time.time() < deadline and not workers:  # a run finished, and workers at work
        if list(out.glob("runs/*/rep-*/_checksums.json")):
            # a pool worker, not multiprocessing's resource tracker or fork server
            workers = [w for w in psutil.Process(parent.pid).children(recursive=True) if not is_service(w)]
        time.sleep(0.05)
    assert workers
    workers[0].kill()
    _, err = parent.communicate(timeout=120)
    if parent.returncode != 0:  # the pool broke: one clear line for the runs the worker took
        assert parent.returncode == 1 and err.startswith("error: ") and len(err.strip().splitlines()) == 1
        assert "runs were not run: a worker process ended abruptly (killed, or out of memory?)" in err
        assert "BrokenProcessPool" not in err
    done = load_ensemble(out)  # whatever is there is complete and verified
    assert 1 <= len(done["summaries"]) <= 48
    res = subprocess.run(args, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    clean = tmp_path / "clean"
    res = cli(
        "run",
        base,
        "--set",
        "firms=200",
        "--set",
        "years=2",
        "--replications",
        "48",
        "--workers",
        "1",
        "--out",
        str(clean),
        "-q",
    )
    assert res.exit_code == 0
    a, b = load_ensemble(out), load_ensemble(clean)
    assert all(a[t].equals(b[t]) for t in TABLES) and len(a["summaries"]) == 48


@pytest.mark.parametrize("stop_at", [1, 2])
def test_a_rewrite_stopped_between_its_moves_keeps_the_results_before(tmp_path, monkeypatch, stop_at):
    """A run written again over its folder moves the old folder aside, then the new one into
    place: a Ctrl-C between the two moves leaves the old results where they were, one after
    them the new ones (the same here), and neither leaves the other folder beside them."""
    import mittelbau.experiments.outputs as outputs
    from mittelbau.core.scenario import Scenario, make_params
    from mittelbau.experiments.runs import simulate

    out = tmp_path / "run"
    result = simulate(Scenario("tiny", "", make_params({"firms": 200, "years": 2})))
    outputs.write_run(result, out, figure=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real, moves = os.replace, []

    def stopped(src, dst):  # Ctrl-C right after the old folder is set aside, or the new put in place
        real(src, dst)
        moves.append(src)
        if len(moves) == stop_at:
            raise KeyboardInterrupt

    monkeypatch.setattr(outputs.os, "replace", stopped)
    with pytest.raises(KeyboardInterrupt):
        outputs.write_run(result, out, figure=False)
    monkeypatch.setattr(outputs.os, "replace", real)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["run"]  # nothing left beside it


def test_results_set_aside_by_a_killed_writer_go_back_in_place(tmp_path):
    """A writer killed (no Ctrl-C, no clean-up) between setting the old results aside and
    putting the new in place leaves them beside the folder: the next write into the folder puts
    them back first, rather than removing them as a dead writer's temporary folder."""
    import mittelbau.experiments.outputs as outputs

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    aside = tmp_path / f".run.tmp-{dead.pid}-abc-old"
    aside.mkdir()
    (aside / "summary.json").write_text("{}")
    unfinished = tmp_path / f".run.tmp-{dead.pid}-def"
    unfinished.mkdir()
    outputs.remove_orphans(tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert (tmp_path / "run" / "summary.json").read_text() == "{}"


def test_fault_a_full_disk_ends_in_a_clear_error_then_a_complete_result(tmp_path, base, monkeypatch):
    out = tmp_path / "full"
    real = pq.write_table
    calls = {"n": 0}

    def full_disk(table, path, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] > 6:  # the second run's tables cannot be written
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))
        return real(table, path, *args, **kwargs)

    monkeypatch.setattr(pq, "write_table", full_disk)
    res = cli("run", base, *TINY, "--replications", "3", "--workers", "1", "--out", str(out))
    assert res.exit_code == 1
    assert one_error_line(res) == f"error: cannot write into {out}: No space left on device"
    assert not list(out.rglob(".*.tmp-*"))
    assert len(load_ensemble(out)["summaries"]) == 1  # the run written whole; nothing half-written
    monkeypatch.setattr(pq, "write_table", real)
    res = cli("run", base, *TINY, "--replications", "3", "--workers", "1", "--out", str(out))
    assert res.exit_code == 0 and f"2 runs done, 1 already in {out}/" in res.stdout
    assert len(load_ensemble(out)["runs"]) == 3


def _freeze_count(_: object) -> int:
    import gc

    return gc.get_freeze_count()


def test_local_workers_freeze_what_they_inherit():
    """A local worker keeps what it inherited out of the garbage collector's passes; this
    process is left as it was."""
    import gc

    from mittelbau.experiments.executors import execute

    before = gc.get_freeze_count()
    counts = [n for _, n in execute(_freeze_count, [0, 1], workers=2)]
    assert len(counts) == 2 and all(isinstance(n, int) and n > 1000 for n in counts)
    assert gc.get_freeze_count() == before


DIES_SENDING = """
import concurrent.futures.process as cfp, os, signal, struct, time
from mittelbau.experiments.executors import LocalPool

send = cfp._sendback_result

def dies_sending(result_queue, work_id, *args, **kwargs):
    # the first result: the worker takes the pipe's lock, writes part of a message and dies
    if work_id == 0:
        result_queue._wlock.acquire()
        os.write(result_queue._writer.fileno(), struct.pack("!i", 1 << 20) + b"part of it")
        os.kill(os.getpid(), signal.SIGKILL)
    return send(result_queue, work_id, *args, **kwargs)

cfp._sendback_result = dies_sending  # the workers are forked from here: they send through it

def work(x):
    time.sleep(0.5 * x)  # the second result is sent once the first worker is dead
    return x

with LocalPool(2) as pool:
    print(sorted((item, type(result).__name__) for item, result in pool.map(work, [0, 1])))
"""


def test_fault_a_worker_killed_while_sending_its_result_does_not_hang_the_pool(tmp_path):
    """CPython's process pool waits for ever for the rest of a message whose worker died while
    sending it (and the other worker for the lock the dead one held): the local pool notices
    the dead worker, ends the others and fails the pending work instead."""
    script = tmp_path / "dies_sending.py"
    script.write_text(DIES_SENDING)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "[(0, 'BrokenProcessPool'), (1, 'BrokenProcessPool')]"


def _sleep(seconds: float) -> float:
    time.sleep(seconds)
    return seconds


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_stopped_pool_has_wound_up_before_the_exit_wakes_it():
    """Stopping a pool mid-work (Ctrl-C) leaves its manager thread ended and its wake-up pipe
    closed, so the interpreter's exit, which writes to the pipe of every pool it knows without
    a lock, finds nothing to write to (a thread still closing the pipe then made the exit print
    an `OSError` after the command's last line)."""
    import concurrent.futures.process as cfp

    from mittelbau.experiments.executors import STOP_SECONDS, LocalPool

    pool = LocalPool(2)
    for _ in range(3):  # submitting starts the pool's manager thread and its workers
        pool._pool.submit(_sleep, 30.0)
    manager = pool._pool._executor_manager_thread
    workers = pool._workers()
    assert manager is not None and len(workers) == 2
    before = signal.getsignal(signal.SIGINT)
    start = time.monotonic()
    pool._stop()
    assert signal.getsignal(signal.SIGINT) is before  # Ctrl-C is heeded again
    assert time.monotonic() - start < STOP_SECONDS
    assert not manager.is_alive()
    assert cfp._threads_wakeups[manager]._closed
    assert all(w.exitcode is not None for w in workers)


@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_after_the_first_ctrl_c_the_command_ignores_further_ones(monkeypatch):
    """The first Ctrl-C stops the command where it is; further ones are ignored while it stops
    its workers (they would cut that short, or print a traceback after its last line), and
    once it has said so; the processes it forks ignore Ctrl-C (it ends them). A Ctrl-C that
    Python dropped (raised in a fork's hooks, say) lets the next one stop the command. A
    caller of `main` in its own process gets its Ctrl-C handling back; the interpreter's exit
    ignores Ctrl-C; a command started to ignore Ctrl-C keeps ignoring it."""
    import gc
    import types

    import mittelbau.cli as cli_module

    seen = {}

    def ctrl_c() -> bool:
        """Whether a Ctrl-C now stops the command."""
        try:
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
        except KeyboardInterrupt:
            return True
        return False

    def command() -> None:
        pid = os.fork()
        if pid == 0:  # a process the command forks
            os._exit(0 if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else 1)
        seen["child ignores"] = os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        seen["first stops"] = ctrl_c()
        seen["second stops"] = ctrl_c()  # soon after the first
        dropped = types.SimpleNamespace(exc_type=KeyboardInterrupt, exc_value=KeyboardInterrupt())
        sys.unraisablehook(dropped)
        seen["after a dropped one"] = ctrl_c()
        cli_module._interrupted()

    before = signal.getsignal(signal.SIGINT)
    try:
        monkeypatch.setattr(cli_module, "app", command)
        with pytest.raises(cli_module.typer.Exit):
            cli_module.main()
        assert seen == {
            "child ignores": True,
            "first stops": True,
            "second stops": False,
            "after a dropped one": True,
        }
        assert signal.getsignal(signal.SIGINT) is before  # the caller's handling is back
        pid = os.fork()  # and what it forks is its own again
        if pid == 0:
            os._exit(0 if signal.getsignal(signal.SIGINT) is before else 1)
        assert os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) == 0
        cli_module._quiet_exit()
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
        # started to ignore Ctrl-C (a script's job in the background): it keeps ignoring it
        in_background = lambda: seen.update(background=signal.getsignal(signal.SIGINT))  # noqa: E731
        monkeypatch.setattr(cli_module, "app", in_background)
        cli_module.main()
        assert seen["background"] is signal.SIG_IGN and signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
        gc.unfreeze()


def test_a_local_dask_cluster_keeps_the_users_preloads_and_is_not_waited_on_twice():
    """The workers' preload is added to those of the user's Dask configuration; a cluster that
    does not close in time is left to the end of the process, not waited on again by
    distributed's exit handler."""
    pytest.importorskip("distributed")
    import dask

    from mittelbau.experiments.executors import _close, _configured_preloads

    with dask.config.set({"distributed.worker.preload": ["my_setup"]}):
        assert _configured_preloads() == ["my_setup"]
    with dask.config.set({"distributed.worker.preload": "my_setup.py"}):
        assert _configured_preloads() == ["my_setup.py"]

    class Stuck:
        shutdown_on_close = True

        def __init__(self):
            self._loop_runner = self
            self.stopped = False

        def close(self, timeout):
            raise TimeoutError

        def stop(self):
            self.stopped = True

    stuck = Stuck()
    _close(stuck)
    assert stuck.shutdown_on_close is False and stuck.stopped


def test_a_ctrl_c_while_a_pool_stops_or_a_cluster_starts_comes_after(monkeypatch):
    """Where the work cannot be interrupted (a pool being stopped, a Dask cluster starting),
    a Ctrl-C is delivered to the caller's handler once that part is done, not lost."""
    import threading

    from mittelbau.experiments.executors import _interrupts_held

    other = threading.Event()  # another thread, as commands have, which a signal may reach first
    threading.Thread(target=other.wait, daemon=True).start()
    before = signal.getsignal(signal.SIGINT)
    done = False
    with pytest.raises(KeyboardInterrupt), _interrupts_held():
        os.kill(os.getpid(), signal.SIGINT)
        time.sleep(0.2)
        done = True
    assert done and signal.getsignal(signal.SIGINT) is before
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a caller that ignores Ctrl-C still does
    try:
        with _interrupts_held():
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.1)
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
        other.set()


def _handles_ctrl_c(_: int) -> bool:
    import signal as sig

    return sig.getsignal(sig.SIGINT) is not sig.SIG_IGN


@pytest.mark.slow
def test_the_workers_of_a_local_dask_cluster_ignore_ctrl_c():
    """The terminal's Ctrl-C reaches the local Dask cluster's workers too: they ignore it (the
    command closes the cluster) instead of printing a traceback each."""
    pytest.importorskip("distributed")
    from mittelbau.experiments.executors import execute

    found = [handles for _, handles in execute(_handles_ctrl_c, [0, 1], executor="dask", workers=2)]
    assert found == [False, False]


# ---- counts, paths, folders and programmes the commands check ---------------------------------
@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["sensitivity", "sobol", "baseline", "--samples", str(2**40)], "a power of two from 8 to 65,536"),
        (["sensitivity", "morris", "baseline", "--trajectories", "20000"], "2 to 10,000"),
        (["discover", "baseline", "--samples", "100000000000"], "2 to 100,000"),
        (["run", "baseline", "--replications", "1000000000"], "1 to 100,000"),
    ],
)
def test_a_count_beyond_any_study_is_refused_before_anything_runs(tmp_path, args, said):
    """A typo in a count would build a design that does not fit in memory, or never end."""
    out = tmp_path / "out"
    res = cli(*args, "--out", str(out))
    assert res.exit_code == 2 and said in one_error_line(res)
    assert not out.exists()


@pytest.mark.parametrize("command", [["run", "baseline"], ["sensitivity", "morris", "baseline"], ["report"]])
def test_a_path_the_file_system_does_not_take_is_one_error_line(command, tmp_path):
    long = "x" * 300  # a name above the 255 bytes a file system takes
    args = [*command, long] if command == ["report"] else [*command, "--out", long]
    res = cli(*args)
    assert res.exit_code == 2 and "is not a path the file system takes" in one_error_line(res)
    if command != ["report"]:  # also below a folder not made yet: nothing is made
        res = cli(*command, "--out", str(tmp_path / "new" / long / "y"))
        assert res.exit_code == 2 and "is not a path the file system takes" in one_error_line(res)
        assert not (tmp_path / "new").exists()
    if command == ["run", "baseline"]:  # a run's lock and temporary folder beside it need room too
        res = cli(
            *command, "--set", "firms=300", "--set", "years=1", "--out", str(tmp_path / "new" / ("m" * 240))
        )
        assert res.exit_code == 2 and "its last up to 223" in one_error_line(res)
        assert not (tmp_path / "new").exists()


def test_a_report_of_a_folder_without_an_ensemble_leaves_nothing_in_it(tmp_path):
    res = cli("report", str(tmp_path))
    assert res.exit_code == 2 and "holds no ensemble" in one_error_line(res)
    assert list(tmp_path.iterdir()) == []  # no lock file either


def test_an_ensemble_of_another_version_is_not_resumed_beside_new_runs(ensemble, tmp_path, base):
    """Runs written by an earlier version hold other summary fields: new runs do not join them
    (their report stays readable)."""
    folder = copy_of(ensemble, tmp_path)
    manifest = json.loads((folder / "ensemble.json").read_text())
    del manifest["summary_schema"]
    (folder / "ensemble.json").write_text(json.dumps(manifest))
    res = cli("run", base, *TINY, "--replications", "3", "--workers", "1", "--out", str(folder), "-q")
    line = one_error_line(res)
    assert res.exit_code == 2 and "written by another version of mittelbau" in line
    assert "allowed: another --out, or --overwrite" in line and "to resume" not in line
    assert cli("report", str(folder)).exit_code == 0


def test_an_ensemble_whose_run_ups_miss_2015_says_so_on_the_terminal(tmp_path, base):
    args = [*TINY, "--set", "bm_loss_rate=0.2", "--replications", "2", "--workers", "1"]
    res = cli("run", base, *args, "--out", str(tmp_path / "e"))
    assert res.exit_code == 0
    assert "warning: 2 of 2 runs start their projection more than 1.5 points" in res.stderr


def test_a_run_folder_gets_the_permissions_of_a_folder_made_by_the_user(tmp_path, base):
    old = os.umask(0o022)
    try:
        assert (
            cli(
                "run", base, "--set", "firms=300", "--set", "years=1", "--out", str(tmp_path / "r"), "-q"
            ).exit_code
            == 0
        )
        assert (tmp_path / "r").stat().st_mode & 0o777 == 0o755  # not the 0700 of a temporary
        (tmp_path / "r").chmod(0o750)  # a folder replaced keeps its permissions
        args = ["--set", "firms=300", "--set", "years=1", "--out", str(tmp_path / "r"), "-q", "--overwrite"]
        assert cli("run", base, *args).exit_code == 0
        assert (tmp_path / "r").stat().st_mode & 0o777 == 0o750
    finally:
        os.umask(old)


def test_a_report_is_not_written_while_another_process_writes_the_ensemble(ensemble, tmp_path):
    folder = copy_of(ensemble, tmp_path)
    with folder_lock(folder):  # a second lock on the same folder, as another process would hold
        res = cli("report", str(folder))
    assert res.exit_code == 2 and "is being written by another mittelbau process" in one_error_line(res)


def test_a_programme_outside_the_simulated_years_is_warned_of(tmp_path, root):
    res = cli(
        "run",
        str(root / "scenarios" / "funding.toml"),
        *["--set", "funding_start_year=2040", "--set", "funding_end_year=2045", "--set", "firms=300"],
        *["--set", "years=3", "--out", str(tmp_path / "f")],
    )
    assert res.exit_code == 0
    assert "warning: funding: funding runs 2040–2045, outside the simulated years 2016–2018" in res.stderr
    assert "funding_start_year must be 2018 or earlier" in res.stderr
    res = cli(
        "run",
        str(root / "scenarios" / "funding.toml"),
        "--set",
        "firms=300",
        "--set",
        "years=3",
        "--out",
        str(tmp_path / "g"),
    )
    assert res.exit_code == 0 and "warning" not in res.stderr
    at_2015 = ["--set", "funding_start_year=2040", "--set", "funding_end_year=2045", "--set", "years=0"]
    funding = str(root / "scenarios" / "funding.toml")
    res = cli("run", funding, "--set", "firms=300", *at_2015, "--out", str(tmp_path / "h"))
    assert res.exit_code == 0 and "warning" not in res.stderr  # the 2015 state only, as asked


def test_settings_of_a_programme_switched_off_are_warned_of(tmp_path):
    off = tmp_path / "off.toml"
    off.write_text('[parameters]\nfunding_grant_eur = 20000.0\nfunding_purpose = "dt"\nyears = 2\n')
    res = cli("run", str(off), "--set", "firms=300", "--out", str(tmp_path / "a"))
    assert res.exit_code == 0
    assert (
        "warning: off: funding is off (funding_budget_eur = 0), so funding_grant_eur, funding_purpose "
        "set for it do nothing; to switch it on, set funding_budget_eur above 0"
    ) in " ".join(res.stderr.split())
    res = cli(
        "run", str(off), "--set", "firms=300", "--set", "funding_budget_eur=1e6", "--out", str(tmp_path / "b")
    )
    assert res.exit_code == 0 and "warning" not in res.stderr
    from mittelbau.core.scenario import make_params
    from mittelbau.levers import unused_lever_settings

    (one,) = unused_lever_settings(make_params({}), {"funding_grant_eur": 20000.0})
    assert one.endswith(
        "so funding_grant_eur set for it does nothing; to switch it on, set funding_budget_eur above 0"
    )
    # switched off on purpose: its settings stay, quietly
    on_purpose = ["--set", "firms=300", "--set", "years=2", "--set", "funding_budget_eur=0"]
    res = cli("run", "funding", *on_purpose, "--out", str(tmp_path / "c"))
    assert res.exit_code == 0 and "warning" not in res.stderr


def test_a_budget_left_unspent_is_warned_of_in_a_run_and_marked_in_a_report(tmp_path):
    """Equal cost needs the money spent: a programme that spends under 90 % of its plan (here
    few applicants) is named with what it spent, in a single run and in an ensemble's report;
    a programme that spends its plan is not."""
    low = tmp_path / "low.toml"
    low.write_text("[parameters]\nfunding_budget_eur = 3e7\nfunding_application_rate = 0.01\nyears = 4\n")
    res = cli("run", str(low), "--set", "firms=500", "--out", str(tmp_path / "one"))
    assert res.exit_code == 0
    summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    spent = summary["levers"]["funding"]["total_cost_eur"]
    assert spent < 0.9 * 120e6
    assert f"warning: low: funding spent €{spent / 1e6:.1f} M of the €120.0 M planned" in res.stderr
    res = cli(
        "run",
        str(low),
        "centres",
        *["--replications", "2", "--set", "firms=500", "--set", "years=4"],
        *["--out", str(tmp_path / "ens"), "-q"],
    )
    assert res.exit_code == 0, res.output
    report = (tmp_path / "ens" / "report.md").read_text()
    assert "| low | funding | 120.0 |" in report and "| centres | centres | 6.0 | 6.0 [6.0–6.0] |" in report
    assert "*Budget not spent* (below 90% of the plan): low: funding spent €" in report
    assert "centres spent" not in report
    # a mix is judged on what its programmes spent together too, not only each run alone (few
    # agents: a cooperation project of agents stands for ten projects, too many for its plan)
    small = ["--set", "firms=300", "--set", "years=4"]
    res = cli("run", "equal-budget/mix", *small, "--out", str(tmp_path / "mix"))
    assert res.exit_code == 0
    spent = pd.read_csv(tmp_path / "mix" / "levers.csv").groupby("lever")["spent_eur"].sum()
    assert spent.get("cooperation", 0.0) < 0.9 * 2e6  # its plan: €500,000 a year for 4 years
    assert (
        "warning: equal-budget-mix: with the other programmes, cooperation spent €0.0 M of the €2.0 M"
        in res.stderr
    )
    assert "warning: equal-budget-mix: all programmes together spent €" in res.stderr
    res = cli(
        "run", "equal-budget/mix", *small, "--replications", "2", "--out", str(tmp_path / "mixes"), "-q"
    )
    assert res.exit_code == 0
    report = (tmp_path / "mixes" / "report.md").read_text()
    assert "equal-budget-mix: all programmes together spent €" in report


def test_money_that_reaches_no_firm_is_warned_of_in_a_run_and_marked_in_a_report(tmp_path):
    """Centres that reach nobody still pay their running costs: said in a single run and in an
    ensemble's report; centres that reach firms are not named."""
    none = ["--set", "firms=300", "--set", "years=3", "--set", "centres_reach=0"]
    res = cli("run", "centres", *none, "--out", str(tmp_path / "one"))
    assert res.exit_code == 0
    summary = json.loads((tmp_path / "one" / "summary.json").read_text())
    cost = summary["levers"]["centres"]["total_cost_eur"]
    assert cost > 0 and summary["levers"]["centres"]["firms_reached"] == 0
    assert f"warning: centres: centres spent €{cost / 1e6:.1f} M and reached no firm" in res.stderr
    res = cli("run", "centres", *none, "--replications", "2", "--out", str(tmp_path / "ens"), "-q")
    assert res.exit_code == 0
    report = (tmp_path / "ens" / "report.md").read_text()
    assert "*Money without reach*: centres: centres spent €" in report
    res = cli("run", "centres", *none[:4], "--out", str(tmp_path / "reached"))
    assert res.exit_code == 0 and "reached no firm" not in res.stderr
    # a programme whose years lie after the horizon spends nothing: no money without reach
    later = ["--set", "cooperation_start_year=2025", "--set", "cooperation_end_year=2026"]
    res = cli(
        "run", "policy-mix", *none[:4], *later, "--replications", "2", "--out", str(tmp_path / "l"), "-q"
    )
    assert res.exit_code == 0 and "Money without reach" not in (tmp_path / "l" / "report.md").read_text()


def test_a_sensitivity_study_refuses_another_design_before_its_pilot(tmp_path, base):
    """A folder's design is checked before the pilot runs: a refused study leaves the folder
    as it was, without a pilot of its own."""
    common = ["--trajectories", "3", "--factors", "exit_rate", "--set", "firms=300", "--workers", "1", "-q"]
    out = tmp_path / "s"
    assert (
        cli(
            "sensitivity",
            "morris",
            base,
            *common,
            "--set",
            "years=3",
            "--replications",
            "1",
            "--out",
            str(out),
        ).exit_code
        == 0
    )
    before = listing(out)
    res = cli("sensitivity", "morris", base, *common, "--set", "years=4", "--out", str(out))
    assert res.exit_code == 2 and "other scenario parameters (years 3 there, 4 asked)" in one_error_line(res)
    assert listing(out) == before and not (out / "pilot").exists()
    # other factors, fewer trajectories or another method: refused before the pilot too
    other = [*common[:2], "--factors", "leap_rate", *common[4:], "--set", "years=3"]
    res = cli("sensitivity", "morris", base, *other, "--out", str(out))
    assert res.exit_code == 2 and "other factors (exit_rate there; leap_rate asked)" in one_error_line(res)
    fewer = ["--trajectories", "2", *common[2:], "--set", "years=3"]
    res = cli("sensitivity", "morris", base, *fewer, "--out", str(out))
    assert res.exit_code == 2 and "fewer points (6 there, 4 asked)" in one_error_line(res)
    sobol = ["--samples", "8", *common[2:], "--set", "years=3"]
    res = cli("sensitivity", "sobol", base, *sobol, "--out", str(out))
    assert (
        res.exit_code == 2
        and "holds a morris study, which a sobol study cannot continue" in one_error_line(res)
    )
    assert listing(out) == before and not (out / "pilot").exists()


def test_a_study_continuing_a_folder_keeps_its_replications_where_the_pilot_chooses_fewer(tmp_path, base):
    """A study without --replications continues a folder whose design has more replications
    than its pilot chooses with the folder's (its runs are there), rather than refusing it."""
    common = ["--factors", "exit_rate", "--set", "firms=300", "--set", "years=3", "--workers", "1", "-q"]
    out = tmp_path / "s"
    first = cli(
        "sensitivity",
        "morris",
        base,
        "--trajectories",
        "2",
        *common,
        "--replications",
        "70",
        "--out",
        str(out),
    )
    assert first.exit_code == 0
    res = cli("sensitivity", "morris", base, "--trajectories", "3", *common, "--out", str(out))
    assert res.exit_code == 0, res.output
    page = (out / "sensitivity.md").read_text()
    assert "70 replications per point" in page
    chosen = int(re.search(r"points × seeds\): (\d+) \(`replications.csv`\)", page).group(1))
    assert chosen < 70 and "; the folder's design has 70, which this study keeps." in page


def test_an_experiment_of_another_version_is_refused_with_what_can_be_done(tmp_path, base):
    args = ["discover", base, "--samples", "4", *TINY, "--factors", "exit_rate", "--workers", "1", "-q"]
    out = tmp_path / "d"
    assert cli(*args, "--out", str(out)).exit_code == 0
    path = out / "runs" / "experiment.json"
    manifest = json.loads(path.read_text())
    # as an earlier version wrote it: fewer outcomes, and with them another fingerprint
    manifest["outcomes"] = dict(list(manifest["outcomes"].items())[:-1])
    manifest["fingerprint"] = "0" * 64
    path.write_text(json.dumps(manifest))
    res = cli(*args, "--out", str(out))
    line = one_error_line(res)
    assert res.exit_code == 2 and "written by another version of mittelbau" in line
    assert line.endswith("allowed: another --out, or --overwrite to replace it")

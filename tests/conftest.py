import contextlib
import socket
import sys
import time
from pathlib import Path

import psutil
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))  # reference_model


@pytest.fixture(scope="session")
def root() -> Path:
    return ROOT


# variables that make rich take output that is not a terminal for one (and draw live bars)
TERMINAL_OVERRIDES = ("FORCE_COLOR", "TTY_COMPATIBLE", "TTY_INTERACTIVE", "COLUMNS", "LINES")


@pytest.fixture(scope="session", autouse=True)
def _plain_output():
    """Commands see their output as it is, whatever the environment running the tests says
    (some set FORCE_COLOR): the tests read lines, not a live progress bar."""
    with pytest.MonkeyPatch.context() as mp:
        for name in TERMINAL_OVERRIDES:
            mp.delenv(name, raising=False)
        yield


def free_port() -> int:
    """A localhost port nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port: int) -> bool:
    """Whether anything accepts connections on the localhost port."""
    with socket.socket() as s:
        s.settimeout(1)
        return s.connect_ex(("127.0.0.1", port)) == 0


def survivors(processes: list[psutil.Process]) -> list[psutil.Process]:
    """Those of the processes still running (a zombie holds no port and runs nothing)."""
    alive = []
    for p in processes:
        with contextlib.suppress(psutil.NoSuchProcess):
            if p.is_running() and p.status() != psutil.STATUS_ZOMBIE:
                alive.append(p)
    return alive


def stopped_within(seconds: float, port: int, processes: list[psutil.Process]) -> bool:
    """Wait until nothing listens on the port and none of the processes runs."""
    deadline = time.monotonic() + seconds
    while listening(port) or survivors(processes):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


# multiprocessing's resource tracker and fork server serve this interpreter until it exits, and
# exit with it
INTERPRETER_SERVICES = ("multiprocessing.resource_tracker", "multiprocessing.forkserver")


def is_service(p: psutil.Process) -> bool:
    """Whether the process is one of this interpreter's multiprocessing services."""
    with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied, psutil.ZombieProcess):
        return any(h in " ".join(p.cmdline()) for h in INTERPRETER_SERVICES)
    return False


def started_here() -> list[psutil.Process]:
    """This process's children and theirs, but its multiprocessing services (a test that
    ended them would leave the rest of the session to relaunch them)."""
    return [p for p in psutil.Process().children(recursive=True) if not is_service(p)]


def footprint() -> set[str]:
    """This process's running children and the ports it and they listen on."""
    found = set()
    for p in survivors([psutil.Process(), *psutil.Process().children(recursive=True)]):
        if is_service(p):
            continue
        with contextlib.suppress(psutil.NoSuchProcess, psutil.AccessDenied):
            command = " ".join(p.cmdline())
            if p.pid != psutil.Process().pid:
                found.add(f"process {p.pid} ({command[:120]})")
            found |= {
                f"port {c.laddr.port} ({p.pid})"
                for c in p.net_connections("inet")
                if c.status == psutil.CONN_LISTEN
            }
    return found


def left_behind(before: set[str], seconds: float = 5) -> set[str]:
    """What is running or listening now that was not `before`, after waiting up to `seconds`
    for it to end."""
    deadline = time.monotonic() + seconds
    while (new := footprint() - before) and time.monotonic() < deadline:
        time.sleep(0.1)
    return new

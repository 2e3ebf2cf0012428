"""How `mittelbau dashboard` runs the Solara server: command, environment, and a process
group that ends with the command."""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from pathlib import Path

APP_MODULE = "mittelbau.dashboard.app"
# the scenario file the page starts from
SCENARIO_VARIABLE = "MITTELBAU_DASHBOARD_SCENARIO"
# Solara warns on every page load from an address other than "localhost" (127.0.0.1, say) that
# its session cookie cannot be set for pages embedded in another site's frame: not this page
COOKIE_WARNING = "ignore:Cookies with samesite=none require https:UserWarning"


def server_command(host: str, port: int, open_browser: bool) -> list[str]:
    """The Solara server for the dashboard page, in production mode (no reloader)."""
    return [
        sys.executable,
        "-m",
        "solara",
        "run",
        APP_MODULE,
        "--host",
        host,
        "--port",
        str(port),
        "--production",
        "--open" if open_browser else "--no-open",
        "--log-level",
        "warning",
    ]


def server_environment(scenario: str | Path | None) -> dict[str, str]:
    """The server's environment, this one's with the settings of an offline page: the page's
    scripts are served from the installed packages, nothing is fetched through Solara's CDN
    proxy, and no usage data is sent; the warning filters of this environment are kept, and
    Solara's cookie warning is not shown. The page opens `scenario` (a file or a library
    scenario's name, as `mittelbau run` takes it), and without one the registry defaults, even
    where this environment names a scenario of an earlier server."""
    from mittelbau.core.scenario import resolve_scenario

    filters = [f for f in (os.environ.get("PYTHONWARNINGS", ""), COOKIE_WARNING) if f]
    env = {k: v for k, v in os.environ.items() if k != SCENARIO_VARIABLE}
    env |= {
        "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
        "PYTHONWARNINGS": ",".join(filters),
    }
    if scenario is not None:
        env[SCENARIO_VARIABLE] = str(resolve_scenario(scenario).resolve())
    return env


# the signals that stop the command, and with it the server
STOP_SIGNALS = tuple(getattr(signal, n) for n in ("SIGTERM", "SIGINT", "SIGHUP") if hasattr(signal, n))
# seconds the server has to shut down after a stop signal before its group is killed
GRACE = 3.0
_PR_SET_PDEATHSIG = 1  # Linux prctl option: a signal for the child when its parent dies


def _stop_with_parent(parent: int) -> None:
    """In the server process before it starts (Linux): be sent SIGTERM when the command dies,
    even by SIGKILL, which the command cannot forward; and Ctrl-C as a program has it by
    default (what the command forks ignores Ctrl-C, and an ignored signal stays ignored across
    the server's start)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)
    if os.getppid() != parent:  # the command died before prctl took effect
        os._exit(1)


def serve(command: list[str], env: Mapping[str, str]) -> int:
    """Run the server in its own process group and wait for it. SIGTERM, SIGINT and SIGHUP to
    this process are passed on to the whole group (a group that does not stop within GRACE
    seconds is killed), so no server outlives the command. Returns 0 after a stop signal,
    otherwise the server's exit code."""
    if os.name != "posix":  # no process groups: the server is the console's child
        return subprocess.call(command, env=dict(env))
    stops: list[int] = []
    proc: subprocess.Popen | None = None

    def forward(signum: int, _frame: object) -> None:
        stops.append(signum)
        if proc is not None:
            _signal_group(proc.pid, signal.SIGTERM)

    previous = {s: signal.signal(s, forward) for s in STOP_SIGNALS}
    try:
        parent = os.getpid()
        proc = subprocess.Popen(
            command,
            env=dict(env),
            start_new_session=True,
            preexec_fn=(lambda: _stop_with_parent(parent)) if sys.platform == "linux" else None,
        )
        if stops:  # a stop signal came while the server was being started
            _signal_group(proc.pid, signal.SIGTERM)
        deadline = None
        while proc.poll() is None:
            if stops and deadline is None:
                deadline = time.monotonic() + GRACE
            if deadline is not None and time.monotonic() > deadline:
                _signal_group(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=0.1)
        _signal_group(proc.pid, signal.SIGKILL)  # anything the server itself started
        return 0 if stops else proc.returncode
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def _signal_group(group: int, signum: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(group, signum)

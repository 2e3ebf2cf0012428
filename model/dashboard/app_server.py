"""How `mittelbau dashboard` starts the Solara server: command and environment."""

from __future__ import annotations

import sys
from pathlib import Path

APP_MODULE = "mittelbau.dashboard.app"
# the scenario file the page starts from
SCENARIO_VARIABLE = "MITTELBAU_DASHBOARD_SCENARIO"


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


def server_environment(scenario: Path | None) -> dict[str, str]:
    """Settings for an offline page: the page's scripts are served from the installed
    packages, nothing is fetched through Solara's CDN proxy, and no usage data is sent."""
    env = {
        "SOLARA_TELEMETRY_MIXPANEL_ENABLE": "False",
    }
    if scenario is not None:
        env[SCENARIO_VARIABLE] = str(Path(scenario).resolve())
    return env

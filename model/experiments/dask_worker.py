"""Set-up of each worker of the local Dask cluster a command starts (a Dask worker preload):
the terminal's Ctrl-C reaches every process of the command, and the command closes the cluster,
so its workers ignore Ctrl-C instead of printing a traceback each."""

from __future__ import annotations

import signal
import threading
from typing import Any


def dask_setup(worker: Any) -> None:
    """Ignore Ctrl-C in the worker's process (Dask calls this in it as the worker starts)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, signal.SIG_IGN)

"""`mittelbau dashboard` as a user's shell runs it: whatever stops the command stops the server
it started, and leaves its port free."""

from __future__ import annotations

import signal
import subprocess
import sys
import time

import psutil
import pytest
from conftest import free_port, listening, started_here, stopped_within, survivors

from mittelbau.dashboard.app_server import GRACE

pytest.importorskip("solara")
pytestmark = pytest.mark.slow


@pytest.mark.parametrize(
    "signum",
    [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL],
    ids=["SIGTERM", "SIGINT", "SIGHUP", "SIGKILL"],
)
def test_stopping_the_command_stops_its_server(signum, root, tmp_path):
    if signum == signal.SIGKILL and sys.platform != "linux":
        pytest.fail("the server is tied to the command's life by a Linux prctl; this test runs on Linux")
    port = free_port()
    log = tmp_path / "dashboard.log"
    with open(log, "w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "mittelbau.cli", "dashboard", "--no-open", "--port", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=root,
        )
    children: list[psutil.Process] = []
    try:
        deadline = time.monotonic() + 120
        while not listening(port):
            assert proc.poll() is None, f"dashboard exited with {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"dashboard did not listen on {port}:\n{log.read_text()}"
            time.sleep(0.2)
        children += psutil.Process(proc.pid).children(recursive=True)
        assert children, "the server runs in a process of its own"
        proc.send_signal(signum)
        assert stopped_within(GRACE + 10, port, [psutil.Process(proc.pid), *children]), (
            f"after {signal.Signals(signum).name}: listening {listening(port)}, "
            f"running {[p.pid for p in children if p.is_running()]}"
        )
        code = proc.wait(timeout=5)
        assert code == (-signal.SIGKILL if signum == signal.SIGKILL else 0), log.read_text()
    finally:  # a failed test leaves nothing behind either
        for p in survivors([*children, *started_here()]):
            p.kill()
        proc.wait(timeout=5)

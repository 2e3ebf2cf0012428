"""Where runs execute: in this process, in a local process pool, or on a Dask cluster.

`execute(fn, items, ...)` calls `fn(item)` for every item and yields `(item, result)` as each
finishes, with the exception in place of the result when `fn` raised, so callers persist what
finished and report what failed. `fn` must be a module-level function (workers import it).

Local workers die with the process that started them: each asks the kernel for SIGKILL when its
parent dies (Linux `PR_SET_PDEATHSIG`) and, where that is unavailable, a watch thread ends it
once its parent is gone. They keep what they inherited out of the garbage collector's passes
(`gc.freeze`). A worker killed while it sends a result would leave the pool waiting for ever;
`LocalPool` notices the dead worker and unblocks the pool, which then fails the pending work. A
Dask scheduler that does not answer within `CONNECT_TIMEOUT` seconds is an error, not a wait.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import gc
import importlib.util
import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from mittelbau.experiments.extras import needs_extra

EXECUTORS = ("local", "dask")
CONNECT_TIMEOUT = 5.0  # seconds to reach a Dask scheduler
DEADLINE_GRACE = 2.0  # seconds beyond it before a connection still trying is given up
NO_WORKERS_SECONDS = 30.0  # a running cluster without workers this long is warned of
WORKERS_CHECK_SECONDS = 5.0  # how often the cluster's workers are counted meanwhile
LOG = logging.getLogger(__name__)
PR_SET_PDEATHSIG = 1
WATCH_SECONDS = 0.5  # how often a local pool's waiting checks on its workers
LOST_GRACE_SECONDS = 2.0  # how long a pool may count a dead worker before it is unblocked
STOP_SECONDS = 5.0  # how long a stopped pool's manager thread is waited for
CLOSE_SECONDS = 10  # how long closing a local Dask cluster is waited for


class ExecutionError(RuntimeError):
    """Runs could not be executed as asked, or some of them failed (those are listed)."""


def listing(failures: list[str], most: int = 10) -> str:
    """Failure lines for an error message: the first `most`, then how many more."""
    more = len(failures) - most
    return "\n  ".join(failures[:most] + ([f"… and {more} more"] if more > 0 else []))


def failure_report(failures: list[tuple[str, BaseException]], total: int, unit: str, retry: str) -> str:
    """The message of work that failed (`failures`: what, its exception) of `total` pieces
    (`unit`, plural): the work a dead local worker process took with it is said once, as one
    cause (its pool fails all the work pending), the other failures are listed with their
    errors; `retry` says how to run them again."""
    lost = [what for what, exc in failures if isinstance(exc, BrokenProcessPool)]
    failed = [
        f"{what}: {type(exc).__name__}: {exc}"
        for what, exc in failures
        if not isinstance(exc, BrokenProcessPool)
    ]
    parts = []
    if lost:
        parts.append(
            f"{len(lost)} of {total} {unit} were not run: a worker process ended abruptly (killed, or "
            "out of memory?)"
        )
    if failed:
        parts.append(f"{len(failed)} of {total} {unit} failed")
    return (
        "; ".join(parts) + f" (the others are kept; {retry})" + (":\n  " + listing(failed) if failed else "")
    )


def check(executor: str, workers: int, scheduler: str | None) -> None:
    if executor not in EXECUTORS:
        raise ExecutionError(f"--executor {executor!r} is invalid; allowed: {', '.join(EXECUTORS)}")
    if workers < 1:
        raise ExecutionError(f"--workers = {workers} is invalid; allowed: 1 or more")
    if scheduler is not None and executor != "dask":
        raise ExecutionError("--scheduler goes with --executor dask")
    if executor == "dask" and importlib.util.find_spec("distributed") is None:
        raise ExecutionError(needs_extra("--executor dask", "dask"))


def die_with_parent() -> None:
    """Initialiser of a worker process: end this process when its parent ends."""
    parent = os.getppid()
    if sys.platform == "linux":
        libc = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0) == 0:
            if os.getppid() != parent:  # the parent died before the request was made
                os._exit(1)
            return

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, daemon=True, name="parent-watch").start()


def start_worker() -> None:
    """Initialiser of a local worker process: it ends when its parent ends (`die_with_parent`);
    it ignores Ctrl-C, which the terminal sends to every process of the command (its parent
    stops the pool and ends the workers: a worker that caught the interrupt would take the next
    queued piece of work instead); and what it inherited from its parent is frozen out of the
    garbage collector's passes (`gc.freeze`: the modules and data loaded before the fork are
    never garbage, and a full pass over them cost 40 ms in a worker, several times an
    experiment)."""
    die_with_parent()
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    gc.freeze()


def execute(
    fn: Callable[[Any], Any],
    items: Sequence[Any],
    executor: str = "local",
    workers: int = 1,
    scheduler: str | None = None,
    warm: Callable[[], None] | None = None,
) -> Iterator[tuple[Any, Any]]:
    """Yield `(item, fn(item) or its exception)` in order of completion. `warm` is called in
    this process before a local pool forks, so workers inherit loaded data."""
    check(executor, workers, scheduler)
    if not items:
        return
    if executor == "dask":
        yield from _dask(fn, items, workers, scheduler)
    elif workers == 1:
        for item in items:
            try:
                yield item, fn(item)
            except Exception as exc:
                yield item, exc
    else:
        if warm is not None:
            warm()
        yield from _pool(fn, items, min(workers, len(items)))


def _pool(fn, items, workers) -> Iterator[tuple[Any, Any]]:
    with LocalPool(workers) as pool:
        yield from pool.map(fn, items)


class LocalPool:
    """`workers` local processes kept for several `map` calls (`execute` starts a pool per
    call): for work that comes in many small rounds, such as the particles of a fit.

    fork starts workers fastest. Python warns about forking whenever the process has other
    threads, which numpy's OpenBLAS pool always has (it is fork-safe: it re-initialises in the
    child); once Python threads run here (a Dask client, say), forkserver is used instead. The
    workers end with this process (`start_worker`)."""

    def __init__(self, workers: int) -> None:
        if workers < 1:
            raise ValueError(f"workers = {workers} is invalid; allowed: 1 or more")
        self._forking = threading.active_count() == 1
        context = multiprocessing.get_context("fork" if self._forking else "forkserver")
        self._pool = ProcessPoolExecutor(max_workers=workers, mp_context=context, initializer=start_worker)

    def map(self, fn: Callable[[Any], Any], items: Sequence[Any]) -> Iterator[tuple[Any, Any]]:
        """Yield `(item, fn(item) or its exception)` in order of completion."""
        try:
            with warnings.catch_warnings():  # the pool forks its workers when work is submitted
                if self._forking:
                    warnings.filterwarnings("ignore", "This process .* is multi-threaded", DeprecationWarning)
                futures = {self._pool.submit(fn, item): item for item in items}
            pending, lost_since = set(futures), None
            while pending:
                done, pending = wait(pending, timeout=WATCH_SECONDS, return_when=FIRST_COMPLETED)
                for future in done:
                    exc = future.exception()
                    yield futures[future], exc if exc is not None else future.result()
                if done or not self._lost_worker():
                    lost_since = None
                elif lost_since is None:
                    lost_since = time.monotonic()
                elif time.monotonic() - lost_since > LOST_GRACE_SECONDS:
                    self._unblock()
                    lost_since = None
        except BaseException:  # Ctrl-C, or the caller stopped: the work queued is not wanted
            self._stop()
            raise

    def _workers(self) -> list[multiprocessing.process.BaseProcess]:
        """The pool's worker processes (none where the pool keeps them otherwise)."""
        return list((getattr(self._pool, "_processes", None) or {}).values())

    def _lost_worker(self) -> bool:
        """Whether a worker has ended while the pool still counts it (the pool drops a worker
        it has noticed ending, and fails the pending work)."""
        return any(p.exitcode is not None for p in self._workers())

    def _unblock(self) -> None:
        """A worker killed while it sent a result leaves the pool stuck (CPython's process pool
        reads the rest of the message for ever, and the other workers wait for the lock the dead
        one held): end the workers and close this side of the result pipe, so that the pool
        reads the end of the pipe, sees itself broken and fails the pending work."""
        for p in self._workers():
            if p.exitcode is None:
                p.kill()
        queue = getattr(self._pool, "_result_queue", None)
        writer = getattr(queue, "_writer", None)
        if writer is not None:
            writer.close()

    def _stop(self) -> None:
        """End the workers now, whatever they are running, and the pool without waiting for
        its work. The pool's manager thread is given up to STOP_SECONDS to wind up, with Ctrl-C
        held back meanwhile (the work is being stopped already): CPython's exit wakes the thread
        through a pipe the thread closes as it ends, without a lock between the two, so a
        thread still ending as the interpreter exits makes the exit print an `OSError` after
        the command's last line."""
        with _interrupts_held():
            manager = getattr(self._pool, "_executor_manager_thread", None)
            self._unblock()  # a worker killed while sending would leave the thread reading for ever
            self._pool.shutdown(wait=False, cancel_futures=True)
            if manager is not None:
                manager.join(timeout=STOP_SECONDS)

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def __enter__(self) -> LocalPool:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        if exc_type is None:
            self.close()
        else:
            self._stop()


@contextlib.contextmanager
def _interrupts_held() -> Iterator[None]:
    """A Ctrl-C while the block runs is held back and delivered, once, to the handler of
    before when the block ends (in the main thread, where signals are handled)."""
    if threading.current_thread() is not threading.main_thread() or (
        signal.getsignal(signal.SIGINT) is signal.SIG_IGN  # what it starts then ignores it too
    ):
        yield
        return
    pressed: list[int] = []
    before = signal.signal(signal.SIGINT, lambda signum, frame: pressed.append(signum))
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, before if before is not None else signal.SIG_DFL)
        if pressed:
            signal.raise_signal(signal.SIGINT)


def dask_workers(scheduler: str | None, workers: int) -> int:
    """Workers the computation will have: the local cluster's, or the running cluster's."""
    if scheduler is None:
        return workers
    with _client(scheduler) as client:
        return max(1, len(client.scheduler_info()["workers"]))


def _client(address: Any):
    """A Dask client of `address` (a scheduler address or a local cluster), failing with one
    line when the scheduler does not answer as a Dask scheduler within CONNECT_TIMEOUT seconds
    (refused, silent, or something else listening there)."""
    try:
        from distributed import Client
    except ImportError:
        raise ExecutionError(needs_extra("--executor dask", "dask")) from None
    # the client's own timeout does not cover every silence (a listener that accepts and never
    # answers, or answers as something else): it connects in a thread given a hard deadline
    # (a thread still trying after the deadline closes the client it may get at last)
    found: dict[str, Any] = {}
    lock = threading.Lock()

    def connect() -> None:
        try:
            client = Client(address, timeout=CONNECT_TIMEOUT)
        except Exception as exc:  # said below, in this thread
            with lock:
                found["error"] = exc
            return
        with lock:
            found["client"] = client
            late = found.get("abandoned", False)
        if late:
            client.close()

    thread = threading.Thread(target=connect, daemon=True, name="dask-connect")
    thread.start()
    thread.join(CONNECT_TIMEOUT + DEADLINE_GRACE)
    with lock:
        if "client" in found:
            return found["client"]
        found["abandoned"] = True
        exc = found.get("error")  # any failure to connect is the address's, said in one line
    reason = "no answer" if exc is None or isinstance(exc, TimeoutError) else type(exc).__name__
    raise ExecutionError(
        f"--scheduler {address!r} did not answer as a Dask scheduler within "
        f"{CONNECT_TIMEOUT:g} s ({reason}); allowed: the address of a running Dask "
        "scheduler, e.g. tcp://host:8786"
    )


def check_scheduler(address: str) -> None:
    """Connect to the scheduler at `address` once, so a wrong address fails before any work."""
    with _client(address):
        pass


def _dask(fn, items, workers, scheduler) -> Iterator[tuple[Any, Any]]:
    try:
        from distributed import LocalCluster
        from distributed import as_completed as dask_completed
    except ImportError:
        raise ExecutionError(needs_extra("--executor dask", "dask")) from None
    cluster = None
    try:
        if scheduler is None:
            # a Ctrl-C while the cluster starts comes once it stands, so that it is closed here;
            # its workers ignore Ctrl-C once started (`dask_worker`); no dashboard, and the
            # scheduler's own HTTP routes on a free localhost port, not on a fixed one another
            # cluster may hold
            with _interrupts_held():
                cluster = LocalCluster(
                    n_workers=min(workers, len(items)),
                    threads_per_worker=1,
                    processes=True,
                    host="127.0.0.1",
                    dashboard_address=None,
                    scheduler_kwargs={"dashboard": False, "dashboard_address": "127.0.0.1:0"},
                    preload=[*_configured_preloads(), "mittelbau.experiments.dask_worker"],
                )
        client = _client(scheduler or cluster)
    except BaseException:  # a Ctrl-C included: the cluster is closed here, not at the exit
        _close(cluster)
        raise
    stop = threading.Event()
    if scheduler is not None:  # a running cluster's workers may all be gone: said, not waited on silently
        threading.Thread(
            target=watch_workers, args=(client, scheduler, stop), daemon=True, name="dask-workers"
        ).start()
    try:
        futures = {client.submit(fn, item, pure=False): item for item in items}
        for future in dask_completed(futures):
            item = futures[future]
            yield item, future.exception() if future.status == "error" else future.result()
    finally:
        stop.set()
        try:
            client.close()
        finally:
            _close(cluster)


def _configured_preloads() -> list[str]:
    """The worker preloads of the user's Dask configuration (giving preloads replaces them)."""
    import dask

    found = dask.config.get("distributed.worker.preload", default=[]) or []
    return [found] if isinstance(found, str) else list(found)


def _close(cluster: Any) -> None:
    """Close a local cluster within CLOSE_SECONDS. One that does not close in time is left to
    the end of this process, which ends its workers (distributed's own exit handler would wait
    on it again)."""
    if cluster is None:
        return
    try:
        cluster.close(timeout=CLOSE_SECONDS)
    except TimeoutError:
        cluster.shutdown_on_close = False
        with contextlib.suppress(Exception):
            cluster._loop_runner.stop()


def watch_workers(client: Any, address: str, stop: threading.Event) -> None:
    """While work is out on the cluster at `address` (until `stop`), count its workers every
    WORKERS_CHECK_SECONDS and warn (the `mittelbau.experiments.executors` logger) once it has had
    none for NO_WORKERS_SECONDS: the work waits for a worker, which would otherwise look like a
    hang. A worker joining re-arms the warning."""
    none_since: float | None = None
    warned = False
    while not stop.wait(WORKERS_CHECK_SECONDS):
        try:
            workers = len(client.scheduler_info()["workers"])
        except Exception:  # the client is closing or the scheduler gone: the work reports it
            return
        if workers:
            none_since, warned = None, False
        elif none_since is None:
            none_since = time.monotonic()
        elif not warned and time.monotonic() - none_since >= NO_WORKERS_SECONDS:
            LOG.warning(
                "warning: no Dask worker has been connected to %s for %.0f s; the work waits for one "
                "(finished runs are kept; Ctrl-C stops, and the same command resumes)",
                address,
                NO_WORKERS_SECONDS,
            )
            warned = True

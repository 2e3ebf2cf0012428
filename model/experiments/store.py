"""Result folders that can be trusted: one writer per folder, a design each folder is bound
to, and units of results (a run, a batch) written atomically with their checksums last.

- `folder_lock(out)` holds an advisory lock (`fcntl.flock` on `out/.lock`) while a command
  writes into `out`; a second writer stops at once. The lock dies with its process.
  `run_lock(out)` does the same for a single run's folder, with the lock file beside it.
- `design_hash(data)` is the SHA-256 of a canonical JSON text: the manifest of a folder stores
  one per run (or batch), so a rerun with other parameters or seeds is recognised.
- `write_unit(target, write, design)` writes a unit into a temporary folder beside `target`,
  then its checksum file (`_checksums.json`: SHA-256 of every file and the unit's design hash),
  then renames the folder into place. `damage(target, design)` says what is wrong with a unit
  on disk (missing, incomplete, a file changed, another design), or None when it can be used.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import math
import os
import shutil
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from mittelbau.experiments.executors import ExecutionError

CHECKSUMS = "_checksums.json"  # "_": Parquet readers skip it when reading a folder
LOCK = ".lock"


class FolderError(ExecutionError):
    """An output folder cannot be used as asked: locked by another writer, bound to another
    design, or not writable. The user can act on it (another --out, wait, a smaller design)."""


def design_hash(data: Any) -> str:
    """SHA-256 of `data` as canonical JSON (sorted keys, floats as JSON numbers)."""
    text = json.dumps(data, sort_keys=True, separators=(",", ":"), default=float)
    return hashlib.sha256(text.encode()).hexdigest()


def file_hash(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


@contextmanager
def folder_lock(out: Path) -> Iterator[None]:
    """Hold the folder's advisory lock (creating the folder); another holder → FolderError."""
    out.mkdir(parents=True, exist_ok=True)
    with _hold(out / LOCK, out):
        yield


def empty_folder(out: Path) -> None:
    """Remove everything in `out` but its lock (for --overwrite, with the lock held)."""
    for entry in out.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        elif entry.name != LOCK:
            entry.unlink()


@contextmanager
def run_lock(out: Path) -> Iterator[None]:
    """Hold the lock of a single run's folder, `.<name>.lock` beside it (the folder itself is
    replaced whole when the run is written); another holder → FolderError. The lock file is
    removed before the lock is let go, so nothing is left beside the run."""
    out.parent.mkdir(parents=True, exist_ok=True)
    lock = out.with_name(f".{out.name}{LOCK}")
    with _hold(lock, out):
        try:
            yield
        finally:
            lock.unlink(missing_ok=True)


@contextmanager
def _hold(lock: Path, out: Path) -> Iterator[None]:
    fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "unknown"
            raise FolderError(
                f"{out} is being written by another mittelbau process (pid {holder}); "
                "allowed: wait until it ends, or another --out"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        yield
    finally:
        os.close(fd)  # releases the lock


def finite(data: Any) -> Any:
    """`data` with every infinite or NaN float replaced by None, so that it is written as
    standard JSON (null), which every reader parses (Python's own `Infinity` and `NaN` are not
    JSON)."""
    if isinstance(data, float):
        return data if math.isfinite(data) else None
    if isinstance(data, dict):
        return {k: finite(v) for k, v in data.items()}
    if isinstance(data, list | tuple):
        return [finite(v) for v in data]
    return data


def json_text(data: Any) -> str:
    """`data` as standard JSON text (non-finite numbers as null: `finite`), indented."""
    return json.dumps(finite(data), indent=2, ensure_ascii=False, default=float, allow_nan=False) + "\n"


def write_json(path: Path, data: Any) -> None:
    """Write a JSON file atomically (temporary file, fsync, rename), as standard JSON."""
    text = json_text(data)
    write_file(path, lambda tmp: tmp.write_text(text, encoding="utf-8"))


def write_file(path: Path, write: Callable[[Path], Any]) -> None:
    """Write a file atomically: `write(tmp)` writes a temporary file beside `path`, which is
    synced and renamed into place."""
    tmp = _temporary(path)
    write(tmp)
    with open(tmp, "rb") as f:
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _temporary(target: Path) -> Path:
    return target.parent / f".{target.name}.tmp-{os.getpid()}"


def remove_stale(parent: Path) -> None:
    """Remove temporary files and folders of interrupted writes in `parent` (call under the
    folder's lock, so that none of them is another writer's)."""
    if parent.is_dir():
        for stale in parent.glob(".*.tmp-*"):
            if stale.is_dir():
                shutil.rmtree(stale, ignore_errors=True)
            else:
                stale.unlink(missing_ok=True)


@contextmanager
def staged(folder: Path, gone: Sequence[str] = ()) -> Iterator[Path]:
    """A temporary folder in `folder` (under its lock) that a set of result files is written
    into; they replace the files of the same names in `folder` only once all are written, and
    the files named in `gone` (those of an earlier result this one does not write) are removed
    then, so that a failed or interrupted command leaves the result before it whole (stale
    staging folders of killed commands are removed first)."""
    remove_stale(folder)
    staging = folder / f".results.tmp-{os.getpid()}"
    staging.mkdir()
    try:
        yield staging
        written = sorted(staging.iterdir())
        for path in written:
            path.replace(folder / path.name)
        for name in set(gone) - {path.name for path in written}:
            (folder / name).unlink(missing_ok=True)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def write_unit(target: Path, write: Callable[[Path], None], design: str) -> None:
    """`write(tmp)` fills a temporary folder; its checksums are written last, then the folder
    replaces `target` (a damaged unit there is removed first)."""
    tmp = _temporary(target)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        write(tmp)
        sums = {f.name: file_hash(f) for f in sorted(tmp.iterdir())}
        with open(tmp / CHECKSUMS, "w", encoding="utf-8") as f:
            json.dump({"design": design, "files": sums}, f, indent=2)
            f.flush()
            os.fsync(f.fileno())
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def damage(target: Path, design: str) -> str | None:
    """What makes the unit at `target` unusable, or None when every file matches its checksum
    and the unit was made with `design`."""
    if not target.exists():
        return "missing"
    try:
        record = json.loads((target / CHECKSUMS).read_text(encoding="utf-8"))
        files, made_with = dict(record["files"]), record["design"]
    except (OSError, ValueError, KeyError, TypeError):
        return f"{CHECKSUMS} missing or unreadable (an unfinished write)"
    if made_with != design:
        return "made with other parameters or seed"
    for name, expected in files.items():
        path = target / name
        if not path.is_file():
            return f"{name} missing"
        if file_hash(path) != expected:
            return f"{name} does not match its checksum"
    return None


__all__ = [
    "FolderError",
    "damage",
    "design_hash",
    "folder_lock",
    "json_text",
    "remove_stale",
    "write_file",
    "write_json",
    "write_unit",
]

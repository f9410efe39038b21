"""One run at a time per data directory: a second run fails at once, naming the run that holds it.

DuckDB allows one writing process per file; without this lock a second `make run` on the same
warehouse failed midway with DuckDB's lock traceback. The lock is an advisory `flock` on
`$PZ_DATA_DIR/run.lock`: the kernel releases it when the holder exits, killed or not, so a crash
never leaves a stale lock. Airflow's tasks do not take it: the DAG's one-slot `warehouse` pool
already serializes the tasks that write.
"""

from __future__ import annotations

import datetime as dt
import fcntl
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from ml.errors import PlatformError
from ml.paths import data_dir


class RunLockedError(PlatformError, RuntimeError):
    """Another run holds the data directory; the message names it."""


def lock_path() -> Path:
    return data_dir() / "run.lock"


@contextmanager
def exclusive_run(description: str) -> Iterator[None]:
    """Hold the data directory's run lock for the duration of the block."""
    path = lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+", encoding="utf-8") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "a process that did not say what it runs"
            raise RunLockedError(
                f"{data_dir()} is in use by another run ({holder}). Wait for it to finish, or stop it and "
                "rerun its ds (reruns are safe)."
            ) from None
        handle.seek(0)
        handle.truncate()
        started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        handle.write(f"pid {os.getpid()} on {socket.gethostname()}: {description}, started {started}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            fcntl.flock(handle, fcntl.LOCK_UN)

"""What a run says while it runs: one line per stage per night on the console, everything else in a log
file.

`python -m ml run|backfill|demo` sends Airflow's, dbt's and the libraries' output to one log file per
run (`$PZ_DATA_DIR/logs/<command>_<started>.log`, path printed at the start and the end; `-v` keeps it on
the console) by pointing the process's stdout and stderr at the file: the tasks' subprocesses (dbt,
Spark) inherit it, so nothing slips past. Each task that finishes appends one record to the run's
progress file (`PZ_PROGRESS_FILE`, written by ml.orchestration.callbacks.run_in_task in whichever
process runs the task); a thread of the run prints each record as it arrives:

    night 2 of 5  ds=2026-10-28
      build_staging            14.2 s  rows_read 1,204  quarantined 31
      ...
    ok: 5 nights in 9 min 12 s; log /data/logs/demo_20261207T101500.log
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

PROGRESS_FILE = "PZ_PROGRESS_FILE"
RESULT_ITEMS = 5
LINE_WIDTH = 150


def _number(value: float) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def one_line(result: object) -> str:
    """A stage's result in one line: its `summary` when it has one, else its first scalar items (a
    result is a small dict: what the task hands to XCom)."""
    if isinstance(result, list | tuple):
        return f"{len(result)} items"
    if not isinstance(result, dict):
        return "" if result is None else str(result)[:LINE_WIDTH]
    if isinstance(result.get("summary"), str):
        return result["summary"][:LINE_WIDTH]
    parts = []
    for key, value in result.items():
        if key == "alerts" or value is None:
            continue
        if isinstance(value, (int, float)):
            parts.append(f"{key} {_number(value)}")
        elif isinstance(value, str) and len(value) <= 40:
            parts.append(f"{key} {value}")
        elif isinstance(value, (list, dict)):
            parts.append(f"{key} {len(value)}")
        if len(parts) == RESULT_ITEMS:
            break
    return "  ".join(parts)[:LINE_WIDTH]


def record_stage(task: str, ds: str, seconds: float, result: object = None, error: str | None = None) -> None:
    """Append the finished task's record to the run's progress file (nothing outside such a run)."""
    path = os.environ.get(PROGRESS_FILE)
    if not path:
        return
    alerts = result.get("alerts") if isinstance(result, dict) else None
    record = {"task": task, "ds": ds, "seconds": round(seconds, 1), "result": one_line(result), "error": error}
    record["alerts"] = [str(alert) for alert in alerts or []]
    with open(path, "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\n")


def stage_line(record: dict) -> list[str]:
    """The console lines of one record: the stage, its time and result; an alert or error beneath it.
    A sharded stage shows as one line, its merge's (a plan or a shard only when it fails)."""
    task = record["task"]
    if (".plan" in task or ".shard " in task) and not record.get("error"):
        return []
    task = task.removesuffix(".merge")
    outcome = f"FAILED: {record['error']}" if record.get("error") else record.get("result", "")
    lines = [f"  {task:<32} {record['seconds']:>7.1f} s  {outcome}"[:LINE_WIDTH]]
    lines += [f"  {'':<32} {'':>9}  ! {alert}" for alert in record.get("alerts", [])]  # whole: they matter
    return lines


def duration(seconds: float) -> str:
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{rest} s"


class Console:
    """The run's console: the terminal the process started with, kept while stdout and stderr point at
    the log file; follows the progress file and prints each stage's line as it is recorded."""

    def __init__(self, stream, progress: Path):
        self.stream = stream
        self.progress = progress
        self.printed = 0
        self.alerts: list[str] = []
        self._stop = threading.Event()
        self._follower = threading.Thread(target=self._follow, daemon=True)

    def say(self, text: str) -> None:
        self.stream.write(text + "\n")
        self.stream.flush()

    def _drain(self) -> None:
        if not self.progress.exists():
            return
        records = self.progress.read_text(encoding="utf-8").splitlines()
        for line in records[self.printed :]:
            if not line.endswith("}"):
                break  # half-written: read it next time
            record = json.loads(line)
            self.alerts += [f"{record['task']} ds={record['ds']}: {alert}" for alert in record.get("alerts", [])]
            for text in stage_line(record):
                self.say(text)
            self.printed += 1

    def _follow(self) -> None:
        while not self._stop.wait(0.5):
            self._drain()

    def __enter__(self) -> Console:
        self._follower.start()
        return self

    def __exit__(self, *_) -> None:
        self._stop.set()
        self._follower.join()
        self._drain()


@contextlib.contextmanager
def _output_to(log_path: Path, verbose: bool) -> Iterator[None]:
    """stdout and stderr into `log_path`: file descriptors 1 and 2 (this process and every child) and
    Python's sys.stdout and sys.stderr (which a host such as pytest may have replaced)."""
    sys.stdout.flush()
    sys.stderr.flush()
    saved = [os.dup(1), os.dup(2)]
    try:
        with open(log_path, "a", buffering=1, encoding="utf-8") as log_file:
            redirect = contextlib.ExitStack()
            if not verbose:
                os.dup2(log_file.fileno(), 1)
                os.dup2(log_file.fileno(), 2)
                redirect.enter_context(contextlib.redirect_stdout(log_file))
                redirect.enter_context(contextlib.redirect_stderr(log_file))
            try:
                with redirect:
                    yield
            finally:
                sys.stdout.flush()
                sys.stderr.flush()
                os.dup2(saved[0], 1)
                os.dup2(saved[1], 2)
    finally:
        for descriptor in saved:
            os.close(descriptor)


def closing_line(failure: BaseException | None, seconds: float, log_path: Path) -> str:
    """ok / failed with the cause / how long, and where the full log is."""
    cause = (str(failure).splitlines() or [type(failure).__name__])[0] if failure is not None else ""
    status = "ok" if failure is None else f"failed: {cause}"
    return f"{status}; {duration(seconds)}; log {log_path}"


@contextlib.contextmanager
def quiet_run(command: str, logs: Path, verbose: bool) -> Iterator[Console]:
    """Run the body with stdout and stderr in a new log file (unless `verbose`), the progress file set,
    and a Console on the original terminal; ends with the closing status line."""
    logs.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.UTC).strftime("%Y%m%dT%H%M%S")
    log_path, progress = logs / f"{command}_{stamp}.log", logs / f"{command}_{stamp}.progress.jsonl"
    terminal = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1)
    console = Console(terminal, progress)
    console.say(f"{command}: Airflow, dbt and library logs in {log_path}" + (" (and here: -v)" if verbose else ""))
    previous = os.environ.get(PROGRESS_FILE)
    os.environ[PROGRESS_FILE] = str(progress)
    started, failure = time.perf_counter(), None
    try:
        with _output_to(log_path, verbose), console:
            yield console
    except BaseException as error:
        failure = error
        raise
    finally:
        os.environ.pop(PROGRESS_FILE)
        if previous is not None:
            os.environ[PROGRESS_FILE] = previous
        console.say(closing_line(failure, time.perf_counter() - started, log_path))
        terminal.close()

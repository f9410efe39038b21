"""Run the nightly DAG in-process for one date or a range (the embedded default, no scheduler).

`python -m ml run --ds 2026-10-31` and `backfill --start ... --end ...` call
Airflow's `dag.test()` per date, in order, on a SQLite metadata database under
`$PZ_DATA_DIR/airflow` (or `$AIRFLOW_HOME`). `setup` migrates that database and creates the
1-slot `warehouse` pool that every task writing the warehouse uses (DuckDB allows one writer).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import secrets
import subprocess
import sys
import time
from pathlib import Path

from ml.errors import PlatformError
from ml.orchestration.callbacks import night_failure_message
from ml.orchestration.config import load_config
from ml.orchestration.progress import duration, quiet_run
from ml.orchestration.settings import WAREHOUSE_POOL, warehouse_pool_slots
from ml.orchestration.stages import RUN_OPTIONS
from ml.paths import REPO_ROOT, data_dir
from ml.warehouse.run_lock import exclusive_run

log = logging.getLogger(__name__)

DAG_ID = "nightly_personalization"

# The local login of `make airflow` (airflow standalone): user admin with a password generated once per
# Airflow home, printed when it is made and kept in the passwords file (readable by its owner only).
LOCAL_USER = "admin"
PASSWORDS_FILE = "simple_auth_manager_passwords.json"


class OrchestrationError(PlatformError, RuntimeError):
    """A DAG run could not start or did not succeed; the message names the date and the reason."""


def airflow_home() -> Path:
    return Path(os.environ.get("AIRFLOW_HOME") or data_dir() / "airflow").resolve()


def local_password(home: Path) -> tuple[str, bool]:
    """(the local admin's password, whether it was generated just now). A passwords file written by an
    older version held the fixed password admin: it is replaced by a generated one."""
    home.mkdir(parents=True, exist_ok=True)
    passwords = home / PASSWORDS_FILE
    if passwords.exists():
        known = json.loads(passwords.read_text() or "{}").get(LOCAL_USER)
        if known and known != "admin":
            return known, False
    password = secrets.token_urlsafe(12)
    passwords.unlink(missing_ok=True)
    # Created readable by its owner only, never for a moment by anyone else.
    with os.fdopen(os.open(passwords, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600), "w") as handle:
        handle.write(json.dumps({LOCAL_USER: password}))
    return password, True


def airflow_env() -> dict[str, str]:
    """The environment every Airflow process of the embedded default runs with: the UI and API on
    127.0.0.1 only (AIRFLOW__API__HOST overrides it, for a host that a proxy with TLS fronts)."""
    home = airflow_home()
    home.mkdir(parents=True, exist_ok=True)
    passwords = home / PASSWORDS_FILE
    local_password(home)
    return {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        # Two cores: the default of 32 parallel task slots only thrashes.
        "AIRFLOW__CORE__PARALLELISM": "4",
        # The DAG file imports the stage functions: a parse takes seconds (more on a busy machine).
        "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "120",
        "AIRFLOW__DAG_PROCESSOR__DAG_FILE_PROCESSOR_TIMEOUT": "180",
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "300",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{LOCAL_USER}:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API__HOST": os.environ.get("AIRFLOW__API__HOST", "127.0.0.1"),
        "PZ_DATA_DIR": str(data_dir()),
        # `airflow standalone` starts its components as `airflow ...` from PATH.
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }


def _airflow(*arguments: str) -> None:
    airflow = Path(sys.executable).parent / "airflow"
    result = subprocess.run([str(airflow), *arguments], env=airflow_env(), capture_output=True, text=True)
    if result.returncode != 0:
        raise OrchestrationError(f"airflow {' '.join(arguments)} failed:\n{result.stderr[-3000:]}")


def setup() -> None:
    """Create or upgrade the metadata database and the warehouse pool (idempotent)."""
    _airflow("db", "migrate")
    _airflow("pools", "set", WAREHOUSE_POOL, warehouse_pool_slots(), "Tasks that write the warehouse side by side")


def dates_between(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=offset) for offset in range((end - start).days + 1)]


def check_dates(dates: list[dt.date], start_date: dt.date) -> None:
    """A date before start_date would 'succeed' with zero tasks in Airflow: refuse it instead."""
    early = [d.isoformat() for d in dates if d < start_date]
    if early:
        raise OrchestrationError(
            f"ds {', '.join(early)} is before the DAG's start_date {start_date} "
            "(config/personalization.yml, schedule.start_date): Airflow would report success without "
            "running a task. Choose a later date or move start_date."
        )


def run_dates(dates: list[dt.date], start_date: dt.date, allow_stale: bool = False, console=None) -> None:
    """Run the nightly DAG for each date, in the order given, in this process. A failed night ends
    the run with one line: its first failing task and that task's cause. `console`
    (ml.orchestration.progress) hears which night of how many is running and how long each took."""
    if not dates:
        return
    check_dates(dates, start_date)
    os.environ.update(airflow_env())  # before Airflow is imported: it reads its config at import
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(REPO_ROOT / "dags"))
    if bag.import_errors:
        raise OrchestrationError(f"DAG files failed to import: {bag.import_errors}")
    dag = bag.get_dag(DAG_ID)
    for number, ds in enumerate(dates, start=1):
        logical_date = dt.datetime.combine(ds, dt.time(2, 0), tzinfo=dt.UTC)
        log.info("running %s for ds=%s", DAG_ID, ds)
        if console is not None:
            console.say(f"night {number} of {len(dates)}  ds={ds}")
        started = time.perf_counter()
        dag_run = dag.test(logical_date=logical_date, run_conf={"allow_stale": allow_stale})
        unfinished = [ti.task_id for ti in dag_run.get_task_instances() if ti.state != "success"]
        if str(dag_run.state) != "success" or unfinished:
            message = night_failure_message(DAG_ID, ds.isoformat(), dag_run.run_id)
            raise OrchestrationError(f"{message} ({len(unfinished)} tasks did not succeed)")
        if console is not None:
            console.say(f"night {number} of {len(dates)}  ds={ds} ok in {duration(time.perf_counter() - started)}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup", help="migrate the Airflow metadata database and create the pool")
    commands.add_parser(
        "standalone", help="airflow standalone (UI on 127.0.0.1:8080), login admin with a generated password"
    )
    cli = commands.add_parser("airflow", help="any airflow CLI command with the platform's environment")
    cli.add_argument("airflow_arguments", nargs=argparse.REMAINDER)
    run = commands.add_parser("run", help="run the DAG for one logical date")
    run.add_argument("--summary", action="store_true", help="print what the run produced")
    run.add_argument("--ds", type=dt.date.fromisoformat, required=True)
    backfill = commands.add_parser("backfill", help="run the DAG for every date from START to END, in order")
    for command in (run, backfill):
        command.add_argument("--allow-stale", action="store_true", help=RUN_OPTIONS["allow_stale"])
    backfill.add_argument("--start", type=dt.date.fromisoformat, required=True)
    backfill.add_argument("--end", type=dt.date.fromisoformat, required=True)
    backfill.add_argument("--reverse", action="store_true", help="newest date first (each date stands alone)")
    backfill.add_argument("--summary", action="store_true", help="print what the last run produced")
    demo = commands.add_parser("demo", help="run the DAG for the last schedule.demo_days days of demo data")
    demo.add_argument("--summary", action="store_true")
    for command in (run, backfill, demo):
        command.add_argument(
            "-v", "--verbose", action="store_true", help="Airflow, dbt and library logs on the console too"
        )
    arguments = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        config = load_config()
        if arguments.command == "run":
            dates = [arguments.ds]
        elif arguments.command == "backfill":
            if arguments.end < arguments.start:
                raise OrchestrationError(f"--end {arguments.end} is before --start {arguments.start}")
            dates = dates_between(arguments.start, arguments.end)[:: -1 if arguments.reverse else 1]
        elif arguments.command == "demo":
            end = config.demo.end_date
            dates = dates_between(end - dt.timedelta(days=config.schedule.demo_days - 1), end)
        elif arguments.command in ("standalone", "airflow"):
            # Before setup, which writes the passwords file: a password made now is shown this once.
            password, generated = local_password(airflow_home())
            setup()
            if arguments.command == "standalone":
                shown = password if generated else f"the password in {airflow_home() / PASSWORDS_FILE}"
                print(f"Airflow UI: http://127.0.0.1:8080  login: {LOCAL_USER} / {shown}", flush=True)
            airflow = str(Path(sys.executable).parent / "airflow")
            extra = ["standalone"] if arguments.command == "standalone" else arguments.airflow_arguments
            os.execve(airflow, [airflow, *extra], airflow_env())
        else:
            dates = []
        check_dates(dates, config.schedule.start_date)  # before the slow setup: a wrong date fails at once
        described = f"ml.orchestration {arguments.command} " + (
            f"ds {dates[0]}" + (f" to {dates[-1]}" if len(dates) > 1 else "") if dates else "setup"
        )
        with exclusive_run(described):
            if dates:
                logs = data_dir() / "logs"
                with quiet_run(arguments.command, logs, arguments.verbose) as console:
                    setup()
                    run_dates(dates, config.schedule.start_date, getattr(arguments, "allow_stale", False), console)
            else:
                setup()
        if dates and getattr(arguments, "summary", False):
            from ml.reports.summary import print_summary

            print_summary(dates[-1], config.activation)
    except PlatformError as error:  # every error a user can act on: one line, exit 2
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0

"""`python -m ml <command>`: the platform's one command line.

Every command loads the configuration here (the packages take the sections they need) and reports an
error a user can act on the same way: `error: <message>` on stderr, exit status 2 (ml.errors).

    python -m ml run --ds 2026-10-31 [--summary]      # the nightly DAG for one date, through Airflow
    python -m ml backfill --start ... --end ...       # the DAG for a range of dates, in order
    python -m ml demo [--summary]                     # the DAG for the demo's last days
    python -m ml setup | standalone | airflow ...     # Airflow's database, its UI, its CLI
    python -m ml pipeline --ds ... [--stage NAME]     # the stages in this process, without Airflow
    python -m ml stages                               # the stage table (docs/architecture.md)
    python -m ml synthetic [--customers N ...]        # demo landing data
    python -m ml movielens FOLDER --out LANDING       # a MovieLens release as landing files
    python -m ml campaign-export CSV --mapping YML    # a randomized campaign's export as landing files
    python -m ml landing [--landing DIR]              # landing files into raw.* (no dbt)
    python -m ml dbt build|run|test --ds ... [args]   # dbt for one date, with the platform's vars
    python -m ml erasure report|list|purge|purge-model-artifacts  # erasure: to check, purges, run them
    python -m ml exports clean|reload-tables          # repairs of the channel files and tables
    python -m ml serve [--host H] [--port P]          # the online decision service (docs/serving.md)
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import sys
from collections.abc import Callable
from pathlib import Path

from ml.errors import report_errors

AIRFLOW_COMMANDS = ("run", "backfill", "demo", "setup", "standalone", "airflow")


def _logging() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def synthetic(argv: list[str]) -> int:
    """Generate the demo landing data (defaults: the configuration's `demo` section)."""
    from ml.orchestration.config import load_config
    from ml.paths import landing_dir
    from ml.synthetic.generate import generate
    from ml.synthetic.settings import GeneratorSettings, PlantedLift

    config = load_config()
    demo = config.demo
    parser = argparse.ArgumentParser(prog="python -m ml synthetic", description="Generate demo landing data.")
    parser.add_argument("--customers", type=int, default=demo.customers)
    parser.add_argument("--days", type=int, default=demo.days)
    parser.add_argument(
        "--end-date", type=dt.date.fromisoformat, default=demo.end_date, help="last day of data (YYYY-MM-DD)"
    )
    parser.add_argument(
        "--bad-rows", type=float, default=demo.bad_row_rate, help="rate of injected bad rows per table and class"
    )
    parser.add_argument("--seed", type=int, default=demo.seed)
    parser.add_argument("--out", type=Path, default=None, help="landing folder (default $PZ_DATA_DIR/landing)")
    args = parser.parse_args(argv)
    _logging()
    planted = PlantedLift.from_config(demo, config.activation)
    settings = GeneratorSettings(args.customers, args.days, args.end_date, args.bad_rows, args.seed, planted)
    out = (args.out or landing_dir()).resolve()
    for name, count in generate(settings, out).items():
        print(f"{name:>18}: {count:>10,} rows")
    print(f"landing files written to {out}; ground truth and bad-row ledger in {out.parent / 'synthetic_truth'}")
    return 0


def movielens(argv: list[str]) -> int:
    """Land a MovieLens release (read in place) as the platform's landing files."""
    from ml.warehouse.movielens import PURCHASE_MIN_RATING, read_movielens, write_landing

    parser = argparse.ArgumentParser(prog="python -m ml movielens", description=movielens.__doc__)
    parser.add_argument("folder", type=Path, help="a MovieLens release folder (read in place)")
    parser.add_argument("--out", type=Path, required=True, help="the landing folder to replace")
    parser.add_argument("--until", type=dt.date.fromisoformat, help="land only ratings up to the end of this day")
    parser.add_argument("--purchase-min-rating", type=float, default=PURCHASE_MIN_RATING)
    args = parser.parse_args(argv)
    _logging()
    data = read_movielens(args.folder)
    if args.until:
        data = data.until(args.until)
    counts = write_landing(data, args.out, args.purchase_min_rating)
    print(f"landed {counts} under {args.out}")
    return 0


def campaign_export(argv: list[str]) -> int:
    """Land a randomized campaign's export (one row per customer) for the uplift models (docs/uplift.md)."""
    import yaml
    from pydantic import ValidationError

    from ml.errors import ConfigError
    from ml.paths import landing_dir
    from ml.warehouse.campaign_export import CampaignExport, suggested_config, write_landing

    parser = argparse.ArgumentParser(prog="python -m ml campaign-export", description=campaign_export.__doc__)
    parser.add_argument("export", type=Path, help="the export, CSV with a header row (read in place)")
    parser.add_argument("--mapping", type=Path, required=True, help="YAML: which column is which (docs/uplift.md)")
    parser.add_argument("--out", type=Path, default=None, help="landing folder (default $PZ_DATA_DIR/landing)")
    parser.add_argument("--goal", choices=["purchase", "revenue", "engagement"], default="purchase")
    args = parser.parse_args(argv)
    _logging()
    try:
        mapping = CampaignExport.model_validate(yaml.safe_load(args.mapping.read_text()))
    except (OSError, yaml.YAMLError, ValidationError) as error:
        raise ConfigError(f"{args.mapping}: {error}") from error
    out = (args.out or landing_dir()).resolve()
    counts = write_landing(args.export, mapping, out)
    print(f"landed {counts} under {out}")
    print("add to config/personalization.yml (or the file PZ_CONFIG names) to learn from it:")
    print(suggested_config(mapping, args.goal))
    last = mapping.sent_on + dt.timedelta(days=mapping.window_days)
    then = f"python -m ml run --ds {last}" + ("" if mapping.customers_known else " --allow-stale")
    print(f"then run the night its goal window ends (a backfill: the export's newest row is earlier): {then}")
    return 0


def landing(argv: list[str]) -> int:
    """Load the landing files into the warehouse's raw schema (what load_landing does, without a ds)."""
    from ml.paths import landing_dir, warehouse_path
    from ml.warehouse.landing import load_landing
    from ml.warehouse.run_lock import exclusive_run

    parser = argparse.ArgumentParser(prog="python -m ml landing", description=landing.__doc__)
    parser.add_argument("--landing", type=Path, default=None)
    parser.add_argument("--warehouse", type=Path, default=None)
    args = parser.parse_args(argv)
    _logging()
    with exclusive_run("python -m ml landing"):
        loads = load_landing(args.landing or landing_dir(), args.warehouse or warehouse_path())
    for name, load in loads.items():
        print(
            f"raw.{name:<18} {load.rows:>10,} records read  {load.unreadable_records:>6,} unreadable  "
            f"{load.rows_held:>10,} held"
        )
    return 0


def dbt(argv: list[str]) -> int:
    """Run dbt for a logical date on one of the project's targets, with the platform's vars."""
    from ml.orchestration.config import load_config
    from ml.warehouse.transform import DBT_TARGETS, run_dbt

    parser = argparse.ArgumentParser(prog="python -m ml dbt", description=dbt.__doc__)
    parser.add_argument("command", choices=["build", "run", "test"], help="the dbt command")
    parser.add_argument("--ds", type=dt.date.fromisoformat, required=True, help="the logical date, YYYY-MM-DD")
    parser.add_argument("--target", choices=DBT_TARGETS, default=None, help="default: PZ_WAREHOUSE_ENGINE")
    args, extra = parser.parse_known_args(argv)
    _logging()
    run_dbt(args.command, args.ds, load_config().dbt_vars(), *extra, target=args.target)
    return 0


def erasure(argv: list[str]) -> int:
    """Erasure: the requests a person must check, the purges beyond dbt (ml.orchestration.privacy), and
    running them now."""
    parser = argparse.ArgumentParser(prog="python -m ml erasure", description=erasure.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("report", help="list the erasure requests a person must check")
    commands.add_parser("list", help="what each purge removes and where it runs")
    commands.add_parser("purge", help="run every purge now (a request that must not wait for the night)")
    purge = commands.add_parser("purge-model-artifacts", help="delete older model bundles that hold erased ids")
    purge.add_argument("--dry-run", action="store_true")
    args = parser.parse_args(argv)
    _logging()
    if args.command == "report":
        from ml.warehouse.erasure import erasure_problems

        problems = erasure_problems()
        for problem in problems:
            print(f"{problem.kind:<17} {problem.message}")
        print(f"{len(problems)} erasure request(s) to check")
        return 0
    from ml.orchestration import privacy

    if args.command in ("list", "purge"):
        from ml.orchestration.config import load_config

        lines = privacy.purge_table() if args.command == "list" else privacy.purge_now(load_config())
    else:
        from ml.mlops.erasure import purge_model_artifacts

        lines = purge_model_artifacts(dry_run=args.dry_run)
    for line in lines:
        print(line)
    return 0


def exports(argv: list[str]) -> int:
    """Channel exports: repairs after an interrupted publish or a restore."""
    from ml.activation.export import repair
    from ml.orchestration.config import load_config

    parser = argparse.ArgumentParser(prog="python -m ml exports", description=exports.__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("reload-tables", help="reload the channel tables from the published files")
    commands.add_parser("clean", help="delete or restore the leftovers of an interrupted publish")
    args = parser.parse_args(argv)
    _logging()
    for line in repair(args.command, load_config().activation):
        print(line)
    return 0


def pipeline(argv: list[str]) -> int:
    from ml.orchestration.pipeline import main

    return main(argv)


def airflow_command(argv: list[str]) -> int:
    from ml.orchestration.dag_runs import main

    return main(argv)


def stages(argv: list[str]) -> int:
    from ml.orchestration.stages import markdown_table

    print(markdown_table())
    return 0


LOOPBACK = ("127.0.0.1", "localhost", "::1")


def service_app(serving_config=None, token: str | None = None, serving_root=None, landing=None):
    """The online service's app on this data dir (the configuration's `serving` section, the data
    dir's serving and landing folders, unless given)."""
    from ml.orchestration.config import load_config
    from ml.paths import landing_dir
    from ml.serving.app import Vocabulary, create_app
    from ml.serving.events import SERVICE_TABLES
    from ml.serving.snapshot import serving_dir
    from ml.warehouse.contract import CONTRACT
    from ml.warehouse.project import dbt_project_vars

    project = dbt_project_vars()
    columns = {table: CONTRACT[table].columns for table in SERVICE_TABLES}
    vocabulary = Vocabulary(tuple(project["event_types"]), tuple(project["consent_channels"]), columns)
    config = serving_config or load_config().serving
    return create_app(config, serving_root or serving_dir(), landing or landing_dir(), vocabulary, token)


def serve(argv: list[str]) -> int:
    """The online decision service on the published serving snapshot (uvicorn)."""
    import os

    import uvicorn

    from ml.errors import ConfigError
    from ml.orchestration.config import load_config

    config = load_config().serving
    parser = argparse.ArgumentParser(prog="python -m ml serve", description=serve.__doc__)
    parser.add_argument("--host", default=config.host, help=f"address to listen on (default {config.host})")
    parser.add_argument("--port", type=int, default=config.port, help=f"port (default {config.port})")
    args = parser.parse_args(argv)
    token = os.environ.get("PZ_API_TOKEN") or None
    if args.host not in LOOPBACK and token is None:
        raise ConfigError(
            f"serving.host {args.host!r} is not loopback: set PZ_API_TOKEN so that requests need a bearer token"
        )
    _logging()
    app = service_app(config.model_copy(update={"host": args.host, "port": args.port}), token)
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="info")
    return 0


COMMANDS: dict[str, Callable[[list[str]], int]] = {
    **dict.fromkeys(AIRFLOW_COMMANDS, airflow_command),
    "pipeline": pipeline,
    "stages": stages,
    "synthetic": synthetic,
    "movielens": movielens,
    "campaign-export": campaign_export,
    "landing": landing,
    "dbt": dbt,
    "erasure": erasure,
    "exports": exports,
    "serve": serve,
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"error: no command {argv[0]!r}; the commands are: {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    arguments = argv if command is airflow_command else argv[1:]
    return report_errors(lambda: command(arguments))

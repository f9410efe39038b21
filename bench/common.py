"""Helpers shared by the benchmarks: per-process timing and memory, machine description, results."""

from __future__ import annotations

import os
import platform
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import psutil

REPO = Path(__file__).resolve().parent.parent
WORK = REPO / "bench" / ".work"
RESULTS = REPO / "bench" / "results.md"


def stores_env(data_dir: Path) -> dict[str, str]:
    """The environment of a stage process whose data, reports and MLflow store live in data_dir."""
    return {
        **os.environ,
        "PZ_DATA_DIR": str(data_dir),
        "PZ_REPORTS_DIR": str(data_dir / "reports"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{data_dir / 'mlflow.db'}",
    }


def run_stage(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak resident memory in GB) of that process and the
    processes it started. The kernel's peak counts only children a process waited for; a Spark
    driver's JVM is not waited for, so the tree's resident memory is also sampled while it runs."""
    started = time.perf_counter()
    process = start_process(command, env)
    sampled, done = [0], threading.Event()
    sampler = threading.Thread(target=_sample_tree_memory, args=(process.pid, sampled, done), daemon=True)
    sampler.start()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    done.set()
    sampler.join()
    check_exit(command, status, process)
    return seconds, max(usage.ru_maxrss * 1024, sampled[0]) / 1024**3  # ru_maxrss is in KiB on Linux


def _sample_tree_memory(pid: int, peak: list[int], done: threading.Event, every: float = 0.25) -> None:
    """The largest sum of resident memory of `pid` and its descendants seen until `done`, in bytes."""
    try:
        root = psutil.Process(pid)
    except psutil.NoSuchProcess:
        return
    while not done.wait(every):
        try:
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        total = 0
        for member in tree:
            try:
                total += member.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        peak[0] = max(peak[0], total)


def start_process(command: list[str], env: dict[str, str]) -> subprocess.Popen:
    """Start a stage process, its stderr kept in a temporary file (`process.stderr_file`) for
    check_exit. Not a pipe: nobody reads a pipe until the process ends, and once its 64 KiB fill up
    the process blocks on its next write (a Spark driver's console progress bar fills it in one
    stage), so the stage hangs instead of finishing."""
    stderr_file = tempfile.TemporaryFile()  # noqa: SIM115 (check_exit closes it)
    process = subprocess.Popen(command, cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=stderr_file)
    process.stderr_file = stderr_file
    return process


def check_exit(command: list[str], status: int, process: subprocess.Popen) -> None:
    """Raise RuntimeError with the end of stderr when the process (from start_process) failed, and
    the signal when it was killed (a SIGKILL without a word is usually the kernel's OOM killer: see
    dmesg)."""
    with process.stderr_file as stderr_file:
        code = os.waitstatus_to_exitcode(status)
        if code == 0:
            return
        stderr_file.seek(0)
        stderr = stderr_file.read().decode(errors="replace")[-3000:]
    how = f"killed by signal {-code}" + (" (SIGKILL: out of memory? see dmesg)" if code == -9 else "")
    detail = how if code < 0 else f"exit code {code}"
    raise RuntimeError(f"{' '.join(command)} failed, {detail}:\n{stderr}")


def machine() -> str:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    memory_kb = next(
        int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines() if line.startswith("MemTotal")
    )
    return (
        f"{os.cpu_count()} cores ({cpu}), {memory_kb / 1024**2:.0f} GB RAM, {platform.system()} "
        f"{platform.release()}, Python {platform.python_version()}, DuckDB {duckdb.__version__}"
    )


def write_section(name: str, text: str) -> None:
    """Replace this benchmark's section of bench/results.md, keeping the others."""
    begin, end = f"<!-- begin {name} -->", f"<!-- end {name} -->"
    block = f"{begin}\n{text.strip()}\n{end}"
    current = RESULTS.read_text(encoding="utf-8") if RESULTS.exists() else "# Benchmarks\n"
    pattern = re.compile(re.escape(begin) + ".*?" + re.escape(end), flags=re.S)
    updated = pattern.sub(lambda _: block, current) if pattern.search(current) else f"{current.rstrip()}\n\n{block}\n"
    RESULTS.write_text(updated, encoding="utf-8")


def demo_warehouse(name: str, customers: int | None = None) -> tuple[Path, dict[str, str], str]:
    """Generate the demo data set (config section `demo`; `customers` of them when given) into
    bench/.work/<name> and build its warehouse for the demo end date, models excluded. Returns
    (data dir, environment, ds)."""
    import shutil
    import sys

    sys.path.insert(0, str(REPO))
    from ml.orchestration.config import load_config

    demo = load_config().demo
    data_dir = WORK / name
    shutil.rmtree(data_dir, ignore_errors=True)
    env = {**os.environ, "PZ_DATA_DIR": str(data_dir), "PZ_REPORTS_DIR": str(data_dir / "reports")}
    ds = demo.end_date.isoformat()
    landing = str(data_dir / "landing")
    run_stage(
        [
            sys.executable,
            "-m",
            "ml",
            "synthetic",
            "--customers",
            str(customers or demo.customers),
            "--days",
            str(demo.days),
            "--bad-rows",
            str(demo.bad_row_rate),
            "--out",
            landing,
        ],
        env,
    )
    run_stage([sys.executable, "-m", "ml", "pipeline", "--ds", ds, "--warehouse-only"], env)
    return data_dir, env, ds

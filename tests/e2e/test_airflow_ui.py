"""A person's view of a finished run: the Airflow and MLflow UIs in Debian's chromium (Playwright).

Runs the DAG (Airflow) on a copy of the session's night, then starts `airflow standalone` on a free
port, logs in with the documented local login, opens the run and checks that every task is in state
success; and starts `mlflow ui` over the same run's tracking store and checks the registered
`recommender` has a champion and the run shows the model's metrics beside the baseline's.
Screenshots go to reports/.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from ml.orchestration.config import load_config
from ml.orchestration.dag_runs import local_password
from ml.paths import REPO_ROOT, reports_dir
from tests.helpers import END_DATE, copy_night, pipeline_env
from tests.integration.test_dag_file import EXPECTED_TASKS

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("browser")]

CHROMIUM = Path("/usr/bin/chromium")
# Headless as root on a closed network: without these, chromium tries to phone home at every start.
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TASKS = EXPECTED_TASKS  # every task of the DAG
MAPPED_TASKS = [task for task in TASKS if task.endswith(".score_shard")]  # one instance per shard
SHARDS = load_config().scoring.shards
UI_TIMEOUT_MS = 60_000


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_until_healthy(url: str, process: subprocess.Popen, timeout_seconds: float = 240) -> None:
    deadline = time.monotonic() + timeout_seconds
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"airflow standalone exited with {process.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                if b'"scheduler":{"status":"healthy"' in response.read():
                    return
        except OSError:
            pass
        time.sleep(3)
    raise TimeoutError(f"airflow standalone not healthy after {timeout_seconds} s")


@pytest.fixture(scope="module")
def finished_run(built_warehouse, tmp_path_factory):
    """A data dir where the nightly DAG ran for END_DATE: a copy of the session's night for that
    date (tests/conftest.py), run again by Airflow. Every task runs and succeeds as on a first night;
    the model stages find their rows unchanged and keep their versions, so it costs a rerun, not a
    night of its own."""
    data_dir = copy_night(built_warehouse, tmp_path_factory.mktemp("ui") / "data")
    env = pipeline_env(data_dir)
    run = subprocess.run(
        [sys.executable, "-m", "ml", "run", "--ds", END_DATE.isoformat()],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert run.returncode == 0, run.stderr[-3000:]
    return data_dir


@pytest.fixture(scope="module")
def airflow_ui(finished_run):
    data_dir = finished_run
    env = pipeline_env(data_dir)
    port = free_port()
    log = (data_dir / "standalone.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "ml", "standalone"],
        cwd=REPO_ROOT,
        env={**env, "AIRFLOW__API__PORT": str(port)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until_healthy(f"http://localhost:{port}/api/v2/monitor/health", process)
        yield f"http://localhost:{port}"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def browser_page(playwright):
    browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    # The UIs render client-side; on two busy cores that can take well over the default 5 s.
    page.set_default_timeout(UI_TIMEOUT_MS)
    return browser, page


@pytest.fixture(scope="module")
def mlflow_ui(finished_run):
    port = free_port()
    yield from local_server(
        [
            str(Path(sys.executable).with_name("mlflow")),
            "ui",
            "--port",
            str(port),
            "--backend-store-uri",
            f"sqlite:///{finished_run / 'mlflow.db'}",
        ],
        pipeline_env(finished_run),
        f"http://127.0.0.1:{port}",
        "/health",
        finished_run / "mlflow_ui.log",
    )


def local_server(command: list[str], env: dict, url: str, probe: str, log_path: Path, timeout_seconds: float = 240):
    """Start a server process, yield its url once `probe` answers, stop it (its whole group) after."""
    log = log_path.open("w")
    process = subprocess.Popen(
        command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + timeout_seconds
        while True:
            try:
                with urllib.request.urlopen(f"{url}{probe}", timeout=5):
                    break
            except OSError as error:
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"{command[:4]} did not come up: {log_path.read_text()[-2000:]}") from error
                time.sleep(1)
        yield url
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=60)
        log.close()


def test_mlflow_shows_the_champion_and_metrics_beside_the_baseline(mlflow_ui):
    from mlflow import MlflowClient
    from playwright.sync_api import expect, sync_playwright

    client = MlflowClient(tracking_uri=mlflow_ui)
    champion = client.get_model_version_by_alias("recommender", "champion")
    experiment_id = client.get_run(champion.run_id).info.experiment_id
    screenshot = reports_dir() / "mlflow_recommender_run.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright)
        try:
            # The MLflow UI polls its API, so the network is never idle: wait for content instead.
            page.goto(f"{mlflow_ui}/#/models/recommender", wait_until="domcontentloaded")
            expect(page.get_by_text("champion").first).to_be_visible(timeout=UI_TIMEOUT_MS)
            run_page = f"{mlflow_ui}/#/experiments/{experiment_id}/runs/{champion.run_id}"
            page.goto(run_page, wait_until="domcontentloaded")
            expect(page.get_by_text(f"recommender ds={END_DATE}").first).to_be_visible(timeout=UI_TIMEOUT_MS)
            expect(page.get_by_text("gate_promoted").first).to_be_visible(timeout=UI_TIMEOUT_MS)
            metrics = page.get_by_text("baseline_ndcg_at_10").first
            metrics.scroll_into_view_if_needed(timeout=UI_TIMEOUT_MS)
            expect(metrics).to_be_visible(timeout=UI_TIMEOUT_MS)
            page.screenshot(path=str(screenshot), full_page=True)
        except Exception:
            page.screenshot(path=str(screenshot.with_name("mlflow_recommender_run_failure.png")))
            raise
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000


def test_a_finished_run_shows_every_task_in_success(airflow_ui, finished_run):
    """Logged in with the password generated for this Airflow home (never a fixed one)."""
    from playwright.sync_api import expect, sync_playwright

    assert CHROMIUM.exists(), "Debian's chromium is missing: `make test` installs it (apt-get install chromium)"
    screenshot = reports_dir() / "airflow_nightly_run.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright)
        try:
            page.goto(airflow_ui, wait_until="networkidle")
            page.fill("input[name=username]", "admin")
            page.fill("input[name=password]", local_password(finished_run / "airflow")[0])
            page.click("button:has-text('Sign in')")
            page.wait_for_url(lambda url: "/auth/login" not in url)

            page.goto(f"{airflow_ui}/dags/nightly_personalization/runs", wait_until="networkidle")
            run_row = page.locator("tr", has_text=f"{END_DATE} 02:00:00")
            expect(run_row).to_have_count(1, timeout=UI_TIMEOUT_MS)
            expect(run_row).to_contain_text("Success", timeout=UI_TIMEOUT_MS)
            run_row.locator("a").first.click()
            page.wait_for_load_state("networkidle")

            instances = len(TASKS) + len(MAPPED_TASKS) * (SHARDS - 1)
            expect(page.get_by_text(f"{instances} Task Instances")).to_be_visible(timeout=UI_TIMEOUT_MS)
            for task_id in TASKS:
                if task_id in MAPPED_TASKS:
                    continue
                expect(page.locator("tr", has_text=task_id)).to_contain_text("Success", timeout=UI_TIMEOUT_MS)
            # Mapped shards show their rendered map index (map_index_template), each a success.
            rows = page.locator("tr", has_text=".score_shard")
            expect(rows).to_have_count(len(MAPPED_TASKS) * SHARDS, timeout=UI_TIMEOUT_MS)
            for task_id in MAPPED_TASKS:
                for number in range(1, SHARDS + 1):
                    row = page.locator("tr", has_text=task_id).filter(has_text=f"shard {number} of {SHARDS}")
                    expect(row).to_contain_text("Success", timeout=UI_TIMEOUT_MS)
            page.screenshot(path=str(screenshot))
        except Exception:
            page.screenshot(path=str(screenshot.with_name("airflow_nightly_run_failure.png")))
            raise
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000


def test_the_marketer_page_reads_in_a_minute_at_a_laptops_width(finished_run):
    """The audience summary as a marketer opens it: money and what is waiting first, charts whose
    alt text says what they show, readable headers (no snake_case, one header row), nothing wider
    than a 1300-px window, and drift links that open their reports."""
    from playwright.sync_api import expect, sync_playwright

    from ml.orchestration.config import load_config

    report = finished_run / "reports" / "audiences" / f"audiences_{END_DATE}.html"
    screenshot = reports_dir() / "audience_summary.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1300, "height": 900})
        try:
            page.goto(report.as_uri())
            expect(page.get_by_role("heading", name=f"Audiences for {END_DATE}")).to_be_visible()
            headings = page.locator("h2").all_inner_texts()
            assert headings[:3] == [
                "What personalization earned",
                "Money per audience and arm",
                "Experiments still waiting for data",
            ], headings
            # One night: no goal window has ended, and the page says so (the table: tests/unit/reports).
            expect(page.locator("h2:has-text('still waiting') + p")).to_have_text(
                "No experiment has a comparison yet: no assigned customer's goal window has ended."
            )
            for level in ("demographic", "behavioral", "predictive"):
                expect(page.get_by_role("cell", name=level, exact=True).first).to_be_visible()
            for name in load_config().activation.audiences:
                expect(page.get_by_role("cell", name=name, exact=True).first).to_be_visible()
            headers = page.locator("th").all_inner_texts()
            assert headers and not [text for text in headers if "_" in text], headers
            assert page.locator("thead tr").evaluate_all("rows => rows.every(r => r.parentElement.rows.length === 1)")
            images = page.locator("img")
            assert images.count() >= 1  # the funnel
            for index in range(images.count()):
                alt = images.nth(index).get_attribute("alt")
                assert alt and len(alt) > 40 and alt != "chart", alt
                assert images.nth(index).evaluate("image => image.complete && image.naturalWidth > 0")
            assert page.evaluate("document.documentElement.scrollWidth") <= 1300
            links = page.get_by_role("link", name="open the report")
            assert links.count() >= 1
            for index in range(links.count()):
                href = links.nth(index).get_attribute("href")
                assert (report.parent / href).resolve().is_file(), href
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000


def test_the_kpi_report_opens_without_console_errors_and_shows_every_section(finished_run):
    from playwright.sync_api import expect, sync_playwright

    report = finished_run / "reports" / "kpi" / f"kpi_{END_DATE}.html"
    screenshot = reports_dir() / "kpi_report.png"
    screenshot.parent.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright)
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))
        try:
            page.goto(report.as_uri())
            expect(page.get_by_role("heading", name=f"Customer KPIs for {END_DATE}")).to_be_visible()
            for section in ("Customer experience", "Retention", "Audiences", "Experiments", "Model health (drift)"):
                expect(page.get_by_role("heading", name=section, exact=True)).to_be_visible()
            images = page.locator("img")
            assert images.count() >= 4  # CX trends, retention, churn by NPS, audiences
            for index in range(images.count()):  # every chart decoded and drawn, and described
                assert images.nth(index).evaluate("image => image.complete && image.naturalWidth > 0")
                assert images.nth(index).get_attribute("alt") != "chart"
            expect(page.get_by_role("heading", name="Experiments still waiting for data")).to_be_visible()
            expect(page.get_by_role("cell", name="propensity", exact=True).first).to_be_visible()
            page.screenshot(path=str(screenshot), full_page=True)
        finally:
            browser.close()
    assert errors == []
    assert screenshot.stat().st_size > 10_000


@pytest.fixture(scope="module")
def decision_service(finished_run):
    """`python -m ml serve` on the finished run's published snapshot, on a free loopback port."""
    port = free_port()
    yield from local_server(
        [sys.executable, "-m", "ml", "serve", "--port", str(port)],
        {key: value for key, value in pipeline_env(finished_run).items() if key != "PZ_API_TOKEN"},
        f"http://127.0.0.1:{port}",
        "/ready",
        finished_run / "serve.log",
        timeout_seconds=60,
    )


def test_the_storefront_page_shows_the_visitors_offer_and_recommendations(decision_service, finished_run):
    """The run's web decisions in a real browser: a customer with a web decision sees it, an
    anonymous visitor the default experience, and the same visitor after logging in, the customer's."""
    import pyarrow.parquet as pq
    from playwright.sync_api import expect, sync_playwright

    web = [
        row
        for path in sorted((finished_run / "exports" / "web" / f"ds={END_DATE}").glob("*.parquet"))
        for row in pq.read_table(path).to_pylist()
    ]
    assert web, "the night decided nothing for the web channel"
    customer = web[0]
    product = json.loads(
        urllib.request.urlopen(f"{decision_service}/v1/recommendations/{customer['customer_id']}?k=1").read()
    )
    item = product["items"][0]["item_id"]
    screenshot = reports_dir() / "storefront.png"
    with sync_playwright() as playwright:
        browser, page = browser_page(playwright)
        try:
            page.goto(f"{decision_service}/demo/products/{item}?visitor={customer['customer_id']}")
            expect(page.locator("#product h1")).to_be_visible()
            experience = page.locator("#experience")
            expect(experience).to_have_attribute("data-default", "false")
            expect(experience).to_contain_text(customer["offer_code"] or customer["content_id"] or "Picked for you")
            recommendations = page.locator("#recommendations li")
            expect(recommendations).to_have_count(8)
            shown = [recommendations.nth(i).get_attribute("data-item-id") for i in range(8)]
            assert item not in shown
            page.screenshot(path=str(screenshot), full_page=True)

            page.goto(f"{decision_service}/demo/products/{item}?visitor=visitor-42")
            expect(page.locator("#experience")).to_have_attribute("data-default", "true")
            expect(page.locator("#recommendations li")).to_have_count(8)
            login = json.dumps(
                [
                    {
                        "event_type": "login",
                        "anonymous_id": "visitor-42",
                        "customer_id": customer["customer_id"],
                        "occurred_at": f"{END_DATE}T12:00:00Z",
                    }
                ]
            ).encode()
            request = urllib.request.Request(
                f"{decision_service}/v1/events", data=login, headers={"Content-Type": "application/json"}
            )
            assert urllib.request.urlopen(request).status == 202
            page.reload()
            expect(page.locator("#experience")).to_have_attribute("data-default", "false")
        except Exception:
            page.screenshot(path=str(screenshot.with_name("storefront_failure.png")))
            raise
        finally:
            browser.close()
    assert screenshot.stat().st_size > 10_000

"""The viewer in a real browser: Playwright driving Debian's Chromium against `instructforge
serve`, with a worker generating on the real embedded model.

Screenshots of each main page land in data/viewer-screenshots/ (looked at by a person before a
change to the viewer is resolved). Chromium comes from Debian (`apt-get install chromium`,
which `make test` runs); without it these tests skip and say so.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from service.demo import demo_run_config, free_port, wait_ready
from tests.conftest import MODEL_CACHE, REPO_ROOT
from tests.service.api_client import api_harness
from tests.service.viewer_data import Seeded, seed_viewer_data

CHROMIUM = Path(os.environ.get("INSTRUCTFORGE_CHROMIUM", "/usr/bin/chromium"))
SHOTS = REPO_ROOT / "data" / "viewer-screenshots"
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not CHROMIUM.exists(),
        reason=f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (make test does)",
    ),
]
playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright")


@dataclass
class Site:
    url: str
    seeded: Seeded
    env: dict[str, str]
    keys: dict[str, str]


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """A migrated SQLite database with the viewer's data, served by a real API process."""
    from service.storage.migrate import upgrade

    tmp = tmp_path_factory.mktemp("viewer")
    url = f"sqlite:///{tmp / 'viewer.db'}"
    upgrade(url)
    with api_harness(url, tmp) as api:
        seeded = seed_viewer_data(api, tmp, complete=True)
        keys = dict(api.keys)
    env = {
        **os.environ,
        "INSTRUCTFORGE_DATABASE_URL": url,
        "INSTRUCTFORGE_DATA_DIR": str(tmp),
        "INSTRUCTFORGE_DATASETS_DIR": str(tmp / "datasets"),
        "INSTRUCTFORGE_MODELS_DIR": str(tmp / "models"),
        "INSTRUCTFORGE_MODEL_CACHE_DIR": str(MODEL_CACHE),
        "INSTRUCTFORGE_POLL_SECONDS": "0.5",
        "INSTRUCTFORGE_HEARTBEAT_SECONDS": "1",
        "HF_HUB_OFFLINE": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }
    port = free_port()
    with (tmp / "api.log").open("wb") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "serve", "--port", str(port), "--no-access-log"],
            env=env,
            cwd=REPO_ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            wait_ready(f"http://127.0.0.1:{port}", server)
            yield Site(f"http://127.0.0.1:{port}", seeded, env, keys)
        finally:
            server.send_signal(signal.SIGTERM)
            server.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    with playwright_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM))
        try:
            yield chromium
        finally:
            chromium.close()


def page_as(browser: object, site: Site, scope: str) -> object:
    """A new laptop-sized browser page, logged in with the key of `scope`."""
    context = browser.new_context(viewport={"width": 1366, "height": 860})  # type: ignore[attr-defined]
    page = context.new_page()
    page.goto(f"{site.url}/ui/runs")
    assert page.url.startswith(f"{site.url}/ui/login")
    page.get_by_label("API key").fill(site.keys[scope])
    page.get_by_role("button", name="Log in").click()
    page.wait_for_url(f"{site.url}/ui/runs")
    return page


def shot(page: object, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def _figure(page: object, selector: str) -> int:
    return int(re.sub(r"\D.*", "", page.inner_text(selector).strip()) or 0)  # type: ignore[attr-defined]


@pytest.mark.model
@pytest.mark.timeout(1200)
@pytest.mark.usefixtures("prepared_int8_encoder")  # the demo run's semantic rule's encoder
def test_live_run_progress_then_pause_and_resume(
    site: Site, browser: object, embedded_model_dir: Path
) -> None:
    # The demo's run, smaller: two prompts per iteration, shorter decodes.
    live_config = demo_run_config("transformers")
    live_config.update(target_tasks=40, max_iterations=20)
    live_config["bootstrap"]["prompts_per_iteration"] = 1
    live_config["bootstrap"]["instruction_sampling"]["max_tokens"] = 48
    live_config["bootstrap"]["instance_sampling"]["max_tokens"] = 32
    headers = {"Authorization": f"Bearer {site.keys['write']}"}
    created = httpx.post(f"{site.url}/v1/runs", json=live_config, headers=headers, timeout=30)
    assert created.status_code == 202, created.text
    run_id = created.json()["id"]
    log = Path(site.env["INSTRUCTFORGE_DATA_DIR"]) / "worker.log"
    with log.open("wb") as output:
        worker = subprocess.Popen(
            [sys.executable, "-m", "service.cli", "worker"],
            env=site.env,
            cwd=REPO_ROOT,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
    try:
        page = page_as(browser, site, "write")
        page.goto(f"{site.url}/ui/runs/{run_id}")
        assert page.inner_text("#run-status").strip() == "queued"
        before = _figure(page, "#run-generated")
        report_before = page.inner_text("#report-yield")

        def wait_for(done: Callable[[], bool], what: str, seconds: float) -> None:
            # The page polls (htmx): no reload here, only the live section swapping itself.
            deadline = time.monotonic() + seconds
            while not done():
                tail = log.read_text(errors="replace")[-2000:]
                assert time.monotonic() < deadline, f"{what} within {seconds} s; worker: {tail}"
                assert worker.poll() is None, f"the worker died: {tail}"
                page.wait_for_timeout(1000)

        wait_for(lambda: "running" in page.inner_text("#run-status"), "claimed", 120)
        beat = page.inner_text("#run-heartbeat")
        wait_for(lambda: page.inner_text("#run-heartbeat") != beat, "a heartbeat", 60)
        wait_for(lambda: _figure(page, "#run-generated") > before, "generated", 780)
        # The report section polls too (every 5 s): the committed iteration shows there.
        wait_for(
            lambda: page.inner_text("#report-yield") != report_before, "the report's update", 15
        )
        shot(page, "run-live")
        page.goto(f"{site.url}/ui/runs")
        shot(page, "runs")

        page.goto(f"{site.url}/ui/runs/{run_id}")
        page.get_by_role("button", name="Pause").click()
        page.wait_for_url(f"{site.url}/ui/runs/{run_id}")
        assert page.inner_text("#run-status").strip() == "paused"
        assert page.get_by_role("button", name="Pause").count() == 0
        page.get_by_role("button", name="Resume").click()
        page.wait_for_url(f"{site.url}/ui/runs/{run_id}")
        assert page.inner_text("#run-status").strip() in ("queued", "running")
        events = page.inner_text("ol.events")
        assert "paused -> queued" in events and "-> paused" in events
        page.get_by_role("button", name="Cancel").click()
        page.wait_for_url(f"{site.url}/ui/runs/{run_id}")
        assert page.inner_text("#run-status").strip() == "cancelled"
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            worker.wait(timeout=120)
        except subprocess.TimeoutExpired:
            worker.kill()


def test_filter_by_rule_and_open_the_nearest_duplicate(site: Site, browser: object) -> None:
    page = page_as(browser, site, "read")
    page.get_by_role("link", name="Tasks").click()
    page.get_by_label("Rejection rule").fill("near_duplicate")
    page.get_by_label("Run").fill(str(site.seeded.run_id))
    page.get_by_label("Rejection rule").press("Enter")
    page.wait_for_url(re.compile(r".*reject_rule=near_duplicate.*"))
    rules = page.locator("table.tasks tbody tr td:nth-child(3)").all_inner_texts()
    assert rules and set(rules) == {"near_duplicate"}
    shot(page, "tasks-near-duplicate")
    page.get_by_role("link", name=f"#{site.seeded.duplicate_id}", exact=True).click()
    page.wait_for_url(f"{site.url}/ui/tasks/{site.seeded.duplicate_id}")
    assert page.inner_text("#reject-rule") == "near_duplicate"
    marked = page.locator("#nearest-text mark").all_inner_texts()
    assert marked[:3] == ["Write", "a", "short"]
    assert page.locator("#this-text mark").count() == len(marked)
    shot(page, "task-rejected")
    page.click("#nearest-link")
    page.wait_for_url(f"{site.url}/ui/tasks/{site.seeded.accepted_id}")
    assert page.get_by_text("Rendered prompt").first.is_visible()
    page.locator("a.parent").first.click()  # a few-shot parent: a seed task
    assert "seed" in page.inner_text("dl.kv")
    # Keyboard: the skip link is the first stop and leads to the content.
    page.keyboard.press("Tab")
    assert page.evaluate("document.activeElement.textContent") == "Skip to content"


def test_dataset_card_diff_and_training_curve(site: Site, browser: object) -> None:
    page = page_as(browser, site, "read")
    page.get_by_role("link", name="Datasets").click()
    page.get_by_role("link", name="demo").click()
    assert page.locator("article.markdown h1, article.markdown h2").count() > 0
    assert page.get_by_role("link", name=f"run #{site.seeded.run_id}").count() == 1
    shot(page, "dataset")
    page.get_by_label("Compare version").select_option("1")
    page.get_by_label("with version").select_option("2")
    page.get_by_role("button", name="Show diff").click()
    page.wait_for_url(re.compile(r".*/ui/datasets/demo/diff\?from=1&to=2"))
    summary = page.inner_text("#diff-summary")
    assert "+" in summary and "~" in summary
    assert page.locator(f'table.diff-add a[href="/ui/tasks/{site.seeded.accepted_id}"]').count()
    shot(page, "dataset-diff")
    page.get_by_role("link", name="Training").click()
    page.get_by_role("link", name=f"#{site.seeded.training_id}").click()
    page.wait_for_selector("figure.chart .uplot")  # uPlot drew the curve
    assert page.get_by_role("link", name="demo@2").count() == 1
    shot(page, "training-run")
    page.goto(f"{site.url}/ui/runs/{site.seeded.run_id}")
    page.wait_for_selector("figure.chart .uplot")
    shot(page, "run-report")


def test_a_read_key_cannot_act(site: Site, browser: object) -> None:
    # A run a read key would like to pause: queued, no worker in this test.
    headers = {"Authorization": f"Bearer {site.keys['write']}"}
    config = {"seed_set": "default", "target_tasks": 5}
    run_id = httpx.post(f"{site.url}/v1/runs", json=config, headers=headers).json()["id"]
    try:
        page = page_as(browser, site, "read")
        page.goto(f"{site.url}/ui/runs/{run_id}")
        assert page.get_by_role("button", name="Pause").count() == 0
        assert page.get_by_text("Read-only key").is_visible()
        csrf = page.locator('input[name="csrf"]').first.get_attribute("value")
        answer = page.request.post(f"{site.url}/ui/runs/{run_id}/pause", form={"csrf": csrf})
        assert answer.status == 403
        shot(page, "run-read-only")
        assert page.inner_text("#run-status").strip() == "queued"
    finally:
        httpx.post(f"{site.url}/v1/runs/{run_id}/cancel", headers=headers)

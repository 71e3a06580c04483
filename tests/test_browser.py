"""The dashboard in a real browser: `streamlit run` on a free port, every page opened in Chromium, on the
default demo's parts (`make demo`; conftest.demo runs them with fewer rounds), which must fill every page: no
"No ... in this sweep" notice anywhere.

Needs Debian's chromium at /usr/bin/chromium (`make test` installs it when run as root).
Screenshots of every page go to test-output/screenshots/.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest

from .conftest import ROOT, wait_until

pytestmark = pytest.mark.browser

CHROMIUM = "/usr/bin/chromium"
PAGES = {"overview": "", "throughput": "throughput", "steps": "steps", "operators": "operators",
         "telemetry": "telemetry", "memory": "memory", "load": "load", "gallery": "gallery", "papers": "papers",
         "sql": "sql"}
SHOTS = ROOT / "test-output" / "screenshots"
CHART_PAGES = ("overview", "throughput", "steps", "operators", "telemetry", "memory", "load")
# A notice that the sweep lacks what the page is for ("No profiled jobs in this sweep", "No stream-mode run").
MISSING = re.compile(r"\bNo\b[^.\n]*\bin this sweep|No stream-mode run")

if not Path(CHROMIUM).exists():
    pytest.skip("browser tests need Debian's chromium: `apt-get install chromium` as root "
                "(make test does it when run as root)", allow_module_level=True)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(demo):
    db_path, out = demo
    port = _free_port()
    # The warehouse given as the server's flag; the environment names another file, which the flag overrides.
    env = dict(os.environ, WAREHOUSE_DB=db_path + ".not-this-one", OUTPUT_DIR=out)
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true", "--", "--warehouse", db_path],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"

    def healthy():
        if proc.poll() is not None:
            pytest.fail(f"streamlit exited ({proc.returncode}) before it answered /_stcore/health")
        try:
            return urllib.request.urlopen(f"{url}/_stcore/health", timeout=5).read() == b"ok"
        except OSError:
            return False

    try:
        wait_until(healthy, every_s=0.2)
    except BaseException:
        proc.kill()
        raise
    yield url
    proc.terminate()
    proc.wait(timeout=20)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        yield b
        b.close()


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_in_a_real_browser(name, server, browser, demo):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        page.goto(f"{server}/{PAGES[name]}")
        page.wait_for_selector('[data-testid="stApp"]', timeout=30000)
        page.wait_for_selector('[data-testid="stMainBlockContainer"] h1', timeout=60000)
        if name in CHART_PAGES:  # the title comes first; wait for what the page is for, drawn
            page.wait_for_selector('[data-testid="stVegaLiteChart"] :is(canvas, svg)', timeout=60000)
        # The app has finished its run when its root says so (a progress mark, not a pause).
        page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=60000)
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)
        assert page.locator('[data-testid="stException"]').count() == 0
        assert f"Warehouse: {demo[0]}" in page.locator('[data-testid="stSidebar"]').inner_text()  # the flag's file
        # A local analysis tool, not an app to publish (.streamlit/config.toml: client.toolbarMode).
        assert page.locator('[data-testid="stAppDeployButton"]').count() == 0, "the toolbar offers Deploy"
        assert page.get_by_role("button", name="Deploy").count() == 0, "the toolbar offers Deploy"
        assert page.locator('[data-testid="stMainBlockContainer"] h1').first.inner_text().strip()
        if name in CHART_PAGES:
            assert page.locator('[data-testid="stVegaLiteChart"]').count() > 0
        text = page.locator('[data-testid="stMainBlockContainer"]').inner_text()
        assert not MISSING.search(text), f"the demo sweep leaves the {name} page without data: {MISSING.search(text)[0]}"
        if name == "overview":  # the whole story: the effects, and whether batching changed the pictures
            assert "Did batching change the pictures?" in text and "Stream Batch" in text
            assert "Did batching change what the pictures show?" in text
            assert "Classifier-free guidance" in text and "Resolution" in text
        if name == "load":  # the demo's HTTP part: our server measured by the client, its own setup
            assert "over HTTP at 127.0.0.1:" in text
        if name == "throughput":  # the demo's replica part: the two ways to do more at once, side by side
            assert "Bigger batch or more workers" in text and "2 images at once" in text
            # its steps part: fewer steps against a bigger batch, by what the pictures show
            assert "Fewer steps or a bigger batch" in text and "pictures show the asked colours" in text
        if name == "operators":  # the demo's transformer sweep beside its profiled UNet, both under two kernels
            assert "UNet against transformer" in text and "**" not in text
            assert "tiny (UNet, 128x128" in text and "pixart-tiny (transformer, 128x128" in text
            assert "reports convolution at up to 44%" in text and "math time over sdpa time" in text
            assert "Attention by sequence length" in text and "64 tokens of query: one length throughout" in text
            assert page.locator('[data-testid="stVegaLiteChart"]').count() >= 5
        if name == "gallery":  # the inpainting part's pictures as given and filled; the same seed without CFG and with
            assert "given" in text and "filled" in text
            assert "The same seed without and with guidance" in text and "CFG off" in text
    finally:
        page.close()

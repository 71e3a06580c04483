"""Cold page renders in a real browser (make bench): every dashboard page, on the demo's warehouse and on
that warehouse with a synthetic sweep of 10 million step records added.

Cold: a fresh `streamlit run` process for each render (started and answering /_stcore/health before the
clock starts), so no query or fit of the page is cached. Each page is timed two ways:
- from the sidebar, where the targets apply (every page's median <= 2 s on the demo's warehouse, <= 3 s at
  10 million step records): a person has the dashboard open on the Papers page (the Gallery page for the
  Papers page itself) and clicks the page in the sidebar; timed from the click until the page's own title
  and every chart are drawn and Streamlit no longer runs the script;
- on a fresh server, opened in a new tab: that adds the server's first script run (the imports of pandas,
  duckdb, the dashboard) and the browser's loading of Streamlit's scripts into an empty cache.
Beside them, what a new tab costs before any page's work: the Papers page (one query, no chart) opened in a
new tab on a running server. Chromium is Debian's (/usr/bin/chromium).

The demo's warehouse is built by running the demo (`generator.demo.run_demo`, a few minutes on 2 cores), or
given with --demo-db (and --images); the large one is a copy of it with benchmarks.synthetic.add_volume's
sweep added in SQL (its build time is printed).
"""

from __future__ import annotations

import argparse
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from benchmarks.results import Results
from benchmarks.synthetic import add_volume
from collector.ingest import CollectorConfig, ingest_pending
from generator.demo import run_demo

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
# Page -> its path under the server (the Overview is the default page).
PAGES = {"overview": "", "throughput": "throughput", "steps": "steps", "operators": "operators",
         "telemetry": "telemetry", "memory": "memory", "load": "load", "gallery": "gallery", "papers": "papers",
         "sql": "sql"}
TARGETS = {"demo": 2.0, "10M": 3.0}
# Every chart on the page drawn (Vega draws after the script has sent it).
CHARTS_DRAWN = """() => [...document.querySelectorAll('[data-testid="stVegaLiteChart"]')]
                         .every(c => c.querySelector('canvas, svg'))"""
# The page's title is no longer the one it had before the click.
NEW_TITLE = """(before) => { const h = document.querySelector('[data-testid="stMainBlockContainer"] h1');
                             return h !== null && h.innerText !== before; }"""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start_server(db_path: str, images: str) -> tuple[subprocess.Popen, str]:
    """A fresh `streamlit run` of the dashboard, answering its health check."""
    port = _free_port()
    env = dict(os.environ, WAREHOUSE_DB=db_path, OUTPUT_DIR=images, PYTHONPATH=str(ROOT))
    proc = subprocess.Popen(
        [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard.py"), "--server.port", str(port),
         "--server.address", "127.0.0.1", "--server.headless", "true",
         "--browser.gatherUsageStats", "false"],
        cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited ({proc.returncode}) before it answered /_stcore/health")
        try:
            if urllib.request.urlopen(f"{url}/_stcore/health", timeout=5).read() == b"ok":
                return proc, url
        except OSError:
            time.sleep(0.1)  # polling the server's health, not a pause measured in any figure
    proc.kill()
    raise RuntimeError("streamlit did not answer /_stcore/health within 120 s")


def _wait_drawn(page) -> None:
    """Until the script has finished and every chart of the page is drawn."""
    page.wait_for_selector('[data-testid="stApp"][data-test-script-state="notRunning"]', timeout=120_000)
    page.wait_for_function(CHARTS_DRAWN, timeout=120_000)
    if page.locator('[data-testid="stException"]').count():
        raise RuntimeError(f"page {page.url} raised: "
                           f"{page.locator('[data-testid=stException]').first.inner_text()[:300]}")


def _title(page) -> str:
    page.wait_for_selector('[data-testid="stMainBlockContainer"] h1', timeout=120_000)
    return page.locator('[data-testid="stMainBlockContainer"] h1').first.inner_text()


def _new_tab(browser, url: str, path: str) -> float:
    """Seconds from navigation in a new browser context (empty cache) to the page drawn."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        t0 = time.perf_counter()
        page.goto(f"{url}/{path}")
        _title(page)
        _wait_drawn(page)
        return time.perf_counter() - t0
    finally:
        context.close()


def _from_sidebar(browser, url: str, path: str) -> float:
    """Seconds from a click on the page's sidebar link, with the dashboard open on another page, to the page's
    own title and charts drawn."""
    start = "gallery" if path == PAGES["papers"] else "papers"
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    try:
        page = context.new_page()
        page.goto(f"{url}/{PAGES[start]}")
        before = _title(page)
        _wait_drawn(page)
        link = page.locator(f'[data-testid="stSidebarNav"] a[href$="/{path}"]').first
        t0 = time.perf_counter()
        link.click()
        page.wait_for_function(NEW_TITLE, arg=before, timeout=120_000)
        _wait_drawn(page)
        return time.perf_counter() - t0
    finally:
        context.close()


def cold_render(browser, db_path: str, images: str, path: str, from_sidebar: bool) -> float:
    """A page's first render on a fresh server (its queries and fits cached nowhere): clicked in the sidebar of
    a dashboard open on another page, or opened in a new tab as the server's first page."""
    proc, url = _start_server(db_path, images)
    try:
        return _from_sidebar(browser, url, path) if from_sidebar else _new_tab(browser, url, path)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def new_tab_cost(browser, db_path: str, images: str) -> float:
    """The Papers page opened in a new tab on a running server that has rendered it once: what a new tab costs
    (Streamlit's scripts into an empty cache, the session, one query) before a page's own work."""
    proc, url = _start_server(db_path, images)
    try:
        _new_tab(browser, url, PAGES["papers"])
        return _new_tab(browser, url, PAGES["papers"])
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def demo_warehouse(folder: Path) -> tuple[str, str, float]:
    """The demo's sweep, run and ingested into folder: (db path, image folder, seconds)."""
    t0 = time.perf_counter()
    run_demo(progress=False, spool=str(folder / "spool"), out=str(folder / "images"))
    ingest_pending(CollectorConfig(spool=str(folder / "spool"), db=str(folder / "demo.duckdb")))
    return str(folder / "demo.duckdb"), str(folder / "images"), time.perf_counter() - t0


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--demo-db", help="the demo's warehouse (default: run the demo first)")
    parser.add_argument("--images", default="", help="the demo's image folder (with --demo-db)")
    parser.add_argument("--steps-total", type=int, default=10_000_000,
                        help="step records of the large warehouse's synthetic sweep (default 10,000,000)")
    parser.add_argument("--runs", type=int, default=3, help="cold renders of each page on each warehouse (default 3)")
    parser.add_argument("--pages", default=",".join(PAGES), help="pages to render, comma-separated (default all)")
    args = parser.parse_args(argv)
    pages = [p for p in args.pages.split(",") if p]
    unknown = [p for p in pages if p not in PAGES]
    if unknown:
        parser.error(f"unknown page(s) {', '.join(unknown)}; allowed: {', '.join(PAGES)}")
    if not Path(CHROMIUM).exists():
        sys.exit(f"bench_pages needs Debian's chromium at {CHROMIUM}: apt-get install chromium")
    from playwright.sync_api import sync_playwright

    results = Results()
    with tempfile.TemporaryDirectory(prefix="bench-pages-") as tmp:
        # 1. The two warehouses: the demo's, and a copy with a synthetic sweep of --steps-total step records.
        if args.demo_db:
            demo_db, images = args.demo_db, args.images
        else:
            demo_db, images, took = demo_warehouse(Path(tmp))
            print(f"\nthe demo, run and ingested in {took:.0f} s")
        large = str(Path(tmp) / "large.duckdb")
        shutil.copyfile(demo_db, large)
        t0 = time.perf_counter()
        counts = add_volume(large, runs=max(1, args.steps_total // 100_000), jobs_per_run=500, steps_per_job=200,
                            prefix="bench-volume")
        took = time.perf_counter() - t0
        size_mb = Path(large).stat().st_size / 1e6
        print(f"large warehouse: the demo's + {counts['step']:,} synthetic step records "
              f"({counts['job']:,} jobs), added in {took:.0f} s, {size_mb:,.0f} MB")
        results.add("synthetic 10M warehouse build", took, "s")
        warehouses = {"demo": demo_db, "10M": large}
        # 2. Cold renders, interleaved: each round renders every page on each warehouse in turn, both ways.
        kinds = ("from the sidebar", "fresh server, new tab")
        times = {(k, w, p): [] for k in kinds for w in warehouses for p in pages}
        tab = []
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM,
                                         args=["--headless", "--no-sandbox", "--disable-gpu"])
            try:
                for _ in range(args.runs):
                    tab.append(new_tab_cost(browser, demo_db, images))
                    for page in pages:
                        for name, db_path in warehouses.items():
                            for kind in kinds:
                                took = cold_render(browser, db_path, images, PAGES[page], kind == kinds[0])
                                times[kind, name, page].append(took)
                                print(f"  {page} on the {name} warehouse, {kind}: {took:.2f} s", flush=True)
            finally:
                browser.close()
    # 3. Medians: the page clicked in the sidebar against the targets; on a fresh server in a new tab beside it.
    print(f"\nFirst render of each page in Chromium ({args.runs} runs each, median s; targets from the sidebar: "
          f"demo <= {TARGETS['demo']:g} s, 10M <= {TARGETS['10M']:g} s)")
    print(f"{'page':<12} {'demo':>8} {'10M steps':>10} {'demo, fresh':>12} {'10M, fresh':>11}")
    for page in pages:
        medians = {(k, w): statistics.median(times[k, w, page]) for k in kinds for w in warehouses}
        print(f"{page:<12} {medians[kinds[0], 'demo']:>8.2f} {medians[kinds[0], '10M']:>10.2f} "
              f"{medians[kinds[1], 'demo']:>12.2f} {medians[kinds[1], '10M']:>11.2f}")
        for w in warehouses:
            sidebar, fresh = medians[kinds[0], w], medians[kinds[1], w]
            results.add(f"cold render {page} ({w} warehouse)", sidebar, "s", f"<= {TARGETS[w]:g}",
                        sidebar <= TARGETS[w])
            results.add(f"cold render {page} ({w} warehouse, fresh server, new tab)", fresh, "s")
    print(f"a new tab on a running server, before any page's own work (the Papers page): "
          f"{statistics.median(tab):.2f} s median")
    results.add("new tab on a running server (Papers page)", statistics.median(tab), "s")
    results.save()


if __name__ == "__main__":
    main()

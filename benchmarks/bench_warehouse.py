"""Warehouse benchmarks (make bench): ingest rate and the dashboard's query times.

1. Ingest: a synthetic spool of >= 1M step records (real spool files, written by the
   generator's writer), ingested by the collector into a new DuckDB file.
   Target: >= 500k step records per second on a 2-core machine.
2. The Overview's and Throughput's queries on that warehouse, each opening its own
   read-only connection as the dashboard does. Target: median <= 200 ms.
3. Every dashboard page rendered on that warehouse (Streamlit's AppTest runs the page
   script as the server does; the query cache is cleared first). Target: median <= 1 s.
   (bench_pages times each page cold in a real browser, on the demo's warehouse and at 10M step records.)
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from benchmarks.results import Results
from benchmarks.synthetic import write_spool
from collector.ingest import CollectorConfig, ingest_pending
from warehouse.queries import Warehouse


PAGES = ("overview", "throughput", "steps", "operators", "telemetry", "memory", "load", "gallery", "papers", "sql")


def page_times(db_path: str, runs: int) -> dict[str, list[float]]:
    """Seconds for each page's script run, as a server runs it, with no cached query results."""
    import os

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    import logging

    from streamlit.logger import set_log_level

    set_log_level(logging.ERROR)  # bare-mode notices, one per run
    os.environ["WAREHOUSE_DB"] = db_path
    app = str(Path(__file__).resolve().parents[1] / "dashboard.py")
    out = {}
    for page in PAGES:
        out[page] = []
        for _ in range(runs):
            st.cache_data.clear()
            at = AppTest.from_file(app, default_timeout=120)
            at.run()
            st.cache_data.clear()
            t0 = time.perf_counter()
            at.switch_page(f"pages/{page}.py").run()
            out[page].append(time.perf_counter() - t0)
            if at.exception:
                raise RuntimeError(f"page {page} failed: {at.exception[0].value}")
    return out


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=10, help="runs in the synthetic spool (default 10)")
    parser.add_argument("--jobs", type=int, default=500, help="job files per run (default 500)")
    parser.add_argument("--steps", type=int, default=200, help="step records per job (default 200)")
    parser.add_argument("--repeats", type=int, default=20, help="runs of each query (default 20)")
    parser.add_argument("--page-runs", type=int, default=5, help="runs of each page (default 5)")
    args = parser.parse_args(argv)
    results = Results()

    with tempfile.TemporaryDirectory(prefix="bench-warehouse-") as tmp:
        spool, db_path = Path(tmp) / "spool", str(Path(tmp) / "warehouse.duckdb")
        t0 = time.perf_counter()
        counts = write_spool(spool, args.runs, args.jobs, args.steps, prefix="bench")
        written = time.perf_counter() - t0
        files = sum(1 for _ in spool.rglob("*.jsonl"))
        print(f"\n1. Ingest: {files} spool files, {counts['step']:,} step records, "
              f"{sum(counts.values()) - counts['run'] + files:,} records in all (written in {written:.1f} s)")
        t0 = time.perf_counter()
        report = ingest_pending(CollectorConfig(spool=str(spool), db=db_path))
        took = time.perf_counter() - t0
        print(f"   ingested {report.files} files in {took:.2f} s: {counts['step'] / took:,.0f} step records/s, "
              f"{report.records / took:,.0f} records/s   target >= 500,000 step records/s")
        rate = counts["step"] / took
        results.add("ingest step records per s", rate, "records/s", ">= 500000", rate >= 500_000)

        sweep = Warehouse(db_path).sweeps().sweep_id.iloc[0]
        run_ids = list(Warehouse(db_path).runs(sweep).run_id)
        cases = {
            "Overview: sweeps": lambda: Warehouse(db_path).sweeps(),
            "Overview: runs of a sweep": lambda: Warehouse(db_path).runs(sweep),
            "Throughput: throughput_by_batch": lambda: Warehouse(db_path).throughput(run_ids),
        }
        print(f"\n2. Query times on that warehouse ({args.repeats} runs each, read-only connection per query)")
        print(f"{'query':<34} {'median ms':>10} {'max ms':>8}   target median <= 200 ms")
        for name, fn in cases.items():
            times = []
            for _ in range(args.repeats):
                t0 = time.perf_counter()
                fn()
                times.append((time.perf_counter() - t0) * 1000)
            median = statistics.median(times)
            print(f"{name:<34} {median:>10.1f} {max(times):>8.1f}")
            results.add(f"query {name}", median, "ms", "<= 200", median <= 200)

        print(f"\n3. Page render (Streamlit AppTest, query cache cleared each time, {args.page_runs} runs each)")
        print(f"{'page':<12} {'median s':>9} {'max s':>7}   target median <= 1 s")
        for page, times in page_times(db_path, args.page_runs).items():
            median = statistics.median(times)
            print(f"{page:<12} {median:>9.2f} {max(times):>7.2f}")
            results.add(f"page render {page}", median, "s", "<= 1", median <= 1.0)
    results.save()


if __name__ == "__main__":
    main()

"""Fixtures build real artifacts: a real sweep on the embedded model, real spool files,
real DuckDB warehouses in tmp_path."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from collector.ingest import CollectorConfig, ingest_pending
from generator.demo import run_demo
from generator.run import run_sweep
from generator.sweep.config import SweepConfig

ROOT = Path(__file__).resolve().parents[1]  # the checkout: subprocesses run from here

# The small sweep every end-to-end test shares: 2 batch sizes, 2 steps, one size, exactly one warm-up
# per batch size (--warmup-max 1: no warm-up until settled), two rounds.
SMALL = dict(batch_sizes=(1, 2), resolutions=(64,), steps=2, repeats=2, warmup=1, warmup_max=1)


@pytest.fixture(scope="session")
def small_sweep(tmp_path_factory):
    """A finished sweep: (config, spool files written)."""
    base = tmp_path_factory.mktemp("sweep")
    cfg = SweepConfig(**SMALL, spool=str(base / "spool"), out=str(base / "images"))
    return cfg, run_sweep(cfg, progress=False)


@pytest.fixture
def spool(tmp_path, small_sweep) -> Path:
    """A private copy of the small sweep's spool folder."""
    cfg, _ = small_sweep
    target = tmp_path / "spool"
    shutil.copytree(cfg.spool, target)
    return target


@pytest.fixture
def collector_cfg(tmp_path, spool) -> CollectorConfig:
    return CollectorConfig(spool=str(spool), db=str(tmp_path / "warehouse.duckdb"), busy_wait=5.0)


@pytest.fixture
def warehouse(collector_cfg) -> str:
    """A warehouse holding the small sweep."""
    ingest_pending(collector_cfg)
    return collector_cfg.db


@pytest.fixture(scope="session")
def rich(tmp_path_factory):
    """A sweep with two modes, three batch sizes and profiled jobs, ingested: (db path, image folder)."""
    base = tmp_path_factory.mktemp("rich")
    cfg = SweepConfig(batch_sizes=(1, 2, 4), resolutions=(64,), mode=("static", "stream"), steps=3, repeats=2,
                      warmup=0, profile_ops=True, spool=str(base / "spool"), out=str(base / "images"))
    run_sweep(cfg, progress=False)
    ingest_pending(CollectorConfig(spool=cfg.spool, db=str(base / "w.duckdb")))
    return str(base / "w.duckdb"), cfg.out


@pytest.fixture(scope="session")
def demo(tmp_path_factory):
    """The default demo (`make demo`'s sweep: generator/demo.py), ingested: (db path, image folder)."""
    base = tmp_path_factory.mktemp("demo")
    run_demo(progress=False, spool=str(base / "spool"), out=str(base / "images"))
    ingest_pending(CollectorConfig(spool=str(base / "spool"), db=str(base / "w.duckdb")))
    return str(base / "w.duckdb"), str(base / "images")


@pytest.fixture(scope="session")
def ray_local():
    """A local Ray instance with 2 CPUs for the session's Ray tests (started on first use, stopped at the end);
    `generator.cluster.reach.connect` uses it as it is."""
    import ray

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False)
    yield ray
    ray.shutdown()


def sql_rows(db_path: str, sql: str, params=None) -> list[tuple]:
    """Rows of a query on a warehouse file, through a short read-only connection."""
    import duckdb

    con = duckdb.connect(db_path, read_only=True)
    try:
        return con.execute(sql, params or []).fetchall()
    finally:
        con.close()


def wait_until(condition, limit_s: float = 300.0, every_s: float = 0.02) -> None:
    """Poll until `condition()` holds; the limit only turns a hang into a failure, it measures nothing."""
    deadline = time.monotonic() + limit_s
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"still not true after {limit_s:g} s: {condition}")
        time.sleep(every_s)


@contextlib.contextmanager
def holding(db_path: str, read_only: bool):
    """Another process holds the warehouse open until the test calls the yielded release()."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == '1'); "
         "print('holding', flush=True); sys.stdin.readline(); c.close()", db_path, "1" if read_only else "0"],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "holding"

    def release():
        if holder.poll() is None:
            holder.stdin.write("release\n")
            holder.stdin.close()
            holder.wait(timeout=60)

    try:
        yield release
    finally:
        release()

"""Fixtures build real artifacts: a real sweep on the embedded model, real spool files,
real DuckDB warehouses in tmp_path."""

from __future__ import annotations

import contextlib
import os
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

# `make test` and `make quick` run the suite on pytest-xdist workers (`--dist loadfile`), a test file to a worker at a
# time (its module and session fixtures are built once, on one worker), except that the demo's browser tests and the
# Ray tests go to one worker together (ONE_GROUP): each starts a local Ray instance, and one worker running them one
# after the other never has two Ray instances share the cores. The files start in the order below, the longest
# first, so that no long file starts last while the other workers sit idle.
# Seconds on two cores, three workers (make test): browser 303 (most of it the demo sweep), spool fuzz 190, SQL
# sandbox 76, generator 46, Ray 42, dashboard 33, collector 31, load on Ray 26, presets 18; every other file under 15.
LONGEST_FIRST = ("test_browser.py", "test_ray.py", "test_load_ray.py", "test_spool_fuzz.py", "test_sql_sandbox.py",
                 "test_generator.py", "test_dashboard.py", "test_collector.py", "test_presets.py",
                 "test_collector_faults.py", "test_replicas_warehouse.py", "test_analysis.py", "test_explain.py")
ONE_GROUP = {"test_browser.py": "demo-and-ray", "test_ray.py": "demo-and-ray", "test_load_ray.py": "demo-and-ray"}


def pytest_collection_modifyitems(config, items):
    """The longest files first (LONGEST_FIRST), the rest in their usual order; tests keep their order in a file."""
    rank = {name: n for n, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))


@pytest.hookimpl(optionalhook=True)  # a pytest-xdist hook: unknown without it
def pytest_xdist_make_scheduler(config, log):
    """`--dist loadfile` with ONE_GROUP's files as one unit. (xdist's own `--dist loadgroup` does not group under
    pytest 9: it renames the items' `_nodeid`, which pytest 9 no longer reads, so every test goes its own way.)"""
    if config.getvalue("dist") != "loadfile":
        return None
    from xdist.scheduler import LoadScopeScheduling

    class FilesAndOneGroup(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            file = nodeid.split("::", 1)[0]
            return ONE_GROUP.get(file.rsplit("/", 1)[-1], file)

    return FilesAndOneGroup(config, log)


def pytest_configure(config):
    """On an xdist worker, torch gets its share of the cores: workers x threads at most the cores, not each worker
    a thread per core (two workers on two cores, two threads each, wait on each other)."""
    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT") or 1)
    if workers > 1:
        import torch

        torch.set_num_threads(max(1, (os.cpu_count() or 1) // workers))


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


# The demo's measured rounds in the suite: at most 6 a part (the fewest with a 95% interval of a median) where
# `make demo` runs up to 40 in its main comparison and 10 in the others, after one warm-up job (the demo: up to
# 2). The pages need every part of the demo, not its precision; the rounds it would run are the demo's own test
# (test_demo.py).
DEMO_ROUNDS = dict(max_rounds=6, warmup_max=1)
# And its load part's levels shorter: at least 8 requests and 1 s a level where the demo asks 16 and 2 s.
DEMO_LOAD = dict(min_requests=8, min_seconds=1.0)


@pytest.fixture(scope="session")
def demo(tmp_path_factory, ray_local):
    """The default demo (`make demo`'s parts and settings: generator/demo.py) with DEMO_ROUNDS' fewer rounds
    a part and DEMO_LOAD's shorter load levels, ingested: (db path, image folder). Its Ray part runs on
    the session's local Ray instance (the Ray tests' too, on the same worker: ONE_GROUP), as on any Ray already
    initialised, instead of starting one."""
    base = tmp_path_factory.mktemp("demo")
    run_demo(progress=False, load=DEMO_LOAD, **DEMO_ROUNDS, spool=str(base / "spool"), out=str(base / "images"))
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

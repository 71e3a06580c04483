"""Faults around the collector: two collectors at once, files gone mid-pass, a damaged warehouse."""

from __future__ import annotations

import re
import subprocess
import sys

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from benchmarks.synthetic import write_spool
from collector.ingest import CollectorConfig, ingest_pending, pending_files

from .conftest import ROOT, wait_until

PAGES = ["overview", "throughput", "steps", "operators", "telemetry", "gallery", "papers", "sql"]


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "collector", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


def _snapshot(folder) -> dict:
    """Every file under a folder with its bytes and mtime: what "touches no file" is checked against."""
    return {p.relative_to(folder).as_posix(): (p.read_bytes(), p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


def _one(db_path: str, sql: str):
    con = duckdb.connect(db_path, read_only=True)
    try:
        return con.execute(sql).fetchone()
    finally:
        con.close()


@pytest.mark.slow
def test_two_collectors_on_one_spool_ingest_every_file_once(tmp_path):
    spool, db_path, log = tmp_path / "spool", tmp_path / "w.duckdb", tmp_path / "watch.log"
    common = ["--spool", str(spool), "--db", str(db_path), "--batch-files", "20", "--busy-wait", "600"]
    spool.mkdir()
    with open(log, "w") as err:
        watcher = subprocess.Popen([sys.executable, "-m", "collector", "watch", *common, "--interval", "0.1"],
                                   cwd=ROOT, stdout=subprocess.DEVNULL, stderr=err, text=True)
    try:
        # Files arrive in waves; after each, a one-shot ingest runs beside the watcher.
        total, ingesters = 0, []
        for wave in range(5):
            total += write_spool(spool, runs=1, jobs_per_run=60, steps_per_job=5, prefix=f"w{wave}")["job"]
            ingesters.append(subprocess.Popen([sys.executable, "-m", "collector", "ingest", *common], cwd=ROOT,
                                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
        outputs = [p.communicate(timeout=600) for p in ingesters]
        assert all(p.returncode == 0 for p in ingesters), [e for _, e in outputs]
        wait_until(lambda: not pending_files(spool))
    finally:
        watcher.terminate()
        watcher.wait(timeout=60)
    # Each file went in through exactly one of the six collectors.
    by_ingest = [int(re.search(r"ingested (\d+) files", out).group(1)) for out, _ in outputs]
    by_watch = [int(n) for n in re.findall(r"ingested (\d+) files", log.read_text())]
    assert sum(by_ingest) + sum(by_watch) == total, (by_ingest, by_watch)
    files, jobs, distinct = _one(str(db_path), "SELECT (SELECT count(*) FROM ingested_files), count(*), "
                                               "count(DISTINCT job_id) FROM jobs")
    assert files == jobs == distinct == total
    assert len(list((spool / "done").rglob("*.jsonl"))) == total and not (spool / "quarantine").exists()


def test_files_taken_between_listing_and_reading_are_skipped(tmp_path):
    spool = tmp_path / "spool"
    total = write_spool(spool, runs=2, jobs_per_run=10, steps_per_job=3)["job"]
    cfg = CollectorConfig(spool=str(spool), db=str(tmp_path / "w.duckdb"), batch_files=4)
    listed = pending_files(spool)
    listed[3].unlink()  # removed after the listing
    ingest_pending(cfg, files=[listed[7], listed[12]])  # another collector took these two meanwhile
    report = ingest_pending(cfg, files=listed)
    assert report.gone == 1 and report.files == total - 3 and report.quarantined == []
    assert _one(cfg.db, "SELECT count(*) FROM ingested_files")[0] == total - 1
    assert _one(cfg.db, "SELECT count(*), count(DISTINCT job_id) FROM jobs") == (total - 1, total - 1)
    assert len(list((spool / "done").rglob("*.jsonl"))) == total - 1


def _damaged(kind: str, tmp_path) -> str:
    """A warehouse file that is not a readable DuckDB database."""
    path = tmp_path / "w.duckdb"
    if kind == "garbage":
        path.write_bytes(b"this is not a database\n" * 4000)
    else:  # a real warehouse, cut short
        other = tmp_path / "other"
        write_spool(other, runs=1, jobs_per_run=50, steps_per_job=20)
        ingest_pending(CollectorConfig(spool=str(other), db=str(path)))
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    return str(path)


@pytest.mark.parametrize("kind", ["garbage", "truncated"])
@pytest.mark.parametrize("command", ["ingest", "watch"])
def test_a_damaged_warehouse_stops_the_collector_in_one_line_and_touches_no_spool_file(kind, command, tmp_path):
    db_path = _damaged(kind, tmp_path)
    spool = tmp_path / "spool"
    write_spool(spool, runs=1, jobs_per_run=5, steps_per_job=2)
    before = {k: v for k, v in _snapshot(spool).items() if k.endswith(".jsonl")}
    out = _run(command, "--spool", str(spool), "--db", db_path, "--interval", "0.1")
    assert out.returncode == 1
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "Traceback" not in out.stderr, out.stderr
    assert f"warehouse '{db_path}' is damaged or not a DuckDB file" in errors[0]
    assert {k: v for k, v in _snapshot(spool).items() if k.endswith(".jsonl")} == before
    assert not (spool / "done").exists() and not (spool / "quarantine").exists()
    status = _run("status", "--spool", str(spool), "--db", db_path)
    assert status.returncode == 0 and "damaged" in status.stdout


@pytest.mark.parametrize("page", PAGES)
def test_the_dashboard_says_the_warehouse_is_damaged_instead_of_a_traceback(page, tmp_path, monkeypatch):
    db_path = _damaged("garbage", tmp_path)
    monkeypatch.setenv("WAREHOUSE_DB", db_path)
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=120).run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert any("is damaged or not a DuckDB file" in e.value for e in at.error), [e.value for e in at.error]

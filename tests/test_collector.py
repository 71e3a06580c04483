"""Exactly once under faults, quarantine with reasons, migrations, status: real files, real DuckDB."""

from __future__ import annotations

import dataclasses
import json
import os
import queue
import random
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import duckdb
import pytest

from benchmarks.synthetic import write_spool
from collector.__main__ import main as collector_main, watch
from collector.ingest import CollectorConfig, ingest_pending, pending_files, prune_done
from collector.status import format_status, status
from spool import TABLES
from warehouse import db
from warehouse.queries import Warehouse

from .conftest import ROOT, holding, wait_until


def _count(path: str, table: str) -> int:
    con = duckdb.connect(path, read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def _counts(path: str) -> dict:
    return {t: _count(path, t) for t in (*TABLES.values(), "ingested_files")}


def test_ingesting_twice_adds_nothing_and_files_move_to_done(collector_cfg, spool):
    files = sorted(p.relative_to(spool) for p in spool.rglob("*.jsonl"))
    first = ingest_pending(collector_cfg)
    counts = _counts(collector_cfg.db)
    assert first.files == len(files) == counts["ingested_files"]
    assert sorted(p.relative_to(spool / "done") for p in (spool / "done").rglob("*.jsonl")) == files
    assert ingest_pending(collector_cfg).files == 0
    # A crash between commit and move leaves an ingested file in the spool: it is only moved.
    again = spool / files[0]
    again.parent.mkdir(exist_ok=True)
    again.write_bytes((spool / "done" / files[0]).read_bytes())
    report = ingest_pending(collector_cfg)
    assert report.files == 0 and report.skipped == 1 and not again.exists()
    assert _counts(collector_cfg.db) == counts


def test_the_same_content_under_another_name_is_not_ingested_twice(collector_cfg, spool):
    original = sorted(spool.rglob("*.jsonl"))[0]
    data = original.read_bytes()
    ingest_pending(collector_cfg)
    copy = spool / original.parent.name / ("copy-of-" + original.name)
    copy.write_bytes(data)
    report = ingest_pending(collector_cfg)
    assert report.files == 0 and len(report.quarantined) == 1
    assert report.quarantined[0][1].startswith("duplicate")


def test_a_truncated_file_is_quarantined_with_a_reason_and_the_rest_ingested(collector_cfg, spool):
    files = sorted(spool.rglob("*.jsonl"))
    victim = files[1]
    data = victim.read_bytes()
    victim.write_bytes(data[: len(data) // 2])  # cut mid-line
    report = ingest_pending(collector_cfg)
    assert report.files == len(files) - 1
    rel = victim.relative_to(spool).as_posix()
    moved = spool / "quarantine" / rel
    assert moved.is_file() and not victim.exists()
    reason = moved.with_name(moved.name + ".reason").read_text().strip()
    assert reason.startswith("truncated")
    con = duckdb.connect(collector_cfg.db, read_only=True)
    rows = con.execute("SELECT file_id, reason FROM quarantined_files").fetchall()
    jobs = con.execute("SELECT count(*) FROM jobs").fetchone()[0]
    con.close()
    assert rows == [(rel, reason)]
    assert jobs == sum(f.name.startswith("job-") for f in files) - 1  # the run's end file holds no job
    assert ingest_pending(collector_cfg).quarantined == []  # it stays out of later passes


def test_one_bad_line_quarantines_only_its_file_and_says_which_line(collector_cfg, spool):
    files = sorted(spool.rglob("*.jsonl"))
    lines = files[2].read_text().splitlines(keepends=True)
    lines[3] = '{"kind":"step", oops\n'
    files[2].write_text("".join(lines))
    report = ingest_pending(collector_cfg)
    assert report.files == len(files) - 1
    assert [r for _, r in report.quarantined] == [
        "line 4: invalid JSON (Expecting property name enclosed in double quotes at column 17)"]


def test_garbage_and_wrong_versions_are_refused_line_by_line(collector_cfg, spool):
    run_dir = next(p for p in spool.iterdir() if p.is_dir())
    good = sorted(run_dir.glob("*.jsonl"))[0].read_text().splitlines()
    cases = {
        "garbage.jsonl": ("\x00\x01 not json at all\n", "line 1: invalid JSON"),
        "version.jsonl": (good[0].replace('"schema_version":1', '"schema_version":99') + "\n",
                          "line 1: unsupported schema_version 99"),
        "kind.jsonl": ('{"kind":"bogus","schema_version":1}\n', "line 1: unknown record kind 'bogus'"),
        "missing.jsonl": (good[0] + "\n" + '{"kind":"job","schema_version":1,"job_id":"j"}\n',
                          "line 2: job record lacks run_id"),
        "type.jsonl": (good[0] + "\n" + good[1].replace('"wall_s":', '"wall_s":"slow","x":') + "\n",
                       "line 2: a job value does not fit the schema"),
    }
    for name, (text, _) in cases.items():
        (run_dir / name).write_text(text)
    total = len(list(spool.rglob("*.jsonl")))
    report = ingest_pending(collector_cfg)
    reasons = dict(report.quarantined)
    for name, (_, expected) in cases.items():
        assert reasons[f"{run_dir.name}/{name}"].startswith(expected), (name, reasons[f"{run_dir.name}/{name}"])
    assert report.files == total - len(cases)


def test_half_written_temporary_files_are_left_alone(collector_cfg, spool):
    run_dir = next(p for p in spool.iterdir() if p.is_dir())
    (run_dir / ".job-x.jsonl.tmp").write_text('{"kind":"run"')
    report = ingest_pending(collector_cfg)
    assert report.quarantined == [] and (run_dir / ".job-x.jsonl.tmp").exists()


def test_batches_of_files_give_the_same_warehouse_as_one_by_one(tmp_path):
    counts = write_spool(tmp_path / "a", runs=3, jobs_per_run=7, steps_per_job=4)
    write_spool(tmp_path / "b", runs=3, jobs_per_run=7, steps_per_job=4)
    big = CollectorConfig(spool=str(tmp_path / "a"), db=str(tmp_path / "a.duckdb"), batch_files=500)
    one = CollectorConfig(spool=str(tmp_path / "b"), db=str(tmp_path / "b.duckdb"), batch_files=1)
    every_line = sum(counts.values()) - counts["run"] + counts["job"]  # each job file carries its run record
    assert ingest_pending(big).records == ingest_pending(one).records == every_line
    assert _counts(big.db) == _counts(one.db)
    assert _count(big.db, "steps") == counts["step"] and _count(big.db, "runs") == counts["run"]


def _rows(path: str, table: str) -> list[tuple]:
    con = duckdb.connect(path, read_only=True)
    try:
        return sorted(con.execute(f"SELECT * FROM {table}").fetchall(), key=repr)
    finally:
        con.close()


def test_files_with_kinds_interleaved_or_keys_reordered_give_the_same_rows(tmp_path):
    # The fast path reads the runs of lines the writer groups by kind each with its kind's columns; a file
    # whose kinds interleave, or whose lines start with another key, must still land whole and alike.
    write_spool(tmp_path / "a", runs=2, jobs_per_run=6, steps_per_job=5)
    write_spool(tmp_path / "b", runs=2, jobs_per_run=6, steps_per_job=5)
    rng = random.Random(7)
    for n, path in enumerate(sorted((tmp_path / "b").rglob("*.jsonl"))):
        lines = path.read_bytes().splitlines(keepends=True)
        if n % 3 == 0:  # kinds interleaved
            rng.shuffle(lines)
        elif n % 3 == 1:  # keys in another order on every other line ("kind" last)
            lines = [(json.dumps(dict(reversed(json.loads(line).items()))) + "\n").encode() if i % 2 else line
                     for i, line in enumerate(lines)]
        path.write_bytes(b"".join(lines))
    a = CollectorConfig(spool=str(tmp_path / "a"), db=str(tmp_path / "a.duckdb"))
    b = CollectorConfig(spool=str(tmp_path / "b"), db=str(tmp_path / "b.duckdb"))
    report_a, report_b = ingest_pending(a), ingest_pending(b)
    assert report_b.quarantined == [] and report_b.records == report_a.records
    for table in TABLES.values():
        assert _rows(b.db, table) == _rows(a.db, table), table
    assert _count(b.db, "steps") == 2 * 6 * 5


def test_watch_ingests_files_that_arrive_later(collector_cfg, spool, tmp_path):
    staged = tmp_path / "staged"
    spool.rename(staged)
    spool.mkdir()
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(collector_cfg, stop), daemon=True)
    thread.start()
    try:
        files = sorted(staged.rglob("*.jsonl"))
        for f in files:  # arrive by rename, as the generator writes them
            target = spool / f.relative_to(staged)
            target.parent.mkdir(exist_ok=True)
            f.rename(target)
        def all_ingested():
            try:
                return _count(collector_cfg.db, "ingested_files") == len(files)
            except duckdb.Error:
                return False  # not created yet, or the collector holds it right now

        wait_until(all_ingested)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert _count(collector_cfg.db, "ingested_files") == len(files)
    assert not thread.is_alive()


def _collector(args: list[str], env: dict | None = None, stderr=subprocess.DEVNULL) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "collector", *args], cwd=ROOT, env={**os.environ, **(env or {})}, stdout=subprocess.DEVNULL, stderr=stderr, text=True)


def _wait_for_line(proc: subprocess.Popen, marker: str, limit_s: float = 300) -> str:
    """Read the process's stderr until a line holds `marker`; fail if it exits first (the limit only guards a hang)."""
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=lambda: [lines.put(x) for x in iter(proc.stderr.readline, "")] + [lines.put(None)],
                     daemon=True).start()
    deadline = time.monotonic() + limit_s
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1.0)
        except queue.Empty:
            continue
        if line is None:
            pytest.fail(f"the collector exited ({proc.wait()}) before printing {marker!r}")
        if marker in line:
            return line
    pytest.fail(f"no {marker!r} from the collector within {limit_s} s")


def _ids(folder) -> set[str]:
    return {p.relative_to(folder).as_posix() for p in folder.rglob("*.jsonl")} if folder.exists() else set()


def _ingested_ids(db_path) -> set[str]:
    if not db_path.exists():
        return set()
    con = duckdb.connect(str(db_path), read_only=True)
    try:
        return {r[0] for r in con.execute("SELECT file_id FROM ingested_files").fetchall()}
    finally:
        con.close()


@pytest.mark.slow
def test_kill_9_at_random_moments_loses_nothing_and_doubles_nothing(tmp_path):
    spool, db_path = tmp_path / "spool", tmp_path / "w.duckdb"
    counts = write_spool(spool, runs=4, jobs_per_run=150, steps_per_job=20)
    all_ids = _ids(spool)
    args = ["watch", "--spool", str(spool), "--db", str(db_path), "--interval", "0.2", "--batch-files", "25"]
    rng = random.Random(7)
    # Kills at known moments (the collector pauses there when asked) and at random points of progress.
    kills = [("inserted", 2), ("progress", None), ("committed", 1), ("progress", None), ("archiving", 2),
             ("inserted", 1), ("progress", None), ("committed", 3)]
    progress = []
    for point, nth in kills:
        before = _ingested_ids(db_path)
        if point == "progress":  # kill once done/ has grown by a random number of files, polled quickly
            target = len(_ids(spool / "done")) + rng.randint(1, 40)
            proc = _collector(args)
            while len(_ids(spool / "done")) < target and proc.poll() is None:
                time.sleep(0.005)
        else:
            proc = _collector(args, {"COLLECTOR_PAUSE_AT": f"{point}:{nth}"}, stderr=subprocess.PIPE)
            _wait_for_line(proc, f"collector paused at {point} {nth}")
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        ingested, done = _ingested_ids(db_path), _ids(spool / "done")
        pending = {p.relative_to(spool).as_posix() for p in pending_files(spool)}
        progress.append(len(ingested))
        # A file moves to done/ only after its batch committed; nothing is lost or made up.
        assert before <= ingested <= all_ids and done <= ingested
        assert done | pending == all_ids and not done & pending
        if point == "inserted":  # the batch in flight rolled back: only the batches before it count
            assert len(ingested - before) <= 25 * (nth - 1)
        if point in ("committed", "archiving"):  # the crash window between commit and move was hit
            assert ingested & pending, (point, nth)
    # The kills really landed in the middle of the work.
    assert all(0 < n < counts["job"] for n in progress), progress
    # A last run to the end; then the warehouse must equal the spool exactly.
    done = subprocess.run([sys.executable, "-m", "collector", "ingest", "--spool", str(spool), "--db",
                           str(db_path)], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "already ingested" in done.stdout  # the last kill's committed batch is moved, not ingested again
    got = _counts(str(db_path))
    assert got["runs"] == counts["run"] and got["jobs"] == counts["job"]
    assert got["phases"] == counts["phase"] and got["steps"] == counts["step"]
    assert got["ingested_files"] == counts["job"] and _ids(spool / "done") == all_ids
    assert not (spool / "quarantine").exists()


@pytest.mark.slow
def test_two_generators_writing_at_once(tmp_path):
    spool = tmp_path / "spool"
    cmd = [sys.executable, "-m", "generator", "sweep", "--batch-sizes", "1,2", "--resolutions", "64", "--steps",
           "1", "--repeats", "2", "--warmup", "0", "--save-images", "none", "--spool", str(spool), "--quiet"]
    procs = [subprocess.Popen(cmd + ["--seed", str(s)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
             for s in (1, 2)]
    cfg = CollectorConfig(spool=str(spool), db=str(tmp_path / "w.duckdb"))
    while any(p.poll() is None for p in procs):  # ingest while they write
        ingest_pending(cfg)
        time.sleep(0.3)
    assert all(p.returncode == 0 for p in procs), [p.stderr.read() for p in procs]
    ingest_pending(cfg)
    assert _count(cfg.db, "runs") == 2 and _count(cfg.db, "jobs") == 8 and _count(cfg.db, "steps") == 8
    assert not list(spool.glob("*/*.jsonl")), "everything pending was ingested"


def test_a_reader_holding_the_file_makes_the_collector_wait_not_fail(collector_cfg, caplog):
    with db.writer(collector_cfg.db):
        pass  # create the warehouse
    collector_cfg = dataclasses.replace(collector_cfg, busy_wait=600.0)  # a bound, not a wait
    with holding(collector_cfg.db, read_only=True) as release, caplog.at_level("WARNING", logger="warehouse"):
        result = {}
        thread = threading.Thread(target=lambda: result.update(report=ingest_pending(collector_cfg)))
        thread.start()
        wait_until(lambda: "warehouse busy" in caplog.text)  # the collector is waiting, not failing
        assert thread.is_alive() and _count_files(collector_cfg.spool, "done") == 0
        release()
        thread.join(timeout=600)
    assert result["report"].files > 0 and _count(collector_cfg.db, "ingested_files") == result["report"].files


def _count_files(spool, sub) -> int:
    return len(list((Path(spool) / sub).rglob("*.jsonl")))


def test_a_reader_gives_up_with_warehouse_busy(collector_cfg):
    with db.writer(collector_cfg.db) as con:  # this process writes; a reader elsewhere must wait
        out = subprocess.run(
            [sys.executable, "-c", "import sys; from warehouse import db\n"
             "try:\n    db.query_df(sys.argv[1], 'SELECT 1')\nexcept db.WarehouseBusy as e:\n    print('busy:', e)",
             collector_cfg.db], cwd="/", capture_output=True, text=True, timeout=60)
        con.execute("SELECT 1")
    assert out.stdout.startswith("busy: warehouse"), out.stdout + out.stderr


def test_migrations_apply_once_in_order(tmp_path):
    path = str(tmp_path / "m.duckdb")
    with db.writer(path) as con:
        first = con.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall()
    with db.writer(path) as con:
        assert db.apply_schema(con) == []  # nothing left to apply
        assert con.execute("SELECT version, name FROM schema_migrations ORDER BY version").fetchall() == first
    assert [v for v, _ in first] == list(range(1, len(first) + 1))
    with pytest.raises(ValueError, match=r"numbered 1, 2, 3, ... in order, got \[1, 3\]"):
        db.schema_parts("-- migration 1: a\nSELECT 1;\n-- migration 3: c\nSELECT 1;\n")


def test_a_held_block_keeps_the_file_open_for_its_queries_and_lets_it_go_at_the_end(warehouse, tmp_path):
    wh = Warehouse(warehouse)
    with wh.held():
        assert not wh.sweeps().empty
        with pytest.raises(db.WarehouseBusy):  # the collector waits while a page renders
            with db.writer(warehouse, wait_s=0.2):
                pass
    with db.writer(warehouse, wait_s=5.0) as con:  # and writes once the block has ended
        con.execute("SELECT 1")
    missing = Warehouse(tmp_path / "none.duckdb")
    with missing.held():  # nothing to hold: the block's own queries say so
        with pytest.raises(db.NoWarehouse):
            missing.sweeps()


def test_views_and_papers_are_made_again_only_when_their_source_changed(tmp_path, monkeypatch):
    path = str(tmp_path / "m.duckdb")
    with db.writer(path) as con:
        made = con.execute("SELECT fingerprint, applied_at FROM schema_state").fetchall()
    with db.writer(path) as con:  # the same version: nothing made again
        assert con.execute("SELECT fingerprint, applied_at FROM schema_state").fetchall() == made
    papers = tmp_path / "papers.toml"
    papers.write_text(db.PAPERS_PATH.read_text().replace('title = "', 'title = "Edited: ', 1))
    monkeypatch.setattr(db, "PAPERS_PATH", papers)
    with db.writer(path) as con:  # papers.toml changed: the papers are loaded again, under a new fingerprint
        assert con.execute("SELECT count(*) FROM papers WHERE starts_with(title, 'Edited: ')").fetchone()[0] == 1
        assert con.execute("SELECT fingerprint FROM schema_state").fetchall() == [(db.schema_fingerprint(),)]
    assert made[0][0] != db.schema_fingerprint()


def test_status_reports_pending_ingested_quarantined_and_lag(collector_cfg, spool):
    files = sorted(spool.rglob("*.jsonl"))
    files[0].write_text("garbage\n")
    before = status(collector_cfg)
    assert before["pending_files"] == len(files) and before["lag_s"] >= 0
    assert before["warehouse"] == "not created yet"
    ingest_pending(collector_cfg)
    after = status(collector_cfg)
    assert after["pending_files"] == 0 and after["ingested_files"] == len(files) - 1
    assert after["records"]["jobs"] == sum(f.name.startswith("job-") for f in files) - 1
    assert after["quarantined"][0][1].startswith("line 1: invalid JSON")
    out = subprocess.run([sys.executable, "-m", "collector", "status", "--spool", collector_cfg.spool, "--db",
                          collector_cfg.db], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0 and out.stdout.strip() == format_status(status(collector_cfg))
    assert "quarantine 1 files" in out.stdout and "last error none" in out.stdout


def test_retention_deletes_old_done_files_only(collector_cfg, spool):
    ingest_pending(collector_cfg)
    done = sorted((spool / "done").rglob("*.jsonl"))
    old = time.time() - 3 * 86400
    os.utime(done[0], (old, old))
    assert prune_done(spool, retention_days=2) == 1
    assert not done[0].exists() and all(p.exists() for p in done[1:])


def test_collector_ingest_brings_an_older_warehouse_up_to_date_with_nothing_to_ingest(tmp_path):
    path, spool = tmp_path / "w.duckdb", tmp_path / "spool"
    spool.mkdir()
    with db.writer(path) as con:   # a warehouse as an older version left it: one view not there yet, its fingerprint
        con.execute("DROP VIEW roofline_by_batch")
        con.execute("UPDATE schema_state SET fingerprint = 'an older schema.sql'")
    views = "SELECT count(*) FROM duckdb_views() WHERE view_name = 'roofline_by_batch'"
    assert db.query_df(str(path), views).iloc[0, 0] == 0
    assert collector_main(["ingest", "--spool", str(spool), "--db", str(path)]) == 0
    assert db.query_df(str(path), views).iloc[0, 0] == 1

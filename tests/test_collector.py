"""Exactly once, and quarantine with a reason, on real spool files and a real DuckDB file."""

from __future__ import annotations

import threading
import time

import duckdb

from collector.__main__ import watch
from collector.ingest import ingest_pending


def _count(db: str, table: str) -> int:
    con = duckdb.connect(db, read_only=True)
    try:
        return con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    finally:
        con.close()


def test_ingesting_twice_adds_nothing(collector_cfg, spool):
    files = len(list(spool.rglob("*.jsonl")))
    first = ingest_pending(collector_cfg)
    counts = {t: _count(collector_cfg.db, t) for t in ("runs", "jobs", "phases", "steps", "images")}
    second = ingest_pending(collector_cfg)
    assert first.files == files and second.files == 0 and second.skipped == files
    assert {t: _count(collector_cfg.db, t) for t in counts} == counts
    assert _count(collector_cfg.db, "ingested_files") == files


def test_the_same_content_under_another_name_is_not_ingested_twice(collector_cfg, spool):
    ingest_pending(collector_cfg)
    original = sorted(spool.rglob("*.jsonl"))[0]
    copy = original.with_name("copy-of-" + original.name)
    copy.write_bytes(original.read_bytes())
    report = ingest_pending(collector_cfg)
    assert report.files == 0 and len(report.quarantined) == 1
    assert "duplicate" in report.quarantined[0][1]
    assert not copy.exists()


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
    reason = moved.with_name(moved.name + ".reason").read_text()
    assert "truncated" in reason
    con = duckdb.connect(collector_cfg.db, read_only=True)
    rows = con.execute("SELECT file_id, reason FROM quarantined_files").fetchall()
    jobs = con.execute("SELECT count(*) FROM jobs").fetchone()[0]
    con.close()
    assert rows == [(rel, reason.strip())]
    assert jobs == len(files) - 1
    # The quarantined file stays out of later passes.
    assert ingest_pending(collector_cfg).quarantined == []


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
                       "jobs: a value does not fit the schema"),
    }
    for name, (text, _) in cases.items():
        (run_dir / name).write_text(text)
    report = ingest_pending(collector_cfg)
    reasons = dict(report.quarantined)
    for name, (_, expected) in cases.items():
        reason = reasons[f"{run_dir.name}/{name}"]
        assert reason.startswith(expected), (name, reason)
    assert report.files == len(list(run_dir.glob("*.jsonl"))) + len(
        [p for p in spool.rglob("*.jsonl") if p.parent != run_dir and "quarantine" not in p.parts])


def test_half_written_temporary_files_are_left_alone(collector_cfg, spool):
    run_dir = next(p for p in spool.iterdir() if p.is_dir())
    (run_dir / ".job-x.jsonl.tmp").write_text('{"kind":"run"')
    report = ingest_pending(collector_cfg)
    assert report.quarantined == []
    assert (run_dir / ".job-x.jsonl.tmp").exists()


def test_watch_ingests_files_that_arrive_later(collector_cfg, spool, tmp_path):
    # Start with an empty spool; files arrive by rename, as the generator writes them.
    staged = tmp_path / "staged"
    spool.rename(staged)
    spool.mkdir()
    stop = threading.Event()
    thread = threading.Thread(target=watch, args=(collector_cfg, stop), daemon=True)
    thread.start()
    try:
        files = sorted(staged.rglob("*.jsonl"))
        for f in files:
            target = spool / f.relative_to(staged)
            target.parent.mkdir(exist_ok=True)
            f.rename(target)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if _count(collector_cfg.db, "ingested_files") == len(files):
                    break
            except duckdb.Error:
                pass  # not created yet, or the collector holds it right now
            time.sleep(0.2)
    finally:
        stop.set()
        thread.join(timeout=30)
    assert _count(collector_cfg.db, "ingested_files") == len(files)
    assert not thread.is_alive()

"""Spool files -> warehouse, exactly once; a bad file goes to quarantine with its reason.

A spool file is complete once it has its final name (the generator renames it into
place). Files are ingested in batches: DuckDB reads a batch of files itself
(read_json; each kind's lines with that kind's columns only: collector/bulk.py), and
one transaction inserts all their records together with their rows
in `ingested_files` (file id + sha256). A crash therefore keeps all of a batch or
none of it. After the commit the files move to done/; a file found in the spool
whose id is already recorded (a crash between commit and move) is only moved.
If DuckDB refuses a batch, its files are ingested one by one (_ingest_one), each in
its own transaction, so only the bad file is quarantined, with the line and reason
(spool.reader.parse_spool_file names it).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import logging
import os
import shutil
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from settings import SPOOL_DIR, WAREHOUSE_DB, setting
from collector.bulk import bulk_insert, on_conflict
from spool import REPEATED, TABLES, BadSpoolFile, parse_spool_file, table_schemas
from warehouse import db

log = logging.getLogger("collector")

# Tables whose rows may repeat across files (every job file carries its run): kept once, by their key.
SHARED_TABLES = {TABLES[kind]: kind for kind in REPEATED}
QUARANTINE, DONE = "quarantine", "done"
# Test-only: COLLECTOR_PAUSE_AT=<point>:<n> stops the collector the n-th time it passes <point>
# (inserted: a batch inserted, not committed; committed: committed, no file moved yet; archiving:
# half of a committed batch moved to done/), says so on stderr and waits, so that a fault test
# can kill -9 it at a known moment instead of guessing one with a sleep.
PAUSE_ENV, PAUSE_POINTS = "COLLECTOR_PAUSE_AT", ("inserted", "committed", "archiving")
_passed: dict[str, int] = {}
MAX_REASON = 300  # characters of a quarantine reason


@dataclass(frozen=True)
class CollectorConfig:
    """Settings of the collector; each CLI flag of `python -m collector` sets one field."""

    spool: str = setting("Spool folder to ingest from.", env=SPOOL_DIR)
    db: str = setting("DuckDB warehouse file, created on first ingest.", env=WAREHOUSE_DB)
    interval: float = setting(
        "Seconds between rescans in watch mode; a missed file event costs at most this long.", 5.0)
    busy_wait: float = setting("Seconds to keep retrying while another process holds the warehouse.", 30.0)
    batch_files: int = setting("Spool files per transaction.", 1000)
    retention_days: float = setting(
        "Days to keep ingested files under done/ before deleting them; 0 keeps them.", 0.0)

    def __post_init__(self):
        if self.interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {self.interval}")
        if self.busy_wait < 0:
            raise ValueError(f"busy wait must be >= 0 seconds, got {self.busy_wait}")
        if self.batch_files < 1:
            raise ValueError(f"batch files must be >= 1, got {self.batch_files}")
        if self.retention_days < 0:
            raise ValueError(f"retention days must be >= 0, got {self.retention_days}")


@dataclass
class IngestReport:
    """What one pass over the spool did."""

    files: int = 0
    records: int = 0
    skipped: int = 0
    gone: int = 0  # listed, then taken by another collector (or removed) before they were read
    quarantined: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"ingested {self.files} files ({self.records} records)"
        if self.skipped:
            text += f", moved {self.skipped} already ingested to {DONE}/"
        if self.gone:
            text += f", {self.gone} gone before they were read (another collector took them)"
        if self.quarantined:
            text += f", quarantined {len(self.quarantined)}"
        return text


@dataclass
class _Entry:
    path: Path
    file_id: str
    digest: str
    data: bytes


def pending_files(spool: Path) -> list[Path]:
    """Complete spool files (final names only), by name; quarantine/ and done/ excluded."""
    if not spool.is_dir():
        return []
    files = []
    for path in spool.rglob("*.jsonl"):
        rel = path.relative_to(spool)
        if rel.parts[0] in (QUARANTINE, DONE) or path.name.startswith("."):
            continue
        files.append(path)
    return sorted(files)


def ingest_pending(cfg: CollectorConfig, files: list[Path] | None = None, upgrade: bool = False) -> IngestReport:
    """One pass: ingest every complete spool file not seen before; quarantine bad ones.

    `files` is the listing to work from (default: the spool's pending files, listed now); a
    file in it that another collector took meanwhile is skipped (`gone`), never an error.
    With `upgrade`, the warehouse is opened even with nothing to ingest, so that its migrations
    and views are brought up to this version's schema.sql (the CLI's first pass does this)."""
    spool = Path(cfg.spool)
    report = IngestReport()
    files = pending_files(spool) if files is None else files
    if files or upgrade:
        with db.writer(cfg.db, wait_s=cfg.busy_wait) as con, db.damage_named(cfg.db):
            schemas = _schemas(con)
            for start in range(0, len(files), cfg.batch_files):
                _ingest_batch(con, spool, files[start:start + cfg.batch_files], schemas, report)
    if cfg.retention_days:
        prune_done(spool, cfg.retention_days)
    return report


# The record tables' columns by schema version (db.schema_fingerprint): the same for every warehouse db.writer has
# brought to that version, so read once per process (17 ms a pass: a third of a small pass's own work).
_SCHEMAS: dict[str, dict] = {}


def _schemas(con) -> dict:
    """table_schemas of a warehouse that db.writer has brought to this version's schema.sql. Shared: read only."""
    version = db.schema_fingerprint()
    if version not in _SCHEMAS:
        _SCHEMAS[version] = table_schemas(con)
    return _SCHEMAS[version]


def _ingest_batch(con, spool: Path, files: list[Path], schemas: dict, report: IngestReport) -> None:
    # 1. What the warehouse already holds, by file id and by content.
    ids = [p.relative_to(spool).as_posix() for p in files]
    known = {r[0] for r in con.execute(
        "SELECT file_id FROM ingested_files WHERE list_contains($ids, file_id)", {"ids": ids}).fetchall()}
    entries: list[_Entry] = []
    for path, file_id in zip(files, ids):
        if file_id in known:  # committed before, not yet moved (a crash in between)
            _archive(spool, path, file_id)
            report.skipped += 1
            continue
        try:
            data = path.read_bytes()
        except FileNotFoundError:  # another collector took it between our listing and now
            report.gone += 1
            continue
        entries.append(_Entry(path, file_id, hashlib.sha256(data).hexdigest(), data))
    seen = {r[0] for r in con.execute(
        "SELECT content_hash FROM ingested_files WHERE list_contains($h, content_hash)",
        {"h": [e.digest for e in entries]}).fetchall()}
    batch = []
    for e in entries:
        # The same bytes under another name would count every record twice.
        if e.digest in seen:
            _quarantine(con, spool, e, "duplicate: the same content was already ingested under another name",
                        report)
        elif not e.data.endswith(b"\n"):  # DuckDB would accept a file cut at a line end
            _quarantine(con, spool, e, _reason(e.data, schemas), report)
        else:
            seen.add(e.digest)
            batch.append(e)
    if not batch:
        return
    # 2. Fast path: DuckDB reads the batch; one transaction for all of it.
    try:
        con.execute("BEGIN TRANSACTION")
        bulk_insert(con, spool, [e.data for e in batch], schemas)
        counts = {e.file_id: e.data.count(b"\n") for e in batch}  # one record per line
        _fill_model_kind(con)
        _record_ingested(con, [(e.file_id, e.digest, counts[e.file_id]) for e in batch])
        _pause_point("inserted")
        con.execute("COMMIT")
    except Exception as exc:  # DuckDB's errors, and the odd Python one its reader raises on bad bytes
        con.execute("ROLLBACK")
        if db.is_damage(exc):  # the warehouse is at fault, not the files: stop (ingest_pending says so)
            raise
        log.info("batch of %d files refused (%s); reading them one by one", len(batch), _first_line(exc))
        for e in batch:
            _ingest_one(con, spool, e, schemas, report)
        return
    _pause_point("committed")
    for n, e in enumerate(batch):
        if n == len(batch) // 2:
            _pause_point("archiving")
        _archive(spool, e.path, e.file_id)
    report.files += len(batch)
    report.records += sum(counts.values())


def _fill_model_kind(con) -> None:
    """A run record written before `model_kind` was a field gets it from its model_id (schema.sql's
    model_kind_of, migration 10)."""
    con.execute("UPDATE runs SET model_kind = model_kind_of(model_id) WHERE model_kind IS NULL")


def _record_ingested(con, rows: list[tuple[str, str, int]]) -> None:
    now = _dt.datetime.now(_dt.timezone.utc)
    table = pa.table({"file_id": [r[0] for r in rows], "content_hash": [r[1] for r in rows],
                      "records": pa.array([r[2] for r in rows], pa.int32()),
                      "ingested_at": pa.array([now] * len(rows), pa.timestamp("us", tz="UTC"))})
    con.register("done_files", table)
    try:
        con.execute("INSERT INTO ingested_files BY NAME SELECT * FROM done_files")
    finally:
        con.unregister("done_files")


def _ingest_one(con, spool: Path, e: _Entry, schemas: dict, report: IngestReport) -> None:
    """The exact path: one file, one transaction, the bad file quarantined with its reason."""
    try:
        tables = parse_spool_file(e.data, schemas)
    except BadSpoolFile as exc:
        _quarantine(con, spool, e, str(exc), report)
        return
    con.execute("BEGIN TRANSACTION")
    try:
        records = 0
        for table, arrow in tables.items():
            con.register("one_file", arrow)
            try:
                if table in SHARED_TABLES:
                    con.execute(f"INSERT INTO {table} BY NAME SELECT DISTINCT * FROM one_file "
                                f"{on_conflict(SHARED_TABLES[table])}")
                else:
                    con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM one_file")
            finally:  # in a failed transaction this fails too; keep the error that counts
                with contextlib.suppress(duckdb.Error):
                    con.unregister("one_file")
            records += arrow.num_rows
        _fill_model_kind(con)
        _record_ingested(con, [(e.file_id, e.digest, records)])
        con.execute("COMMIT")
    except (duckdb.Error, pa.ArrowException, ValueError) as exc:
        con.execute("ROLLBACK")
        if db.is_damage(exc):  # the warehouse is at fault, not the files: stop (ingest_pending says so)
            raise
        _quarantine(con, spool, e, f"refused by the warehouse: {_first_line(exc)}", report)
        return
    _archive(spool, e.path, e.file_id)
    report.files += 1
    report.records += records


def _first_line(exc: BaseException) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _reason(data: bytes, schemas: dict) -> str:
    try:
        parse_spool_file(data, schemas)
    except BadSpoolFile as exc:
        return str(exc)
    return "refused by the warehouse"


def _archive(spool: Path, path: Path, file_id: str) -> None:
    target = spool / DONE / file_id
    try:
        os.replace(path, target)
    except FileNotFoundError:
        if not path.exists():  # another collector moved it first
            return
        target.parent.mkdir(parents=True, exist_ok=True)  # the first file of its run folder
        with contextlib.suppress(FileNotFoundError):
            os.replace(path, target)


def _pause_point(point: str) -> None:
    """Test-only pause (see PAUSE_ENV): a no-op unless the environment asks for this point."""
    spec = os.environ.get(PAUSE_ENV)
    if not spec:
        return
    name, _, nth = spec.partition(":")
    if name not in PAUSE_POINTS or not nth.isdigit():
        raise ValueError(f"{PAUSE_ENV} must be <point>:<n> with point one of {', '.join(PAUSE_POINTS)}, "
                         f"got {spec!r}")
    if name != point:
        return
    _passed[point] = _passed.get(point, 0) + 1
    if _passed[point] == int(nth):
        sys.stderr.write(f"collector paused at {point} {nth}\n")
        sys.stderr.flush()
        threading.Event().wait()


def _quarantine(con, spool: Path, e: _Entry, reason: str, report: IngestReport) -> None:
    """Move the file under quarantine/ with a .reason beside it, and record why."""
    if len(reason) > MAX_REASON:  # a reason may quote a value several MB long
        reason = reason[:MAX_REASON - 1] + "…"
    target = spool / QUARANTINE / e.file_id
    target.parent.mkdir(parents=True, exist_ok=True)
    try:
        shutil.move(str(e.path), target)
    except FileNotFoundError:  # another collector took it: nothing of it is ours to record
        report.gone += 1
        return
    target.with_name(target.name + ".reason").write_text(reason + "\n", encoding="utf-8")
    con.execute("INSERT INTO quarantined_files VALUES (?, ?, ?, ?)",
                [e.file_id, e.digest, reason, _dt.datetime.now(_dt.timezone.utc)])
    report.quarantined.append((e.file_id, reason))
    log.warning("quarantined %s: %s", e.file_id, reason)


def prune_done(spool: Path, retention_days: float) -> int:
    """Delete ingested files under done/ older than `retention_days`; return how many."""
    cutoff = time.time() - retention_days * 86400
    removed = 0
    for path in (spool / DONE).rglob("*.jsonl"):
        if path.stat().st_mtime < cutoff:
            path.unlink()
            removed += 1
    return removed

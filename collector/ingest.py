"""Spool file -> warehouse, exactly once; a bad file goes to quarantine with its reason.

A spool file is complete once it has its final name (the generator renames it into
place). Each file is ingested in one transaction together with its row in
`ingested_files` (file id + sha256), so a crash either keeps all of a file or none
of it, and a file already remembered, by id or by content, is never read twice.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import duckdb
import pyarrow as pa

from generator.events import SCHEMA_VERSION
from warehouse import db

log = logging.getLogger("collector")

# Record kind -> warehouse table.
TABLES = {"run": "runs", "job": "jobs", "phase": "phases", "step": "steps",
          "op": "ops", "sample": "samples", "image": "images"}
# Tables whose rows repeat across files (every job file carries its run): kept once.
SHARED_TABLES = {"runs"}
QUARANTINE = "quarantine"
_ARROW_TYPES = {"VARCHAR": pa.string(), "JSON": pa.string(), "INTEGER": pa.int32(),
                "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(),
                "TIMESTAMP WITH TIME ZONE": pa.string()}


@dataclass(frozen=True)
class CollectorConfig:
    """Settings of the collector; each CLI flag of `python -m collector` sets one field."""

    # Spool folder to ingest from (env SPOOL_DIR).
    spool: str = field(default_factory=lambda: os.environ.get("SPOOL_DIR") or "data/spool")
    # DuckDB warehouse file, created on first ingest (env WAREHOUSE_DB).
    db: str = field(default_factory=db.default_db_path)
    # Seconds between rescans in watch mode; a missed file event costs at most this long.
    interval: float = 5.0
    # Seconds to keep retrying while another process holds the warehouse.
    busy_wait: float = 30.0

    def __post_init__(self):
        if self.interval <= 0:
            raise ValueError(f"interval must be > 0 seconds, got {self.interval}")
        if self.busy_wait < 0:
            raise ValueError(f"busy wait must be >= 0 seconds, got {self.busy_wait}")


@dataclass
class IngestReport:
    """What one pass over the spool did."""

    files: int = 0
    records: int = 0
    skipped: int = 0
    quarantined: list[tuple[str, str]] = field(default_factory=list)

    def __str__(self) -> str:
        text = f"ingested {self.files} files ({self.records} records)"
        if self.skipped:
            text += f", skipped {self.skipped} already ingested"
        if self.quarantined:
            text += f", quarantined {len(self.quarantined)}"
        return text


class BadSpoolFile(ValueError):
    """A spool file that cannot be ingested; the message is the quarantine reason."""


def pending_files(spool: Path) -> list[Path]:
    """Complete spool files (final names only), oldest name first; quarantine excluded."""
    if not spool.is_dir():
        return []
    files = []
    for path in spool.rglob("*.jsonl"):
        rel = path.relative_to(spool)
        if rel.parts[0] == QUARANTINE or path.name.startswith("."):
            continue
        files.append(path)
    return sorted(files)


def table_schemas(con) -> dict[str, dict]:
    """For each record table: its Arrow schema and required (NOT NULL) columns."""
    rows = con.execute(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE table_name IN ({}) ORDER BY table_name, ordinal_position".format(
            ", ".join("?" for _ in TABLES)),
        list(TABLES.values()),
    ).fetchall()
    schemas: dict[str, dict] = {}
    for table, column, dtype, nullable in rows:
        entry = schemas.setdefault(table, {"fields": [], "required": [], "json": []})
        entry["fields"].append(pa.field(column, _ARROW_TYPES.get(dtype, pa.string())))
        if nullable == "NO":
            entry["required"].append(column)
        if dtype == "JSON":
            entry["json"].append(column)
    for entry in schemas.values():
        entry["schema"] = pa.schema(entry["fields"])
    return schemas


def parse_spool_file(data: bytes, schemas: dict[str, dict]) -> dict[str, pa.Table]:
    """Records of one file grouped into Arrow tables; BadSpoolFile names the first problem."""
    # 1. Whole lines of UTF-8 text: the writer ends every record with a newline.
    if not data:
        raise BadSpoolFile("empty file: no records")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise BadSpoolFile(f"not UTF-8 text (byte {exc.start})") from None
    if not text.endswith("\n"):
        raise BadSpoolFile(f"truncated: line {text.count(chr(10)) + 1} has no end (the file was cut short)")
    # 2. Each line a JSON object of a known kind and schema version, with its required fields.
    rows: dict[str, list[dict]] = {}
    for lineno, line in enumerate(text.splitlines(), 1):
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BadSpoolFile(f"line {lineno}: invalid JSON ({exc.msg} at column {exc.colno})") from None
        if not isinstance(obj, dict):
            raise BadSpoolFile(f"line {lineno}: expected a JSON object, got {type(obj).__name__}")
        kind = obj.get("kind")
        if kind not in TABLES:
            raise BadSpoolFile(f"line {lineno}: unknown record kind {kind!r} "
                               f"(allowed: {', '.join(TABLES)})")
        if obj.get("schema_version") != SCHEMA_VERSION:
            raise BadSpoolFile(f"line {lineno}: unsupported schema_version {obj.get('schema_version')!r} "
                               f"(this collector reads {SCHEMA_VERSION})")
        table = TABLES[kind]
        missing = [c for c in schemas[table]["required"] if obj.get(c) is None]
        if missing:
            raise BadSpoolFile(f"line {lineno}: {kind} record lacks {', '.join(missing)}")
        for column in schemas[table]["json"]:
            if column in obj and not isinstance(obj[column], str):
                obj[column] = json.dumps(obj[column])
        rows.setdefault(table, []).append(obj)
    # 3. Typed Arrow tables: a value of the wrong type is refused here.
    tables = {}
    for table, records in rows.items():
        try:
            tables[table] = pa.Table.from_pylist(records, schema=schemas[table]["schema"])
        except (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, OverflowError) as exc:
            raise BadSpoolFile(f"{table}: a value does not fit the schema ({exc})") from None
    return tables


def _insert(con, tables: dict[str, pa.Table]) -> int:
    count = 0
    for table, arrow in tables.items():
        con.register("incoming", arrow)
        try:
            if table in SHARED_TABLES:
                con.execute(f"INSERT OR IGNORE INTO {table} BY NAME SELECT DISTINCT * FROM incoming")
            else:
                con.execute(f"INSERT INTO {table} BY NAME SELECT * FROM incoming")
        finally:
            con.unregister("incoming")
        count += arrow.num_rows
    return count


def _quarantine(con, spool: Path, path: Path, file_id: str, digest: str, reason: str) -> None:
    """Move the file under quarantine/ with a .reason beside it, and record why."""
    target = spool / QUARANTINE / file_id
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(path), target)
    target.with_name(target.name + ".reason").write_text(reason + "\n", encoding="utf-8")
    con.execute("INSERT INTO quarantined_files VALUES (?, ?, ?, ?)", [file_id, digest, reason, _now()])
    log.warning("quarantined %s: %s", file_id, reason)


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def ingest_pending(cfg: CollectorConfig) -> IngestReport:
    """One pass: ingest every complete spool file not seen before; quarantine bad ones."""
    spool = Path(cfg.spool)
    report = IngestReport()
    files = pending_files(spool)
    if not files:
        return report
    with db.writer(cfg.db, wait_s=cfg.busy_wait) as con:
        # 1. What the warehouse already holds, by file id and by content.
        known = dict(con.execute("SELECT file_id, content_hash FROM ingested_files").fetchall())
        known_hashes = set(known.values())
        schemas = table_schemas(con)
        for path in files:
            file_id = path.relative_to(spool).as_posix()
            if file_id in known:
                report.skipped += 1
                continue
            # 2. Read and hash once; the same bytes under another name are a duplicate.
            data = path.read_bytes()
            digest = hashlib.sha256(data).hexdigest()
            if digest in known_hashes:
                reason = "duplicate: the same content was already ingested under another name"
                _quarantine(con, spool, path, file_id, digest, reason)
                report.quarantined.append((file_id, reason))
                continue
            # 3. Parse; a bad file is quarantined and the pass goes on.
            try:
                tables = parse_spool_file(data, schemas)
            except BadSpoolFile as exc:
                _quarantine(con, spool, path, file_id, digest, str(exc))
                report.quarantined.append((file_id, str(exc)))
                continue
            # 4. One transaction: the records and the file's ingested_files row together.
            con.execute("BEGIN TRANSACTION")
            try:
                records = _insert(con, tables)
                con.execute("INSERT INTO ingested_files VALUES (?, ?, ?, ?)", [file_id, digest, records, _now()])
                con.execute("COMMIT")
            except duckdb.Error as exc:
                con.execute("ROLLBACK")
                reason = f"refused by the warehouse: {str(exc).splitlines()[0]}"
                _quarantine(con, spool, path, file_id, digest, reason)
                report.quarantined.append((file_id, reason))
                continue
            known[file_id] = digest
            known_hashes.add(digest)
            report.files += 1
            report.records += records
    return report


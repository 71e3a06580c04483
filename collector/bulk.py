"""The collector's fast path: DuckDB reads a batch of spool files itself and inserts their records.

The batch's bytes are joined into a few large files, which DuckDB's JSON reader reads several times faster
than many small ones: one per record kind the writer groups (each read with that kind's columns only), and
one for every other line (read with every table's columns). A record whose kind differs from its line's
start makes the batch split again line by line. Any bad record raises: collector/ingest.py then reads the
batch's files one by one (spool.reader.parse_spool_file) and quarantines only the bad ones.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import duckdb

from spool import LATE, REPEATED, SCHEMA_VERSION, TABLES


def _read_columns(schemas: dict) -> dict[str, str]:
    """One column list for read_json: every table's columns (a name shared with two types: VARCHAR)."""
    columns = {"kind": "VARCHAR"}
    for entry in schemas.values():
        for name, dtype in entry["columns"].items():
            columns[name] = dtype if columns.get(name, dtype) == dtype else "VARCHAR"
    return columns


def bulk_insert(con, spool: Path, files: list[bytes], schemas: dict) -> None:
    """Insert every record of the files (each one's bytes, ending with a newline). Raises on any bad record."""
    # 1. The batch's bytes (read already, for the hashes) as a few large files, which DuckDB reads
    #    several times faster than hundreds of small ones: one per kind for the runs of lines that
    #    start as the writer starts that kind's records, read with that kind's columns only, and one
    #    for every other line, read with every table's columns. DuckDB's JSON reader pays for each
    #    column it is given on every record: the 131 columns of all tables cost it several times the
    #    8 of a step record. Should a kind's file hold a record of another kind (a file whose kinds
    #    are interleaved), the batch is split again line by line and read again.
    reads: dict[str | None, str] = {}
    try:
        for by_line in (False, True):
            reads = _read_parts(con, spool, _split_by_kind(files, by_line), schemas)
            if reads is not None:
                break
        else:
            raise duckdb.InvalidInputException("a record's kind differs from its line's start")
        # 2. Each kind into its table.
        for kind, table in TABLES.items():
            cols = ", ".join(f'"{c}"' for c in schemas[table]["columns"])
            if kind in REPEATED:  # kept once by its key (a run repeats in every file of the run; LATE fields)
                if None in reads:
                    key = REPEATED[kind]
                    con.execute(f"INSERT INTO {table} BY NAME SELECT DISTINCT ON ({key}) {cols} FROM incoming "
                                f"WHERE kind = '{kind}' ORDER BY {key}{_late_missing(kind)} {on_conflict(kind)}")
                continue
            if kind in reads:
                con.execute(f"INSERT INTO {table} BY NAME SELECT {cols} FROM {reads[kind]}")
            if None in reads:
                con.execute(f"INSERT INTO {table} BY NAME SELECT {cols} FROM incoming WHERE kind = '{kind}'")
    finally:  # in a transaction that failed this fails too: the rollback drops the tables then
        _drop_reads(con, reads or {})


def _read_parts(con, spool: Path, parts: dict[str | None, list[bytes]], schemas: dict) -> dict | None:
    """Each part into a temporary table (kind -> table name). Raises on a record of an unknown kind or
    schema version; None (and no tables left) when a kind's part holds a record of another known kind."""
    reads: dict[str | None, str] = {}
    try:
        for kind, lines in parts.items():
            table = reads[kind] = "incoming" if kind is None else f"incoming_{kind}"
            columns = (_read_columns(schemas) if kind is None
                       else {"kind": "VARCHAR", **schemas[TABLES[kind]]["columns"]})
            joined = spool / f".batch-{os.getpid()}-{kind or 'mixed'}.jsonl.tmp"
            try:
                with open(joined, "wb") as fh:
                    fh.writelines(lines)
                con.execute(f"CREATE OR REPLACE TEMP TABLE {table} AS SELECT * FROM read_json($file, "
                            "format='newline_delimited', columns=$columns)", {"file": str(joined), "columns": columns})
            finally:
                joined.unlink(missing_ok=True)
            bad = con.execute(
                f"SELECT kind, schema_version FROM {table} WHERE kind IS NULL OR NOT list_contains($kinds, kind) "
                "OR schema_version IS DISTINCT FROM $version LIMIT 1",
                {"kinds": list(TABLES), "version": SCHEMA_VERSION}).fetchall()
            if bad:
                raise duckdb.InvalidInputException(f"unknown kind or schema_version: {bad[0]}")
            if kind is not None and con.execute(f"SELECT 1 FROM {table} WHERE kind <> $kind LIMIT 1",
                                                {"kind": kind}).fetchall():
                _drop_reads(con, reads)
                return None
    except BaseException:
        _drop_reads(con, reads)
        raise
    return reads


def _drop_reads(con, reads: dict) -> None:
    for table in reads.values():
        with contextlib.suppress(duckdb.Error):
            con.execute(f"DROP TABLE IF EXISTS {table}")


# The start of a line as the writer writes each record (spool.record: kind first, compact JSON).
_LINE_START = b'{"kind":"'
# Kinds read from a part of their own; a repeated kind (kept once by its key) stays with the other lines.
_OWN_PART = frozenset(kind.encode() for kind in TABLES if kind not in REPEATED)


def _split_by_kind(files: list[bytes], by_line: bool) -> dict[str | None, list[bytes]]:
    """The batch's lines by kind: for each kind of _OWN_PART, the lines that start `{"kind":"<kind>",`;
    under None every other line. Each line goes to exactly one part. Unless `by_line`, a kind's part
    runs from the first line of that start in a file to the last, as the writer groups them (a few
    searches per kind instead of a step per line); what each record holds is checked once DuckDB has
    read it (_read_parts)."""
    parts: dict[str | None, list[bytes]] = {}
    for data in files:  # each file's data ends with a newline (ingest._ingest_batch quarantines one that does not)
        for kind, start, end in _line_blocks(data) if by_line else _writer_blocks(data):
            parts.setdefault(kind, []).append(data[start:end])
    return parts


def _line_kind(data: bytes, pos: int) -> tuple[str | None, int]:
    """The kind of _OWN_PART the line at `pos` starts with as the writer writes it, and where its
    prefix `{"kind":"<kind>",` ends; (None, pos) for a line of another start."""
    if not data.startswith(_LINE_START, pos):
        return None, pos
    quote = data.find(b'"', pos + len(_LINE_START), pos + 64)
    if quote < 0 or data[pos + len(_LINE_START):quote] not in _OWN_PART or data[quote + 1:quote + 2] != b",":
        return None, pos
    return data[pos + len(_LINE_START):quote].decode(), quote + 2


def _writer_blocks(data: bytes) -> list[tuple[str | None, int, int]]:
    """(kind, start, end): from each line of a kind of _OWN_PART to the last line of the file that
    starts as it does, then on from there."""
    blocks, pos = [], 0
    while pos < len(data):
        kind, prefix_end = _line_kind(data, pos)
        last = -1 if kind is None else data.rfind(b"\n" + data[pos:prefix_end], pos)
        end = data.index(b"\n", pos if last < 0 else last + 1) + 1
        blocks.append((kind, pos, end))
        pos = end
    return blocks


def _line_blocks(data: bytes) -> list[tuple[str | None, int, int]]:
    """(kind, start, end) of each line."""
    blocks, pos = [], 0
    while pos < len(data):
        end = data.index(b"\n", pos) + 1
        blocks.append((_line_kind(data, pos)[0], pos, end))
        pos = end
    return blocks


def _late_missing(kind: str) -> str:
    """A second ORDER BY term, true when a record lacks its late fields (spool.LATE): ordered last, so
    DISTINCT ON keeps the fullest record. None for a kind without late fields (DuckDB refuses a constant)."""
    late = LATE.get(kind, ())
    return ", (" + " AND ".join(f'"{c}" IS NULL' for c in late) + ")" if late else ""


def on_conflict(kind: str) -> str:
    """The row already there keeps its fields; a late field is filled in when this record has it."""
    table, key = TABLES[kind], REPEATED[kind]
    if not LATE.get(kind):
        return f"ON CONFLICT ({key}) DO NOTHING"
    sets = ", ".join(f'"{c}" = coalesce(EXCLUDED."{c}", {table}."{c}")' for c in LATE[kind])
    return f"ON CONFLICT ({key}) DO UPDATE SET {sets}"

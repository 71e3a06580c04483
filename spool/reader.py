"""The exact (slow) reading of one spool file: every problem named with its line.

The collector's fast path lets DuckDB read a whole batch of files; when DuckDB
refuses a batch, each file is read here instead, so a bad file is quarantined
with a reason a person can act on and the good files of the batch still go in.
Whatever the bytes, it returns typed tables or raises BadSpoolFile, never anything else.
"""

from __future__ import annotations

import json

import pyarrow as pa

from .contract import SCHEMA_VERSION, TABLES

_ARROW_TYPES = {"VARCHAR": pa.string(), "JSON": pa.string(), "INTEGER": pa.int32(),
                "BIGINT": pa.int64(), "DOUBLE": pa.float64(), "BOOLEAN": pa.bool_(),
                "TIMESTAMP WITH TIME ZONE": pa.string()}


# What Arrow raises for a value that does not fit its column (a lone surrogate is a UnicodeEncodeError).
_UNFIT = (pa.ArrowInvalid, pa.ArrowTypeError, TypeError, ValueError, OverflowError)


class BadSpoolFile(ValueError):
    """A spool file that cannot be ingested; the message is the quarantine reason."""


def table_schemas(con) -> dict[str, dict]:
    """For each record table: its columns and types, Arrow schema and required (NOT NULL) columns."""
    rows = con.execute(
        "SELECT table_name, column_name, data_type, is_nullable FROM information_schema.columns "
        "WHERE list_contains($tables, table_name) ORDER BY table_name, ordinal_position",
        {"tables": list(TABLES.values())},
    ).fetchall()
    schemas: dict[str, dict] = {}
    for table, column, dtype, nullable in rows:
        entry = schemas.setdefault(table, {"columns": {}, "required": [], "json": []})
        entry["columns"][column] = dtype
        if nullable == "NO":
            entry["required"].append(column)
        if dtype == "JSON":
            entry["json"].append(column)
    for entry in schemas.values():
        entry["schema"] = pa.schema([pa.field(c, _ARROW_TYPES.get(t, pa.string()))
                                     for c, t in entry["columns"].items()])
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
        except RecursionError:
            raise BadSpoolFile(f"line {lineno}: JSON nested too deeply to read") from None
        if not isinstance(obj, dict):
            raise BadSpoolFile(f"line {lineno}: expected a JSON object, got {type(obj).__name__}")
        kind = obj.get("kind")
        if not isinstance(kind, str) or kind not in TABLES:
            raise BadSpoolFile(f"line {lineno}: unknown record kind {kind!r} (allowed: {', '.join(TABLES)})")
        if obj.get("schema_version") != SCHEMA_VERSION:
            raise BadSpoolFile(f"line {lineno}: unsupported schema_version {obj.get('schema_version')!r} "
                               f"(this collector reads {SCHEMA_VERSION})")
        table = TABLES[kind]
        missing = [c for c in schemas[table]["required"] if obj.get(c) is None]
        if missing:
            raise BadSpoolFile(f"line {lineno}: {kind} record lacks {', '.join(missing)}")
        for column in schemas[table]["json"]:
            if column in obj and not isinstance(obj[column], str):
                obj[column] = json.dumps(obj[column])  # nested no deeper than the line it was read from
        rows.setdefault(table, []).append((lineno, obj))
    # 3. Typed Arrow tables: a value of the wrong type is refused, with its line.
    tables = {}
    for table, numbered in rows.items():
        try:
            tables[table] = pa.Table.from_pylist([obj for _, obj in numbered], schema=schemas[table]["schema"])
        except _UNFIT:
            for lineno, obj in numbered:
                try:
                    pa.Table.from_pylist([obj], schema=schemas[table]["schema"])
                except _UNFIT as exc:
                    raise BadSpoolFile(f"line {lineno}: a {table[:-1]} value does not fit the schema ({exc})") from None
            raise
    return tables

"""A person's own SQL (the SQL page): it reaches the warehouse's tables and views and nothing else.

Three layers, each of which stops most attacks alone:
1. Only read statements run: one SELECT (or FROM, WITH, VALUES, SHOW, DESCRIBE, SUMMARIZE), or an EXPLAIN
   of one. Anything else (COPY, EXPORT, ATTACH, INSTALL, LOAD, SET, PRAGMA, CREATE, INSERT, ...) is refused
   before it runs.
2. The statement runs on a private in-memory DuckDB that attaches the warehouse file read-only, then
   turns off external access (files, folders, network, extensions), Python replacement scans and
   spilling to disk, and locks its configuration so no statement can turn them back on.
3. A timer interrupts a query that runs past its time limit, and at most `max_rows` rows are fetched
   (one more, to tell whether there were more): a huge result is never materialised.

Why a private instance rather than db.reader: DuckDB keeps one database instance per file per process
and these settings are global to it. SET on that instance, they reach every other reader of the file
open in this process at the time; passed as `config` at connect, they make DuckDB refuse the connection
("different configuration") while any other reader has the file open, and refuse those readers while
the sandbox has it. Attaching the file from `:memory:` keeps the sandbox to itself, beside plain readers.
"""

from __future__ import annotations

import contextlib
import os
import re
import threading
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from .db import no_warehouse, open_retrying

CATALOG = "warehouse"  # the name the attached file goes by: warehouse.main.jobs
MEMORY_LIMIT = "1GB"
REFUSED = "The SQL page reads the warehouse only"
ALLOWED = "one SELECT (or FROM, WITH, VALUES, SHOW, DESCRIBE, SUMMARIZE), or EXPLAIN of one"

# Set before the warehouse is attached (the engine refuses some of them later).
CONNECT_CONFIG = {
    "autoinstall_known_extensions": False,
    "autoload_known_extensions": False,
    "allow_community_extensions": False,
    "allow_unsigned_extensions": False,
    "python_enable_replacements": False,  # a bare name in FROM must not scan a Python variable
    "python_scan_all_frames": False,
    "temp_directory": "",  # no spilling: a query past the memory limit fails instead of writing files
}

_EXPLAIN = re.compile(r"^\s*explain\s+(analyze\s+)?(\([^)]*\)\s*)?", re.I)


class SqlRefused(PermissionError):
    """A person's statement would reach past the warehouse's tables and views."""


class QueryTimeout(RuntimeError):
    """A person's query ran past the time limit and was interrupted."""


@dataclass(frozen=True)
class SqlResult:
    """At most the row cap of a query's rows; `truncated` when the query had more."""
    frame: pd.DataFrame
    truncated: bool


def _quote(text: str, limit: int = 80) -> str:
    text = " ".join(text.split()).rstrip(";")
    return repr(text if len(text) <= limit else text[:limit] + "...")


def _refused(what: str) -> SqlRefused:
    return SqlRefused(f"{REFUSED}: {what}")


def _kind(statement):
    """The statement's type; None for one the bindings do not name (UPDATE EXTENSIONS raises ValueError)."""
    try:
        return statement.type
    except ValueError:
        return None


def _keyword(text: str) -> str:
    return (text.split(maxsplit=1) or ["an empty statement"])[0].upper()


def _refused_part(statement) -> str | None:
    """None for a read statement; else what is refused in it: 'COPY', 'EXPLAIN of COPY'."""
    kind = _kind(statement)
    if kind == duckdb.StatementType.SELECT:
        return None
    explain = _EXPLAIN.match(statement.query) if kind == duckdb.StatementType.EXPLAIN else None
    if explain is None:
        return _keyword(statement.query)
    explained = statement.query[explain.end():]
    inner = duckdb.extract_statements(explained)
    if len(inner) == 1 and _kind(inner[0]) == duckdb.StatementType.SELECT:
        return None
    return f"EXPLAIN of {_keyword(explained)}"


def check_sql(sql: str) -> None:
    """Refuse (SqlRefused) anything but one read statement; a syntax error raises DuckDB's ParserException."""
    statements = duckdb.extract_statements(sql)
    if len(statements) != 1:
        raise _refused(f"{len(statements)} statements given ({_quote(sql)}); it runs {ALLOWED}")
    refused = _refused_part(statements[0])
    if refused is not None:
        raise _refused(f"{refused} is refused ({_quote(statements[0].query)}); it runs {ALLOWED}")


@contextlib.contextmanager
def connect(db_path: str, memory_limit: str = MEMORY_LIMIT, wait_s: float = 2.0):
    """A locked-down connection that sees the warehouse read-only and nothing else; closed on exit."""
    path = str(db_path)
    if not Path(path).is_file() or not os.access(path, os.R_OK):
        raise no_warehouse(path)
    # 1. A private in-memory instance, its extension, replacement-scan and spilling settings fixed at start.
    con = duckdb.connect(":memory:", config={**CONNECT_CONFIG, "memory_limit": memory_limit})
    try:
        # 2. The warehouse, read-only, as the default catalog, retried while a writer holds it.
        open_retrying(path, lambda: con.execute(f"ATTACH ? AS {CATALOG} (READ_ONLY)", [path]), wait_s)
        con.execute(f"USE {CATALOG}")
        # 3. No files, folders, network or extensions from here on; then no setting can change.
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
        yield con
    finally:
        con.close()


def _engine_refusal(exc: Exception) -> SqlRefused | None:
    """DuckDB's own sandbox errors, as one clear line; None for any other error."""
    first_line = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, duckdb.PermissionException):
        return _refused(f"files, folders and the network are out of reach ({first_line})")
    if "configuration has been locked" in first_line:
        return _refused(f"settings cannot be changed ({first_line})")
    return None


def run_sql(db_path: str, sql: str, max_rows: int = 1000, time_limit_s: float = 10.0) -> SqlResult:
    """A person's SQL, sandboxed: at most `max_rows` rows, stopped after `time_limit_s` seconds.

    SqlRefused for a statement that would reach past the warehouse; QueryTimeout past the limit;
    any other DuckDB error (syntax, unknown table) as DuckDB raised it.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows!r}")
    check_sql(sql)
    with connect(db_path) as con:
        stopped = threading.Event()

        def stop():
            stopped.set()
            con.interrupt()  # DuckDB's documented way to stop a running query

        timer = threading.Timer(time_limit_s, stop)
        timer.start()
        try:
            frame = con.sql(sql).limit(max_rows + 1).df()
        except duckdb.Error as exc:
            if stopped.is_set() and isinstance(exc, duckdb.InterruptException):
                raise QueryTimeout(f"the query ran past the {time_limit_s:g} s limit and was stopped") from None
            refusal = _engine_refusal(exc)
            if refusal is not None:
                raise refusal from None
            raise
        finally:
            timer.cancel()
    return SqlResult(frame.head(max_rows), truncated=len(frame) > max_rows)

"""A person's own SQL (the SQL page): it reaches the warehouse's tables and views and nothing else.

Three layers, each of which stops most attacks alone:
1. Only read statements run: one SELECT (or FROM, WITH, VALUES, SHOW, DESCRIBE, SUMMARIZE), or an EXPLAIN
   of one. Anything else (COPY, EXPORT, ATTACH, INSTALL, LOAD, SET, PRAGMA, CREATE, INSERT, ...) is refused
   before it runs.
2. The statement runs on a private in-memory DuckDB that attaches the warehouse file read-only, then
   turns off external access (files, folders, network, extensions), Python replacement scans and
   spilling to disk, and locks its configuration so no statement can turn them back on.
3. The query runs in a process of its own (a child of a fork server that has this module loaded): a
   timer there interrupts it at its time limit (DuckDB's connection.interrupt()); one that does not stop
   (an interrupt is only seen between chunks: `repeat('x', 2000000000)` builds one 2 GB string first) is
   killed at 1.5 times the limit. So a query ends within twice its limit whatever it does, and whatever
   memory it takes goes with its process, never the dashboard's. At most `max_rows` rows are fetched
   (one more, to tell whether there were more), and a result over `MAX_RESULT_BYTES` is refused.
   The fork server imports the caller's main script once, so a script that calls run_sql keeps its work
   under `if __name__ == "__main__":` (streamlit, pytest and `python -m` need nothing).

Why a private instance rather than db.reader: DuckDB keeps one database instance per file per process
and these settings are global to it. SET on that instance, they reach every other reader of the file
open in this process at the time; passed as `config` at connect, they make DuckDB refuse the connection
("different configuration") while any other reader has the file open, and refuse those readers while
the sandbox has it. Attaching the file from `:memory:` keeps the sandbox to itself, beside plain readers.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import pickle
import re
import threading
import time
from dataclasses import dataclass

import duckdb
import pandas as pd

from .db import open_retrying, require_readable

CATALOG = "warehouse"  # the name the attached file goes by: warehouse.main.jobs
MEMORY_LIMIT = "1GB"
MAX_RESULT_BYTES = 64 * 2**20  # the most a result may hold in memory to be sent back to the page
KILL_AFTER = 1.5  # times the time limit: a query the interrupt has not stopped by then is killed
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
    """A person's query ran past the time limit and was interrupted (or its process killed)."""


class ResultTooLarge(RuntimeError):
    """A person's query returned more bytes than the page may receive."""


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
    require_readable(path)
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


def run_in_process(db_path: str, sql: str, max_rows: int = 1000, time_limit_s: float = 10.0) -> SqlResult:
    """The query on a sandboxed connection in this process, interrupted at `time_limit_s`: what the query's own
    process runs (run_sql). Called directly, a query that ignores the interrupt holds this process."""
    check_sql(sql)
    started = time.monotonic()
    with connect(db_path) as con:
        stopped = threading.Event()

        def stop():
            stopped.set()
            con.interrupt()  # DuckDB's documented way to stop a running query

        timer = threading.Timer(max(0.0, time_limit_s - (time.monotonic() - started)), stop)
        timer.start()
        try:
            frame = con.sql(sql).limit(max_rows + 1).df()
        except duckdb.Error as exc:
            if stopped.is_set() and isinstance(exc, duckdb.InterruptException):
                raise _timeout(time_limit_s, time.monotonic() - started) from None
            refusal = _engine_refusal(exc)
            if refusal is not None:
                raise refusal from None
            raise
        finally:
            timer.cancel()
    return SqlResult(frame.head(max_rows), truncated=len(frame) > max_rows)


def _timeout(time_limit_s: float, elapsed_s: float) -> QueryTimeout:
    return QueryTimeout(f"the query ran past the {time_limit_s:g} s limit and was stopped after {elapsed_s:.1f} s")


def _too_large(size: int, max_bytes: int) -> ResultTooLarge:
    return ResultTooLarge(f"the result holds {size / 2**20:.0f} MiB, over the {max_bytes / 2**20:g} MiB a page "
                          "receives: select fewer columns or rows, or shorter values")


def _in_child(conn, db_path: str, sql: str, max_rows: int, time_limit_s: float, max_bytes: int) -> None:
    """The query's own process: its result, or the error it raised, pickled back through `conn`."""
    try:
        result = run_in_process(db_path, sql, max_rows, time_limit_s)
        size = int(result.frame.memory_usage(deep=True).sum())
        payload = pickle.dumps(result) if size <= max_bytes else None
        if payload is None or len(payload) > max_bytes:
            raise _too_large(size if payload is None else len(payload), max_bytes)
    except BaseException as exc:  # everything goes back to the caller, as it was raised where possible
        try:
            payload = pickle.dumps(("error", exc))
        except Exception:
            payload = pickle.dumps(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
    conn.send_bytes(payload)
    conn.close()


_context = multiprocessing.get_context("forkserver")
# Each query's process starts with duckdb and this module loaded, and the main module already imported (once, in
# the fork server: a process of a fork server otherwise runs the main script again before its target).
_context.set_forkserver_preload(["__main__", __name__])


def run_sql(db_path: str, sql: str, max_rows: int = 1000, time_limit_s: float = 10.0,
            max_bytes: int = MAX_RESULT_BYTES) -> SqlResult:
    """A person's SQL, sandboxed: at most `max_rows` rows, stopped after `time_limit_s` seconds (interrupted
    at the limit, its process killed at 1.5 times it), at most `max_bytes` of result.

    SqlRefused for a statement that would reach past the warehouse; QueryTimeout past the limit;
    ResultTooLarge past `max_bytes`; NoWarehouse, WarehouseBusy, CorruptWarehouse for the file; any other
    DuckDB error (syntax, unknown table) as DuckDB raised it.
    """
    if max_rows < 1:
        raise ValueError(f"max_rows must be at least 1, got {max_rows!r}")
    if time_limit_s <= 0:
        raise ValueError(f"time_limit_s must be positive, got {time_limit_s!r}")
    check_sql(sql)  # refused here, before a process starts
    receive, send = _context.Pipe(duplex=False)
    child = _context.Process(target=_in_child, args=(send, str(db_path), sql, max_rows, time_limit_s, max_bytes),
                             daemon=True, name="sql-sandbox")
    child.start()
    started = time.monotonic()
    send.close()
    try:
        if not receive.poll(KILL_AFTER * time_limit_s):
            child.kill()
            raise _timeout(time_limit_s, time.monotonic() - started)
        try:
            answer = pickle.loads(receive.recv_bytes())
        except EOFError:  # the process ended without an answer (out of memory, a crash)
            raise RuntimeError(f"the query's process ended without a result (exit code {child.exitcode})") from None
    finally:
        receive.close()
        if child.is_alive():
            child.kill()
        child.join()
    if isinstance(answer, tuple) and answer and answer[0] == "error":
        raise answer[1]
    return answer

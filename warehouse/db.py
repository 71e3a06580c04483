"""Connections to the DuckDB warehouse.

DuckDB allows one read-write process or many read-only ones, never both. So the
collector opens the file read-write only for an ingest batch, and readers open it
read-only per query; either side retries a lock conflict with a bounded back-off.
Nothing here holds a connection open between calls.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import logging
import os
import re
import sys
import time
import tomllib
from pathlib import Path

import duckdb
import pyarrow as pa

from settings import WAREHOUSE_DB, path

SCHEMA_PATH = Path(__file__).with_name("schema.sql")
PAPERS_PATH = Path(__file__).with_name("papers.toml")
PUBLISHED_PATH = Path(__file__).with_name("published.toml")
log = logging.getLogger("warehouse")


class WarehouseBusy(RuntimeError):
    """Another process holds the warehouse file in a conflicting mode."""


class NoWarehouse(FileNotFoundError):
    """The warehouse file does not exist yet (nothing was ingested)."""


class CorruptWarehouse(RuntimeError):
    """The warehouse file is not a readable DuckDB database (truncated, overwritten, damaged)."""


# What DuckDB says of a file that is not a database, or a damaged one.
_CORRUPT_SIGNS = ("not a valid duckdb database", "could not read enough bytes", "corrupt database file")


def is_damage(exc: Exception) -> bool:
    """Whether a DuckDB error says the warehouse file itself is damaged or not a database."""
    return any(sign in str(exc).lower() for sign in _CORRUPT_SIGNS)


def _corrupt(path: str, exc: Exception) -> CorruptWarehouse:
    first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    return CorruptWarehouse(
        f"warehouse {path!r} is damaged or not a DuckDB file ({first}); move it aside and run the "
        "collector again: the spool's done/ folder keeps every ingested file to re-ingest from")


def default_db_path() -> str:
    """The warehouse file: env WAREHOUSE_DB, else data/warehouse.duckdb (settings.py)."""
    return path(WAREHOUSE_DB)


def server_db_path(argv: list[str] | None = None) -> str:
    """The dashboard's warehouse, fixed when the server starts: `streamlit run dashboard.py -- --warehouse PATH`,
    else env WAREHOUSE_DB, else the default (settings.py). `argv` is the script's arguments (sys.argv[1:])."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--warehouse")
    given, _ = parser.parse_known_args(sys.argv[1:] if argv is None else argv)
    return given.warehouse or default_db_path()


def require_readable(path: str) -> None:
    """NoWarehouse unless `path` is a file this process may read, with one message for a file that is missing and
    one that cannot be opened: neither tells the other apart."""
    if not Path(path).is_file() or not os.access(path, os.R_OK):
        raise NoWarehouse(f"no warehouse at {path!r} yet (or it cannot be read): run `python -m collector ingest` "
                          "after a sweep")


def _is_lock_error(exc: Exception) -> bool:
    text = str(exc).lower()
    return "lock" in text or "different configuration" in text or "already attached" in text


def open_retrying(path: str, open_fn, wait_s: float, first_backoff_s: float = 0.05):
    """`open_fn()` (a connect or an ATTACH of `path`), retried with a bounded back-off while another
    connection holds the file: WarehouseBusy after `wait_s`; CorruptWarehouse for a damaged file."""
    deadline = time.monotonic() + wait_s
    backoff = first_backoff_s
    while True:
        try:
            return open_fn()
        except duckdb.Error as exc:
            if is_damage(exc):
                raise _corrupt(path, exc) from None
            lock = isinstance(exc, (duckdb.IOException, duckdb.ConnectionException, duckdb.ResourceInUseException))
            if not lock or not _is_lock_error(exc):
                raise
            if time.monotonic() + backoff > deadline:
                raise WarehouseBusy(f"warehouse {path!r} is busy (held by another process): {exc}") from None
            log.warning("warehouse busy, retrying in %.2f s", backoff)
            time.sleep(backoff)
            backoff = min(backoff * 2, 1.0)


def _connect_retrying(path: str, read_only: bool, wait_s: float):
    return open_retrying(path, lambda: duckdb.connect(path, read_only=read_only), wait_s)


_MIGRATION = re.compile(r"^-- migration (\d+): (.+)$", re.M)
_VIEWS = re.compile(r"^-- views$", re.M)


def schema_parts(text: str | None = None) -> tuple[list[tuple[int, str, str]], str]:
    """schema.sql split into [(number, name, sql)] migrations and the views block."""
    text = SCHEMA_PATH.read_text() if text is None else text
    views_at = _VIEWS.search(text)
    body, views = (text[:views_at.start()], text[views_at.end():]) if views_at else (text, "")
    marks = list(_MIGRATION.finditer(body))
    migrations = [(int(m.group(1)), m.group(2).strip(), body[m.end(): nxt.start() if nxt else len(body)])
                  for m, nxt in zip(marks, marks[1:] + [None])]
    numbers = [n for n, _, _ in migrations]
    if numbers != list(range(1, len(numbers) + 1)):
        raise ValueError(f"schema.sql migrations must be numbered 1, 2, 3, ... in order, got {numbers}")
    return migrations, views


def schema_fingerprint() -> str:
    """What apply_schema would make of a warehouse: a hash of schema.sql and papers.toml."""
    return hashlib.sha256(SCHEMA_PATH.read_bytes() + b"\0" + PAPERS_PATH.read_bytes()).hexdigest()


def apply_schema(con) -> list[int]:
    """Apply the migrations not yet applied, in order, each in one transaction; re-create the views and
    reload the papers, unless the warehouse already holds this version's (the schema_fingerprint in schema_state:
    re-creating the views and reloading the papers on every open cost each small ingest about 30 ms, a
    third of its time)."""
    con.execute("CREATE TABLE IF NOT EXISTS schema_migrations ("
                "version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL)")
    done = {r[0] for r in con.execute("SELECT version FROM schema_migrations").fetchall()}
    migrations, views = schema_parts()
    fingerprint = schema_fingerprint()
    if {n for n, _, _ in migrations} <= done and _stored_fingerprint(con) == fingerprint:
        return []
    applied = []
    for number, name, sql in migrations:
        if number in done:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [number, name])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise
        log.info("warehouse: applied migration %d (%s)", number, name)
        applied.append(number)
    if views.strip():
        con.execute(views)
    load_papers(con)
    # Last, so that a crash before it leaves the views and papers to be made again on the next open.
    con.execute("BEGIN TRANSACTION")
    con.execute("DELETE FROM schema_state")
    con.execute("INSERT INTO schema_state VALUES (?, now())", [fingerprint])
    con.execute("COMMIT")
    return applied


def _stored_fingerprint(con) -> str | None:
    row = con.execute("SELECT max(fingerprint) FROM schema_state").fetchone()
    return row[0] if row else None


def published_rows(path: Path = PUBLISHED_PATH) -> list[dict]:
    """The published figures as published.toml gives them (one dict per [[figure]]); analysis.published_figures
    puts them on the page's footing."""
    return tomllib.loads(path.read_text())["figure"]


def load_papers(con) -> None:
    """Replace the rows of `papers` with papers.toml's."""

    rows = tomllib.loads(PAPERS_PATH.read_text())["paper"]
    con.register("paper_rows", pa.Table.from_pylist(rows))
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute("DELETE FROM papers")
        con.execute("INSERT INTO papers BY NAME SELECT * FROM paper_rows")
        con.execute("COMMIT")
    finally:
        con.unregister("paper_rows")


@contextlib.contextmanager
def writer(path: str | os.PathLike, wait_s: float = 30.0):
    """A read-write connection with the schema applied; closed on exit."""
    path = str(path)
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    con = _connect_retrying(path, read_only=False, wait_s=wait_s)
    try:
        with damage_named(path):
            apply_schema(con)
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def reader(path: str | os.PathLike, wait_s: float = 2.0):
    """A short-lived read-only connection; WarehouseBusy after `wait_s` of lock conflicts."""
    path = str(path)
    require_readable(path)
    con = _connect_retrying(path, read_only=True, wait_s=wait_s)
    try:
        yield con
    finally:
        con.close()


@contextlib.contextmanager
def held(path: str | os.PathLike, wait_s: float = 2.0):
    """One read-only connection kept open for a block (a dashboard page's render). DuckDB shares a database
    that is open in this process with every connection opened to it meanwhile, so each reader() of the block
    skips loading the file again (16 ms a query on the demo's warehouse, 0.4 ms held). Nothing is held when
    the file cannot be opened: the block's own readers meet that and say so. The collector waits for the
    block to end (its busy wait) as it waits for any reader."""
    path, con = str(path), None
    with contextlib.suppress(NoWarehouse, WarehouseBusy, CorruptWarehouse, duckdb.Error):
        require_readable(path)
        con = _connect_retrying(path, read_only=True, wait_s=wait_s)
    try:
        yield
    finally:
        if con is not None:
            con.close()


@contextlib.contextmanager
def damage_named(path: str | os.PathLike):
    """A DuckDB error that says the file is damaged becomes CorruptWarehouse; others pass through."""
    try:
        yield
    except duckdb.Error as exc:
        if is_damage(exc):
            raise _corrupt(str(path), exc) from None
        raise


def query_df(path: str | os.PathLike, sql: str, params: list | dict | None = None):
    """Run one read-only query and return a pandas DataFrame."""
    with reader(path) as con, damage_named(str(path)):
        return con.execute(sql, params or []).df()

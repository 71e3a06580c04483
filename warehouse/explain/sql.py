"""The SQL page: what a person's query may do, and what became of it."""

from __future__ import annotations


def limits(max_rows: int, time_limit_s: float) -> str:
    """What the page runs and for how long."""
    return (f"Reads the warehouse only: one read query (select, or explain of one) over its tables and views; "
            f"no files, network, extensions or settings. At most {max_rows} rows are shown; a query is stopped "
            f"after {time_limit_s:g} s.")


def stopped(reason: str) -> str:
    """A query stopped at its time limit or refused for its size (`reason`: the sandbox's message)."""
    return f"Stopped: {reason}. Narrow it down (a WHERE clause, a LIMIT) and try again."


def failed(kind: str, message: str) -> str:
    """A person's query that DuckDB refused (syntax, unknown table): its error, as DuckDB gave it."""
    return f"{kind}: {message}"


def rows(shown: int, truncated: bool, max_rows: int) -> str:
    return f"showing the first {max_rows} rows" if truncated else f"{shown} rows"

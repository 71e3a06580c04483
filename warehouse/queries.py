"""Named, parameterised queries the dashboard uses; each returns a pandas DataFrame.

Every function takes the warehouse path first and opens a short read-only
connection (db.query_df), so callers never hold the file.
"""

from __future__ import annotations

import pandas as pd

from . import db

RUN_LABEL = ("r.task || ' ' || r.height || 'x' || r.width || ' ' || r.mode "
             "|| ' (' || right(r.run_id, 8) || ')'")


def sweeps(db_path: str) -> pd.DataFrame:
    """One row per sweep, newest first: sweep_id, started_at, runs, tasks, sizes."""
    return db.query_df(db_path, """
        SELECT sweep_id,
               min(started_at)                                       AS started_at,
               count(*)                                              AS runs,
               string_agg(DISTINCT task, ', ' ORDER BY task)         AS tasks,
               string_agg(DISTINCT height || 'x' || width, ', ')     AS sizes,
               any_value(model_id)                                   AS model_id,
               any_value(device)                                     AS device
        FROM runs
        GROUP BY sweep_id
        ORDER BY started_at DESC
    """)


def runs(db_path: str, sweep_id: str | None = None) -> pd.DataFrame:
    """Runs (of one sweep, or all), newest first, with a readable label and job counts."""
    return db.query_df(db_path, f"""
        SELECT r.*, {RUN_LABEL} AS label,
               count(j.job_id)                                   AS jobs,
               count(j.job_id) FILTER (WHERE j.status <> 'ok')   AS failed_jobs
        FROM runs r LEFT JOIN jobs j USING (run_id)
        WHERE $sweep_id IS NULL OR r.sweep_id = $sweep_id
        GROUP BY ALL
        ORDER BY r.started_at DESC, r.height, r.width
    """, {"sweep_id": sweep_id})


def throughput(db_path: str, run_ids: list[str]) -> pd.DataFrame:
    """throughput_by_batch for the given runs, with each run's label, task and size."""
    return db.query_df(db_path, f"""
        SELECT t.*, {RUN_LABEL} AS label, r.task, r.height, r.width, r.mode, r.device, r.model_id
        FROM throughput_by_batch t JOIN runs r USING (run_id)
        WHERE list_contains($run_ids, t.run_id)
        ORDER BY r.height, r.width, t.run_id, t.batch_size
    """, {"run_ids": list(run_ids)})


def run_sql(db_path: str, sql: str, max_rows: int = 1000) -> pd.DataFrame:
    """A person's own SQL on a read-only connection, at most `max_rows` rows."""
    with db.reader(db_path) as con:
        relation = con.sql(sql)
        if relation is None:  # a statement that returns no rows
            return pd.DataFrame()
        return relation.limit(max_rows).df()


def schema_objects(db_path: str) -> pd.DataFrame:
    """Tables and views with their columns, for the SQL page's reference list."""
    return db.query_df(db_path, """
        SELECT c.table_name AS name,
               CASE WHEN v.view_name IS NULL THEN 'table' ELSE 'view' END AS type,
               string_agg(c.column_name || ' ' || c.data_type, ', ' ORDER BY c.ordinal_position) AS columns
        FROM information_schema.columns c
        LEFT JOIN duckdb_views() v ON v.view_name = c.table_name AND NOT v.internal
        WHERE c.table_schema = 'main'
        GROUP BY ALL
        ORDER BY type, name
    """)

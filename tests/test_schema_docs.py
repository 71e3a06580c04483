"""Every table and view of schema.sql is documented in warehouse/README.md, with its columns."""

import re

import duckdb

from warehouse import db, queries
from warehouse.queries import Warehouse

from .conftest import ROOT


def test_every_table_view_and_column_is_documented(tmp_path):
    doc = (ROOT / "warehouse" / "README.md").read_text()
    with db.writer(tmp_path / "w.duckdb") as con:
        objects = con.execute(
            "SELECT table_name, list(column_name) FROM information_schema.columns "
            "WHERE table_schema = 'main' GROUP BY table_name").fetchall()
        views = {r[0] for r in con.execute("SELECT view_name FROM duckdb_views() WHERE NOT internal").fetchall()}
    headings = set(re.findall(r"^### (\w+)$", doc, re.M))
    assert {"measured_jobs", "throughput_by_batch", "step_times", "phase_breakdown", "op_mix", "telemetry",
            "jobs_failed"} <= views
    for name, columns in objects:
        assert name in headings, f"{name} has no section in warehouse/README.md"
        section = doc.split(f"### {name}\n", 1)[1].split("\n### ", 1)[0]
        for column in columns:
            assert re.search(rf"\b{re.escape(column)}\b", section), f"{name}.{column} is not documented"


def test_the_readme_example_runs_read_only(tmp_path, warehouse):
    con = duckdb.connect(warehouse, read_only=True)
    try:
        assert con.sql("SELECT * FROM throughput_by_batch").fetchall()
        for view in ("measured_jobs", "step_times", "phase_breakdown", "telemetry", "jobs_failed", "op_mix"):
            con.execute(f"SELECT * FROM {view} LIMIT 1")
    finally:
        con.close()


def test_the_measured_job_filter_is_written_once():
    """Warm-up, profiled and failed jobs are left out in one place, the view measured_jobs; every other
    view and named query that needs measured jobs reads it."""
    schema = (ROOT / "warehouse" / "schema.sql").read_text()
    queries_py = (ROOT / "warehouse" / "queries.py").read_text()
    views = schema.split("\n-- views\n", 1)[1]
    filters = [line for line in (views + queries_py).splitlines()
               if re.search(r"NOT \w+\.?warmup|coalesce\(\w+\.?profiled", line)]
    assert filters == ["WHERE NOT j.warmup AND NOT coalesce(j.profiled, false) AND j.status = 'ok';"]
    definition = views.split("CREATE OR REPLACE VIEW measured_jobs AS", 1)[1].split(";", 1)[0]
    assert "status = 'ok'" in definition
    for reader in ("throughput_by_batch", "phase_breakdown"):
        body = views.split(f"CREATE OR REPLACE VIEW {reader} AS", 1)[1].split(";", 1)[0]
        assert "measured_jobs" in body and "FROM jobs" not in body, reader
    for query in ("def step_profile(", "def stream_latency("):
        body = queries_py.split(query, 1)[1].split("\n    def ", 1)[0]  # a method of Warehouse
        assert "measured_jobs" in body and "warmup" not in body, query


def test_every_example_query_of_the_sql_page_runs(warehouse):
    for name, sql in queries.EXAMPLE_QUERIES.items():
        result = Warehouse(warehouse).run_sql(sql, max_rows=50)
        assert len(result.frame.columns) > 0, name
    assert len(Warehouse(warehouse).run_sql(queries.EXAMPLE_QUERIES["Effects and papers"]).frame) >= 8

"""SQL: a person's own query against the warehouse's tables and views, sandboxed, with a time limit and a row cap."""

import os

import streamlit as st

from pages._shared import guarded, warehouse
from warehouse import queries, sandbox
from warehouse.db import CorruptWarehouse, NoWarehouse, WarehouseBusy

MAX_ROWS = 1000
TIME_LIMIT_S = float(os.environ.get("SQL_TIME_LIMIT_S") or 10.0)  # seconds before a query is stopped


def render():
    st.title("SQL")
    st.caption(f"Reads the warehouse only: one read query (select, or explain of one) over its tables and "
               f"views; no files, network, extensions or settings. At most {MAX_ROWS} rows are shown; a query is "
               f"stopped after {TIME_LIMIT_S:g} s.")
    example = st.selectbox("Example", list(queries.EXAMPLE_QUERIES))
    sql = st.text_area("Query", value=queries.EXAMPLE_QUERIES[example], height=140)
    if sql.strip():
        try:
            result = warehouse().run_sql(sql, MAX_ROWS, TIME_LIMIT_S)
        except sandbox.QueryTimeout as exc:
            st.error(f"Stopped: {exc}. Narrow it down (a WHERE clause, a LIMIT) and try again.")
        except sandbox.SqlRefused as exc:
            st.error(str(exc))
        except (NoWarehouse, WarehouseBusy, CorruptWarehouse):
            raise  # the warehouse itself, not the person's SQL: guarded() shows it
        except Exception as exc:  # a person's SQL: show the error, never raise it
            st.error(f"{type(exc).__name__}: {exc}")
        else:
            st.dataframe(result.frame, hide_index=True, width="stretch")
            st.caption(f"showing the first {MAX_ROWS} rows" if result.truncated else f"{len(result.frame)} rows")
    st.subheader("Tables and views")
    st.dataframe(warehouse().schema_objects(), hide_index=True, width="stretch")


guarded(render)

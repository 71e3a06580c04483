"""SQL: a person's own read-only query against the warehouse, with a time limit and a row cap."""

import os

import streamlit as st

from pages._shared import db_path, guarded, query
from warehouse import queries

MAX_ROWS = 1000
TIME_LIMIT_S = float(os.environ.get("SQL_TIME_LIMIT_S") or 10.0)  # seconds before a query is stopped


def render():
    st.title("SQL")
    st.caption(f"Read-only: no statement can change the warehouse. At most {MAX_ROWS} rows are shown; "
               f"a query is stopped after {TIME_LIMIT_S:g} s.")
    example = st.selectbox("Example", list(queries.EXAMPLE_QUERIES))
    sql = st.text_area("Query", value=queries.EXAMPLE_QUERIES[example], height=140)
    if sql.strip():
        try:
            result = queries.run_sql(db_path(), sql, MAX_ROWS, TIME_LIMIT_S)
        except queries.QueryTimeout as exc:
            st.error(f"Stopped: {exc}. Narrow it down (a WHERE clause, a LIMIT) and try again.")
        except Exception as exc:  # a person's SQL: show the error, never raise it
            if type(exc).__name__ in ("NoWarehouse", "WarehouseBusy"):
                raise
            text = str(exc)
            if "read-only" in text:
                st.error(f"This connection is read-only: the warehouse cannot be changed from here. ({text})")
            else:
                st.error(f"{type(exc).__name__}: {text}")
        else:
            st.dataframe(result, hide_index=True, width="stretch")
            st.caption(f"{len(result)} rows" + (" (the cap)" if len(result) == MAX_ROWS else ""))
    st.subheader("Tables and views")
    st.dataframe(query("schema_objects", db_path()), hide_index=True, width="stretch")


guarded(render)

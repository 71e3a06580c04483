"""SQL: a person's own read-only query against the warehouse."""

import streamlit as st

from pages._shared import db_path, guarded, query
from warehouse import queries

EXAMPLE = "SELECT * FROM throughput_by_batch ORDER BY run_id, batch_size"
MAX_ROWS = 1000


def render():
    st.title("SQL")
    st.caption(f"Read-only: the connection cannot change the warehouse. At most {MAX_ROWS} rows are shown.")
    sql = st.text_area("Query", value=EXAMPLE, height=120)
    if sql.strip():
        try:
            result = queries.run_sql(db_path(), sql, MAX_ROWS)
        except Exception as exc:  # a person's SQL: show the error, never raise it
            if type(exc).__name__ in ("NoWarehouse", "WarehouseBusy"):
                raise
            st.error(f"{type(exc).__name__}: {exc}")
        else:
            st.dataframe(result, hide_index=True, width="stretch")
            st.caption(f"{len(result)} rows")
    with st.expander("Tables and views"):
        st.dataframe(query("schema_objects", db_path()), hide_index=True, width="stretch")


guarded(render)

"""SQL: a person's own query against the warehouse's tables and views, sandboxed, with a time limit and a row cap."""

import os

import streamlit as st

from pages._shared import guarded, warehouse
from warehouse import queries, sandbox
from warehouse.db import CorruptWarehouse, NoWarehouse, WarehouseBusy
from warehouse.explain import sql

MAX_ROWS = 1000
TIME_LIMIT_S = float(os.environ.get("SQL_TIME_LIMIT_S") or 10.0)  # seconds before a query is stopped


def render():
    st.title("SQL")
    st.caption(sql.limits(MAX_ROWS, TIME_LIMIT_S))
    example = st.selectbox("Example", list(queries.EXAMPLE_QUERIES))
    statement = st.text_area("Query", value=queries.EXAMPLE_QUERIES[example], height=140)
    if statement.strip():
        try:
            result = warehouse().run_sql(statement, MAX_ROWS, TIME_LIMIT_S)
        except (sandbox.QueryTimeout, sandbox.ResultTooLarge) as exc:
            st.error(sql.stopped(str(exc)))
        except sandbox.SqlRefused as exc:
            st.error(str(exc))
        except (NoWarehouse, WarehouseBusy, CorruptWarehouse):
            raise  # the warehouse itself, not the person's SQL: guarded() shows it
        except Exception as exc:  # a person's SQL: show the error, never raise it
            st.error(sql.failed(type(exc).__name__, str(exc)))
        else:
            st.dataframe(result.frame, hide_index=True, width="stretch")
            st.caption(sql.rows(len(result.frame), result.truncated, MAX_ROWS))
    st.subheader("Tables and views")
    st.dataframe(warehouse().schema_objects(), hide_index=True, width="stretch")


guarded(render)

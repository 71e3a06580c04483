"""What every page needs: the chosen warehouse and sweep, cached queries, busy/empty states."""

from __future__ import annotations

import time

import streamlit as st

from warehouse import queries
from warehouse.db import NoWarehouse, WarehouseBusy

EMPTY_STATE = ("No runs yet: run `python -m generator sweep`, then `python -m collector ingest` "
               "(or keep `python -m collector watch` running).")


@st.cache_data(ttl=5, show_spinner=False)
def query(name: str, *args):
    """A named query from warehouse.queries, cached for a few seconds."""
    return getattr(queries, name)(*args)


def db_path() -> str:
    return st.session_state["db_path"]


def sweep_id() -> str | None:
    return st.session_state.get("sweep_id")


def guarded(fn):
    """Run a page body; a missing or busy warehouse becomes a message, not a traceback."""
    try:
        fn()
    except NoWarehouse:
        st.info(EMPTY_STATE)
    except WarehouseBusy:
        st.warning("Warehouse busy, retrying: the collector is writing. This page reloads by itself.")
        time.sleep(2)
        st.rerun()

"""What every page needs: the server's warehouse and the chosen sweep, cached queries, busy/empty states, paper links."""

from __future__ import annotations

import time

import streamlit as st
from streamlit.runtime.pages_manager import PagesManager

from warehouse import analysis, replicas
from warehouse.db import CorruptWarehouse, NoWarehouse, WarehouseBusy, server_db_path
from warehouse.explain import states
from warehouse.queries import Warehouse

PAPERS_PAGE = "/papers"


@st.cache_data(ttl=5, show_spinner=False)
def _rows(path: str, sql: str, params):
    return Warehouse(path).df(sql, params)


class CachedWarehouse(Warehouse):
    """The dashboard's warehouse: the rows of each query (its SQL and parameters) cached for a few seconds."""

    def df(self, sql: str, params: list | dict | None = None):
        return _rows(self.path, sql, params)


@st.cache_resource(show_spinner=False)
def _warehouse(path: str) -> Warehouse:
    return CachedWarehouse(path)


def warehouse() -> Warehouse:
    """The server's warehouse (`--warehouse PATH` at start, else env WAREHOUSE_DB): never the visitor's choice."""
    return _warehouse(server_db_path())


@st.cache_data(ttl=5, show_spinner="Fitting the cost models…")
def _cost_models(path: str, run_ids: tuple[str, ...]):
    costs = Warehouse(path).job_costs(list(run_ids))
    phases = {run_id: analysis.phase_models(g) for run_id, g in costs.groupby("run_id", sort=False)}
    return costs, analysis.run_models(costs), phases


def cost_models(run_ids: tuple[str, ...]):
    """(job_costs rows, cost model of each run by run_id, phase models of each run by run_id)."""
    return _cost_models(warehouse().path, tuple(run_ids))


def sweep_id() -> str | None:
    return st.session_state.get("sweep_id")


def sweep_chosen() -> bool:
    """Whether a sweep is chosen and the warehouse can be read; if not, the empty state or the error is shown."""
    if st.session_state.get("warehouse_error"):
        st.error(st.session_state["warehouse_error"])
        return False
    if sweep_id() is None:
        st.info(states.EMPTY_STATE)
        return False
    return True


def sweep_runs(every_worker: bool = False):
    """Runs of the chosen sweep, or None (with the empty state, the warehouse's error, or, for a load run's
    sweep, where its figures are, shown). Replica runs of levels with several workers are left out
    (warehouse.replicas.ran_alone; their figures are the Throughput page's "Bigger batch or more workers"), unless
    the sweep has no other runs, or `every_worker` asks for them."""
    if not sweep_chosen():
        return None
    runs = warehouse().runs(sweep_id())
    if runs.empty:  # a load run's sweep: its levels are on the Load page
        st.info(states.LOAD_ONLY)
        return None
    alone = replicas.ran_alone(runs)
    return runs[alone] if alone.any() and not every_worker else runs


def paper(key: str) -> str:
    """Markdown link to a paper's row on the Papers page, plus its arXiv id."""
    papers = warehouse().papers().set_index("key")
    row = papers.loc[key]
    arxiv = f", arXiv {row.arxiv}" if row.arxiv else ""
    return f"[{row.short}]({PAPERS_PAGE}#{key}){arxiv}"


def paper_href(key: str) -> str:
    return f"{PAPERS_PAGE}#{key}"


def guarded(fn):
    """Run a page body, with the warehouse file held open for its queries (Warehouse.held); a missing, damaged or
    busy warehouse becomes a message, not a traceback."""
    if "sweep_id" not in st.session_state:
        # A page's own URL opened first on a fresh server: Streamlit runs the page's file by itself (its
        # pages-folder fallback, until some session has run st.navigation). Run the app on the same page.
        PagesManager.uses_pages_directory = False
        st.rerun()
    try:
        with warehouse().held():  # the file open read-only while the page renders: its queries skip opening it
            fn()
    except NoWarehouse:
        st.info(states.EMPTY_STATE)
    except CorruptWarehouse as exc:
        st.error(str(exc))
    except WarehouseBusy:
        st.warning(states.BUSY)
        time.sleep(2)
        st.rerun()

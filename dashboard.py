"""Router: the shared sidebar (the server's warehouse, the sweep) and st.navigation over pages/.

The warehouse is the server's, fixed at start: `streamlit run dashboard.py -- --warehouse PATH`, else env
WAREHOUSE_DB (settings.py has the default). A visitor sees its path and cannot change it."""

import time

# Most pages chart with altair: imported at the server's first run rather than at the first chart page's render.
import altair  # noqa: F401
import streamlit as st

from pages._shared import warehouse
from warehouse.db import CorruptWarehouse, NoWarehouse, WarehouseBusy
from warehouse.explain import states

st.set_page_config(page_title="Why a batch barely slows down", layout="wide")

# 1. The server's warehouse, shown, not editable.
wh = warehouse()
st.sidebar.caption(states.warehouse_caption(wh.path))

# 2. Sweep picker: the latest sweep unless another is chosen.
# Widget keys are dropped on some reruns, so pages read a plain copy ("sweep_id").
st.session_state["warehouse_error"] = None
try:
    sweeps = wh.sweeps()
except NoWarehouse:
    sweeps = None
except CorruptWarehouse as exc:  # every page shows this line instead of its content
    sweeps, st.session_state["warehouse_error"] = None, str(exc)
except WarehouseBusy:
    st.warning(states.BUSY)
    time.sleep(2)
    st.rerun()
if sweeps is not None and not sweeps.empty:
    labels = {row.sweep_id: f"{row.started_at:%Y-%m-%d %H:%M} · {row.tasks} · {row.sizes}"
              for row in sweeps.itertuples()}
    st.session_state["sweep_id"] = st.sidebar.selectbox("Sweep", list(labels), format_func=labels.get,
                                                        key="sweep_input")
else:
    st.session_state["sweep_id"] = None
    st.sidebar.caption(states.CANNOT_READ if st.session_state["warehouse_error"] else states.EMPTY_STATE)

# 3. While a sweep runs: rerun when the collector has ingested more.
@st.fragment(run_every=5)
def _auto_refresh():
    if not st.toggle("Auto-refresh while a sweep runs", key="auto_refresh"):
        return
    try:
        marker = tuple(warehouse().ingest_marker().iloc[0])
    except (NoWarehouse, WarehouseBusy, CorruptWarehouse):
        return
    if st.session_state.get("ingest_marker", marker) != marker:
        st.session_state["ingest_marker"] = marker
        st.rerun(scope="app")
    st.session_state["ingest_marker"] = marker


with st.sidebar:
    _auto_refresh()

# 4. Pages.
page = st.navigation([
    st.Page("pages/overview.py", title="Overview", icon=":material/insights:", default=True),
    st.Page("pages/throughput.py", title="Throughput", icon=":material/speed:"),
    st.Page("pages/steps.py", title="Steps", icon=":material/stairs:"),
    st.Page("pages/operators.py", title="Operators", icon=":material/memory:"),
    st.Page("pages/telemetry.py", title="Telemetry", icon=":material/monitor_heart:"),
    st.Page("pages/memory.py", title="Memory", icon=":material/sd_card:"),
    st.Page("pages/load.py", title="Load", icon=":material/groups:"),
    st.Page("pages/gallery.py", title="Gallery", icon=":material/photo_library:"),
    st.Page("pages/papers.py", title="Papers", icon=":material/menu_book:"),
    st.Page("pages/sql.py", title="SQL", icon=":material/terminal:"),
])
page.run()

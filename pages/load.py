"""Load: many requests at once. Latency against offered load per scheduling policy, measured beside the
simulation's prediction; throughput against latency; one server with a batcher against N servers without one
(when the sweep has levels of several servers); what each policy serves within a latency objective; and what
a burst of requests sent at once costs against one."""

import altair as alt
import pandas as pd
import streamlit as st

from pages._shared import guarded, sweep_chosen, sweep_id, warehouse
from warehouse import load
from warehouse.explain import serving


def render():
    st.title("Many requests at once")
    if not sweep_chosen():  # no sweep, or the warehouse cannot be read: already said
        return
    levels = warehouse().load_levels(sweep_id())
    if levels.empty:
        st.info(serving.NO_LOAD)
        return
    levels = load.with_intervals(levels, warehouse().load_latencies(sweep_id()))

    # 1. What a burst costs against one request.
    said = serving.load_burst(load.burst(levels))
    if said:
        st.markdown(said)

    # 2. Latency against offered load, measured and predicted.
    curves = load.latency_curves(levels)
    if not curves.empty:
        st.subheader("Latency against offered load")
        st.altair_chart(_latency_chart(curves), width="stretch")
        st.caption(serving.load_latency_caption())
    said = serving.load_prediction(load.prediction_gaps(levels))
    if said:
        st.markdown(said)

    # 3. Throughput against p99 latency.
    served = load.throughput_curves(levels)
    if not served.empty:
        st.subheader("Throughput against p99 latency")
        st.altair_chart(_throughput_chart(served), width="stretch")
        st.caption(serving.load_throughput_caption())

    # 4. One server with a batcher against N servers without one (only with levels of several servers).
    if load.has_servers(levels):
        _servers_versus(levels)

    # 5. A latency objective: what each policy serves within it.
    start = load.default_objective(levels) or 1.0
    objective = st.number_input("Latency objective (s)", min_value=0.001, value=float(start), step=start / 4,
                                format="%.3g", key="load_objective")
    said = serving.load_capacity(load.capacity_at(levels, objective))
    if said:
        st.markdown(said)
    goodput = warehouse().load_goodput(sweep_id(), float(objective))
    poisson = load.with_setup(goodput[goodput.arrival == "poisson"])
    if not poisson.empty:
        st.subheader("Goodput against offered load")
        st.altair_chart(_goodput_chart(poisson), width="stretch")
        st.caption(serving.load_goodput_caption(objective))

    # 6. Every level, and the latency of each request of one.
    st.subheader("Levels")
    said = serving.load_tail(load.tail(levels))
    if said:
        st.markdown(said)
    table = levels.assign(own_factor=[load.own_factor(r) for r in levels.to_dict("records")])
    st.dataframe(table[["policy", "servers", "endpoint", "arrival", "offered_rps", "clients", "own_factor",
                        "requests", "requests_ok", "p50_s", "p50_low", "p50_high", "p90_s", "p99_s", "p99_low",
                        "p99_high", "predicted_p50_s", "predicted_p99_s", "throughput_rps", "predicted_rps",
                        "mean_wait_s", "mean_batch"]], hide_index=True, width="stretch")
    st.caption(serving.load_table_caption())
    _request_latencies(levels)


def _servers_versus(levels: pd.DataFrame) -> None:
    st.subheader("One server with a batcher against N servers without one")
    curves = load.versus_curves(levels)
    if not curves.empty:
        st.altair_chart(_versus_chart(curves), width="stretch")
        st.caption(serving.load_servers_caption())
    for said in (serving.load_servers_versus(load.servers_versus(levels)),
                 serving.load_shared_cores(load.shared_cores(levels))):
        if said:
            st.markdown(said)


def _versus_chart(curves: pd.DataFrame) -> alt.Chart:
    latency = curves[curves.metric != "throughput"]
    served = curves[curves.metric == "throughput"]
    color = alt.Color("setup:N", title="")
    x = alt.X("offered_rps:Q", title="offered load (requests/s)")
    lat = alt.Chart(latency).encode(
        x=x, y=alt.Y("value:Q", title="latency (s)"), color=color,
        strokeDash=alt.StrokeDash("metric:N", title="", sort=["p50", "p99"]),
        tooltip=["setup", "metric", alt.Tooltip("offered_rps:Q", format=".3g"), alt.Tooltip("value:Q", format=".3g")])
    thr = alt.Chart(served).encode(
        x=x, y=alt.Y("value:Q", title="throughput (requests/s)"), color=color,
        tooltip=["setup", alt.Tooltip("offered_rps:Q", format=".3g"), alt.Tooltip("value:Q", format=".3g")])
    return alt.hconcat(lat.mark_line(point=True).properties(title="p50 and p99 latency"),
                       thr.mark_line(point=True).properties(title="throughput"))


def _latency_chart(curves: pd.DataFrame) -> alt.Chart:
    base = alt.Chart(curves).encode(
        x=alt.X("offered_rps:Q", title="offered load (requests/s)"),
        y=alt.Y("latency_s:Q", title="latency (s)"),
        color=alt.Color("policy:N", title="policy"),
        strokeDash=alt.StrokeDash("source:N", title="", sort=["measured", "predicted"]),
        tooltip=["policy", "percentile", "source", alt.Tooltip("offered_rps:Q", format=".3g"),
                 alt.Tooltip("own_factor:Q", format=".2f", title="x its own capacity"),
                 alt.Tooltip("latency_s:Q", format=".3g")])
    lines = base.mark_line()
    points = base.transform_filter(alt.datum.source == "measured").mark_point(filled=True, size=50)
    return alt.layer(lines, points).facet(column=alt.Column("percentile:N", title=None))


def _throughput_chart(served: pd.DataFrame) -> alt.Chart:
    base = alt.Chart(served).encode(
        x=alt.X("p99_s:Q", title="p99 latency (s)"),
        y=alt.Y("throughput_rps:Q", title="throughput (requests/s)"),
        color=alt.Color("policy:N", title="policy"),
        strokeDash=alt.StrokeDash("source:N", title="", sort=["measured", "predicted"]),
        order="offered_rps:Q",
        tooltip=["policy", "source", alt.Tooltip("offered_rps:Q", format=".3g"), alt.Tooltip("p99_s:Q", format=".3g"),
                 alt.Tooltip("throughput_rps:Q", format=".3g")])
    return base.mark_line() + base.transform_filter(alt.datum.source == "measured").mark_point(filled=True, size=50)


def _goodput_chart(goodput: pd.DataFrame) -> alt.Chart:
    base = alt.Chart(goodput).encode(
        x=alt.X("offered_rps:Q", title="offered load (requests/s)"),
        y=alt.Y("goodput_rps:Q", title="goodput (requests/s within the objective)"),
        color=alt.Color("setup:N", title="policy"),
        tooltip=["setup", alt.Tooltip("offered_rps:Q", format=".3g"), alt.Tooltip("goodput_rps:Q", format=".3g"),
                 alt.Tooltip("share_within:Q", format=".0%"), "within", "requests"])
    return base.mark_line() + base.mark_point(filled=True, size=50)


def _request_latencies(levels: pd.DataFrame) -> None:
    """The latency of every request of one load, per policy."""
    groups = load.load_groups(levels)
    chosen = st.selectbox("Requests of the load", list(groups), key="load_requests")
    rows = warehouse().load_requests(groups[chosen])
    rows = load.with_setup(rows[rows.status == "ok"])
    if rows.empty:
        return
    chart = alt.Chart(rows).mark_tick(thickness=2).encode(
        x=alt.X("latency_s:Q", title="latency (s)"), y=alt.Y("setup:N", title="policy"),
        color=alt.Color("setup:N", legend=None),
        tooltip=["setup", "server", "request_id", alt.Tooltip("arrival_s:Q", format=".3g"),
                 alt.Tooltip("wait_s:Q", format=".3g"), alt.Tooltip("latency_s:Q", format=".3g"), "batch"])
    st.altair_chart(chart.properties(title="Latency of each request that finished"), width="stretch")


guarded(render)

"""Telemetry: utilisation, memory, power and clock over a run, with job boundaries."""

import altair as alt
import streamlit as st

from pages._shared import guarded, sweep_runs, warehouse
from warehouse.explain import telemetry


def render():
    st.title("Telemetry")
    runs = sweep_runs()
    if runs is None:
        return
    labels = dict(zip(runs.label, runs.run_id))
    run_id = labels[st.selectbox("Run", list(labels))]
    samples = warehouse().telemetry(run_id)
    marks = warehouse().job_marks(run_id)

    # 1. Over time, one panel per measure, job starts as rules.
    if samples.empty:
        st.info(telemetry.NO_SAMPLES)
    else:
        gpu = samples.gpu_util.notna().any()
        if not gpu:
            st.caption(telemetry.NO_GPU)
        measures = [("cpu_util", "process CPU % (of one core)"), ("rss_bytes", "RSS (bytes)")]
        if gpu:
            measures += [("gpu_util", "GPU utilisation %"), ("mem_used_bytes", "GPU memory (bytes)"),
                         ("power_w", "power (W)"), ("sm_clock_mhz", "SM clock (MHz)")]
        rules = alt.Chart(marks).mark_rule(opacity=0.25).encode(
            x="started_at:T", color=alt.Color("batch_size:O", title="job batch"),
            tooltip=["batch_size", "warmup", "status", "started_at"])
        for column, title in measures:
            line = alt.Chart(samples).mark_line().encode(
                x=alt.X("second:T", title="time"), y=alt.Y(f"{column}:Q", title=title))
            st.altair_chart((rules + line).properties(height=180), width="stretch")
    st.caption(telemetry.MEMORY_ELSEWHERE)


guarded(render)

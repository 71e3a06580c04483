"""Steps: per-step time against step index and batch size; phase breakdown; stream requests' latency."""

import altair as alt
import streamlit as st

from pages._shared import guarded, paper, sweep_runs, warehouse
from warehouse.explain import steps, throughput


def render():
    st.title("Steps and phases")
    runs = sweep_runs()
    if runs is None:
        return
    run_ids = list(runs.run_id)

    # 1. Per-step time against step index, per batch size.
    profile = warehouse().step_profile(run_ids)
    st.subheader("Median time per denoising step")
    if profile.empty:
        st.info(steps.NO_STEPS)
    else:
        st.altair_chart(alt.Chart(profile).mark_line(point=True).encode(
            x=alt.X("step_index:O", title="step (stream mode: UNet call)"),
            y=alt.Y("median_s:Q", title="median step time (s)"),
            color=alt.Color("batch_size:O", title="batch"),
            column=alt.Column("label:N", title=None),
            tooltip=["label", "batch_size", "step_index", "median_s", "unet_rows"]).properties(width=260),
            width="content")

    # 2. Phases: where the job's time goes, stacked, per batch size.
    phases = warehouse().phase_breakdown(run_ids)
    st.subheader("Where the time goes")
    if not phases.empty:
        st.altair_chart(alt.Chart(phases).mark_bar().encode(
            x=alt.X("batch_size:O", title="batch size"), y=alt.Y("median_s:Q", title="median s"),
            color=alt.Color("phase:N", sort=["encode_prompt", "prepare", "denoise", "decode", "postprocess",
                                             "outside"]),
            column=alt.Column("label:N", title=None),
            tooltip=["label", "batch_size", "phase", "median_s", alt.Tooltip("median_share:Q", format=".0%")]
        ).properties(width=220), width="content")

    # 3. Stream mode: a request's latency from entering the stream to leaving it.
    st.subheader("Stream Batch: each request's latency")
    latency = warehouse().stream_latency(run_ids)
    if latency.empty:
        st.caption(steps.NO_STREAM)
    else:
        st.caption(throughput.stream_latency_caption(cite=paper))
        st.altair_chart(alt.Chart(latency).mark_line(point=True).encode(
            x=alt.X("request:O", title="request (order of entry)"), y=alt.Y("latency_s:Q", title="latency (s)"),
            color=alt.Color("batch_size:O", title="batch"), tooltip=["batch_size", "request", "latency_s"]),
            width="stretch")


guarded(render)

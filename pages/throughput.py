"""Throughput: images/s and latency against batch size; speed-up, efficiency, the cost model; runs side by side."""

import altair as alt
import pandas as pd
import streamlit as st

from pages._shared import cost_models, db_path, guarded, query, sweep_id
from warehouse import analysis, explain


def render():
    st.title("Throughput")
    all_runs = query("runs", db_path(), None)
    if all_runs.empty:
        st.info("No runs yet: run `python -m generator sweep`, then `python -m collector ingest`.")
        return
    # 1. Which runs: the chosen sweep by default, any others to compare side by side.
    default = list(all_runs[all_runs.sweep_id == sweep_id()].label)
    chosen = st.multiselect("Runs", list(all_runs.label), default=default)
    run_ids = list(all_runs[all_runs.label.isin(chosen)].run_id)
    if not run_ids:
        st.info("Choose at least one run.")
        return
    tp = query("throughput", db_path(), run_ids)
    tp = tp.assign(cfg=tp.cfg.fillna(False).map({True: "CFG on", False: "CFG off"}),
                   size=tp.height.astype(str) + "x" + tp.width.astype(str))
    facet = st.radio("Facet by", ["none", "mode", "cfg", "size", "device"], horizontal=True)

    # 2. Four views of the same medians; speed-up and efficiency are the view's (over each run's smallest batch).
    x = alt.X("batch_size:Q", scale=alt.Scale(type="log", base=2), title="batch size")
    base = alt.Chart(tp).encode(x=x, color=alt.Color("label:N", title="run"),
                                tooltip=["label", "batch_size", alt.Tooltip("images_per_s:Q", format=".2f"),
                                         alt.Tooltip("median_wall_s:Q", format=".3f"),
                                         alt.Tooltip("base_batch:Q", title="speed-up over batch"),
                                         alt.Tooltip("speedup:Q", format=".2f"),
                                         alt.Tooltip("efficiency:Q", format=".2f")])
    charts = {
        "Images per second": base.mark_line(point=True).encode(y=alt.Y("images_per_s:Q", title="images / s")),
        "Latency per batch": base.mark_line(point=True).encode(y=alt.Y("median_wall_s:Q", title="median s")),
        explain.speedup_title(tp.base_batch): base.mark_line(point=True).encode(
            y=alt.Y("speedup:Q", title=explain.speedup_axis(tp.base_batch))),
        "Batching efficiency": base.mark_line(point=True).encode(
            y=alt.Y("efficiency:Q", title=explain.efficiency_axis(tp.base_batch))),
    }
    cols = st.columns(2)
    for i, (title, chart) in enumerate(charts.items()):
        if facet != "none":
            chart = chart.facet(column=alt.Column(f"{facet}:N"), data=tp)
        with cols[i % 2]:
            st.subheader(title)
            st.altair_chart(chart, width="stretch" if facet == "none" else "content")

    # 3. The cost model of each run, with its intervals (the same fit as the Overview's).
    st.subheader("Cost model per run")
    st.caption(explain.model_caption())
    _, models, _ = cost_models(db_path(), tuple(run_ids))
    labels = dict(zip(all_runs.run_id, all_runs.label))
    st.dataframe(explain.model_table(models, labels), hide_index=True, width="stretch")
    st.dataframe(tp[["label", "batch_size", "unet_batch", "jobs", "median_wall_s", "images_per_s", "base_batch",
                     "speedup", "efficiency", "share_of_peak", "share_of_ceiling"]], hide_index=True, width="stretch")

    # 4. Is my number sane? Published figures beside the person's own, per image-step.
    st.subheader("Beside published figures")
    st.caption(explain.published_caption())
    steps = all_runs.set_index("run_id").steps
    st.dataframe(pd.concat([analysis.own_figures(tp, steps), analysis.published_figures()], ignore_index=True)
                 .round({"ms_per_image_step": 2, "speedup": 2}), hide_index=True, width="stretch")


guarded(render)

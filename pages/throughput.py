"""Throughput: images/s and latency against batch size; speed-up, efficiency and the knee; runs side by side."""

import altair as alt
import streamlit as st

from pages._shared import db_path, guarded, paper_href, query, sweep_id
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
    tp = tp.assign(cfg=tp.run_id.map(all_runs.set_index("run_id").cfg).fillna(False).map({True: "CFG on",
                                                                                          False: "CFG off"}),
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
    knee_rule = alt.Chart().mark_rule(strokeDash=[4, 4], color="gray").encode(
        y=alt.datum(analysis.KNEE_EFFICIENCY), href=alt.value(paper_href("beyond-llms")))
    charts["Batching efficiency"] = charts["Batching efficiency"] + knee_rule
    cols = st.columns(2)
    for i, (title, chart) in enumerate(charts.items()):
        if facet != "none":
            chart = chart.facet(column=alt.Column(f"{facet}:N"), data=tp)
        with cols[i % 2]:
            st.subheader(title)
            st.altair_chart(chart, width="stretch" if facet == "none" else "content")

    # 3. The knee of each run: where efficiency drops below 50%, from the same rows as the charts.
    st.subheader("Knee per run")
    st.caption(explain.knee_caption())
    st.dataframe(explain.knee_table(analysis.knees(tp)), hide_index=True, width="stretch")
    st.dataframe(tp[["label", "batch_size", "unet_batch", "jobs", "median_wall_s", "images_per_s", "base_batch",
                     "speedup", "efficiency"]], hide_index=True, width="stretch")


guarded(render)

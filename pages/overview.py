"""Overview: the answer to "why did my batch barely slow down?", from the chosen sweep."""

import altair as alt
import streamlit as st

from pages._shared import EMPTY_STATE, db_path, guarded, query, sweep_id
from warehouse import analysis

EMBEDDED_NOTE = ("These runs used the embedded tiny model: random, seeded weights that draw noise. "
                 "It is there to measure where the time goes, not to make pictures; point "
                 "`--model` at a local diffusers folder for real weights.")


def render():
    st.title("Why a batch barely slows down")
    if sweep_id() is None:
        st.info(EMPTY_STATE)
        return
    runs = query("runs", db_path(), sweep_id())
    tp = query("throughput", db_path(), list(runs.run_id))
    first = runs.iloc[0]
    st.caption(f"Sweep `{sweep_id()}` · {first.device_name} · model `{first.model_id}` · "
               f"{first.steps} steps · guidance {first.guidance_scale:g}")
    if runs.model_id.str.startswith("embedded-").any():
        st.info(EMBEDDED_NOTE)

    # 1. The headline per run: the largest batch against batch 1.
    for run in runs.sort_values(["height", "width"]).itertuples():
        rows = tp[tp.run_id == run.run_id]
        sentence = analysis.headline(rows)
        if sentence is None:
            st.warning(f"**{run.label}**: no successful measured jobs yet.")
            continue
        st.markdown(f"**{run.task} at {run.height}x{run.width}**: {sentence}.")
        why = analysis.verdict(rows)
        if why:
            st.caption(why[0].upper() + why[1:] + ".")
    if tp.empty:
        return

    # 2. Throughput and latency against batch size, one line per run.
    x = alt.X("batch_size:Q", scale=alt.Scale(type="log", base=2), title="batch size (images per call)")
    color = alt.Color("label:N", title="run")
    tooltip = ["label", "batch_size", alt.Tooltip("images_per_s:Q", format=".2f"),
               alt.Tooltip("median_wall_s:Q", format=".3f"), alt.Tooltip("speedup:Q", format=".2f"),
               alt.Tooltip("efficiency:Q", format=".2f")]
    base = alt.Chart(tp).encode(x=x, color=color, tooltip=tooltip)
    left, right = st.columns(2)
    with left:
        st.subheader("Throughput")
        st.altair_chart(base.mark_line(point=True).encode(y=alt.Y("images_per_s:Q", title="images per second")),
                        width="stretch")
    with right:
        st.subheader("Latency")
        st.altair_chart(base.mark_line(point=True).encode(
            y=alt.Y("median_wall_s:Q", title="median time per batch (s)")), width="stretch")

    # 3. The numbers behind the charts.
    st.subheader("Per batch size (median over measured jobs, warm-up excluded)")
    st.dataframe(
        tp[["label", "batch_size", "jobs", "median_wall_s", "images_per_s", "time_vs_batch1",
            "speedup", "efficiency"]],
        hide_index=True, width="stretch",
        column_config={
            "median_wall_s": st.column_config.NumberColumn("median s / batch", format="%.3f"),
            "images_per_s": st.column_config.NumberColumn("images / s", format="%.2f"),
            "time_vs_batch1": st.column_config.NumberColumn("time vs batch 1", format="%.2fx"),
            "speedup": st.column_config.NumberColumn("images/s vs batch 1", format="%.2fx"),
            "efficiency": st.column_config.NumberColumn("efficiency", format="%.2f"),
        },
    )


guarded(render)

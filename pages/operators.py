"""Operators: where UNet time goes by operator category, and achieved FLOP/s against the peak and the ceiling."""

import altair as alt
import streamlit as st

from pages._shared import guarded, paper, paper_href, sweep_runs, warehouse
from warehouse import analysis
from warehouse.explain import operators


def render():
    st.title("Operators and FLOPs")
    runs = sweep_runs()
    if runs is None:
        return
    run_ids = list(runs.run_id)

    # 1. Operator mix against batch size.
    mix = warehouse().op_mix(run_ids)
    st.subheader("UNet time by operator category")
    if mix.empty:
        st.info(operators.NO_PROFILE)
    else:
        bars = alt.Chart(mix).mark_bar().encode(
            x=alt.X("batch_size:O", title="batch size"),
            y=alt.Y("share:Q", title="share of UNet time", axis=alt.Axis(format="%")),
            color=alt.Color("category:N"),
            tooltip=["label", "batch_size", "category", alt.Tooltip("share:Q", format=".1%"), "time_s"])
        rule = alt.Chart().mark_rule(color="black", strokeDash=[5, 3]).encode(
            y=alt.datum(analysis.CONV_SHARE_REPORTED), href=alt.value(paper_href("beyond-llms")),
            tooltip=alt.value(operators.conv_rule_tooltip()))
        st.altair_chart(alt.layer(bars, rule, data=mix).properties(width=220).facet(
            column=alt.Column("label:N", title=None)), width="content")
        conv = operators.conv_share(analysis.conv_share(mix), cite=paper)
        if conv:
            st.markdown(conv)

    # 2. Achieved FLOP/s as a share of the datasheet peak and of the ceiling measured on the run's device.
    tp = warehouse().throughput(run_ids)
    st.subheader("Achieved FLOP/s against batch size")
    if tp.achieved_flops_per_s.isna().all():
        st.info(operators.NO_FLOPS)
        return
    shares = tp.melt(id_vars=["label", "batch_size", "achieved_flops_per_s"],
                     value_vars=["share_of_peak", "share_of_ceiling"], var_name="of", value_name="share").replace(
        {"of": {"share_of_peak": "datasheet peak", "share_of_ceiling": "measured ceiling"}}).dropna(subset=["share"])
    st.altair_chart(alt.Chart(shares).mark_line(point=True).encode(
        x=alt.X("batch_size:Q", scale=alt.Scale(type="log", base=2), title="batch size"),
        y=alt.Y("share:Q", title="share of FLOP/s", axis=alt.Axis(format="%")),
        color=alt.Color("label:N", title="run"), strokeDash=alt.StrokeDash("of:N", title="share of"),
        tooltip=["label", "batch_size", "of", alt.Tooltip("achieved_flops_per_s:Q", format=".3s"),
                 alt.Tooltip("share:Q", format=".2%")]), width="stretch")
    st.caption(operators.flops_caption(runs.peak_flops_source.iloc[0]))


guarded(render)

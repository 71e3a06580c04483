"""Operators: where UNet time goes by operator category, and achieved FLOP/s against the peak and the ceiling."""

import altair as alt
import streamlit as st

from pages._shared import cost_models, guarded, paper, paper_href, sweep_id, sweep_runs, warehouse
from warehouse import analysis, kernels
from warehouse.explain import families, operators


def render():
    st.title("Operators and FLOPs")
    runs = sweep_runs()
    if runs is None:
        return
    run_ids = list(runs.run_id)

    # 1. Operator mix against batch size.
    mix = warehouse().op_mix(run_ids)
    unets = runs.family.fillna("unet").eq("unet").any() if "family" in runs else True
    st.subheader(operators.mix_heading(unets))
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
        conv = operators.conv_share(analysis.conv_share(mix), cite=paper) if unets else None
        if conv:
            st.markdown(conv)

    # 2. UNet against transformer: the operator mix of each family at one size, the paper's figures beside it.
    render_families(runs)
    # 3. The fused attention kernel against the math path, per family and batch size.
    render_kernels()
    # 4. Attention by sequence length: tokens per attention call at each level.
    render_lengths(warehouse().family_runs(sweep_id()))

    # 5. Achieved FLOP/s as a share of the datasheet peak and of the ceiling measured on the run's device.
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


def render_families(runs):
    st.subheader("UNet against transformer")
    ids = warehouse().family_runs(sweep_id())
    mix = warehouse().family_mix(ids)
    if "transformer" in set(runs.get("family", [])) or "transformer" in set(mix.family):
        st.caption(families.stand_in(cite=paper))
    mixes = kernels.family_mixes(mix) if not mix.empty else []
    if {m.family for m in mixes} < {"unet", "transformer"}:
        st.info(families.NO_FAMILIES)
    if not mixes:
        return
    rows = kernels.mix_rows(mix)
    bars = alt.Chart().mark_bar().encode(
        x=alt.X("batch_size:O", title="batch size"),
        y=alt.Y("share:Q", title="share of denoiser time", axis=alt.Axis(format="%")),
        color=alt.Color("category:N"),
        tooltip=["model", "label", "batch_size", "category", alt.Tooltip("share:Q", format=".1%"), "time_s"])
    reported = [alt.Chart().mark_rule(color=shade, strokeDash=[5, 3]).encode(
        y=alt.datum(share), href=alt.value(paper_href("beyond-llms")),
        tooltip=alt.value(families.reported_tooltip(category)))
        for (category, share), shade in zip(kernels.REPORTED.items(), ("black", "grey"))]
    st.altair_chart(alt.layer(bars, *reported, data=rows).properties(width=220).facet(
        column=alt.Column("model:N", title=None)), width="content")
    for m in mixes:
        st.markdown(families.family_mix(m))
    both = families.families(mixes, cite=paper)
    if both:
        st.markdown(both)


def render_kernels():
    st.subheader("Fused attention kernel against math")
    ids = warehouse().family_runs(sweep_id())
    costs, _, _ = cost_models(tuple(ids))
    gains = kernels.kernel_gains(costs)
    if not gains:
        st.info(families.NO_KERNELS)
        return
    st.markdown(families.kernels_intro(cite=paper))
    frame = kernels.gain_rows(gains)
    base = alt.Chart().encode(x=alt.X("batch_size:O", title="batch size"), xOffset=alt.XOffset("model:N"),
                              color=alt.Color("model:N"))
    points = base.mark_point(filled=True, size=60).encode(
        y=alt.Y("ratio:Q", title="math time / fused time", scale=alt.Scale(zero=False)),
        tooltip=["model", "fused", "batch_size", alt.Tooltip("ratio:Q", format=".3f"),
                 alt.Tooltip("low:Q", format=".3f"), alt.Tooltip("high:Q", format=".3f")])
    bars = base.mark_errorbar().encode(y=alt.Y("low:Q", title="math time / fused time"), y2="high:Q")
    one = alt.Chart().mark_rule(color="grey").encode(y=alt.datum(1.0))
    st.altair_chart(alt.layer(bars, points, one, data=frame), width="stretch")
    st.caption(families.kernels_caption())
    for group in kernels.by_setting(gains):
        st.markdown(families.kernel_gain(group))
    both = families.gain_by_family(gains, cite=paper)
    if both:
        st.markdown(both)
    for pictures in kernels.kernel_pictures(warehouse().image_checks(ids)):
        st.markdown(families.kernel_pictures(pictures))


def render_lengths(run_ids):
    levels = warehouse().attention_levels(run_ids)
    st.subheader("Attention by sequence length")
    if levels.empty:
        st.info(operators.NO_PROFILE)
        return
    found = kernels.attention_lengths(levels)
    rows = kernels.length_rows(levels)
    st.altair_chart(alt.Chart(rows).mark_bar().properties(width=max(120, 60 * rows.query_tokens.nunique())).encode(
        x=alt.X("query_tokens:O", title="query tokens per call", sort="descending"),
        y=alt.Y("share_of_unet:Q", title="share of denoiser time", axis=alt.Axis(format="%")),
        color=alt.Color("key_tokens:N", title="key tokens"),
        column=alt.Column("model:N", title=None),
        tooltip=["model", "label", "batch_size", "call", "kernel", "calls", alt.Tooltip("time_s:Q", format=".4f"),
                 alt.Tooltip("flops:Q", format=".3s"), alt.Tooltip("share_of_unet:Q", format=".1%")]))
    for a in found:
        st.markdown(families.lengths(a))


guarded(render)

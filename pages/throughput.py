"""Throughput: images/s and latency against batch size; speed-up, efficiency, the cost model; runs side by side;
in a replica sweep, a bigger batch against more workers."""

import altair as alt
import pandas as pd
import streamlit as st

from pages._shared import cost_models, guarded, paper, sweep_id, warehouse
from warehouse import analysis, db, quality, replicas
from warehouse.explain import pictures, states, throughput
from warehouse.explain import workers as said_workers


def render():
    st.title("Throughput")
    all_runs = warehouse().runs()
    if all_runs.empty:
        st.info(states.NO_RUNS)
        return
    # 1. Which runs: the chosen sweep by default (without the replica runs that shared a level: replicas.ran_alone),
    #    any others to compare side by side.
    alone = replicas.ran_alone(all_runs)
    default = list(all_runs[(all_runs.sweep_id == sweep_id()) & alone].label)
    chosen = st.multiselect("Runs", list(all_runs.label), default=default)
    run_ids = list(all_runs[all_runs.label.isin(chosen)].run_id)
    if not run_ids:
        st.info(states.CHOOSE_A_RUN)
        return
    tp = warehouse().throughput(run_ids)
    costs, models, _ = cost_models(tuple(run_ids))
    tp = _with_intervals(tp, analysis.batch_intervals(costs)).assign(
        cfg=tp.cfg.fillna(False).map({True: "CFG on", False: "CFG off"}),
        size=tp.height.astype(str) + "x" + tp.width.astype(str))
    # Facets: the field each option draws; host only when the runs ran on more than one.
    facets = {"none": None, "mode": "mode", "cfg": "cfg", "size": "size", "device": "device_label"}
    if tp.host.nunique() > 1:
        facets["host"] = "host"
    facet = facets[st.radio("Facet by", list(facets), horizontal=True)]

    # 2. Four views of the same medians; speed-up and efficiency are the view's (over each run's smallest batch).
    #    Error bars: the 95% interval of each median; an uncertain one (wider than ±5%) is drawn faint.
    x = alt.X("batch_size:Q", scale=alt.Scale(type="log", base=2), title="batch size")
    base = alt.Chart(tp).encode(x=x, color=alt.Color("label:N", title="run"),
                                tooltip=["label", "batch_size", alt.Tooltip("images_per_s:Q", format=".2f"),
                                         alt.Tooltip("median_wall_s:Q", format=".3f"),
                                         alt.Tooltip("interval:N", title="95% interval"), "certainty",
                                         alt.Tooltip("base_batch:Q", title="speed-up over batch"),
                                         alt.Tooltip("speedup:Q", format=".2f"),
                                         alt.Tooltip("efficiency:Q", format=".2f")])
    charts = {
        "Images per second": _with_bars(base, "images_per_s", "images / s", "ips_low", "ips_high"),
        "Latency per batch": _with_bars(base, "median_wall_s", "median s", "low_s", "high_s"),
        throughput.speedup_title(tp.base_batch): _with_bars(base, "speedup", throughput.speedup_axis(tp.base_batch)),
        "Batching efficiency": _with_bars(base, "efficiency", throughput.efficiency_axis(tp.base_batch)),
    }
    cols = st.columns(2)
    for i, (title, chart) in enumerate(charts.items()):
        if facet is not None:
            chart = chart.facet(column=alt.Column(f"{facet}:N"), data=tp)
        with cols[i % 2]:
            st.subheader(title)
            st.altair_chart(chart, width="stretch" if facet is None else "content")
    _pictures_section(run_ids, tp)
    _workers_section()

    # 3. The cost model of each run, with its intervals (the same fit as the Overview's).
    st.subheader("Cost model per run")
    st.caption(throughput.model_caption())
    labels = dict(zip(all_runs.run_id, all_runs.label))
    st.dataframe(throughput.model_table(models, labels), hide_index=True, width="stretch")
    st.dataframe(tp[["label", "batch_size", "unet_batch", "jobs", "median_wall_s", "interval", "certainty",
                     "images_per_s", "base_batch", "speedup", "efficiency", "share_of_peak", "share_of_ceiling"]],
                 hide_index=True, width="stretch")

    # 4. Is my number sane? Published figures beside the person's own, per image-step.
    st.subheader("Beside published figures")
    st.caption(throughput.published_caption())
    steps = all_runs.set_index("run_id").steps
    st.dataframe(pd.concat([analysis.own_figures(tp, steps), analysis.published_figures(db.published_rows())],
                           ignore_index=True)
                 .round({"ms_per_image_step": 2, "speedup": 2}), hide_index=True, width="stretch")


def _pictures_section(run_ids: list[str], tp: pd.DataFrame):
    """Fewer steps or a bigger batch: time per image against the share of pictures showing the asked colours; only
    where a sweep ran more than one step count with caption prompts (`--steps 2,5,10,20` on the embedded model)."""
    points = quality.tradeoff(warehouse().picture_reads(run_ids))
    if points.empty:
        return
    st.subheader("Fewer steps or a bigger batch")
    points = points.merge(tp[["run_id", "batch_size", "low_s", "high_s"]], on=["run_id", "batch_size"], how="left")
    points = points.assign(s_low=points.low_s / points.batch_size, s_high=points.high_s / points.batch_size,
                           order=points.steps.where(points.series == "steps", points.batch_size))
    base = alt.Chart(points).encode(
        x=alt.X("s_per_image:Q", scale=alt.Scale(type="log"), title="median s per image"),
        color=alt.Color("series:N", title="what changes"),
        tooltip=["setting", "series", "steps", "batch_size", "pictures", "colours_right",
                 alt.Tooltip("share:Q", format=".0%"), alt.Tooltip("low:Q", format=".0%"),
                 alt.Tooltip("high:Q", format=".0%"), alt.Tooltip("s_per_image:Q", format=".3g")])
    y = alt.Y("share:Q", title="pictures showing the asked colours", axis=alt.Axis(format="%"),
              scale=alt.Scale(domain=[0, 1]))
    chart = (base.mark_line(point=True).encode(y=y, order="order:Q")
             + base.mark_rule().encode(y="low:Q", y2="high:Q")
             + base.mark_rule().encode(y="share:Q", x="s_low:Q", x2="s_high:Q")
             + base.mark_text(dy=-10, fontSize=10).encode(
                 y="share:Q", text=alt.Text("point_label:N")).transform_calculate(
                 point_label="datum.series == 'steps' ? datum.steps + ' steps' : 'batch ' + datum.batch_size"))
    if points.setting.nunique() > 1:
        chart = chart.facet(row=alt.Row("setting:N", title=None))
    st.altair_chart(chart, width="stretch")
    st.caption(pictures.TRADEOFF_CAPTION)
    for effect in quality.steps_effect(points):
        st.markdown(pictures.steps_effect(effect, paper))
    said = pictures.batching_shown(quality.batching_shown(warehouse().image_checks(run_ids)))
    if said:
        st.markdown(said)


def _workers_section():
    """Bigger batch or more workers: only for a sweep with replica runs (python -m generator sweep --replicas)."""
    rows = warehouse().replica_throughput(sweep_id())
    if rows.empty:
        return
    points = replicas.ways(rows, warehouse().replica_jobs(sweep_id()))
    st.subheader("Bigger batch or more workers")
    if not points.empty:
        st.altair_chart(_ways_chart(points), width="stretch")
    st.caption(said_workers.ways_caption())
    levels = replicas.levels(rows)
    for comparison in replicas.compare(points):
        st.markdown(said_workers.two_ways(comparison))
        for level in levels:
            said = said_workers.more_than_k_fold(comparison, level)
            if said:
                st.markdown(said)
    for level in levels:
        said = said_workers.shared_hardware(level, replicas.alone(levels, level))
        if said:
            st.markdown(said)
    st.caption(said_workers.hardware_caption(levels))


def _ways_chart(points: pd.DataFrame) -> alt.Chart:
    """Images/s against images at once, one colour per way: lines through bigger batch and more workers, every
    point (both ways combined too) marked; a row per run setting when there are several."""
    x = alt.X("k:Q", scale=alt.Scale(type="log", base=2), title="images at once (k)")
    base = alt.Chart(points).encode(
        x=x, y=alt.Y("images_per_s:Q", title="images / s"),
        color=alt.Color("way:N", title="way", scale=alt.Scale(domain=list(replicas.WAYS))),
        tooltip=["setting", "way", alt.Tooltip("replicas:Q", title="workers (N)"), "batch_size", "k",
                 alt.Tooltip("images_per_s:Q", format=".3g"), alt.Tooltip("low:Q", format=".3g"),
                 alt.Tooltip("high:Q", format=".3g"), alt.Tooltip("speedup:Q", format=".2f"),
                 alt.Tooltip("efficiency:Q", format=".2f")])
    chart = (base.transform_filter(alt.datum.way != "both").mark_line()
             + base.mark_point(filled=True, size=60))
    if points.setting.nunique() > 1:
        chart = chart.facet(row=alt.Row("setting:N", title=None))
    return chart


def _with_intervals(tp: pd.DataFrame, intervals: pd.DataFrame) -> pd.DataFrame:
    """The throughput rows with each median's 95% interval (as seconds and as images/s) and its certainty (where
    the jobs are too few for an interval, the certainty says so and no bar is drawn)."""
    tp = tp.merge(intervals[["run_id", "batch_size", "low_s", "high_s", "half_width", "uncertain", "jobs", "needed"]]
                  .rename(columns={"jobs": "interval_jobs"}), on=["run_id", "batch_size"], how="left")
    return tp.assign(ips_low=tp.batch_size / tp.high_s, ips_high=tp.batch_size / tp.low_s,
                     interval=[throughput.interval_text(lo, hi) for lo, hi in zip(tp.low_s, tp.high_s)],
                     certainty=[throughput.certainty(h, n, need)
                                for h, n, need in zip(tp.half_width, tp.interval_jobs, tp.needed)])


def _with_bars(base: alt.Chart, y: str, title: str, low: str | None = None, high: str | None = None) -> alt.Chart:
    """A line through the medians, points faint where uncertain, and error bars where an interval is given."""
    opacity = alt.condition("datum.uncertain", alt.value(0.3), alt.value(1.0))
    chart = base.mark_line(point=True).encode(y=alt.Y(f"{y}:Q", title=title), opacity=opacity)
    if low is None:
        return chart
    return chart + base.mark_rule().encode(y=f"{low}:Q", y2=f"{high}:Q", opacity=opacity)


guarded(render)

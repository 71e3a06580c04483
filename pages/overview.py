"""Overview: the answer to "why did my batch barely slow down?", from the chosen sweep."""

import altair as alt
import pandas as pd
import streamlit as st

from pages._shared import cost_models, db_path, guarded, paper, query, sweep_runs
from warehouse import analysis, contention, explain, invariance, replicas
from warehouse.explain import workers as said_workers


def render():
    st.title("Why a batch barely slows down")
    runs = sweep_runs()
    if runs is None:
        return
    runs = runs.sort_values(["height", "width", "mode", "cfg"])
    run_ids = list(runs.run_id)
    tp = query("throughput", db_path(), run_ids)
    costs, models, phase_models = cost_models(db_path(), tuple(run_ids))
    first = next(runs.itertuples())
    for note in (explain.embedded_note(analysis.uses_embedded_model(runs.model_id)),
                 explain.preset_note(analysis.presets_used(runs.model_id))):
        if note:
            st.info(note)

    # 1. The task: what was measured.
    st.header("1. What you measured")
    st.markdown(explain.what_you_measured(analysis.sweep_summary(runs, tp)))

    # 2. The workflow, with where the time went.
    st.header("2. Input → model → output")
    phases = query("phase_breakdown", db_path(), [first.run_id])
    st.graphviz_chart(_workflow(first, phases))
    undrawn = {p: analysis.phase_share_ends(phases, p) for p in sorted(set(phases.phase) - set(DRAWN_PHASES))}
    st.caption(explain.phase_caption(first.height, first.width, first.mode, undrawn))

    # 3. Why it barely slowed down: the model of batch cost, per run, with its intervals.
    st.header("3. Why it barely slowed down")
    curves, intervals = [], analysis.batch_intervals(costs)
    samples = query("run_samples", db_path(), run_ids)
    for run in runs.itertuples():
        rows, jobs = tp[tp.run_id == run.run_id], costs[costs.run_id == run.run_id]
        st.subheader(run.label)
        scaled = analysis.scaling(rows, jobs)
        if scaled is None:
            st.warning(explain.NO_MEASURED_JOBS)
            continue
        st.markdown(f"**{explain.scaling(scaled)}**")
        busy = contention.flags(contention.contention(samples[samples.run_id == run.run_id],
                                                      cores=analysis.cores(run._asdict())))
        st.caption(explain.trust(analysis.trust(run.label, intervals[intervals.run_id == run.run_id],
                                                run._asdict(), busy)))
        model = models.get(run.run_id)
        if model is not None:
            st.markdown(explain.model(model))
            if isinstance(model, analysis.CostModel):
                curves.append(analysis.fitted_curve(model, run.label))
        by_phase = phase_models.get(run.run_id, {})
        said = explain.phase_saturation(analysis.first_saturating(by_phase), len(by_phase))
        if said:
            st.caption(said)
    if curves:
        # One chart for every run: a chart per run would cost a second on a sweep of many runs.
        st.altair_chart(_model_chart(costs, pd.concat(curves, ignore_index=True)), width="stretch")

    # 4. Measured against the least time the device could take.
    roof = query("roofline", db_path(), run_ids)
    ends = analysis.roofline_ends(roof, costs)
    if ends:
        st.header("4. Measured against the roofline floor")
        for end in ends:
            st.markdown(explain.roofline(end))
        st.altair_chart(_roofline_chart(roof.dropna(subset=["floor_s"])), width="stretch")

    # 5. Did batching change the pictures? Each image against the same seed at batch 1 and in the other modes.
    found = invariance.invariance(query("image_checks", db_path(), run_ids))
    if found:
        st.header("5. Did batching change the pictures?")
        for kind in invariance.KINDS:
            said = explain.invariance(found.get(kind))
            if said:
                st.markdown(said)
        caveat = explain.repeat_caveat(found)
        if caveat:
            st.caption(caveat)

    # Where it ran: images/s by batch size per host and device, side by side, when the runs span more than one
    # (every worker of a replica sweep too, each level labelled by its workers).
    every = sweep_runs(every_worker=True)
    side_by_side = replicas.places(query("throughput", db_path(), list(every.run_id)))
    if side_by_side is not None:
        st.header("By host and device")
        st.dataframe(side_by_side, hide_index=True, width="stretch")
        st.caption(said_workers.places_caption())

    st.header("The effects your data shows")
    notes = explain.effects(analysis.effects(runs, tp, models, costs, mix=query("op_mix", db_path(), run_ids),
                                             roof=roof), cite=paper)
    for note in notes:
        st.markdown("- " + note)
    if not notes:
        st.caption(explain.NO_EFFECTS)


DRAWN_PHASES = ("encode_prompt", "denoise", "decode", "outside")   # the phases _workflow has a node for


def _workflow(run, shares: pd.DataFrame) -> str:
    def pct(phase):
        label = explain.phase_label(analysis.phase_share_ends(shares, phase))
        return f"\\n{label}" if label else ""

    inputs = '"prompt" -> "text encoder"'
    if run.task == "inpaint":
        inputs += '; "image + mask" -> "VAE encoder"; "VAE encoder" -> "UNet"'
    return f"""digraph {{ rankdir=LR; node [shape=box, style=rounded, fontsize=11];
        {inputs};
        "text encoder" [label="text encoder{pct('encode_prompt')}"];
        "text encoder" -> "UNet";
        "UNet" [label="UNet x {run.steps} steps\\nlatent {run.height // 8}x{run.width // 8}{pct('denoise')}"];
        "UNet" -> "VAE decoder";
        "VAE decoder" [label="VAE decoder{pct('decode')}"];
        "VAE decoder" -> "images {run.height}x{run.width}";
        "outside every phase" [shape=note, label="outside every phase{pct('outside')}"]; }}"""


def _model_chart(costs: pd.DataFrame, curves: pd.DataFrame) -> alt.Chart:
    """Every measured job (one point per repeat) and each run's chosen model through them."""
    x = alt.X("batch_size:Q", scale=alt.Scale(type="log", base=2), title="batch size")
    color = alt.Color("label:N", title="run")
    points = alt.Chart(costs).mark_point(size=40, opacity=0.6).encode(
        x=x, y=alt.Y("wall_s:Q", title="job time (s)"), color=color,
        tooltip=["label", "batch_size", "repeat", alt.Tooltip("wall_s:Q", format=".3f")])
    line = alt.Chart(curves).mark_line(strokeDash=[4, 3]).encode(x=x, y="fitted_s:Q", color=color)
    return (line + points).properties(title="Job times and the chosen model (dashed: line or hinge)")


def _roofline_chart(roof: pd.DataFrame) -> alt.Chart:
    """Measured denoising time and the roofline floor per batch size, per run."""
    long = roof.melt(id_vars=["label", "batch_size"], value_vars=["denoise_s", "floor_s"],
                     var_name="series", value_name="seconds").replace(
        {"series": {"denoise_s": "measured denoising", "floor_s": "roofline floor"}})
    return alt.Chart(long).mark_line(point=True).encode(
        x=alt.X("batch_size:Q", scale=alt.Scale(type="log", base=2), title="batch size"),
        y=alt.Y("seconds:Q", scale=alt.Scale(type="log"), title="seconds per job"),
        color=alt.Color("label:N", title="run"), strokeDash=alt.StrokeDash("series:N", title=""),
        tooltip=["label", "batch_size", "series", alt.Tooltip("seconds:Q", format=".3g")])


guarded(render)

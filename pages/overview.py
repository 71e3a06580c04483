"""Overview: the answer to "why did my batch barely slow down?", from the chosen sweep."""

import altair as alt
import pandas as pd
import streamlit as st

from pages._shared import cost_models, guarded, paper, sweep_runs, warehouse
from warehouse import analysis, answer, contention, costmodel, invariance, quality, replicas
from warehouse.explain import effects, measured, pictures, scaling
from warehouse.explain import answer as said_answer
from warehouse.explain import workers as said_workers


def render():
    runs = sweep_runs()
    if runs is None:
        st.title(said_answer.title(None))
        return
    runs = runs.sort_values(["height", "width", "mode", "cfg"])
    run_ids = list(runs.run_id)
    tp = warehouse().throughput(run_ids)
    costs, models, phase_models = cost_models(tuple(run_ids))
    intervals = analysis.batch_intervals(costs)
    scaled = {run.run_id: analysis.scaling(tp[tp.run_id == run.run_id], costs[costs.run_id == run.run_id])
              for run in runs.itertuples()}
    roof = warehouse().roofline(run_ids)
    ends = analysis.roofline_ends(roof, costs)
    checks = warehouse().image_checks(run_ids)
    found = invariance.invariance(checks)
    speed = {run_id: answer.speedup(s) for run_id, s in scaled.items() if s is not None}
    main = answer.answer(runs, scaled, models, ends, found)
    st.title(said_answer.title(main.verdict if main is not None else None))

    # 1. The answer for the main comparison, in a few lines, and one chart.
    if main is None:
        st.warning(scaling.NO_MEASURED_JOBS)
    else:
        for line in said_answer.lines(main):
            st.markdown(line)
        caption = said_answer.main_run_caption(main)
        if caption:
            st.caption(caption)
    if not intervals.empty:
        st.altair_chart(_answer_chart(intervals, runs), width="stretch")

    # 2. Every run in one row; how sure, said once when the runs agree.
    samples = warehouse().run_samples(run_ids)
    sure, rows = {}, []
    for run in runs.itertuples():
        busy = contention.flags(contention.contention(samples[samples.run_id == run.run_id],
                                                      cores=analysis.cores(run._asdict())))
        trust = analysis.trust(run.label, intervals[intervals.run_id == run.run_id], run._asdict(), busy)
        sure[run.run_id] = scaling.trust(trust)
        cell = said_answer.sure_cell(trust.jobs_per_batch, trust.widest) if trust else ""
        rows.append(said_answer.run_row(run.run_id.rsplit("-", 1)[-1], run, scaled[run.run_id], speed.get(run.run_id),
                                        models.get(run.run_id), cell))
    st.header("Every run")
    st.dataframe(said_answer.run_table(rows), hide_index=True, width="stretch")
    st.caption(measured.what_you_measured(analysis.sweep_summary(runs, tp)))
    shared = {text for text in sure.values() if text}
    if len(shared) == 1 and len(sure) > 1:
        st.caption(shared.pop() + " _(The same for every run.)_")
    for note in (measured.embedded_note(analysis.uses_embedded_model(runs)),
                 measured.trained_note(analysis.uses_trained_model(runs)),
                 measured.preset_note(analysis.presets_used(runs.model_id))):
        if note:
            st.info(note)

    # 3. Each run's detail, folded: its scaling, how sure, its cost model, its phases.
    curves = []
    for run in runs.itertuples():
        with st.expander(f"Detail: {run.label}"):
            if scaled[run.run_id] is None:
                st.warning(scaling.NO_MEASURED_JOBS)
                continue
            st.markdown(scaling.scaling(scaled[run.run_id]))
            if sure[run.run_id] and len({t for t in sure.values() if t}) > 1:
                st.caption(sure[run.run_id])
            model = models.get(run.run_id)
            if model is not None:
                st.markdown(scaling.model(model))
                if isinstance(model, analysis.CostModel):
                    curves.append(costmodel.fitted_curve(model, run.label))
            by_phase = phase_models.get(run.run_id, {})
            said = scaling.phase_saturation(analysis.first_saturating(by_phase), len(by_phase))
            if said:
                st.caption(said)
    if curves:
        with st.expander("Job times and each run's cost model"):
            # One chart for every run: a chart per run would cost a second on a sweep of many runs.
            st.altair_chart(_model_chart(costs, pd.concat(curves, ignore_index=True)), width="stretch")

    # 4. Where the time goes in one job, and against the least time the device could take.
    first = runs.set_index("run_id").loc[main.run_id if main is not None else run_ids[0]]
    with st.expander("Input → model → output: where one job's time goes"):
        phases = warehouse().phase_breakdown([str(first.name)])
        st.graphviz_chart(_workflow(first, phases))
        undrawn = {p: analysis.phase_share_ends(phases, p) for p in sorted(set(phases.phase) - set(DRAWN_PHASES))}
        st.caption(measured.phase_caption(int(first.height), int(first.width), str(first["mode"]), undrawn))
    if ends:
        with st.expander("Measured against the roofline floor"):
            for end in ends:
                st.markdown(scaling.roofline(end))
            st.altair_chart(_roofline_chart(roof.dropna(subset=["floor_s"])), width="stretch")

    # 5. Did batching change the pictures? Each image against the same seed at batch 1 and in the other modes.
    if found:
        st.header("Did batching change the pictures?")
        for kind in invariance.KINDS:
            said = pictures.invariance(found.get(kind))
            if said:
                st.markdown(said)
        shown = pictures.batching_shown(quality.batching_shown(checks))
        if shown:
            st.markdown(shown)
        caveat = pictures.repeat_caveat(found)
        if caveat:
            st.caption(caveat)

    # Where it ran: images/s by batch size per host and device, side by side, when the runs span more than one
    # (every worker of a replica sweep too, each level labelled by its workers).
    every = sweep_runs(every_worker=True)
    side_by_side = replicas.places(warehouse().throughput(list(every.run_id)))
    if side_by_side is not None:
        st.header("By host and device")
        st.dataframe(side_by_side, hide_index=True, width="stretch")
        st.caption(said_workers.places_caption())

    st.header("The effects your data shows")
    notes = effects.effects(analysis.effects(runs, tp, models, costs, mix=warehouse().op_mix(run_ids),
                                             roof=roof), cite=paper)
    for note in notes:
        st.markdown("- " + note)
    if not notes:
        st.caption(effects.NO_EFFECTS)


def _answer_chart(intervals: pd.DataFrame, runs: pd.DataFrame) -> alt.Chart:
    """Each run's median job time over its smallest batch's, by batch size, between the two lines that frame the
    question: every image at full price (time grows with the batch) and every extra image free (flat)."""
    labels = runs.set_index("run_id").label
    rows = intervals.assign(label=intervals.run_id.map(labels))
    base = rows.loc[rows.groupby("run_id").batch_size.idxmin()].set_index("run_id")
    rows = rows.assign(base_batch=rows.run_id.map(base.batch_size), base_s=rows.run_id.map(base.median_s))
    rows = rows.assign(relative=rows.median_s / rows.base_s)
    sizes = sorted(rows.batch_size.unique())
    b0 = int(rows.base_batch.min())
    frame = pd.DataFrame({"batch_size": sizes * 2,
                          "relative": [b / b0 for b in sizes] + [1.0] * len(sizes),
                          "reference": ["each image at full price"] * len(sizes) + ["extra images free"] * len(sizes)})
    x = alt.X("batch_size:Q", scale=alt.Scale(type="log", base=2), title="batch size",
              axis=alt.Axis(values=[int(b) for b in sizes]))
    y = alt.Y("relative:Q", scale=alt.Scale(type="log", base=2), title="job time / time at the smallest batch")
    refs = alt.Chart(frame).mark_line(strokeDash=[4, 3], color="gray").encode(
        x=x, y=y, detail="reference:N", tooltip=["reference"])
    points = alt.Chart(rows).mark_line(point=True).encode(
        x=x, y=y, color=alt.Color("label:N", title="run"),
        tooltip=["label", "batch_size", "jobs", alt.Tooltip("median_s:Q", format=".3g", title="median s"),
                 alt.Tooltip("relative:Q", format=".2f", title="x smallest batch")])
    return (refs + points).properties(
        title="How much longer a bigger batch took (dashed: every image at full price, and extra images free)")


DRAWN_PHASES = ("encode_prompt", "denoise", "decode", "outside")   # the phases _workflow has a node for


def _workflow(run, shares: pd.DataFrame) -> str:
    def pct(phase):
        label = measured.phase_label(analysis.phase_share_ends(shares, phase))
        return f"\\n{label}" if label else ""

    # The text encoder only where the run has one (the inpainting LDM is conditioned on the image alone).
    text = (run.task != "inpaint") if shares.empty else bool((shares.phase == "encode_prompt").any())
    inputs = ('"prompt" -> "text encoder"; "text encoder" -> "UNet"; '
              f'"text encoder" [label="text encoder{pct("encode_prompt")}"]') if text else ""
    if run.task == "inpaint":
        inputs += '; "image + mask" -> "VAE encoder"; "VAE encoder" -> "UNet"'
    return f"""digraph {{ rankdir=LR; node [shape=box, style=rounded, fontsize=11];
        {inputs.strip("; ")};
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

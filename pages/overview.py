"""Overview: the answer to "why did my batch barely slow down?", from the chosen sweep."""

import altair as alt
import pandas as pd
import streamlit as st

from pages._shared import db_path, guarded, paper, query, sweep_runs
from warehouse import analysis, explain


def render():
    st.title("Why a batch barely slows down")
    runs = sweep_runs()
    if runs is None:
        return
    runs = runs.sort_values(["height", "width", "mode", "cfg"])
    tp = query("throughput", db_path(), list(runs.run_id))
    first = next(runs.itertuples())
    note = explain.embedded_note(analysis.uses_embedded_model(runs.model_id))
    if note:
        st.info(note)

    # 1. The task: what was measured.
    st.header("1. What you measured")
    st.markdown(explain.what_you_measured(analysis.sweep_summary(runs, tp)))

    # 2. The workflow, with where the time went.
    st.header("2. Input → model → output")
    phases = query("phase_breakdown", db_path(), [first.run_id])
    st.graphviz_chart(_workflow(first, analysis.phase_shares(phases) if not phases.empty else phases))
    st.caption(explain.phase_caption(first.height, first.width, first.mode, cite=paper))

    # 3. Why it barely slowed down: fixed + marginal cost, per run.
    st.header("3. Why it barely slowed down")
    fits = []
    for run in runs.itertuples():
        rows = tp[tp.run_id == run.run_id]
        st.subheader(run.label)
        scaled = analysis.scaling(rows)
        if scaled is None:
            st.warning(explain.NO_MEASURED_JOBS)
            continue
        st.markdown(f"**{explain.scaling(scaled)}**")
        fit = analysis.fit_fixed_marginal(rows)
        explained = explain.fit(fit)
        if explained:
            st.markdown(explained)
            fits.append(fit.residuals.assign(label=run.label))
        outcome = analysis.batching_outcome(rows, run.device, run.mode)
        if outcome:
            st.caption(explain.outcome(outcome))
    if fits:
        # One chart for every run: a chart per run would cost a second on a sweep of many runs.
        st.altair_chart(_fit_chart(pd.concat(fits, ignore_index=True)), width="stretch")

    st.header("The effects your data shows")
    for note in explain.effects(analysis.effects(runs, tp), cite=paper):
        st.markdown("- " + note)


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
        "VAE decoder" -> "images {run.height}x{run.width}"; }}"""


def _fit_chart(res: pd.DataFrame) -> alt.Chart:
    """Measured points and fitted lines of every run, and the residuals beside them."""
    x = alt.X("batch_size:Q", scale=alt.Scale(type="log", base=2), title="batch size")
    color = alt.Color("label:N", title="run")
    measured = alt.Chart(res).mark_point(size=60).encode(
        x=x, y=alt.Y("measured_s:Q", title="median job time (s)"), color=color,
        shape=alt.Shape("in_fit:N", title="in the fit"), tooltip=["label", "batch_size", "measured_s", "fitted_s"])
    line = alt.Chart(res).mark_line(strokeDash=[4, 3]).encode(x=x, y="fitted_s:Q", color=color)
    resid = alt.Chart(res).mark_bar().encode(
        x=alt.X("batch_size:O", title="batch size"), xOffset="label:N",
        y=alt.Y("residual_s:Q", title="residual (s)"), color=color)
    return alt.hconcat((line + measured).properties(title="t(B) = fixed + marginal x B (dashed: the fit)"),
                       resid.properties(title="measured minus fitted"))


guarded(render)

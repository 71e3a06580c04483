"""Overview: the answer to "why did my batch barely slow down?", from the chosen sweep."""

import altair as alt
import pandas as pd
import streamlit as st

from pages._shared import db_path, guarded, paper, query, sweep_runs
from warehouse import analysis

EMBEDDED_NOTE = ("These runs used the embedded tiny model: random, seeded weights that draw noise. "
                 "It is there to measure where the time goes, not to make pictures; point "
                 "`--model` at a local diffusers folder for real weights.")


def render():
    st.title("Why a batch barely slows down")
    runs = sweep_runs()
    if runs is None:
        return
    runs = runs.sort_values(["height", "width", "mode", "cfg"])
    tp = query("throughput", db_path(), list(runs.run_id))
    first = next(runs.itertuples())
    if runs.model_id.str.startswith("embedded-").any():
        st.info(EMBEDDED_NOTE)

    # 1. The task: what was measured.
    st.header("1. What you measured")
    sizes = ", ".join(sorted({f"{h}x{w}" for h, w in zip(runs.height, runs.width)}, key=len))
    st.markdown(
        f"Batched latent-diffusion **{first.task}** generation with `{first.model_id}` "
        f"({first.model_params / 1e6:.1f} M parameters) on **{first.device_name}** ({first.dtype}): "
        f"{len(runs)} runs at {sizes} px, modes {', '.join(sorted(set(runs['mode'])))}, "
        f"batch sizes {', '.join(map(str, sorted(set(tp.batch_size))))}, {first.steps} denoising steps, "
        f"guidance {', '.join(f'{g:g}' for g in sorted(set(runs.guidance_scale)))}.")

    # 2. The workflow, with where the time went.
    st.header("2. Input → model → output")
    phases = query("phase_breakdown", db_path(), [first.run_id])
    st.graphviz_chart(_workflow(first, analysis.phase_shares(phases) if not phases.empty else phases))
    st.caption(f"Phase shares are medians of your {first.height}x{first.width} {first.mode} run at "
               f"its smallest and largest batch. The UNet works on a latent "
               f"{first.height // 8}x{first.width // 8}, 8x smaller per side than the image "
               f"({paper('ldm')}): so little work per image that one image cannot fill the device.")

    # 3. Why it barely slowed down: fixed + marginal cost, per run.
    st.header("3. Why it barely slowed down")
    fits = []
    for run in runs.itertuples():
        rows = tp[tp.run_id == run.run_id]
        st.subheader(run.label)
        sentence = analysis.headline(rows)
        if sentence is None:
            st.warning("No successful measured jobs in this run.")
            continue
        st.markdown(f"**{sentence[0].upper() + sentence[1:]}.**")
        fit = analysis.fit_fixed_marginal(rows)
        explained = analysis.fit_sentence(fit)
        if explained:
            st.markdown(explained[0].upper() + explained[1:] + ".")
            fits.append(fit["residuals"].assign(label=run.label))
        why = analysis.verdict(rows, run.device, run.mode)
        if why:
            st.caption(why[0].upper() + why[1:] + ".")
    if fits:
        # One chart for every run: a chart per run would cost a second on a sweep of many runs.
        st.altair_chart(_fit_chart(pd.concat(fits, ignore_index=True)), width="stretch")
    _effects(runs, tp)


def _workflow(run, shares: pd.DataFrame) -> str:
    def pct(phase):
        if shares.empty:
            return ""
        by_batch = shares[shares.phase == phase].set_index("batch_size").share
        if by_batch.empty:
            return ""
        lo, hi = by_batch.index.min(), by_batch.index.max()
        return f"\\n{by_batch[lo]:.0%} at batch {lo}, {by_batch[hi]:.0%} at batch {hi}"

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


def _effects(runs: pd.DataFrame, tp: pd.DataFrame) -> None:
    st.header("The effects your data shows")
    notes = [f"**Latent space** ({paper('ldm')}): each image is denoised as a small latent, so per-call "
             "costs (launching work, reading the weights, Python) outweigh the work of one image."]
    knees = [analysis.knee(tp[tp.run_id == r]) for r in runs.run_id]
    if any(k is not None for k in knees):
        notes.append(f"**Compute-bound once batched** ({paper('beyond-llms')}): diffusion resembles LLM "
                     "prefill; past the knee each extra image costs nearly its full price.")
    if runs.cfg.fillna(False).any():
        notes.append(f"**Classifier-free guidance doubles the UNet batch** ({paper('streamdiffusion')}): "
                     "runs with CFG on send 2x the rows through every UNet call.")
    if "stream" in set(runs["mode"]) and "sequential" in set(runs["mode"]):
        stream = tp[tp["mode"] == "stream"]
        seq = tp[tp["mode"] == "sequential"]
        top = min(stream.batch_size.max(), seq.batch_size.max())
        ratio = (stream[stream.batch_size == top].images_per_s.median()
                 / seq[seq.batch_size == top].images_per_s.median())
        notes.append(f"**Stream Batch** ({paper('streamdiffusion')}): at batch {top}, stream mode gave "
                     f"{ratio:.2f}x the images per second of sequential generation (the paper reports ~1.5x "
                     "on a GPU).")
    if tp.height.nunique() > 1:
        small, large = tp.height.min(), tp.height.max()
        gain = {h: tp[tp.height == h].speedup.max() for h in (small, large)}
        notes.append(f"**Resolution** ({paper('flowdcn')}): the best speed-up was {gain[small]:.1f}x at "
                     f"{small} px and {gain[large]:.1f}x at {large} px: more latent tokens per image fill "
                     "the device sooner (attention grows with their square).")
    notes.append(f"**Where it stops**: when one image fills the device, batching gains nothing more; "
                 f"patch parallelism across GPUs ({paper('distrifusion')}) and fewer steps "
                 f"({paper('perflow')}) are the other axes.")
    for note in notes:
        st.markdown("- " + note)


guarded(render)

"""Memory: what batch fits on my card? Peak memory per phase against batch size, the phase that sets the
limit, and the largest batch predicted for this device and for common memory sizes."""

import altair as alt
import pandas as pd
import streamlit as st

from pages._shared import guarded, sweep_runs, warehouse
from warehouse import analysis, memory
from warehouse.explain import capacity


def render():
    st.title("What batch fits on my card?")
    runs = sweep_runs()
    if runs is None:
        return
    run_ids = list(runs.run_id)
    peaks = warehouse().memory_by_phase(run_ids)
    fits = {m.label: m for m in analysis.memory_fits(warehouse().memory_by_batch(run_ids))}
    if peaks.empty:
        st.info(capacity.NO_PHASE_PEAKS)
        return
    labels = list(dict.fromkeys(peaks.label))
    # First shown: the run whose memory grows fastest with the batch (where the question bites).
    growth = {lab: max((line.per_image for line in memory.phase_lines(g).values()), default=0.0)
              for lab, g in peaks.groupby("label", sort=False)}
    label = st.selectbox("Run", labels, index=labels.index(max(labels, key=lambda lab: growth.get(lab, 0.0))))
    mine = peaks[peaks.label == label]
    run = runs.set_index("label").loc[label]
    lines = memory.phase_lines(mine)

    # 1. The limit on this device, and the measured out-of-memory point beside it.
    here = memory.limit(lines, run.device_memory_bytes) if pd.notna(run.device_memory_bytes) else None
    fit = fits.get(label)
    said = capacity.memory_limit(label, lines, here, run.device)
    if said:
        st.markdown(said)
    if fit is not None:
        st.markdown(capacity.memory_fit(fit))

    # 2. Peak memory per phase and batch size, with each phase's line.
    st.altair_chart(_chart(mine, lines), width="stretch")
    st.caption(capacity.memory_caption(run.device))

    # 3. The largest batch for this device and for common memory sizes.
    table = _limits_table(lines, run.device_memory_bytes if pd.notna(run.device_memory_bytes) else None)
    if not table.empty:
        st.subheader("Largest batch by memory size")
        st.dataframe(table, hide_index=True, width="stretch")
        st.caption(capacity.batch_table_caption())

    # 4. What VAE slicing bought, where a run differs from this one only in it.
    twin = _slicing_twin(runs, run)
    if twin is not None:
        other = memory.phase_lines(peaks[peaks.run_id == twin.run_id])
        off, on = (lines, other) if not run.vae_slicing else (other, lines)
        device_bytes = run.device_memory_bytes if pd.notna(run.device_memory_bytes) else 24 * memory.GIB
        name = "this device" if pd.notna(run.device_memory_bytes) else "24 GiB"
        said = capacity.slicing_effect(off.get("decode"), on.get("decode"), memory.limit(off, device_bytes),
                                      memory.limit(on, device_bytes), name)
        if said:
            st.markdown(said)


def _chart(mine: pd.DataFrame, lines: dict) -> alt.Chart:
    medians = mine.groupby(["phase", "batch_size"], as_index=False).peak_mem_bytes.median()
    medians["MiB"] = medians.peak_mem_bytes / 2 ** 20
    x = alt.X("batch_size:Q", scale=alt.Scale(type="log", base=2), title="batch size")
    color = alt.Color("phase:N", title="phase", sort=list(memory.PHASES))
    points = alt.Chart(medians).mark_point(filled=True, size=50).encode(
        x=x, y=alt.Y("MiB:Q", title="peak memory (MiB)", scale=alt.Scale(zero=False)), color=color,
        tooltip=["phase", "batch_size", alt.Tooltip("MiB:Q", format=".1f")])
    fitted = pd.DataFrame([{"phase": p, "batch_size": b, "MiB": line.at(b) / 2 ** 20}
                           for p, line in lines.items() for b in line.sizes])
    if fitted.empty:
        return points
    line = alt.Chart(fitted).mark_line(strokeDash=[4, 3]).encode(x=x, y="MiB:Q", color=color)
    return (line + points).properties(title="Peak memory per phase (points: medians; dashed: m0 + m1·B)")


def _limits_table(lines: dict, device_bytes) -> pd.DataFrame:
    rows = []
    for name, lim in memory.limits(lines, device_bytes):
        rows.append({"memory": name, "limiting phase": lim.phase or "none grows",
                     "largest batch": ("beyond reach" if lim.too_far else "" if lim.largest_batch is None
                                       else str(lim.largest_batch))})
    return pd.DataFrame(rows)


def _slicing_twin(runs: pd.DataFrame, run):
    """The run of the sweep that differs from `run` only in its VAE slicing, or None."""
    same = runs[(runs.height == run.height) & (runs.width == run.width) & (runs["mode"] == run["mode"])
                & (runs.guidance_scale == run.guidance_scale) & (runs.task == run.task)
                & (runs.vae_slicing.fillna(False) != bool(run.vae_slicing))]
    return next(same.itertuples(), None)


guarded(render)

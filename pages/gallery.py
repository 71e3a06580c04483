"""Gallery: the images a job kept, with prompt and seed, each beside the same seed at batch 1 and in the other
modes with how far they differ. Only files under the output folder are shown."""

from pathlib import Path

import streamlit as st

from settings import OUTPUT_DIR, path

from pages._shared import guarded, sweep_runs, warehouse
from warehouse import analysis, invariance
from warehouse.explain import measured, pictures


def output_dir() -> Path:
    return Path(path(OUTPUT_DIR)).resolve()


def _show(path: str, caption: str) -> bool:
    """Show a PNG if it lies under the output folder; False (not read) if it lies elsewhere."""
    resolved = Path(path).resolve()
    if not resolved.is_relative_to(output_dir()):  # a warehouse row must not make the dashboard read other files
        return False
    if resolved.is_file():
        st.image(str(resolved), caption=caption, width="stretch")
    else:
        st.caption(pictures.missing(caption))
    return True


def render():
    st.title("Gallery")
    runs = sweep_runs()
    if runs is None:
        return
    jobs = warehouse().jobs_with_images(list(runs.run_id))
    if jobs.empty:
        st.info(pictures.NO_IMAGES)
        return
    note = measured.embedded_images_note(analysis.uses_embedded_model(runs.model_kind)
                                        or analysis.uses_preset(runs.model_kind))
    if note:
        st.caption(note)
    options = {f"{j.label} · batch {j.batch_size}": j.job_id for j in jobs.itertuples()}
    # First shown: a job of more than one image, whose pictures can be held against batch 1.
    batched = [n for n, j in enumerate(jobs.itertuples()) if j.batch_size > 1]
    job_id = options[st.selectbox("Job", list(options), index=batched[0] if batched else 0)]
    task = jobs.set_index("job_id").task[job_id]
    if task == "inpaint":
        st.caption(pictures.INPAINTING)
    refused = []
    cols = st.columns(6)
    for n, img in enumerate(warehouse().images(job_id).itertuples()):
        with cols[n % 6]:
            for path, caption in [(img.path, f"#{img.index} · seed {img.seed}"), (img.mask_path, "mask")]:
                if isinstance(path, str) and path:
                    if not _show(path, caption):
                        refused.append(path)
            st.caption(img.prompt)
    # The same seeds elsewhere: each kept image beside the kept picture it was compared with.
    pairs = invariance.pairs(warehouse().image_checks(list(runs.run_id)), job_id)
    if not pairs.empty:
        st.subheader("The same seed at batch 1 and in the other modes")
        for pair in pairs.itertuples():
            ref = pictures.reference(pair.seed, pair.ref_mode, pair.ref_batch_size, bool(pair.ref_vae_slicing))
            left, right, text = st.columns([1, 1, 4])
            with left:
                if not _show(pair.path, f"#{pair.index} · batch {jobs.set_index('job_id').batch_size[job_id]}"):
                    refused.append(pair.path)
            with right:
                if not _show(pair.ref_path, ref):
                    refused.append(pair.ref_path)
            with text:
                st.markdown(pictures.pair_caption(int(pair.max_abs_diff), pair.psnr_db, ref))
    refused = list(dict.fromkeys(refused))  # a path refused in the grid and again in a pair is one path
    if refused:
        st.warning(pictures.refused(refused, str(output_dir())))


guarded(render)

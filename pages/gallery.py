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
    note = measured.embedded_images_note(analysis.draws_noise(runs))
    if note:
        st.caption(note)
    if analysis.uses_trained_model(runs):
        st.caption(pictures.READING)
    options = {f"{j.label} · batch {j.batch_size}": j.job_id for j in jobs.itertuples()}
    # First shown: a job of more than one image, whose pictures can be held against batch 1.
    batched = [n for n, j in enumerate(jobs.itertuples()) if j.batch_size > 1]
    job_id = options[st.selectbox("Job", list(options), index=batched[0] if batched else 0)]
    task = jobs.set_index("job_id").task[job_id]
    images = warehouse().images(job_id)
    given = task == "inpaint" and images.input_path.notna().any()
    if task == "inpaint":
        st.caption(pictures.INPAINTING_INPUT if given else pictures.INPAINTING)
    refused = []
    cols = st.columns(6)
    for n, img in enumerate(images.itertuples()):
        with cols[n % 6]:
            shown = [(img.input_path, f"#{img.index} · given"), (img.path, "filled")] if given else [
                (img.path, f"#{img.index} · seed {img.seed}"), (img.mask_path, "mask")]
            for path, caption in shown:
                if isinstance(path, str) and path:
                    if not _show(path, caption):
                        refused.append(path)
            st.caption(img.prompt)
            said = pictures.reading(img.shown_colour, img.shown_shape, img.shown_background, img.colours_right,
                                    img.shape_right)
            if said:
                st.caption(said)
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
    # The same seed with CFG off and on (runs that differ only in CFG).
    pairs = warehouse().cfg_pairs(list(runs.run_id))
    if not pairs.empty:
        st.subheader("The same seed without and with guidance")
        st.caption(pictures.CFG_PAIRS)
        cols = st.columns(4)
        for n, pair in enumerate(pairs.itertuples()):
            off, on = pictures.cfg_pair(int(pair.seed), float(pair.guidance_scale), pair.off_right, pair.on_right)
            with cols[n % 4]:
                st.caption(pair.prompt)
                for path, caption in ((pair.off_path, off), (pair.on_path, on)):
                    if not _show(path, caption):
                        refused.append(path)
    refused = list(dict.fromkeys(refused))  # a path refused in the grid and again in a pair is one path
    if refused:
        st.warning(pictures.refused(refused, str(output_dir())))


guarded(render)

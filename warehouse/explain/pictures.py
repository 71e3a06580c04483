"""Sentences: did batching (the mode, VAE slicing) change the pictures? From warehouse/invariance.py's
summaries; each quotes the figures it rests on."""

from __future__ import annotations

import pandas as pd

from ..invariance import Invariance
from ..quality import BatchingShown, StepsEffect
from . import words

def _diff(worst) -> str:
    psnr = f", PSNR {worst.psnr_db:.1f} dB" if worst.psnr_db is not None else ""
    return f"{worst.max_abs_diff}/255{psnr}"


def _side(mode: str, batch: int, slicing: bool) -> str:
    return f"{mode} batch {batch}" + (" with VAE slicing" if slicing else "")


def invariance(inv: Invariance | None) -> str | None:
    """One kind of comparison as a sentence: identical, within 1/255, or the largest difference and where."""
    if inv is None:
        return None
    w = inv.worst
    what = {
        "batching": ("**Did batching change the pictures?**",
                     f"{inv.compared} images drawn at batch {span(inv.batch_sizes, exclude=1)} against the same "
                     "seed at batch 1 of the same run"),
        "repeat": ("**Does batch 1 repeat itself?**",
                   f"{inv.compared} batch-1 images drawn again against their first drawing"),
        "mode": ("**Did the mode change the pictures?**",
                 f"{inv.compared} images of {', '.join(inv.modes)} against the same seed and batch size in "
                 "another mode"),
        "vae_slicing": ("**Did VAE slicing change the pictures?**",
                        f"{inv.compared} images with VAE slicing on against off (same seed and batch size)"),
    }[inv.kind]
    # The answer to each question when the pictures are identical, differ by at most 1/255, or differ more:
    # "did X change them?" is answered no when identical; "does batch 1 repeat itself?" is answered yes.
    same, close, apart = ("Yes", "Not exactly", "No") if inv.kind == "repeat" else ("No", "Not visibly", "Yes")
    if inv.all_identical:
        return f"{what[0]} {same}: {what[1]} are identical, pixel for pixel."
    where = (f"seed {w.seed}, {_side(w.mode, w.batch_size, w.vae_slicing)} against "
             f"{_side(w.ref_mode, w.ref_batch_size, w.ref_vae_slicing)} ({w.label})")
    if w.max_abs_diff <= 1:
        return (f"{what[0]} {close}: {what[1]} differ by at most 1/255 in any pixel channel "
                f"({inv.identical} of {inv.compared} identical; the largest difference {_diff(w)} at {where}).")
    return (f"{what[0]} {apart}: {what[1]}: {inv.identical} of {inv.compared} identical; the largest difference "
            f"is {_diff(w)}, {where}.")


def repeat_caveat(inv: dict) -> str | None:
    """When batch 1 does not repeat itself, differences under batching may be the device's own noise."""
    rep = inv.get("repeat")
    if rep is None or rep.all_identical or "batching" not in inv:
        return None
    return (f"Batch 1 drawn again differs from its first drawing by up to {rep.worst.max_abs_diff}/255, so "
            "differences of that size under batching may be this device's own variation, not the batch's.")


def span(sizes: tuple[int, ...], exclude: int | None = None) -> str:
    sizes = tuple(b for b in sizes if b != exclude) or sizes
    return str(sizes[0]) if len(sizes) == 1 else f"{min(sizes)}–{max(sizes)}"


def pair_caption(max_abs_diff: int, psnr_db: float | None, ref: str) -> str:
    """The figures under a pair of pictures in the Gallery."""
    if max_abs_diff == 0:
        return f"identical to {ref}"
    psnr = f", PSNR {psnr_db:.1f} dB" if psnr_db is not None and not pd.isna(psnr_db) else ""
    return f"against {ref}: largest difference {max_abs_diff}/255{psnr}"


NO_IMAGES = "No images kept in this sweep (`--save-images none`)."
INPAINTING = "Inpainting: each image with the mask it was inpainted with (white = repainted)."
INPAINTING_INPUT = "Inpainting: each picture as the model was given it (the hole grey), and as the model filled it."
READING = ("Under each picture, what it shows read against its prompt (generator/measure/quality.py): the shape's "
           "colour, the shape, and the border's colour, each the nearest of the palette.")


def reading(colour, shape, background, colours_right, shape_right) -> str | None:
    """What one picture shows, and whether it is what its prompt asked (None: the prompt is not a caption)."""
    if background is None or pd.isna(background):
        return None
    drawn = "no shape" if colour is None or pd.isna(colour) else f"a {colour} {shape}"
    verdict = ("as asked" if colours_right and shape_right else
               "colours as asked, not the shape" if colours_right else "not the asked colours")
    return f"shows {drawn} on {background}: {verdict}"


def cfg_pair(seed: int, guidance: float, off_right, on_right) -> tuple[str, str]:
    """Captions of the same seed with CFG off and on."""
    def mark(right) -> str:
        return "" if right is None or pd.isna(right) else (" · colours as asked" if right else " · not as asked")
    return f"seed {seed}, CFG off{mark(off_right)}", f"seed {seed}, CFG {guidance:g}{mark(on_right)}"


CFG_PAIRS = ("The same seed and prompt drawn without and with classifier-free guidance (CFG; arXiv 2207.12598): "
             "guidance pushes each step away from the unconditional prediction, at twice the UNet rows.")


def missing(caption: str) -> str:
    return f"{caption}: file missing"


def reference(seed: int, mode: str, batch_size: int, vae_slicing: bool) -> str:
    """The picture an image was compared with: its seed, mode and batch size."""
    return f"seed {seed} at {mode} batch {batch_size}" + (" with VAE slicing" if vae_slicing else "")


def refused(paths: list[str], folder: str) -> str:
    """Image paths the warehouse holds outside the output folder: not read, and said so (the first three)."""
    return (f"{len(paths)} image path(s) lie outside the output folder {folder} and were not shown: "
            + ", ".join(paths[:3]))


# What the pictures show (warehouse/quality.py): fewer steps against a bigger batch.
def _share(right: int, n: int, interval) -> str:
    return f"{right} of {n} ({words.pct(interval.value)} [{words.pct(interval.low)}–{words.pct(interval.high)}])"


def steps_effect(e: StepsEffect, cite: words.Cite) -> str:
    """Fewer steps: the share of pictures showing the asked colours at the fewest and the most steps, and the time
    per image each took; "cost" only where the two 95% intervals are apart, in the direction they are apart."""
    time = ("" if pd.isna(e.few_s) or pd.isna(e.many_s) else
            f"; the median time per image was {words.g(e.few_s)} s against {words.g(e.many_s)} s")
    head = (f"**Fewer steps** ({cite('perflow')}; {cite('instaflow')} and {cite('hipa')} take it to one step; "
            f"{e.setting}, batch {e.batch_size}): at {e.few} steps {_share(*e.few_counts, e.few_right)} "
            f"pictures show the asked colours, at {e.many} steps {_share(*e.many_counts, e.many_right)}{time}.")
    if not e.apart:
        return head + " The two shares' 95% intervals overlap: these pictures cannot tell the two step counts apart."
    if e.few_right.high < e.many_right.low:
        return head + f" Going down to {e.few} steps cost pictures (the 95% intervals are apart)."
    return head + f" At {e.few} steps more pictures were right (the 95% intervals are apart)."


def batching_shown(b: BatchingShown | None) -> str | None:
    """Batching and what the pictures show: pictures at batch 2+ against the same seed at batch 1."""
    if b is None:
        return None
    sizes = span(b.batch_sizes)
    if b.same == b.compared:
        return (f"**Did batching change what the pictures show?** No: all {b.compared} pictures drawn at batch {sizes} "
                f"show the same colours and shape as the same seed at batch 1 (95% interval of the share "
                f"{words.pct(b.share.low)}–100%).")
    return (f"**Did batching change what the pictures show?** In {b.compared - b.same} of {b.compared} pictures drawn "
            f"at batch {sizes}: {_share(b.same, b.compared, b.share)} show the same colours and shape as the same seed "
            "at batch 1.")


TRADEOFF_CAPTION = ("Each point: the median time per image (bars: its 95% interval) against the share of pictures "
                    "that show the colours their prompt asked for (bars: the 95% Clopper-Pearson interval of the "
                    "share). `steps`: the same run setting at each step count, at one batch size; `batch size`: one of "
                    "those runs at each of its batch sizes. Batching moves a point left; fewer steps move it left and, "
                    "where the model needs the steps, down.")

"""Sentences: did batching (the mode, VAE slicing) change the pictures? From warehouse/invariance.py's
summaries; each quotes the figures it rests on."""

from __future__ import annotations

import pandas as pd

from ..invariance import Invariance

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


def missing(caption: str) -> str:
    return f"{caption}: file missing"


def reference(seed: int, mode: str, batch_size: int, vae_slicing: bool) -> str:
    """The picture an image was compared with: its seed, mode and batch size."""
    return f"seed {seed} at {mode} batch {batch_size}" + (" with VAE slicing" if vae_slicing else "")


def refused(paths: list[str], folder: str) -> str:
    """Image paths the warehouse holds outside the output folder: not read, and said so (the first three)."""
    return (f"{len(paths)} image path(s) lie outside the output folder {folder} and were not shown: "
            + ", ".join(paths[:3]))

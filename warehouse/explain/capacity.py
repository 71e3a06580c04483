"""Sentences: what batch fits on my card? From warehouse/memory.py's lines and limits."""

from __future__ import annotations

from ..analysis import MemoryFit
from ..memory import FAR, GROWTH_MIN, Limit
from .pictures import span


def _bytes(n: float) -> str:
    for unit, size in (("GiB", 2 ** 30), ("MiB", 2 ** 20), ("KiB", 2 ** 10)):
        if abs(n) >= size:
            return f"{n / size:.3g} {unit}"
    return f"{n:.0f} B"


PHASE_NAMES = {"encode_prompt": "text encoding", "prepare": "preparing the latents", "denoise": "denoising",
               "decode": "VAE decoding", "postprocess": "post-processing"}


def memory_limit(label: str, lines: dict, here: Limit | None, device: str) -> str | None:
    """The phase that sets the limit on this device and the largest batch it allows (the measured
    out-of-memory point goes beside it: memory_fit)."""
    if not lines:
        return None
    if here is None or here.phase is None:
        sizes = tuple(sorted({b for line in lines.values() for b in line.sizes}))
        return (f"**{label}**: no phase's peak memory grew by {GROWTH_MIN:.0%} or more of its base over batch "
                f"{span(sizes)}, so these data set no limit.")
    line = lines[here.phase]
    what = "GPU memory" if device.startswith("cuda") else "RAM (the process's peak RSS)"
    text = (f"**{label}**: {PHASE_NAMES.get(here.phase, here.phase)} sets the limit: its peak grows by "
            f"{_bytes(line.per_image)} per image from {_bytes(line.base)} (fitted on batch "
            f"{span(line.sizes)}, within {line.worst_residual:.0%}). With this device's "
            f"{_bytes(here.capacity)} of {what} ")
    if here.too_far:
        text += (f"the largest batch lies more than {FAR}x beyond the largest measured ({max(line.sizes)}): too "
                 "far to extrapolate")
    else:
        text += (f"the largest batch is about {here.largest_batch}"
                 + (" (an extrapolation beyond the batch sizes measured, and an upper bound: the device keeps "
                    "some memory for itself)" if here.extrapolated else ""))
    return text + "."


def slicing_effect(phase_off, phase_on, limit_off: Limit, limit_on: Limit, capacity_name: str) -> str | None:
    """What VAE slicing bought: decode's growth per image with and without it, and the largest batch."""
    if phase_off is None or phase_on is None or not phase_off.grows:
        return None
    text = (f"**VAE slicing**: decoding grew by {_bytes(phase_off.per_image)} per image without it and "
            f"{_bytes(max(phase_on.per_image, 0))} with it")
    named = [lim for lim in (limit_off, limit_on) if lim.largest_batch is not None and not lim.too_far]
    if len(named) == 2:
        text += (f"; the largest batch on {capacity_name} goes from about {limit_off.largest_batch} "
                 f"({PHASE_NAMES.get(limit_off.phase, limit_off.phase)} the limit) to about "
                 f"{limit_on.largest_batch} ({PHASE_NAMES.get(limit_on.phase, limit_on.phase)} the limit)")
    return text + "."


def memory_caption(device: str) -> str:
    if device.startswith("cuda"):
        return ("Peak memory per phase: CUDA's max allocated, reset at each phase boundary. Lines: "
                "m(B) = m0 + m1·B fitted per phase on the median peak of each batch size.")
    return ("Peak memory per phase: the process's peak RSS (weights, runtime and libraries included), reset at "
            "each phase boundary; on a CPU a phase's peak includes what earlier phases of the job left allocated. "
            "Lines: m(B) = m0 + m1·B fitted per phase on the median peak of each batch size.")


def memory_fit(m: MemoryFit) -> str:
    """Measured: the largest batch that fitted in memory, and the smallest that did not (if one failed)."""
    fitted = m.largest_fitted if m.largest_fitted is not None else "none"
    text = f"**{m.label}**, measured: largest batch that fitted: {fitted}"
    if m.first_failed is not None:
        text += f"; batch {m.first_failed} failed ({m.failed_statuses})"
    return text + "."


NO_PHASE_PEAKS = "No peak memory per phase in this sweep (it was recorded from schema migration 7 on)."


def batch_table_caption() -> str:
    """How the table of the largest batch by memory size is computed, and what it does not count."""
    return (f"floor((memory − m0) / m1) of the phase that runs out first; not named beyond {FAR}x the largest "
            "batch measured. An upper bound: the runtime keeps memory of its own.")

"""Which of the known effects the data shows (the Overview's notes), each with the figures that show it."""

from __future__ import annotations

import pandas as pd

from ..analysis import Effects, SharedCost, StreamGain
from . import words

NO_EFFECTS = "None of the effects the dashboard explains is shown by these data."


def effects(e: Effects, cite: words.Cite) -> list[str]:
    """One note per effect the data shows, each quoting the figures that show it."""
    notes = []
    if e.shared:
        s = max(e.shared, key=lambda sc: sc.model.fixed_share.value)
        m = s.model
        notes.append(f"**Latent space** ({cite('ldm')}): each image is denoised as a small latent, and a cost "
                     f"per call outweighed the work of one image: in {s.label}, {words.share(m.fixed_share)} of batch "
                     f"{m.base_batch}'s time was fixed cost per call. {_fixed_parts(s)}")
    for sat in e.saturated:
        m = sat.model
        notes.append(f"**Compute-bound once batched** ({cite('beyond-llms')}): in {sat.label}, each extra image "
                     f"cost {words.est(m.marginal_s)} up to batch {m.knee.value:g} and {words.est(m.marginal_after_s)} "
                     "after it: diffusion resembles LLM prefill once the device is full.")
    if e.cfg:
        notes.append(f"**Classifier-free guidance doubles the UNet batch** ({cite('streamdiffusion')}): "
                     "runs with CFG on send 2x the rows through every UNet call.")
    for g in e.stream:
        loop = ("" if pd.isna(g.denoise) else
                f"{_x(g.denoise, g.denoise_range)} for the denoising loop (the paper reports ~1.5x on a GPU) and ")
        notes.append(f"**Stream Batch** ({cite('streamdiffusion')}): at {g.size}, CFG {'on' if g.cfg else 'off'}, "
                     f"batch {g.batch}, sequential time over stream time was {loop}"
                     f"{_x(g.end_to_end, g.end_to_end_range)} for the whole job, which also counts prompt encoding "
                     f"and VAE decoding, batched in stream mode. {_stream_vs_static(g)}")
    for r in e.resolution:
        head = (f"**Resolution** ({cite('flowdcn')}): {r.mode}, CFG {'on' if r.cfg else 'off'}, the speed-up at "
                f"batch {r.batch} over batch {r.base} was {_x(r.small_speedup, r.small_range, '.1f')} at "
                f"{r.small_px} px ({r.small_label}) and {_x(r.large_speedup, r.large_range, '.1f')} at {r.large_px} "
                f"px ({r.large_label})")
        notes.append(head + {
            "less": ": the larger size gained less from batching, beyond both 95% intervals, as a larger latent "
                    "(more tokens per image) that fills the device sooner would.",
            "more": ": the larger size gained more from batching here, beyond both 95% intervals.",
            "same": ": the two do not differ beyond their 95% intervals, so no effect of size is claimed.",
            None: ": too few jobs for 95% intervals, so no effect of size is claimed.",
        }[r.change])
    if e.saturated:
        knees = ", ".join(f"batch {s.model.knee.value:g}" for s in e.saturated)
        notes.append(f"**Where it stops** ({knees}): past the knee batching gains little more; patch parallelism "
                     f"across GPUs ({cite('distrifusion')}) and fewer steps ({cite('perflow')}) are the other axes.")
    return notes


def _fixed_parts(s: SharedCost) -> str:
    """What the data show of a fixed cost's parts, each as measured; no part is named that was not measured."""
    parts = []
    if s.overhead is not None:
        batch, share = s.overhead
        parts.append(f"at batch {batch}, {words.pct(share)} of its UNet time was outside every operator (Python and "
                     "framework dispatch, or an idle device: the operator profile)")
    if s.weight_read is not None:
        batch, share = s.weight_read
        parts.append(f"reading the UNet's weights once per call at the measured copy speed takes {share:.1%} of "
                     f"the denoising time at batch {batch} (the roofline)")
    if not parts:
        return ("What the fixed cost is made of is not measured here (`--profile-ops` profiles the UNet's "
                "operators).")
    return "What the data show of it: " + "; ".join(parts) + "."


def _x(ratio: float, span: tuple[float, float] | None, fmt: str = ".2f") -> str:
    """A ratio with its 95% interval: '2.85x [2.60–3.10]' (no brackets without one)."""
    return f"{ratio:{fmt}}x" + ("" if span is None else f" [{span[0]:{fmt}}–{span[1]:{fmt}}]")


def _stream_vs_static(g: StreamGain) -> str:
    """Stream against static batching of the same setting, and which was faster (only beyond the interval)."""
    if g.over_static is None:
        return "No static run of the same setting was measured to compare stream with."
    label = f" ({g.static_label})" if g.static_label else ""
    text = f"Against static batching{label} at batch {g.static_batch}, static time over stream time was " \
           f"{_x(g.over_static, g.over_static_range)}"
    if g.over_static_range is None:
        return text + ": too few jobs for a 95% interval, so neither is said to be faster."
    return text + {True: ": static was faster, beyond the interval: plain batching beat Stream Batch here.",
                   False: ": stream was faster than static too, beyond the interval.",
                   None: ": neither was faster beyond the interval."}[g.static_won]

"""Findings into sentences: the one place where the dashboard's claims are worded.

Every function takes findings computed by warehouse/analysis.py (or query rows) and
returns whole sentences (Markdown), or None when its condition does not hold; each
sentence quotes the numbers it rests on. Pages only place what these return. A paper
is cited through `cite(key)`, which the page supplies (a link to its Papers row).
No Streamlit here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import pandas as pd

from .analysis import (
    CONV_SHARE_REPORTED,
    KNEE_EFFICIENCY,
    ConvShare,
    Effects,
    Fit,
    MemoryFit,
    Outcome,
    Scaling,
    SweepSummary,
)

Cite = Callable[[str], str]

NO_MEASURED_JOBS = "No successful measured jobs in this run."
KNEE_NOT_REACHED = "not reached"


def _pct(x: float) -> str:
    return f"{x:.0%}"


# Overview: what was measured.

def embedded_note(embedded: bool) -> str | None:
    """When a run used the embedded tiny model: what it is for."""
    if not embedded:
        return None
    return ("These runs used the embedded tiny model: random, seeded weights that draw noise. "
            "It is there to measure where the time goes, not to make pictures; point "
            "`--model` at a local diffusers folder for real weights.")


def embedded_images_note(embedded: bool) -> str | None:
    """Gallery: why the images of the embedded model are noise."""
    return "The embedded tiny model has random weights: its images are noise, by design." if embedded else None


def what_you_measured(s: SweepSummary) -> str:
    params = f" ({s.model_params / 1e6:.1f} M parameters)" if s.model_params is not None else ""
    return (f"Batched latent-diffusion **{s.task}** generation with `{s.model_id}`{params} "
            f"on **{s.device_name}** ({s.dtype}): {s.runs} runs at {', '.join(s.sizes)} px, "
            f"modes {', '.join(s.modes)}, batch sizes {', '.join(map(str, s.batch_sizes))}, "
            f"{s.steps} denoising steps, guidance {', '.join(f'{g:g}' for g in s.guidance)}.")


def phase_label(ends: tuple[int, float, int, float] | None) -> str:
    """A phase's share at its smallest and largest batch, for a node of the workflow graph ('' if unknown)."""
    if ends is None:
        return ""
    lo, lo_share, hi, hi_share = ends
    return f"{_pct(lo_share)} at batch {lo}, {_pct(hi_share)} at batch {hi}"


def phase_caption(height: int, width: int, mode: str, cite: Cite) -> str:
    return (f"Phase shares are medians of your {height}x{width} {mode} run at its smallest and largest batch. "
            f"The UNet works on a latent {height // 8}x{width // 8}, 8x smaller per side than the image "
            f"({cite('ldm')}): so little work per image that one image cannot fill the device.")


# Overview: why it barely slowed down, per run.

def scaling(s: Scaling) -> str:
    """The largest batch against the smallest measured one."""
    if s.top_batch == s.base_batch:
        return f"Only batch {s.base_batch} was measured: {s.base_images_per_s:.2f} images per second."
    return (f"Batch {s.top_batch} took {s.time_ratio:.1f}x as long as batch {s.base_batch}: "
            f"{s.speedup:.1f}x the images per second.")


def fit(f: Fit | None) -> str | None:
    """The line t(B) = fixed + marginal x B in words: the fixed share at batch 1, the cost of an extra image,
    and where the knee cuts the line (after the fitted batches, or at once). None without a share."""
    if f is None or f.fixed_share_at_1 is None:
        return None
    share = max(0.0, min(1.0, f.fixed_share_at_1))
    text = (f"At batch 1, {_pct(share)} of the time was fixed cost per call, shared by every extra image; "
            f"each extra image adds {f.marginal_s:.3g} s")
    if f.knee is not None and f.knee > max(f.batch_sizes):
        text += (f". The line holds up to batch {max(f.batch_sizes)}; from batch {f.knee} on, "
                 f"batching efficiency is below {_pct(KNEE_EFFICIENCY)}: the device is busy and each image "
                 "costs close to its full price")
    elif f.knee is not None:
        text += (f". Batching efficiency is below {_pct(KNEE_EFFICIENCY)} from batch {f.knee} on: "
                 "there is little fixed cost to share, and each image costs close to its full price")
    return text + "."


def outcome(o: Outcome) -> str:
    """Whether batching paid off, from the speed-up at the largest batch over the smallest."""
    busy = "the CPU cores" if o.device == "cpu" else "the GPU"
    if o.kind == "sequential":
        return ("Sequential mode makes one pipeline call per image, so nothing is shared between them: "
                "time grows in step with the batch. This is the baseline the other modes beat.")
    if o.kind == "paid_off":
        return ("Batching paid off: extra images rode along on fixed per-call costs "
                f"({o.speedup:.1f}x the images per second for {o.batch_ratio:.0f}x the images per call).")
    if o.kind == "faded":
        return (f"Batching helped, then faded: {o.speedup:.1f}x the images per second for "
                f"{o.batch_ratio:.0f}x the images per call, as {busy} filled up.")
    return (f"Batching helped little ({o.speedup:.1f}x the images per second): {busy} were already busy "
            "at the smallest batch (compute-bound), so extra images cost nearly their full price.")


# Overview: the effects the data shows.

def effects(e: Effects, cite: Cite) -> list[str]:
    """One note per effect the data shows; the latent-space and where-it-stops notes always."""
    notes = [(f"**Latent space** ({cite('ldm')}): each image is denoised as a small latent, so per-call "
              "costs (launching work, reading the weights, Python) outweigh the work of one image.")]
    if e.knee_reached:
        notes.append(f"**Compute-bound once batched** ({cite('beyond-llms')}): diffusion resembles LLM "
                     "prefill; past the knee each extra image costs nearly its full price.")
    if e.cfg:
        notes.append(f"**Classifier-free guidance doubles the UNet batch** ({cite('streamdiffusion')}): "
                     "runs with CFG on send 2x the rows through every UNet call.")
    if e.stream is not None:
        notes.append(f"**Stream Batch** ({cite('streamdiffusion')}): at batch {e.stream.batch}, stream mode gave "
                     f"{e.stream.ratio:.2f}x the images per second of sequential generation (the paper reports "
                     "~1.5x on a GPU).")
    if e.resolution is not None:
        r = e.resolution
        notes.append(f"**Resolution** ({cite('flowdcn')}): the best speed-up over the smallest batch was "
                     f"{r.small_speedup:.1f}x at {r.small_px} px and {r.large_speedup:.1f}x at {r.large_px} px: "
                     "more latent tokens per image fill the device sooner (attention grows with their square).")
    notes.append(f"**Where it stops**: when one image fills the device, batching gains nothing more; "
                 f"patch parallelism across GPUs ({cite('distrifusion')}) and fewer steps "
                 f"({cite('perflow')}) are the other axes.")
    return notes


# Throughput: names of the figures, and the knee table.

def _bases(base_batches: Iterable[int]) -> list[int]:
    return sorted({int(b) for b in base_batches})


def speedup_title(base_batches: Iterable[int]) -> str:
    """'Speed-up over batch N' when every run's smallest measured batch is N, else over the smallest batch."""
    bases = _bases(base_batches)
    return f"Speed-up over batch {bases[0]}" if len(bases) == 1 else "Speed-up over the smallest batch"


def speedup_axis(base_batches: Iterable[int]) -> str:
    bases = _bases(base_batches)
    return f"x batch {bases[0]}" if len(bases) == 1 else "x smallest batch"


def efficiency_axis(base_batches: Iterable[int]) -> str:
    """Efficiency = speed-up / (batch / smallest batch); with batch 1 as the smallest, speed-up / batch."""
    bases = _bases(base_batches)
    if bases == [1]:
        return "speed-up / batch"
    return f"speed-up / (batch / {bases[0]})" if len(bases) == 1 else "speed-up / (batch / smallest batch)"


def knee_caption() -> str:
    return (f"The smallest batch whose batching efficiency (speed-up over the run's smallest measured batch, "
            f"per image added) is below {_pct(KNEE_EFFICIENCY)}: from there on the device is busy and each image "
            "costs close to its full price (the dashed line above).")


def knee_table(knees: pd.DataFrame) -> pd.DataFrame:
    """analysis.knees rows with readable headers."""
    return pd.DataFrame({
        "run": knees.label,
        "speed-up over batch": knees.base_batch,
        "knee (batch size)": [KNEE_NOT_REACHED if pd.isna(k) else str(int(k)) for k in knees.knee],
        "best images/s": knees.best_images_per_s.round(2)})


# Operators and telemetry.

def conv_share(c: ConvShare | None, cite: Cite) -> str | None:
    """Convolution's share of UNet time here, against the share the paper reports."""
    if c is None:
        return None
    return (f"Convolution took {_pct(c.low)}–{_pct(c.high)} of UNet time here; {cite('beyond-llms')} reports up "
            f"to {_pct(CONV_SHARE_REPORTED)} for diffusion text-to-image models (dashed line). `overhead` is "
            "UNet time outside every operator (Python and framework dispatch): large at small batches, it is "
            "the fixed cost that batching shares.")


def conv_rule_tooltip() -> str:
    return f"convolution up to {_pct(CONV_SHARE_REPORTED)} of diffusion TTI time (arXiv 2312.14385)"


def memory_fit(m: MemoryFit) -> str:
    """The largest batch that fitted in memory, and the smallest that did not (if one failed)."""
    fitted = m.largest_fitted if m.largest_fitted is not None else "none"
    text = f"**{m.label}**: largest batch that fitted: {fitted}"
    if m.first_failed is not None:
        text += f"; batch {m.first_failed} failed ({m.failed_statuses})"
    return text + "."

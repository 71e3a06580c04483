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

from .. import contention
from ..analysis import (
    CONV_SHARE_REPORTED,
    UNCERTAIN,
    ConvShare,
    Effects,
    FirstFull,
    MemoryFit,
    PresetUse,
    ResolutionGain,
    RooflineEnds,
    Scaling,
    SharedCost,
    StreamGain,
    SweepSummary,
    Trust,
)
from ..costmodel import BIC_MARGIN, MIN_SIZES_FOR_KNEE, Bump, CostModel, Estimate, NoModel

Cite = Callable[[str], str]

NO_MEASURED_JOBS = "No successful measured jobs in this run."
NO_EFFECTS = "None of the effects the dashboard explains is shown by these data."
NO_INTERVAL = "(no interval: too few jobs)"


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


def preset_note(used: PresetUse) -> str | None:
    """When runs used an architecture preset: what their figures mean. Only a preset with a published
    model's shapes is said to time like that model; a toy-width one times only itself."""
    if not used.real and not used.toy:
        return None
    parts = []
    if used.real:
        parts.append(f"{_names(used.real)}: the published model's shapes with random, seeded weights, built "
                     "offline; a step times like the real model's")
    if used.toy:
        parts.append(f"{_names(used.toy)}: random, seeded weights at toy widths, far smaller than any published "
                     "model, so its times are not a real model's")
    return ("These runs used an architecture preset (`--arch`): " + "; ".join(parts) + ". The pictures are "
            "noise; point `--model` at a local diffusers folder for real weights.")


def _names(archs: tuple[str, ...]) -> str:
    return ", ".join(f"`{a}`" for a in archs)


def embedded_images_note(random_weights: bool) -> str | None:
    """Gallery: why the images of the embedded model (or a preset) are noise."""
    return "These models have random weights: their images are noise, by design." if random_weights else None


def what_you_measured(s: SweepSummary) -> str:
    def one(task, model_id, params):
        size = f" ({params / 1e6:.1f} M parameters)" if params is not None else ""
        return f"**{task}** generation with `{model_id}`{size}"

    models = s.models or ((s.task, s.model_id, s.model_params),)
    return (f"Batched latent-diffusion {' and '.join(one(*m) for m in models)} "
            f"on **{s.device_name}** ({s.dtype}): {s.runs} runs at {', '.join(s.sizes)} px, "
            f"modes {', '.join(s.modes)}, batch sizes {', '.join(map(str, s.batch_sizes))}, "
            f"{s.steps} denoising steps, guidance {', '.join(f'{g:g}' for g in s.guidance)}.")


def phase_label(ends: tuple[int, float, int, float] | None) -> str:
    """A phase's share at its smallest and largest batch, for a node of the workflow graph ('' if unknown)."""
    if ends is None:
        return ""
    lo, lo_share, hi, hi_share = ends
    return f"{_pct(lo_share)} at batch {lo}, {_pct(hi_share)} at batch {hi}"


def phase_caption(height: int, width: int, mode: str,
                  undrawn: dict[str, tuple[int, float, int, float] | None] | None = None) -> str:
    """What the workflow graph's shares are; `undrawn`: the phases the graph has no node for, with their shares
    at the smallest and largest batch (phase_share_ends), quoted here so every phase is on the page."""
    text = (f"Each share is the median, over the measured jobs of your {height}x{width} {mode} run at its smallest "
            "and largest batch, of a phase's share of its job (`median_share` of the view `phase_breakdown`); the "
            "rest of each job, outside every phase, is its own share (`outside`). A job's phases add up to the job, "
            "but medians of shares need not add up to exactly 100%.")
    others = [f"{phase} {phase_label(ends)}" for phase, ends in (undrawn or {}).items() if ends is not None]
    if others:
        text += f" Phases not drawn: {'; '.join(others)}."
    return text


# Overview: why it barely slowed down, per run.

def too_few(jobs: int, needed: int) -> str:
    """The one wording of a median (or ratio) without an interval: '3 repeats: too few for a 95% interval (6
    needed)'."""
    return f"{jobs} {'repeat' if jobs == 1 else 'repeats'}: too few for a 95% interval ({needed} needed)"


def scaling(s: Scaling) -> str:
    """The largest batch against the smallest measured one, with the ratio's 95% interval, or, with too few
    jobs for one, saying so instead."""
    if s.top_batch == s.base_batch:
        return f"Only batch {s.base_batch} was measured: {s.base_images_per_s:.2f} images per second."
    span = "" if s.ratio_low is None or s.too_few else f" [{s.ratio_low:.1f}–{s.ratio_high:.1f}]"
    text = (f"Batch {s.top_batch} took {s.time_ratio:.1f}x{span} as long as batch {s.base_batch}: "
            f"{s.speedup:.1f}x the images per second.")
    if s.too_few:
        text += f" _(Uncertain: {too_few(s.jobs, s.needed)}.)_"
    elif s.uncertain and s.ratio_low is not None:
        text += f" _(Uncertain: the interval is wider than ±{UNCERTAIN:.0%}.)_"
    return text


def _g(x: float) -> str:
    """Three significant figures; below a nanosecond (a fit's rounding) reads as 0."""
    return f"{0.0 if abs(x) < 1e-9 else x:.3g}"


def _est(e: Estimate, unit: str = " s") -> str:
    """A figure with its 95% interval: '0.12 s [0.10–0.14]' ('0.12 s (no interval: too few jobs)' without)."""
    if not e.has_interval:
        return f"{_g(e.value)}{unit} {NO_INTERVAL}"
    return f"{_g(e.value)}{unit} [{_g(e.low)}–{_g(e.high)}]"


def _free(e: Estimate) -> str:
    """A note when an extra image's cost is not distinguishable from zero."""
    return " (not distinguishable from zero: extra images ride along free)" if e.low <= 0 else ""


def _share(e: Estimate) -> str:
    if not e.has_interval:
        return f"{_pct(e.value)} {NO_INTERVAL}"
    return f"{_pct(e.value)} [{_pct(e.low)}–{_pct(e.high)}]"


def _sizes(sizes: tuple[int, ...]) -> str:
    """'1-8' for a run of sizes; the sizes themselves when there are three or fewer."""
    return ", ".join(map(str, sizes)) if len(sizes) <= 3 else f"{sizes[0]}-{sizes[-1]}"


def _unseen(sizes: tuple[int, ...], past: int) -> str:
    """What the measured sizes cannot show: a bend past `past` (none at all when `past` is the smallest size)."""
    if past == sizes[0]:
        return (f"With batch sizes {_sizes(sizes)}, no bend can be seen: that needs {MIN_SIZES_FOR_KNEE} batch sizes "
                "or more, each measured at least twice.")
    return f"With batch sizes {_sizes(sizes)}, a bend past batch {past} cannot be seen: measure larger batches."


def _bump(bp: Bump) -> str:
    return (f"Batch {bp.batch} was slower than batch {bp.slower_than} ({bp.ratio:.2f}x its median time), beyond "
            "the noise: a bump (noise, or a kernel choice at that size), not a bend, so no knee is claimed.")


def model(m: CostModel | NoModel) -> str:
    """The cost model of one run (or phase) in words, every figure with its 95% interval."""
    if isinstance(m, NoModel):
        if m.reason == "no_data":
            return NO_MEASURED_JOBS
        if m.reason == "one_size":
            return f"Only batch {m.batch_sizes[0]} was measured: one batch size fits no cost model."
        return (f"The data are too noisy to fit: the fitted cost of an extra image is negative "
                f"({m.marginal_s:.3g} s). More repeats (`--repeats`) would tell.")
    if m.kind == "line":
        text = (f"A straight line fits best: t(B) = fixed + marginal x B, with a fixed "
                f"cost of {_est(m.fixed_s)} per call and {_est(m.marginal_s)} per extra image{_free(m.marginal_s)}.")
        if m.bump is not None:
            text += " " + _bump(m.bump)
        elif m.bic_gain is not None and m.bic_gain > 0 and m.undetectable_past > m.base_batch:
            text += (f" A bend fits a little better (BIC lower by {m.bic_gain:.1f}), short of the {BIC_MARGIN:g} "
                     "that strong evidence needs: no bend is claimed.")
        text += " " + _unseen(m.batch_sizes, m.undetectable_past)
    else:
        text = (f"The times bend at batch {_g(m.knee.value)} [{_g(m.knee.low)}–{_g(m.knee.high)}] (BIC "
                f"{m.bic_gain:.0f} below a straight line's; {BIC_MARGIN:g} is strong evidence): up to it each extra "
                f"image adds {_est(m.marginal_s)}{_free(m.marginal_s)}, after it {_est(m.marginal_after_s)}.")
        if m.saturates:
            text += (" The slope after the knee is above the slope before it beyond both intervals: past "
                     f"batch {_g(m.knee.value)} the device is full, and extra images no longer ride along.")
        elif m.marginal_after_s.high < m.marginal_s.low:
            text += " Past the knee, extra images got cheaper, beyond both intervals."
        else:
            text += " The two slopes overlap within their intervals: no saturation is claimed."
    return f"{text} {_fixed_share(m)} {_intervals(m)}"


def _fixed_share(m: CostModel) -> str:
    """What the fixed cost is at the smallest measured batch, by where its interval lies."""
    e, base = m.fixed_share, m.base_batch
    if e.low > 0:
        return (f"At batch {base}, {_share(e)} of the time was fixed cost per call, shared by every image "
                "in the call.")
    if e.high < 0:
        return "The fitted fixed cost is below zero: time grows faster than the batch, with no fixed cost to share."
    return ("No fixed cost is distinguishable from zero: each image costs its full price, and time grows in "
            "step with the batch.")


def _intervals(m: CostModel) -> str:
    over = ("the repeats of each batch size" if m.method == "repeats"
            else "the fit's residuals (some batch size has a single job)")
    if not m.fixed_s.has_interval:
        return f"_No intervals: {m.jobs} jobs leave no noise to measure._"
    knee = "; the knee's interval from the fit's profile" if m.knee is not None else ""
    return (f"_Brackets: 95% intervals, bootstrap over {over}, redoing the line-or-hinge choice in each redraw and "
            f"widened for the {m.df} degrees of freedom of the noise{knee}; {m.jobs} jobs._")


def trust(t: Trust | None) -> str | None:
    """How far to trust one run: its repeats, its widest interval (or that its repeats are too few for one),
    what else the machine did, what to do."""
    if t is None:
        return None
    rounds = f" in {t.rounds} rounds" if t.rounds is not None else ""
    stopped = f", stopped by {t.stop_reason}" if t.stop_reason else ""
    text = f"**How sure**: {t.jobs_per_batch} measured jobs per batch size{rounds}{stopped}; "
    advice = []
    if t.sure_of_none:
        text += f"{too_few(t.jobs_per_batch, t.needed)}: no figure of this run is sure"
        advice.append(f"add repeats (`--repeats`, {t.needed} or more)")
    else:
        text += f"the widest 95% interval of a median is ±{t.widest:.1%} (batch {t.widest_batch})"
        if t.widest > UNCERTAIN:
            text += f", wider than ±{UNCERTAIN:.0%}: figures at that batch are uncertain"
            advice.append("add repeats (`--repeats`)")
        if t.too_few:
            sizes = ", ".join(str(b) for b in t.too_few)
            text += f"; at batch {sizes}, too few repeats for a 95% interval ({t.needed} needed): uncertain there"
            if not advice:
                advice.append(f"add repeats (`--repeats`, {t.needed} or more)")
    said = [CONTENTION[kind](value) for kind, value in t.flags if kind in CONTENTION]
    text += "."
    if said:
        text += " " + " ".join(said)
        advice.insert(0, "close other programs and run again")
    if any(kind.startswith("gpu_throttled") or kind == contention.GPU_CLOCK_DROP for kind, _ in t.flags):
        advice.append("pin the GPU clock (`nvidia-smi -lgc`) or let the card cool")
    if advice:
        text += " To be surer: " + "; ".join(advice) + "."
    return text


# Contention findings (kind -> wording of its value), from warehouse/contention.py.
CONTENTION: dict[str, Callable] = {
    contention.OTHER_CPU: lambda v: f"Other processes used {v:.0%} of the machine's CPU during this run.",
    contention.CPU_STEAL: lambda v: f"The hypervisor gave {v:.0%} of the CPU time elsewhere (steal).",
    contention.CPU_CLOCK_DROP: lambda v: f"The CPU clock fell by {v:.0%} between parts of the run.",
    contention.GPU_CLOCK_DROP: lambda v: f"The GPU clock fell by {v:.0%} between parts of the run.",
    contention.GPU_SHARED: lambda v: f"Another process was on the GPU in {v:.0%} of samples.",
    **{contention.gpu_throttled(group): (lambda g: lambda v: f"The GPU clock was throttled for {g} in {v:.0%} "
                                                             "of samples.")(group)
       for group in contention.THROTTLE_GROUPS},
}


def _and(names: tuple[str, ...]) -> str:
    return " and ".join([", ".join(names[:-1]), names[-1]] if len(names) > 1 else names)


def phase_saturation(first: FirstFull | None, fitted: int) -> str | None:
    """Which of the run's phases fills the device first, when one does, and up to which batch a bend could
    have been seen; None without a fitted phase model."""
    if fitted == 0 or first is None:
        return None
    unseen_text = _unseen(first.batch_sizes, first.undetectable_past)
    if first.phase is None:
        return (f"No phase ({', '.join(first.phases)}) saturates within the measured batches beyond its intervals. "
                + unseen_text)
    k = first.knee
    text = f"Of the phases, **{first.phase}** saturates first, at batch {_g(k.value)} [{_g(k.low)}–{_g(k.high)}]"
    if first.steady:
        text += f"; {_and(first.steady)} did not saturate within the measured batches"
    return f"{text}. {unseen_text}"


def roofline(r: RooflineEnds) -> str:
    """The share of denoising time above the roofline floor, at the smallest and the largest batch; no share
    when a floor exceeds the time measured (the ceilings read low)."""
    if r.above_measured is not None:
        return (f"**{r.label}**: at batch {r.above_measured} the roofline floor is above the denoising time measured: "
                "the ceilings timed at the start of the sweep's runs understate this device (another process was "
                "busy?), so no share above the floor is given.")
    # Shares to a tenth of a percent: near 100% a whole percent hides the differences the intervals test.
    text = (f"**{r.label}**: at batch {r.low_batch}, {r.low_share:.1%} of the denoising time lay above the "
            f"roofline floor ({r.low_floor_s:.3g} s of {r.low_denoise_s:.3g} s: the UNet's FLOPs and weight reads "
            f"at this device's measured ceilings); at batch {r.high_batch}, {r.high_share:.1%}")
    change = r.change
    if change is None:
        return text + ": too few jobs for 95% intervals of both shares, so no change is claimed."
    spans = f" (95% intervals {_span(r.low_range)} and {_span(r.high_range)})"
    if change == "less":
        return text + f": the larger batch left less of the device idle, beyond both intervals{spans}."
    if change == "more":
        return text + f": more of the time lay above the floor at the larger batch, beyond both intervals{spans}."
    return text + f": the two shares do not differ beyond their intervals{spans}."


def _span(bounds: tuple[float, float]) -> str:
    return f"{bounds[0]:.1%}–{bounds[1]:.1%}"


# Overview: the effects the data shows.

def effects(e: Effects, cite: Cite) -> list[str]:
    """One note per effect the data shows, each quoting the figures that show it."""
    notes = []
    if e.shared:
        s = max(e.shared, key=lambda sc: sc.model.fixed_share.value)
        m = s.model
        notes.append(f"**Latent space** ({cite('ldm')}): each image is denoised as a small latent, and a cost "
                     f"per call outweighed the work of one image: in {s.label}, {_share(m.fixed_share)} of batch "
                     f"{m.base_batch}'s time was fixed cost per call. {_fixed_parts(s)}")
    for sat in e.saturated:
        m = sat.model
        notes.append(f"**Compute-bound once batched** ({cite('beyond-llms')}): in {sat.label}, each extra image "
                     f"cost {_est(m.marginal_s)} up to batch {m.knee.value:g} and {_est(m.marginal_after_s)} "
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
        parts.append(f"at batch {batch}, {_pct(share)} of its UNet time was outside every operator (Python and "
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


# Throughput: names of the figures, the model table, the published figures.

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


MODEL_COLUMNS = ["run", "model", "fixed s", "per image s", "knee", "after knee s", "fixed share at base",
                 "saturates", "a bend seen up to", "bump"]


def _cell(e: Estimate | None) -> str:
    return "" if e is None else _est(e, "")


def model_table(models: dict[str, CostModel | NoModel], labels: dict[str, str]) -> pd.DataFrame:
    """One row per run: the chosen model and its figures with 95% intervals (or why there is none)."""
    rows = []
    for run_id, m in models.items():
        if isinstance(m, NoModel):
            rows.append([labels[run_id], {"no_data": "no measured jobs", "one_size": "one batch size",
                                          "too_noisy": "too noisy to fit"}[m.reason], "", "", "", "", "", "", "",
                         ""])
            continue
        share = f"{_share(m.fixed_share)} at batch {m.base_batch}"
        seen = "no bend can be seen" if m.undetectable_past == m.base_batch else f"batch {m.undetectable_past}"
        bumped = "" if m.bump is None else f"batch {m.bump.batch} > batch {m.bump.slower_than} ({m.bump.ratio:.2f}x)"
        rows.append([labels[run_id], m.kind, _cell(m.fixed_s), _cell(m.marginal_s), _cell(m.knee),
                     _cell(m.marginal_after_s), share, "yes" if m.saturates else "no", seen, bumped])
    return pd.DataFrame(rows, columns=MODEL_COLUMNS)


def interval_text(low_s: float, high_s: float) -> str:
    """A median's interval for a table cell: '0.101–0.109 s' ('' without one: `certainty` says why)."""
    if pd.isna(low_s) or pd.isna(high_s):
        return ""
    return f"{low_s:.3g}–{high_s:.3g} s"


def certainty(half_width: float, jobs: int | None = None, needed: int | None = None) -> str:
    """'±2.1%' for a median within the bound, 'uncertain: ±7.4% (wider than ±5%)' beyond it, and without an
    interval, given the jobs and the jobs needed: 'uncertain: 3 repeats: too few for a 95% interval (6 needed)'."""
    if pd.isna(half_width):
        if jobs is not None and needed is not None and not pd.isna(jobs) and jobs < needed:
            return f"uncertain: {too_few(int(jobs), int(needed))}"
        return ""
    if half_width > UNCERTAIN:
        return f"uncertain: ±{half_width:.1%} (wider than ±{UNCERTAIN:.0%})"
    return f"±{half_width:.1%}"


def model_caption() -> str:
    return ("Each run's job times are fitted two ways, a straight line and a hinge (one slope up to a knee, "
            "another after it; the knee may lie between measured batches). A knee is shown only on strong "
            f"evidence: the hinge's information criterion (BIC) at least {BIC_MARGIN:g} below the line's, every "
            "batch size measured at least twice, and no batch slower than a larger one beyond the noise (that is a "
            "bump, named in its column). A bend past the second largest batch cannot be seen ('a bend seen up "
            "to'). Brackets: 95% intervals, by a bootstrap that redoes the line-or-hinge choice in each redraw; "
            "the knee's interval from the fit's profile. A run saturates when the slope after the knee is above the slope "
            "before it beyond both intervals.")


def published_caption() -> str:
    return ("Published figures beside yours, per image-step (time / (images x steps)) so step counts compare; "
            "speed-up is over the same setting's batch 1. Different models, sizes and devices: a sanity check "
            "of the order of magnitude, not a ranking.")


def stream_latency_caption(cite: Cite) -> str:
    """What the stream latency chart shows (a description: it quotes no figure and claims no outcome)."""
    return (f"In Stream Batch ({cite('streamdiffusion')}) a request enters one UNet call after the previous one "
            "and leaves after its last step; each point is a request's time from entering to leaving, the "
            "median over the run's measured jobs.")


# Operators and telemetry.

def conv_share(c: ConvShare | None, cite: Cite) -> str | None:
    """Convolution's share of UNet time here, against the share the paper reports; the overhead's share at the
    smallest and the largest batch, and that batching shares it only when it shrank."""
    if c is None:
        return None
    text = (f"Convolution took {_pct(c.low)}–{_pct(c.high)} of UNet time here; {cite('beyond-llms')} reports up "
            f"to {_pct(CONV_SHARE_REPORTED)} for diffusion text-to-image models (dashed line).")
    if c.overhead is None:
        return text
    lo, lo_share, hi, hi_share = c.overhead
    text += (f" `overhead` (UNet time outside every operator: Python and framework dispatch, or an idle GPU) "
             f"was {_pct(lo_share)} at batch {lo} and {_pct(hi_share)} at batch {hi}")
    if hi_share < lo_share:
        return text + ": a fixed cost per call, shared by more images as the batch grows."
    return text + ": it did not shrink as the batch grew."


def flops_caption(peak_source: str) -> str:
    return ("UNet FLOPs (torch.utils.flop_counter, attention included) over denoising time, as a share of the "
            f"datasheet peak ({peak_source}) and of the ceiling measured at the start of each run (the higher of a "
            "matrix product and a 3x3 convolution, timed on the run's device and dtype).")


def conv_rule_tooltip() -> str:
    return f"convolution up to {_pct(CONV_SHARE_REPORTED)} of diffusion TTI time (arXiv 2312.14385)"


def memory_fit(m: MemoryFit) -> str:
    """Measured: the largest batch that fitted in memory, and the smallest that did not (if one failed)."""
    fitted = m.largest_fitted if m.largest_fitted is not None else "none"
    text = f"**{m.label}**, measured: largest batch that fitted: {fitted}"
    if m.first_failed is not None:
        text += f"; batch {m.first_failed} failed ({m.failed_statuses})"
    return text + "."


# The sentences of the questions asked after the first (the same place, split by question): whether batching
# changed the pictures, what batch fits in memory, and serving under load.
from .capacity import PHASE_NAMES, memory_caption, memory_limit, slicing_effect  # noqa: E402,F401
from .pictures import invariance, pair_caption, repeat_caveat  # noqa: E402,F401
from .serving import (  # noqa: E402,F401
    NO_LOAD,
    load_burst,
    load_capacity,
    load_goodput_caption,
    load_latency_caption,
    load_prediction,
    load_servers_caption,
    load_servers_versus,
    load_shared_cores,
    load_throughput_caption,
)

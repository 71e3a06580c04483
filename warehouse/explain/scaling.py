"""Why a batch barely slowed down, per run: scaling, the cost model, how sure, contention, saturation, roofline."""

from __future__ import annotations

from collections.abc import Callable

from .. import contention
from ..analysis import UNCERTAIN, FirstFull, RooflineEnds, Scaling, Trust
from ..costmodel import BIC_MARGIN, MIN_SIZES_FOR_KNEE, Bump, CostModel, Estimate, NoModel
from . import words

NO_MEASURED_JOBS = "No successful measured jobs in this run."


def scaling(s: Scaling) -> str:
    """The largest batch against the smallest measured one, with the ratio's 95% interval, or, with too few
    jobs for one, saying so instead."""
    if s.top_batch == s.base_batch:
        return f"Only batch {s.base_batch} was measured: {s.base_images_per_s:.2f} images per second."
    span = "" if s.ratio_low is None or s.too_few else f" [{s.ratio_low:.1f}–{s.ratio_high:.1f}]"
    text = (f"Batch {s.top_batch} took {s.time_ratio:.1f}x{span} as long as batch {s.base_batch}: "
            f"{s.speedup:.1f}x the images per second.")
    if s.too_few:
        text += f" _(Uncertain: {words.too_few(s.jobs, s.needed)}.)_"
    elif s.uncertain and s.ratio_low is not None:
        text += f" _(Uncertain: the interval is wider than ±{UNCERTAIN:.0%}.)_"
    return text


def _free(e: Estimate) -> str:
    """A note when an extra image's cost is not distinguishable from zero."""
    return " (not distinguishable from zero: extra images ride along free)" if e.low <= 0 else ""


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
                f"cost of {words.est(m.fixed_s)} per call and {words.est(m.marginal_s)} per extra image{_free(m.marginal_s)}.")
        if m.bump is not None:
            text += " " + _bump(m.bump)
        elif m.bic_gain is not None and m.bic_gain > 0 and m.undetectable_past > m.base_batch:
            text += (f" A bend fits a little better (BIC lower by {m.bic_gain:.1f}), short of the {BIC_MARGIN:g} "
                     "that strong evidence needs: no bend is claimed.")
        text += " " + _unseen(m.batch_sizes, m.undetectable_past)
    else:
        text = (f"The times bend at batch {words.g(m.knee.value)} [{words.g(m.knee.low)}–{words.g(m.knee.high)}] (BIC "
                f"{m.bic_gain:.0f} below a straight line's; {BIC_MARGIN:g} is strong evidence): up to it each extra "
                f"image adds {words.est(m.marginal_s)}{_free(m.marginal_s)}, after it {words.est(m.marginal_after_s)}.")
        if m.saturates:
            text += (" The slope after the knee is above the slope before it beyond both intervals: past "
                     f"batch {words.g(m.knee.value)} the device is full, and extra images no longer ride along.")
        elif m.marginal_after_s.high < m.marginal_s.low:
            text += " Past the knee, extra images got cheaper, beyond both intervals."
        else:
            text += " The two slopes overlap within their intervals: no saturation is claimed."
    return f"{text} {_fixed_share(m)} {_intervals(m)}"


def _fixed_share(m: CostModel) -> str:
    """What the fixed cost is at the smallest measured batch, by where its interval lies."""
    e, base = m.fixed_share, m.base_batch
    if e.low > 0:
        return (f"At batch {base}, {words.share(e)} of the time was fixed cost per call, shared by every image "
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
        text += f"{words.too_few(t.jobs_per_batch, t.needed)}: no figure of this run is sure"
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
    text = f"Of the phases, **{first.phase}** saturates first, at batch {words.g(k.value)} [{words.g(k.low)}–{words.g(k.high)}]"
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

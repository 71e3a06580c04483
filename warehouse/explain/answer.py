"""Sentences: the Overview's answer first. The title, the main comparison in four lines (what the largest
batch gave, why, where it stops, whether the pictures changed), and the one-row-per-run table; from
warehouse/answer.py's figures. Each line quotes the figures it rests on, and says so when they are too few."""

from __future__ import annotations

import pandas as pd

from ..analysis import UNCERTAIN
from ..answer import HELPED, NO_GAIN, Answer, Speedup
from ..costmodel import CostModel, NoModel
from ..invariance import Invariance

TITLES = {HELPED: "Why batching helped", NO_GAIN: "Why batching did not help here",
          None: "What batching did here"}


def title(verdict: str | None) -> str:
    """The page's title: it says batching helped (or did not) only when the main comparison's interval says so."""
    return TITLES.get(verdict, TITLES[None])


def _x(x: float) -> str:
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x"


def speedup_text(s: Speedup) -> str:
    """'5.21x [4.80x–5.60x]', or '5.21x (too few repeats for a 95% interval)'."""
    if s.low is None:
        return f"{_x(s.value)} (too few repeats for a 95% interval)"
    return f"{_x(s.value)} [{_x(s.low)}–{_x(s.high)}]"


def _setting(a: Answer) -> str:
    cfg = "CFG on" if a.cfg else "CFG off"
    return f"{a.task}, {a.mode}, {a.size}, {cfg}"


def headline(a: Answer) -> str:
    """What the largest batch gave over the smallest, in the main comparison."""
    s = a.scaling
    if s.top_batch == s.base_batch:
        return f"Only batch {s.base_batch} was measured ({_setting(a)}): there is nothing to compare."
    text = (f"**Batch {s.top_batch} gave {speedup_text(a.speedup)} the images per second of batch {s.base_batch}** "
            f"({_setting(a)}): {s.top_batch / s.base_batch:g}x the images in {s.time_ratio:.2f}x the time.")
    wide = a.speedup.half_width
    if wide is not None and wide > UNCERTAIN:
        text += (f" The interval is ±{wide:.0%} of it, wider than ±{UNCERTAIN:.0%}: more rounds (`--max-rounds`, "
                 "`--max-seconds`) on a quieter machine would narrow it.")
    if a.speedup.verdict == HELPED:
        return text
    if a.speedup.verdict == NO_GAIN:
        return text + " Batching gave no more images per second here, beyond the interval."
    if a.speedup.low is not None:
        return text + " The interval holds 1x: no gain can be claimed."
    return text


def _range(r: tuple[float, float] | None) -> str:
    return "" if r is None else f" [{r[0]:.0%}–{r[1]:.0%}]"


def why(a: Answer) -> str | None:
    """The fixed share per call at the smallest batch (the cost model's), and the share of denoising time above
    the roofline floor; None when neither was measured."""
    parts = []
    m = a.model
    if isinstance(m, CostModel):
        e = m.fixed_share
        if not e.has_interval:
            parts.append(f"the fitted fixed cost per call was {e.value:.0%} of a job's time at batch {m.base_batch} "
                         "(no interval: too few jobs)")
        elif e.low > 0:
            parts.append(f"at batch {m.base_batch}, {e.value:.0%} [{e.low:.0%}–{e.high:.0%}] of a job's time was a "
                         "fixed cost per call, paid once and shared by every image in the call")
        elif e.high < 0:
            parts.append("the fitted fixed cost per call is below zero: time grew faster than the batch")
        else:
            parts.append(f"no fixed cost per call is distinguishable from zero at batch {m.base_batch} "
                         f"({e.value:.0%} [{e.low:.0%}–{e.high:.0%}])")
    r = a.roofline
    if r is not None and r.above_measured is None:
        parts.append(f"{r.low_share:.0%}{_range(r.low_range)} of the denoising time at batch {r.low_batch} lay above "
                     "the roofline floor (the least time the UNet's FLOPs and weight reads take at this device's "
                     f"measured ceilings), {r.high_share:.0%}{_range(r.high_range)} at batch {r.high_batch}")
    if not parts:
        return None
    return "**Why**: " + "; ".join(parts) + "."


def _unseen(m: CostModel) -> str:
    """What the measured sizes cannot show, as a clause ('' when a bend could be seen up to the largest size)."""
    sizes = m.batch_sizes
    if m.undetectable_past <= m.base_batch:
        return " These data can show no bend at all (it takes 4 batch sizes or more, each measured twice or more)."
    if m.undetectable_past < sizes[-1]:
        return f" A bend past batch {m.undetectable_past} cannot be seen with these sizes: measure larger batches."
    return ""


def _bump(m: CostModel) -> str:
    b = m.bump
    return (f"batch {b.batch} took {b.ratio:.2f}x the time of batch {b.slower_than}, beyond the noise: a bump (noise "
            "or a kernel choice), not a knee")


def where_it_stops(a: Answer) -> str | None:
    """The knee, when the model claims one and the slope after it is steeper beyond both intervals; a bump, when
    one was found; else that the measured batches show none, and up to where one could have been seen."""
    m = a.model
    if not isinstance(m, CostModel):
        return None
    sizes = m.batch_sizes
    if m.kind == "hinge" and m.saturates:
        return (f"**Where it stops**: the times bend at batch {m.knee.value:g} [{m.knee.low:g}–{m.knee.high:g}]; "
                f"past it each extra image costs {m.marginal_after_s.value:.3g} s against "
                f"{m.marginal_s.value:.3g} s before it.")
    if m.bump is not None:
        return f"**Where it stops**: no knee is claimed: {_bump(m)}.{_unseen(m)}"
    return (f"**Where it stops**: not within the batches measured ({sizes[0]}–{sizes[-1]}): no saturation is "
            f"shown beyond the intervals.{_unseen(m)}")


def pictures(inv: Invariance | None) -> str | None:
    """Whether batching changed the pictures, in one line; None without image checks."""
    if inv is None:
        return None
    sizes = [b for b in inv.batch_sizes if b != 1]
    at = f"batch {sizes[0]}" if len(sizes) == 1 else f"batches {sizes[0]}–{sizes[-1]}"
    if inv.all_identical:
        return (f"**The pictures**: unchanged: all {inv.compared} images drawn at {at} are identical, pixel for "
                "pixel, to the same seed at batch 1.")
    if inv.worst.max_abs_diff <= 1:
        return (f"**The pictures**: not visibly changed: {inv.compared} images at {at} differ from batch 1 by at "
                f"most 1/255 ({inv.identical} identical).")
    return (f"**The pictures**: changed: {inv.compared - inv.identical} of {inv.compared} images at {at} differ "
            f"from the same seed at batch 1, by up to {inv.worst.max_abs_diff}/255.")


def lines(a: Answer) -> list[str]:
    """The answer, line by line (those whose figures exist)."""
    return [t for t in (headline(a), why(a), where_it_stops(a), pictures(a.pictures)) if t]


def main_run_caption(a: Answer) -> str | None:
    if a.runs <= 1:
        return None
    return (f"The main comparison is the plainest setting measured ({a.label}); the table has every run of the "
            "sweep, and each run's detail is folded below it.")


RUN_COLUMNS = ["run", "task", "mode", "size", "CFG", "time at smallest batch", "speed-up at largest batch",
               "fixed share", "knee", "how sure"]


def _fixed(m) -> str:
    if not isinstance(m, CostModel):
        return {None: "", "no_data": "no jobs", "one_size": "one batch size", "too_noisy": "too noisy to fit"}[
            getattr(m, "reason", None)]
    e = m.fixed_share
    if not e.has_interval:
        return f"{e.value:.0%} (no interval)"
    return f"{e.value:.0%} [{e.low:.0%}–{e.high:.0%}]"


def _knee(m) -> str:
    if not isinstance(m, CostModel):
        return ""
    if m.kind == "hinge" and m.saturates:
        return f"batch {m.knee.value:g} [{m.knee.low:g}–{m.knee.high:g}]"
    if m.bump is not None:
        return f"none (bump at batch {m.bump.batch})"
    if m.undetectable_past <= m.base_batch:
        return "cannot be seen (too few sizes or jobs)"
    seen = f" (seen up to {m.undetectable_past})" if m.undetectable_past < m.batch_sizes[-1] else ""
    return f"none within {m.batch_sizes[0]}–{m.batch_sizes[-1]}{seen}"


def run_row(label: str, run, scaled, speed: Speedup | None, model: CostModel | NoModel | None,
            sure: str) -> list:
    """One row of the run table (strings), from a run row and its figures."""
    size = f"{int(run.height)}x{int(run.width)}"
    cfg = "on" if pd.notna(run.cfg) and bool(run.cfg) else "off"  # NULL: a run record without the field
    if scaled is None:
        return [label, run.task, run.mode, size, cfg, "no measured jobs", "", "", "", sure]
    base = f"{scaled.base_batch / scaled.base_images_per_s:.3g} s (batch {scaled.base_batch})"
    top = "" if speed is None or scaled.top_batch == scaled.base_batch else \
        f"{speedup_text(speed)} (batch {scaled.top_batch})"
    return [label, run.task, run.mode, size, cfg, base, top, _fixed(model), _knee(model), sure]


def run_table(rows: list[list]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=RUN_COLUMNS)


def sure_cell(jobs: int, widest: float | None) -> str:
    """The table's 'how sure': jobs per batch size and the widest interval of a median."""
    if widest is None or pd.isna(widest):
        return f"{jobs} jobs per batch: too few for a 95% interval"
    return f"{jobs} jobs per batch, medians within ±{widest:.1%}"

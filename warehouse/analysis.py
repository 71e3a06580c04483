"""Derived figures from query results: pure functions on DataFrames, no I/O.

The core model: a job's time against its batch size, t(B) = fixed + marginal x B.
`fixed` is what every call costs whatever its size (kernel launches, Python and
framework overhead, weight reads, an idle device's latency); `marginal` is what
one more image adds once the device is busy. While fixed dominates, extra images
ride along almost free; the knee is where batching efficiency drops below 50%.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

KNEE_EFFICIENCY = 0.5


def speedup(tp: pd.DataFrame) -> pd.Series:
    """Images per second over the smallest batch's (batch 1 when measured)."""
    tp = tp.sort_values("batch_size")
    rate = tp.batch_size / tp.median_wall_s
    return (rate / rate.iloc[0]).rename("speedup")


def efficiency(tp: pd.DataFrame) -> pd.Series:
    """Speed-up per image added: speedup / (batch / smallest batch). 1.0 = every extra image free."""
    tp = tp.sort_values("batch_size")
    return (speedup(tp) / (tp.batch_size / tp.batch_size.iloc[0])).rename("efficiency")


def knee(tp: pd.DataFrame, threshold: float = KNEE_EFFICIENCY) -> int | None:
    """The smallest batch size whose batching efficiency is below `threshold`; None if none is."""
    tp = tp.sort_values("batch_size")
    below = tp.batch_size[(efficiency(tp) < threshold).to_numpy()]
    return int(below.iloc[0]) if len(below) else None


def fit_fixed_marginal(tp: pd.DataFrame) -> dict | None:
    """Least-squares t(B) = fixed + marginal x B over the batch sizes up to the knee.

    Returns fixed_s, marginal_s, fixed_share_at_1 (fixed / t(1)), the batch sizes used,
    the knee, and residuals for every measured batch size; None with fewer than 2 points.
    """
    tp = tp.sort_values("batch_size")
    k = knee(tp)
    used = tp if k is None else tp[tp.batch_size < k]
    if len(used) < 2:
        used = tp.head(2)
    if len(used) < 2:
        return None
    marginal, fixed = np.polyfit(used.batch_size.astype(float), used.median_wall_s.astype(float), 1)
    predicted = fixed + marginal * tp.batch_size
    at_one = fixed + marginal
    return {
        "fixed_s": float(fixed),
        "marginal_s": float(marginal),
        "fixed_share_at_1": float(fixed / at_one) if at_one > 0 else None,
        "batch_sizes": [int(b) for b in used.batch_size],
        "knee": k,
        "residuals": pd.DataFrame({"batch_size": tp.batch_size.to_numpy(),
                                   "measured_s": tp.median_wall_s.to_numpy(),
                                   "fitted_s": predicted.to_numpy(),
                                   "residual_s": (tp.median_wall_s - predicted).to_numpy(),
                                   "in_fit": tp.batch_size.isin(used.batch_size).to_numpy()}),
    }


def fit_sentence(fit: dict | None) -> str | None:
    """The fit in words: how much of batch 1 was fixed cost, what an extra image adds."""
    if not fit or fit["fixed_share_at_1"] is None:
        return None
    share = max(0.0, min(1.0, fit["fixed_share_at_1"]))
    text = (f"at batch 1, {share:.0%} of the time was fixed cost per call, shared by every extra image; "
            f"each extra image adds {fit['marginal_s']:.3g} s")
    if fit["knee"] is not None and fit["knee"] > max(fit["batch_sizes"]):
        text += (f". The line holds up to batch {max(fit['batch_sizes'])}; from batch {fit['knee']} on, "
                 f"batching efficiency is below {KNEE_EFFICIENCY:.0%}: the device is busy and each image "
                 "costs close to its full price")
    elif fit["knee"] is not None:
        text += (f". Batching efficiency is below {KNEE_EFFICIENCY:.0%} from batch {fit['knee']} on: "
                 "there is little fixed cost to share, and each image costs close to its full price")
    return text


def headline(tp: pd.DataFrame) -> str | None:
    """One sentence for one run: the largest batch against batch 1 (or the smallest batch)."""
    if tp.empty:
        return None
    tp = tp.sort_values("batch_size")
    base, top = tp.iloc[0], tp.iloc[-1]
    if base.batch_size == top.batch_size:
        return f"only batch {int(base.batch_size)} was measured: {base.images_per_s:.2f} images per second"
    time_ratio = top.median_wall_s / base.median_wall_s
    rate_ratio = top.images_per_s / base.images_per_s
    return (f"batch {int(top.batch_size)} took {time_ratio:.1f}x as long as batch {int(base.batch_size)}: "
            f"{rate_ratio:.1f}x the images per second")


def verdict(tp: pd.DataFrame, device: str = "cpu", mode: str = "static") -> str | None:
    """Whether batching paid off in this run, from the gain at the largest batch."""
    if len(tp) < 2:
        return None
    if mode == "sequential":
        return ("sequential mode makes one pipeline call per image, so nothing is shared between them: "
                "time grows in step with the batch. This is the baseline the other modes beat")
    tp = tp.sort_values("batch_size")
    base, top = tp.iloc[0], tp.iloc[-1]
    gain = top.images_per_s / base.images_per_s
    ideal = top.batch_size / base.batch_size
    busy = "the CPU cores" if device == "cpu" else "the GPU"
    if gain >= KNEE_EFFICIENCY * ideal:
        return ("batching paid off: extra images rode along on fixed per-call costs "
                f"({gain:.1f}x the images per second for {ideal:.0f}x the images per call)")
    if gain >= 1.5:
        return (f"batching helped, then faded: {gain:.1f}x the images per second for "
                f"{ideal:.0f}x the images per call, as {busy} filled up")
    return (f"batching helped little ({gain:.1f}x the images per second): {busy} were already busy "
            "at the smallest batch (compute-bound), so extra images cost nearly their full price")


def phase_shares(phases: pd.DataFrame) -> pd.DataFrame:
    """Each phase's share of the summed phase time, per batch size (phase_breakdown rows)."""
    total = phases.groupby("batch_size").median_s.transform("sum")
    return phases.assign(share=phases.median_s / total)

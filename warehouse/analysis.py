"""Derived figures from query results: pure functions on DataFrames, no I/O."""

from __future__ import annotations

import pandas as pd


def headline(tp: pd.DataFrame) -> str | None:
    """One sentence for one run: the largest batch against batch 1 (or the smallest batch).

    `tp` holds throughput_by_batch rows of a single run.
    """
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


def verdict(tp: pd.DataFrame) -> str | None:
    """Whether batching paid off in this run, from batching efficiency at the largest batch."""
    if len(tp) < 2:
        return None
    tp = tp.sort_values("batch_size")
    base, top = tp.iloc[0], tp.iloc[-1]
    gain = top.images_per_s / base.images_per_s
    ideal = top.batch_size / base.batch_size
    if gain >= 0.5 * ideal:
        return ("batching paid off: extra images rode along on fixed per-call costs "
                f"({gain:.1f}x the images per second for {ideal:.0f}x the images per call)")
    if gain >= 1.5:
        return (f"batching helped, then faded: {gain:.1f}x the images per second for "
                f"{ideal:.0f}x the images per call; the device was filling up")
    return (f"batching helped little ({gain:.1f}x the images per second): the device was already busy "
            "at the smallest batch, so extra images cost nearly their full price")

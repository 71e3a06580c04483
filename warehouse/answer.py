"""The Overview's answer, read in ten seconds: the sweep's main comparison in a few figures, and one row per run.

The main comparison is one run (`headline_run`): the plainest setting the sweep measured (static mode, CFG
off, text-to-image, the smallest size, in-process, the most jobs). Its figures come from the functions and
models the rest of the warehouse already defines (analysis.scaling, the cost model, the roofline ends, the
image checks); this module only picks and assembles them. Pure functions on frames: no I/O, no words
(warehouse/explain/answer.py words them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from .analysis import RooflineEnds, Scaling
from .costmodel import CostModel, NoModel
from .invariance import Invariance

HELPED, NO_GAIN, UNSURE = "helped", "no_gain", "unsure"


def headline_run(runs: pd.DataFrame) -> str | None:
    """The run_id of the sweep's main comparison: static before stream before sequential, CFG off before on,
    text-to-image before inpainting, the smallest image, an in-process run before a replica level's worker, the
    run with the most jobs, then the order the runs came in; None without runs."""
    if runs.empty:
        return None
    mode_order = {"static": 0, "stream": 1, "sequential": 2}
    key = pd.DataFrame({
        "mode": runs["mode"].map(mode_order).fillna(3),
        "cfg": runs.cfg.fillna(False).astype(bool).astype(int),
        "task": (runs.task != "txt2img").astype(int),
        "pixels": runs.height * runs.width,
        # In-process runs before a replica level's worker, and of those the one measured most.
        "replica": runs["replicas"].notna().astype(int) if "replicas" in runs else 0,
        "jobs": -runs["jobs"].fillna(0) if "jobs" in runs else 0,
        "order": np.arange(len(runs)),
    }, index=runs.index)
    return str(runs.loc[key.sort_values(list(key.columns)).index[0], "run_id"])


@dataclass(frozen=True)
class Speedup:
    """Images per second at the largest batch over the smallest, with the interval carried over from the
    interval of the time ratio (the batch ratio is exact): None bounds when there is no interval."""
    value: float
    low: float | None
    high: float | None

    @property
    def half_width(self) -> float | None:
        """Half the interval's width as a fraction of the value (None without an interval)."""
        if self.low is None or self.high is None:
            return None
        return (self.high - self.low) / 2 / self.value

    @property
    def verdict(self) -> str:
        """HELPED when the interval lies above 1, NO_GAIN when it lies at or below 1, else UNSURE (the interval
        holds 1, or there is none)."""
        if self.low is None or self.high is None or not np.isfinite(self.low) or not np.isfinite(self.high):
            return UNSURE
        if self.low > 1:
            return HELPED
        if self.high <= 1:
            return NO_GAIN
        return UNSURE


def speedup(s: Scaling) -> Speedup:
    """The images/s ratio of a Scaling: (top / base) / time ratio, its bounds from the time ratio's."""
    per = s.top_batch / s.base_batch
    value = per / s.time_ratio
    ok = s.ratio_low is not None and s.ratio_high is not None and np.isfinite(s.ratio_low) and s.ratio_low > 0
    return Speedup(value=float(value), low=float(per / s.ratio_high) if ok else None,
                   high=float(per / s.ratio_low) if ok else None)


@dataclass(frozen=True)
class Answer:
    """The main comparison: one run's largest batch against its smallest, why, where it stops, the pictures."""
    run_id: str
    label: str
    task: str
    mode: str
    size: str                      # "HxW"
    cfg: bool
    scaling: Scaling
    speedup: Speedup
    model: CostModel | NoModel | None
    roofline: RooflineEnds | None
    pictures: Invariance | None    # the batching kind of the image checks, over the whole sweep
    runs: int                      # runs in the sweep (the table below the answer has one row each)

    @property
    def verdict(self) -> str:
        return self.speedup.verdict


def answer(runs: pd.DataFrame, scalings: dict[str, Scaling | None], models: dict, roofline: list[RooflineEnds],
           pictures: dict[str, Invariance]) -> Answer | None:
    """The answer for the sweep's main comparison; None when that run has no measured jobs."""
    run_id = headline_run(runs)
    s = scalings.get(run_id) if run_id is not None else None
    if s is None:
        return None
    run = runs.set_index("run_id").loc[run_id]
    ends = {r.label: r for r in roofline}
    return Answer(run_id=run_id, label=str(run.label), task=str(run.task), mode=str(run["mode"]),
                  size=f"{int(run.height)}x{int(run.width)}", cfg=bool(run.cfg) if pd.notna(run.cfg) else False,
                  scaling=s, speedup=speedup(s), model=models.get(run_id), roofline=ends.get(str(run.label)),
                  pictures=pictures.get("batching"), runs=len(runs))


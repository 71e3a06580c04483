"""When to stop: warm-up until the job time settles, measured rounds until the medians are sure enough.

Pure functions of job times (seconds), so they are tested on synthetic times:

- `settled`: warm-up of one (run, batch size) is over once two successive warm-up jobs
  differ by less than --settle (a fraction of the shorter), after at least --warmup and at
  most --warmup-max jobs;
- `interval_half_width`: half the width of the 95% bootstrap interval of a median, as a
  fraction of the median (stats.half_width: the same interval the warehouse uses);
- `stop_rule`: after each measured round of a size, whether to stop and why. A whole
  --repeats stops after that many rounds. --repeats auto stops once every batch size of
  every run of the size is within --target (checked from round MIN_ROUNDS on), or at a cap:
  --max-rounds, or --max-seconds of measured rounds (a round that would end past it, at the
  mean round time so far, is not started), as pyperf calibrates its runs and MLPerf bounds a
  run's duration.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import stats

from .config import SweepConfig

MIN_ROUNDS = 3  # --repeats auto checks the target from this round on: fewer times say little of a spread


def settled(times: Sequence[float], minimum: int, most: int, threshold: float) -> bool:
    """Whether warm-up of one (run, batch size) is over after the warm-up jobs that took `times`:
    `minimum` jobs run in any case (0: no warm-up), at most max(most, minimum); in between it ends once
    the last two times differ by less than `threshold` of the shorter one."""
    n = len(times)
    if n >= max(most, minimum):
        return True
    if n < max(minimum, 2):
        return minimum == 0
    a, b = times[-2], times[-1]
    return abs(b - a) < threshold * min(a, b)


def interval_half_width(times: Sequence[float]) -> float:
    """Half the width of the 95% bootstrap interval of the median of `times`, as a fraction of the median
    (0.03: ±3%): 0 for equal times, wider with the spread, narrower with more times. Infinite for fewer
    than two times or a median of 0: no spread to judge from."""
    if len(times) < 2:
        return math.inf
    width = stats.half_width(times)
    return width if math.isfinite(width) else math.inf


def stop_rule(times: Mapping[str, Sequence[float]], rounds: int, elapsed_s: float,
              cfg: SweepConfig) -> tuple[bool, str]:
    """(stop, why) after `rounds` measured rounds of a size that took `elapsed_s` seconds; `times` holds the
    measured times of each (run, batch size) still running, by its name."""
    plural = "round" if rounds == 1 else "rounds"
    if not cfg.auto:
        if rounds >= cfg.repeats:
            return True, f"repeats: {rounds} {plural} as asked"
        return False, f"repeats: {rounds} of {cfg.repeats} rounds so far"
    if not times:
        return True, f"nothing left to measure after {rounds} {plural} (every batch size ran out of memory)"
    widths = {name: interval_half_width(t) for name, t in times.items()}
    widest = max(widths, key=widths.get)
    if rounds >= MIN_ROUNDS and widths[widest] <= cfg.target:
        return True, f"target met: every batch size within ±{cfg.target:.1%} after {rounds} {plural}"
    spread = f"widest ±{widths[widest]:.1%}: {widest}" if math.isfinite(widths[widest]) else f"too few times: {widest}"
    if rounds >= cfg.max_rounds:
        return True, f"cap: {rounds} {plural} ({spread})"
    if rounds and elapsed_s * (rounds + 1) / rounds > cfg.max_seconds:
        return True, f"cap: {cfg.max_seconds:g} s after {rounds} {plural} in {elapsed_s:.0f} s ({spread})"
    return False, f"going on after {rounds} {plural} ({spread})"

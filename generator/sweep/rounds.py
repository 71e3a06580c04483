"""When to stop: warm-up until the job time settles, measured rounds until the medians are sure enough.

Pure functions of job times (seconds), so they are tested on synthetic times:

- `settled`: warm-up of one (run, batch size) is over once two successive warm-up jobs
  differ by less than --settle (a fraction of the shorter), after at least --warmup and at
  most --warmup-max jobs;
- `interval_half_width`: half the width of the 95% order-statistic interval of a median, as a
  fraction of the median (stats.half_width: the same interval the warehouse uses); infinite while
  the times are too few for a 95% interval (fewer than stats.needed(): 6);
- `stop_rule`: after each measured round of a size, whether to stop and why (a `Stop`). A whole
  --repeats stops after that many rounds. --repeats auto stops once every batch size of
  every run of the size has an interval and is within --target (so never before round MIN_ROUNDS,
  the first with enough times for an interval), or at a cap: --max-rounds, or --max-seconds of
  measured rounds (a round that would end past it, at the mean round time so far, is not started),
  as pyperf calibrates its runs and MLPerf bounds a run's duration;
- `run_reason`: one run's stop reason, from the stops of the parts it was measured in: the cause
  they share, the spread of that run's own batch sizes (never another run's), and, when several
  runs were measured together, that the stop was theirs together.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from generator.sweep.config import SweepConfig
import stats

MIN_ROUNDS = stats.needed(stats.LEVEL)  # the first round with enough times (one a round) for a 95% interval


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
    """Half the width of the 95% order-statistic interval of the median of `times`, as a fraction of the median
    (0.03: ±3%): 0 for equal times, wider with the spread, narrower with more times. Infinite while there is no
    interval (fewer than stats.needed() times: too few for 95%) or with a median of 0."""
    width = stats.half_width(times)
    return width if math.isfinite(width) else math.inf


@dataclass(frozen=True)
class Stop:
    """stop_rule's answer after a round: whether to stop, the cause (shared by every run measured together), and
    each (run, batch size)'s half-width and count of times by name, for the spread each run is told. `shared`:
    the decision rested on the times of every run measured together (--repeats auto), so a run alone might have
    stopped elsewhere; a whole --repeats stops each run where it would have alone."""
    stop: bool
    cause: str
    widths: Mapping[str, float] = field(default_factory=dict)   # name -> half-width (inf: no interval yet)
    counts: Mapping[str, int] = field(default_factory=dict)     # name -> measured times
    shared: bool = False

    def spread(self, names: Iterable[str] | None = None) -> str:
        """The widest interval among `names` (all by default): 'widest ±4.1%: <name>', or while one has none,
        'too few times for a 95% interval: <name> has 3 of 6'; '' without names."""
        names = [n for n in (self.widths if names is None else names) if n in self.widths]
        if not names:
            return ""
        widest = max(names, key=lambda n: (self.widths[n], -self.counts.get(n, 0)))
        if math.isfinite(self.widths[widest]):
            return f"widest ±{self.widths[widest]:.1%}: {widest}"
        return f"too few times for a 95% interval: {widest} has {self.counts.get(widest, 0)} of {stats.needed()}"

    def reason(self, names: Iterable[str] | None = None) -> str:
        """The cause with the spread of `names` (all by default) in brackets, where the cause leaves it open."""
        spread = self.spread(names) if self.widths else ""
        return f"{self.cause} ({spread})" if spread else self.cause


def stop_rule(times: Mapping[str, Sequence[float]], rounds: int, elapsed_s: float, cfg: SweepConfig) -> Stop:
    """Whether to stop after `rounds` measured rounds of a size that took `elapsed_s` seconds, and why; `times`
    holds the measured times of each (run, batch size) still running, by its name."""
    plural = "round" if rounds == 1 else "rounds"
    if not cfg.auto:
        if rounds >= cfg.repeats:
            return Stop(True, f"repeats: {rounds} {plural} as asked")
        return Stop(False, f"repeats: {rounds} of {cfg.repeats} rounds so far")
    if not times:
        return Stop(True, f"nothing left to measure after {rounds} {plural} (every batch size ran out of memory)")
    widths = {name: interval_half_width(t) for name, t in times.items()}
    counts = {name: len(t) for name, t in times.items()}
    if max(widths.values()) <= cfg.target:  # an infinite width (no interval yet) is never within it
        return Stop(True, f"target met: every batch size within ±{cfg.target:.1%} after {rounds} {plural}",
                    shared=True)
    if rounds >= cfg.max_rounds:
        return Stop(True, f"cap: {rounds} {plural}", widths, counts, shared=True)
    if rounds and elapsed_s * (rounds + 1) / rounds > cfg.max_seconds:
        return Stop(True, f"cap: {cfg.max_seconds:g} s after {rounds} {plural} in {elapsed_s:.0f} s", widths, counts,
                    shared=True)
    return Stop(False, f"going on after {rounds} {plural}", widths, counts, shared=True)


def run_reason(stops: Sequence[Stop], names: Iterable[str], together: int) -> str:
    """One run's stop reason from the stops of the parts it was measured in (one, or one per batch size in a
    replica sweep), told with the spread of its own batch sizes (`names`) only; `together`: how many runs were
    measured together. Where a stop rested on all their times (Stop.shared), the reason says it was theirs."""
    names = list(names)
    text = "; ".join(dict.fromkeys(stop.reason(names) for stop in stops))
    if together > 1 and any(stop.shared for stop in stops):
        text += f"; one stop for the {together} runs measured together"
    return text

"""Contention: what the rest of the machine did while one run ran, from its telemetry samples.

Pure: one run's rows of `samples` (a DataFrame) in, a `Contention` out, and `flags()` keeps
the figures above their thresholds as (kind, value) pairs. No I/O and no sentences:
`warehouse/explain/` words the flags. A figure whose columns are all NULL (a CPU-only run has no
NVML fields; a platform without a steal counter has no cpu_steal) is None, never a flag.

Units. `other_cpu_util` in a sample is percent of one core used by other processes;
`other_cpu_cores` is its mean over the run in cores (1.0 = one core busy all the time) and
`other_cpu_share` that over the machine's logical CPUs (0..1), which needs their count
(`cores`): the warehouse does not know it (runs.threads is torch's intra-op threads, often the
physical cores, not the logical CPUs /proc/stat counts over). `cpu_steal` is percent of all
CPU time; `steal_share` its mean as a fraction. Clock drops are 1 - lowest / highest
median clock over windows of CLOCK_WINDOW_S seconds. GPU shares are fractions of the samples
that carry the field.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

import pandas as pd

# NVML's clocks-event reasons (nvmlClocksEventReason*, formerly nvmlClocksThrottleReason*; nvml.h).
GPU_IDLE = 0x1                     # nothing runs: the clocks rest (not contention)
APPLICATIONS_CLOCKS_SETTING = 0x2  # clocks held by the applications-clocks setting (not contention)
SW_POWER_CAP = 0x4                 # the power draw reached the power limit
HW_SLOWDOWN = 0x8                  # hardware slowdown: thermal or power brake (below), or another cause
SYNC_BOOST = 0x10                  # held to the clocks of the GPUs in its sync-boost group
SW_THERMAL_SLOWDOWN = 0x20         # the driver cools the GPU or its memory
HW_THERMAL_SLOWDOWN = 0x40         # the hardware cools the GPU
HW_POWER_BRAKE_SLOWDOWN = 0x80     # the system's power brake (e.g. the power supply) asserted
DISPLAY_CLOCK_SETTING = 0x100      # held by the display clock setting

# Reason groups; HW_SLOWDOWN counts as "other" only when neither of its known causes is set with it.
POWER = SW_POWER_CAP | HW_POWER_BRAKE_SLOWDOWN
THERMAL = SW_THERMAL_SLOWDOWN | HW_THERMAL_SLOWDOWN
OTHER = SYNC_BOOST | DISPLAY_CLOCK_SETTING
THROTTLE_GROUPS = ("power", "thermal", "other")

# Thresholds: a figure above its threshold is a flag.
OTHER_CPU_THRESHOLD = 0.10     # other processes used more than 10% of the machine's CPU
STEAL_THRESHOLD = 0.05         # more than 5% of CPU time stolen by the hypervisor
CLOCK_DROP_THRESHOLD = 0.10    # a window's median clock more than 10% below another's
GPU_THROTTLE_THRESHOLD = 0.05  # a reason group held the GPU clocks in more than 5% of samples
GPU_SHARED_THRESHOLD = 0.05    # another process was on the GPU in more than 5% of samples

# Clock windows: medians over CLOCK_WINDOW_S seconds, of at least MIN_WINDOW_SAMPLES samples.
CLOCK_WINDOW_S = 5.0
MIN_WINDOW_SAMPLES = 3
# The CPU clock is the mean over all CPUs, so it falls when the machine idles: its windows hold
# only samples in which this process used at least this much (percent of one core).
BUSY_CPU_UTIL = 50.0

# Flag kinds.
OTHER_CPU = "other_cpu"
CPU_STEAL = "cpu_steal"
CPU_CLOCK_DROP = "cpu_clock_drop"
GPU_CLOCK_DROP = "gpu_clock_drop"
GPU_SHARED = "gpu_shared"


def gpu_throttled(group: str) -> str:
    """The flag kind of a throttle reason group: 'power' -> 'gpu_throttled_power'."""
    return f"gpu_throttled_{group}"


@dataclass(frozen=True)
class Contention:
    """What the rest of the machine did during one run (None: no sample carries the field)."""

    samples: int
    other_cpu_cores: float | None = None  # mean CPU of other processes, in cores
    other_cpu_share: float | None = None  # the same over the machine's logical CPUs (0..1); None without `cores`
    steal_share: float | None = None      # mean share of CPU time stolen (0..1)
    cpu_clock_drop: float | None = None   # 1 - lowest / highest window median of cpu_mhz (0..1)
    gpu_clock_drop: float | None = None   # the same of sm_clock_mhz, over samples not idle
    gpu_throttled_share: dict[str, float] | None = field(default=None)  # group -> share of samples (0..1)
    gpu_shared_share: float | None = None  # share of samples with another compute process on the GPU


class Flag(NamedTuple):
    kind: str     # OTHER_CPU, CPU_STEAL, CPU_CLOCK_DROP, GPU_CLOCK_DROP, gpu_throttled(group), GPU_SHARED
    value: float  # the Contention figure that crossed its threshold (a fraction, 0..1)


def throttle_groups(reasons: int) -> frozenset[str]:
    """The contention groups set in an NVML clocks-event reason bitmask (idle and the
    applications-clocks setting are not contention; unknown bits are ignored)."""
    groups = set()
    if reasons & POWER:
        groups.add("power")
    if reasons & THERMAL:
        groups.add("thermal")
    if reasons & OTHER or (reasons & HW_SLOWDOWN and not reasons & (HW_THERMAL_SLOWDOWN | HW_POWER_BRAKE_SLOWDOWN)):
        groups.add("other")
    return frozenset(groups)


def _column(samples: pd.DataFrame, name: str) -> pd.Series:
    """A column as floats (NULL -> NaN); all NaN when the frame lacks it."""
    if name not in samples.columns:
        return pd.Series(float("nan"), index=samples.index, dtype="float64")
    return pd.to_numeric(samples[name], errors="coerce").astype("float64")


def _mean(values: pd.Series, scale: float = 1.0) -> float | None:
    values = values.dropna()
    return None if values.empty else float(values.mean()) / scale


def clock_drop(t: pd.Series, mhz: pd.Series) -> float | None:
    """1 - lowest / highest median clock over windows of CLOCK_WINDOW_S seconds from the first
    sample; windows of fewer than MIN_WINDOW_SAMPLES readings are left out, and fewer than two
    windows give None."""
    frame = pd.DataFrame({"t": t, "mhz": mhz}).dropna()
    frame = frame[frame["mhz"] > 0]
    if frame.empty:
        return None
    window = ((frame["t"] - frame["t"].min()) // CLOCK_WINDOW_S).astype("int64")
    grouped = frame.groupby(window)["mhz"]
    medians = grouped.median()[grouped.size() >= MIN_WINDOW_SAMPLES]
    if len(medians) < 2:
        return None
    return float(1.0 - medians.min() / medians.max())


def contention(samples: pd.DataFrame, cores: int | None = None) -> Contention:
    """One run's contention from its samples (rows of the samples table: t, cpu_util,
    other_cpu_util, cpu_steal, cpu_mhz, sm_clock_mhz, gpu_util, gpu_throttle_reasons,
    gpu_other_processes; a missing column counts as all NULL). `cores`: the machine's logical
    CPUs, for other_cpu_share."""
    t = _column(samples, "t")
    other_cores = _mean(_column(samples, "other_cpu_util"), 100.0)
    share = other_cores / cores if other_cores is not None and cores else None

    own = _column(samples, "cpu_util")
    cpu_mhz = _column(samples, "cpu_mhz")
    busy = own.isna() | (own >= BUSY_CPU_UTIL) if own.notna().any() else pd.Series(True, index=samples.index)

    reasons = _column(samples, "gpu_throttle_reasons")
    gpu_util = _column(samples, "gpu_util")
    idle = ((reasons.fillna(0).astype("int64") & GPU_IDLE) > 0) | (gpu_util == 0)  # the clocks rest: no drop
    throttled = None
    known = reasons.dropna().astype("int64")
    if not known.empty:
        groups = known.map(throttle_groups)
        throttled = {g: float(groups.map(lambda s, g=g: g in s).mean()) for g in THROTTLE_GROUPS}

    others = _column(samples, "gpu_other_processes").dropna()
    return Contention(
        samples=len(samples),
        other_cpu_cores=other_cores,
        other_cpu_share=share,
        steal_share=_mean(_column(samples, "cpu_steal"), 100.0),
        cpu_clock_drop=clock_drop(t[busy], cpu_mhz[busy]),
        gpu_clock_drop=clock_drop(t[~idle], _column(samples, "sm_clock_mhz")[~idle]),
        gpu_throttled_share=throttled,
        gpu_shared_share=None if others.empty else float((others > 0).mean()),
    )


def flags(c: Contention) -> list[Flag]:
    """The figures of `c` above their thresholds, in a fixed order (None is never a flag)."""
    checks = [(OTHER_CPU, c.other_cpu_share, OTHER_CPU_THRESHOLD),
              (CPU_STEAL, c.steal_share, STEAL_THRESHOLD),
              (CPU_CLOCK_DROP, c.cpu_clock_drop, CLOCK_DROP_THRESHOLD),
              (GPU_CLOCK_DROP, c.gpu_clock_drop, CLOCK_DROP_THRESHOLD)]
    checks += [(gpu_throttled(g), (c.gpu_throttled_share or {}).get(g), GPU_THROTTLE_THRESHOLD)
               for g in THROTTLE_GROUPS]
    checks.append((GPU_SHARED, c.gpu_shared_share, GPU_SHARED_THRESHOLD))
    return [Flag(kind, value) for kind, value, threshold in checks if value is not None and value > threshold]

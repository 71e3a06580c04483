"""Derived figures from query results: pure functions on DataFrames that return data; no I/O, no words.

The core model: a job's time against its batch size, t(B) = fixed + marginal x B.
`fixed` is what every call costs whatever its size (kernel launches, Python and
framework overhead, weight reads, an idle device's latency); `marginal` is what
one more image adds once the device is busy. While fixed dominates, extra images
ride along almost free; the knee is where batching efficiency drops below 50%.

Speed-up and batching efficiency are defined once, in the warehouse view
`throughput_by_batch` (over each run's smallest measured batch, its `base_batch`):
the functions here read those columns and never recompute them. Sentences about
these findings are made in `warehouse/explain.py`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

KNEE_EFFICIENCY = 0.5       # below this batching efficiency, an extra image costs close to its full price
FADED_SPEEDUP = 1.5         # below the knee, a speed-up under this is "helped little"
CONV_SHARE_REPORTED = 0.44  # arXiv 2312.14385: convolution up to 44% of diffusion TTI execution time


def knee(tp: pd.DataFrame, threshold: float = KNEE_EFFICIENCY) -> int | None:
    """The smallest batch size whose batching efficiency (the view's) is below `threshold`; None if none is."""
    tp = tp.sort_values("batch_size")
    below = tp.batch_size[(tp.efficiency < threshold).to_numpy()]
    return int(below.iloc[0]) if len(below) else None


def knees(tp: pd.DataFrame) -> pd.DataFrame:
    """Per run (label): the batch speed-up is measured over, the knee (None if not reached), best images/s."""
    rows = [{"label": label, "base_batch": int(g.base_batch.iloc[0]), "knee": knee(g),
             "best_images_per_s": float(g.images_per_s.max())} for label, g in tp.groupby("label")]
    return pd.DataFrame(rows, columns=["label", "base_batch", "knee", "best_images_per_s"])


@dataclass(frozen=True, eq=False)
class Fit:
    """Least-squares t(B) = fixed_s + marginal_s x B over `batch_sizes` (those below the knee)."""
    fixed_s: float
    marginal_s: float
    fixed_share_at_1: float | None   # fixed / t(1) on the line; None when t(1) <= 0
    batch_sizes: tuple[int, ...]
    knee: int | None
    residuals: pd.DataFrame          # batch_size, measured_s, fitted_s, residual_s, in_fit


def fit_fixed_marginal(tp: pd.DataFrame) -> Fit | None:
    """The line through the batch sizes up to the knee (at least the first two); None with fewer than 2 points."""
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
    return Fit(
        fixed_s=float(fixed), marginal_s=float(marginal),
        fixed_share_at_1=float(fixed / at_one) if at_one > 0 else None,
        batch_sizes=tuple(int(b) for b in used.batch_size), knee=k,
        residuals=pd.DataFrame({"batch_size": tp.batch_size.to_numpy(),
                                "measured_s": tp.median_wall_s.to_numpy(),
                                "fitted_s": predicted.to_numpy(),
                                "residual_s": (tp.median_wall_s - predicted).to_numpy(),
                                "in_fit": tp.batch_size.isin(used.batch_size).to_numpy()}))


@dataclass(frozen=True)
class Scaling:
    """One run's largest batch against its smallest measured one (equal when one batch was measured)."""
    base_batch: int
    top_batch: int
    time_ratio: float          # median job time at top_batch over base_batch's
    speedup: float             # the view's speed-up at top_batch
    efficiency: float          # the view's efficiency at top_batch
    base_images_per_s: float


def scaling(tp: pd.DataFrame) -> Scaling | None:
    """The largest batch against the smallest, from one run's throughput rows; None without rows."""
    if tp.empty:
        return None
    tp = tp.sort_values("batch_size")
    base, top = tp.iloc[0], tp.iloc[-1]
    return Scaling(base_batch=int(base.batch_size), top_batch=int(top.batch_size),
                   time_ratio=float(top.median_wall_s / base.median_wall_s), speedup=float(top.speedup),
                   efficiency=float(top.efficiency), base_images_per_s=float(base.images_per_s))


@dataclass(frozen=True)
class Outcome:
    """Whether batching paid off in a run. kind: sequential | paid_off | faded | little."""
    kind: str
    speedup: float        # at the largest batch, over the smallest
    batch_ratio: float    # largest batch / smallest batch
    device: str


def batching_outcome(tp: pd.DataFrame, device: str = "cpu", mode: str = "static") -> Outcome | None:
    """From the largest batch's speed-up and efficiency: paid off (efficiency at or above the knee
    threshold), faded (below it, speed-up at least FADED_SPEEDUP), little (below both); None under 2 rows."""
    if len(tp) < 2:
        return None
    s = scaling(tp)
    if mode == "sequential":
        kind = "sequential"
    elif s.efficiency >= KNEE_EFFICIENCY:
        kind = "paid_off"
    elif s.speedup >= FADED_SPEEDUP:
        kind = "faded"
    else:
        kind = "little"
    return Outcome(kind=kind, speedup=s.speedup, batch_ratio=s.top_batch / s.base_batch, device=device)


@dataclass(frozen=True)
class StreamGain:
    """Stream mode's images/s over sequential mode's at the largest batch both measured (medians over runs)."""
    batch: int
    ratio: float


def stream_over_sequential(tp: pd.DataFrame) -> StreamGain | None:
    stream, seq = tp[tp["mode"] == "stream"], tp[tp["mode"] == "sequential"]
    common = set(stream.batch_size) & set(seq.batch_size)
    if not common:
        return None
    top = max(common)
    ratio = (stream[stream.batch_size == top].images_per_s.median()
             / seq[seq.batch_size == top].images_per_s.median())
    return StreamGain(batch=int(top), ratio=float(ratio))


@dataclass(frozen=True)
class ResolutionGain:
    """The best speed-up (over each run's smallest batch) at the smallest and the largest image height."""
    small_px: int
    large_px: int
    small_speedup: float
    large_speedup: float


def resolution_gain(tp: pd.DataFrame) -> ResolutionGain | None:
    if tp.height.nunique() < 2:
        return None
    small, large = int(tp.height.min()), int(tp.height.max())
    return ResolutionGain(small_px=small, large_px=large,
                          small_speedup=float(tp[tp.height == small].speedup.max()),
                          large_speedup=float(tp[tp.height == large].speedup.max()))


@dataclass(frozen=True)
class Effects:
    """Which effects a sweep's data shows."""
    knee_reached: bool               # some run's efficiency fell below KNEE_EFFICIENCY
    cfg: bool                        # some run had classifier-free guidance on
    stream: StreamGain | None
    resolution: ResolutionGain | None


def effects(runs: pd.DataFrame, tp: pd.DataFrame) -> Effects:
    """From the sweep's runs and their throughput rows."""
    return Effects(knee_reached=any(knee(tp[tp.run_id == r]) is not None for r in runs.run_id),
                   cfg=bool(runs.cfg.fillna(False).astype(bool).any()),
                   stream=stream_over_sequential(tp), resolution=resolution_gain(tp))


@dataclass(frozen=True)
class SweepSummary:
    """What a sweep measured, for its description."""
    task: str
    model_id: str
    model_params: float | None
    device_name: str
    dtype: str
    runs: int
    sizes: tuple[str, ...]           # "HxW", smallest first
    modes: tuple[str, ...]
    batch_sizes: tuple[int, ...]     # measured (throughput rows)
    steps: int
    guidance: tuple[float, ...]


def uses_embedded_model(model_ids) -> bool:
    """Whether any run used the embedded tiny model (random weights)."""
    return any(str(m).startswith("embedded-") for m in model_ids)


def sweep_summary(runs: pd.DataFrame, tp: pd.DataFrame) -> SweepSummary:
    """From the sweep's runs (the first one's model and device) and their throughput rows."""
    first = runs.iloc[0].to_dict()
    params = first["model_params"]
    return SweepSummary(
        task=str(first["task"]), model_id=str(first["model_id"]),
        model_params=None if pd.isna(params) else float(params),
        device_name=str(first["device_name"]), dtype=str(first["dtype"]), runs=len(runs),
        sizes=tuple(f"{h}x{w}" for h, w in sorted({(int(h), int(w)) for h, w in zip(runs.height, runs.width)})),
        modes=tuple(sorted(set(runs["mode"]))), batch_sizes=tuple(sorted({int(b) for b in tp.batch_size})),
        steps=int(first["steps"]), guidance=tuple(sorted({float(g) for g in runs.guidance_scale.dropna()})))


def phase_shares(phases: pd.DataFrame) -> pd.DataFrame:
    """Each phase's share of the summed phase time, per batch size (phase_breakdown rows)."""
    total = phases.groupby("batch_size").median_s.transform("sum")
    return phases.assign(share=phases.median_s / total)


def phase_share_ends(shares: pd.DataFrame, phase: str) -> tuple[int, float, int, float] | None:
    """A phase's share at the smallest and the largest batch: (batch, share, batch, share); None if absent."""
    if shares.empty:
        return None
    by_batch = shares[shares.phase == phase].set_index("batch_size").share
    if by_batch.empty:
        return None
    lo, hi = int(by_batch.index.min()), int(by_batch.index.max())
    return lo, float(by_batch[lo]), hi, float(by_batch[hi])


@dataclass(frozen=True)
class MemoryFit:
    """Per run: the largest batch whose every job fitted, the smallest one that did not, and how it failed."""
    label: str
    largest_fitted: int | None
    first_failed: int | None
    failed_statuses: str | None


def memory_fits(mem: pd.DataFrame) -> list[MemoryFit]:
    """From memory_by_batch rows, one per run label."""
    out = []
    for label, g in mem.groupby("label"):
        fitted, failed = g[g.fitted], g[~g.fitted]
        first = failed.sort_values("batch_size").iloc[0] if len(failed) else None
        out.append(MemoryFit(label=str(label),
                             largest_fitted=int(fitted.batch_size.max()) if len(fitted) else None,
                             first_failed=None if first is None else int(first.batch_size),
                             failed_statuses=None if first is None else str(first.statuses)))
    return out


@dataclass(frozen=True)
class ConvShare:
    """The lowest and highest share of UNet time that convolution took, over runs and batch sizes."""
    low: float
    high: float


def conv_share(mix: pd.DataFrame) -> ConvShare | None:
    """From op_mix rows; None without a conv row."""
    conv = mix[mix.category == "conv"]
    if conv.empty:
        return None
    return ConvShare(low=float(conv.share.min()), high=float(conv.share.max()))

"""Derived figures from query results: pure functions on DataFrames that return data; no I/O, no words.

The model of batch cost (a line or a hinge, chosen by BIC, with bootstrap intervals) lives in
`warehouse/costmodel.py`; the functions here apply it to runs and phases and derive the findings
the pages show. Speed-up and batching efficiency are defined once, in the warehouse view
`throughput_by_batch` (over each run's smallest measured batch, its `base_batch`): the functions
here read those columns and never recompute them. Sentences about these findings are made in
`warehouse/explain/`.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

import stats

from .costmodel import CostModel, Estimate, NoModel, fit_cost, fitted_curve  # noqa: F401  (fitted_curve: for the pages)

CONV_SHARE_REPORTED = 0.44  # arXiv 2312.14385: convolution up to 44% of diffusion TTI execution time
UNCERTAIN = 0.05   # a median (or ratio) whose 95% interval is wider than ±5% of it is shown as uncertain
PHASES = {"encode_s": "text encoding", "step_s": "one denoising step", "decode_s": "VAE decoding"}
PUBLISHED = Path(__file__).with_name("published.toml")


def run_models(costs: pd.DataFrame) -> dict[str, CostModel | NoModel]:
    """The cost model of each run's job times (job_costs rows), by run_id."""
    return {run_id: fit_cost(g.batch_size, g.wall_s) for run_id, g in costs.groupby("run_id", sort=False)}


def phase_models(costs: pd.DataFrame) -> dict[str, CostModel | NoModel]:
    """One run's phases (job_costs rows of one run): the cost model of each, by PHASES key."""
    return {col: fit_cost(costs.batch_size, costs[col]) for col in PHASES if costs[col].notna().any()}


@dataclass(frozen=True)
class FirstFull:
    """Which of a run's phases saturates first (phase None: none does), among the phases the run has."""
    phase: str | None               # the phase whose model saturates at the smallest knee (None: none does)
    knee: Estimate | None           # its knee, with its interval
    steady: tuple[str, ...]         # the fitted phases that do not saturate
    phases: tuple[str, ...]         # every phase with a fitted model (an inpainting run has no text encoding)
    batch_sizes: tuple[int, ...]    # the batch sizes measured (the widest of the phases' models)
    undetectable_past: int          # a bend past this batch could not have been seen in any phase


def first_saturating(models: dict[str, CostModel | NoModel]) -> FirstFull | None:
    """Which phase saturates first (smallest knee among those whose model saturates), and what the measured
    sizes let be seen; None when no phase has a fitted model."""
    fitted = {k: m for k, m in models.items() if isinstance(m, CostModel)}
    if not fitted:
        return None
    full = {k: m.knee for k, m in fitted.items() if m.saturates}
    first = min(full, key=lambda k: full[k].value) if full else None
    widest = max(fitted.values(), key=lambda m: (len(m.batch_sizes), m.undetectable_past))
    return FirstFull(phase=PHASES[first] if first else None, knee=full[first] if first else None,
                     steady=tuple(PHASES[k] for k in fitted if k not in full),
                     phases=tuple(PHASES[k] for k in fitted), batch_sizes=widest.batch_sizes,
                     undetectable_past=max(m.undetectable_past for m in fitted.values()))


@dataclass(frozen=True)
class Scaling:
    """One run's largest batch against its smallest measured one (equal when one batch was measured)."""
    base_batch: int
    top_batch: int
    time_ratio: float          # median job time at top_batch over base_batch's
    speedup: float             # the view's speed-up at top_batch
    efficiency: float          # the view's efficiency at top_batch
    base_images_per_s: float
    ratio_low: float | None = None   # 95% bootstrap interval of time_ratio (None without the jobs)
    ratio_high: float | None = None

    @property
    def uncertain(self) -> bool:
        """The time ratio's interval is wider than ±UNCERTAIN of it."""
        return (self.ratio_low is not None and np.isfinite(self.ratio_low)
                and (self.ratio_high - self.ratio_low) / 2 > UNCERTAIN * self.time_ratio)


def scaling(tp: pd.DataFrame, costs: pd.DataFrame | None = None) -> Scaling | None:
    """The largest batch against the smallest, from one run's throughput rows (and, given its job_costs
    rows, the interval of the time ratio); None without rows."""
    if tp.empty:
        return None
    tp = tp.sort_values("batch_size")
    base, top = tp.iloc[0], tp.iloc[-1]
    low = high = None
    if costs is not None and not costs.empty:
        _, low, high = stats.ratio_interval(costs[costs.batch_size == top.batch_size].wall_s,
                                            costs[costs.batch_size == base.batch_size].wall_s)
    return Scaling(base_batch=int(base.batch_size), top_batch=int(top.batch_size),
                   time_ratio=float(top.median_wall_s / base.median_wall_s), speedup=float(top.speedup),
                   efficiency=float(top.efficiency), base_images_per_s=float(base.images_per_s),
                   ratio_low=low, ratio_high=high)


@dataclass(frozen=True)
class StreamGain:
    """Stream mode against sequential mode, like for like: one size and CFG setting, the largest batch both
    measured. Ratios of medians over measured jobs: sequential time over stream time (above 1: stream faster)."""
    size: str          # "HxW"
    cfg: bool
    batch: int
    end_to_end: float  # whole job
    denoise: float     # the denoising loop alone (what StreamDiffusion's ~1.5x measures)


def stream_over_sequential(costs: pd.DataFrame) -> list[StreamGain]:
    """From job_costs rows: one gain per size and CFG setting with both a stream and a sequential run (of one
    model, task and VAE slicing setting)."""
    out = []
    for (h, w, cfg, *_), g in costs.groupby(["height", "width", "cfg", *_variant(costs)]):
        stream, seq = g[g["mode"] == "stream"], g[g["mode"] == "sequential"]
        common = set(stream.batch_size) & set(seq.batch_size)
        if not common:
            continue
        top = max(common)
        s, q = stream[stream.batch_size == top], seq[seq.batch_size == top]
        out.append(StreamGain(size=f"{h}x{w}", cfg=bool(cfg), batch=int(top),
                              end_to_end=float(q.wall_s.median() / s.wall_s.median()),
                              denoise=float(q.denoise_s.median() / s.denoise_s.median())))
    return out


def _variant(rows: pd.DataFrame) -> list[str]:
    """The columns that make two runs a different thing to compare, besides size, mode and CFG: the model, the
    task and the VAE slicing (where the rows carry them)."""
    return [c for c in ("model_id", "task", "vae_slicing") if c in rows.columns]


@dataclass(frozen=True)
class ResolutionGain:
    """Speed-up at one batch over each run's smallest batch, at the smallest and the largest image height,
    like for like (one mode and CFG setting, the largest batch both sizes measured)."""
    mode: str
    cfg: bool
    batch: int
    small_px: int
    large_px: int
    small_speedup: float
    large_speedup: float


def resolution_gain(tp: pd.DataFrame) -> list[ResolutionGain]:
    """From throughput rows carrying mode and cfg: one gain per mode and CFG setting measured at two heights."""
    out = []
    for (mode, cfg, *_), g in tp.groupby(["mode", "cfg", *_variant(tp)]):
        if g.height.nunique() < 2:
            continue
        small, large = g[g.height == g.height.min()], g[g.height == g.height.max()]
        common = set(small.batch_size) & set(large.batch_size)
        if len(common) < 2:
            continue
        top = max(common)
        out.append(ResolutionGain(
            mode=str(mode), cfg=bool(cfg), batch=int(top), small_px=int(small.height.iloc[0]),
            large_px=int(large.height.iloc[0]),
            small_speedup=float(small[small.batch_size == top].speedup.median()),
            large_speedup=float(large[large.batch_size == top].speedup.median())))
    return out


@dataclass(frozen=True)
class Saturation:
    """A run whose cost model saturates: the knee and the slopes either side of it."""
    label: str
    model: CostModel


@dataclass(frozen=True)
class Effects:
    """Which effects a sweep's data shows."""
    shared: list               # (label, CostModel) whose fixed share at the base batch is above half beyond its interval
    saturated: list[Saturation]
    cfg: bool                  # some run had classifier-free guidance on
    stream: list[StreamGain]
    resolution: list[ResolutionGain]


def effects(runs: pd.DataFrame, tp: pd.DataFrame, models: dict, costs: pd.DataFrame) -> Effects:
    """From the sweep's runs, their throughput rows (with mode and cfg), cost models by run_id and job_costs."""
    labels = runs.set_index("run_id").label
    fitted = [(labels[r], m) for r, m in models.items() if isinstance(m, CostModel)]
    return Effects(shared=[(label, m) for label, m in fitted if m.fixed_share.low > 0.5],
                   saturated=[Saturation(label, m) for label, m in fitted if m.saturates],
                   cfg=bool(runs.cfg.fillna(False).astype(bool).any()),
                   stream=stream_over_sequential(costs), resolution=resolution_gain(tp))


@dataclass(frozen=True)
class SweepSummary:
    """What a sweep measured, for its description."""
    task: str                        # the first run's (and `models` every task with its model)
    model_id: str
    model_params: float | None
    models: tuple[tuple[str, str, float | None], ...]  # (task, model_id, parameters), in the runs' order
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


def uses_preset(model_ids) -> bool:
    """Whether any run used an architecture preset (--arch: a real model's shapes, random weights)."""
    return any(str(m).startswith("preset-") for m in model_ids)


def sweep_summary(runs: pd.DataFrame, tp: pd.DataFrame) -> SweepSummary:
    """From the sweep's runs (the first one's model and device) and their throughput rows."""
    first = runs.iloc[0].to_dict()
    params = first["model_params"]
    models = tuple(dict.fromkeys(
        (str(t), str(m), None if pd.isna(p) else float(p))
        for t, m, p in zip(runs.task, runs.model_id, runs.model_params)))
    return SweepSummary(
        task=str(first["task"]), model_id=str(first["model_id"]),
        model_params=None if pd.isna(params) else float(params), models=models,
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
    overhead: tuple[int, float, int, float] | None  # overhead's share (median over runs) at the smallest and the
                                                     # largest profiled batch; None with fewer than two batches


def conv_share(mix: pd.DataFrame) -> ConvShare | None:
    """From op_mix rows; None without a conv row."""
    conv = mix[mix.category == "conv"]
    if conv.empty:
        return None
    over = mix[mix.category == "overhead"].groupby("batch_size").share.median()
    ends = None
    if len(over) >= 2:
        lo, hi = int(over.index.min()), int(over.index.max())
        ends = (lo, float(over[lo]), hi, float(over[hi]))
    return ConvShare(low=float(conv.share.min()), high=float(conv.share.max()), overhead=ends)


@dataclass(frozen=True)
class RooflineEnds:
    """One run's share of denoising time above its roofline floor, at its smallest and largest batch."""
    label: str
    low_batch: int
    low_share: float
    high_batch: int
    high_share: float
    low_floor_s: float
    low_denoise_s: float
    above_measured: int | None = None   # a batch whose floor exceeds its measured time (the ceilings read low)


def roofline_ends(roof: pd.DataFrame) -> list[RooflineEnds]:
    """From roofline rows (with label): runs with a floor at two batch sizes or more."""
    out = []
    for label, g in roof.dropna(subset=["above_floor_share"]).groupby("label", sort=False):
        if g.batch_size.nunique() < 2:
            continue
        g = g.sort_values("batch_size")
        lo, hi = g.iloc[0], g.iloc[-1]
        under = g[g.above_floor_share < 0]
        out.append(RooflineEnds(label=str(label), low_batch=int(lo.batch_size), low_share=float(lo.above_floor_share),
                                high_batch=int(hi.batch_size), high_share=float(hi.above_floor_share),
                                low_floor_s=float(lo.floor_s), low_denoise_s=float(lo.denoise_s),
                                above_measured=int(under.batch_size.iloc[0]) if len(under) else None))
    return out


def published_figures(path: Path = PUBLISHED) -> pd.DataFrame:
    """The published figures, normalised to milliseconds per image-step (NaN where only a ratio is given)."""
    rows = tomllib.loads(path.read_text())["figure"]
    out = []
    for r in rows:
        if "image_steps_per_s" in r:
            ms = 1000.0 / r["image_steps_per_s"]
        elif "seconds_per_image" in r:
            ms = 1000.0 * r["seconds_per_image"] / r["steps"]
        else:
            ms = np.nan
        out.append({"setting": r["setting"], "device": r["device"], "batch": int(r["batch"]),
                    "ms_per_image_step": ms, "speedup": r.get("speedup", np.nan), "source": r["source"]})
    table = pd.DataFrame(out)
    # Speed-up over the same setting's batch-1 row, where the source gave both.
    one = table[table.batch == 1].set_index(["setting", "device"]).ms_per_image_step
    at_one = [one.get((s, d), np.nan) for s, d in zip(table.setting, table.device)]
    return table.assign(speedup=table.speedup.fillna(pd.Series(at_one) / table.ms_per_image_step))


def own_figures(tp: pd.DataFrame, steps: pd.Series) -> pd.DataFrame:
    """A person's runs on the same footing: ms per image-step and speed-up at the smallest and the best batch.
    `steps` maps run_id to the run's denoising steps."""
    out = []
    for run_id, g in tp.groupby("run_id", sort=False):
        g = g.sort_values("batch_size")
        for row in {g.iloc[0].batch_size: g.iloc[0], g.loc[g.images_per_s.idxmax()].batch_size:
                    g.loc[g.images_per_s.idxmax()]}.values():
            out.append({"setting": f"{row.label}, {int(steps[run_id])} steps", "device": row.device,
                        "batch": int(row.batch_size),
                        "ms_per_image_step": 1000.0 * row.median_wall_s / (row.batch_size * steps[run_id]),
                        "speedup": float(row.speedup), "source": "your measurement"})
    return pd.DataFrame(out, columns=["setting", "device", "batch", "ms_per_image_step", "speedup", "source"])


def batch_intervals(costs: pd.DataFrame) -> pd.DataFrame:
    """Per run and batch size (job_costs rows): the median job time, its 95% bootstrap interval, the
    interval's half-width as a fraction of the median, and whether that is wider than UNCERTAIN."""
    rows = []
    for (run_id, batch), g in costs.groupby(["run_id", "batch_size"], sort=False):
        median, low, high = stats.median_interval(g.wall_s)
        rows.append({"run_id": run_id, "batch_size": int(batch), "jobs": len(g), "median_s": median,
                     "low_s": low, "high_s": high, "half_width": stats.half_width(g.wall_s)})
    out = pd.DataFrame(rows, columns=["run_id", "batch_size", "jobs", "median_s", "low_s", "high_s", "half_width"])
    return out.assign(uncertain=out.half_width > UNCERTAIN)


@dataclass(frozen=True)
class Trust:
    """How far to trust one run: its repeats, its widest interval, what else the machine did."""
    label: str
    jobs_per_batch: int            # the fewest measured jobs of any batch size
    rounds: int | None             # measured rounds (None before rounds were recorded)
    stop_reason: str | None
    widest: float                  # the widest half-width over its batch sizes (fraction of the median)
    widest_batch: int
    flags: tuple = ()              # contention findings: (kind, value)


def cores(run: dict) -> int | None:
    """The logical CPUs other processes' CPU use is a share of: the run's cpu_count, else its torch threads."""
    for key in ("cpu_count", "threads"):
        value = run.get(key)
        if value is not None and not pd.isna(value) and value > 0:
            return int(value)
    return None


def trust(label: str, intervals: pd.DataFrame, run: dict, flags=()) -> Trust | None:
    """From one run's batch_intervals rows and its run row (rounds, stop_reason); None without rows."""
    if intervals.empty:
        return None
    widest = intervals.loc[intervals.half_width.fillna(0).idxmax()]
    rounds = run.get("rounds")
    return Trust(label=label, jobs_per_batch=int(intervals.jobs.min()),
                 rounds=None if rounds is None or pd.isna(rounds) else int(rounds),
                 stop_reason=run.get("stop_reason") if isinstance(run.get("stop_reason"), str) else None,
                 widest=float(widest.half_width) if pd.notna(widest.half_width) else 0.0,
                 widest_batch=int(widest.batch_size), flags=tuple(flags))

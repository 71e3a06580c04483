"""Derived figures from query results: pure functions on DataFrames that return data; no I/O, no words.

The model of batch cost (a line or a hinge, chosen by BIC, with bootstrap intervals) lives in
`warehouse/costmodel.py`; the functions here apply it to runs and phases and derive the findings
the pages show. Speed-up and batching efficiency are defined once, in the warehouse view
`throughput_by_batch` (over each run's smallest measured batch, its `base_batch`): the functions
here read those columns and never recompute them. Sentences about these findings are made in
`warehouse/explain/`.
"""

from __future__ import annotations

import itertools
import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

import stats

from .costmodel import CostModel, Estimate, NoModel, fit_cost

CONV_SHARE_REPORTED = 0.44  # arXiv 2312.14385: convolution up to 44% of diffusion TTI execution time
UNCERTAIN = 0.05   # a median (or ratio) whose 95% interval is wider than ±5% of it is shown as uncertain
PHASES = {"encode_s": "text encoding", "step_s": "one denoising step", "decode_s": "VAE decoding"}


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
    ratio_low: float | None = None   # 95% interval of time_ratio (stats.ratio_interval): None without the jobs,
    ratio_high: float | None = None  # NaN when they are too few for one
    jobs: int | None = None          # the fewer measured jobs of the two batch sizes (None without the jobs)
    needed: int = stats.needed()     # the jobs each batch size needs for a 95% interval

    @property
    def too_few(self) -> bool:
        """Jobs were given, but too few at one of the two batch sizes for a 95% interval of the ratio."""
        return self.jobs is not None and not (self.ratio_low is not None and np.isfinite(self.ratio_low))

    @property
    def uncertain(self) -> bool:
        """The time ratio is not known within ±UNCERTAIN of it: no interval (too few jobs, or none given), or
        one wider than that. A single measured batch size has no ratio to be unsure of."""
        if self.top_batch == self.base_batch:
            return False
        if self.ratio_low is None or not np.isfinite(self.ratio_low):
            return True
        return (self.ratio_high - self.ratio_low) / 2 > UNCERTAIN * self.time_ratio


def scaling(tp: pd.DataFrame, costs: pd.DataFrame | None = None) -> Scaling | None:
    """The largest batch against the smallest, from one run's throughput rows (and, given its job_costs
    rows, the 95% interval of the time ratio, NaN with too few jobs); None without rows."""
    if tp.empty:
        return None
    tp = tp.sort_values("batch_size")
    base, top = tp.iloc[0], tp.iloc[-1]
    low = high = jobs = None
    if costs is not None and not costs.empty and top.batch_size != base.batch_size:
        ratio = stats.ratio_interval(costs[costs.batch_size == top.batch_size].wall_s,
                                     costs[costs.batch_size == base.batch_size].wall_s)
        low, high, jobs = ratio.low, ratio.high, ratio.n
    return Scaling(base_batch=int(base.batch_size), top_batch=int(top.batch_size),
                   time_ratio=float(top.median_wall_s / base.median_wall_s), speedup=float(top.speedup),
                   efficiency=float(top.efficiency), base_images_per_s=float(base.images_per_s),
                   ratio_low=low, ratio_high=high, jobs=jobs)


def _range(low: float, high: float) -> tuple[float, float] | None:
    """An interval, or None where the helper gave none (NaN bounds: too few jobs for the level)."""
    return (float(low), float(high)) if np.isfinite(low) and np.isfinite(high) else None


def _beyond(a: tuple[float, float] | None, b: tuple[float, float] | None) -> str | None:
    """'below' or 'above' when interval b lies wholly below or above interval a, 'same' when they overlap; None
    without both."""
    if a is None or b is None:
        return None
    return "below" if b[1] < a[0] else "above" if b[0] > a[1] else "same"


@dataclass(frozen=True)
class StreamGain:
    """Stream mode against sequential mode, like for like: one size, CFG setting and run settings, the largest
    batch both measured. Ratios of medians over measured jobs: sequential time over stream time (above 1:
    stream faster), with 95% intervals (None: too few jobs). Static batching of the same setting, where measured,
    against stream at the largest batch both measured: static time over stream time (below 1: static faster)."""
    size: str          # "HxW"
    cfg: bool
    batch: int
    end_to_end: float  # whole job
    denoise: float     # the denoising loop alone (what StreamDiffusion's ~1.5x measures)
    end_to_end_range: tuple[float, float] | None = None
    denoise_range: tuple[float, float] | None = None
    static_batch: int | None = None
    over_static: float | None = None                  # static time over stream time
    over_static_range: tuple[float, float] | None = None
    static_label: str = ""

    @property
    def static_won(self) -> bool | None:
        """True when static was faster than stream beyond the interval, False when stream was; None when the
        interval holds 1, there is none, or no static run."""
        if self.over_static_range is None:
            return None
        low, high = self.over_static_range
        return True if high < 1 else False if low > 1 else None


def _ratio(numerator: pd.Series, denominator: pd.Series) -> tuple[float, tuple[float, float] | None]:
    r = stats.ratio_interval(numerator.dropna(), denominator.dropna())
    return float(r.value), _range(r.low, r.high)


def stream_over_sequential(costs: pd.DataFrame) -> list[StreamGain]:
    """From job_costs rows: one gain per stream run and sequential run of one size, CFG setting and run settings
    (and per static run of that setting, where there is one)."""
    out = []
    for (h, w, cfg, *_), g in costs.groupby(["height", "width", "cfg", *variant_columns(costs)], dropna=False):
        runs = {m: [r for _, r in g[g["mode"] == m].groupby("run_id", sort=False)]
                for m in ("stream", "sequential", "static")}
        # Run against run: several runs of a mode (of one setting) are each compared, never pooled.
        for stream, seq, static in itertools.product(runs["stream"], runs["sequential"], runs["static"] or [None]):
            gain = _stream_gain(h, w, cfg, stream, seq, static)
            if gain is not None:
                out.append(gain)
    return out


def _stream_gain(h, w, cfg, stream: pd.DataFrame, seq: pd.DataFrame, static: pd.DataFrame | None) -> StreamGain | None:
    """One stream run against one sequential run (and one static run, if given) of one setting."""
    common = set(stream.batch_size) & set(seq.batch_size)
    if not common:
        return None
    top = max(common)
    s, q = stream[stream.batch_size == top], seq[seq.batch_size == top]
    end_to_end, end_range = _ratio(q.wall_s, s.wall_s)
    denoise, denoise_range = _ratio(q.denoise_s, s.denoise_s)
    versus = {}
    with_static = set(stream.batch_size) & set(static.batch_size) if static is not None else set()
    if with_static:
        b = max(with_static)
        ratio, span = _ratio(static[static.batch_size == b].wall_s, stream[stream.batch_size == b].wall_s)
        versus = {"static_batch": int(b), "over_static": ratio, "over_static_range": span,
                  "static_label": str(static.label.iloc[0])}
    return StreamGain(size=f"{h}x{w}", cfg=bool(cfg), batch=int(top), end_to_end=end_to_end,
                      denoise=denoise, end_to_end_range=end_range, denoise_range=denoise_range, **versus)


def variant_columns(rows: pd.DataFrame) -> list[str]:
    """The columns that make two runs a different thing to compare, besides size, mode and CFG: the model, the
    task, the VAE slicing, and how the run ran (device, dtype, torch threads, steps, attention kernel), where the rows
    carry them."""
    return [c for c in ("model_id", "task", "vae_slicing", "device", "dtype", "threads", "steps", "attention")
            if c in rows.columns]


@dataclass(frozen=True)
class ResolutionGain:
    """One run at the smallest image height against one at the largest, like for like (one mode, CFG setting
    and run settings): each run's speed-up at the largest batch both measured over the smallest batch both
    measured, a ratio of medians with its 95% interval (None: too few jobs)."""
    mode: str
    cfg: bool
    batch: int
    small_px: int
    large_px: int
    small_speedup: float
    large_speedup: float
    base: int = 1
    small_label: str = ""
    large_label: str = ""
    small_range: tuple[float, float] | None = None
    large_range: tuple[float, float] | None = None

    @property
    def change(self) -> str | None:
        """'less' or 'more' when the larger size's speed-up lies wholly below or above the smaller size's
        interval (the two intervals do not overlap), 'same' when they overlap; None without both intervals."""
        return {"below": "less", "above": "more", "same": "same", None: None}[
            _beyond(self.small_range, self.large_range)]


def _speedup(jobs: pd.DataFrame, base: int, top: int) -> tuple[float, tuple[float, float] | None]:
    """A run's speed-up at batch top over batch base: (top / base) x median base time / median top time."""
    ratio, span = _ratio(jobs[jobs.batch_size == base].wall_s, jobs[jobs.batch_size == top].wall_s)
    scale = top / base
    return ratio * scale, None if span is None else (span[0] * scale, span[1] * scale)


def resolution_gain(costs: pd.DataFrame) -> list[ResolutionGain]:
    """From job_costs rows: one gain per pair of runs of one mode, CFG setting and run settings, one at the
    smallest height and one at the largest, that measured two batch sizes or more in common. Run against run:
    no figure is a median over runs."""
    out = []
    for (mode, cfg, *_), g in costs.groupby(["mode", "cfg", *variant_columns(costs)], dropna=False):
        if g.height.nunique() < 2:
            continue
        small, large = g[g.height == g.height.min()], g[g.height == g.height.max()]
        for (a, ja), (b, jb) in itertools.product(small.groupby("run_id", sort=False),
                                                  large.groupby("run_id", sort=False)):
            common = set(ja.batch_size) & set(jb.batch_size)
            if len(common) < 2:
                continue
            base, top = min(common), max(common)
            (sa, ra), (sb, rb) = _speedup(ja, base, top), _speedup(jb, base, top)
            out.append(ResolutionGain(
                mode=str(mode), cfg=bool(cfg), batch=int(top), small_px=int(ja.height.iloc[0]),
                large_px=int(jb.height.iloc[0]), small_speedup=sa, large_speedup=sb, base=int(base),
                small_label=str(ja.label.iloc[0]), large_label=str(jb.label.iloc[0]), small_range=ra,
                large_range=rb))
    return out


@dataclass(frozen=True)
class Saturation:
    """A run whose cost model saturates: the knee and the slopes either side of it."""
    label: str
    model: CostModel


@dataclass(frozen=True)
class SharedCost:
    """A run whose fixed cost per call is above half of its smallest batch's time, beyond its interval, with
    what the data show of the cost's parts (None where the run has no such data)."""
    label: str
    model: CostModel
    overhead: tuple[int, float] | None = None     # (batch, share of UNet time outside every operator), profiled
    weight_read: tuple[int, float] | None = None  # (batch, share of denoising time that reading the UNet's
                                                  # weights once per call takes at the measured copy ceiling)


@dataclass(frozen=True)
class Effects:
    """Which effects a sweep's data shows."""
    shared: list[SharedCost]   # fixed share at the base batch above half beyond its interval
    saturated: list[Saturation]
    cfg: bool                  # some run had classifier-free guidance on
    stream: list[StreamGain]
    resolution: list[ResolutionGain]


def _at_smallest(rows: pd.DataFrame, column: str) -> tuple[int, float] | None:
    """(batch, value) at the smallest batch of one run's rows with a value in `column`; None without one."""
    rows = rows.dropna(subset=[column])
    if rows.empty:
        return None
    row = rows.loc[rows.batch_size.idxmin()]
    return int(row.batch_size), float(row[column])


def fixed_cost_parts(run_id: str, mix: pd.DataFrame | None, roof: pd.DataFrame | None) -> dict:
    """What the data show of one run's fixed cost per call, at its smallest batch with the data: the overhead's
    share of UNet time (op_mix rows) and the share of denoising time its weight reads take (roofline rows)."""
    overhead = weight = None
    if mix is not None and not mix.empty:
        overhead = _at_smallest(mix[(mix.run_id == run_id) & (mix.category == "overhead")], "share")
    if roof is not None and not roof.empty:
        mine = roof[roof.run_id == run_id]
        weight = _at_smallest(mine.assign(weight_share=mine.memory_floor_s / mine.denoise_s), "weight_share")
    return {"overhead": overhead, "weight_read": weight}


def effects(runs: pd.DataFrame, tp: pd.DataFrame, models: dict, costs: pd.DataFrame,
            mix: pd.DataFrame | None = None, roof: pd.DataFrame | None = None) -> Effects:
    """From the sweep's runs, their throughput rows (with mode and cfg), cost models by run_id and job_costs;
    given the runs' op_mix and roofline rows, what the data show of a fixed cost's parts."""
    labels = runs.set_index("run_id").label
    fitted = [(r, labels[r], m) for r, m in models.items() if isinstance(m, CostModel)]
    return Effects(shared=[SharedCost(label, m, **fixed_cost_parts(r, mix, roof))
                           for r, label, m in fitted if m.fixed_share.low > 0.5],
                   saturated=[Saturation(label, m) for _, label, m in fitted if m.saturates],
                   cfg=bool(runs.cfg.fillna(False).astype(bool).any()),
                   stream=stream_over_sequential(costs), resolution=resolution_gain(costs))


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
    steps: tuple[int, ...]           # the step counts of the runs, fewest first
    guidance: tuple[float, ...]


def _random_embedded(runs: pd.DataFrame) -> pd.Series:
    sha = runs.weights_sha256 if "weights_sha256" in runs else pd.Series(None, index=runs.index)
    return (runs.model_kind == "embedded") & sha.isna()


def uses_embedded_model(runs: pd.DataFrame) -> bool:
    """Whether any run used the embedded tiny model with random weights: a run recorded before the model was
    trained (model_kind embedded without weights_sha256, migration 13)."""
    return bool(_random_embedded(runs).any())


def uses_trained_model(runs: pd.DataFrame) -> bool:
    """Whether any run used an embedded model with the weights trained here (weights_sha256 recorded)."""
    return bool(((runs.model_kind == "embedded") & ~_random_embedded(runs)).any())


def draws_noise(runs: pd.DataFrame) -> bool:
    """Whether any run's model had random weights (a preset, or the embedded model before it was trained)."""
    return bool((runs.model_kind == "preset").any() or _random_embedded(runs).any())


# Architecture presets (generator/pipelines/presets.py; a run's model_id is "preset-<arch>-random-<task>"): those with a
# published model's shapes, and those at toy widths. tests/test_analysis.py holds the two against the
# generator's list of presets, so a new preset must be placed in one of them.
PRESETS_REAL_SHAPES = ("sd15", "sd15-inpaint", "sdxl", "ldm-inpaint", "pixart")
PRESETS_TOY = ("ldm-inpaint-tiny", "tiny-random", "ldm-inpaint-tiny-random", "pixart-tiny")
_PRESET_ID = re.compile(r"^preset-(?P<arch>.+)-random-[^-]+$")


@dataclass(frozen=True)
class PresetUse:
    """The architecture presets a sweep's runs used, split into real shapes and toy widths."""
    real: tuple[str, ...]
    toy: tuple[str, ...]


def preset_arch(model_id) -> str | None:
    """The preset of a run's model_id ('preset-sd15-random-txt2img' -> 'sd15'); None for another model."""
    found = _PRESET_ID.match(str(model_id))
    return found["arch"] if found else None


def uses_preset(model_kinds) -> bool:
    """Whether any run used an architecture preset (--arch: random weights): runs' `model_kind` column."""
    return any(k == "preset" for k in model_kinds)


def presets_used(model_ids) -> PresetUse:
    """Which presets the runs used: those with a real model's shapes, and the others (toy widths, or a
    preset this version does not know, which is not claimed to have real shapes)."""
    archs = sorted({a for a in map(preset_arch, model_ids) if a is not None})
    return PresetUse(real=tuple(a for a in archs if a in PRESETS_REAL_SHAPES),
                     toy=tuple(a for a in archs if a not in PRESETS_REAL_SHAPES))


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
        steps=tuple(sorted({int(n) for n in runs.steps.dropna()})), guidance=tuple(sorted({float(g) for g in runs.guidance_scale.dropna()})))


def phase_share_ends(phases: pd.DataFrame, phase: str) -> tuple[int, float, int, float] | None:
    """A phase's share at the smallest and the largest batch of one run's phase_breakdown rows: (batch, share,
    batch, share); None if absent. The share is the view's `median_share` (its one definition: the median over
    the measured jobs of the phase's share of its job)."""
    if phases.empty:
        return None
    by_batch = phases[phases.phase == phase].set_index("batch_size").median_share
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
    low_range: tuple[float, float] | None = None    # 95% interval of low_share (None: too few jobs, or no jobs given)
    high_range: tuple[float, float] | None = None   # 95% interval of high_share

    @property
    def change(self) -> str | None:
        """'less' or 'more' above the floor at the larger batch when the two intervals do not overlap, 'same'
        when they do; None without both intervals (too few jobs to say)."""
        if self.low_range is None or self.high_range is None:
            return None
        if self.high_range[1] < self.low_range[0]:
            return "less"
        if self.high_range[0] > self.low_range[1]:
            return "more"
        return "same"


def share_range(floor_s: float, denoise: pd.Series) -> tuple[float, float] | None:
    """The 95% interval of a share above the floor, 1 - floor / denoising time, from the interval of the median
    denoising time of the jobs (the floor is computed, not measured); None when the jobs are too few for one."""
    r = stats.median_interval(denoise.dropna())
    low, high = r.low, r.high
    if not (np.isfinite(low) and np.isfinite(high)) or low <= 0:
        return None
    return 1 - floor_s / low, 1 - floor_s / high


def roofline_ends(roof: pd.DataFrame, costs: pd.DataFrame | None = None) -> list[RooflineEnds]:
    """From roofline rows (with label): runs with a floor at two batch sizes or more. Given the runs' job_costs
    rows, each end carries the 95% interval of its share (from the per-job denoising times)."""
    out = []
    for label, g in roof.dropna(subset=["above_floor_share"]).groupby("label", sort=False):
        if g.batch_size.nunique() < 2:
            continue
        g = g.sort_values("batch_size")
        lo, hi = g.iloc[0], g.iloc[-1]
        under = g[g.above_floor_share < 0]
        ranges = [None, None]
        if costs is not None:
            jobs = costs[costs.run_id == lo.run_id]
            ranges = [share_range(float(end.floor_s), jobs[jobs.batch_size == end.batch_size].denoise_s)
                      for end in (lo, hi)]
        out.append(RooflineEnds(label=str(label), low_batch=int(lo.batch_size), low_share=float(lo.above_floor_share),
                                high_batch=int(hi.batch_size), high_share=float(hi.above_floor_share),
                                low_floor_s=float(lo.floor_s), low_denoise_s=float(lo.denoise_s),
                                above_measured=int(under.batch_size.iloc[0]) if len(under) else None,
                                low_range=ranges[0], high_range=ranges[1]))
    return out


def published_figures(rows: list[dict]) -> pd.DataFrame:
    """The published figures (`db.published_rows()`: published.toml's rows), normalised to milliseconds per
    image-step (NaN where only a ratio is given)."""
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
    """Per run and batch size (job_costs rows): the median job time, its 95% order-statistic interval
    (stats.median_interval; NaN where the jobs are fewer than `needed`: too_few), the interval's half-width
    as a fraction of the median, and whether the median is uncertain: no interval, or one wider than
    ±UNCERTAIN."""
    rows = []
    for (run_id, batch), g in costs.groupby(["run_id", "batch_size"], sort=False):
        r = stats.median_interval(g.wall_s)
        rows.append({"run_id": run_id, "batch_size": int(batch), "jobs": len(g), "median_s": r.value,
                     "low_s": r.low, "high_s": r.high, "half_width": r.half_width, "too_few": r.too_few,
                     "needed": r.needed})
    out = pd.DataFrame(rows, columns=["run_id", "batch_size", "jobs", "median_s", "low_s", "high_s", "half_width",
                                      "too_few", "needed"]).astype({"too_few": bool})
    return out.assign(uncertain=out.too_few | (out.half_width > UNCERTAIN))


@dataclass(frozen=True)
class Trust:
    """How far to trust one run: its repeats, its widest interval, what else the machine did."""
    label: str
    jobs_per_batch: int            # the fewest measured jobs of any batch size
    rounds: int | None             # measured rounds (None before rounds were recorded)
    stop_reason: str | None
    widest: float                  # the widest half-width over the batch sizes with an interval (fraction of
    widest_batch: int | None       # the median); NaN and None when none has one
    flags: tuple = ()              # contention findings: (kind, value)
    too_few: tuple[int, ...] = ()  # batch sizes with too few jobs for a 95% interval
    needed: int = stats.needed()   # the jobs a batch size needs for one

    @property
    def sure_of_none(self) -> bool:
        """No batch size has an interval: nothing the run measured is known to 95%."""
        return self.widest_batch is None


def cores(run: dict) -> int | None:
    """The logical CPUs other processes' CPU use is a share of: the run's cpu_count, else its torch threads."""
    for key in ("cpu_count", "threads"):
        value = run.get(key)
        if value is not None and not pd.isna(value) and value > 0:
            return int(value)
    return None


def trust(label: str, intervals: pd.DataFrame, run: dict, flags=()) -> Trust | None:
    """From one run's batch_intervals rows and its run row (rounds, stop_reason); None without rows. The widest
    interval is over the batch sizes that have one; those with too few jobs are listed apart, never counted
    as narrow."""
    if intervals.empty:
        return None
    has = intervals[intervals.half_width.notna()]
    widest = has.loc[has.half_width.idxmax()] if not has.empty else None
    rounds = run.get("rounds")
    return Trust(label=label, jobs_per_batch=int(intervals.jobs.min()),
                 rounds=None if rounds is None or pd.isna(rounds) else int(rounds),
                 stop_reason=run.get("stop_reason") if isinstance(run.get("stop_reason"), str) else None,
                 widest=float(widest.half_width) if widest is not None else np.nan,
                 widest_batch=int(widest.batch_size) if widest is not None else None, flags=tuple(flags),
                 too_few=tuple(sorted(int(b) for b in intervals.batch_size[intervals.too_few])))

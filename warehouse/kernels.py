"""The seed paper's system findings, on a person's own runs (Generative AI Beyond LLMs, arXiv 2312.14385):

- the operator mix per denoiser family: convolution takes up to 44% of a UNet text-to-image model's time,
  linear layers up to 49% of a transformer one's (`family_mixes`);
- the fused attention kernel against the plain math path, per family and batch size (`kernel_gains`); the paper
  finds UNets gain 1.1-2.5x more from Flash Attention than transformer models;
- attention's sequence length inside one model: a UNet's levels work at different latent sizes, so the tokens per
  attention call vary (up to 4x in the paper's models); a transformer's layers all see one length
  (`attention_lengths`).

Pure functions over the warehouse's rows (Warehouse.family_mix, job_costs, attention_levels), returning data.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

import stats

from .analysis import CONV_SHARE_REPORTED, preset_arch, variant_columns

LINEAR_SHARE_REPORTED = 0.49  # linear layers' share of transformer text-to-image time, at most (arXiv 2312.14385)
FLASH_GAIN_REPORTED = (1.1, 2.5)  # how much more UNets gain from Flash Attention than transformers (ibid.)
LENGTH_SPREAD_REPORTED = 4.0  # attention's sequence length varies up to this factor inside one model (ibid.)
REPORTED = {"conv": CONV_SHARE_REPORTED, "linear": LINEAR_SHARE_REPORTED}
PLAIN = "math"  # the attention setting every fused kernel is held against


def model_name(model_id: str) -> str:
    """The preset a model_id names ('preset-pixart-random-txt2img' -> 'pixart'), the embedded model's
    ('embedded-tiny-shapes-txt2img' -> 'tiny'), else the model_id itself."""
    arch = preset_arch(model_id)
    if arch is not None:
        return arch
    text = str(model_id)
    if text.startswith("embedded-") and "-shapes-" in text:
        return text.removeprefix("embedded-").split("-shapes-")[0]
    return text


@dataclass(frozen=True)
class FamilyMix:
    """One model's operator mix over its profiled batch sizes (the fused-kernel runs): each category's share of
    denoiser time as (median, lowest, highest) over the batch sizes."""
    family: str
    model: str
    size: str
    batch_sizes: tuple[int, ...]
    shares: dict  # category -> (median, low, high)

    @property
    def top(self) -> str | None:
        """The category that took the most time at every batch size: its lowest share above every other
        category's highest; None when two trade places."""
        ranked = sorted(self.shares.items(), key=lambda kv: kv[1][0], reverse=True)
        if not ranked:
            return None
        if len(ranked) == 1 or ranked[0][1][1] > max(high for _, (_, _, high) in ranked[1:]):
            return ranked[0][0]
        return None

    def share(self, category: str) -> tuple[float, float, float]:
        return self.shares.get(category, (0.0, 0.0, 0.0))


def _fused(rows: pd.DataFrame) -> pd.DataFrame:
    """The rows of runs with a fused kernel where there are any (the mix a person runs by default), else all."""
    return rows[rows.attention != PLAIN] if (rows.attention != PLAIN).any() else rows


def _named(rows: pd.DataFrame) -> pd.DataFrame:
    """`rows` with a `model` column: the model's name and its family, 'pixart (transformer)'."""
    return rows.assign(model=rows.model_id.map(model_name) + " (" + rows.family + ")")


def mix_rows(mix: pd.DataFrame) -> pd.DataFrame:
    """Warehouse.family_mix rows of the fused-kernel runs, each named by its model (the page's bars)."""
    return _named(_fused(mix))


def family_mixes(mix: pd.DataFrame) -> list[FamilyMix]:
    """From Warehouse.family_mix rows: one FamilyMix per (family, model, size), over the runs that did not ask for
    the plain math kernel (the mix a person runs by default), UNets first."""
    rows = _fused(mix)
    out = []
    for (family, model_id, h, w), g in rows.groupby(["family", "model_id", "height", "width"], sort=True):
        per_batch = g.groupby(["batch_size", "category"]).time_s.sum().unstack(fill_value=0.0)
        shares = per_batch.div(per_batch.sum(axis=1), axis=0)
        out.append(FamilyMix(
            family=str(family), model=model_name(model_id), size=f"{h}x{w}",
            batch_sizes=tuple(int(b) for b in shares.index),
            shares={c: (float(shares[c].median()), float(shares[c].min()), float(shares[c].max()))
                    for c in shares.columns}))
    return sorted(out, key=lambda m: (m.family != "unet", m.model, m.size))


@dataclass(frozen=True)
class KernelGain:
    """How much faster a fused-kernel run denoised than the same setting on the plain math path, at one batch
    size: median math time over median fused time (above 1: the fused kernel was faster) and its 95% interval
    (stats.ratio_interval; NaN with too few jobs)."""
    family: str
    model: str
    size: str
    batch: int
    fused: str
    ratio: float
    low: float
    high: float
    jobs: int
    needed: int

    @property
    def too_few(self) -> bool:
        return not (np.isfinite(self.low) and np.isfinite(self.high))

    @property
    def verdict(self) -> str | None:
        """'faster' or 'slower' when the interval lies wholly above or below 1; None when it holds 1 or is
        missing."""
        if self.too_few:
            return None
        return "faster" if self.low > 1 else "slower" if self.high < 1 else None


def kernel_gains(costs: pd.DataFrame) -> list[KernelGain]:
    """From job_costs rows: for each run on the math path and each run of the same setting (model, size, mode,
    CFG, steps, device...) with a fused kernel, one KernelGain per batch size both measured. Denoising time where
    the jobs have it, else the whole job's."""
    if costs.empty or "attention" not in costs.columns:
        return []
    keys = ["height", "width", "mode", "cfg", *[c for c in variant_columns(costs) if c != "attention"]]
    out = []
    for _, g in costs.groupby(keys, dropna=False, sort=False):
        plain, fused = g[g.attention == PLAIN], g[g.attention != PLAIN]
        for kernel, f in fused.groupby("attention", sort=True):
            for b in sorted(set(plain.batch_size) & set(f.batch_size)):
                a, c = plain[plain.batch_size == b], f[f.batch_size == b]
                column = "denoise_s" if a.denoise_s.notna().all() and c.denoise_s.notna().all() else "wall_s"
                r = stats.ratio_interval(a[column], c[column])
                first = f.iloc[0]
                out.append(KernelGain(family=str(first.family), model=model_name(first.model_id),
                                      size=f"{first.height}x{first.width}", batch=int(b), fused=str(kernel),
                                      ratio=float(r.value), low=float(r.low), high=float(r.high), jobs=int(r.n),
                                      needed=int(r.needed)))
    return out


def by_setting(gains: list[KernelGain]) -> list[list[KernelGain]]:
    """The gains grouped by family, model, size and fused kernel, each group in batch order (one sentence each)."""
    groups: dict = {}
    for g in gains:
        groups.setdefault((g.family, g.model, g.size, g.fused), []).append(g)
    return [sorted(group, key=lambda g: g.batch) for group in groups.values()]


def gain_rows(gains: list[KernelGain]) -> pd.DataFrame:
    """One row per KernelGain (the page's points and intervals), each named by its model, family and size."""
    return pd.DataFrame([{"model": f"{g.model} ({g.family}) {g.size}", "batch_size": g.batch, "ratio": g.ratio,
                          "low": g.low, "high": g.high, "fused": g.fused} for g in gains])


@dataclass(frozen=True)
class KernelPictures:
    """One model's pictures drawn under two attention kernels, seed by seed (image_checks against 'attention'):
    how many comparisons, and the largest and the mean difference of a pixel channel (0-255)."""
    family: str
    model: str
    comparisons: int
    max_abs_diff: int
    mean_abs_diff: float


def kernel_pictures(checks: pd.DataFrame) -> list[KernelPictures]:
    """From Warehouse.image_checks rows: one per model whose runs differed only in their attention kernel."""
    rows = checks[checks.against == "attention"] if not checks.empty else checks
    out = []
    for (family, model_id), g in rows.groupby(["family", "model_id"], sort=True):
        out.append(KernelPictures(family=str(family), model=model_name(model_id), comparisons=len(g),
                                  max_abs_diff=int(g.max_abs_diff.max()), mean_abs_diff=float(g.mean_abs_diff.mean())))
    return sorted(out, key=lambda p: (p.family != "unet", p.model))


@dataclass(frozen=True)
class AttentionLengths:
    """One profiled run's attention at its largest profiled batch: the query lengths (tokens per attention call)
    it ran, longest first, with each one's share of the attention time and of the attention FLOPs."""
    family: str
    model: str
    size: str
    batch: int
    lengths: tuple[int, ...]
    shares: tuple[float, ...]
    flop_shares: tuple[float, ...] = ()

    @property
    def spread(self) -> float:
        """The longest query length over the shortest (1: one length throughout)."""
        return self.lengths[0] / self.lengths[-1]


def attention_lengths(levels: pd.DataFrame) -> list[AttentionLengths]:
    """From Warehouse.attention_levels rows: one per run (fused-kernel runs where there are any), UNets first."""
    if levels.empty:
        return []
    out = []
    for run_id, g in _fused(levels).groupby("run_id", sort=False):
        g = g[g.batch_size == g.batch_size.max()]
        by_length = g.groupby("query_tokens").time_s.sum().sort_index(ascending=False)
        flops = g.groupby("query_tokens").flops.sum().reindex(by_length.index)
        total, total_flops = float(by_length.sum()), float(flops.sum())
        first = g.iloc[0]
        out.append(AttentionLengths(
            family=str(first.family), model=model_name(first.model_id), size=f"{first.height}x{first.width}",
            batch=int(first.batch_size), lengths=tuple(int(n) for n in by_length.index),
            shares=tuple(float(t / total) if total > 0 else np.nan for t in by_length),
            flop_shares=tuple(float(f / total_flops) if total_flops > 0 else np.nan for f in flops)))
    return sorted(out, key=lambda a: (a.family != "unet", a.model, a.size))


def length_rows(levels: pd.DataFrame) -> pd.DataFrame:
    """Warehouse.attention_levels rows of the fused-kernel runs at each run's largest profiled batch (what
    attention_lengths reads), each named by its model, with its call as 'query x key' tokens (the page's bars)."""
    fused = _fused(levels)
    rows = fused[fused.batch_size == fused.groupby("run_id").batch_size.transform("max")]
    return _named(rows).assign(call=rows.query_tokens.astype(str) + " x " + rows.key_tokens.astype(str))

"""The model of batch cost: how a call's time grows with its batch, and how sure we are of it.

Two models are fitted by least squares to every measured job (one point per repeat):

- a straight line, t(B) = fixed + marginal x B: every image costs `marginal`, and `fixed`
  is paid once per call whatever its size (launches, Python, weight reads, idle device);
- a continuous hinge, slope m1 up to a knee B* and m2 after it: "extra images ride along" up to
  B*, then "the device is full". The knee may lie anywhere the data can place it, between measured
  sizes too: it is profiled over a fine grid from the 2nd smallest to the 2nd largest measured size
  (KNEE_STEPS points per gap). Outside that range a knee changes nothing a fit can tell apart, so a
  bend past the 2nd largest size cannot be seen (`undetectable_past`); with fewer than 4 sizes, or
  with some size measured only once (no noise to judge a bend against), no bend is claimed at all.

Timing noise grows with the time measured, so both are weighted least squares on relative
residuals (each point weighted by 1 / its batch size's median time).

The Bayesian information criterion picks between them, and a bend is claimed only on strong
evidence: the hinge's BIC must be lower than the line's by BIC_MARGIN (6) or more (the hinge pays
for its slope after the knee and for the knee). A bend is never claimed from a batch size that is
slower than a larger one beyond noise: that is a `bump` (noise, or a kernel choice), reported with
its size, and the model stays a line. Beyond noise means a pairwise t-test (`find_bump`), or a hinge
whose fitted slope before or after the knee lies below zero beyond its interval (the fit itself falls).

Every figure gets a 95% interval by bootstrap that redoes the line-or-hinge choice in every redraw
(so the interval counts that the choice was made on the data). The redraws add, to each batch size's
mean time, noise drawn from the pooled relative deviations of every job from its size's mean (or,
where some size has a single job, from the fit's relative residuals), scaled up for the degrees of
freedom the means used. The redraws are refitted all at once (numpy: every draw and every knee of the
grid in a few matrix products). A percentile interval is as wide as a normal one with the noise taken
as known; the noise is estimated from `df` degrees of freedom, so each side is widened by
t(df) / z, Student's quantile over the normal one (with 3 repeats at 8 sizes, df = 16, x1.08). The
coverage this gives is measured in tests/test_knee_sim.py (several noise shapes, 3, 5 and 10
repeats). With no degrees of freedom left (one job at each of two sizes) there is no interval (NaN).

A slope whose interval lies below zero is "too noisy to fit", not a model. Saturation is claimed
only when the slope after the knee exceeds the slope before it beyond both intervals. Pure functions
of arrays and frames: no I/O, no words (warehouse/explain/ words them).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache
from statistics import NormalDist

import numpy as np
import pandas as pd

RESAMPLES = 1000      # bootstrap draws per fit
LEVEL = 0.95          # interval coverage
SEED = 0              # the bootstrap's generator: the same data give the same intervals
ZERO_RMS = 1e-6       # relative residuals below this count as an exact fit
BIC_MARGIN = 6.0      # the line's BIC minus the hinge's needed to claim a bend ("strong evidence")
KNEE_STEPS = 8        # knee grid points per gap between neighbouring measured sizes
MIN_SIZES_FOR_KNEE = 4  # a knee between the 2nd smallest and 2nd largest size needs 4 sizes
BUMP_ALPHA = 0.01     # false-alarm rate of the bump test over all pairs of sizes (Bonferroni)


@dataclass(frozen=True)
class Estimate:
    """A figure and its interval (low and high NaN when the data leave none)."""
    value: float
    low: float
    high: float

    def excludes(self, x: float) -> bool:
        return not (self.low <= x <= self.high)

    @property
    def has_interval(self) -> bool:
        return bool(np.isfinite(self.low) and np.isfinite(self.high))


@dataclass(frozen=True)
class Bump:
    """A batch size whose median time exceeds a larger size's beyond noise: a one-sided t-test on the
    two sizes' mean times (family-wise false-alarm rate BUMP_ALPHA over every pair), or a hinge that would
    have been claimed but whose time falls beyond a slope's interval (then the pair of largest excess)."""
    batch: int
    slower_than: int
    ratio: float          # median time at `batch` / median time at `slower_than` (> 1)


@dataclass(frozen=True)
class NoModel:
    """Why no model is given. reason: no_data | one_size | too_noisy."""
    reason: str
    batch_sizes: tuple[int, ...] = ()
    marginal_s: float | None = None   # the negative slope that made it too noisy


@dataclass(frozen=True)
class CostModel:
    """The chosen model of one series of job times against batch size, with 95% intervals."""
    kind: str                          # line | hinge
    fixed_s: Estimate
    marginal_s: Estimate               # per extra image (up to the knee for a hinge)
    marginal_after_s: Estimate | None  # per extra image after the knee (hinge)
    knee: Estimate | None              # the batch size where the slope changes (hinge; may lie between sizes)
    base_batch: int                    # the smallest measured batch
    fixed_share: Estimate              # fixed / fitted time at base_batch
    batch_sizes: tuple[int, ...]
    jobs: int
    method: str                        # repeats | residuals: what the bootstrap redrew
    bic_line: float
    bic_hinge: float | None            # None when no hinge can be fitted (fewer than 4 sizes)
    undetectable_past: int             # a bend past this batch cannot be seen (base_batch: none can)
    bump: Bump | None = None           # a size slower than a larger one beyond noise (then no bend is claimed)
    hinge_draws: float = 0.0           # share of the bootstrap redraws in which the hinge was chosen
    df: int = 0                        # degrees of freedom of the noise the intervals rest on

    @property
    def saturates(self) -> bool:
        """The slope after the knee is above the slope before it beyond both intervals."""
        return (self.kind == "hinge" and self.marginal_after_s is not None
                and self.marginal_after_s.low > self.marginal_s.high)

    @property
    def bic_gain(self) -> float | None:
        """The line's BIC minus the hinge's (a bend is claimed from BIC_MARGIN on)."""
        return None if self.bic_hinge is None else self.bic_line - self.bic_hinge

    def predict(self, batch) -> np.ndarray:
        b = np.asarray(batch, dtype=float)
        if self.kind == "line":
            return self.fixed_s.value + self.marginal_s.value * b
        return _hinge_design(b, self.knee.value) @ np.array(
            [self.fixed_s.value, self.marginal_s.value, self.marginal_after_s.value])


# -- designs, grid, quantiles ------------------------------------------------------------------------

def _line_design(b: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones_like(b), b])


def _hinge_design(b: np.ndarray, knee: float) -> np.ndarray:
    return np.column_stack([np.ones_like(b), np.minimum(b, knee), np.maximum(b - knee, 0.0)])


def knee_grid(sizes: tuple[int, ...]) -> np.ndarray:
    """The knees a fit can place: from the 2nd smallest to the 2nd largest size, KNEE_STEPS per gap
    (empty with fewer than MIN_SIZES_FOR_KNEE sizes). A knee below the 2nd smallest or above the 2nd
    largest size gives the same fit as the end of this range: the data cannot tell them apart."""
    if len(sizes) < MIN_SIZES_FOR_KNEE:
        return np.empty(0)
    inner = np.asarray(sizes[1:-1], dtype=float)
    steps = [np.linspace(lo, hi, KNEE_STEPS, endpoint=False) for lo, hi in zip(inner[:-1], inner[1:])]
    return np.concatenate([*steps, inner[-1:]])


def undetectable_past(sizes: tuple[int, ...], repeated: bool) -> int:
    """The batch past which no bend can be seen: the 2nd largest size; the smallest one when none can be
    seen at all (fewer than MIN_SIZES_FOR_KNEE sizes, or some size measured once: without repeats at every
    size the BIC calls a straight line at 10% noise a hinge in 9-27% of datasets, measured at 5-8 sizes)."""
    return int(sizes[-2]) if len(sizes) >= MIN_SIZES_FOR_KNEE and repeated else int(sizes[0])


@lru_cache(maxsize=64)
def _t_cdf_table(df: int) -> tuple[np.ndarray, np.ndarray]:
    """Student's t distribution function with `df` degrees of freedom on x >= 0, integrated numerically."""
    x = np.concatenate([np.linspace(0, 20, 40001), np.geomspace(20, 1e5, 20001)[1:]])
    log_c = math.lgamma((df + 1) / 2) - math.lgamma(df / 2) - 0.5 * math.log(df * math.pi)
    pdf = np.exp(log_c - (df + 1) / 2 * np.log1p(x * x / df))
    cdf = 0.5 + np.concatenate([[0.0], np.cumsum((pdf[1:] + pdf[:-1]) / 2 * np.diff(x))])
    return x, cdf


@lru_cache(maxsize=256)
def t_quantile(p: float, df: int) -> float:
    """Student's t quantile (p >= 0.5): exact for 1 and 2 degrees of freedom, else by numerical inversion."""
    if df == 1:
        return math.tan(math.pi * (p - 0.5))
    if df == 2:
        return (2 * p - 1) * math.sqrt(2 / (4 * p * (1 - p)))
    x, cdf = _t_cdf_table(df)
    return float(np.interp(p, cdf, x))


def _medians(at: np.ndarray, counts: np.ndarray, t: np.ndarray) -> np.ndarray:
    """The median of `t` in each group (`at`: each point's group, 0..k-1; `counts`: the groups' sizes)."""
    ts = t[np.lexsort((t, at))]
    start = np.concatenate([[0], np.cumsum(counts)[:-1]])
    return (ts[start + (counts - 1) // 2] + ts[start + counts // 2]) / 2


def _weights(b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """1 / the median time of each point's batch size: timing noise grows with the time measured, so the
    fit weighs relative residuals and a long batch's scatter does not drown the short ones."""
    _, at, counts = np.unique(b, return_inverse=True, return_counts=True)
    return 1.0 / np.maximum(_medians(at, counts, np.abs(t)), 1e-12)[at]


def _bic(rss: np.ndarray, n: int, params: int, floor: float) -> np.ndarray:
    return n * np.log(np.maximum(rss, floor) / n) + params * np.log(n)


# -- every draw at once --------------------------------------------------------------------------------

@dataclass(frozen=True)
class _Fits:
    """Both models fitted to R series of times at once (arrays of R rows)."""
    line: np.ndarray        # (R, 2): fixed, slope
    rss_line: np.ndarray    # (R,)
    hinge: np.ndarray       # (R, 3): fixed, m1, m2 at the best knee (NaN without a grid)
    knee: np.ndarray        # (R,)
    rss_hinge: np.ndarray   # (R,) (inf without a grid)
    profile: np.ndarray     # (R, G): the hinge's residual sum of squares at every knee of the grid


class _Fitter:
    """Weighted least squares of many series on the same batch sizes and weights: the designs' QR
    factors are computed once, so a fit is a few matrix products (every knee of the grid at once). The
    jobs of one size share a design row and a weight, so a series enters the projections through its
    weighted sum at each size (k sizes, not n jobs)."""

    def __init__(self, b: np.ndarray, w: np.ndarray, grid: np.ndarray):
        self.w, self.grid = w, grid
        sizes, first, at = np.unique(b, return_index=True, return_inverse=True)
        self.member = (at[:, None] == np.arange(len(sizes))[None, :]).astype(float)   # (n, k)
        q_line, self.r_line = np.linalg.qr(_line_design(b) * w[:, None])
        self.q_line = q_line[first]                                                    # (k, 2)
        if len(grid):
            designs = np.stack([np.ones((len(grid), len(b))), np.minimum(b[None, :], grid[:, None]),
                                np.maximum(b[None, :] - grid[:, None], 0.0)], axis=2) * w[None, :, None]
            q_hinge, self.r_hinge = np.linalg.qr(designs)                              # (G, n, 3)
            self.q_hinge = q_hinge[:, first].transpose(1, 0, 2).reshape(len(sizes), -1)   # (k, G * 3)

    def fit(self, times: np.ndarray) -> _Fits:
        """Both models fitted to one series of times, or to each row of several."""
        tw = np.atleast_2d(times) * self.w                        # (R, n)
        return self._fits(tw @ self.member, np.sum(tw * tw, axis=1))

    def fit_redrawn(self, centre: np.ndarray, dev: np.ndarray, idx: np.ndarray) -> _Fits:
        """Both models fitted to every redraw at once: in redraw r, job j's weighted time is centre[j] +
        dev[idx[r, j]] (_redraws). The projections need only each size's sum and the sum of squares, so the
        redrawn times are never formed: the sums are the centre's plus the drawn deviations', and the sum of
        squares expands as centre^2 + 2 centre.D + D^2 (one gather, three passes over it)."""
        drawn = dev[idx]                                          # (R, n)
        sums = (centre @ self.member)[None, :] + drawn @ self.member
        total = float(centre @ centre) + 2.0 * (drawn @ centre) + np.einsum("ij,ij->i", drawn, drawn)
        return self._fits(sums, total)

    def _fits(self, sums: np.ndarray, total: np.ndarray) -> _Fits:
        """The fits from each series' weighted sum at each size (R, k) and weighted sum of squares (R,)."""
        p_line = sums @ self.q_line                               # (R, 2)
        line = np.linalg.solve(self.r_line, p_line.T).T
        rss_line = np.maximum(total - np.sum(p_line * p_line, axis=1), 0.0)
        rows = len(sums)
        if not len(self.grid):
            nan = np.full(rows, np.nan)
            return _Fits(line, rss_line, np.full((rows, 3), np.nan), nan, np.full(rows, np.inf), np.empty((rows, 0)))
        p_hinge = sums @ self.q_hinge                                          # (R, G * 3)
        sq = p_hinge * p_hinge
        rss = np.maximum(total[:, None] - (sq[:, 0::3] + sq[:, 1::3] + sq[:, 2::3]), 0.0)   # (R, G)
        best = np.argmin(rss, axis=1)
        at = np.arange(rows)
        p_best = p_hinge.reshape(rows, len(self.grid), 3)[at, best]
        hinge = np.linalg.solve(self.r_hinge[best], p_best[:, :, None])[:, :, 0]
        return _Fits(line, rss_line, hinge, self.grid[best], rss[at, best], rss)


def _choose_hinge(fits: _Fits, n: int, floor: float) -> np.ndarray:
    """Per series: the hinge's BIC is below the line's by BIC_MARGIN or more."""
    return _bic(fits.rss_line, n, 2, floor) - _bic(fits.rss_hinge, n, 4, floor) >= BIC_MARGIN


# -- bumps ---------------------------------------------------------------------------------------------

def find_bump(b: np.ndarray, t: np.ndarray) -> Bump | None:
    """The batch size slower than a larger one beyond noise (the pair with the strongest evidence), or None.

    For each pair of sizes (smaller i, larger j): the median at i must exceed the median at j, and the
    difference of their mean times must pass a one-sided t-test at BUMP_ALPHA / (number of pairs), on the
    relative noise pooled over every size's repeats (or, with no repeats, the line's relative residuals)."""
    sizes, at, counts = np.unique(b, return_inverse=True, return_counts=True)
    k = len(sizes)
    if k < 2:
        return None
    mean = np.bincount(at, weights=t) / counts
    med = _medians(at, counts, t)
    df = len(t) - k
    if df >= 1:
        rel = (t - mean[at]) / mean[at]
    else:
        df = len(t) - 2
        if df < 1:
            return None
        w = 1 / np.abs(t)
        coef = np.linalg.lstsq(_line_design(b) * w[:, None], t * w, rcond=None)[0]
        rel = (t - _line_design(b) @ coef) * w
    noise = math.sqrt(float(np.sum(rel ** 2)) / df)
    i, j = np.triu_indices(k, 1)
    spread = noise * np.sqrt(mean[i] ** 2 / counts[i] + mean[j] ** 2 / counts[j])
    excess = mean[i] - mean[j]
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = np.where(spread > 0, excess / spread, np.where(excess > ZERO_RMS * mean[j], np.inf, 0.0))
    stat = np.where(med[i] > med[j] * (1 + ZERO_RMS), stat, -np.inf)
    best = int(np.argmax(stat))
    if not stat[best] > t_quantile(1 - BUMP_ALPHA / len(stat), df):
        return None
    return Bump(batch=int(sizes[i[best]]), slower_than=int(sizes[j[best]]),
                ratio=float(med[i[best]] / med[j[best]]))


def largest_excess(b: np.ndarray, t: np.ndarray) -> Bump:
    """The batch size whose median time most exceeds a larger size's (for a hinge whose fit falls)."""
    sizes, at, counts = np.unique(b, return_inverse=True, return_counts=True)
    med = _medians(at, counts, t)
    i, j = np.triu_indices(len(sizes), 1)
    best = int(np.argmax(med[i] / med[j]))
    return Bump(batch=int(sizes[i[best]]), slower_than=int(sizes[j[best]]), ratio=float(med[i[best]] / med[j[best]]))


# -- intervals -----------------------------------------------------------------------------------------

def _estimate(value: float, draws: np.ndarray, widen: float) -> Estimate:
    """The figure with the percentile interval of its draws, each side widened by `widen` about the value
    (NaN without finite draws or with `widen` NaN: no degrees of freedom)."""
    draws = draws[np.isfinite(draws)]
    if not len(draws) or not np.isfinite(widen) or not np.isfinite(value):
        return Estimate(float(value), np.nan, np.nan)
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return Estimate(float(value), float(value - widen * max(value - low, 0.0)),
                    float(value + widen * max(high - value, 0.0)))


def _knee_estimate(value: float, profile: np.ndarray, grid: np.ndarray, n: int, floor: float) -> Estimate:
    """The knee with its profile interval: every knee of the grid whose hinge fits no worse than the best
    one by more than an F test at LEVEL allows ((RSS(k) - RSS_min) / (RSS_min / (n - 4)) <= t(n - 4)^2),
    widened by one grid step each side (the boundary lies between grid points; not for an exact fit, whose
    knee lies on the grid) and kept within the grid.
    A profile interval, not the bootstrap's: redraws centred on the fitted knee gave a percentile interval
    of [4.25-4.5] for a true knee at 4 (1% noise), hugging the fitted knee; the profile interval held the
    true knee in 97-100% of simulated hinges (tests/test_knee_sim.py checks at least 85%)."""
    df = n - 4
    if df < 1:
        return Estimate(float(value), np.nan, np.nan)
    best = float(profile.min())
    limit = t_quantile(1 - (1 - LEVEL) / 2, df) ** 2 * best / df
    inside = np.flatnonzero(profile - best <= limit)
    step = int(best > floor)
    lo, hi = max(inside[0] - step, 0), min(inside[-1] + step, len(grid) - 1)
    return Estimate(float(value), float(grid[lo]), float(grid[hi]))


def _widening(df: int) -> float:
    """t(df) / z at LEVEL: the noise is estimated, not known (NaN with no degrees of freedom)."""
    if df < 1:
        return np.nan
    p = 1 - (1 - LEVEL) / 2
    return t_quantile(p, df) / NormalDist().inv_cdf(p)


@lru_cache(maxsize=8)
def _resample_indices(n: int, resamples: int) -> np.ndarray:
    """The bootstrap's (resamples, n) indices from the seeded generator: the same for every fit of n jobs (each
    fit drew exactly these before), so the phases of a run and its whole jobs share one draw. Read-only."""
    idx = np.random.default_rng(SEED).integers(0, n, size=(resamples, n))
    idx.setflags(write=False)
    return idx


def _redraws(b, t, w, fitted, params) -> tuple[np.ndarray, np.ndarray, str, int]:
    """What the bootstrap redraws, in weighted units (time x w): each job's centre and the deviations drawn
    from (redraw r gives job j centre[j] + dev[idx[r, j]], idx from _resample_indices), what was redrawn, and
    the noise's degrees of freedom.

    With repeats at every size, each size's mean plus noise drawn from every job's relative deviation
    from its size's mean (scaled by sqrt(r / (r - 1)), r the size's repeats: a deviation from a mean of r
    is that much smaller than the noise); otherwise (no bend can be claimed then) the line's fitted values
    plus its relative residuals (scaled by sqrt(n / (n - parameters)))."""
    sizes, at, counts = np.unique(b, return_inverse=True, return_counts=True)
    if np.all(counts >= 2):
        centre = (np.bincount(at, weights=t) / counts)[at]
        dev = (t - centre) * w * np.sqrt(counts / (counts - 1))[at]
        method, df = "repeats", len(t) - len(sizes)
    else:
        centre, df = fitted, len(t) - params
        dev = (t - fitted) * w * math.sqrt(len(t) / max(df, 1))
        method = "residuals"
    return centre * w, dev, method, df


def fit_cost(batch_sizes, seconds, resamples: int = RESAMPLES) -> CostModel | NoModel:
    """The model of `seconds` (one per job) against `batch_sizes`, chosen by BIC, with bootstrap intervals."""
    b, t = np.asarray(batch_sizes, dtype=float), np.asarray(seconds, dtype=float)
    keep = np.isfinite(b) & np.isfinite(t)
    order = np.lexsort((t[keep], b[keep]))          # the same jobs in any order give the same intervals
    b, t = b[keep][order], t[keep][order]
    sizes = tuple(int(s) for s in np.unique(b))
    # 1. Enough data for a slope.
    if not len(t):
        return NoModel("no_data")
    if len(sizes) < 2:
        return NoModel("one_size", sizes)
    # 2. Both models (the hinge at every knee of the grid), the information criterion, and bumps.
    n, base, grid = len(t), sizes[0], knee_grid(sizes)
    w = _weights(b, t)
    fitter, floor = _Fitter(b, w, grid), n * ZERO_RMS ** 2
    point = fitter.fit(t)
    bump = find_bump(b, t)
    repeated = bool(np.all(np.unique(b, return_counts=True)[1] >= 2))
    can_bend = len(grid) > 0 and repeated and bump is None
    kind = "hinge" if can_bend and bool(_choose_hinge(point, n, floor)[0]) else "line"
    # 3. Bootstrap: redraw (around each size's mean; around the line where a bend cannot be claimed and some
    #    size has a single job), refit both models.
    centre, dev, method, df = _redraws(b, t, w, _line_design(b) @ point.line[0], 2)
    refit, widen = fitter.fit_redrawn(centre, dev, _resample_indices(n, resamples)), _widening(df)
    tol = ZERO_RMS * float(np.mean(np.abs(t))) / max(sizes)
    # 4. A hinge with a slope below zero beyond its interval is time that falls to or from the knee: a bump
    #    the pairwise test missed, not a bend.
    if kind == "hinge" and any(_estimate(point.hinge[0, j], refit.hinge[:, j], widen).high < -tol for j in (1, 2)):
        kind, can_bend, bump = "line", False, largest_excess(b, t)
    coef = point.hinge[0] if kind == "hinge" else point.line[0]
    # 5. The line-or-hinge choice redone in every draw: the intervals count that it was made on the data.
    hinge = _choose_hinge(refit, n, floor) & can_bend
    fixed = np.where(hinge, refit.hinge[:, 0], refit.line[:, 0])
    m1 = np.where(hinge, refit.hinge[:, 1], refit.line[:, 1])
    m1_est = _estimate(coef[1], m1, widen)
    m2_est = _estimate(coef[2], refit.hinge[:, 2], widen) if kind == "hinge" else None
    # 6. A slope below zero beyond its interval (time that falls as images are added) is noise, not a model;
    #    one whose interval holds zero is an extra image that costs nothing measurable.
    for slope in (m1_est, m2_est):
        if slope is not None and slope.high < -tol:
            return NoModel("too_noisy", sizes, marginal_s=slope.value)
    at_base, draws_at_base = coef[0] + coef[1] * base, fixed + m1 * base
    with np.errstate(divide="ignore", invalid="ignore"):
        share = coef[0] / at_base if at_base > 0 else np.nan
        shares = np.where(draws_at_base > 0, fixed / draws_at_base, np.nan)
    bic_hinge = float(_bic(point.rss_hinge, n, 4, floor)[0]) if len(grid) else None
    return CostModel(
        kind=kind, fixed_s=_estimate(coef[0], fixed, widen), marginal_s=m1_est, marginal_after_s=m2_est,
        knee=_knee_estimate(point.knee[0], point.profile[0], grid, n, floor) if kind == "hinge" else None,
        base_batch=base, fixed_share=_estimate(share, shares, widen), batch_sizes=sizes, jobs=n, method=method,
        bic_line=float(_bic(point.rss_line, n, 2, floor)[0]), bic_hinge=bic_hinge,
        undetectable_past=undetectable_past(sizes, repeated), bump=bump, hinge_draws=float(np.mean(hinge)), df=int(df))


def fitted_curve(model: CostModel, label: str) -> pd.DataFrame:
    """The model's line over its measured range (every batch size and the knee), for a chart."""
    xs = sorted(set(model.batch_sizes) | ({model.knee.value} if model.knee else set()))
    return pd.DataFrame({"label": label, "batch_size": xs, "fitted_s": model.predict(xs)})

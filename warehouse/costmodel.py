"""The model of batch cost: how a call's time grows with its batch, and how sure we are of it.

Two models are fitted by least squares to every measured job (one point per repeat):

- a straight line, t(B) = fixed + marginal x B: every image costs `marginal`, and `fixed`
  is paid once per call whatever its size (launches, Python, weight reads, idle device);
- a continuous hinge, slope m1 up to a knee B* and m2 after it, B* one of the measured
  batch sizes with at least one below it and two above it (a slope after the knee rests on
  three sizes at least): "extra images ride along" up to B*, then "the device is full".

Timing noise grows with the time measured, so both are weighted least squares on relative
residuals (each point weighted by 1 / its batch size's median time).

The Bayesian information criterion picks between them (the hinge pays for its two extra
parameters, the slope after the knee and the knee itself), so a straight line stays a
straight line and a knee is claimed only where the data bend. Every figure gets a 95%
interval by bootstrap: the jobs of each batch size are redrawn with replacement (over
repeats), or, where some batch size has a single job, the fit's residuals are; a slope whose
interval lies below zero is "too noisy to fit", not a model. Saturation
is claimed only when the slope after the knee exceeds the slope before it beyond both
intervals. Pure functions of arrays and frames: no I/O, no words (warehouse/explain/ words them).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

RESAMPLES = 1000      # bootstrap draws per fit
LEVEL = 0.95          # interval coverage
SEED = 0              # the bootstrap's generator: the same data give the same intervals
ZERO_RMS = 1e-6       # relative residuals below this count as an exact fit


@dataclass(frozen=True)
class Estimate:
    """A figure and its bootstrap interval."""
    value: float
    low: float
    high: float

    def excludes(self, x: float) -> bool:
        return not (self.low <= x <= self.high)


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
    knee: Estimate | None              # the batch size where the slope changes (hinge)
    base_batch: int                    # the smallest measured batch
    fixed_share: Estimate              # fixed / fitted time at base_batch
    batch_sizes: tuple[int, ...]
    jobs: int
    method: str                        # repeats | residuals: what the bootstrap redrew
    bic_line: float
    bic_hinge: float | None            # None when the hinge could not be fitted (fewer than 3 sizes)

    @property
    def saturates(self) -> bool:
        """The slope after the knee is above the slope before it beyond both intervals."""
        return (self.kind == "hinge" and self.marginal_after_s is not None
                and self.marginal_after_s.low > self.marginal_s.high)

    def predict(self, batch) -> np.ndarray:
        b = np.asarray(batch, dtype=float)
        if self.kind == "line":
            return self.fixed_s.value + self.marginal_s.value * b
        return _hinge_design(b, self.knee.value) @ np.array(
            [self.fixed_s.value, self.marginal_s.value, self.marginal_after_s.value])


def _line_design(b: np.ndarray) -> np.ndarray:
    return np.column_stack([np.ones_like(b), b])


def _hinge_design(b: np.ndarray, knee: float) -> np.ndarray:
    return np.column_stack([np.ones_like(b), np.minimum(b, knee), np.maximum(b - knee, 0.0)])


def _weights(b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """1 / the median time of each point's batch size: timing noise grows with the time measured, so the
    fit weighs relative residuals and a long batch's scatter does not drown the short ones."""
    w = np.empty_like(t)
    for s in np.unique(b):
        at = b == s
        w[at] = 1.0 / max(float(np.median(np.abs(t[at]))), 1e-12)
    return w


def _lstsq(design: np.ndarray, t: np.ndarray, w: np.ndarray) -> tuple[np.ndarray, float]:
    """Weighted least squares: (coefficients, weighted residual sum of squares)."""
    coef = np.linalg.lstsq(design * w[:, None], t * w, rcond=None)[0]
    return coef, float(np.sum(((t - design @ coef) * w) ** 2))


def _best_hinge(b: np.ndarray, t: np.ndarray, w: np.ndarray, knees) -> tuple[np.ndarray, float, float]:
    """(coefficients, residual sum of squares, knee) of the hinge with the smallest residuals."""
    fits = [(*_lstsq(_hinge_design(b, k), t, w), float(k)) for k in knees]
    return min(fits, key=lambda f: f[1])


def _bic(rss: float, n: int, params: int, floor: float) -> float:
    return n * np.log(max(rss, floor) / n) + params * np.log(n)


@dataclass(frozen=True)
class _Point:
    """One fit's figures, as the bootstrap collects them."""
    fixed: float
    m1: float
    m2: float
    knee: float
    share: float


def _figures(kind: str, b: np.ndarray, t: np.ndarray, knees, base: int) -> tuple[_Point, np.ndarray]:
    """The chosen kind fitted to (b, t): its figures and its fitted values."""
    w = _weights(b, t)
    if kind == "line":
        (fixed, m1), _ = _lstsq(_line_design(b), t, w)
        m2, knee, fitted = np.nan, np.nan, fixed + m1 * b
    else:
        (fixed, m1, m2), _, knee = _best_hinge(b, t, w, knees)
        fitted = _hinge_design(b, knee) @ np.array([fixed, m1, m2])
    at_base = fixed + m1 * base
    share = fixed / at_base if at_base > 0 else np.nan
    return _Point(float(fixed), float(m1), float(m2), float(knee), float(share)), fitted


def _estimate(value: float, draws: np.ndarray, nearest: bool = False) -> Estimate:
    """The figure with the percentile interval of its bootstrap draws (`nearest`: a draw's own value, for
    the knee, which is one of the measured batch sizes)."""
    draws = draws[np.isfinite(draws)]
    if not len(draws):
        return Estimate(value, np.nan, np.nan)
    tail = (1 - LEVEL) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail], method="nearest" if nearest else "linear")
    return Estimate(float(value), float(min(low, value)), float(max(high, value)))


def fit_cost(batch_sizes, seconds, resamples: int = RESAMPLES) -> CostModel | NoModel:
    """The model of `seconds` (one per job) against `batch_sizes`, chosen by BIC, with bootstrap intervals."""
    b, t = np.asarray(batch_sizes, dtype=float), np.asarray(seconds, dtype=float)
    keep = np.isfinite(b) & np.isfinite(t)
    b, t = b[keep], t[keep]
    sizes = tuple(int(s) for s in np.unique(b))
    # 1. Enough data for a slope.
    if not len(t):
        return NoModel("no_data")
    if len(sizes) < 2:
        return NoModel("one_size", sizes)
    # 2. Both models, and the information criterion between them.
    n, base, knees = len(t), sizes[0], sizes[1:-2]
    w = _weights(b, t)
    floor = n * ZERO_RMS ** 2
    _, rss_line = _lstsq(_line_design(b), t, w)
    bic_line = _bic(rss_line, n, 2, floor)
    bic_hinge = None
    if knees and n > 4:
        _, rss_hinge, _ = _best_hinge(b, t, w, knees)
        bic_hinge = _bic(rss_hinge, n, 4, floor)
    kind = "hinge" if bic_hinge is not None and bic_hinge < bic_line else "line"
    point, fitted = _figures(kind, b, t, knees, base)
    # 3. Bootstrap: redraw each batch size's jobs (or the residuals, with a single job somewhere), refit.
    draws = _bootstrap(kind, b, t, fitted, knees, base, resamples)
    method = "repeats" if _each_size_repeated(b) else "residuals"
    col = {name: np.array([getattr(p, name) for p in draws]) for name in ("fixed", "m1", "m2", "knee", "share")}
    m1, m2 = _estimate(point.m1, col["m1"]), _estimate(point.m2, col["m2"]) if kind == "hinge" else None
    # 4. A slope below zero beyond its interval (time that falls as images are added) is noise, not a model;
    #    one whose interval holds zero is an extra image that costs nothing measurable.
    tol = ZERO_RMS * float(np.mean(np.abs(t))) / max(sizes)
    for slope in (m1, m2):
        if slope is not None and slope.high < -tol:
            return NoModel("too_noisy", sizes, marginal_s=slope.value)
    return CostModel(
        kind=kind, fixed_s=_estimate(point.fixed, col["fixed"]), marginal_s=m1, marginal_after_s=m2,
        knee=_estimate(point.knee, col["knee"], nearest=True) if kind == "hinge" else None, base_batch=base,
        fixed_share=_estimate(point.share, col["share"]), batch_sizes=sizes, jobs=n, method=method,
        bic_line=float(bic_line), bic_hinge=None if bic_hinge is None else float(bic_hinge))


def _each_size_repeated(b: np.ndarray) -> bool:
    _, counts = np.unique(b, return_counts=True)
    return bool(np.all(counts >= 2))


def _bootstrap(kind, b, t, fitted, knees, base, resamples) -> list[_Point]:
    """Refits on redrawn data. With repeats at every size, each size's deviations from its own mean are
    redrawn; otherwise the fit's residuals are. Either is scaled up by sqrt(n / (n - fitted parameters)):
    drawing r values from r with replacement shrinks their spread by sqrt((r - 1) / r), which with three
    repeats would leave a "95%" interval holding the truth about four times in five."""
    rng = np.random.default_rng(SEED)
    if _each_size_repeated(b):
        centre = np.empty_like(t)
        groups = [np.flatnonzero(b == s) for s in np.unique(b)]
        for g in groups:
            centre[g] = t[g].mean()
        dev = [(t[g] - centre[g]) * np.sqrt(len(g) / (len(g) - 1)) for g in groups]
    else:
        centre, groups = fitted, [np.arange(len(t))]
        params = 2 if kind == "line" else 3
        dev = [(t - fitted) * np.sqrt(len(t) / max(len(t) - params, 1))]
    out = []
    for _ in range(resamples):
        tt = centre.copy()
        for g, d in zip(groups, dev):
            tt[g] += rng.choice(d, size=len(g))
        out.append(_figures(kind, b, tt, knees, base)[0])
    return out


def fit_runs(jobs: pd.DataFrame, value: str = "wall_s", by: str = "run_id",
             resamples: int = RESAMPLES) -> dict[str, CostModel | NoModel]:
    """One model per `by` group of job rows (batch_size and `value` columns)."""
    return {key: fit_cost(g.batch_size, g[value], resamples) for key, g in jobs.groupby(by, sort=False)}


def fitted_curve(model: CostModel, label: str) -> pd.DataFrame:
    """The model's line over its measured range (every batch size and the knee), for a chart."""
    xs = sorted(set(model.batch_sizes) | ({model.knee.value} if model.knee else set()))
    return pd.DataFrame({"label": label, "batch_size": xs, "fitted_s": model.predict(xs)})

"""How sure a median is: a bootstrap interval, shared by the generator (when to stop repeating) and
the warehouse (what the pages grey out). numpy only; no I/O."""

from __future__ import annotations

import numpy as np

LEVEL = 0.95        # interval coverage
RESAMPLES = 2000    # bootstrap draws
SEED = 0            # the same times give the same interval


def median_interval(times, level: float = LEVEL, resamples: int = RESAMPLES) -> tuple[float, float, float]:
    """(median, low, high): the median of `times` and the percentile bootstrap interval of the median.
    NaNs are dropped; no times give NaNs, one time an interval of zero width."""
    t = np.asarray(times, dtype=float)
    t = t[np.isfinite(t)]
    if not len(t):
        return np.nan, np.nan, np.nan
    median = float(np.median(t))
    if len(t) == 1:
        return median, median, median
    draws = np.median(np.random.default_rng(SEED).choice(t, size=(resamples, len(t))), axis=1)
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws, [tail, 100 - tail])
    return median, float(min(low, median)), float(max(high, median))


def half_width(times, level: float = LEVEL) -> float:
    """Half the interval's width as a fraction of the median (0.03: ±3%); NaN without times or with a
    median of 0."""
    median, low, high = median_interval(times, level)
    if not np.isfinite(median) or median == 0:
        return np.nan
    return (high - low) / 2 / abs(median)


def ratio_interval(numerator, denominator, level: float = LEVEL,
                   resamples: int = RESAMPLES) -> tuple[float, float, float]:
    """(ratio, low, high): median(numerator) / median(denominator) and its bootstrap interval, each
    side redrawn on its own. NaNs without times on either side."""
    a, b = (np.asarray(x, dtype=float) for x in (numerator, denominator))
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if not len(a) or not len(b) or np.median(b) == 0:
        return np.nan, np.nan, np.nan
    ratio = float(np.median(a) / np.median(b))
    rng = np.random.default_rng(SEED)
    draws = (np.median(rng.choice(a, size=(resamples, len(a))), axis=1)
             / np.median(rng.choice(b, size=(resamples, len(b))), axis=1))
    tail = (1 - level) / 2 * 100
    low, high = np.percentile(draws[np.isfinite(draws)], [tail, 100 - tail])
    return ratio, float(min(low, ratio)), float(max(high, ratio))

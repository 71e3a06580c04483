"""How sure a median is: distribution-free intervals of a median and of a ratio of two medians, shared by the
generator (when to stop repeating) and the warehouse (what the pages show, and grey out). numpy only; no I/O.

1. `median_interval`: the order-statistic (binomial) interval of a median. Between the k-th smallest and the
   k-th largest of n values lies the true median with probability P(k <= B <= n-k), B ~ Binomial(n, 1/2), for
   any continuous noise (normal, skewed, with outliers); k is the largest for which that is at least the level.
   Below `needed(level)` values (6 at 95%) even [min, max] holds the median less often than the level: then
   there is no interval, and the result says so (`too_few`) instead of labelling [min, max] as 95%.
2. `ratio_interval`: median(a) / median(b) between a's k-th smallest over b's k-th largest and a's k-th largest
   over b's k-th smallest. When the two samples have one noise shape up to scale (a job's noise proportional to
   its time) the chance that it holds the true ratio depends only on ranks, and is computed exactly
   (`_ratio_coverage`); k is the largest for which it is at least the level. Simulated (tests/test_coverage.py,
   20,000 datasets per case, 6-20 values a side): 97.3-99.8% with normal or lognormal noise on both sides,
   97.5-99.7% with one 60%-slower job on one side, 96.5-99.6% with one side twice as noisy as the other; with
   one side ten times as noisy, 91-98% (below the level at 10-20 values: the shape assumption matters there).

3. `quantile_interval`: the same for any quantile q (a latency's p90, p99): the true q-quantile lies between
   the l-th and the u-th smallest of n values with probability P(l <= B <= u-1), B ~ Binomial(n, q), for any
   continuous distribution; l and u cut at most (1 - level)/2 from each tail. A tail quantile needs many values
   for an upper bound (at 95%: 36 for p90, 368 for p99; `quantile_needed`): with fewer, no interval.

4. `proportion_interval`: a share of k successes in n trials (the pictures that show what was asked), with the
   Clopper-Pearson interval: the p whose binomial tails put k at exactly (1 - level)/2 each. It holds the true
   share at least `level` of the time for every true share and every n >= 1 (it inverts two exact one-sided
   tests); tests/test_coverage.py shows it by simulation.

The first three are discrete, so they hold the truth at least as often as the level, more at some counts: the exact
figure is each result's `coverage` (a median: 96.9% of 6 values, 99.2% of 8, 97.9% of 10, 95.9% of 20; a ratio
at 6 values a side, where [min/max, max/min] is the only choice, 99.8%; with unequal counts one k serves both
sides, bounded by the fewer, and the interval is more conservative: 99.7% for 12 and 7 values).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np

LEVEL = 0.95        # interval coverage asked for


@dataclass(frozen=True)
class Interval:
    """A median (or a ratio of medians) and its interval at `level`; low and high are NaN when the values are
    too few for an interval at that level (`too_few`), and everything is NaN without values."""
    value: float        # the median (or the ratio of the two medians)
    low: float
    high: float
    n: int              # the values it rests on (the fewer side's, for a ratio)
    level: float        # the coverage asked for
    coverage: float     # how often an interval so made holds the truth (>= level); NaN without an interval
    needed: int         # the values needed for an interval at this level (each side's, for a ratio)

    @property
    def too_few(self) -> bool:
        """No interval: fewer values than `needed` (or none at all)."""
        return not (np.isfinite(self.low) and np.isfinite(self.high))

    @property
    def half_width(self) -> float:
        """Half the interval's width as a fraction of the value (0.03: ±3%); NaN without an interval or with a
        value of 0."""
        if self.too_few or not np.isfinite(self.value) or self.value == 0:
            return np.nan
        return (self.high - self.low) / 2 / abs(self.value)


def _check_level(level: float) -> None:
    if not 0 < level < 1:
        raise ValueError(f"level {level!r} is not a coverage: it must lie strictly between 0 and 1 (0.95: 95%)")


def needed(level: float = LEVEL) -> int:
    """The fewest values with an order-statistic interval of their median at `level`: the smallest n with
    1 - 2 / 2**n >= level, the coverage of [min, max] (6 at 95%, 8 at 99%)."""
    _check_level(level)
    return max(2, math.ceil(math.log2(2 / (1 - level)) - 1e-12))


@lru_cache(maxsize=4096)
def _median_rank(n: int, level: float) -> tuple[int, float]:
    """(k, coverage): the largest k with P(k <= B <= n-k) = 1 - 2 P(B <= k-1) >= level for B ~ Binomial(n, 1/2)
    (how often [x_(k), x_(n+1-k)] holds the median), and that probability; (0, NaN) when even k = 1 falls short."""
    best, below = (0, math.nan), 0  # below: outcomes with B <= k-1, of 2**n (exact integers)
    for k in range(1, (n + 1) // 2 + 1):
        below += math.comb(n, k - 1)
        coverage = 1 - 2 * below / 2 ** n
        if coverage < level:
            break
        best = (k, coverage)
    return best


def _finite(values) -> np.ndarray:
    t = np.asarray(values, dtype=float).ravel()
    return t[np.isfinite(t)]


def median_intervals(samples, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(medians, lows, highs) of each row of `samples` (2-D: datasets x n values, no NaNs), the rows'
    order-statistic intervals at `level`; lows and highs NaN when n < needed(level). The vectorised form of
    `median_interval` (which calls it), for simulations."""
    _check_level(level)
    t = np.sort(np.asarray(samples, dtype=float), axis=-1)
    n = t.shape[-1]
    medians = np.median(t, axis=-1) if n else np.full(t.shape[:-1], np.nan)
    k, _ = _median_rank(n, level) if n >= needed(level) else (0, np.nan)
    if k == 0:
        return medians, np.full_like(medians, np.nan), np.full_like(medians, np.nan)
    return medians, t[..., k - 1], t[..., n - k]


def median_interval(values, level: float = LEVEL) -> Interval:
    """The median of `values` (NaNs dropped) and its order-statistic interval at `level`: [x_(k), x_(n+1-k)]
    of the sorted values, k as large as keeps the binomial coverage at least `level` (module docstring).
    Fewer than needed(level) values: the median without an interval (too_few); none: all NaN."""
    t = _finite(values)
    n = len(t)
    median, low, high = (float(x[0]) for x in median_intervals(t[None, :], level))
    coverage = _median_rank(n, level)[1] if n >= needed(level) else np.nan
    return Interval(median, low, high, n, level, coverage, needed(level))


def half_width(values, level: float = LEVEL) -> float:
    """Half the width of the median's interval as a fraction of the median (0.03: ±3%); NaN without an
    interval (too few values, or none) or with a median of 0."""
    return median_interval(values, level).half_width


@lru_cache(maxsize=4096)
def _ratio_coverage(m: int, n: int, k: int) -> float:
    """How often [a_(k) / b_(n+1-k), a_(m+1-k) / b_(k)] holds median(a) / median(b), for m values of a and n of
    b with one continuous noise shape up to scale: 1 - 2 P(a_(k) > b_(n+1-k)) for standardised samples (the
    upper miss mirrors the lower). All C(m+n, n) orderings of the pooled values are equally likely; s of b's
    values lie below a_(k) in C(k-1+s, s) C(m-k+n-s, n-s) of them."""
    j = n + 1 - k
    miss = sum(math.comb(k - 1 + s, s) * math.comb(m - k + n - s, n - s) for s in range(j, n + 1))
    return 1 - 2 * miss / math.comb(m + n, n)


@lru_cache(maxsize=4096)
def _ratio_rank(m: int, n: int, level: float) -> tuple[int, float]:
    """(k, coverage): the largest k with _ratio_coverage(m, n, k) >= level; (0, NaN) when none."""
    best = (0, math.nan)
    for k in range(1, (min(m, n) + 1) // 2 + 1):
        coverage = _ratio_coverage(m, n, k)
        if coverage < level:
            break
        best = (k, coverage)
    return best


def ratio_intervals(numerators, denominators, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(ratios, lows, highs) for each pair of rows (2-D: datasets x m and datasets x n positive values, no NaNs):
    median(a) / median(b) and the interval of `ratio_interval`; lows and highs NaN when either side has fewer
    than needed(level) values. The vectorised form of `ratio_interval` (which calls it), for simulations."""
    _check_level(level)
    a = np.sort(np.asarray(numerators, dtype=float), axis=-1)
    b = np.sort(np.asarray(denominators, dtype=float), axis=-1)
    m, n = a.shape[-1], b.shape[-1]
    if (a <= 0).any() or (b <= 0).any():
        raise ValueError(f"a ratio of medians needs positive values (times); got {min(a.min(), b.min())!r}")
    ratios = np.median(a, axis=-1) / np.median(b, axis=-1)
    k, _ = _ratio_rank(m, n, level) if min(m, n) >= needed(level) else (0, np.nan)
    if k == 0:
        return ratios, np.full_like(ratios, np.nan), np.full_like(ratios, np.nan)
    return ratios, a[..., k - 1] / b[..., n - k], a[..., m - k] / b[..., k - 1]


def ratio_interval(numerator, denominator, level: float = LEVEL) -> Interval:
    """median(numerator) / median(denominator) (NaNs dropped) and its interval at `level` from the order
    statistics of both sides (module docstring): [a_(k) / b_(n+1-k), a_(m+1-k) / b_(k)], k as large as keeps
    the coverage at least `level`. Each side needs needed(level) values, as a median's interval does; with
    fewer on either side, the ratio without an interval (too_few; n is the fewer side's count). All NaN
    without values on either side. Values must be positive (times): a ValueError names the first that is not."""
    a, b = _finite(numerator), _finite(denominator)
    m, n, need = len(a), len(b), needed(level)
    if not m or not n:
        _check_level(level)
        return Interval(np.nan, np.nan, np.nan, min(m, n), level, np.nan, need)
    ratio, low, high = (float(x[0]) for x in ratio_intervals(a[None, :], b[None, :], level))
    coverage = _ratio_rank(m, n, level)[1] if min(m, n) >= need else np.nan
    return Interval(ratio, low, high, min(m, n), level, coverage, need)


@lru_cache(maxsize=4096)
def _quantile_ranks(n: int, q: float, level: float) -> tuple[int, int, float]:
    """(l, u, coverage): 1-based ranks of the equal-tailed interval [x_(l), x_(u)] of the q-quantile of n
    values: l the largest with P(B <= l-1) <= (1-level)/2, u the smallest with P(B >= u) <= (1-level)/2, for
    B ~ Binomial(n, q) (the values below the true quantile), and P(l <= B <= u-1); (0, 0, NaN) when either
    bound does not exist among n values."""
    if n < 1:
        return 0, 0, math.nan
    k = np.arange(n + 1)
    logs = (math.lgamma(n + 1) - np.array([math.lgamma(i + 1) + math.lgamma(n - i + 1) for i in k])
            + k * math.log(q) + (n - k) * math.log1p(-q))
    cdf = np.cumsum(np.exp(logs))                      # cdf[j] = P(B <= j)
    tail = (1 - level) / 2
    lows = np.nonzero(cdf[:n] <= tail)[0]               # P(B <= l-1) <= tail: l - 1 in lows
    highs = np.nonzero(1 - np.concatenate(([0.0], cdf[:n])) <= tail)[0]  # P(B >= u) = 1 - P(B <= u-1)
    if not len(lows) or not len(highs):
        return 0, 0, math.nan
    low, high = int(lows[-1]) + 1, int(highs[0])
    if high < 1 or high > n:
        return 0, 0, math.nan
    return low, high, float(cdf[high - 1] - cdf[low - 1])


@lru_cache(maxsize=256)
def quantile_needed(q: float, level: float = LEVEL) -> int:
    """The fewest values with an interval of their q-quantile at `level` (the upper bound is the one that
    needs them: the largest value must lie above the quantile with probability 1 - (1-level)/2)."""
    _check_level(level)
    if not 0 < q < 1:
        raise ValueError(f"quantile must lie strictly between 0 and 1 (0.99: p99), got {q!r}")
    n = max(1, math.ceil(math.log((1 - level) / 2) / math.log(q) - 1e-9))
    while _quantile_ranks(n, q, level)[0] == 0:
        n += 1
    return n


def quantile_intervals(samples, q: float, level: float = LEVEL) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(quantiles, lows, highs) of each row of `samples` (2-D, no NaNs): the q-quantile (linear between order
    statistics, numpy's default and DuckDB's quantile_cont) and its order-statistic interval at `level`;
    lows and highs NaN with fewer than quantile_needed(q, level) values. The vectorised `quantile_interval`."""
    need = quantile_needed(q, level)
    t = np.sort(np.asarray(samples, dtype=float), axis=-1)
    n = t.shape[-1]
    values = np.quantile(t, q, axis=-1) if n else np.full(t.shape[:-1], np.nan)
    low, high, _ = _quantile_ranks(n, q, level) if n >= need else (0, 0, np.nan)
    if low == 0:
        return values, np.full_like(values, np.nan), np.full_like(values, np.nan)
    return values, t[..., low - 1], t[..., high - 1]


def quantile_interval(values, q: float, level: float = LEVEL) -> Interval:
    """The q-quantile of `values` (NaNs dropped) and its order-statistic interval at `level` (module
    docstring, 3.); fewer than quantile_needed(q, level) values: the quantile without an interval (too_few)."""
    t = _finite(values)
    value, low, high = (float(x[0]) for x in quantile_intervals(t[None, :], q, level))
    need = quantile_needed(q, level)
    coverage = _quantile_ranks(len(t), q, level)[2] if len(t) >= need else np.nan
    return Interval(value, low, high, len(t), level, coverage, need)


def _binomial_cdf(k: int, n: int, p: float) -> float:
    """P(B <= k), B ~ Binomial(n, p), summed exactly (n is small: pictures, not samples)."""
    if k < 0:
        return 0.0
    if k >= n:
        return 1.0
    return float(sum(math.comb(n, i) * p ** i * (1 - p) ** (n - i) for i in range(k + 1)))


def _solve(f, target: float) -> float:
    """The p in [0, 1] with f(p) = target, for f decreasing in p (bisection to 1e-10)."""
    lo, hi = 0.0, 1.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if f(mid) > target else (lo, mid)
    return (lo + hi) / 2


def proportion_interval(k: int, n: int, level: float = LEVEL) -> Interval:
    """The share k / n and its Clopper-Pearson interval at `level` (module docstring, 4.): low solves
    P(B >= k | low) = (1-level)/2 (0 when k = 0), high solves P(B <= k | high) = (1-level)/2 (1 when k = n).
    Without trials (n = 0) everything is NaN."""
    _check_level(level)
    if not 0 <= k <= n:
        raise ValueError(f"successes must lie between 0 and the trials ({n}), got {k!r}")
    if n == 0:
        return Interval(np.nan, np.nan, np.nan, 0, level, np.nan, 1)
    tail = (1 - level) / 2
    low = 0.0 if k == 0 else _solve(lambda p: -(1 - _binomial_cdf(k - 1, n, p)), -tail)
    high = 1.0 if k == n else _solve(lambda p: _binomial_cdf(k, n, p), tail)
    return Interval(k / n, low, high, n, level, level, 1)

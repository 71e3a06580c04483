"""How often the intervals the pages print hold the truth, by simulation: 20,000 datasets per case with a known
true median (1) or ratio of medians (3.7), several noise shapes and repeat counts, through the same vectorised
code the single intervals use (stats.median_intervals, stats.ratio_intervals). Seeded; about a second in all.

With 20,000 datasets a coverage's standard error is at most 0.0016 near 95%: the bands below are 6 or more
standard errors from every coverage found, so a pass is not luck."""

from __future__ import annotations

import math

import numpy as np
import pytest

import stats

DATASETS = 20_000
RATIO = 3.7
BAND = (0.93, 0.995)   # "within a few points of 95%"; order-statistic intervals lie at or above the level


def _normal(rng, shape, spread=0.05):
    return 1 + spread * rng.standard_normal(shape)


def _skewed(rng, shape, spread=0.3):
    """Lognormal: long right tail, median exactly 1."""
    return np.exp(spread * rng.standard_normal(shape))


def _outlier(rng, shape, spread=0.05):
    """Normal, with one job in each dataset 60% slower (another program woke up): the true median stays 1."""
    x = _normal(rng, shape, spread)
    x[..., 0] *= 1.6
    return x


SHAPES = {"normal": _normal, "skewed": _skewed, "outlier": _outlier}


def _held(low, high, truth) -> float:
    assert np.isfinite(low).all() and np.isfinite(high).all()
    return float(np.mean((low <= truth) & (truth <= high)))


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n", [6, 8, 10, 20])
def test_the_median_interval_holds_the_true_median_about_95_percent_of_the_time(shape, n):
    rng = np.random.default_rng(n)
    _, low, high = stats.median_intervals(SHAPES[shape](rng, (DATASETS, n)))
    held = _held(low, high, 1.0)
    assert BAND[0] <= held <= BAND[1], f"{shape} noise, {n} values: held {held:.3f}"
    if shape != "outlier":  # iid noise: the binomial coverage the interval states, within 4 standard errors
        stated = stats.median_interval(np.arange(n) + 1.0).coverage
        assert held == pytest.approx(stated, abs=4 * np.sqrt(stated * (1 - stated) / DATASETS) + 1e-4)


def test_wherever_an_interval_is_given_it_holds_the_median_at_its_level():
    """The test the percentile bootstrap failed: with 3 jobs it gave [min, max] (held 75%) and called it 95%."""
    rng = np.random.default_rng(3)
    for n in range(1, 16):
        _, low, high = stats.median_intervals(_normal(rng, (DATASETS, n)))
        if n < stats.needed():
            assert np.isnan(low).all() and np.isnan(high).all(), f"{n} values gave an interval"
        else:
            assert _held(low, high, 1.0) >= 0.95 - 0.005, f"{n} values"


def test_too_few_values_give_no_interval_and_say_how_many_are_needed():
    assert stats.needed() == 6 and stats.needed(0.99) == 8 and stats.needed(0.9) == 5
    for n in range(6):
        result = stats.median_interval(np.linspace(1.0, 1.1, n))
        assert result.too_few and np.isnan(result.low) and np.isnan(result.high) and result.needed == 6
        assert np.isnan(stats.half_width(np.linspace(1.0, 1.1, n)))
        ratio = stats.ratio_interval(np.linspace(2.0, 2.2, 9), np.linspace(1.0, 1.1, n))
        assert ratio.too_few and ratio.n == n
    three = stats.median_interval([1.0, 1.1, 1.2])
    assert three.value == 1.1 and three.n == 3 and three.too_few
    assert not stats.median_interval(np.linspace(1.0, 1.1, 6)).too_few


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("n", [6, 8, 10, 20])
def test_the_ratio_interval_holds_the_true_ratio_of_medians_about_95_percent_of_the_time(shape, n):
    """Time at the largest batch (3.7x) over time at batch 1, each side with its own noise of one shape; with
    outliers, the slow job falls on the numerator only."""
    rng = np.random.default_rng(100 + n)
    top = RATIO * SHAPES[shape](rng, (DATASETS, n))
    base = (_normal if shape == "outlier" else SHAPES[shape])(rng, (DATASETS, n))
    _, low, high = stats.ratio_intervals(top, base)
    held = _held(low, high, RATIO)
    stated = stats.ratio_interval(np.arange(n) + 2.0, np.arange(n) + 1.0).coverage
    assert held >= BAND[0], f"{shape} noise, {n} values a side: held {held:.3f}"
    # The one count where k = 1 is the only choice: [min/max, max/min], conservative (stated 99.8%).
    assert held <= (BAND[1] if n != 6 else 0.999), f"{shape} noise, {n} values a side: held {held:.3f}"
    if shape != "outlier":  # one shape on both sides: the exact coverage stated, within 4 standard errors
        assert held == pytest.approx(stated, abs=4 * np.sqrt(stated * (1 - stated) / DATASETS) + 1e-4)


@pytest.mark.parametrize("n", [6, 8, 10, 20])
def test_the_ratio_interval_holds_its_level_when_one_side_is_twice_as_noisy(n):
    rng = np.random.default_rng(200 + n)
    for wide, narrow in ((0.10, 0.05), (0.05, 0.10)):
        _, low, high = stats.ratio_intervals(RATIO * _normal(rng, (DATASETS, n), wide),
                                             _normal(rng, (DATASETS, n), narrow))
        held = _held(low, high, RATIO)
        assert 0.94 <= held <= 0.999, f"spreads {wide}/{narrow}, {n} values a side: held {held:.3f}"


def test_the_ratio_interval_with_unequal_counts_holds_its_stated_coverage():
    """One k for both sides, bounded by the fewer side's count: conservative (99.7% for 12 and 7 values)."""
    rng = np.random.default_rng(7)
    _, low, high = stats.ratio_intervals(RATIO * _skewed(rng, (DATASETS, 12)), _skewed(rng, (DATASETS, 7)))
    stated = stats.ratio_interval(np.arange(12) + 2.0, np.arange(7) + 1.0).coverage
    held = _held(low, high, RATIO)
    assert stated >= 0.95 and BAND[0] <= held <= 0.999
    assert held == pytest.approx(stated, abs=4 * np.sqrt(stated * (1 - stated) / DATASETS) + 1e-4)


# -- a latency's percentiles (the Load page): any quantile, a skewed distribution ------------------------------

@pytest.mark.parametrize("q, n", [(0.5, 16), (0.9, 36), (0.9, 120), (0.99, 368), (0.99, 1000)])
def test_the_quantile_interval_holds_the_true_percentile_about_95_percent_of_the_time(q, n):
    """Latencies are skewed: exponential, whose q-quantile is -ln(1 - q). 4,000 datasets (the p99 ones are
    large); held within 4 standard errors of the coverage the interval states, and never under 95% by more."""
    datasets = 4_000
    rng = np.random.default_rng(int(q * 100) + n)
    _, low, high = stats.quantile_intervals(rng.exponential(size=(datasets, n)), q)
    held = _held(low, high, -np.log1p(-q))
    stated = stats.quantile_interval(np.arange(n) + 1.0, q).coverage
    assert stated >= 0.95
    assert held == pytest.approx(stated, abs=4 * np.sqrt(stated * (1 - stated) / datasets) + 1e-4), (q, n, held)


def test_a_percentile_from_too_few_values_has_no_interval_and_says_how_many():
    """The Load page's old p99 of 16-59 requests: close to their largest, and no interval can be had."""
    r = stats.quantile_interval(np.arange(59) + 1.0, 0.99)
    assert r.too_few and r.needed == 368 and r.value > 58
    assert not stats.quantile_interval(np.arange(368) + 1.0, 0.99).too_few
    assert stats.quantile_needed(0.5) == stats.needed()  # the median's rule, met by the general one
    with pytest.raises(ValueError, match="quantile must lie strictly between 0 and 1"):
        stats.quantile_needed(99)


@pytest.mark.parametrize("n", [1, 5, 16, 48])
@pytest.mark.parametrize("p", [0.05, 0.5, 0.8, 0.97])
def test_the_share_interval_holds_the_true_share_at_least_95_percent_of_the_time(p, n):
    """Pictures right out of n, k ~ Binomial(n, p): the Clopper-Pearson interval of k/n holds p in >= 95% of
    4,000 simulated counts (within 4 standard errors), at shares near 0, 1/2 and 1 and at 1 to 48 pictures."""
    rng = np.random.default_rng(int(p * 1000) + n)
    ks = rng.binomial(n, p, 4000)
    cache = {k: stats.proportion_interval(int(k), n) for k in set(ks.tolist())}
    held = np.mean([cache[k].low <= p <= cache[k].high for k in ks.tolist()])
    assert held >= 0.95 - 4 * np.sqrt(0.95 * 0.05 / 4000), held


def test_the_share_interval_is_not_wider_than_it_must_be():
    """The lower bound is where the chance of 12 or more right of 16 is exactly 2.5%: the exact interval, not a
    loose one that holds by being wide; and a count above the trials is refused, naming the rule."""
    interval = stats.proportion_interval(12, 16)
    assert (interval.value, interval.n) == (0.75, 16)
    upper_tail = sum(math.comb(16, i) * interval.low ** i * (1 - interval.low) ** (16 - i)
                     for i in range(12, 17))
    assert upper_tail == pytest.approx(0.025, abs=1e-6)
    with pytest.raises(ValueError, match="between 0 and the trials"):
        stats.proportion_interval(17, 16)

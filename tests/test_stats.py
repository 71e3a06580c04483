"""The order-statistic intervals of a median and of a ratio of medians, on small hand-checked samples (how often
they hold the truth: tests/test_coverage.py)."""

from __future__ import annotations

import math

import numpy as np
import pytest

import stats


def _times(n: int, spread: float, seed: int = 1) -> np.ndarray:
    return 1.0 + spread * np.random.default_rng(seed).standard_normal(n)


def test_the_interval_is_a_pair_of_order_statistics_chosen_by_the_binomial():
    # 6-8 values: [min, max] (held 1 - 2/2**n: 96.9%, 98.4%, 99.2%); 9-11: the 2nd smallest and largest.
    values = [7.0, 1.0, 5.0, 3.0, 6.0, 2.0, 4.0]
    r = stats.median_interval(values)
    assert (r.value, r.low, r.high, r.n, r.coverage) == (4.0, 1.0, 7.0, 7, 1 - 2 / 2**7)
    r = stats.median_interval(np.arange(1.0, 10.0))
    assert (r.low, r.high, r.coverage) == (2.0, 8.0, pytest.approx(1 - 2 * 10 / 2**9))
    r = stats.median_interval(np.arange(1.0, 21.0))  # 20 values: 6th and 15th (95.9%)
    assert (r.low, r.high) == (6.0, 15.0) and r.coverage == pytest.approx(0.9586, abs=1e-4)
    assert not r.too_few and r.half_width == pytest.approx(4.5 / 10.5)


def test_equal_times_have_an_interval_of_zero_width():
    r = stats.median_interval([0.5] * 6)
    assert (r.value, r.low, r.high) == (0.5, 0.5, 0.5)
    assert stats.half_width([0.5] * 6) == 0.0


def test_too_few_times_give_the_median_without_an_interval():
    r = stats.median_interval([1.0, 1.2, 0.9])
    assert r.value == 1.0 and r.too_few and math.isnan(r.low) and math.isnan(r.high) and math.isnan(r.coverage)
    assert (r.n, r.needed) == (3, 6)
    assert math.isnan(stats.half_width([0.5] * 5)) and math.isnan(stats.half_width([0.5]))


def test_nans_are_dropped_and_no_times_give_nothing():
    r = stats.median_interval([1.0, float("nan"), 2.0, 3.0, 4.0, 5.0, 6.0])
    assert (r.n, r.value, r.low, r.high) == (6, 3.5, 1.0, 6.0)
    empty = stats.median_interval([])
    assert empty.n == 0 and empty.too_few and math.isnan(empty.value)
    assert math.isnan(stats.half_width([float("nan")]))


def test_the_interval_widens_with_the_spread_and_narrows_with_more_times():
    r = stats.median_interval(_times(9, 0.05))
    assert r.low <= r.value <= r.high and r.low < r.high
    assert stats.half_width(_times(9, 0.10)) > stats.half_width(_times(9, 0.02))
    assert stats.half_width(_times(60, 0.05)) < stats.half_width(_times(6, 0.05))


def test_the_level_sets_how_many_values_are_needed():
    assert [stats.needed(level) for level in (0.5, 0.75, 0.9, 0.95, 0.99)] == [2, 3, 5, 6, 8]
    assert not stats.median_interval(np.arange(5.0), level=0.9).too_few
    assert stats.median_interval(np.arange(5.0)).too_few
    for bad in (0, 1, 95, -0.1):
        with pytest.raises(ValueError, match=f"level {bad!r} is not a coverage"):
            stats.median_interval([1.0] * 6, level=bad)


def test_a_ratio_of_medians_has_an_interval_of_order_statistics_around_it():
    top, base = [2.0, 2.1, 1.9, 2.05, 1.95, 2.2], [1.0, 1.05, 0.95, 1.02, 0.98, 1.1]
    r = stats.ratio_interval(top, base)
    # 6 a side: k = 1 (k = 2 would hold 92%): [min(top) / max(base), max(top) / min(base)].
    assert r.value == pytest.approx(2.025 / 1.01) and (r.low, r.high) == (1.9 / 1.1, 2.2 / 0.95)
    assert r.coverage == pytest.approx(1 - 2 / math.comb(12, 6)) and not r.too_few
    assert stats.ratio_interval([2.0] * 6, [1.0] * 6).half_width == 0.0


def test_a_ratio_with_too_few_times_on_either_side_has_no_interval():
    r = stats.ratio_interval([2.0, 2.1, 1.9], [1.0, 1.05, 0.95, 1.0, 1.0, 1.0, 1.1])
    assert r.value == 2.0 and r.too_few and r.n == 3 and math.isnan(r.half_width)
    assert stats.ratio_interval([], [1.0]).too_few and math.isnan(stats.ratio_interval([], [1.0]).value)


def test_a_ratio_of_times_that_are_not_positive_is_refused():
    with pytest.raises(ValueError, match="positive values"):
        stats.ratio_interval([1.0] * 6, [1.0] * 5 + [0.0])


def test_the_vectorised_forms_give_the_single_answers():
    rng = np.random.default_rng(4)
    samples = 1 + 0.1 * rng.standard_normal((50, 11))
    medians, lows, highs = stats.median_intervals(samples)
    ratios, rlows, rhighs = stats.ratio_intervals(2 * samples, samples[::-1])
    for i, row in enumerate(samples):
        one = stats.median_interval(row)
        assert (one.value, one.low, one.high) == (medians[i], lows[i], highs[i])
        pair = stats.ratio_interval(2 * row, samples[::-1][i])
        assert (pair.value, pair.low, pair.high) == pytest.approx((ratios[i], rlows[i], rhighs[i]))

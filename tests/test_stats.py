"""The bootstrap interval of a median, on synthetic times with a known spread."""

from __future__ import annotations

import math

import numpy as np

import stats


def _times(n: int, spread: float, seed: int = 1) -> np.ndarray:
    return 1.0 + spread * np.random.default_rng(seed).standard_normal(n)


def test_equal_times_have_an_interval_of_zero_width():
    assert stats.median_interval([0.5] * 5) == (0.5, 0.5, 0.5)
    assert stats.half_width([0.5] * 5) == 0.0
    assert stats.half_width([0.5]) == 0.0


def test_the_interval_holds_the_median_and_widens_with_the_spread_and_narrows_with_more_times():
    median, low, high = stats.median_interval(_times(9, 0.05))
    assert low <= median <= high and low < high
    assert stats.half_width(_times(9, 0.10)) > stats.half_width(_times(9, 0.02))
    assert stats.half_width(_times(60, 0.05)) < stats.half_width(_times(6, 0.05))


def test_the_interval_holds_the_true_median_about_as_often_as_it_says():
    held = 0
    for seed in range(200):
        _, low, high = stats.median_interval(_times(15, 0.05, seed), resamples=500)
        held += low <= 1.0 <= high
    assert 0.85 <= held / 200 <= 1.0


def test_nothing_to_say_without_times_and_the_same_answer_twice():
    assert all(math.isnan(x) for x in stats.median_interval([]))
    assert math.isnan(stats.half_width([float("nan")]))
    assert stats.median_interval(_times(7, 0.1)) == stats.median_interval(_times(7, 0.1))


def test_a_ratio_of_medians_has_an_interval_around_it():
    ratio, low, high = stats.ratio_interval([2.0, 2.1, 1.9], [1.0, 1.05, 0.95])
    assert ratio == 2.0 and low < 2.0 < high
    assert stats.ratio_interval([2.0] * 3, [1.0] * 3) == (2.0, 2.0, 2.0)
    assert all(math.isnan(x) for x in stats.ratio_interval([], [1.0]))

"""Derived figures on hand-made data with known answers."""

import pandas as pd
import pytest

from warehouse import analysis


def _tp(walls: dict[int, float]) -> pd.DataFrame:
    return pd.DataFrame({"batch_size": list(walls), "median_wall_s": list(walls.values()),
                         "images_per_s": [b / w for b, w in walls.items()]})


def test_headline_compares_the_largest_batch_with_batch_one():
    assert analysis.headline(_tp({8: 2.6, 1: 1.0, 4: 1.5})) == (
        "batch 8 took 2.6x as long as batch 1: 3.1x the images per second")


def test_headline_handles_one_batch_size_and_none():
    assert analysis.headline(_tp({4: 2.0})) == "only batch 4 was measured: 2.00 images per second"
    assert analysis.headline(_tp({})) is None


def test_speedup_and_efficiency():
    tp = _tp({1: 1.0, 2: 1.0, 4: 2.0, 8: 8.0})
    assert list(analysis.speedup(tp)) == [1.0, 2.0, 2.0, 1.0]
    assert list(analysis.efficiency(tp)) == [1.0, 1.0, 0.5, 0.125]


def test_knee_is_where_efficiency_drops_below_half():
    assert analysis.knee(_tp({1: 1.0, 2: 1.0, 4: 2.0, 8: 8.0})) == 8    # 4 sits at exactly 0.5
    assert analysis.knee(_tp({1: 1.0, 2: 1.1, 4: 1.2})) is None
    assert analysis.knee(_tp({1: 1.0, 2: 2.5})) == 2


def test_fit_recovers_fixed_and_marginal_cost_before_the_knee():
    # t(B) = 0.9 + 0.1 B up to batch 8, then the device saturates (batch 32 far above the line).
    walls = {b: 0.9 + 0.1 * b for b in (1, 2, 4, 8)} | {32: 20.0}
    fit = analysis.fit_fixed_marginal(_tp(walls))
    assert fit["fixed_s"] == pytest.approx(0.9) and fit["marginal_s"] == pytest.approx(0.1)
    assert fit["fixed_share_at_1"] == pytest.approx(0.9)
    assert fit["knee"] == 32 and fit["batch_sizes"] == [1, 2, 4, 8]
    res = fit["residuals"].set_index("batch_size")
    assert res.residual_s.loc[[1, 2, 4, 8]].abs().max() < 1e-9 and res.residual_s[32] == pytest.approx(20.0 - 4.1)
    assert analysis.fit_sentence(fit).startswith(
        "at batch 1, 90% of the time was fixed cost per call, shared by every extra image; "
        "each extra image adds 0.1 s. The line holds up to batch 8; from batch 32 on")


def test_fit_needs_two_points():
    assert analysis.fit_fixed_marginal(_tp({4: 1.0})) is None


def test_verdict_tells_a_payoff_from_a_busy_device():
    assert analysis.verdict(_tp({1: 1.0, 16: 2.0})).startswith("batching paid off")     # 8x for 16x
    assert analysis.verdict(_tp({1: 1.0, 16: 6.0})).startswith("batching helped, then faded")  # 2.7x
    busy = analysis.verdict(_tp({1: 1.0, 4: 3.6}))                                         # 1.1x
    assert busy.startswith("batching helped little") and "CPU cores" in busy
    assert "GPU" in analysis.verdict(_tp({1: 1.0, 4: 3.6}), device="cuda")


def test_phase_shares_sum_to_one_per_batch():
    phases = pd.DataFrame({"batch_size": [1, 1, 4, 4], "phase": ["denoise", "decode"] * 2,
                           "median_s": [0.3, 0.1, 0.6, 0.6]})
    shares = analysis.phase_shares(phases)
    assert list(shares.share) == pytest.approx([0.75, 0.25, 0.5, 0.5])


def test_fit_sentence_when_the_knee_comes_at_once():
    fit = analysis.fit_fixed_marginal(_tp({1: 1.0, 2: 2.5, 4: 5.0}))   # worse than no sharing
    assert fit["knee"] == 2 and fit["batch_sizes"] == [1, 2] and fit["fixed_s"] < 0
    assert "Batching efficiency is below 50% from batch 2 on" in analysis.fit_sentence(fit)


def test_verdict_for_sequential_mode_names_the_baseline():
    assert analysis.verdict(_tp({1: 1.0, 4: 4.0}), mode="sequential").startswith("sequential mode makes one")

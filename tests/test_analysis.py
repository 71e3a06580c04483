"""Derived figures on hand-made data with known answers."""

import pandas as pd

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


def test_verdict_tells_a_payoff_from_a_busy_device():
    assert analysis.verdict(_tp({1: 1.0, 16: 2.0})).startswith("batching paid off")     # 8x for 16x
    assert analysis.verdict(_tp({1: 1.0, 16: 6.0})).startswith("batching helped, then faded")  # 2.7x
    assert analysis.verdict(_tp({1: 1.0, 4: 3.6})).startswith("batching helped little")  # 1.1x

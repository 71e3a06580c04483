"""Did batching change my images: the pixel comparison, which images are held against which, and the
sentences that follow from the figures (generator/measure/invariance.py, warehouse/invariance.py)."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from generator.measure.invariance import References, compare
from generator.sweep.plan import RunPlan
from warehouse import invariance
from warehouse.explain import pictures

STATIC, STREAM = RunPlan(64, 64, 1.0, "static"), RunPlan(64, 64, 1.0, "stream")
SLICED = RunPlan(64, 64, 1.0, "static", vae_slicing=True)
CFG = RunPlan(64, 64, 7.5, "stream")


def _picture(seed: int, shift: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(rng.integers(10, 240, (8, 8, 3)) + shift, 0, 255).astype(np.uint8)


def test_compare_reports_identical_pictures_without_a_psnr():
    a = _picture(1)
    assert compare(a, a.copy()) == {"max_abs_diff": 0, "mean_abs_diff": 0.0, "psnr_db": None}


def test_compare_measures_the_largest_and_mean_difference_and_the_psnr():
    a = _picture(1)
    b = a.copy()
    b[0, 0, 0] = a[0, 0, 0] + 5  # one channel of one pixel 5 levels up
    found = compare(a, b)
    mse = 25 / a.size
    assert found["max_abs_diff"] == 5 and found["mean_abs_diff"] == pytest.approx(5 / a.size)
    assert found["psnr_db"] == pytest.approx(10 * math.log10(255 ** 2 / mse))
    with pytest.raises(ValueError, match="one shape"):
        compare(a, a[:4])


def test_each_image_is_held_against_batch_1_of_its_run_and_the_same_batch_in_runs_differing_in_one_thing():
    refs = References()
    # Batch 1 of static: the first reference, compared with nothing.
    assert refs.check(STATIC, 1, "s1", [0], [_picture(0)]) == []
    # Batch 2 of static: image 0 (seed 0) against batch 1; seed 1 has no batch-1 picture.
    rows = refs.check(STATIC, 2, "s2", [0, 1], [_picture(0, shift=1), _picture(1)])
    assert [(r["index"], r["against"], r["ref_job_id"], r["max_abs_diff"]) for r in rows] == [(0, "batch_1", "s1", 1)]
    # Stream batch 2: against static batch 2 image by image (mode), not against static's batch 1.
    rows = refs.check(STREAM, 2, "t2", [0, 1], [_picture(0), _picture(1)])
    assert [(r["index"], r["against"], r["ref_job_id"], r["max_abs_diff"]) for r in rows] == [
        (0, "mode", "s2", 1), (1, "mode", "s2", 0)]
    # Static with VAE slicing, batch 2: against static batch 2 (vae_slicing); not against stream (two differences).
    rows = refs.check(SLICED, 2, "v2", [0, 1], [_picture(0, shift=1), _picture(1)])
    assert [(r["against"], r["ref_job_id"]) for r in rows] == [("vae_slicing", "s2")] * 2
    # Another guidance is another picture: nothing to compare with.
    assert refs.check(CFG, 2, "c2", [0, 1], [_picture(0), _picture(1)]) == []
    # A later job of static batch 1 is held against the first one (repeatability), never against itself.
    rows = refs.check(STATIC, 1, "s1b", [0], [_picture(0)])
    assert [(r["against"], r["ref_job_id"], r["max_abs_diff"]) for r in rows] == [("batch_1", "s1", 0)]
    assert refs.first[(STATIC, 1)].job_id == "s1"
    # A failed job (no images) compares nothing and is no reference.
    assert refs.check(STATIC, 4, "s4", [0, 1, 2, 3], []) == [] and (STATIC, 4) not in refs.first


def _rows(*checks) -> pd.DataFrame:
    base = dict(mean_abs_diff=0.0, psnr_db=None, label="txt2img 64x64 static (abc)", mode="static",
                ref_mode="static", ref_batch_size=1, vae_slicing=False, ref_vae_slicing=False, seed=0)
    return pd.DataFrame([{**base, **c} for c in checks])


def test_identical_pictures_say_no():
    found = invariance.invariance(_rows(dict(against="batch_1", batch_size=2, max_abs_diff=0),
                                        dict(against="batch_1", batch_size=4, max_abs_diff=0)))
    assert set(found) == {"batching"} and found["batching"].all_identical
    assert pictures.invariance(found["batching"]) == (
        "**Did batching change the pictures?** No: 2 images drawn at batch 2–4 against the same seed at batch 1 "
        "of the same run are identical, pixel for pixel.")


def test_a_difference_of_one_level_is_not_visible_and_says_where():
    found = invariance.invariance(_rows(
        dict(against="batch_1", batch_size=2, max_abs_diff=0),
        dict(against="batch_1", batch_size=8, max_abs_diff=1, mean_abs_diff=0.01, psnr_db=68.1, seed=3)))
    said = pictures.invariance(found["batching"])
    assert said.startswith("**Did batching change the pictures?** Not visibly:")
    assert "differ by at most 1/255" in said and "(1 of 2 identical;" in said
    assert "1/255, PSNR 68.1 dB at seed 3, static batch 8 against static batch 1" in said


def test_a_larger_difference_says_yes_with_the_worst_case():
    found = invariance.invariance(_rows(
        dict(against="mode", batch_size=4, max_abs_diff=2, mean_abs_diff=0.1, psnr_db=60.0, seed=1),
        dict(against="mode", batch_size=4, max_abs_diff=17, mean_abs_diff=0.5, psnr_db=41.25, seed=2,
             mode="stream", ref_mode="static", ref_batch_size=4)))
    said = pictures.invariance(found["mode"])
    assert said.startswith("**Did the mode change the pictures?** Yes:")
    assert "0 of 2 identical; the largest difference is 17/255, PSNR 41.2 dB, seed 2, stream batch 4 against " \
           "static batch 4" in said


def test_batch_1_against_itself_is_a_repeat_and_its_noise_qualifies_the_batching_claim():
    found = invariance.invariance(_rows(
        dict(against="batch_1", batch_size=1, max_abs_diff=3, psnr_db=50.0),
        dict(against="batch_1", batch_size=2, max_abs_diff=3, psnr_db=50.0)))
    assert set(found) == {"batching", "repeat"}
    assert pictures.invariance(found["repeat"]).startswith("**Does batch 1 repeat itself?** No: 1 batch-1 images")
    assert pictures.repeat_caveat(found).startswith("Batch 1 drawn again differs from its first drawing by up to 3/255")
    steady = invariance.invariance(_rows(dict(against="batch_1", batch_size=1, max_abs_diff=0),
                                         dict(against="batch_1", batch_size=2, max_abs_diff=3)))
    assert pictures.repeat_caveat(steady) is None


def test_batch_1_that_repeats_itself_is_answered_yes_and_a_batching_change_that_is_identical_no():
    same = invariance.invariance(_rows(dict(against="batch_1", batch_size=1, max_abs_diff=0),
                                       dict(against="batch_1", batch_size=2, max_abs_diff=0)))
    assert pictures.invariance(same["repeat"]) == ("**Does batch 1 repeat itself?** Yes: 1 batch-1 images drawn again "
                                                  "against their first drawing are identical, pixel for pixel.")
    assert pictures.invariance(same["batching"]).startswith("**Did batching change the pictures?** No: ")
    close = invariance.invariance(_rows(dict(against="batch_1", batch_size=1, max_abs_diff=1, psnr_db=70.0)))
    assert pictures.invariance(close["repeat"]).startswith("**Does batch 1 repeat itself?** Not exactly: ")


def test_no_checks_no_claim():
    assert invariance.invariance(_rows(dict(against="batch_1", batch_size=2, max_abs_diff=0)).iloc[0:0]) == {}
    assert pictures.invariance(None) is None


def test_the_gallery_caption_says_identical_or_quotes_the_difference():
    ref = "seed 3 at static batch 1"
    assert pictures.pair_caption(0, None, ref) == "identical to seed 3 at static batch 1"
    assert pictures.pair_caption(2, 60.04, ref) == (
        "against seed 3 at static batch 1: largest difference 2/255, PSNR 60.0 dB")
    assert pictures.pair_caption(1, float("nan"), ref).endswith("largest difference 1/255")

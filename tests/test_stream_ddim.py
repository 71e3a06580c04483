"""Stream mode's vectorised DDIM update against diffusers' own DDIMScheduler.step, row by row."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from diffusers import DDIMScheduler, EulerDiscreteScheduler

from generator.measure.timing import PipelineTimer, clock_for
from generator.pipelines import batching
from generator.pipelines.batching import JobInputs
from generator.pipelines.models import load_pipeline
from generator.pipelines.stream import check_stream_scheduler, ddim_update

STEPS = 10
# Rows at different steps of the schedule, the last one at the final step (previous timestep
# negative: final_alpha_cumprod), one repeated (two requests may not share a step in stream
# mode, but the update must not care).
STEP_INDICES = [0, 2, 5, 5, 8, STEPS - 1]
SHAPE = (4, 8, 8)  # channels, height, width of one latent

PREDICTIONS = ("epsilon", "v_prediction", "sample")
CLIPS = (None, 0.5)          # clip_sample off, or on with clip_sample_range 0.5
THRESHOLDS = (None, 0.9)     # thresholding off, or on with dynamic_thresholding_ratio 0.9


def _scheduler(**config) -> DDIMScheduler:
    base = dict(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                set_alpha_to_one=False, steps_offset=1)
    scheduler = DDIMScheduler(**{**base, **config})
    scheduler.set_timesteps(STEPS)
    return scheduler


def _config(prediction, clip, threshold) -> dict:
    config = dict(prediction_type=prediction, clip_sample=clip is not None)
    if clip is not None:
        config["clip_sample_range"] = clip
    if threshold is not None:
        config.update(thresholding=True, dynamic_thresholding_ratio=threshold, sample_max_value=1.5)
    return config


def _data(seed=0, dtype=torch.float32):
    """Latents and model outputs scaled so that predicted x0 leaves [-1, 1] for every
    prediction type: clipping to 0.5 and thresholding (s between 1 and 1.5) both bite."""
    g = torch.Generator().manual_seed(seed)
    rows = len(STEP_INDICES)
    x = torch.randn((rows, *SHAPE), generator=g) * 2.0
    out = torch.randn((rows, *SHAPE), generator=g) * 2.0
    return x.to(dtype), out.to(dtype)


def _reference(scheduler, x, out, t) -> torch.Tensor:
    """scheduler.step, one row at a time: what a batch-1 pipeline would do at each row's timestep."""
    return torch.cat([scheduler.step(out[i:i + 1], t[i], x[i:i + 1], eta=0.0).prev_sample
                      for i in range(x.shape[0])])


def _timesteps(scheduler) -> torch.Tensor:
    t = scheduler.timesteps[STEP_INDICES]
    assert len(set(t.tolist())) == len(set(STEP_INDICES)) > 1  # really different timesteps
    return t


@pytest.mark.parametrize("prediction,clip,threshold", list(itertools.product(PREDICTIONS, CLIPS, THRESHOLDS)))
def test_ddim_update_equals_step_row_by_row(prediction, clip, threshold):
    scheduler = _scheduler(**_config(prediction, clip, threshold))
    x, out = _data()
    t = _timesteps(scheduler)
    x_before, out_before = x.clone(), out.clone()
    got = ddim_update(scheduler, scheduler.alphas_cumprod, x, out, t)
    torch.testing.assert_close(got, _reference(scheduler, x, out, t))
    assert got.dtype == x.dtype and got.shape == x.shape
    # Pure: the inputs are left as they were.
    assert torch.equal(x, x_before) and torch.equal(out, out_before)
    # alphas=None reads the scheduler's own alphas_cumprod.
    torch.testing.assert_close(ddim_update(scheduler, None, x, out, t), got, rtol=0, atol=0)


@pytest.mark.parametrize("prediction", PREDICTIONS)
def test_clip_and_threshold_really_change_the_result(prediction):
    # Otherwise the comparison above could pass with the settings ignored.
    x, out = _data()
    results = {}
    for clip, threshold in itertools.product(CLIPS, THRESHOLDS):
        scheduler = _scheduler(**_config(prediction, clip, threshold))
        t = _timesteps(scheduler)
        results[clip, threshold] = ddim_update(scheduler, None, x, out, t)
    plain, clipped, thresholded = results[None, None], results[0.5, None], results[None, 0.9]
    # Each row differs (every row's predicted x0 is clipped / thresholded somewhere).
    for a, b in ((plain, clipped), (plain, thresholded), (clipped, thresholded)):
        assert all(not torch.allclose(a[i], b[i]) for i in range(a.shape[0]))
    # Thresholding takes precedence over clipping, as in step().
    torch.testing.assert_close(results[0.5, 0.9], thresholded, rtol=0, atol=0)


def test_thresholding_respects_sample_max_value_and_ratio():
    x, out = _data()
    base = _config("sample", None, 0.9)
    a = _scheduler(**base)
    b = _scheduler(**{**base, "sample_max_value": 1.2})
    c = _scheduler(**{**base, "dynamic_thresholding_ratio": 0.3})  # s < 1: clamped to 1
    t = _timesteps(a)
    ra, rb, rc = (ddim_update(s, None, x, out, t) for s in (a, b, c))
    assert not torch.allclose(ra, rb) and not torch.allclose(ra, rc)
    torch.testing.assert_close(rb, _reference(b, x, out, t))
    torch.testing.assert_close(rc, _reference(c, x, out, t))


def test_missing_clip_sample_key_means_clipping_on_as_in_diffusers():
    # DDIMScheduler defaults clip_sample=True (range 1.0) when a model's config lacks the key.
    scheduler = DDIMScheduler.from_config({"beta_schedule": "scaled_linear", "beta_start": 0.00085,
                                           "beta_end": 0.012})
    assert scheduler.config.clip_sample is True and scheduler.config.clip_sample_range == 1.0
    scheduler.set_timesteps(STEPS)
    unclipped = DDIMScheduler.from_config(scheduler.config, clip_sample=False)
    unclipped.set_timesteps(STEPS)
    x, out = _data(seed=1)
    t = _timesteps(scheduler)
    got = ddim_update(scheduler, None, x, out, t)
    torch.testing.assert_close(got, _reference(scheduler, x, out, t))
    assert not torch.allclose(got, ddim_update(unclipped, None, x, out, t))


@pytest.mark.parametrize("spacing,offset,alpha_to_one,zero_snr", [
    ("leading", 0, True, False),
    ("leading", 1, False, False),
    ("trailing", 0, True, False),
    ("trailing", 0, False, True),   # zero terminal SNR: alphas_cumprod[999] == 0 (v_prediction)
    ("linspace", 0, False, False),  # previous = t - 1000 // steps, not the next scheduled timestep
])
def test_schedule_settings_match_step(spacing, offset, alpha_to_one, zero_snr):
    prediction = "v_prediction" if zero_snr else "epsilon"
    scheduler = _scheduler(timestep_spacing=spacing, steps_offset=offset, set_alpha_to_one=alpha_to_one,
                           rescale_betas_zero_snr=zero_snr, prediction_type=prediction,
                           clip_sample=True, clip_sample_range=0.5)
    x, out = _data(seed=2)
    t = _timesteps(scheduler)
    torch.testing.assert_close(ddim_update(scheduler, None, x, out, t), _reference(scheduler, x, out, t))


def test_final_alpha_cumprod_is_used_where_the_previous_timestep_is_negative():
    x, out = _data(seed=3)
    results = []
    for alpha_to_one in (True, False):
        scheduler = _scheduler(set_alpha_to_one=alpha_to_one)
        t = _timesteps(scheduler)
        assert t[-1] - 1000 // STEPS < 0  # the last row really reads final_alpha_cumprod
        results.append(ddim_update(scheduler, None, x, out, t))
    # Only the last row reads final_alpha_cumprod, and it changes with set_alpha_to_one.
    torch.testing.assert_close(results[0][:-1], results[1][:-1], rtol=0, atol=0)
    assert not torch.allclose(results[0][-1], results[1][-1])


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_dtypes(dtype):
    scheduler = _scheduler(**_config("epsilon", None, 0.9))
    x32, out32 = _data(seed=4)
    x, out = x32.to(dtype), out32.to(dtype)
    t = _timesteps(scheduler)
    got = ddim_update(scheduler, None, x, out, t)
    assert got.dtype == dtype
    if dtype == torch.float64:
        torch.testing.assert_close(got, _reference(scheduler, x, out, t))
    else:
        # Half precision is updated in float32 and rounded once: the float32 result of the same
        # (rounded) inputs, rounded.
        want = _reference(scheduler, x.float(), out.float(), t).to(dtype)
        torch.testing.assert_close(got, want)


def test_timesteps_on_a_list_and_row_count_checked():
    scheduler = _scheduler()
    x, out = _data()
    t = _timesteps(scheduler)
    torch.testing.assert_close(ddim_update(scheduler, None, x, out, t.tolist()), ddim_update(scheduler, None, x, out, t))
    with pytest.raises(ValueError, match="one row each"):
        ddim_update(scheduler, None, x, out, t[:-1])


def test_refuses_a_non_ddim_scheduler_by_name():
    with pytest.raises(ValueError, match="DDIM scheduler.*got EulerDiscreteScheduler"):
        check_stream_scheduler(EulerDiscreteScheduler())


def test_refuses_an_unknown_prediction_type_naming_it_and_the_supported_ones():
    scheduler = _scheduler(prediction_type="flow")
    x, out = _data()
    with pytest.raises(ValueError, match=r"prediction_type 'flow' is not supported; "
                                         r"supported: epsilon, sample, v_prediction"):
        ddim_update(scheduler, None, x, out, scheduler.timesteps[STEP_INDICES])


def test_refuses_a_subclass_that_overrides_step():
    class Tweaked(DDIMScheduler):
        def step(self, *args, **kwargs):
            return super().step(*args, **kwargs)

    with pytest.raises(ValueError, match="Tweaked overrides step"):
        check_stream_scheduler(Tweaked())

    class Kept(DDIMScheduler):
        pass

    check_stream_scheduler(Kept())  # a subclass with DDIM's own step is fine


def test_requires_set_timesteps():
    scheduler = DDIMScheduler()
    x, out = _data()
    with pytest.raises(ValueError, match="set_timesteps"):
        ddim_update(scheduler, None, x, out, torch.arange(len(STEP_INDICES)))


@pytest.mark.slow
def test_stream_mode_matches_static_with_clipping_and_thresholding():
    # End to end on the embedded model: the pipeline's own step() (static) against stream mode's
    # ddim_update, with settings that change the images.
    pipe, _ = load_pipeline("txt2img")
    timer = PipelineTimer(pipe, clock_for("cpu"))
    job = JobInputs("txt2img", ["a fox", "a ship", "a lamp", "a tree"], [3, 1, 4, 1], 64, 64, 3, 4.0)
    original = pipe.scheduler.config
    images = {}
    for name, extra in (("plain", {}),
                        ("clip", dict(clip_sample=True, clip_sample_range=0.05)),
                        ("threshold", dict(thresholding=True, dynamic_thresholding_ratio=0.5,
                                           sample_max_value=1.0, prediction_type="sample"))):
        pipe.scheduler = DDIMScheduler.from_config(original, **extra)
        static, _ = batching.execute("static", pipe, timer, job)
        stream, _ = batching.execute("stream", pipe, timer, job)
        a = np.stack([np.asarray(i, dtype=np.int16) for i in static])
        b = np.stack([np.asarray(i, dtype=np.int16) for i in stream])
        assert np.abs(a - b).max() <= 1, (name, np.abs(a - b).max())
        images[name] = a
    assert np.abs(images["plain"] - images["clip"]).max() > 1
    assert np.abs(images["plain"] - images["threshold"]).max() > 1

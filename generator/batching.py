"""Execution modes: how the images of one job share (or do not share) UNet calls.

- sequential: one pipeline call per image, batch 1 each: the baseline a person starts from.
- static: one pipeline call for the whole batch: every UNet call carries every image.
- stream: Stream Batch (StreamDiffusion, arXiv 2312.12491): requests enter a pipeline of
  denoising slots one per UNet call, every UNet call carries one latent per occupied slot,
  each at its own timestep, and a vectorised DDIM update advances all rows at once; a
  finished request leaves. With S steps there are S slots: B images take B + S - 1 UNet
  calls of up to min(B, S) rows, instead of B x S calls of one row (sequential).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .timing import CallTiming, PipelineTimer

MODES = ("sequential", "static", "stream")


@dataclass(frozen=True)
class JobInputs:
    """What one job generates: one prompt and one seed per image."""

    task: str
    prompts: list[str]
    seeds: list[int]
    height: int
    width: int
    steps: int
    guidance: float
    image: object = None  # PIL image to inpaint (inpaint only)
    masks: tuple = ()     # one PIL mask per image (inpaint only)


def unet_rows_per_call(mode: str, batch_size: int, steps: int, cfg: bool) -> int:
    """Latents in the fullest UNet call of a job (2x with classifier-free guidance)."""
    rows = {"sequential": 1, "static": batch_size, "stream": min(batch_size, steps)}[mode]
    return rows * (2 if cfg else 1)


def execute(mode: str, pipe, timer: PipelineTimer, job: JobInputs) -> tuple[list, CallTiming]:
    """Run one job in `mode`; return (PIL images, timing)."""
    if mode == "static":
        timer.begin()
        images = _pipeline_call(pipe, timer, job, range(len(job.prompts)))
        return images, timer.end()
    if mode == "sequential":
        images, calls = [], []
        for i in range(len(job.prompts)):
            timer.begin()
            images += _pipeline_call(pipe, timer, job, [i])
            calls.append(timer.end())
        return images, CallTiming.merge(calls)
    if mode == "stream":
        timer.begin()
        images = _stream_batch(pipe, timer, job)
        return images, timer.end()
    raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")


def _generators(seeds) -> list[torch.Generator]:
    # One generator per image: image i is the same whatever batch or mode it is in.
    return [torch.Generator(device="cpu").manual_seed(s) for s in seeds]


def _pipeline_call(pipe, timer, job: JobInputs, rows) -> list:
    """One diffusers pipeline call for the images `rows` of the job."""
    rows = list(rows)
    kwargs = dict(
        prompt=[job.prompts[i] for i in rows],
        height=job.height,
        width=job.width,
        num_inference_steps=job.steps,
        guidance_scale=job.guidance,
        generator=_generators([job.seeds[i] for i in rows]),
        callback_on_step_end=timer.on_step_end,
        output_type="pil",
    )
    if job.task == "inpaint":
        # One picture for every prompt; one mask per image (the pipeline takes a list).
        kwargs.update(image=[job.image] * len(rows), mask_image=[job.masks[i] for i in rows])
    return pipe(**kwargs).images


DDIM_PREDICTION_TYPES = ("epsilon", "sample", "v_prediction")


def check_stream_scheduler(scheduler) -> None:
    """Refuse, with one clear line, a scheduler whose step() ddim_update does not reproduce.

    Supported: diffusers' DDIMScheduler itself (or a subclass that keeps its step()), with any
    betas / alphas (trained_betas, beta_schedule, rescale_betas_zero_snr), set_alpha_to_one,
    timestep_spacing and steps_offset, prediction_type epsilon, sample or v_prediction, and
    clip_sample (clip_sample_range) or thresholding (dynamic_thresholding_ratio, sample_max_value).
    """
    from diffusers import DDIMScheduler

    if not isinstance(scheduler, DDIMScheduler):
        raise ValueError(f"stream mode needs a DDIM scheduler (diffusers DDIMScheduler), "
                         f"got {type(scheduler).__name__}")
    if type(scheduler).step is not DDIMScheduler.step:
        raise ValueError(f"stream mode reproduces DDIMScheduler.step; {type(scheduler).__name__} "
                         "overrides step(), which is not supported")
    prediction = scheduler.config.prediction_type
    if prediction not in DDIM_PREDICTION_TYPES:
        raise ValueError(f"stream mode: scheduler prediction_type {prediction!r} is not supported; "
                         f"supported: {', '.join(DDIM_PREDICTION_TYPES)}")


def _ddim_coefficients(scheduler, alphas: torch.Tensor, timesteps: torch.Tensor, ndim: int = 4):
    """Per-row alpha-bar at t and at the previous timestep, as DDIMScheduler.step computes them:
    previous = t - num_train_timesteps // num_inference_steps whatever the timestep_spacing (the
    spacing and steps_offset only choose the timesteps, in set_timesteps), and final_alpha_cumprod
    (1, or alphas_cumprod[0] without set_alpha_to_one) where that is negative. `alphas` is the
    scheduler's alphas_cumprod on the device it should be read on; the result keeps its dtype,
    shaped (rows, 1, ...) with `ndim` dimensions to scale a batch of latents."""
    timesteps = timesteps.to(alphas.device)
    prev = timesteps - scheduler.config.num_train_timesteps // scheduler.num_inference_steps
    a_t = alphas[timesteps]
    final = scheduler.final_alpha_cumprod.to(device=alphas.device, dtype=alphas.dtype)
    a_prev = torch.where(prev >= 0, alphas[prev.clamp(min=0)], final)
    shape = (-1,) + (1,) * (ndim - 1)
    return a_t.view(shape), a_prev.view(shape)


def ddim_update(scheduler, alphas: torch.Tensor | None, x: torch.Tensor, model_output: torch.Tensor,
                timesteps: torch.Tensor) -> torch.Tensor:
    """One deterministic DDIM step (eta = 0) for a batch of latents, row i at timesteps[i].

    Row i of the result is scheduler.step(model_output[i:i+1], timesteps[i], x[i:i+1],
    eta=0).prev_sample: the same prediction_type, the same clip_sample (to +-clip_sample_range)
    or dynamic thresholding (which wins over clipping, as in step()), applied to predicted x0
    only, while the predicted noise stays unclipped (use_clipped_model_output=False, as the
    pipelines call it). The scheduler must have had set_timesteps(). `alphas` is its
    alphas_cumprod already on x's device (None: moved here). The coefficients are computed in
    alphas_cumprod's dtype as step() does, and the update in at least that precision (a half
    precision x is upcast, where step() would round every intermediate to half), then cast back
    to x's dtype. Pure: neither the scheduler nor the inputs change.
    """
    check_stream_scheduler(scheduler)
    if scheduler.num_inference_steps is None:
        raise ValueError("ddim_update: call scheduler.set_timesteps() first")
    config = scheduler.config
    if alphas is None:
        alphas = scheduler.alphas_cumprod.to(x.device)
    timesteps = torch.as_tensor(timesteps).reshape(-1)
    if timesteps.numel() != x.shape[0] or model_output.shape != x.shape:
        raise ValueError(f"ddim_update: {timesteps.numel()} timesteps, latents {tuple(x.shape)} and "
                         f"model output {tuple(model_output.shape)} must have one row each")
    work = torch.promote_types(x.dtype, alphas.dtype)
    sample, output = x.to(work), model_output.to(work)
    alpha_prod_t, alpha_prod_t_prev = _ddim_coefficients(scheduler, alphas, timesteps, x.ndim)
    beta_prod_t = 1 - alpha_prod_t
    # Square roots in alphas_cumprod's dtype, as step() takes them of its 0-d float32 tensors.
    sqrt_a_t, sqrt_b_t = (alpha_prod_t ** 0.5).to(work), (beta_prod_t ** 0.5).to(work)
    sqrt_a_prev = (alpha_prod_t_prev ** 0.5).to(work)
    sqrt_b_prev = ((1 - alpha_prod_t_prev) ** 0.5).to(work)  # eta = 0: std_dev_t = 0
    # Predicted x0 and noise (step() 3).
    if config.prediction_type == "epsilon":
        x0 = (sample - sqrt_b_t * output) / sqrt_a_t
        eps = output
    elif config.prediction_type == "sample":
        x0 = output
        eps = (sample - sqrt_a_t * x0) / sqrt_b_t
    else:  # v_prediction (check_stream_scheduler refused anything else)
        x0 = sqrt_a_t * sample - sqrt_b_t * output
        eps = sqrt_a_t * output + sqrt_b_t * sample
    # Clip or threshold predicted x0 (step() 4); _threshold_sample works per row of a batch.
    if config.thresholding:
        x0 = scheduler._threshold_sample(x0)
    elif config.clip_sample:
        x0 = x0.clamp(-config.clip_sample_range, config.clip_sample_range)
    # step() 6 and 7.
    prev = sqrt_a_prev * x0 + sqrt_b_prev * eps
    return prev.to(x.dtype)


def _stream_batch(pipe, timer, job: JobInputs) -> list:
    """Stream Batch denoising with a vectorised DDIM (eta = 0) update; txt2img. The stream engine
    (generator/engine.py) under this mode's admission rule: one request joins per UNet call while
    fewer than `steps` are in flight."""
    from .engine import StreamEngine

    # 1. The engine refuses an unsupported pipeline or scheduler before any work.
    engine = StreamEngine(pipe, height=job.height, width=job.width, steps=job.steps, guidance=job.guidance)
    # 2. Every prompt encoded once, each request's initial noise drawn from its own seed.
    ids = list(range(len(job.prompts)))
    engine.add(ids, job.prompts, job.seeds)
    # 3. Denoise: one request enters per UNet call; every active request advances one step.
    waiting, active, call_index = list(ids), [], 0
    while waiting or active:
        if waiting and len(active) < job.steps:
            active.append(waiting.pop(0))
        t = engine.step(active)
        active = [r for r in active if not engine.is_done(r)]
        timer.on_step_end(pipe, call_index, t if t.numel() == 1 else torch.tensor([]), {})
        call_index += 1
    # 4. Decode all finished latents together, as the static pipeline does.
    return engine.finish(ids)

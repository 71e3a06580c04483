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


def _ddim_coefficients(scheduler, alphas: torch.Tensor, timesteps: torch.Tensor, dtype: torch.dtype):
    """Per-row alpha-bar at t and at the previous timestep, as DDIMScheduler.step computes them,
    shaped (rows, 1, 1, 1) to scale a batch of latents. `alphas` is the scheduler's alphas_cumprod
    on the timesteps' device."""
    prev = timesteps - scheduler.config.num_train_timesteps // scheduler.num_inference_steps
    a_t = alphas[timesteps]
    a_prev = torch.where(prev >= 0, alphas[prev.clamp(min=0)], scheduler.final_alpha_cumprod.to(alphas.device))
    return a_t.view(-1, 1, 1, 1).to(dtype), a_prev.view(-1, 1, 1, 1).to(dtype)


@torch.no_grad()
def _stream_batch(pipe, timer, job: JobInputs) -> list:
    """Stream Batch denoising with a vectorised DDIM (eta = 0) update; txt2img."""
    from diffusers import DDIMScheduler
    from diffusers.utils.torch_utils import randn_tensor

    scheduler = pipe.scheduler
    if not isinstance(scheduler, DDIMScheduler):
        raise ValueError(f"stream mode needs a DDIM scheduler, got {type(scheduler).__name__}")
    device, dtype = pipe.unet.device, pipe.unet.dtype
    count, cfg = len(job.prompts), job.guidance > 1.0
    # 1. Encode every prompt once (and the empty prompt for guidance).
    embeds, negative = pipe.encode_prompt(job.prompts, device, 1, cfg)
    # 2. Timesteps, and each request's initial noise from its own seed (as the pipeline draws it).
    scheduler.set_timesteps(job.steps, device=device)
    timesteps = scheduler.timesteps
    alphas = scheduler.alphas_cumprod.to(device)
    shape = (1, pipe.unet.config.in_channels, job.height // pipe.vae_scale_factor,
             job.width // pipe.vae_scale_factor)
    latents = [randn_tensor(shape, generator=g, device=device, dtype=dtype) * scheduler.init_noise_sigma
               for g in _generators(job.seeds)]
    step_of = [0] * count                                # next step of each request
    waiting, active, call_index = list(range(count)), [], 0
    # 3. Denoise: one request enters per UNet call; every active request advances one step.
    while waiting or active:
        if waiting and len(active) < job.steps:
            active.append(waiting.pop(0))
        x = torch.cat([latents[r] for r in active])
        t = timesteps[[step_of[r] for r in active]]
        cond = embeds[active]
        if cfg:
            model_in, t_in = torch.cat([x, x]), torch.cat([t, t])
            cond = torch.cat([negative[active], cond])
        else:
            model_in, t_in = x, t
        out = pipe.unet(model_in, t_in, encoder_hidden_states=cond, return_dict=False)[0]
        if cfg:
            uncond, text = out.chunk(2)
            out = uncond + job.guidance * (text - uncond)
        # Vectorised DDIM update, one alpha pair per row.
        a_t, a_prev = _ddim_coefficients(scheduler, alphas, t, dtype)
        if scheduler.config.prediction_type == "v_prediction":
            x0 = a_t.sqrt() * x - (1 - a_t).sqrt() * out
            eps = a_t.sqrt() * out + (1 - a_t).sqrt() * x
        else:
            x0 = (x - (1 - a_t).sqrt() * out) / a_t.sqrt()
            eps = out
        x = a_prev.sqrt() * x0 + (1 - a_prev).sqrt() * eps
        for row, r in enumerate(active):
            latents[r] = x[row: row + 1]
            step_of[r] += 1
        active = [r for r in active if step_of[r] < job.steps]
        timer.on_step_end(pipe, call_index, t if t.numel() == 1 else torch.tensor([]), {})
        call_index += 1
    # 4. Decode all finished latents together, as the static pipeline does.
    decoded = pipe.vae.decode(torch.cat(latents) / pipe.vae.config.scaling_factor, return_dict=False)[0]
    return pipe.image_processor.postprocess(decoded, output_type="pil", do_denormalize=[True] * count)

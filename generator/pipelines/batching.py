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

import functools
import inspect
from dataclasses import dataclass

import torch

from generator.measure.timing import CallTiming, PipelineTimer
from generator.pipelines.stream import StreamEngine, generators

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
        images = pipeline_call(pipe, timer, job, range(len(job.prompts)))
        return images, timer.end()
    if mode == "sequential":
        images, calls = [], []
        for i in range(len(job.prompts)):
            timer.begin()
            images += pipeline_call(pipe, timer, job, [i])
            calls.append(timer.end())
        return images, CallTiming.merge(calls)
    if mode == "stream":
        timer.begin()
        images = _stream_batch(pipe, timer, job)
        return images, timer.end()
    raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")


def pipeline_call(pipe, timer, job: JobInputs, rows) -> list:
    """One diffusers pipeline call for the images `rows` of the job."""
    rows = list(rows)
    kwargs = dict(
        prompt=[job.prompts[i] for i in rows],
        height=job.height,
        width=job.width,
        num_inference_steps=job.steps,
        guidance_scale=job.guidance,
        generator=generators([job.seeds[i] for i in rows]),
        output_type="pil",
    )
    if _takes_step_end(type(pipe)):
        kwargs.update(callback_on_step_end=timer.on_step_end)
    else:  # PixArtAlphaPipeline: the older per-step callback; sizes as asked (no aspect-ratio binning), captions as given
        kwargs.update(callback=lambda step, t, latents: timer.on_step_end(pipe, step, t, {}),
                      use_resolution_binning=False, clean_caption=False)
    if job.task == "inpaint":
        # One picture for every prompt; one mask per image (the pipeline takes a list).
        kwargs.update(image=[job.image] * len(rows), mask_image=[job.masks[i] for i in rows])
    return pipe(**kwargs).images


@functools.cache
def _takes_step_end(pipeline_class) -> bool:
    """Whether a pipeline class takes diffusers' `callback_on_step_end` (read once per class, outside any job's time)."""
    return "callback_on_step_end" in inspect.signature(pipeline_class.__call__).parameters


def _stream_batch(pipe, timer, job: JobInputs) -> list:
    """Stream Batch denoising with a vectorised DDIM (eta = 0) update; txt2img. The stream engine
    (generator/pipelines/stream.py) under this mode's admission rule: one request joins per UNet call while
    fewer than `steps` are in flight."""
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

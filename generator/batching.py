"""Execution modes. Static batch: one pipeline call generates the whole batch."""

from __future__ import annotations

import torch

MODES = ("static",)


def run_static(pipe, *, task: str, prompts: list[str], seeds: list[int], height: int, width: int,
               steps: int, guidance: float, callback, image=None, mask=None):
    """One pipeline call for len(prompts) images; image i is drawn from seeds[i]."""
    # One generator per image: image i is the same whatever batch it is in.
    generators = [torch.Generator(device="cpu").manual_seed(s) for s in seeds]
    kwargs = dict(
        prompt=prompts,
        height=height,
        width=width,
        num_inference_steps=steps,
        guidance_scale=guidance,
        generator=generators,
        callback_on_step_end=callback,
        output_type="pil",
    )
    if task == "inpaint":
        # One picture and mask, broadcast by the pipeline to every prompt in the batch.
        kwargs.update(image=image, mask_image=mask)
    return pipe(**kwargs).images

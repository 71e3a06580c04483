"""Stream Batch (arXiv 2312.12491) on a diffusers pipeline: step-level continuous batching as state.

- `generators`: one torch.Generator per image, seeded with its seed, so an image depends only on its
  prompt and seed whatever batch or mode it runs in (every way of calling a pipeline draws noise this way).
- `ddim_update`: one vectorised deterministic DDIM step for rows at different timesteps; `check_stream_scheduler`
  refuses a scheduler whose step() it does not reproduce.
- `StreamEngine`: each request's latent, next step and text embeddings by request id. Requests join at any
  step boundary, one UNet call carries every chosen request at its own timestep (twice the rows with
  classifier-free guidance), `ddim_update` advances all of them, and the ones done are decoded together and
  leave. batching's stream mode and the server's stream policy (generator/serve/engine.py) run it.
"""

from __future__ import annotations

import copy

import torch


def generators(seeds) -> list[torch.Generator]:
    # One generator per image: image i is the same whatever batch or mode it is in.
    return [torch.Generator(device="cpu").manual_seed(s) for s in seeds]


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


def check_stream_pipeline(pipe) -> None:
    """Refuse, naming it, a pipeline the stream engine cannot run: one without text (the LDM inpainting
    pipeline), one whose UNet needs added conditioning (SDXL), or one without a supported DDIM scheduler."""
    name = type(pipe).__name__
    if not callable(getattr(pipe, "encode_prompt", None)):
        raise ValueError(f"the stream policy needs a text pipeline (one with encode_prompt), got {name}")
    extra = getattr(pipe.unet.config, "addition_embed_type", None)
    if extra is not None:
        raise ValueError(f"the stream policy runs Stable Diffusion-shaped pipelines; {name} needs added "
                         f"conditioning (addition_embed_type {extra!r})")
    check_stream_scheduler(pipe.scheduler)


class StreamEngine:
    """Requests in flight under Stream Batch, by request id: latent, steps done, prompt embeddings.

    `add` admits requests (encoding their prompts together and drawing their initial noise), `step` runs
    one UNet call over the chosen ones, each at its own next timestep, `finish` decodes requests that did
    every step and drops them. The engine keeps its own copy of the pipeline's scheduler, so a static
    pipeline call on the same pipeline between steps changes nothing here.
    """

    def __init__(self, pipe, *, height: int, width: int, steps: int, guidance: float):
        # 1. Refuse what the engine cannot run, before any work.
        check_stream_pipeline(pipe)
        factor = pipe.vae_scale_factor
        if height < factor or width < factor or height % factor or width % factor:
            raise ValueError(f"height and width must be positive multiples of {factor}, got {height}x{width}")
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        # 2. The schedule, on a private scheduler.
        self.pipe, self.steps, self.guidance = pipe, steps, guidance
        self.cfg = guidance > 1.0
        self.device, self.dtype = pipe.unet.device, pipe.unet.dtype
        self.scheduler = copy.deepcopy(pipe.scheduler)
        self.scheduler.set_timesteps(steps, device=self.device)
        self.timesteps = self.scheduler.timesteps
        self._alphas = self.scheduler.alphas_cumprod.to(self.device)
        self._shape = (1, pipe.unet.config.in_channels, height // factor, width // factor)
        # 3. Per request id: latent (1, C, h, w), steps done, (text, empty-prompt) embeddings.
        self._latents: dict = {}
        self._done: dict = {}
        self._embeds: dict = {}

    def __contains__(self, rid) -> bool:
        return rid in self._latents

    def __len__(self) -> int:
        return len(self._latents)

    def steps_done(self, rid) -> int:
        self._known([rid])
        return self._done[rid]

    def is_done(self, rid) -> bool:
        return self.steps_done(rid) >= self.steps

    def _known(self, ids) -> None:
        for rid in ids:
            if rid not in self._latents:
                raise ValueError(f"request {rid!r} is not in the stream engine")

    @torch.no_grad()
    def add(self, ids, prompts, seeds) -> None:
        """Admit requests: their prompts encoded in one call (with the empty prompt for guidance), each
        initial latent drawn from its own seed as the pipeline draws it."""
        from diffusers.utils.torch_utils import randn_tensor

        ids, prompts, seeds = list(ids), list(prompts), list(seeds)
        if not len(ids) == len(prompts) == len(seeds):
            raise ValueError(f"one prompt and one seed per request: {len(ids)} ids, {len(prompts)} prompts, "
                             f"{len(seeds)} seeds")
        if not ids:
            return
        again = [rid for rid in ids if rid in self._latents] or [rid for rid in ids if ids.count(rid) > 1]
        if again:
            raise ValueError(f"request {again[0]!r} is already in the stream engine")
        embeds, negative = self.pipe.encode_prompt(prompts, self.device, 1, self.cfg)
        for row, (rid, generator) in enumerate(zip(ids, generators(seeds))):
            noise = randn_tensor(self._shape, generator=generator, device=self.device, dtype=self.dtype)
            self._latents[rid] = noise * self.scheduler.init_noise_sigma
            self._done[rid] = 0
            self._embeds[rid] = (embeds[row: row + 1], negative[row: row + 1] if self.cfg else None)

    @torch.no_grad()
    def step(self, ids) -> torch.Tensor:
        """One UNet call over the requests `ids`, each at its own next timestep, and the DDIM update of
        every row; returns the timesteps the rows were at."""
        ids = list(ids)
        if not ids:
            raise ValueError("a stream step needs at least one request, got none")
        self._known(ids)
        if len(set(ids)) < len(ids):
            raise ValueError(f"a request may be in a stream step once, got ids {ids}")
        over = [rid for rid in ids if self._done[rid] >= self.steps]
        if over:
            raise ValueError(f"request {over[0]!r} has done all its {self.steps} steps")
        # 1. The rows: latents, timesteps and conditioning (the empty prompt's first, with guidance).
        x = torch.cat([self._latents[rid] for rid in ids])
        t = self.timesteps[[self._done[rid] for rid in ids]]
        cond = torch.cat([self._embeds[rid][0] for rid in ids])
        if self.cfg:
            negative = torch.cat([self._embeds[rid][1] for rid in ids])
            model_in, t_in, cond = torch.cat([x, x]), torch.cat([t, t]), torch.cat([negative, cond])
        else:
            model_in, t_in = x, t
        # 2. One UNet call, guidance, and the vectorised DDIM update, each row at its own timestep.
        out = self.pipe.unet(model_in, t_in, encoder_hidden_states=cond, return_dict=False)[0]
        if self.cfg:
            uncond, text = out.chunk(2)
            out = uncond + self.guidance * (text - uncond)
        x = ddim_update(self.scheduler, self._alphas, x, out, t)
        for row, rid in enumerate(ids):
            self._latents[rid] = x[row: row + 1]
            self._done[rid] += 1
        return t

    def drop(self, ids) -> None:
        """Forget requests whatever their steps (a client that went away): their slots are free again."""
        self._known(ids)
        for rid in ids:
            del self._latents[rid], self._done[rid], self._embeds[rid]

    @torch.no_grad()
    def finish(self, ids) -> list:
        """Decode requests that did every step, together (as the static pipeline decodes its batch), and
        drop them; their PIL images, in the order of `ids`."""
        ids = list(ids)
        if not ids:
            return []
        self._known(ids)
        left = [rid for rid in ids if self._done[rid] < self.steps]
        if left:
            rid = left[0]
            raise ValueError(f"request {rid!r} has done {self._done[rid]} of {self.steps} steps; "
                             "only finished requests are decoded")
        pipe = self.pipe
        latents = torch.cat([self._latents[rid] for rid in ids])
        decoded = pipe.vae.decode(latents / pipe.vae.config.scaling_factor, return_dict=False)[0]
        images = pipe.image_processor.postprocess(decoded, output_type="pil", do_denormalize=[True] * len(ids))
        for rid in ids:
            del self._latents[rid], self._done[rid], self._embeds[rid]
        return images

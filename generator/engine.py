"""The server's work on a real pipeline: what `scheduler.serve` runs when the clock is the real one.

`scheduler.py` decides what runs next and is pure; this module does the work on a diffusers pipeline:

- `RealClock`: seconds since the clock was made; waiting for the next arrival sleeps.
- `StreamEngine`: step-level continuous batching (Stream Batch, arXiv 2312.12491) as state: each
  request's latent, next step and text embeddings by request id. Requests join at any step boundary,
  one UNet call carries every chosen request at its own timestep (twice the rows with classifier-free
  guidance), the vectorised DDIM update of batching.ddim_update advances all of them, and the ones done
  are decoded together and leave. batching's stream mode is this engine under its own admission rule.
- `Worker`: the txt2img work of one policy's launches: a whole job is one static pipeline call, a
  stream step is one StreamEngine step and the decode of those it finishes.

A request's image depends only on its prompt and seed: its initial noise comes from its own
torch.Generator seeded with its seed (as batching._generators draws it), whatever it runs with.
"""

from __future__ import annotations

import copy
import time

import torch

from .batching import (
    JobInputs,
    _generators,
    _pipeline_call,
    check_stream_scheduler,
    ddim_update,
)
from .scheduler import Launch, Policy, Request, leaving


class RealClock:
    """The real clock of a server: now() is seconds since the clock was made."""

    def __init__(self):
        self._t0 = time.perf_counter()

    def now(self) -> float:
        return time.perf_counter() - self._t0

    def wait_until(self, t: float) -> None:
        """Sleep until now() >= t (the next arrival, or a batch's deadline)."""
        while (left := t - self.now()) > 0:
            time.sleep(left)


class _NoTimer:
    """A diffusers callback_on_step_end that records nothing (load runs time work units, not steps)."""

    @staticmethod
    def on_step_end(pipe, step_index, timestep, callback_kwargs) -> dict:
        return {}


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
        for row, (rid, generator) in enumerate(zip(ids, _generators(seeds))):
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


class Worker:
    """The txt2img work of the launches of one policy, one image per request: `run(policy, launch)`.

    `prompt_of(request)` and `seed_of(request)` give a request's prompt and seed. A job is one static
    pipeline call for all its requests; a stream step admits the requests new to the engine, runs one
    step of every request in the launch, and decodes those whose last step it was. With `stream=True`
    the stream engine is made (and a pipeline it cannot run refused) at construction; otherwise at the
    first stream step. `keep_images=True` keeps each finished request's PIL image in `images` by id.
    """

    def __init__(self, pipe, *, height: int, width: int, steps: int, guidance: float, prompt_of, seed_of,
                 device: str | torch.device = "cpu", keep_images: bool = False, stream: bool = False):
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        self.pipe, self.height, self.width, self.steps, self.guidance = pipe, height, width, steps, guidance
        self.prompt_of, self.seed_of = prompt_of, seed_of
        self.device = torch.device(device)
        self.keep_images = keep_images
        self.images: dict = {}
        self.engine = self._new_engine() if stream else None

    def _new_engine(self) -> StreamEngine:
        return StreamEngine(self.pipe, height=self.height, width=self.width, steps=self.steps,
                            guidance=self.guidance)

    def run(self, policy: Policy, launch: Launch) -> tuple[Request, ...]:
        """Do one unit of work; return the requests it finished (what scheduler.serve's `run` returns)."""
        for r in launch.requests:
            if r.steps != self.steps:
                raise ValueError(f"request {r.id} asks for {r.steps} steps; this worker runs {self.steps}")
        if launch.kind == "job":
            finished, images = launch.requests, self._job(launch.requests)
        elif launch.kind == "step":
            finished, images = self._step(policy, launch)
        else:
            raise ValueError(f"launch kind must be 'job' or 'step', got {launch.kind!r}")
        self._sync()
        if self.keep_images:
            self.images.update((r.id, image) for r, image in zip(finished, images))
        return finished

    def _job(self, requests) -> list:
        """One static pipeline call for every request of the job."""
        job = JobInputs("txt2img", [self.prompt_of(r) for r in requests], [self.seed_of(r) for r in requests],
                        self.height, self.width, self.steps, self.guidance)
        return _pipeline_call(self.pipe, _NoTimer(), job, range(len(requests)))

    def _step(self, policy: Policy, launch: Launch) -> tuple[tuple[Request, ...], list]:
        """One Stream Batch step of the launch's requests; the requests it finished and their images."""
        # 1. The engine, and the requests new to it (prompts encoded together, noise drawn).
        if self.engine is None:
            self.engine = self._new_engine()
        new = [r for r in launch.requests if r.id not in self.engine]
        self.engine.add([r.id for r in new], [self.prompt_of(r) for r in new], [self.seed_of(r) for r in new])
        # 2. One UNet call over every request of the launch.
        self.engine.step([r.id for r in launch.requests])
        # 3. The policy says who did their last step; those are decoded together and leave the engine.
        finished = leaving(policy, launch)
        return finished, self.engine.finish([r.id for r in finished])

    def _sync(self) -> None:
        """Wait for the device, so the real clock sees the work done."""
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        elif self.device.type == "mps":
            torch.mps.synchronize()

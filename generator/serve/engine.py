"""The server's work on a real pipeline: what `scheduler.serve` runs when the clock is the real one.

`scheduler.py` decides what runs next and is pure; this module does the work on a diffusers pipeline:

- `RealClock`: seconds since the clock was made; waiting for the next arrival sleeps.
- `Worker`: the txt2img work of one policy's launches: a whole job is one static pipeline call, a
  stream step is one StreamEngine step (generator/pipelines/stream.py) and the decode of those it finishes.

A request's image depends only on its prompt and seed: its initial noise comes from its own
torch.Generator seeded with its seed (as stream.generators draws it), whatever it runs with.
"""

from __future__ import annotations

import time

import torch

from generator.pipelines.batching import JobInputs, pipeline_call
from generator.pipelines.stream import StreamEngine
from generator.serve.scheduler import Launch, Policy, Request, leaving


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
        return pipeline_call(self.pipe, _NoTimer(), job, range(len(requests)))

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

"""Per-phase and per-step timing of one pipeline call.

Hooks are plain: the text encoder phase by wrapping `encode_prompt`, the start of
denoising by a forward pre-hook on the UNet, the end of each step through
diffusers' `callback_on_step_end`, and decoding by wrapping `vae.decode`. On CUDA
the clock synchronises the device before reading the time, so a mark means the
GPU work before it has finished; on CPU it is plain perf_counter.
"""

from __future__ import annotations

import time

import torch

PHASES = ("encode_prompt", "prepare", "denoise", "decode", "postprocess")


class Clock:
    """perf_counter, synchronised with the device first when it is a GPU."""

    def __init__(self, device: str | torch.device = "cpu"):
        kind = torch.device(device).type
        self._sync = {"cuda": torch.cuda.synchronize,
                      "mps": getattr(torch, "mps", None) and torch.mps.synchronize}.get(kind)

    def now(self) -> float:
        if self._sync is not None:
            self._sync()
        return time.perf_counter()


class PipelineTimer:
    """Installed once on a pipeline; `begin()` ... `end()` brackets one call."""

    def __init__(self, pipe, clock: Clock):
        self.clock = clock
        self._marks: dict | None = None
        # 1. encode_prompt: wrap the bound method on this instance.
        encode = pipe.encode_prompt

        def timed_encode(*args, **kwargs):
            self._mark_first("encode_start")
            out = encode(*args, **kwargs)
            self._mark_last("encode_end")
            return out

        pipe.encode_prompt = timed_encode
        # 2. Denoising starts with the first UNet call of the job.
        pipe.unet.register_forward_pre_hook(lambda module, args: self._mark_first("denoise_start"))
        # 3. Decoding: wrap the VAE's decode.
        decode = pipe.vae.decode

        def timed_decode(*args, **kwargs):
            self._mark_first("decode_start")
            out = decode(*args, **kwargs)
            self._mark_last("decode_end")
            return out

        pipe.vae.decode = timed_decode

    # -- marks ---------------------------------------------------------------
    def _mark_first(self, name: str) -> None:
        if self._marks is not None and name not in self._marks:
            self._marks[name] = self.clock.now()

    def _mark_last(self, name: str) -> None:
        if self._marks is not None:
            self._marks[name] = self.clock.now()

    def on_step_end(self, pipe, step_index: int, timestep, callback_kwargs: dict) -> dict:
        """diffusers `callback_on_step_end`: marks the end of a denoising step."""
        if self._marks is not None:
            t = float(timestep.item()) if torch.is_tensor(timestep) else float(timestep)
            self._marks["steps"].append((step_index, t, self.clock.now()))
        return {}

    # -- one call ------------------------------------------------------------
    def begin(self) -> None:
        self._marks = {"steps": []}
        self._marks["call_start"] = self.clock.now()

    def end(self) -> tuple[float, list[dict], list[dict]]:
        """Close the call: (wall seconds, phase rows, step rows), times relative to the call start."""
        marks = self._marks
        marks["call_end"] = self.clock.now()
        self._marks = None
        t0 = marks["call_start"]
        steps = marks["steps"]
        last_step_end = steps[-1][2] if steps else marks.get("denoise_start")
        spans = {
            "encode_prompt": (marks.get("encode_start"), marks.get("encode_end")),
            "prepare": (marks.get("encode_end"), marks.get("denoise_start")),
            "denoise": (marks.get("denoise_start"), last_step_end),
            "decode": (marks.get("decode_start"), marks.get("decode_end")),
            "postprocess": (marks.get("decode_end"), marks["call_end"]),
        }
        phases = [
            {"phase": name, "start_s": start - t0, "duration_s": stop - start}
            for name, (start, stop) in spans.items()
            if start is not None and stop is not None
        ]
        step_rows, previous = [], marks.get("denoise_start", t0)
        for index, timestep, stop in steps:
            step_rows.append({"step_index": index, "timestep": timestep,
                              "start_s": previous - t0, "duration_s": stop - previous})
            previous = stop
        return marks["call_end"] - t0, phases, step_rows

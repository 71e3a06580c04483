"""Per-phase and per-step timing of one pipeline call.

Hooks are plain: the text encoder phase by wrapping `encode_prompt` (a pipeline
without text, like the LDM inpainting model, has none), the start of denoising by a
forward pre-hook on the UNet, the end of each step through diffusers'
`callback_on_step_end`, and decoding by wrapping `vae.decode`.

Memory: given a telemetry.PeakMemory, the timer ends a memory window at each phase
boundary, so each phase gets the peak reached while it ran (CUDA's max allocated, or
the process's peak RSS on a CPU); the window from the call's start to the encoder is in
no phase.

Clocks: on CUDA each mark records a CUDA event on the current stream and the
times are read after one synchronize at the end of the call, so marks cost no
synchronisation; on MPS the device is synchronised at each mark; on CPU a mark
is plain perf_counter.
"""

from __future__ import annotations

import time

import torch

class CpuClock:
    """perf_counter marks; `sync` (MPS) is called first when given."""

    def __init__(self, sync=None):
        self._sync = sync

    def now(self):
        if self._sync is not None:
            self._sync()
        return time.perf_counter()

    def finish(self) -> None:
        pass

    @staticmethod
    def seconds(start, stop) -> float:
        return stop - start


class CudaClock:
    """CUDA event marks, read after one synchronize."""

    def now(self):
        event = torch.cuda.Event(enable_timing=True)
        event.record()
        return event

    def finish(self) -> None:
        torch.cuda.synchronize()

    @staticmethod
    def seconds(start, stop) -> float:
        return start.elapsed_time(stop) / 1000.0  # elapsed_time is in milliseconds


def denoiser(pipe):
    """The network a pipeline calls once per denoising step: its UNet, or its transformer (PixArt). The spool
    and the warehouse name it `unet` whichever it is (unet_calls, unet_flops_per_call, the profiler's 'unet' range)."""
    net = getattr(pipe, "unet", None)
    return net if net is not None else pipe.transformer


def clock_for(device: str | torch.device):
    kind = torch.device(device).type
    if kind == "cuda":
        return CudaClock()
    if kind == "mps":
        return CpuClock(sync=torch.mps.synchronize)
    return CpuClock()


# The memory window that ends at a mark belongs to this phase (the one ending at encode_start to none).
PHASE_ENDING_AT = {"encode_end": "encode_prompt", "denoise_start": "prepare", "decode_start": "denoise",
                   "decode_end": "decode", "call_end": "postprocess"}


class PipelineTimer:
    """Installed once on a pipeline; `begin()` ... `end()` brackets one call. `memory` (a
    telemetry.PeakMemory, optional) gives each phase its peak memory."""

    def __init__(self, pipe, clock, memory=None):
        self.clock = clock
        self.memory = memory
        self._marks: dict | None = None
        # 1. encode_prompt: wrap the bound method on this instance (when the pipeline encodes text).
        self._wrapped_encode = hasattr(pipe, "encode_prompt")
        if self._wrapped_encode:
            encode = pipe.encode_prompt

            def timed_encode(*args, **kwargs):
                self._mark_first("encode_start")
                out = encode(*args, **kwargs)
                self._mark_last("encode_end")
                return out

            pipe.encode_prompt = timed_encode
        # 2. Denoising starts with the first UNet call; every UNet call is counted.
        self._pipe = pipe
        self._hook = denoiser(pipe).register_forward_pre_hook(self._on_unet_call)
        # 3. Decoding: wrap the VAE's decode.
        decode = pipe.vae.decode

        def timed_decode(*args, **kwargs):
            self._mark_first("decode_start")
            out = decode(*args, **kwargs)
            self._mark_last("decode_end")
            return out

        pipe.vae.decode = timed_decode

    def remove(self) -> None:
        """Take the hooks out again: the pipeline is as it was before."""
        if self._wrapped_encode:
            del self._pipe.encode_prompt  # the instance attribute; the class method shows again
        del self._pipe.vae.decode
        self._hook.remove()

    # -- marks ---------------------------------------------------------------
    def _mark_first(self, name: str) -> None:
        if self._marks is not None and name not in self._marks:
            self._marks[name] = self.clock.now()
            self._end_window(name)

    def _mark_last(self, name: str) -> None:
        if self._marks is not None:
            self._marks[name] = self.clock.now()
            self._end_window(name)

    def _end_window(self, name: str) -> None:
        """End the memory window at mark `name`: its peak goes to the phase that ends there (the highest,
        when a mark is passed more than once)."""
        if self.memory is None:
            return
        peak, phase = self.memory.mark(), PHASE_ENDING_AT.get(name)
        if phase is not None and peak is not None:
            peaks = self._marks["peaks"]
            peaks[phase] = max(peak, peaks.get(phase, peak))

    def _on_unet_call(self, module, args) -> None:
        if self._marks is not None:
            self._mark_first("denoise_start")
            sample = args[0] if args else None
            self._marks["unet_rows"].append(int(sample.shape[0]) if torch.is_tensor(sample) else 0)

    def on_step_end(self, pipe, step_index: int, timestep, callback_kwargs: dict) -> dict:
        """diffusers `callback_on_step_end`: marks the end of a denoising step."""
        if self._marks is not None:
            if torch.is_tensor(timestep):
                timestep = float(timestep.item()) if timestep.numel() == 1 else None
            self._marks["steps"].append((step_index, timestep, self.clock.now()))
        return {}

    # -- one call ------------------------------------------------------------
    def abandon(self) -> None:
        """Forget a call that failed half-way."""
        self._marks = None

    def begin(self) -> None:
        self._marks = {"steps": [], "unet_rows": [], "peaks": {}}
        if self.memory is not None:
            self.memory.mark()  # what ran before this call is in no phase of it
        self._marks["call_start"] = self.clock.now()

    def end(self) -> "CallTiming":
        """Close the call; times are seconds from the call's start."""
        marks = self._marks
        marks["call_end"] = self.clock.now()
        self._end_window("call_end")
        self._marks = None
        self.clock.finish()
        t0 = marks["call_start"]

        def since(mark):
            return None if mark is None else self.clock.seconds(t0, mark)

        steps = marks["steps"]
        denoise_start = since(marks.get("denoise_start"))
        step_ends = [since(stop) for _, _, stop in steps]
        spans = {
            "encode_prompt": (since(marks.get("encode_start")), since(marks.get("encode_end"))),
            # Without a text encoder (the LDM inpainting model) preparing starts with the call.
            "prepare": (since(marks.get("encode_end")) if self._wrapped_encode else 0.0, denoise_start),
            "denoise": (denoise_start, step_ends[-1] if step_ends else None),
            "decode": (since(marks.get("decode_start")), since(marks.get("decode_end"))),
            "postprocess": (since(marks.get("decode_end")), since(marks["call_end"])),
        }
        peaks = marks["peaks"]
        phases = [{"phase": name, "start_s": start, "duration_s": stop - start, "peak_mem_bytes": peaks.get(name)}
                  for name, (start, stop) in spans.items() if start is not None and stop is not None]
        step_rows, previous = [], denoise_start if denoise_start is not None else 0.0
        rows = marks["unet_rows"]
        for (index, timestep, _), stop in zip(steps, step_ends):
            step_rows.append({"step_index": index, "timestep": timestep, "start_s": previous,
                              "duration_s": stop - previous,
                              "unet_rows": rows[index] if index < len(rows) else None})
            previous = stop
        return CallTiming(since(marks["call_end"]), phases, step_rows, len(rows), sum(rows))


class CallTiming:
    """The timing of one pipeline call (or, merged, of a job made of several calls)."""

    def __init__(self, wall_s: float, phases: list[dict], steps: list[dict], unet_calls: int, unet_rows: int):
        self.wall_s, self.phases, self.steps = wall_s, phases, steps
        self.unet_calls, self.unet_rows = unet_calls, unet_rows

    @staticmethod
    def merge(calls: list["CallTiming"]) -> "CallTiming":
        """Consecutive calls as one job: phase durations add up, a phase's peak memory is the highest of its
        calls', steps keep their call index."""
        offset, phases, steps = 0.0, {}, []
        for call_index, call in enumerate(calls):
            for p in call.phases:
                if p["phase"] in phases:
                    merged = phases[p["phase"]]
                    merged["duration_s"] += p["duration_s"]
                    known = [m for m in (merged.get("peak_mem_bytes"), p.get("peak_mem_bytes")) if m is not None]
                    merged["peak_mem_bytes"] = max(known) if known else None
                else:
                    phases[p["phase"]] = dict(p, start_s=p["start_s"] + offset)
            steps += [dict(s, call_index=call_index, start_s=s["start_s"] + offset) for s in call.steps]
            offset += call.wall_s
        return CallTiming(offset, list(phases.values()), steps,
                          sum(c.unet_calls for c in calls), sum(c.unet_rows for c in calls))

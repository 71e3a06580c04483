"""Operator mix (torch.profiler) and FLOPs (torch.utils.flop_counter) of the UNet.

The UNet's forward is wrapped in a `record_function("unet")` range; each profiled
operator directly under that range is put in one category by its name, with its
inclusive time (CPU time, or device time on CUDA). arXiv 2312.14385 reports
convolution at up to 44% of diffusion UNet time: the dashboard compares.
"""

from __future__ import annotations

import contextlib

import torch

# "overhead" is UNet time outside every operator: Python and framework dispatch (and the
# profiler's own bookkeeping), large for a tiny model on a CPU, small on a busy GPU.
CATEGORIES = ("conv", "attention", "linear", "norm", "elementwise", "other", "overhead")
_RULES = (
    ("attention", ("scaled_dot_product", "attention", "bmm", "baddbmm", "softmax", "flash", "efficient_attention")),
    ("conv", ("conv", "mkldnn_convolution", "cudnn_convolution")),
    ("linear", ("linear", "addmm", "matmul", "mm")),
    ("norm", ("norm",)),
    ("elementwise", ("add", "mul", "sub", "div", "silu", "gelu", "sigmoid", "tanh", "relu", "exp", "pow",
                     "sqrt", "rsqrt", "neg", "cat", "copy_", "to", "clone", "contiguous", "chunk",
                     "split", "upsample", "interpolate", "sin", "cos", "where", "fill_", "zero_")),
)


def categorize(op_name: str) -> str:
    """Category of an aten operator name, e.g. 'aten::conv2d' -> 'conv'."""
    name = op_name.split("::")[-1].lower()
    for category, keys in _RULES:
        if any(key == name or name.startswith(key) or f"_{key}" in name or key in name.split("_")
               for key in keys):
            return category
    return "other"


class UnetRange:
    """Wraps every UNet forward in a profiler range named 'unet' while installed."""

    def __init__(self, unet):
        self._ctx = []
        self._handles = [
            unet.register_forward_pre_hook(self._enter),
            unet.register_forward_hook(self._exit),
        ]

    def _enter(self, module, args):
        ctx = torch.profiler.record_function("unet")
        ctx.__enter__()
        self._ctx.append(ctx)

    def _exit(self, module, args, output):
        self._ctx.pop().__exit__(None, None, None)

    def remove(self):
        for h in self._handles:
            h.remove()


@contextlib.contextmanager
def profile_unet(pipe, device: str):
    """Profile what runs inside; yields a dict that holds the op rows afterwards."""
    activities = [torch.profiler.ProfilerActivity.CPU]
    if torch.device(device).type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    result: dict = {}
    marker = UnetRange(pipe.unet)
    prof = torch.profiler.profile(activities=activities)
    try:
        with _native_stderr_silenced():  # the profiler's start line, written by native code
            prof.__enter__()
        try:
            yield result
        finally:
            with _native_stderr_silenced():
                prof.__exit__(None, None, None)
    finally:
        marker.remove()
    result.update(op_mix(prof, on_device=len(activities) > 1))


@contextlib.contextmanager
def _native_stderr_silenced():
    """Point file descriptor 2 at /dev/null for a moment (native code bypasses sys.stderr)."""
    import os
    import sys

    sys.stderr.flush()
    saved = os.dup(2)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def op_mix(prof, on_device: bool = False) -> dict:
    """{'ops': [category rows], 'unet_s': time inside the 'unet' ranges}."""
    def duration(event) -> float:  # microseconds
        return event.device_time_total if on_device else event.cpu_time_total

    rows = {c: {"category": c, "self_time_s": 0.0, "calls": 0} for c in CATEGORIES}
    unet_s, unet_calls = 0.0, 0
    for event in prof.events():
        if event.name != "unet":
            continue
        unet_calls += 1
        unet_s += (event.device_time_total if on_device else event.cpu_time_total) / 1e6
        for child in event.cpu_children:
            row = rows[categorize(child.name)]
            row["self_time_s"] += duration(child) / 1e6
            row["calls"] += 1
    in_ops = sum(r["self_time_s"] for r in rows.values())
    rows["overhead"]["self_time_s"] = max(unet_s - in_ops, 0.0)
    rows["overhead"]["calls"] = unet_calls
    return {"ops": [r for r in rows.values() if r["calls"]], "unet_s": unet_s, "in_ops_s": in_ops}


def unet_flops_per_row(pipe, height: int, width: int, cfg: bool) -> float:
    """FLOPs of one latent row through the UNet (a batch-1 call; CFG doubles the rows, not this)."""
    from torch.utils.flop_counter import FlopCounterMode

    unet = pipe.unet
    latent = torch.zeros(1, unet.config.in_channels, height // pipe.vae_scale_factor,
                         width // pipe.vae_scale_factor, device=unet.device, dtype=unet.dtype)
    tokens = pipe.tokenizer.model_max_length
    context = torch.zeros(1, tokens, unet.config.cross_attention_dim, device=unet.device, dtype=unet.dtype)
    timestep = torch.tensor([500], device=unet.device)
    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        unet(latent, timestep, encoder_hidden_states=context, return_dict=False)
    return float(counter.get_total_flops())

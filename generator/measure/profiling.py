"""Operator mix (torch.profiler) and FLOPs (torch.utils.flop_counter) of the UNet.

The UNet's forward is wrapped in a `record_function("unet")` range; each profiled
operator directly under that range is put in one category by its name, with its
inclusive time (CPU time, or device time on CUDA). arXiv 2312.14385 reports
convolution at up to 44% of diffusion UNet time: the dashboard compares.

FLOPs come from FlopCounterMode with the attention kernels it lacks added
(`ATTENTION_FLOPS`): without them attention on a CPU counts 0.
"""

from __future__ import annotations

import bisect
import contextlib

import torch

# "overhead" is UNet time outside every operator. On a CPU: Python and framework dispatch
# (and the profiler's own bookkeeping), large for a tiny model. On CUDA: the time the GPU
# sat idle inside a UNet call (launch gaps, waiting for the CPU), which kernel times miss.
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
    """Wraps every UNet forward in a profiler range named 'unet' while installed.

    With `cuda_events`, each call also records a CUDA event at its start and at its end
    (inside the range), on the current stream: `call_times_s()` reads them afterwards.
    """

    def __init__(self, unet, cuda_events: bool = False):
        self._ctx = []
        self._cuda_events = cuda_events
        self._open: list = []  # start events of calls in progress
        self._calls: list = []  # (start, end) events of finished calls
        self._handles = [
            unet.register_forward_pre_hook(self._enter),
            unet.register_forward_hook(self._exit),
        ]

    def _enter(self, module, args):
        ctx = torch.profiler.record_function("unet")
        ctx.__enter__()
        self._ctx.append(ctx)
        if self._cuda_events:
            self._open.append(_cuda_mark())

    def _exit(self, module, args, output):
        if self._cuda_events:
            self._calls.append((self._open.pop(), _cuda_mark()))
        self._ctx.pop().__exit__(None, None, None)

    def call_times_s(self) -> list[float]:
        """Each finished call's time between its two CUDA events, in call order."""
        if self._calls:
            torch.cuda.synchronize()
        return [start.elapsed_time(end) / 1e3 for start, end in self._calls]  # elapsed_time: milliseconds

    def remove(self):
        for h in self._handles:
            h.remove()


def _cuda_mark():
    event = torch.cuda.Event(enable_timing=True)
    event.record()
    return event


@contextlib.contextmanager
def profile_unet(pipe, device: str):
    """Profile what runs inside; yields a dict that holds the op rows afterwards."""
    on_cuda = torch.device(device).type == "cuda"
    activities = [torch.profiler.ProfilerActivity.CPU]
    if on_cuda:
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    result: dict = {}
    marker = UnetRange(pipe.unet, cuda_events=on_cuda)
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
    result.update(op_mix(prof, on_device=on_cuda, call_times_s=marker.call_times_s() if on_cuda else None))


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


def op_mix(prof, on_device: bool = False, call_times_s: list[float] | None = None) -> dict:
    """{'ops': [category rows], 'unet_s': time inside the 'unet' ranges, 'in_ops_s': time in operators}.

    A call is a CPU-side 'unet' event: on CUDA the profiler copies the range onto the GPU
    timeline too (a gpu_user_annotation), which is not a second call. Operator time is CPU
    time, or with `on_device` the kernel time under each operator. Overhead: on a CPU the
    range's time outside every operator; on CUDA, given each call's CUDA-event time
    (`call_times_s`, in call order), the GPU's idle time inside each call, and then
    `unet_s` is the calls' CUDA-event time.
    """
    return mix_of(list(prof.events()), on_device, call_times_s)


def mix_of(events, on_device: bool = False, call_times_s: list[float] | None = None) -> dict:
    """op_mix over a profiler's FunctionEvents."""
    def duration(event) -> float:  # microseconds
        return event.device_time_total if on_device else event.cpu_time_total

    calls = unet_calls(events)
    rows = {c: {"category": c, "self_time_s": 0.0, "calls": 0} for c in CATEGORIES}
    unet_s = 0.0
    for event in calls:
        unet_s += duration(event) / 1e6
        for child in event.cpu_children:
            row = rows[categorize(child.name)]
            row["self_time_s"] += duration(child) / 1e6
            row["calls"] += 1
    in_ops = sum(r["self_time_s"] for r in rows.values())
    if on_device and call_times_s is not None and len(call_times_s) == len(calls):
        unet_s = sum(call_times_s)
        annotations, work = device_timeline(events)
        overhead = sum(idle_time(t, union_length(call_work(call, annotations, work)) / 1e6)
                       for call, t in zip(calls, call_times_s))
    else:
        overhead = max(unet_s - in_ops, 0.0)
    rows["overhead"]["self_time_s"] = overhead
    rows["overhead"]["calls"] = len(calls)
    return {"ops": [r for r in rows.values() if r["calls"]], "unet_s": unet_s, "in_ops_s": in_ops}


def unet_calls(events) -> list:
    """The CPU-side 'unet' events, in start order: one per UNet forward."""
    from torch.autograd import DeviceType

    calls = [e for e in events if e.name == "unet" and e.device_type == DeviceType.CPU]
    return sorted(calls, key=lambda e: e.time_range.start)


def device_timeline(events) -> tuple[dict, dict]:
    """The device-side events: ({(name, id): [(lane, start, end)]} of the range annotations,
    {lane: sorted [(start, end)]} of the work: kernels, copies, sets). A lane is (device, stream); times in us.
    """
    from torch.autograd import DeviceType

    annotations: dict = {}
    work: dict = {}
    for e in events:
        if e.device_type == DeviceType.CPU:
            continue
        lane, start, end = (e.device_index, e.device_resource_id), e.time_range.start, e.time_range.end
        if _is_annotation(e):
            annotations.setdefault((e.name, e.id), []).append((lane, start, end))
        else:
            work.setdefault(lane, []).append((start, end))
    return annotations, {lane: sorted(intervals) for lane, intervals in work.items()}


def call_work(call, annotations: dict, work: dict) -> list[tuple[float, float]]:
    """(start, end) in us of the device work of one CPU-side 'unet' call.

    The profiler (kineto) copies a range onto the GPU timeline as one gpu_user_annotation per
    stream, carrying the CPU range's correlation id and spanning the first to the last kernel
    launched inside the range; a stream runs in order, so the work that starts inside that
    span on that stream is the call's.
    """
    out: list = []
    for lane, start, end in annotations.get((call.name, call.id), ()):
        out += starting_within(work.get(lane, []), start, end)
    return out


def starting_within(intervals: list, lo: float, hi: float) -> list:
    """The (start, end) intervals, sorted by start, whose start lies in [lo, hi]."""
    first = bisect.bisect_left(intervals, (lo, -float("inf")))
    return intervals[first:bisect.bisect_right(intervals, (hi, float("inf")))]


def _is_annotation(event) -> bool:
    return bool(event.is_user_annotation) or event.activity_type == "gpu_user_annotation"


def union_length(intervals) -> float:
    """Total length covered by (start, end) intervals that may overlap or nest: each instant once."""
    total, reach = 0.0, -float("inf")
    for start, end in sorted(intervals):
        if end <= max(start, reach):
            continue
        total += end - max(start, reach)
        reach = end
    return total


def idle_time(call_s: float, busy_s: float) -> float:
    """The part of a call the device spent idle: its time minus its busy time, never below 0."""
    return max(call_s - busy_s, 0.0)


def attention_flops(query_shape, key_shape, value_shape) -> int:
    """Q K^T (2*L*S*E) then P V (2*L*S*Ev) for each leading (batch, head) index of the query.

    q is (..., L, E), k (..., S, E), v (..., S, Ev); grouped-query key/value heads are
    broadcast to the query's. Softmax and scaling are not counted, as in torch's sdpa_flop_count.
    """
    *lead, length, e = query_shape
    s, ev = key_shape[-2], value_shape[-1]
    return 2 * _prod(lead) * length * s * (e + ev)


def attention_backward_flops(grad_out_shape, query_shape, key_shape, value_shape) -> int:
    """The backward as torch's sdpa_backward_flop_count: Q K^T again, dP = dO V^T, dV = P^T dO,
    dQ = dS K and dK = dS^T Q: 2*L*S*(3E + 2Ev) per leading index of the query."""
    *lead, length, e = query_shape
    s, ev = key_shape[-2], value_shape[-1]
    return 2 * _prod(lead) * length * s * (3 * e + 2 * ev)


def _prod(sizes) -> int:
    out = 1
    for size in sizes:
        out *= size
    return out


def _forward_formula(query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return attention_flops(query_shape, key_shape, value_shape)


def _backward_formula(grad_out_shape, query_shape, key_shape, value_shape, *args, out_shape=None, **kwargs) -> int:
    return attention_backward_flops(grad_out_shape, query_shape, key_shape, value_shape)


def _missing_attention_formulas() -> dict:
    """The fused attention kernels FlopCounterMode has no formula for, each mapped to ours.

    In torch 2.13 it counts the CUDA ones (_scaled_dot_product_{flash,efficient,cudnn}_attention
    and their backwards, _flash_attention_* and _efficient_attention_*) but not these, which
    then count 0: the CPU's flash kernel, MPS's attention, and the one XPU and out-of-tree
    backends override. A kernel torch has since learned keeps torch's formula.
    """
    from torch.utils.flop_counter import flop_registry

    ours = {
        "_scaled_dot_product_flash_attention_for_cpu": _forward_formula,
        "_scaled_dot_product_flash_attention_for_cpu_backward": _backward_formula,
        "_scaled_dot_product_attention_math_for_mps": _forward_formula,
        "_scaled_dot_product_fused_attention_overrideable": _forward_formula,
        "_scaled_dot_product_fused_attention_overrideable_backward": _backward_formula,
    }
    ops = {getattr(torch.ops.aten, name): f for name, f in ours.items() if hasattr(torch.ops.aten, name)}
    return {op: f for op, f in ops.items() if op not in flop_registry}


ATTENTION_FLOPS = _missing_attention_formulas()


def flop_counter():
    """A FlopCounterMode that also counts attention on every device (ATTENTION_FLOPS)."""
    from torch.utils.flop_counter import FlopCounterMode

    return FlopCounterMode(display=False, custom_mapping=ATTENTION_FLOPS)


def unet_flops_per_row(pipe, height: int, width: int, cfg: bool) -> float:
    """FLOPs of one latent row through the UNet (a batch-1 call; CFG doubles the rows, not this).

    Counted by `flop_counter()`: torch's formulas (2 per multiply-add of convolutions, matrix
    products and attention) with the attention kernels torch lacks added.
    """
    unet = pipe.unet
    latent = torch.zeros(1, unet.config.in_channels, height // pipe.vae_scale_factor,
                         width // pipe.vae_scale_factor, device=unet.device, dtype=unet.dtype)
    timestep = torch.tensor([500], device=unet.device)
    kwargs = {}
    if unet.config.get("cross_attention_dim") is not None:  # an unconditional UNet (UNet2DModel) has no text
        tokens = pipe.tokenizer.model_max_length
        kwargs["encoder_hidden_states"] = torch.zeros(1, tokens, unet.config.cross_attention_dim,
                                                      device=unet.device, dtype=unet.dtype)
    counter = flop_counter()
    with torch.no_grad(), counter:
        unet(latent, timestep, return_dict=False, **kwargs)
    return float(counter.get_total_flops())

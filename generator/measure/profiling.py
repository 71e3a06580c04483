"""Operator mix (torch.profiler) and FLOPs (torch.utils.flop_counter) of the UNet.

The UNet's forward is wrapped in a `record_function("unet")` range; each profiled
operator directly under that range is put in one category by its name, with its
inclusive time (CPU time, or device time on CUDA). arXiv 2312.14385 reports
convolution at up to 44% of diffusion UNet time: the dashboard compares.

FLOPs come from FlopCounterMode with the attention kernels it lacks added
(`ATTENTION_FLOPS`): without them attention on a CPU counts 0.

Attention is also read call by call (`attention_calls`): each scaled_dot_product_attention under the range,
by its query and key lengths (tokens: a UNet's levels work at different latent sizes, arXiv 2312.14385 sees
the length vary up to 4x inside one model) and the kernel PyTorch ran for it (the operator beneath it:
the CPU's flash kernel, CUDA's flash, memory-efficient or cuDNN kernel, or the plain math path).
"""

from __future__ import annotations

import bisect
import contextlib

import torch

from generator.measure.timing import denoiser

# "overhead" is UNet time outside every operator. On a CPU: Python and framework dispatch
# (and the profiler's own bookkeeping), large for a tiny model. On CUDA: the time the GPU
# sat idle inside a UNet call (launch gaps, waiting for the CPU), which kernel times miss.
# "layout" is moving data without arithmetic: views, reshapes, copies, concatenation, new tensors (a transformer
# reshapes between patches and heads at every layer; PixArt also rebuilds its position table each call off its
# sample size).
CATEGORIES = ("conv", "attention", "linear", "norm", "elementwise", "layout", "other", "overhead")
_LAYOUT = frozenset((
    "view", "reshape", "_reshape_alias", "transpose", "permute", "slice", "select", "squeeze", "unsqueeze", "flatten",
    "unflatten", "expand", "expand_as", "stack", "cat", "concat", "concatenate", "repeat", "repeat_interleave",
    "arange", "linspace", "meshgrid", "narrow", "t", "contiguous", "clone", "copy_", "chunk", "split",
    "split_with_sizes", "unbind", "empty", "empty_like", "empty_strided", "zeros", "zeros_like", "ones", "ones_like",
    "full", "full_like", "as_strided", "detach", "alias", "lift_fresh", "to", "_to_copy", "index_select", "gather",
    "pad", "constant_pad_nd", "roll", "flip",
))
_RULES = (
    ("attention", ("scaled_dot_product", "attention", "bmm", "baddbmm", "softmax", "flash", "efficient_attention")),
    ("conv", ("conv", "mkldnn_convolution", "cudnn_convolution")),
    ("linear", ("linear", "addmm", "matmul", "mm", "einsum")),
    ("norm", ("norm",)),
    ("elementwise", ("add", "mul", "sub", "rsub", "div", "silu", "gelu", "sigmoid", "tanh", "relu", "exp", "pow",
                     "sqrt", "rsqrt", "reciprocal", "neg", "outer", "dropout", "upsample", "interpolate", "sin",
                     "cos", "where", "fill_", "zero_", "clamp", "abs", "mean", "sum")),
)


def categorize(op_name: str) -> str:
    """Category of an aten operator name, e.g. 'aten::conv2d' -> 'conv'."""
    name = op_name.split("::")[-1].lower()
    if name in _LAYOUT:
        return "layout"
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
    marker = UnetRange(denoiser(pipe), cuda_events=on_cuda)
    prof = torch.profiler.profile(activities=activities, record_shapes=True)  # shapes: attention_calls
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
    return {"ops": [r for r in rows.values() if r["calls"]], "unet_s": unet_s, "in_ops_s": in_ops,
            "attention": attention_calls(calls, on_device)}


SDPA = "aten::scaled_dot_product_attention"


def attention_calls(calls, on_device: bool = False) -> list[dict]:
    """Rows of the attention calls inside the 'unet' events `calls`, one per (query tokens, key tokens, heads,
    head width, kernel): calls, time_s (CPU time, or device time with `on_device`) and flops (attention_flops).
    The kernel is the operator PyTorch ran beneath scaled_dot_product_attention; the call's own name where
    nothing ran beneath it (a profile without that detail)."""
    rows: dict = {}
    for call in calls:
        for event in _descendants(call, SDPA):
            shapes = list(event.input_shapes or [])[:3]
            if len(shapes) < 3 or any(len(s) < 2 for s in shapes):
                continue
            query, key, value = shapes
            kernel = event.cpu_children[0].name if event.cpu_children else event.name
            heads = query[-3] if len(query) >= 3 else 1
            row = rows.setdefault((query[-2], key[-2], heads, query[-1], kernel), {
                "query_tokens": query[-2], "key_tokens": key[-2], "heads": heads, "head_dim": query[-1],
                "kernel": kernel, "calls": 0, "time_s": 0.0, "flops": 0.0})
            row["calls"] += 1
            row["time_s"] += (event.device_time_total if on_device else event.cpu_time_total) / 1e6
            row["flops"] += float(attention_flops(query, key, value))
    return list(rows.values())


def _descendants(event, name: str):
    """The events named `name` beneath `event`, not looking inside one found."""
    for child in event.cpu_children:
        if child.name == name:
            yield child
        else:
            yield from _descendants(child, name)


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
    """FLOPs of one latent row through the UNet, or the transformer (a batch-1 call; CFG doubles the rows, not this).

    Counted by `flop_counter()`: torch's formulas (2 per multiply-add of convolutions, matrix
    products and attention) with the attention kernels torch lacks added.
    """
    net = denoiser(pipe)
    latent = torch.zeros(1, net.config.in_channels, height // pipe.vae_scale_factor,
                         width // pipe.vae_scale_factor, device=net.device, dtype=net.dtype)
    timestep = torch.tensor([500], device=net.device)
    kwargs = {}
    if net.config.get("caption_channels") is not None:  # PixArt: T5 caption features, and its size conditioning
        kwargs["encoder_hidden_states"] = torch.zeros(1, pipe.tokenizer.model_max_length, net.config.caption_channels,
                                                      device=net.device, dtype=net.dtype)
        size = torch.tensor([[height, width]], device=net.device, dtype=net.dtype)
        kwargs["added_cond_kwargs"] = ({"resolution": size, "aspect_ratio": size[:, :1] / size[:, 1:]}
                                       if net.use_additional_conditions else {"resolution": None, "aspect_ratio": None})
    elif net.config.get("cross_attention_dim") is not None:  # an unconditional UNet (UNet2DModel) has no text
        tokens = pipe.tokenizer.model_max_length
        kwargs["encoder_hidden_states"] = torch.zeros(1, tokens, net.config.cross_attention_dim,
                                                      device=net.device, dtype=net.dtype)
    counter = flop_counter()
    with torch.no_grad(), counter:
        net(latent, timestep=timestep, return_dict=False, **kwargs)
    return float(counter.get_total_flops())

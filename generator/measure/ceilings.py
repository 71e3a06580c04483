"""Measured ceilings: the best rate this device reaches, in the run's dtype, beside the datasheet.

An empirical roofline measures its roofs instead of reading them from a datasheet:
here a square matrix product (the compute roof of dense algebra), a 3x3 convolution
of UNet-like shape (the compute roof the UNet's dominant operator actually reaches)
and a large copy (the memory roof). Each figure is the best (max) rate over a few
repetitions after one warm-up, so it is an achievable ceiling, not an average. The
generator measures them once per image size, before its first job (every run of that size
shares them).

Sizes grow along a short ladder until one run takes `grow_until_s`: a slow path
(float16 on a CPU without half-precision units runs a 1024 product at about 1 GFLOP/s)
then stops small, so the whole measurement stays well under a second on a 2-core CPU.
A dtype the device cannot run gives None for that figure, never an exception.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import time

import torch

KEYS = ("ceiling_matmul_flops", "ceiling_conv_flops", "ceiling_copy_bytes_per_s")  # warehouse run columns
DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
MIB = 2**20


# FLOP and byte counts, shared by the timing below and by the tests.
def matmul_flops(n: int) -> int:
    """An n x n by n x n product: n^2 outputs, each n multiplies and n adds: 2 n^3."""
    return 2 * n**3


def conv2d_flops(batch: int, c_in: int, c_out: int, h_out: int, w_out: int, kernel: int) -> int:
    """A k x k convolution: each of N*Cout*Hout*Wout outputs takes Cin*k*k multiply-adds (2 FLOPs each)."""
    return 2 * batch * c_out * h_out * w_out * c_in * kernel * kernel


def copy_bytes(numel: int, element_size: int) -> int:
    """A copy reads every byte once and writes it once."""
    return 2 * numel * element_size


@dataclasses.dataclass(frozen=True)
class Plan:
    """What one device type measures."""

    matmul_sizes: tuple[int, ...]  # n of the square product, tried in order
    conv_sizes: tuple[int, ...]  # H = W of the convolution's input, tried in order
    conv_channels: int  # Cin = Cout, batch 1, 3x3, padding 1 (Hout = H)
    copy_mib: int  # size of the copied tensor
    repeats: int  # timed runs after the warm-up, at most
    grow_until_s: float  # stop growing a size once one run takes this long
    budget_s: float  # stop repeating once the timed runs of one figure took this long


# 320 channels at 64x64 is the first block of an SD 1.x UNet at 512 px.
PLANS = {
    "cpu": Plan((256, 512, 1024), (16, 32), 128, 64, repeats=3, grow_until_s=0.01, budget_s=0.1),
    "mps": Plan((1024, 2048, 4096), (32, 64), 320, 256, repeats=5, grow_until_s=0.02, budget_s=0.2),
    "cuda": Plan((2048, 4096, 8192), (32, 64), 320, 1024, repeats=5, grow_until_s=0.02, budget_s=0.2),
}


def measure_ceilings(device: str, dtype: str) -> dict:
    """{'ceiling_matmul_flops', 'ceiling_conv_flops', 'ceiling_copy_bytes_per_s'}: best rates on `device`.

    Each value is a float, or None where the device cannot run that operation in `dtype`.
    """
    # 1. Check the arguments: a device this machine has, a dtype the project knows.
    dev = _device(device)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    plan, dt, run = PLANS[dev.type], DTYPES[dtype], timer_for(dev)
    # 2. Measure each figure on its own: a failure leaves the others.
    with _on(dev):
        result = {
            "ceiling_matmul_flops": rate_or_none(lambda: _matmul(plan, dev, dt, run)),
            "ceiling_conv_flops": rate_or_none(lambda: _conv(plan, dev, dt, run)),
            "ceiling_copy_bytes_per_s": rate_or_none(lambda: _copy(plan, dev, dt, run)),
        }
    # 3. Hand the measurement's memory back, so that the run's memory figures start clean.
    if dev.type == "cuda":
        torch.cuda.empty_cache()
    elif dev.type == "mps":
        torch.mps.empty_cache()
    return result


def _device(device: str) -> torch.device:
    """The torch device of `device`, or a ValueError naming it."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"unknown device {device!r}: expected one of {', '.join(PLANS)}") from None
    if dev.type not in PLANS:
        raise ValueError(f"no ceilings for device {device!r}: expected one of {', '.join(PLANS)}")
    available = {"cpu": True, "cuda": torch.cuda.is_available(), "mps": torch.backends.mps.is_available()}
    if not available[dev.type]:
        raise ValueError(f"device {device!r} is not available on this machine")
    return dev


def _on(dev: torch.device):
    """Make `dev` the current CUDA device while measuring (events record on its stream)."""
    if dev.type == "cuda":
        return torch.cuda.device(dev)
    return contextlib.nullcontext()


def timer_for(dev: torch.device):
    """run(fn) -> seconds that fn took on `dev`'s clock."""
    if dev.type == "cuda":
        def run(fn) -> float:
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1e3  # elapsed_time is in milliseconds
    elif dev.type == "mps":
        def run(fn) -> float:
            torch.mps.synchronize()
            t0 = time.perf_counter()
            fn()
            torch.mps.synchronize()
            return time.perf_counter() - t0
    else:
        def run(fn) -> float:
            t0 = time.perf_counter()
            fn()
            return time.perf_counter() - t0
    return run


def rate_or_none(measure) -> float | None:
    """measure(), or None where the device cannot run it (unsupported dtype, out of memory)."""
    try:
        rate = measure()
    except (RuntimeError, NotImplementedError):  # torch.OutOfMemoryError is a RuntimeError
        return None
    return rate if rate is not None and math.isfinite(rate) and rate > 0 else None


def best_rate(run, fn, work: float, repeats: int, budget_s: float) -> float | None:
    """work / the shortest of up to `repeats` timed runs of fn (fn has been warmed up)."""
    best, spent = math.inf, 0.0
    for _ in range(repeats):
        seconds = run(fn)
        best, spent = min(best, seconds), spent + seconds
        if spent >= budget_s:
            break
    return work / best if 0 < best < math.inf else None


def grown(sizes, attempt, run, grow_until_s: float):
    """Run attempt(size) along `sizes` until one run takes grow_until_s; return (size, fn) of the last.

    attempt(size) returns the function to time; its run here is that size's warm-up.
    """
    for size in sizes:
        fn = attempt(size)
        if run(fn) >= grow_until_s:
            break
    return size, fn


def _filled(shape, dev, dt):
    """A tensor of `shape` with values in [-1, 1), from a private generator (the run's RNG stays as it was)."""
    g = torch.Generator(device=dev).manual_seed(0)
    return (torch.rand(shape, generator=g, device=dev) * 2 - 1).to(dt)


def _matmul(plan: Plan, dev, dt, run) -> float | None:
    def attempt(n):
        a, b, c = _filled((n, n), dev, dt), _filled((n, n), dev, dt), torch.empty((n, n), device=dev, dtype=dt)
        return lambda: torch.mm(a, b, out=c)

    n, fn = grown(plan.matmul_sizes, attempt, run, plan.grow_until_s)
    return best_rate(run, fn, matmul_flops(n), plan.repeats, plan.budget_s)


def _conv(plan: Plan, dev, dt, run) -> float | None:
    c = plan.conv_channels

    def attempt(h):
        x, w = _filled((1, c, h, h), dev, dt), _filled((c, c, 3, 3), dev, dt) * 0.05
        return lambda: torch.nn.functional.conv2d(x, w, padding=1)

    with torch.no_grad():
        h, fn = grown(plan.conv_sizes, attempt, run, plan.grow_until_s)
        return best_rate(run, fn, conv2d_flops(1, c, c, h, h, 3), plan.repeats, plan.budget_s)


def _copy(plan: Plan, dev, dt, run) -> float | None:
    numel = plan.copy_mib * MIB // torch.empty((), dtype=dt).element_size()
    src = torch.ones(numel, device=dev, dtype=dt)
    dst = torch.empty_like(src)
    def fn():
        dst.copy_(src)

    run(fn)  # warm-up: the first touch of dst's pages is not the copy's rate
    return best_rate(run, fn, copy_bytes(numel, src.element_size()), plan.repeats, plan.budget_s)

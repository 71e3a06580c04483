"""Peak FLOP/s of the device, so achieved FLOP/s can be shown as a share of it.

GPU figures are dense (no sparsity) tensor-core peaks for float16/bfloat16 and
plain (non-tensor) float32 peaks, from each vendor datasheet named beside it.
The CPU figure is an estimate: cores x clock x FLOPs per cycle from the vector
units the processor reports.
"""

from __future__ import annotations

import os

TERA = 1e12
# name fragment -> {dtype: FLOP/s}; matched against torch.cuda.get_device_name(), first match wins.
GPU_PEAKS = {
    # NVIDIA H100 SXM5 datasheet: FP32 67 TF, BF16/FP16 tensor 989 TF dense (1979 with sparsity).
    "H100 80GB HBM3": {"float32": 67 * TERA, "float16": 989 * TERA, "bfloat16": 989 * TERA},
    # NVIDIA H200 datasheet (SXM): same compute as H100 SXM: FP32 67 TF, BF16/FP16 989 TF dense.
    "H200": {"float32": 67 * TERA, "float16": 989 * TERA, "bfloat16": 989 * TERA},
    # NVIDIA H100 PCIe datasheet: FP32 51 TF, BF16/FP16 tensor 756 TF dense.
    "H100 PCIe": {"float32": 51 * TERA, "float16": 756 * TERA, "bfloat16": 756 * TERA},
    # NVIDIA A100 datasheet: FP32 19.5 TF, BF16/FP16 tensor 312 TF dense.
    "A100": {"float32": 19.5 * TERA, "float16": 312 * TERA, "bfloat16": 312 * TERA},
    # NVIDIA L4 datasheet: FP32 30.3 TF, FP16 tensor 242 TF with sparsity, so 121 dense.
    "L4": {"float32": 30.3 * TERA, "float16": 121 * TERA, "bfloat16": 121 * TERA},
    # NVIDIA T4 datasheet: FP32 8.1 TF, FP16 tensor 65 TF.
    "T4": {"float32": 8.1 * TERA, "float16": 65 * TERA},
    # NVIDIA V100 SXM2 datasheet: FP32 15.7 TF, FP16 tensor 125 TF.
    "V100": {"float32": 15.7 * TERA, "float16": 125 * TERA},
    # NVIDIA Ada whitepaper, RTX 4090: FP32 82.6 TF, FP16 tensor with FP32 accumulate 165.2 TF dense.
    "RTX 4090": {"float32": 82.6 * TERA, "float16": 165.2 * TERA, "bfloat16": 165.2 * TERA},
}


def gpu_peak(device_name: str, dtype: str) -> tuple[float | None, str]:
    """(FLOP/s or None, where the figure comes from)."""
    for fragment, peaks in GPU_PEAKS.items():
        if fragment.lower() in device_name.lower() and dtype in peaks:
            return peaks[dtype], f"datasheet: {fragment} {dtype}"
    return None, f"no peak figure known for {device_name!r} {dtype}"


def cpu_peak(threads: int) -> tuple[float | None, str]:
    """Estimate float32 FLOP/s: threads x GHz x FLOPs/cycle (AVX-512 64, AVX2+FMA 32, else 16)."""
    try:
        info = open("/proc/cpuinfo", encoding="utf-8").read()
    except OSError:
        return None, "no /proc/cpuinfo: CPU peak unknown"
    flags = next((line.split(":", 1)[1].split() for line in info.splitlines() if line.startswith("flags")), [])
    mhz = [float(line.split(":", 1)[1]) for line in info.splitlines() if line.startswith("cpu MHz")]
    if not mhz:
        return None, "no clock in /proc/cpuinfo: CPU peak unknown"
    per_cycle = 64 if "avx512f" in flags else 32 if {"avx2", "fma"} <= set(flags) else 16
    threads = min(threads, os.cpu_count() or threads)
    peak = threads * max(mhz) * 1e6 * per_cycle
    return peak, f"estimate: {threads} cores x {max(mhz):.0f} MHz x {per_cycle} FP32 FLOPs/cycle"

"""Peak FLOP/s of the device, so achieved FLOP/s can be shown as a share of it.

GPU figures are dense (no sparsity) datasheet peaks, per math mode: plain (non-tensor)
float32, TF32 tensor, and float16/bfloat16 tensor; each entry names the datasheet or
whitepaper it comes from. A card is found by the whole tokens of its name, never by a
fragment, and a card the table does not know has no peak rather than a borrowed one.
The CPU figure is an estimate: cores x clock x FLOPs per cycle from the vector units
the processor reports.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

TERA = 1e12
# The precisions a figure is given for: the run's math mode (metadata.math_mode).
PRECISIONS = ("float32", "tf32", "float16", "bfloat16")
# Tokens of a device name that say nothing about the part: the vendor, the brand, the memory size.
_NOISE = frozenset({"nvidia", "tesla", "geforce"})
_MEMORY_SIZE = re.compile(r"\d+gb")


@dataclass(frozen=True)
class Gpu:
    """One part of the table: the tokens that name it, and its dense peaks in TFLOP/s.

    A device name matches when its tokens, less vendor, brand and memory size, are exactly
    `model` plus one of `marks` (a variant mark such as ("pcie",), or () for none)."""

    part: str                           # the part, as the source string names it
    model: tuple[str, ...]
    marks: tuple[tuple[str, ...], ...]
    tflops: dict                        # precision -> dense TFLOP/s; a missing key: no figure
    source: str                         # the datasheet or whitepaper the figures come from


def _tflops(fp32: float, tf32: float | None = None, fp16: float | None = None,
            bf16: float | None = None) -> dict:
    figures = {"float32": fp32, "tf32": tf32, "float16": fp16, "bfloat16": bf16}
    return {precision: value for precision, value in figures.items() if value is not None}


_H100 = "NVIDIA H100 Tensor Core GPU datasheet"
_H200 = "NVIDIA H200 Tensor Core GPU datasheet"
_V100 = "NVIDIA V100 Tensor Core GPU datasheet"
GPUS = (
    # H100 datasheet, SXM column: FP32 67; TF32 989 and FP16/BF16 1979 with sparsity, so 494.7 and 989.4 dense.
    # CUDA names it "NVIDIA H100 80GB HBM3": no variant mark means the SXM part.
    Gpu("H100 SXM", ("h100",), ((), ("sxm",), ("sxm5",), ("hbm3",)),
        _tflops(67, 494.7, 989.4, 989.4), _H100),
    # H100 datasheet, PCIe column: FP32 51; TF32 756 and FP16/BF16 1513 with sparsity, so 378 and 756 dense.
    Gpu("H100 PCIe", ("h100",), (("pcie",),), _tflops(51, 378, 756, 756), _H100),
    # H100 datasheet, NVL column (per GPU): FP32 60; TF32 835 and FP16/BF16 1671 with sparsity: 417.5, 835.5 dense.
    Gpu("H100 NVL", ("h100",), (("nvl",),), _tflops(60, 417.5, 835.5, 835.5), _H100),
    # H200 datasheet, SXM column: the H100 SXM's compute: FP32 67, TF32 494.7, FP16/BF16 989.4 dense.
    Gpu("H200 SXM", ("h200",), ((),), _tflops(67, 494.7, 989.4, 989.4), _H200),
    # H200 datasheet, NVL column: FP32 60; TF32 835 and FP16/BF16 1671 with sparsity: 417.5, 835.5 dense.
    Gpu("H200 NVL", ("h200",), (("nvl",),), _tflops(60, 417.5, 835.5, 835.5), _H200),
    # A100 datasheet, SXM4 and PCIe columns alike: FP32 19.5, TF32 156, FP16/BF16 312 dense (624 with sparsity).
    Gpu("A100", ("a100",), ((), ("sxm",), ("sxm4",), ("pcie",)),
        _tflops(19.5, 156, 312, 312), "NVIDIA A100 Tensor Core GPU datasheet"),
    # L4 datasheet: FP32 30.3; TF32 120 and FP16/BF16 242 with sparsity, so 60 and 121 dense.
    Gpu("L4", ("l4",), ((),), _tflops(30.3, 60, 121, 121), "NVIDIA L4 Tensor Core GPU datasheet"),
    # L40S datasheet: FP32 91.6; TF32 366 and FP16/BF16 733 with sparsity: 183 and 362 dense.
    Gpu("L40S", ("l40s",), ((),), _tflops(91.6, 183, 362, 362), "NVIDIA L40S GPU datasheet"),
    # L40 datasheet: FP32 90.5; TF32 181 and FP16/BF16 362 with sparsity: 90.5 and 181 dense.
    Gpu("L40", ("l40",), ((),), _tflops(90.5, 90.5, 181, 181), "NVIDIA L40 GPU datasheet"),
    # T4 datasheet: FP32 8.1, mixed precision FP16/FP32 tensor 65; Turing has no TF32 or BF16.
    Gpu("T4", ("t4",), ((),), _tflops(8.1, fp16=65), "NVIDIA T4 Tensor Core GPU datasheet"),
    # V100 datasheet, SXM2 column: FP32 15.7, tensor (FP16) 125; Volta has no TF32 or BF16.
    Gpu("V100 SXM2", ("v100",), (("sxm2",),), _tflops(15.7, fp16=125), _V100),
    # V100 datasheet, PCIe column: FP32 14, tensor (FP16) 112.
    Gpu("V100 PCIe", ("v100",), (("pcie",),), _tflops(14, fp16=112), _V100),
    # V100 datasheet, V100S PCIe column: FP32 16.4, tensor (FP16) 130.
    Gpu("V100S PCIe", ("v100s",), (("pcie",),), _tflops(16.4, fp16=130), _V100),
    # Ada whitepaper, RTX 4090: FP32 82.6; TF32 tensor 82.6; FP16/BF16 tensor with FP32 accumulate 165.2 dense.
    Gpu("RTX 4090", ("rtx", "4090"), ((),), _tflops(82.6, 82.6, 165.2, 165.2),
        "NVIDIA Ada GPU architecture whitepaper"),
    # Ampere GA102 whitepaper, RTX 3090: FP32 35.6; TF32 tensor 35.6; FP16/BF16 tensor with FP32 accumulate 71 dense.
    Gpu("RTX 3090", ("rtx", "3090"), ((),), _tflops(35.6, 35.6, 71, 71),
        "NVIDIA Ampere GA102 GPU architecture whitepaper"),
)


def name_tokens(device_name: str) -> frozenset[str]:
    """The tokens of a device name that can tell parts apart: split on spaces and hyphens, lower case,
    less vendor and brand ("NVIDIA", "Tesla", "GeForce") and memory size ("80GB")."""
    tokens = re.split(r"[\s\-]+", device_name.strip().lower())
    return frozenset(t for t in tokens if t and t not in _NOISE and not _MEMORY_SIZE.fullmatch(t))


def _index(gpus: tuple[Gpu, ...]) -> dict[frozenset[str], Gpu]:
    """Token set -> part; each accepted name belongs to one part only."""
    index: dict[frozenset[str], Gpu] = {}
    for gpu in gpus:
        for mark in gpu.marks:
            key = frozenset(gpu.model + mark)
            if key in index:
                raise ValueError(f"GPU table: {gpu.part!r} and {index[key].part!r} both accept {sorted(key)}")
            index[key] = gpu
    return index


_BY_TOKENS = _index(GPUS)


def find_gpu(device_name: str) -> Gpu | None:
    """The table's part for a `torch.cuda.get_device_name()` string, or None when it names no part exactly."""
    return _BY_TOKENS.get(name_tokens(device_name))


def gpu_peak(device_name: str, precision: str) -> tuple[float | None, str]:
    """(dense FLOP/s or None, where the figure comes from) for the run's math mode (`PRECISIONS`).

    A card with no TF32 (Volta, Turing) runs TF32-allowed float32 in plain float32: its float32 figure."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    gpu = find_gpu(device_name)
    if gpu is not None and precision == "tf32" and "tf32" not in gpu.tflops:
        return gpu.tflops["float32"] * TERA, f"datasheet: {gpu.source}, {gpu.part} float32 (the card has no TF32)"
    if gpu is None or precision not in gpu.tflops:
        return None, f"no datasheet figure for {device_name!r} {precision}"
    return gpu.tflops[precision] * TERA, f"datasheet: {gpu.source}, {gpu.part} {precision} dense"


def mps_peak() -> tuple[None, str]:
    """Apple GPUs (MPS): Apple publishes no FLOP/s figure per precision, so none."""
    return None, "no datasheet figure for Apple GPUs (mps)"


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

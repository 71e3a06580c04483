"""Attention kernels as a run setting (`--attention`): which implementation of scaled dot-product attention
every attention layer runs, chosen through PyTorch's documented kernel selection (torch.nn.attention.sdpa_kernel).

diffusers' attention layers (AttnProcessor2_0, in the UNets and in PixArt's transformer) call
torch.nn.functional.scaled_dot_product_attention; PyTorch then picks a kernel among those allowed:
- sdpa: every kernel allowed, PyTorch's own pick (on a CPU its fused flash kernel, on CUDA flash or memory-efficient
  where the shapes and dtype allow);
- flash: the fused FlashAttention kernel (arXiv 2205.14135; CPU and CUDA);
- efficient: the memory-efficient kernel (xFormers', arXiv 2112.05682; CUDA);
- cudnn: cuDNN's fused attention (CUDA);
- math: the plain path, Q K^T, softmax and P V as separate operators, the attention matrix written out in full.
A kernel the device lacks, or that refuses the shapes, fails the job with PyTorch's error (recorded; the sweep goes
on). The profiler shows which kernel ran (generator/measure/profiling.py attention_calls).
"""

from __future__ import annotations

import contextlib

from torch.nn.attention import SDPBackend, sdpa_kernel

KERNELS = ("sdpa", "flash", "efficient", "cudnn", "math")
DEFAULT = "sdpa"
# The kernels each device offers (mps: PyTorch's own pick or the plain path).
ON_DEVICE = {"cpu": ("sdpa", "flash", "math"), "cuda": KERNELS, "mps": ("sdpa", "math")}
_BACKENDS = {"flash": SDPBackend.FLASH_ATTENTION, "efficient": SDPBackend.EFFICIENT_ATTENTION,
             "cudnn": SDPBackend.CUDNN_ATTENTION, "math": SDPBackend.MATH}


def check(kernels: tuple[str, ...], device: str) -> None:
    """Raise ValueError naming a kernel that is not a choice, or that `device` does not offer (and those it does)."""
    if not kernels:
        raise ValueError(f"attention must list at least one of {', '.join(KERNELS)}, got none")
    for kernel in kernels:
        if kernel not in KERNELS:
            raise ValueError(f"attention must be one of {', '.join(KERNELS)}, got {kernel!r}")
        offered = ON_DEVICE.get(device, KERNELS)
        if kernel not in offered:
            raise ValueError(f"attention {kernel!r} does not run on {device}: it offers {', '.join(offered)}")
    if len(set(kernels)) != len(kernels):
        raise ValueError(f"attention lists a kernel twice: {','.join(kernels)}")


@contextlib.contextmanager
def selected(kernel: str):
    """Run what is inside with only `kernel` allowed (sdpa: PyTorch's own choice, nothing restricted)."""
    if kernel == DEFAULT:
        yield
        return
    if kernel not in _BACKENDS:
        raise ValueError(f"attention must be one of {', '.join(KERNELS)}, got {kernel!r}")
    with sdpa_kernel([_BACKENDS[kernel]]):
        yield

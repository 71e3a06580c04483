"""What a sweep records about the machine and the software, collected once per sweep.

`collect_metadata` reads the host (and on a Ray worker its node and worker ids), the device (its name, and on CUDA its UUID as NVML
prints it), the library versions, the threads, the math mode (the precision the UNet's
convolutions run in, which picks the datasheet peak in `peaks`), the peak FLOP/s (and
where that figure comes from) and the model; `run_record` gives each run its record:
that metadata plus the run's own fields.
"""

from __future__ import annotations

import os
import subprocess
import sys

from generator.measure import peaks, telemetry
from generator.measure.timing import denoiser
from generator.pipelines import models
from generator.pipelines.parts import DTYPES
from generator.records.ids import hostname
from generator.sweep.config import SweepConfig
from generator.sweep.plan import RunPlan
from spool import record

# The fields of a run record, in the order a spool file carries them.
RUN_FIELDS = (
    "run_id", "sweep_id", "started_at", "host", "device", "device_name", "gpu_uuid", "torch_version",
    "diffusers_version", "model_id", "model_kind", "weights_sha256", "family", "attention", "model_params", "task", "mode", "height", "width", "steps",
    "guidance_scale", "cfg", "dtype", "math_mode", "tf32_matmul", "tf32_cudnn", "scheduler", "seed", "threads", "peak_flops",
    "peak_flops_source", "ceiling_matmul_flops", "ceiling_conv_flops", "ceiling_copy_bytes_per_s",
    "unet_weight_bytes", "cpu_count", "device_memory_bytes", "vae_slicing", "telemetry_gpu", "tags", "worker_id", "ray_node_id", "replicas",
    "replica_group", "replica_index",
)
# Fields of a run that only a Ray worker (placement) or a replica sweep (generator/cluster/replicas.py) sets: None
# otherwise.
REPLICA_FIELDS = ("replicas", "replica_group", "replica_index")
OPTIONAL_FIELDS = ("worker_id", "ray_node_id", *REPLICA_FIELDS)
# The name an MPS run's device gets when the Mac's CPU brand names no Apple chip (an Intel Mac's GPU).
MPS_DEVICE_NAME = "Apple GPU (mps)"


def placement() -> dict:
    """Where this process runs, as a run records it: the Ray node and worker (None outside a Ray worker, also
    in a driver that has Ray initialised)."""
    ray = sys.modules.get("ray")  # a Ray worker has imported it; importing it here would cost a second
    if ray is None or not ray.is_initialized():
        return {"worker_id": None, "ray_node_id": None}
    ctx = ray.get_runtime_context()
    actor = ctx.get_actor_id()
    if actor is None:
        return {"worker_id": None, "ray_node_id": None}
    return {"worker_id": actor, "ray_node_id": ctx.get_node_id()}


def collect_metadata(cfg: SweepConfig, pipe, model_id: str) -> dict:
    """The machine and software of this sweep: the same for every run, so read once."""
    import torch

    threads = torch.get_num_threads()
    mode = math_mode(cfg.device, cfg.dtype)
    return {
        "host": hostname(), "device": cfg.device, **_device_fields(cfg.device, mode["math_mode"], threads),
        "torch_version": torch.__version__, "diffusers_version": _version("diffusers"), "model_id": model_id,
        "model_kind": models.model_kind(cfg.model, cfg.arch), "weights_sha256": models.weights_sha256(cfg.model, cfg.arch),
        "model_params": models.count_params(pipe), "family": models.family(pipe),
        "unet_weight_bytes": models.weight_bytes(denoiser(pipe)),
        "scheduler": type(pipe.scheduler).__name__, "threads": threads, "cpu_count": os.cpu_count(),
        "device_memory_bytes": device_memory_bytes(cfg.device), **mode, **placement(),
    }


def math_mode(device: str, dtype: str) -> dict:
    """How float arithmetic runs: {"math_mode", "tf32_matmul", "tf32_cudnn"} (see `math_mode_from_flags`).

    On CUDA the flags are torch's live TF32 settings for matrix products (cuBLAS) and convolutions
    (cuDNN); on cpu and mps they are None."""
    flags = _tf32_flags() if device.startswith("cuda") else (None, None)
    mode = math_mode_from_flags(dtype, *flags)
    if mode["math_mode"] == "tf32" and not _tf32_capable(device):  # the flags are on, the card has no TF32
        mode["math_mode"] = dtype
    return mode


def _tf32_capable(device: str) -> bool:
    """TF32 tensor cores came with compute capability 8.0 (Ampere); a V100 or T4 computes plain FP32."""
    import torch

    if not torch.cuda.is_available():  # nothing to ask: the flags alone say what was requested
        return True
    return torch.cuda.get_device_capability(torch.device(device)) >= (8, 0)


def math_mode_from_flags(dtype: str, tf32_matmul: bool | None, tf32_cudnn: bool | None) -> dict:
    """The math mode from the dtype and the TF32 flags (None off CUDA): 'tf32' for float32 when cuDNN
    may use TF32 (the UNet's time is mostly convolutions), else the dtype itself."""
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
    mode = "tf32" if dtype == "float32" and tf32_cudnn else dtype
    return {"math_mode": mode, "tf32_matmul": tf32_matmul, "tf32_cudnn": tf32_cudnn}


def _tf32_flags() -> tuple[bool, bool]:
    """(TF32 in CUDA matrix products, TF32 in cuDNN convolutions), as torch resolves them for each
    operator from its float32 precision settings (the operator's, its backend's, the generic one)."""
    import torch

    backends = torch.backends
    try:
        return backends.cuda.matmul.fp32_precision == "tf32", backends.cudnn.conv.fp32_precision == "tf32"
    except AttributeError:  # a torch before the fp32_precision settings: its allow_tf32 flags
        return bool(backends.cuda.matmul.allow_tf32), bool(backends.cudnn.allow_tf32)


def mps_device_name(cpu_brand: str | None) -> str:
    """An MPS run's device: the Mac's chip ('Apple M2 Pro') from its CPU brand string, or
    `MPS_DEVICE_NAME` when the brand names no Apple chip (an Intel Mac's MPS runs on its AMD GPU)."""
    brand = (cpu_brand or "").strip()
    return brand if brand.startswith("Apple") else MPS_DEVICE_NAME


def _device_fields(device: str, precision: str, threads: int) -> dict:
    """device_name, gpu_uuid and the peak (for the math mode `precision`) of the run's device."""
    if device.startswith("cuda"):
        import torch

        ids = telemetry.cuda_ids(device)
        name, uuid = torch.cuda.get_device_name(ids["index"]), ids["uuid"]
        peak, source = peaks.gpu_peak(name, precision)
    elif device == "mps":
        name, uuid = mps_device_name(_cpu_brand()), None
        peak, source = peaks.mps_peak()
    else:
        name, uuid = "cpu", None
        peak, source = peaks.cpu_peak(threads)
    return {"device_name": name, "gpu_uuid": uuid, "peak_flops": peak, "peak_flops_source": source}


def device_memory_bytes(device: str) -> int | None:
    """The memory the run's peaks are held against: the GPU's (CUDA total memory), else the machine's RAM
    (a CPU run's, and an MPS run's, whose GPU shares it)."""
    if device.startswith("cuda"):
        import torch

        index = telemetry.cuda_index(device)
        return int(torch.cuda.get_device_properties(torch.cuda.current_device() if index is None else index)
                   .total_memory)
    import psutil

    return int(psutil.virtual_memory().total)


def _cpu_brand() -> str | None:
    """macOS's CPU brand string ('Apple M2 Pro'), or None where sysctl does not give one."""
    try:
        out = subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                             timeout=5, check=True)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def run_record(metadata: dict, cfg: SweepConfig, run: RunPlan, ids: dict, telemetry_gpu: bool) -> dict:
    """The record every spool file of a run carries: the sweep's metadata plus the run's own fields.

    `ids` holds run_id, sweep_id and started_at, and in a replica sweep its REPLICA_FIELDS."""
    fields = {
        **dict.fromkeys(OPTIONAL_FIELDS),
        **metadata, **ids, "task": cfg.task, "mode": run.mode, "height": run.height, "width": run.width,
        "steps": run.steps, "guidance_scale": run.guidance, "cfg": run.cfg, "vae_slicing": run.vae_slicing, "attention": run.attention, "dtype": cfg.dtype, "seed": cfg.seed,
        "telemetry_gpu": telemetry_gpu, "tags": {"threads": metadata["threads"]},
    }
    missing = [name for name in RUN_FIELDS if name not in fields]
    if missing:
        raise ValueError(f"a run record needs the fields {', '.join(missing)}; "
                         f"the metadata given has {', '.join(sorted(metadata)) or 'none'}")
    return record("run", **{name: fields[name] for name in RUN_FIELDS})


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None

"""What a sweep records about the machine and the software, collected once per sweep.

`collect_metadata` reads the host, the device, the library versions, the threads, the
peak FLOP/s (and where that figure comes from) and the model; `run_record` gives each
run its record: that metadata plus the run's own fields.
"""

from __future__ import annotations

from spool import record

from .config import SweepConfig
from .ids import hostname
from .plan import RunPlan

# The fields of a run record, in the order a spool file carries them.
RUN_FIELDS = (
    "run_id", "sweep_id", "started_at", "host", "device", "device_name", "torch_version", "diffusers_version",
    "model_id", "model_params", "task", "mode", "height", "width", "steps", "guidance_scale", "cfg", "dtype",
    "scheduler", "seed", "threads", "peak_flops", "peak_flops_source", "telemetry_gpu", "tags",
)


def collect_metadata(cfg: SweepConfig, pipe, model_id: str) -> dict:
    """The machine and software of this sweep: the same for every run, so read once."""
    import torch

    from . import models, peaks

    threads = torch.get_num_threads()
    device_name = torch.cuda.get_device_name() if cfg.device == "cuda" else "cpu"
    peak, peak_source = (peaks.gpu_peak(device_name, cfg.dtype) if cfg.device == "cuda"
                         else peaks.cpu_peak(threads))
    return {
        "host": hostname(), "device": cfg.device, "device_name": device_name, "torch_version": torch.__version__,
        "diffusers_version": _version("diffusers"), "model_id": model_id, "model_params": models.count_params(pipe),
        "scheduler": type(pipe.scheduler).__name__, "threads": threads, "peak_flops": peak,
        "peak_flops_source": peak_source,
    }


def run_record(metadata: dict, cfg: SweepConfig, run: RunPlan, ids: dict, telemetry_gpu: bool) -> dict:
    """The record every spool file of a run carries: the sweep's metadata plus the run's own fields.

    `ids` holds run_id, sweep_id and started_at."""
    fields = {
        **metadata, **ids, "task": cfg.task, "mode": run.mode, "height": run.height, "width": run.width,
        "steps": cfg.steps, "guidance_scale": run.guidance, "cfg": run.cfg, "dtype": cfg.dtype, "seed": cfg.seed,
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

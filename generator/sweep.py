"""A sweep: for each resolution a run, for each batch size warm-up and measured jobs.

Every job ends as one spool file (see events.py), whether it succeeded or failed,
so a crash loses at most the job in flight and a failed job is on record.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .events import SpoolWriter, hostname, new_id, record, utc_now_iso

SAVE_IMAGES = ("first", "all", "none")
DEVICES = ("cpu", "cuda", "mps")


def _env(name: str, default: str) -> str:
    return os.environ.get(name) or default


@dataclass(frozen=True)
class SweepConfig:
    """Settings of one sweep; each CLI flag of `python -m generator sweep` sets one field."""

    # Images per pipeline call; one job (one spool file) per batch execution.
    batch_sizes: tuple[int, ...] = (1, 2, 4, 8, 16)
    # Square image sizes in pixels, one run each; the latent is 8x smaller per side.
    resolutions: tuple[int, ...] = (64, 256)
    # Image height in pixels; with width, replaces `resolutions` by one size.
    height: int | None = None
    # Image width in pixels; defaults to height when only height is given.
    width: int | None = None
    # Denoising steps per image.
    steps: int = 10
    # Measured jobs per batch size; the dashboard quotes their median.
    repeats: int = 3
    # Warm-up jobs per batch size before the measured ones: recorded, flagged, excluded.
    warmup: int = 1
    # txt2img or inpaint (inpaint uses a generated picture and a centre mask).
    task: str = "txt2img"
    # Classifier-free guidance scale; above 1 the UNet runs on twice the batch.
    guidance: float = 1.0
    # Image i of every job is drawn with seed + i.
    seed: int = 0
    # A local diffusers pipeline folder; None runs the embedded tiny model (offline).
    model: str | None = None
    # Where PyTorch runs: cpu, cuda or mps.
    device: str = "cpu"
    # Spool folder the collector ingests from (env SPOOL_DIR).
    spool: str = field(default_factory=lambda: _env("SPOOL_DIR", "data/spool"))
    # Folder for generated PNG files (env OUTPUT_DIR).
    out: str = field(default_factory=lambda: _env("OUTPUT_DIR", "data/images"))
    # Which jobs keep their images: first measured job per batch size, all, or none.
    save_images: str = "first"
    # One prompt for every image; None cycles through a few built-in prompts.
    prompt: str | None = None

    def __post_init__(self):
        # 1. Batch sizes and counts.
        if not self.batch_sizes:
            raise ValueError("batch sizes must list at least one size, got none")
        for b in self.batch_sizes:
            if b < 1:
                raise ValueError(f"batch size must be >= 1, got {b}")
        if self.steps < 1:
            raise ValueError(f"steps must be >= 1, got {self.steps}")
        if self.repeats < 1:
            raise ValueError(f"repeats must be >= 1, got {self.repeats}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        # 2. Sizes: multiples of 8, the VAE's downsampling factor.
        for name, value in [("height", self.height), ("width", self.width)] + [
            ("resolution", r) for r in self.resolutions
        ]:
            if value is not None and (value < 8 or value % 8):
                raise ValueError(f"{name} must be a positive multiple of 8, got {value}")
        if not self.resolutions and self.height is None and self.width is None:
            raise ValueError("resolutions must list at least one size, got none")
        # 3. Choices and ranges.
        if self.guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {self.guidance}")
        from .models import TASKS

        if self.task not in TASKS:
            raise ValueError(f"task must be one of {', '.join(TASKS)}, got {self.task!r}")
        if self.device not in DEVICES:
            raise ValueError(f"device must be one of {', '.join(DEVICES)}, got {self.device!r}")
        if self.save_images not in SAVE_IMAGES:
            raise ValueError(f"save images must be one of {', '.join(SAVE_IMAGES)}, got {self.save_images!r}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")

    def sizes(self) -> list[tuple[int, int]]:
        """(height, width) of each run."""
        if self.height is not None or self.width is not None:
            h = self.height if self.height is not None else self.width
            w = self.width if self.width is not None else self.height
            return [(h, w)]
        return [(r, r) for r in self.resolutions]

    def jobs_total(self) -> int:
        return len(self.sizes()) * len(self.batch_sizes) * (self.warmup + self.repeats)


def _error_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _is_oom(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError)) or "out of memory" in str(exc).lower()


def run_sweep(cfg: SweepConfig, progress: bool = True) -> list[Path]:
    """Run every job of the sweep; return the spool files written, in order."""
    import torch
    from tqdm import tqdm

    from . import batching, inputs, models
    from .timing import Clock, PipelineTimer

    # 1. Load the pipeline once and hook the timer into it.
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device must be one that this machine has, got 'cuda' (no CUDA device found)")
    pipe, model_id = models.load_pipeline(cfg.task, cfg.model, seed=cfg.seed, device=cfg.device)
    timer = PipelineTimer(pipe, Clock(cfg.device))
    writer = SpoolWriter(cfg.spool)
    sweep_id = new_id("sweep")
    unet_factor = 2 if cfg.guidance > 1.0 else 1
    written: list[Path] = []
    bar = tqdm(total=cfg.jobs_total(), unit="job", disable=not progress, file=sys.stderr)
    try:
        for height, width in cfg.sizes():
            # 2. One run per size: the record every job file of the run carries.
            run_id = new_id("run")
            run = record(
                "run", run_id=run_id, sweep_id=sweep_id, started_at=utc_now_iso(), host=hostname(),
                device=cfg.device,
                device_name=torch.cuda.get_device_name() if cfg.device == "cuda" else "cpu",
                torch_version=torch.__version__, diffusers_version=_version("diffusers"),
                model_id=model_id, model_params=models.count_params(pipe), task=cfg.task,
                mode="static", height=height, width=width, steps=cfg.steps,
                guidance_scale=cfg.guidance, dtype="float32", scheduler=type(pipe.scheduler).__name__,
                seed=cfg.seed, tags={"threads": torch.get_num_threads()},
            )
            picture = inputs.test_image(height, width, cfg.seed) if cfg.task == "inpaint" else None
            mask = inputs.test_mask(height, width) if cfg.task == "inpaint" else None
            for batch_size in cfg.batch_sizes:
                prompts = [cfg.prompt] * batch_size if cfg.prompt else inputs.prompts_for(batch_size)
                seeds = [cfg.seed + i for i in range(batch_size)]
                for repeat in range(cfg.warmup + cfg.repeats):
                    warm = repeat < cfg.warmup
                    bar.set_description(f"{height}x{width} batch {batch_size}" + (" warm-up" if warm else ""))
                    # 3. One job: a timed pipeline call; a failure is recorded, not raised.
                    job_id = new_id("job")
                    started_at = utc_now_iso()
                    if cfg.device == "cuda":
                        torch.cuda.reset_peak_memory_stats()
                    status, error, images, phases, steps = "ok", None, [], [], []
                    timer.begin()
                    try:
                        images = batching.run_static(
                            pipe, task=cfg.task, prompts=prompts, seeds=seeds, height=height,
                            width=width, steps=cfg.steps, guidance=cfg.guidance,
                            callback=timer.on_step_end, image=picture, mask=mask,
                        )
                    except Exception as exc:  # recorded with its message; the sweep goes on
                        status, error = ("oom" if _is_oom(exc) else "error"), _error_line(exc)
                    wall_s, phases, steps = timer.end()
                    # 4. Keep the images of the first measured job per batch size (by default).
                    keep = cfg.save_images == "all" or (cfg.save_images == "first" and repeat == cfg.warmup)
                    image_rows = _save_images(cfg, run_id, job_id, images, prompts, seeds) if keep else []
                    job = record(
                        "job", job_id=job_id, run_id=run_id, batch_size=batch_size,
                        unet_batch=batch_size * unet_factor, repeat=repeat, warmup=warm,
                        started_at=started_at, wall_s=wall_s, images=len(images), status=status,
                        error=error,
                        peak_mem_bytes=torch.cuda.max_memory_allocated() if cfg.device == "cuda" else None,
                        unet_flops_per_call=None,
                    )
                    rows = [run, job]
                    rows += [record("phase", job_id=job_id, **p) for p in phases]
                    rows += [record("step", job_id=job_id, **s) for s in steps]
                    rows += [record("image", job_id=job_id, **i) for i in image_rows]
                    # 5. One atomic spool file per job.
                    written.append(writer.write_job(run_id, job_id, rows))
                    bar.update()
    finally:
        bar.close()
    return written


def _save_images(cfg: SweepConfig, run_id, job_id, images, prompts, seeds) -> list[dict]:
    folder = Path(cfg.out) / run_id
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for index, img in enumerate(images):
        path = folder / f"{job_id}_{index:03d}.png"
        img.save(path)
        rows.append({"index": index, "seed": seeds[index], "prompt": prompts[index], "path": str(path.resolve())})
    return rows


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None


def settings_fields() -> list[dataclasses.Field]:
    return list(dataclasses.fields(SweepConfig))

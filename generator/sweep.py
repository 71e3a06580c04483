"""A sweep: for each size, mode and CFG setting a run; for each batch size its jobs.

Every job ends as one spool file (see events.py), whether it succeeded or failed,
so a crash loses at most the job in flight and a failed job is on record.
Telemetry samples of a run go to their own spool files, flushed after each job.
A spool file that cannot be written (disk full, file too large) cannot record
that failure itself: it is reported on stderr and in the outcome's `unwritten`,
and the sweep goes on.
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .batching import MODES, JobInputs
from settings import OUTPUT_DIR, SPOOL_DIR, setting
from spool import SpoolWriter, record

from .ids import hostname, new_id, utc_now_iso

SAVE_IMAGES = ("first", "all", "none")
DEVICES = ("cpu", "cuda", "mps")
DTYPES = ("float32", "float16", "bfloat16")
CFG_SETTINGS = ("off", "full")


@dataclass(frozen=True)
class SweepConfig:
    """Settings of one sweep; each CLI flag of `python -m generator sweep` sets one field."""

    batch_sizes: tuple[int, ...] = setting(
        "Images per job; one job (one spool file) per batch execution.", (1, 2, 4, 8, 16))
    resolutions: tuple[int, ...] = setting(
        "Square image sizes in pixels, one run each; the latent is 8x smaller per side.", (64, 256))
    height: int | None = setting("Image height in pixels; with width, replaces `resolutions` by one size.", None)
    width: int | None = setting("Image width in pixels; defaults to height when only height is given.", None)
    mode: tuple[str, ...] = setting(
        "Execution modes, one run each: sequential (batch-1 calls), static (one call), stream (Stream Batch).", ("static",))
    steps: int = setting("Denoising steps per image (the same in every mode).", 10)
    repeats: int = setting("Measured jobs per batch size; the dashboard quotes their median.", 3)
    warmup: int = setting("Warm-up jobs per batch size before the measured ones: recorded, flagged, excluded.", 1)
    task: str = setting(
        "txt2img or inpaint (inpaint uses a generated picture and a centre mask unless --mask is given).", "txt2img")
    guidance: float = setting(
        "Classifier-free guidance scale for runs with CFG on; above 1 the UNet runs on twice the batch.", 1.0)
    classifier_free_guidance: tuple[str, ...] | None = setting(
        "CFG settings, one run each: off (guidance 1) or full (--guidance); default: full if guidance > 1.", None,
        flag="--cfg")
    seed: int = setting("Image i of every job is drawn with seed + i.", 0)
    model: str | None = setting(
        "A local diffusers pipeline folder; None runs the embedded tiny model (offline).", None)
    device: str = setting("Where PyTorch runs: cpu, cuda or mps.", "cpu")
    dtype: str = setting("Weights and activations: float32, float16 or bfloat16.", "float32")
    spool: str = setting("Spool folder the collector ingests from.", env=SPOOL_DIR)
    out: str = setting("Folder for generated PNG files.", env=OUTPUT_DIR)
    save_images: str = setting(
        "Which jobs keep their images: first measured job per batch size, all, or none.", "first")
    prompt: str | None = setting("One prompt for every image; None cycles through a few built-in prompts.", None)
    mask: str | None = setting(
        "Inpainting masks: one image file, or a folder of them used one per image in turn.", None)
    profile_ops: bool = setting(
        "One extra profiled job per batch size (torch.profiler): UNet time by operator category.", False)
    sample_hz: float = setting("Telemetry samples per second during each run (0 turns the sampler off).", 10.0)
    until_oom: bool = setting("After the listed batch sizes, keep doubling until a job runs out of memory.", False)
    max_batch: int = setting("The largest batch size --until-oom tries.", 4096)

    def __post_init__(self):
        # 1. Batch sizes and counts.
        if not self.batch_sizes:
            raise ValueError("batch sizes must list at least one size, got none")
        for b in self.batch_sizes:
            if b < 1:
                raise ValueError(f"batch size must be >= 1, got {b}")
        for name in ("steps", "repeats", "max_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', ' ')} must be >= 1, got {getattr(self, name)}")
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
        from .models import TASKS

        for name, value, allowed in [("task", self.task, TASKS), ("device", self.device, DEVICES),
                                     ("dtype", self.dtype, DTYPES),
                                     ("save images", self.save_images, SAVE_IMAGES)]:
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if not self.mode:
            raise ValueError(f"mode must list at least one of {', '.join(MODES)}, got none")
        for m in self.mode:
            if m not in MODES:
                raise ValueError(f"mode must be one of {', '.join(MODES)}, got {m!r}")
        if "stream" in self.mode and self.task != "txt2img":
            raise ValueError(f"stream mode runs txt2img only, got task {self.task!r}")
        if self.guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {self.guidance}")
        for c in self.classifier_free_guidance or ():
            if c not in CFG_SETTINGS:
                raise ValueError(f"cfg must be one of {', '.join(CFG_SETTINGS)}, got {c!r}")
        if "full" in (self.classifier_free_guidance or ()) and self.guidance <= 1.0:
            raise ValueError(f"cfg full needs guidance > 1, got {self.guidance}")
        if self.sample_hz < 0:
            raise ValueError(f"sample hz must be >= 0, got {self.sample_hz}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.mask is not None and self.task != "inpaint":
            raise ValueError(f"mask is for task inpaint, got task {self.task!r}")

    def sizes(self) -> list[tuple[int, int]]:
        """(height, width) of each run."""
        if self.height is not None or self.width is not None:
            h = self.height if self.height is not None else self.width
            w = self.width if self.width is not None else self.height
            return [(h, w)]
        return [(r, r) for r in self.resolutions]

    def guidances(self) -> list[float]:
        """The guidance scale of each CFG setting: off runs at 1 (one UNet pass per row)."""
        settings = self.classifier_free_guidance or (("full",) if self.guidance > 1.0 else ("off",))
        return [self.guidance if c == "full" else 1.0 for c in settings]

    def jobs_total(self) -> int:
        per_batch = self.warmup + self.repeats + (1 if self.profile_ops else 0)
        runs = len(self.sizes()) * len(self.mode) * len(self.guidances())
        return runs * len(self.batch_sizes) * per_batch


def _error_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def _is_oom(exc: BaseException) -> bool:
    import torch

    text = str(exc).lower()
    return (isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError))
            or "out of memory" in text or "not enough memory" in text or "can't allocate memory" in text)


def _batch_sizes(cfg: SweepConfig, hit_oom):
    """The listed batch sizes, then (with until_oom) doubling until a job hits memory."""
    for b in cfg.batch_sizes:
        if hit_oom():
            return
        yield b
    b = max(cfg.batch_sizes) * 2
    while cfg.until_oom and not hit_oom() and b <= cfg.max_batch:
        yield b
        b *= 2


class SweepOutcome(list):
    """The spool files a sweep wrote, in order; `unwritten` holds one dict per spool file
    it could not write: what it held (`what`), its `path` and the OS error (`reason`)."""

    def __init__(self):
        super().__init__()
        self.unwritten: list[dict] = []


def _write(writer: SpoolWriter, outcome: SweepOutcome, run_id: str, name: str, rows: list[dict],
           what: str) -> None:
    """Write one spool file; if that fails, report it on stderr and in the outcome, and go on."""
    from tqdm import tqdm

    try:
        outcome.append(writer.write(run_id, name, rows))
    except OSError as exc:
        path = writer.spool_dir / run_id / f"{name}.jsonl"
        outcome.unwritten.append({"what": what, "path": str(path), "reason": exc.strerror or _error_line(exc)})
        tqdm.write(f"error: {what} failed: spool file '{path}' could not be written: {_error_line(exc)}; "
                   "the spool cannot record a failure it cannot write, so it is reported only here",
                   file=sys.stderr)


def run_sweep(cfg: SweepConfig, progress: bool = True) -> SweepOutcome:
    """Run every job of the sweep; return the spool files written, in order (see SweepOutcome)."""
    import torch
    from tqdm import tqdm

    from . import inputs, models, peaks
    from .telemetry import PeakRss, Sampler
    from .timing import PipelineTimer, clock_for

    # 1. Validate what needs the machine or the files, before any work.
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device must be one that this machine has, got 'cuda' (no CUDA device found)")
    masks = inputs.load_masks(cfg.mask, cfg.sizes()) if cfg.mask else None
    # 2. Load the pipeline once and hook the timer into it.
    dtype = getattr(torch, cfg.dtype)
    pipe, model_id = models.load_pipeline(cfg.task, cfg.model, seed=cfg.seed, device=cfg.device, dtype=dtype)
    timer = PipelineTimer(pipe, clock_for(cfg.device))
    writer = SpoolWriter(cfg.spool)
    peak_rss = PeakRss()
    sweep_id = new_id("sweep")
    threads = torch.get_num_threads()
    device_name = torch.cuda.get_device_name() if cfg.device == "cuda" else "cpu"
    peak, peak_source = (peaks.gpu_peak(device_name, cfg.dtype) if cfg.device == "cuda"
                         else peaks.cpu_peak(threads))
    written = SweepOutcome()
    bar = tqdm(total=cfg.jobs_total(), unit="job", disable=not progress, file=sys.stderr)
    try:
        for height, width in cfg.sizes():
            picture = inputs.test_image(height, width, cfg.seed) if cfg.task == "inpaint" else None
            run_masks = (masks or {}).get((height, width)) or [inputs.test_mask(height, width)]
            flops_per_row = _flops(pipe, height, width)  # depends on the size only, not on CFG or mode
            for guidance in cfg.guidances():
                cfg_on = guidance > 1.0
                for mode in cfg.mode:
                    # 3. One run per size, CFG setting and mode: the record every file of the run carries.
                    run_id = new_id("run")
                    run = record(
                        "run", run_id=run_id, sweep_id=sweep_id, started_at=utc_now_iso(), host=hostname(),
                        device=cfg.device, device_name=device_name, torch_version=torch.__version__,
                        diffusers_version=_version("diffusers"), model_id=model_id,
                        model_params=models.count_params(pipe), task=cfg.task, mode=mode, height=height,
                        width=width, steps=cfg.steps, guidance_scale=guidance, cfg=cfg_on, dtype=cfg.dtype,
                        scheduler=type(pipe.scheduler).__name__, seed=cfg.seed, threads=threads,
                        peak_flops=peak, peak_flops_source=peak_source, telemetry_gpu=False,
                        tags={"threads": threads},
                    )
                    sampler = Sampler(run_id, cfg.sample_hz, cfg.device).start()
                    run["telemetry_gpu"] = sampler.gpu
                    oom = []
                    try:
                        for batch_size in _batch_sizes(cfg, lambda: bool(oom)):
                            prompts = [cfg.prompt] * batch_size if cfg.prompt else inputs.prompts_for(batch_size)
                            job_inputs = JobInputs(
                                task=cfg.task, prompts=prompts, seeds=[cfg.seed + i for i in range(batch_size)],
                                height=height, width=width, steps=cfg.steps, guidance=guidance, image=picture,
                                masks=tuple(run_masks[i % len(run_masks)] for i in range(batch_size)),
                            )
                            plan = ([("warmup", r) for r in range(cfg.warmup)]
                                    + [("measured", r) for r in range(cfg.warmup, cfg.warmup + cfg.repeats)]
                                    + ([("profiled", cfg.warmup + cfg.repeats)] if cfg.profile_ops else []))
                            for kind, repeat in plan:
                                bar.set_description(f"{mode} {height}x{width} cfg {'on' if cfg_on else 'off'} "
                                                    f"batch {batch_size}" + ("" if kind == "measured" else f" {kind}"))
                                rows, status = _run_job(
                                    cfg, pipe, timer, peak_rss, run, mode, job_inputs, repeat, kind,
                                    flops_per_row, cfg_on,
                                )
                                # 4. One atomic spool file per job, with the run's samples taken meanwhile.
                                rows += [record("sample", **s) for s in sampler.drain()]
                                job = rows[1]
                                _write(writer, written, run_id, job["job_id"], rows,
                                       f"job {job['job_id']} ({mode} {height}x{width} batch {batch_size} {kind}, "
                                       f"ran with status {status}{': ' + job['error'] if job['error'] else ''})")
                                bar.update()
                                if status == "oom":
                                    oom.append(batch_size)
                                    break
                    finally:
                        sampler.stop()
                        samples = sampler.drain()
                        if samples:
                            _write(writer, written, run_id, f"samples-{new_id('end')}",
                                   [run] + [record("sample", **s) for s in samples],
                                   f"the last telemetry samples of run {run_id}")
    finally:
        bar.close()
    return written


def _run_job(cfg, pipe, timer, peak_rss, run, mode, job_inputs, repeat, kind, flops_per_row, cfg_on):
    """One job: a timed execution; a failure is recorded, not raised. Returns (records, status)."""
    import torch

    from . import batching
    from .profiling import profile_unet

    job_id = new_id("job")
    batch_size = len(job_inputs.prompts)
    started_at = utc_now_iso()
    if cfg.device == "cuda":
        torch.cuda.reset_peak_memory_stats()
    peak_rss.reset()
    status, error, images, timing, ops = "ok", None, [], None, None
    t0 = time.perf_counter()
    try:
        if kind == "profiled":
            with profile_unet(pipe, cfg.device) as profile:
                images, timing = batching.execute(mode, pipe, timer, job_inputs)
            ops = profile
        else:
            images, timing = batching.execute(mode, pipe, timer, job_inputs)
    except Exception as exc:  # recorded with its message; the sweep goes on
        status, error = ("oom" if _is_oom(exc) else "error"), _error_line(exc)
        timer.abandon()
    wall_s = time.perf_counter() - t0
    # Keep the images of the first measured job per batch size (by default).
    keep = cfg.save_images == "all" or (cfg.save_images == "first" and kind == "measured"
                                        and repeat == cfg.warmup)
    image_rows = []
    if keep and images:
        image_rows, save_error = _save_images(cfg, run["run_id"], job_id, images, job_inputs)
        if save_error and status == "ok":  # an image that cannot be saved fails the job, not the sweep
            status, error = "error", save_error
    rows_total = timing.unet_rows if timing else None
    job = record(
        "job", job_id=job_id, run_id=run["run_id"], batch_size=batch_size,
        unet_batch=batching.unet_rows_per_call(mode, batch_size, cfg.steps, cfg_on), repeat=repeat,
        warmup=kind == "warmup", profiled=kind == "profiled", started_at=started_at, wall_s=wall_s,
        images=len(images), status=status, error=error,
        peak_mem_bytes=(torch.cuda.max_memory_allocated() if cfg.device == "cuda" else peak_rss.peak()),
        unet_calls=timing.unet_calls if timing else None, unet_rows=rows_total,
        unet_flops_per_call=(flops_per_row * batching.unet_rows_per_call(mode, batch_size, cfg.steps, cfg_on)
                             if flops_per_row else None),
        unet_flops_total=flops_per_row * rows_total if flops_per_row and rows_total else None,
        unet_profiled_s=ops["unet_s"] if ops else None,
    )
    rows = [run, job]
    if timing is not None:
        rows += [record("phase", job_id=job_id, **p) for p in timing.phases]
        rows += [record("step", job_id=job_id, **{"call_index": 0, **s}) for s in timing.steps]
    rows += [record("op", job_id=job_id, **o, flops=None) for o in (ops or {}).get("ops", [])]
    rows += [record("image", job_id=job_id, **i) for i in image_rows]
    return rows, status


def _flops(pipe, height, width) -> float | None:
    from .profiling import unet_flops_per_row

    try:
        return unet_flops_per_row(pipe, height, width, False)
    except Exception:  # FLOP counting is a nicety: never fail a sweep over it
        return None


def _save_images(cfg: SweepConfig, run_id, job_id, images, job_inputs) -> tuple[list[dict], str | None]:
    """Save the job's images; return a record for each one saved and, if a save failed, why."""
    folder = Path(cfg.out) / run_id
    rows, path = [], folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for index, img in enumerate(images):
            path = folder / f"{job_id}_{index:03d}.png"
            img.save(path)
            row = {"index": index, "seed": job_inputs.seeds[index], "prompt": job_inputs.prompts[index],
                   "path": str(path.resolve())}
            if job_inputs.task == "inpaint":  # the mask this image was inpainted with, beside it
                path = folder / f"{job_id}_{index:03d}_mask.png"
                job_inputs.masks[index].save(path)
                row["mask_path"] = str(path.resolve())
            rows.append(row)
    except Exception as exc:  # disk full, file too large: no half-written picture stays behind
        if path != folder:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        return rows, f"image '{path}' could not be saved: {_error_line(exc)}"
    return rows, None


def _version(package: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(package)
    except PackageNotFoundError:
        return None

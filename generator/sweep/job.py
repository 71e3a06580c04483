"""One job: a timed batch execution and the records of its spool file.

A job runs from a JobContext (what every job of a run shares), a JobPlan (its batch
size, kind and round) and its repeat (its index among the jobs of its run and batch
size, warm-ups first, counted by the runner, since warm-up lasts until it settles).
A failure is recorded with its status (oom | error) and error,
not raised; an image that cannot be saved fails its job, not the sweep.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

from generator.measure import quality
from generator.measure.profiling import profile_unet
from generator.pipelines import attention, batching
from generator.pipelines.batching import JobInputs
from generator.pipelines.inputs import prompts_for, test_caption
from generator.pipelines.models import set_vae_slicing
from generator.records.ids import new_id, utc_now_iso
from generator.records.outcome import error_line
from generator.sweep.config import SweepConfig
from generator.sweep.plan import JobPlan, RunPlan
from spool import FILE_KINDS, record


@dataclass(frozen=True)
class JobContext:
    """What every job of a run shares: the pipeline and its instruments, the settings, the run."""

    cfg: SweepConfig
    pipe: object
    timer: object            # timing.PipelineTimer hooked into `pipe`
    memory: object           # telemetry.PeakMemory, shared with the timer
    run: dict                # the run record, first in every job file
    plan: RunPlan
    flops_per_row: float | None  # UNet FLOPs per latent row at this size; None when not counted
    picture: object = None   # the picture to inpaint (inpaint only)
    masks: tuple = ()        # masks used one per image in turn (inpaint only)


@dataclass(frozen=True)
class JobResult:
    """A finished job: its job record, every record of its spool file (the run's first), and its images with
    their seeds (kept in memory for the runner's comparisons, not saved unless the plan keeps them)."""

    job: dict
    rows: list[dict]
    images: list = dataclasses.field(default_factory=list)
    seeds: list = dataclasses.field(default_factory=list)
    prompts: list = dataclasses.field(default_factory=list)

    @property
    def job_id(self) -> str:
        return self.job["job_id"]

    @property
    def status(self) -> str:
        return self.job["status"]

    @property
    def error(self) -> str | None:
        return self.job["error"]


@dataclass(frozen=True)
class _Execution:
    """What running the batch produced."""

    job_id: str
    started_at: str
    status: str = "ok"
    error: str | None = None
    images: list = dataclasses.field(default_factory=list)
    timing: object = None    # timing.CallTiming, None when the job failed
    ops: dict | None = None  # the operator mix of a profiled job
    wall_s: float = 0.0
    image_rows: list = dataclasses.field(default_factory=list)


def run_job(ctx: JobContext, job: JobPlan, repeat: int, job_id: str | None = None) -> JobResult:
    """Run one job, the `repeat`-th (0-based) of its run and batch size, as `job_id` (None: a new id); a
    failure is recorded in the result, not raised."""
    # 1. The images: one prompt, seed (and mask) each.
    inputs = job_inputs(ctx, job.batch_size)
    # 2. Execute the batch in the run's mode, timed (under the profiler for a profiled job).
    execution = _execute(ctx, job, inputs, job_id or new_id(FILE_KINDS["job"]))
    # 3. Save the images the plan keeps; an image that cannot be saved fails the job.
    execution = _keep_images(ctx, job, inputs, execution)
    # 4. The records of the job's spool file: the run, the job, its phases, steps, operators, images.
    result = _records(ctx, job, repeat, execution)
    return dataclasses.replace(result, images=execution.images, seeds=inputs.seeds, prompts=inputs.prompts)


def job_inputs(ctx: JobContext, batch_size: int) -> JobInputs:
    """What a job of `batch_size` images generates: image i has seed + i and mask i (cycling)."""
    cfg, run = ctx.cfg, ctx.plan
    prompts = ([cfg.prompt] * batch_size if cfg.prompt else
               [test_caption(cfg.seed).text] * batch_size if cfg.task == "inpaint" else
               _default_prompts(batch_size))
    return JobInputs(
        task=cfg.task, prompts=prompts, seeds=[cfg.seed + i for i in range(batch_size)], height=run.height,
        width=run.width, steps=run.steps, guidance=run.guidance, image=ctx.picture,
        masks=tuple(ctx.masks[i % len(ctx.masks)] for i in range(batch_size)) if ctx.masks else (),
    )


def _default_prompts(batch_size: int) -> list[str]:
    return prompts_for(batch_size)


def _execute(ctx: JobContext, job: JobPlan, inputs: JobInputs, job_id: str) -> _Execution:
    """Reset the memory peaks, then run the batch; an exception becomes the job's status and error."""
    set_vae_slicing(ctx.pipe, ctx.plan.vae_slicing)
    execution = _Execution(job_id=job_id, started_at=utc_now_iso())
    ctx.memory.reset()
    mode, ops = ctx.plan.mode, None
    t0 = time.perf_counter()
    try:
        with attention.selected(ctx.plan.attention):
            if job.profiled:
                with profile_unet(ctx.pipe, ctx.cfg.device) as profile:
                    images, timing = batching.execute(mode, ctx.pipe, ctx.timer, inputs)
                ops = profile
            else:
                images, timing = batching.execute(mode, ctx.pipe, ctx.timer, inputs)
    except Exception as exc:  # recorded with its message; the sweep goes on
        ctx.timer.abandon()
        return dataclasses.replace(execution, status="oom" if is_oom(exc) else "error", error=error_line(exc),
                                   wall_s=time.perf_counter() - t0)
    return dataclasses.replace(execution, images=images, timing=timing, ops=ops, wall_s=time.perf_counter() - t0)


def _keep_images(ctx: JobContext, job: JobPlan, inputs: JobInputs, execution: _Execution) -> _Execution:
    """Save the images when the plan keeps them; a failed save fails a job that was ok."""
    if not (job.save_images and execution.images):
        return execution
    folder = Path(ctx.cfg.out) / ctx.run["run_id"]
    image_rows, save_error = save_images(folder, execution.job_id, execution.images, inputs)
    if save_error and execution.status == "ok":  # an image that cannot be saved fails the job, not the sweep
        return dataclasses.replace(execution, image_rows=image_rows, status="error", error=save_error)
    return dataclasses.replace(execution, image_rows=image_rows)


def _records(ctx: JobContext, job: JobPlan, repeat: int, execution: _Execution) -> JobResult:
    """The job record (by name) and every record of its spool file, the run's first."""
    cfg, mode, timing, ops = ctx.cfg, ctx.plan.mode, execution.timing, execution.ops
    job_id, rows_total = execution.job_id, (timing.unet_rows if timing else None)
    rows_per_call = batching.unet_rows_per_call(mode, job.batch_size, ctx.plan.steps, ctx.plan.cfg)
    flops_per_row = ctx.flops_per_row
    job_record = record(
        "job", job_id=job_id, run_id=ctx.run["run_id"], batch_size=job.batch_size, unet_batch=rows_per_call,
        repeat=repeat, warmup=job.warmup, profiled=job.profiled, started_at=execution.started_at,
        wall_s=execution.wall_s, images=len(execution.images), status=execution.status, error=execution.error,
        peak_mem_bytes=ctx.memory.peak(),
        unet_calls=timing.unet_calls if timing else None, unet_rows=rows_total,
        unet_flops_per_call=flops_per_row * rows_per_call if flops_per_row else None,
        unet_flops_total=flops_per_row * rows_total if flops_per_row and rows_total else None,
        unet_profiled_s=ops["unet_s"] if ops else None, round=job.round,
    )
    rows = [ctx.run, job_record]
    if timing is not None:
        rows += [record("phase", job_id=job_id, **p) for p in timing.phases]
        rows += [record("step", job_id=job_id, **{"call_index": 0, **s}) for s in timing.steps]
    rows += [record("op", job_id=job_id, **o, flops=None) for o in (ops or {}).get("ops", [])]
    rows += [record("attention", job_id=job_id, **a) for a in (ops or {}).get("attention", [])]
    rows += [record("image", job_id=job_id, **i) for i in execution.image_rows]
    return JobResult(job=job_record, rows=rows)


def unfinished_job(ctx: JobContext, job: JobPlan, repeat: int, job_id: str) -> dict:
    """The record of a job that is about to run, as it stands if it never finishes: status error, no images.
    A Ray worker hands it to the driver before the job runs; if the worker dies meanwhile, the driver writes
    it with the reason (generator/cluster/workers.py), so the job is on record once, as failed."""
    return record(
        "job", job_id=job_id, run_id=ctx.run["run_id"], batch_size=job.batch_size,
        unet_batch=batching.unet_rows_per_call(ctx.plan.mode, job.batch_size, ctx.plan.steps, ctx.plan.cfg),
        repeat=repeat, warmup=job.warmup, profiled=job.profiled, started_at=utc_now_iso(), wall_s=0.0, images=0,
        status="error", error="the job did not finish", peak_mem_bytes=None, unet_calls=None, unet_rows=None,
        unet_flops_per_call=None, unet_flops_total=None, unet_profiled_s=None, round=job.round)


def save_images(folder: Path, job_id: str, images: list, inputs: JobInputs) -> tuple[list[dict], str | None]:
    """Save a job's images in `folder`; return a record for each one saved and, if a save failed, why."""
    rows, path = [], folder
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for index, img in enumerate(images):
            path = folder / f"{job_id}_{index:03d}.png"
            img.save(path)
            row = {"index": index, "seed": inputs.seeds[index], "prompt": inputs.prompts[index],
                   "path": str(path.resolve())}
            shown = quality.read(img, inputs.prompts[index]) if inputs.task == "txt2img" else None
            row.update(shown.fields() if shown is not None else {})
            if inputs.task == "inpaint":  # the mask this image was inpainted with, and the picture given, beside it
                path = folder / f"{job_id}_{index:03d}_mask.png"
                inputs.masks[index].save(path)
                row["mask_path"] = str(path.resolve())
                path = folder / f"{job_id}_{index:03d}_input.png"
                masked_input(inputs.image, inputs.masks[index]).save(path)
                row["input_path"] = str(path.resolve())
            rows.append(row)
    except Exception as exc:  # disk full, file too large: no half-written picture stays behind
        if path != folder:
            with contextlib.suppress(OSError):
                path.unlink(missing_ok=True)
        return rows, f"image '{path}' could not be saved: {error_line(exc)}"
    return rows, None


def masked_input(picture, mask):
    """The picture an inpainting model was given, as a person sees it: the hole (mask white) painted grey."""
    grey = Image.new("RGB", picture.size, (128, 128, 128))
    return Image.composite(grey, picture.convert("RGB"), mask.convert("L").resize(picture.size))


def is_oom(exc: BaseException) -> bool:
    """Whether an exception means the device (or the host) ran out of memory."""
    import torch

    text = str(exc).lower()
    return (isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError))
            or "out of memory" in text or "not enough memory" in text or "can't allocate memory" in text)

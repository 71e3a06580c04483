"""A sweep, as plan -> run -> record: `plan(cfg)` lists the runs and their jobs
(generator/plan.py), `run_sweep` follows it, and each job ends as one spool file
(generator/job.py builds its records), whether it succeeded or failed, so a crash
loses at most the job in flight and a failed job is on record.

Telemetry samples of a run go into the spool file of the job they were taken during;
the samples after a run's last job get a file of their own. A spool file that cannot be
written (disk full, file too large) cannot record that failure itself: it is reported
on stderr and in the outcome's `unwritten`, and the sweep goes on.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from spool import SpoolWriter, record

from .config import CFG_SETTINGS, DEVICES, DTYPES, SAVE_IMAGES, SweepConfig
from .ids import new_id, utc_now_iso
from .job import JobContext, JobResult, error_line, run_job
from .metadata import collect_metadata, run_record
from .plan import JobPlan, RunPlan, plan

__all__ = ["CFG_SETTINGS", "DEVICES", "DTYPES", "SAVE_IMAGES", "SweepConfig", "SweepOutcome", "run_sweep"]


class SweepOutcome(list):
    """The spool files a sweep wrote, in order; `unwritten` holds one dict per spool file
    it could not write: what it held (`what`), its `path` and the OS error (`reason`)."""

    def __init__(self):
        super().__init__()
        self.unwritten: list[dict] = []


def run_sweep(cfg: SweepConfig, progress: bool = True) -> SweepOutcome:
    """Run every job of the sweep; return the spool files written, in order (see SweepOutcome)."""
    import torch
    from tqdm import tqdm

    from . import inputs, models
    from .telemetry import PeakRss
    from .timing import PipelineTimer, clock_for

    # 1. Validate what needs the machine or the files, before any work.
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device must be one that this machine has, got 'cuda' (no CUDA device found)")
    masks = inputs.load_masks(cfg.mask, cfg.sizes()) if cfg.mask else {}
    # 2. Load the pipeline once, hook the timer into it, and read the machine's metadata once.
    pipe, model_id = models.load_pipeline(cfg.task, cfg.model, seed=cfg.seed, device=cfg.device,
                                          dtype=getattr(torch, cfg.dtype))
    sweep = _Sweep(cfg=cfg, pipe=pipe, timer=PipelineTimer(pipe, clock_for(cfg.device)), peak_rss=PeakRss(),
                   writer=SpoolWriter(cfg.spool), metadata=collect_metadata(cfg, pipe, model_id),
                   sweep_id=new_id("sweep"), masks=masks)
    # 3. Follow the plan: run by run, job by job, one spool file per job.
    bar = tqdm(total=cfg.jobs_total(), unit="job", disable=not progress, file=sys.stderr)
    try:
        for run in plan(cfg):
            sweep.run(run, bar)
    finally:
        bar.close()
    return sweep.outcome


@dataclass
class _Sweep:
    """What the runs of one sweep share: the pipeline and its instruments, the metadata, the writer."""

    cfg: SweepConfig
    pipe: object
    timer: object       # timing.PipelineTimer
    peak_rss: object    # telemetry.PeakRss
    writer: SpoolWriter
    metadata: dict      # collect_metadata(): the same for every run
    sweep_id: str
    masks: dict         # {(height, width): [masks]} from --mask; empty without it

    def __post_init__(self):
        self.outcome = SweepOutcome()
        self._by_size: dict[tuple[int, int], dict] = {}

    def run(self, run: RunPlan, bar) -> None:
        """One run: its record and sampler, then its jobs in plan order; after an out-of-memory the rest
        of the run is skipped (with --until-oom, that is where the batch sizes stop)."""
        from .ceilings import measure_ceilings
        from .telemetry import Sampler

        cfg = self.cfg
        # 1. What the run's jobs share: the picture and masks to inpaint, the UNet FLOPs per row.
        shared = self._shared(run.height, run.width)
        # 2. What the device measurably reaches now: the run's ceilings, timed before its sampler starts.
        ceilings = measure_ceilings(cfg.device, cfg.dtype)
        # 3. The run's record, and the sampler whose samples each job's file carries.
        ids = {"run_id": new_id("run"), "sweep_id": self.sweep_id, "started_at": utc_now_iso()}
        sampler = Sampler(ids["run_id"], cfg.sample_hz, cfg.device).start()
        run_rec = run_record({**self.metadata, **ceilings}, cfg, run, ids, telemetry_gpu=sampler.gpu)
        ctx = JobContext(cfg=cfg, pipe=self.pipe, timer=self.timer, peak_rss=self.peak_rss, plan=run, run=run_rec,
                         **shared)
        try:
            # 4. The jobs, each into one atomic spool file with the samples taken meanwhile.
            for job in run.jobs:
                bar.set_description(run.label(job))
                result = run_job(ctx, job)
                self.write(ids["run_id"], result.job_id,
                           result.rows + [record("sample", **s) for s in sampler.drain()],
                           _describe(run, job, result))
                bar.update()
                if result.status == "oom":
                    break
        finally:
            # 4. The samples taken after the last job, in a file of their own.
            sampler.stop()
            samples = sampler.drain()
            if samples:
                self.write(ids["run_id"], f"samples-{new_id('end')}",
                           [ctx.run] + [record("sample", **s) for s in samples],
                           f"the last telemetry samples of run {ids['run_id']}")

    def _shared(self, height: int, width: int) -> dict:
        """The JobContext fields that depend on the size only, computed once a size."""
        if (height, width) not in self._by_size:
            from . import inputs

            cfg = self.cfg
            self._by_size[height, width] = {
                "picture": inputs.test_image(height, width, cfg.seed) if cfg.task == "inpaint" else None,
                "masks": tuple(self.masks.get((height, width)) or [inputs.test_mask(height, width)]),
                "flops_per_row": self._flops(height, width),
            }
        return self._by_size[height, width]

    def _flops(self, height: int, width: int) -> float | None:
        """UNet FLOPs per latent row: they depend on the size only, not on CFG or mode."""
        from .profiling import unet_flops_per_row

        try:
            return unet_flops_per_row(self.pipe, height, width, False)
        except Exception:  # FLOP counting is a nicety: never fail a sweep over it
            return None

    def write(self, run_id: str, name: str, rows: list[dict], what: str) -> None:
        """Write one spool file; if that fails, report it on stderr and in the outcome, and go on."""
        from tqdm import tqdm

        try:
            self.outcome.append(self.writer.write(run_id, name, rows))
        except OSError as exc:
            path = self.writer.spool_dir / run_id / f"{name}.jsonl"
            self.outcome.unwritten.append({"what": what, "path": str(path),
                                           "reason": exc.strerror or error_line(exc)})
            tqdm.write(f"error: {what} failed: spool file '{path}' could not be written: {error_line(exc)}; "
                       "the spool cannot record a failure it cannot write, so it is reported only here",
                       file=sys.stderr)


def _describe(run: RunPlan, job: JobPlan, result: JobResult) -> str:
    """A job as the error line about its spool file names it."""
    return (f"job {result.job_id} ({run.mode} {run.height}x{run.width} batch {job.batch_size} {job.kind}, "
            f"ran with status {result.status}{': ' + result.error if result.error else ''})")

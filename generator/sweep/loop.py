"""A sweep, as plan -> run -> record: `plan(cfg)` lists the sizes, their runs and their
jobs (generator/sweep/plan.py), `run_in_process` follows it, and each job ends as one spool file
(generator/sweep/job.py builds its records), whether it succeeded or failed, so a crash
loses at most the job in flight and a failed job is on record.

The runs of a size are open together: warm-up until settled, then measured rounds
that interleave them, then the profiled jobs. When warm-up has settled and when the
rounds stop is generator/sweep/rounds.py's decision, asked as the size goes.

One telemetry sampler runs per size; the samples drained after a job go into that
job's spool file under its run's id. Each run ends with one more file: its run record
with its own `rounds` and `stop_reason` (known only then; the reason quotes the spread of that
run's batch sizes only, and says when the runs of a size stopped together), named `stop-*.jsonl`, and, in the
file of the run whose job ran last, the samples taken after that job. A spool file that cannot be written
(disk full, file too large) cannot record that failure itself: it is reported on
stderr and in the outcome's `unwritten`, and the sweep goes on.
"""

from __future__ import annotations

import contextlib
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import torch
from tqdm import tqdm

from generator.measure import ceilings, telemetry
from generator.measure.invariance import References
from generator.measure.profiling import unet_flops_per_row
from generator.measure.timing import PipelineTimer, clock_for
from generator.pipelines import inputs, models
from generator.records.ids import new_id, utc_now_iso
from generator.records.outcome import Outcome, write_or_report
from generator.sweep.config import SweepConfig
from generator.sweep.job import JobContext, JobResult, run_job, unfinished_job
from generator.sweep.metadata import collect_metadata, run_record
from generator.sweep.plan import JobPlan, RunPlan, SizePlan, out_of_memory, plan
from generator.sweep.rounds import Stop, run_reason, settled, stop_rule
from spool import FILE_KINDS, SpoolWriter, record


def run_in_process(cfg: SweepConfig, progress: bool, sweep_id: str) -> Outcome:
    """Run every job of the sweep in this process; return the spool files written, in order (see
    records.outcome.Outcome). generator/run.py's run_sweep chooses between this and Ray workers."""
    with torch_threads(cfg.threads):
        # 1-2. Check the device and the masks, load the pipeline, read the metadata (the threads with it).
        sweep = open_sweep(cfg, sweep_id, SpoolWriter(cfg.spool))
        # 3. Follow the plan size by size, job by job, one spool file per job.
        bar = tqdm(total=cfg.jobs_total(), unit="job", disable=not progress, file=sys.stderr)
        try:
            for size in plan(cfg):
                Size(sweep, size, bar).run()
        finally:
            bar.close()
    return sweep.outcome


@contextlib.contextmanager
def torch_threads(threads: int | None):
    """PyTorch's CPU threads set to `threads` for the block (None: left as they are), then restored: they are
    the process's, and the next sweep in it (the demo's parts) sets its own."""
    before = torch.get_num_threads()
    if threads is not None:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def open_sweep(cfg: SweepConfig, sweep_id: str, writer, announce=None) -> Sweep:
    """What every size of a sweep shares, ready to run: the pipeline (loaded once), its timer, the metadata.

    `writer` writes each spool file (a SpoolWriter, or a Ray worker's relay to its driver); `announce(run,
    job)`, when given, hears of each job before it runs, with the record it keeps if it never finishes."""
    # 1. Validate what needs the machine or the files, before any work.
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device must be one that this machine has, got 'cuda' (no CUDA device found)")
    masks = inputs.load_masks(cfg.mask, cfg.sizes()) if cfg.mask else {}
    # 2. Load the pipeline once, hook the timer into it, and read the machine's metadata once.
    pipe, model_id = models.load_pipeline(cfg.task, cfg.model, seed=cfg.seed, device=cfg.device,
                                          dtype=getattr(torch, cfg.dtype), arch=cfg.arch)
    memory = telemetry.PeakMemory(cfg.device)
    return Sweep(cfg=cfg, pipe=pipe, timer=PipelineTimer(pipe, clock_for(cfg.device), memory), memory=memory,
                  writer=writer, metadata=collect_metadata(cfg, pipe, model_id), sweep_id=sweep_id, masks=masks,
                  announce=announce)


@dataclass
class Sweep:
    """What the sizes of one sweep share: the pipeline and its instruments, the metadata, the writer."""

    cfg: SweepConfig
    pipe: object
    timer: object       # timing.PipelineTimer
    memory: object      # telemetry.PeakMemory: the job's and each phase's peak
    writer: SpoolWriter
    metadata: dict      # collect_metadata(): the same for every run
    sweep_id: str
    masks: dict         # {(height, width): [masks]} from --mask; empty without it
    announce: object = None  # announce(run record, unfinished job record) before each job; None: nobody asks

    def __post_init__(self):
        self.outcome = Outcome()

    def shared(self, height: int, width: int) -> dict:
        """The JobContext fields that depend on the size only: the picture and masks to inpaint, the UNet
        FLOPs per row."""
        cfg = self.cfg
        return {
            "picture": inputs.test_image(height, width, cfg.seed) if cfg.task == "inpaint" else None,
            "masks": tuple(self.masks.get((height, width)) or [inputs.test_mask(height, width)]),
            "flops_per_row": self._flops(height, width),
        }

    def _flops(self, height: int, width: int) -> float | None:
        """UNet FLOPs per latent row: they depend on the size only, not on CFG or mode."""
        try:
            return unet_flops_per_row(self.pipe, height, width, False)
        except Exception:  # FLOP counting is a nicety: never fail a sweep over it
            return None

    def write(self, run_id: str, name: str, rows: list[dict], what: str) -> None:
        """Write one spool file; if that fails, report it on stderr and in the outcome, and go on."""
        write_or_report(self.outcome, lambda: self.writer.write(run_id, name, rows),
                        Path(self.cfg.spool) / run_id / f"{name}.jsonl", what)


@dataclass
class Size:
    """The runs of one size, open together, and what the runner counts while following their jobs."""

    sweep: Sweep
    plan: SizePlan
    bar: object                                               # tqdm
    contexts: dict[RunPlan, JobContext] = field(default_factory=dict)
    repeats: Counter = field(default_factory=Counter)         # (run, batch size) -> jobs run so far
    times: dict = field(default_factory=dict)                 # (run, batch size) -> measured ok wall_s
    oom: dict[RunPlan, int] = field(default_factory=dict)     # run -> smallest batch size out of memory
    rounds: Counter = field(default_factory=Counter)          # run -> measured rounds it took part in
    stops: dict = field(default_factory=dict)                 # run -> the Stop of each part it was measured in
    last: RunPlan | None = None                               # the run whose job ran last
    references: References = field(default_factory=References)  # first pictures per (run, batch size)
    sampler: object = None                                    # telemetry.Sampler, started in open()
    replica: dict | None = None                               # a replica sweep's run fields (replicas.py)

    def run(self) -> None:
        """Open the size's runs, follow its plan, and close each run with its end file."""
        self.open()
        try:
            self.follow(self.plan)
        finally:
            self.close()

    def open(self) -> None:
        """Time the ceilings, start the sampler, and make each run's record and job context."""
        cfg = self.sweep.cfg
        # 1. What the device measurably reaches now: ceilings, timed once for the runs of the size, before the
        #    sampler starts.
        shared = self.sweep.shared(self.plan.height, self.plan.width)
        ceilings_now = ceilings.measure_ceilings(cfg.device, cfg.dtype)
        # 2. One sampler for the size (its samples get the run id of the job they were drained after).
        ids = {run: {"run_id": new_id("run"), "sweep_id": self.sweep.sweep_id, "started_at": utc_now_iso(),
                     **(self.replica_fields(run) if self.replica else {})}
               for run in self.plan.runs}
        self.sampler = telemetry.Sampler(ids[self.plan.runs[0]]["run_id"], cfg.sample_hz, cfg.device).start()
        # 3. Each run's record (first in each of its job files) and its job context.
        for run in self.plan.runs:
            run_rec = run_record({**self.sweep.metadata, **ceilings_now}, cfg, run, ids[run],
                                 telemetry_gpu=self.sampler.gpu)
            self.contexts[run] = JobContext(cfg=cfg, pipe=self.sweep.pipe, timer=self.sweep.timer,
                                            memory=self.sweep.memory, plan=run, run=run_rec, **shared)

    def replica_fields(self, run: RunPlan) -> dict:
        """replicas, replica_group (the level's id and the run's place in the size: the same on every worker
        of the level) and replica_index."""
        r = self.replica
        return {"replicas": r["replicas"], "replica_group": f"{r['level']}-{self.plan.runs.index(run)}",
                "replica_index": r["index"]}

    def follow(self, part: SizePlan) -> None:
        """Warm-up per (run, batch size) until settled, the measured rounds, the profiled jobs of `part` (the
        size's plan, or a part of it: SizePlan.only)."""
        self.warm_ups(part)
        self.finish(part, self.measure(part))

    def warm_ups(self, part: SizePlan) -> None:
        """The warm-ups of every (run, batch size) of `part`."""
        for job in part.warmups:
            self.warm_up(job)

    def finish(self, part: SizePlan, stop: Stop) -> None:
        """After the measured rounds of `part`: why they stopped, for each of its runs; its profiled jobs."""
        for run in {job.run for jobs in part.rounds for job in jobs}:
            self.stops.setdefault(run, []).append(stop)
        for job in part.profiled:
            self.job(job)

    def close(self) -> None:
        """Each run's end file: its record with rounds and stop reason; the last samples go with the run whose
        job ran last."""
        self.sampler.stop()
        self.close_runs()

    def warm_up(self, job: JobPlan) -> None:
        """Warm-up jobs of one (run, batch size) until their times settle (rounds.settled); a failed job ends
        the warm-up of its batch size."""
        cfg, times = self.sweep.cfg, []
        while True:
            result = self.job(job)
            if result is None or result.status != "ok":
                return
            times.append(result.job["wall_s"])
            if settled(times, cfg.warmup, cfg.warmup_max, cfg.settle):
                return
            if len(times) >= cfg.warmup:  # past the warm-ups the progress bar counted
                self.bar.total += 1
                self.bar.refresh()

    def measure(self, part: SizePlan) -> Stop:
        """The measured rounds of `part`, in plan order, until rounds.stop_rule stops them; return its last Stop
        (why they stopped). A run's `rounds` is the most rounds it took part in in any part (a replica sweep
        measures each batch size in a part of its own)."""
        start, stop = time.monotonic(), Stop(True, "no measured rounds planned")
        for r in range(len(part.rounds)):
            stop = self.measure_round(part, r, start)
            if stop.stop:
                self.bar.total -= sum(len(later) for later in part.rounds[r + 1:])
                self.bar.refresh()
                return stop
        return stop

    def measure_round(self, part: SizePlan, r: int, start: float) -> Stop:
        """Measured round r of `part` (begun at `start`, time.monotonic), and what rounds.stop_rule says after it.
        A replica sweep calls this round by round on all its workers at once (cluster/replicas.py)."""
        ran = {job.run for job in part.rounds[r] if self.job(job) is not None}
        for run in ran:
            self.rounds[run] = max(self.rounds[run], r + 1)
        return stop_rule(self.live_times(part), r + 1, time.monotonic() - start, self.sweep.cfg)

    def live_times(self, part: SizePlan) -> dict[str, list[float]]:
        """The measured times of each (run, batch size) still running, by name (its measured job's label)."""
        return {job.run.label(job): self.times.get(job.slot, [])
                for job in part.rounds[0] if not out_of_memory(job, self.oom)}

    def job(self, job: JobPlan) -> JobResult | None:
        """Run one job into its spool file, with the samples taken meanwhile; None when --until-oom's rule
        skips it."""
        if out_of_memory(job, self.oom):
            return None
        ctx = self.contexts[job.run]
        run_id, repeat, job_id = ctx.run["run_id"], self.repeats[job.slot], new_id(FILE_KINDS["job"])
        self.bar.set_description(job.run.label(job))
        if self.sweep.announce is not None:
            self.sweep.announce(ctx.run, unfinished_job(ctx, job, repeat, job_id))
        result = run_job(ctx, job, repeat, job_id)
        self.repeats[job.slot] += 1
        self.last = job.run
        checks = [] if result.status != "ok" else [
            record("image_check", job_id=result.job_id, **c)
            for c in self.references.check(job.run, job.batch_size, result.job_id, result.seeds, result.images,
                                                 result.prompts if self.sweep.cfg.task == "txt2img" else None)]
        samples = [record("sample", **{**s, "run_id": run_id}) for s in self.sampler.drain()]
        self.sweep.write(run_id, result.job_id, result.rows + checks + samples, _describe(job, result))
        self.bar.update()
        if result.status == "oom":
            self.oom[job.run] = min(job.batch_size, self.oom.get(job.run, job.batch_size))
        elif result.status == "ok" and job.kind == "measured":
            self.times.setdefault(job.slot, []).append(result.job["wall_s"])
        return result

    def close_runs(self) -> None:
        """One end file per run: the run record plus its own `rounds` and `stop_reason` (rounds.run_reason: the
        spread of its own batch sizes), and the samples left."""
        samples = self.sampler.drain()
        for run, ctx in self.contexts.items():
            run_id = ctx.run["run_id"]
            mine = samples if run == (self.last or self.plan.runs[0]) else []
            names = [run.label(job) for job in self.plan.rounds[0] if job.run == run] if self.plan.rounds else []
            reason = (run_reason(self.stops[run], names, len(self.plan.runs)) if run in self.stops
                      else f"interrupted after {self.rounds[run]} rounds")
            rows = [{**ctx.run, "rounds": self.rounds[run], "stop_reason": reason}]
            rows += [record("sample", **{**s, "run_id": run_id}) for s in mine]
            self.sweep.write(run_id, new_id(FILE_KINDS["run_end"]), rows, f"the end record of run {run_id}")


def _describe(job: JobPlan, result: JobResult) -> str:
    """A job as the error line about its spool file names it."""
    run = job.run
    return (f"job {result.job_id} ({run.mode} {run.height}x{run.width} batch {job.batch_size} {job.kind}, "
            f"ran with status {result.status}{': ' + result.error if result.error else ''})")

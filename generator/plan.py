"""The plan of a sweep: which runs, which jobs, in which order, as plain data.

A run is one size, CFG setting and mode; its jobs are the batch executions, each a
warm-up, a measured or a profiled one. `plan(cfg)` is the one place that decides the
order of execution; the runner (generator/sweep.py) follows it job by job.

With --until-oom a run lists, after its listed batch sizes, the doubling candidates up
to --max-batch (`extra` jobs); the runner skips the rest of a run once a job of it runs
out of memory, so at run time the batch sizes stop at the first out-of-memory.
"""

from __future__ import annotations

from dataclasses import dataclass

from .config import SweepConfig

JOB_KINDS = ("warmup", "measured", "profiled")


@dataclass(frozen=True)
class JobPlan:
    """One batch execution: its batch size, its repeat index and its kind."""

    batch_size: int
    repeat: int         # 0.. warm-ups first, then the measured jobs, then the profiled one
    kind: str           # warmup | measured | profiled
    save_images: bool   # whether the job keeps its images (--save-images)
    extra: bool = False  # a doubling candidate of --until-oom, beyond the listed batch sizes

    @property
    def warmup(self) -> bool:
        return self.kind == "warmup"

    @property
    def profiled(self) -> bool:
        return self.kind == "profiled"


@dataclass(frozen=True)
class RunPlan:
    """One run: a size, a guidance scale and a mode; its jobs in the order they run."""

    height: int
    width: int
    guidance: float
    mode: str
    jobs: tuple[JobPlan, ...]

    @property
    def cfg(self) -> bool:
        """Classifier-free guidance is on: every UNet call carries twice the rows."""
        return self.guidance > 1.0

    def label(self, job: JobPlan) -> str:
        """How the progress bar names a job of this run."""
        return (f"{self.mode} {self.height}x{self.width} cfg {'on' if self.cfg else 'off'} batch {job.batch_size}"
                + ("" if job.kind == "measured" else f" {job.kind}"))


def batch_sizes(cfg: SweepConfig) -> list[tuple[int, bool]]:
    """(batch size, extra) in order: the listed sizes, then with --until-oom the doublings up to --max-batch."""
    sizes = [(b, False) for b in cfg.batch_sizes]
    if cfg.until_oom:
        b = max(cfg.batch_sizes) * 2
        while b <= cfg.max_batch:
            sizes.append((b, True))
            b *= 2
    return sizes


def jobs_of(cfg: SweepConfig, batch_size: int, extra: bool = False) -> list[JobPlan]:
    """The jobs of one batch size: warm-ups, measured repeats, then the profiled job if asked."""
    kinds = (["warmup"] * cfg.warmup + ["measured"] * cfg.repeats + (["profiled"] if cfg.profile_ops else []))
    return [JobPlan(batch_size, repeat, kind, _keeps_images(cfg, kind, repeat), extra)
            for repeat, kind in enumerate(kinds)]


def _keeps_images(cfg: SweepConfig, kind: str, repeat: int) -> bool:
    # "first": the first measured job of each batch size keeps its images.
    return cfg.save_images == "all" or (cfg.save_images == "first" and kind == "measured" and repeat == cfg.warmup)


def plan(cfg: SweepConfig) -> list[RunPlan]:
    """Every run of the sweep with its jobs, in the order they run: size, then CFG setting, then mode;
    within a run, batch size by batch size."""
    jobs = tuple(job for b, extra in batch_sizes(cfg) for job in jobs_of(cfg, b, extra))
    return [RunPlan(height, width, guidance, mode, jobs)
            for height, width in cfg.sizes() for guidance in cfg.guidances() for mode in cfg.mode]

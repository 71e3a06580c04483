"""The plan of a sweep: which runs, which jobs, in which order, as plain data.

A run is one size, step count, CFG setting, VAE slicing setting, attention kernel and mode. The runs of a size are open together, and
their jobs are planned for the size as a whole (a SizePlan):

1. warm-up: one warm-up job per (run, batch size), in round 0's order; the runner
   repeats each until its times settle (generator/sweep/rounds.py), at least --warmup times;
2. measured rounds: round r runs every (run, batch size) of the size once, in the order
   `round_order` gives it (batch sizes rotated by r and, within each batch size, the runs
   rotated by r), so a slow spell spreads over every batch size and every run instead of
   reading as the effect of one; --repeats rounds, or with --repeats auto up to
   --max-rounds, the runner asking `rounds.stop_rule` after each whether to go on;
3. profiled: one profiled job per (run, batch size) with --profile-ops, after the rounds.

`plan(cfg)` is the one place that decides the order; the runner (generator/sweep/loop.py)
follows it job by job. With --until-oom every run lists, after its listed batch sizes,
the doubling candidates up to --max-batch (`extra` jobs); once a job of a run runs out
of memory, the runner skips that batch size and the larger ones of that run from then
on (`out_of_memory`). Round 0 runs the batch sizes in the listed order, so the
first out-of-memory is met growing.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from generator.sweep.config import SweepConfig

JOB_KINDS = ("warmup", "measured", "profiled")


@dataclass(frozen=True)
class RunPlan:
    """One run: a size, a guidance scale, a mode, whether the VAE decodes one image at a time, the steps, and the
    attention kernel (generator/pipelines/attention.py)."""

    height: int
    width: int
    guidance: float
    mode: str
    vae_slicing: bool = False
    steps: int = 10
    attention: str = "sdpa"

    @property
    def cfg(self) -> bool:
        """Classifier-free guidance is on: every UNet call carries twice the rows."""
        return self.guidance > 1.0

    def label(self, job: JobPlan) -> str:
        """How the progress bar (and a stop reason) names a job of this run."""
        return (f"{self.mode} {self.height}x{self.width} cfg {'on' if self.cfg else 'off'}"
                + (" vae slicing" if self.vae_slicing else "") + f" {self.steps} steps"
                + ("" if self.attention == "sdpa" else f" {self.attention} attention") + f" batch {job.batch_size}"
                + ("" if job.kind == "measured" else f" {job.kind}"))


@dataclass(frozen=True)
class JobPlan:
    """One batch execution: its run, batch size and kind, and the round it belongs to."""

    run: RunPlan
    batch_size: int
    kind: str                 # warmup | measured | profiled
    round: int | None = None  # measured jobs: 0-based round of their size; None for warm-up and profiled
    save_images: bool = False  # whether the job keeps its images (--save-images)
    extra: bool = False       # a doubling candidate of --until-oom, beyond the listed batch sizes

    @property
    def warmup(self) -> bool:
        return self.kind == "warmup"

    @property
    def profiled(self) -> bool:
        return self.kind == "profiled"

    @property
    def slot(self) -> tuple[RunPlan, int]:
        """(run, batch size): what a round runs once, and what warm-up and repeats count per."""
        return self.run, self.batch_size


@dataclass(frozen=True)
class SizePlan:
    """The runs of one size and their jobs, in the order they run."""

    height: int
    width: int
    runs: tuple[RunPlan, ...]
    warmups: tuple[JobPlan, ...]              # one per (run, batch size); each repeated until settled
    rounds: tuple[tuple[JobPlan, ...], ...]   # the measured rounds, each every (run, batch size) once
    profiled: tuple[JobPlan, ...]             # with --profile-ops, one per (run, batch size)

    def jobs(self) -> tuple[JobPlan, ...]:
        """Every planned job once, in order (each warm-up counted once, every round counted)."""
        return self.warmups + tuple(job for jobs in self.rounds for job in jobs) + self.profiled

    def only(self, runs=None, batch_sizes=None) -> SizePlan:
        """The part of this plan for some of its runs and batch sizes (None: all), in the same order: a Ray
        worker's share (one run), or one batch size of a replica sweep. Rounds left empty are dropped."""
        def keep(job: JobPlan) -> bool:
            return (runs is None or job.run in runs) and (batch_sizes is None or job.batch_size in batch_sizes)

        rounds = tuple(kept for kept in (tuple(filter(keep, jobs)) for jobs in self.rounds) if kept)
        return SizePlan(self.height, self.width, tuple(r for r in self.runs if runs is None or r in runs),
                        tuple(filter(keep, self.warmups)), rounds, tuple(filter(keep, self.profiled)))


def batch_sizes(cfg: SweepConfig) -> list[tuple[int, bool]]:
    """(batch size, extra) in order: the listed sizes, then with --until-oom the doublings up to --max-batch."""
    sizes = [(b, False) for b in cfg.batch_sizes]
    if cfg.until_oom:
        b = max(cfg.batch_sizes) * 2
        while b <= cfg.max_batch:
            sizes.append((b, True))
            b *= 2
    return sizes


def rotated(items: tuple | list, r: int) -> list:
    """`items` rotated left by r: [a, b, c] by 1 is [b, c, a]."""
    items = list(items)
    k = r % len(items) if items else 0
    return items[k:] + items[:k]


def round_order(runs: tuple[RunPlan, ...], sizes: list[tuple[int, bool]], r: int) -> list[tuple[RunPlan, int, bool]]:
    """(run, batch size, extra) in the order round r runs them: batch sizes rotated by r, and for each
    batch size the runs rotated by r. Runs alternate job by job, so a slow spell of a few jobs lands on
    every run alike; each round a batch size comes one place earlier, so over the rounds it takes each
    place in the round. Round 0 is the listed order."""
    return [(run, b, extra) for b, extra in rotated(sizes, r) for run in rotated(runs, r)]


def keeps_images(cfg: SweepConfig, kind: str, round_: int | None) -> bool:
    """--save-images: all, none, or (first) the measured job of round 0 of each run and batch size."""
    return cfg.save_images == "all" or (cfg.save_images == "first" and kind == "measured" and round_ == 0)


def _job(cfg: SweepConfig, run: RunPlan, b: int, extra: bool, kind: str, round_: int | None = None) -> JobPlan:
    return JobPlan(run, b, kind, round_, keeps_images(cfg, kind, round_), extra)


def size_plan(cfg: SweepConfig, height: int, width: int) -> SizePlan:
    """The jobs of one size: warm-ups in round 0's order, cfg.rounds() rotated rounds, then the profiled jobs."""
    runs = tuple(RunPlan(height, width, guidance, mode, slicing == "on", steps, kernel)
                 for steps in cfg.steps for guidance in cfg.guidances() for slicing in cfg.vae_slicing
                 for kernel in cfg.attention for mode in cfg.mode)
    sizes = batch_sizes(cfg)
    first = round_order(runs, sizes, 0)
    return SizePlan(
        height, width, runs,
        warmups=tuple(_job(cfg, *slot, "warmup") for slot in first) if cfg.warmup else (),
        rounds=tuple(tuple(_job(cfg, *slot, "measured", r) for slot in round_order(runs, sizes, r))
                     for r in range(cfg.rounds())),
        profiled=tuple(_job(cfg, *slot, "profiled") for slot in first) if cfg.profile_ops else (),
    )


def plan(cfg: SweepConfig) -> tuple[SizePlan, ...]:
    """Every size of the sweep with its runs (steps, CFG setting, VAE slicing, attention kernel, then mode) and their jobs, in the order
    they run."""
    return tuple(size_plan(cfg, height, width) for height, width in cfg.sizes())


def out_of_memory(job: JobPlan, limits: Mapping[RunPlan, int]) -> bool:
    """Whether --until-oom's rule skips `job`: its run ran out of memory at this batch size or a smaller one
    (`limits`: run -> the smallest batch size of it that ran out of memory)."""
    return job.run in limits and job.batch_size >= limits[job.run]

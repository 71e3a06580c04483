"""Ray benchmarks (make bench): what a Ray worker costs a job, and one worker against two.

1. Ray's cost per job: the same small sweep (tiny model, 64 px, batch 1 and 4, fixed rounds) in this
   process and on one Ray worker with the same threads, alternated, --pairs times; the median job time of
   each batch size on the worker over the one in-process. Target: within 5% (the worker hands its records
   to the driver between jobs, never during one).
2. One worker or two: a replica sweep (--replicas 1,2,1,2: the levels alternate) on a local Ray instance;
   aggregate images/s at each batch size and the two ways to do more at once. Reported, no target: on one
   machine the two workers split its cores.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from collections import defaultdict
from pathlib import Path

from benchmarks.results import Results
from generator.run import run_sweep
from generator.sweep.config import SweepConfig

SMALL = dict(resolutions=(64,), mode=("static",), steps=10, repeats=8, warmup=2, warmup_max=2, sample_hz=0,
             save_images="none")


def measured(spool: str) -> dict:
    """{(replicas, replica group, replica index, batch size): [wall_s of measured ok jobs]} from a spool folder."""
    out = defaultdict(list)
    for f in Path(spool).rglob("job-*.jsonl"):
        run, job = (json.loads(line) for line in f.read_text().splitlines()[:2])
        if job["status"] == "ok" and not job["warmup"] and not job["profiled"]:
            out[(run["replicas"], run["replica_group"], run["replica_index"], job["batch_size"])].append(job["wall_s"])
    return out


def ray_cost(pairs: int, batch_sizes: tuple[int, ...]) -> dict[int, list[float]]:
    """{batch size: [median on the worker / median in-process, one per pair]}."""
    ratios = defaultdict(list)
    for _ in range(pairs):
        medians = {}
        for where in ("process", "ray"):
            with tempfile.TemporaryDirectory() as tmp:
                extra = {"ray": "local", "workers": 1} if where == "ray" else {}
                run_sweep(SweepConfig(**SMALL, batch_sizes=batch_sizes, spool=tmp, out=tmp, **extra), progress=False)
                times = measured(tmp)
                medians[where] = {b: statistics.median(t) for (*_, b), t in times.items()}
        for b in batch_sizes:
            ratios[b].append(medians["ray"][b] / medians["process"][b])
    return ratios


def one_or_two(batch_sizes: tuple[int, ...], resolution: int) -> dict:
    """{(workers, batch size): [aggregate images/s, one per level]} of a replica sweep 1,2,1,2."""
    with tempfile.TemporaryDirectory() as tmp:
        cfg = SweepConfig(**{**SMALL, "resolutions": (resolution,)}, batch_sizes=batch_sizes, ray="local",
                          replicas=(1, 2, 1, 2), spool=tmp, out=tmp)
        run_sweep(cfg, progress=False)
        per_worker = measured(tmp)
    levels = defaultdict(float)
    for (n, group, _, b), times in per_worker.items():
        levels[(n, group, b)] += b / statistics.median(times)
    out = defaultdict(list)
    for (n, _, b), rate in sorted(levels.items()):
        out[(n, b)].append(rate)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3, help="in-process and Ray sweeps, alternated")
    parser.add_argument("--resolution", type=int, default=128, help="image size of the replica sweep")
    args = parser.parse_args()
    results = Results()
    print("Ray's cost per job: median job time on one Ray worker / in this process (tiny model, 64 px)")
    for b, r in sorted(ray_cost(args.pairs, (1, 4)).items()):
        median = statistics.median(r)
        print(f"  batch {b}: {median:.3f}  (min {min(r):.3f}, max {max(r):.3f}, {len(r)} pairs)")
        results.add(f"ray worker job time over in-process batch {b}", median, "ratio", "<= 1.05", median <= 1.05)
    print(f"\none worker or two (replica sweep 1,2,1,2, tiny model, {args.resolution} px): aggregate images/s")
    rates = one_or_two((1, 2, 4), args.resolution)
    base = statistics.median(rates[(1, 1)])
    for (n, b), r in sorted(rates.items()):
        median = statistics.median(r)
        print(f"  {n} worker{'s' if n > 1 else ' '} batch {b}: {median:6.1f} images/s  ({', '.join(f'{x:.1f}' for x in r)})"
              f"  speed-up {median / base:.2f}, efficiency {median / base / (n * b):.0%}")
        results.add(f"replicas {n} batch {b} images/s", median, "images/s")
    results.save()


if __name__ == "__main__":
    main()

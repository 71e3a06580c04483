"""The default demo: one sweep that shows every effect the dashboard explains, on the tiny models, in a few
minutes on two CPU cores.

Its parts share one sweep id, so the dashboard shows them as one sweep:
1. the comparison: sequential, static and stream side by side, CFG off and on, at the small size;
2. the second size: static at twice the side, with one profiled job per batch size (the Operators page);
3. inpainting: the tiny LDM-style inpainting model (7-channel UNet, VQ first stage with f=4);
4. one worker or two: a replica sweep on a local Ray instance (generator/replicas.py), static at the small size;
5. serving under load: fifo, batch and stream at light to past-capacity Poisson loads and bursts of 1
   and 4 requests, with the latency the calibrated batch cost predicts (generator/load.py).
Each sweep part keeps the first measured job's images of each batch size (the Gallery, and the image checks
against batch 1) and stops its measured rounds at the interval target or the caps below.
"""

from __future__ import annotations

from .config import SweepConfig
from .ids import new_id

# What every part shares: the batch sizes, the steps, and how long its rounds may go on.
COMMON = dict(batch_sizes=(1, 2, 4, 8), steps=10, repeats="auto", max_rounds=10, max_seconds=40.0)
PARTS = (
    ("modes and CFG", dict(resolutions=(64,), mode=("sequential", "static", "stream"),
                           classifier_free_guidance=("off", "full"), guidance=7.5)),
    ("a second size, profiled", dict(resolutions=(128,), mode=("static",), profile_ops=True)),
    ("inpainting", dict(resolutions=(64,), mode=("static",), task="inpaint", arch="ldm-inpaint-tiny")),
    ("one worker or two (Ray)", dict(resolutions=(64,), mode=("static",), ray="local", replicas=(1, 2))),
)


# The load part: short levels (MLPerf-style minimums scaled down to a demo), small batches.
LOAD = dict(loads=(0.25, 0.5, 1.0, 1.5), burst=4, max_batch=4, max_delay=0.05, min_requests=16, min_seconds=2.0,
            resolution=64, steps=10)


def demo_configs(**overrides) -> list[tuple[str, SweepConfig]]:
    """(name, SweepConfig) of each part, with `overrides` (spool, out, ...) applied to every one."""
    return [(name, SweepConfig(**{**COMMON, **part, **overrides})) for name, part in PARTS]


def run_demo(progress: bool = True, **overrides) -> list:
    """Run every part under one sweep id; return the spool files written (an outcome per part, in order)."""
    import sys

    from .sweep import run_sweep

    from .load import LoadConfig, run_load

    sweep_id, outcomes, parts = new_id("sweep"), [], len(PARTS) + 1
    for n, (name, cfg) in enumerate(demo_configs(**overrides), start=1):
        if progress:
            print(f"demo part {n} of {parts}: {name}", file=sys.stderr)
        outcomes.append(run_sweep(cfg, progress=progress, sweep_id=sweep_id))
    if progress:
        print(f"demo part {parts} of {parts}: serving under load", file=sys.stderr)
    spool = {"spool": overrides["spool"]} if "spool" in overrides else {}
    outcomes.append(run_load(LoadConfig(**LOAD, **spool), progress=progress, sweep_id=sweep_id))
    return outcomes


def describe() -> str:
    """The parts, one line each, for the CLI's help."""
    parts = [*PARTS, ("serving under load (python -m generator load)", LOAD)]
    return "; ".join(f"{n}. {name}: " + ", ".join(f"{k}={v}" for k, v in part.items())
                     for n, (name, part) in enumerate(parts, start=1))



"""The default demo: one sweep that shows every effect the dashboard explains, on the tiny models, in minutes
on two CPU cores (README: the demo's time).

First, in a sweep of its own, the transformer family: pixart-tiny (PixArt's transformer at toy widths, random
weights) at the second size, profiled, with the fused attention kernel and the math path (the Operators page sets
it beside part 4's UNet; a sweep of its own keeps its noise pictures off the other pages). Then the parts share one
sweep id, so the dashboard shows them as one sweep:
1. the main comparison: static, CFG off, at the small size, over batch sizes 1-16 finely enough for a bend to
   be placed (1, 2, 3, 4, 6, 8, 12, 16), with the most rounds: the demo's headline (batch 16 against batch 1);
2. modes: sequential, static and stream side by side, with CFG on (against part 1's static run, CFG off: the
   Gallery shows the same seeds without and with guidance);
3. fewer steps: 2, 5 and 20 denoising steps at batch 1, 4 and 16 (part 1 is the 10), the other trade for speed
   (the Throughput page: time per image against the share of pictures showing the asked colours);
4. the second size: static at twice the side, with one profiled job per batch size, with the fused attention
   kernel and the math path (the Operators page);
5. inpainting: the tiny LDM-style inpainting model (7-channel UNet, VQ first stage with f=4);
6. one worker or two: a replica sweep on a local Ray instance (generator/cluster/replicas.py), static at the small size;
7. serving under load: fifo, batch and stream at light to past-capacity Poisson loads and bursts of 1
   and 4 requests, with the latency the calibrated batch cost predicts (generator/serve/load.py);
8. over HTTP: `generator serve` (the batch policy) started in this process on a free local port, measured by
   `load --endpoint` as any OpenAI Images API server would be (generator/serve/client.py); the server's own
   record of that traffic joins the sweep too.
Each sweep part keeps the first measured job's images of each batch size (the Gallery, and the image checks
against batch 1) and stops its measured rounds at the interval target or the caps below. Parts 1-4 measure
different settings (size, mode, CFG, steps, task); part 6's one-worker run has part 1's settings on a Ray worker.
The models are the embedded ones with their shipped weights (pipelines/trained/), so the pictures show the
prompts: captions of the shapes data set the model was not trained on (inputs.DEFAULT_PROMPTS).

The in-process parts run torch on one thread (`threads`): on two shared cores a second thread waits on
one the OS took away, and a job then takes many times its usual time (README: Threads).
The Ray part splits the CPUs among its workers itself.
"""

from __future__ import annotations

import sys

from generator.records.ids import new_id
from generator.run import run_load, run_sweep
from generator.serve.api import running
from generator.serve.config import ServeConfig
from generator.serve.levels import LoadConfig
from generator.serve.service import Service
from generator.sweep.config import SweepConfig

# What every part shares: 10 steps, at most 2 warm-ups per batch size (on a busy machine the job time may never
# settle, and 5 warm-ups of every batch size cost a part more than its measured rounds), rounds until the
# interval target or a cap.
COMMON = dict(batch_sizes=(1, 2, 4, 8), steps=10, warmup_max=2, repeats="auto", max_rounds=10, max_seconds=30.0)
ONE_THREAD = dict(threads=1)
# The main comparison: batch sizes for a knee to be seen, and the most rounds. The 95% order-statistic interval
# of the ratio of batch 16's median to batch 1's (6 rounds at least) came within ±5% (median of 2000 simulated
# sweeps) after 10 rounds at a per-job spread (MAD/median) of 2%, 20-30 at 4%, 40 at 6%.
MAIN = dict(batch_sizes=(1, 2, 3, 4, 6, 8, 12, 16), target=0.02, max_rounds=40, max_seconds=90.0)
PARTS = (
    ("the main comparison (static, CFG off, batch 1-16)", dict(resolutions=(64,), mode=("static",), **MAIN,
                                                               **ONE_THREAD)),
    ("modes, CFG on", dict(resolutions=(64,), mode=("sequential", "static", "stream"),
                           classifier_free_guidance=("full",), guidance=7.5, max_seconds=60.0, **ONE_THREAD)),
    ("fewer steps", dict(resolutions=(64,), mode=("static",), steps=(2, 5, 20), batch_sizes=(1, 4, 16),
                         max_seconds=40.0, **ONE_THREAD)),
    ("a second size, profiled, two attention kernels", dict(resolutions=(128,), mode=("static",), profile_ops=True,
                                                            attention=("sdpa", "math"), max_seconds=50.0,
                                                            **ONE_THREAD)),
    ("inpainting", dict(resolutions=(64,), mode=("static",), task="inpaint", arch="ldm-inpaint-tiny",
                        **ONE_THREAD)),
    ("one worker or two (Ray)", dict(resolutions=(64,), mode=("static",), ray="local", replicas=(1, 2))),
)

# The transformer family beside part 4's UNet, in a sweep of its own (run first, so the main sweep is the newest).
TRANSFORMER = ("a transformer beside the UNet (its own sweep)",
               dict(resolutions=(128,), mode=("static",), arch="pixart-tiny", profile_ops=True,
                    attention=("sdpa", "math"), max_seconds=40.0, **ONE_THREAD))


# The load part: short levels (MLPerf-style minimums scaled down to a demo), small batches. A level lasts about
# min_requests / (load x capacity) seconds, so a light level is the longest: 0.25x alone is half the Poisson
# levels' time (on a busy machine, calibrated at 2 requests/s, 44 s a level); 0.5x is the light level.
LOAD = dict(loads=(0.5, 1.0, 1.5), burst=4, max_batch=4, max_delay=0.05, min_requests=16, min_seconds=2.0,
            resolution=64, steps=10)


# The HTTP part: the server batches as the load part's batch policy does; the client offers two loads of its
# calibrated capacity and bursts of 1 and 4.
SERVE = dict(policy="batch", max_batch=4, max_delay=0.05, resolution=64, steps=10, port=0)
HTTP_LOAD = dict(loads=(0.5, 1.0), burst=4, max_batch=4, min_requests=16, min_seconds=2.0, resolution=64, steps=10)


def demo_configs(**overrides) -> list[tuple[str, SweepConfig]]:
    """(name, SweepConfig) of each part of the main sweep, with `overrides` (spool, out, ...) applied to every one."""
    return [(name, SweepConfig(**{**COMMON, **part, **overrides})) for name, part in PARTS]


def transformer_config(**overrides) -> SweepConfig:
    """The transformer part's SweepConfig, with `overrides` applied."""
    return SweepConfig(**{**COMMON, **TRANSFORMER[1], **overrides})


def run_demo(progress: bool = True, load: dict | None = None, **overrides) -> list:
    """Run the transformer part, then every other part under one sweep id; return the spool files written (an
    outcome per part, in order).
    `overrides` change every sweep part's SweepConfig (spool, out, max_rounds, ...); `load` the load part's
    LoadConfig fields (its spool is the sweep's)."""
    outcomes, parts = [], len(PARTS) + 3
    if progress:
        print(f"demo part 1 of {parts}: {TRANSFORMER[0]}", file=sys.stderr)
    outcomes.append(run_sweep(transformer_config(**overrides), progress=progress))
    sweep_id = new_id("sweep")
    for n, (name, cfg) in enumerate(demo_configs(**overrides), start=2):
        if progress:
            print(f"demo part {n} of {parts}: {name}", file=sys.stderr)
        outcomes.append(run_sweep(cfg, progress=progress, sweep_id=sweep_id))
    if progress:
        print(f"demo part {parts - 1} of {parts}: serving under load", file=sys.stderr)
    spool = {"spool": overrides["spool"]} if "spool" in overrides else {}
    outcomes.append(run_load(LoadConfig(**{**LOAD, **(load or {}), **spool}), progress=progress, sweep_id=sweep_id))
    if progress:
        print(f"demo part {parts} of {parts}: an image server over HTTP, measured by a client", file=sys.stderr)
    serve_cfg = ServeConfig(**SERVE, **spool)
    with running(serve_cfg, Service(serve_cfg, sweep_id=sweep_id)) as url:
        client = LoadConfig(**{**HTTP_LOAD, **(load or {}), **spool, "endpoint": url})
        outcomes.append(run_load(client, progress=progress, sweep_id=sweep_id))
    return outcomes


def describe() -> str:
    """The parts, one line each, for the CLI's help."""
    parts = [TRANSFORMER, *PARTS, ("serving under load (python -m generator load)", LOAD),
             ("over HTTP (python -m generator serve, measured by load --endpoint)", {**SERVE, **HTTP_LOAD})]
    return "; ".join(f"{n}. {name}: " + ", ".join(f"{k}={v}" for k, v in part.items())
                     for n, (name, part) in enumerate(parts, start=1))



"""Many requests at once: `python -m generator load`, a load generator and a server in one process.

Requests (one image each) arrive by a Poisson process at a given rate, from a closed loop of N clients
(each asks again the moment its image is back), from a trace file, or as a burst of N at once; an
in-process server runs them on the sweep's pipelines under each scheduling policy of
generator/serve/scheduler.py (fifo, batch, stream), on the real clock, doing the work through
generator/serve/engine.py. Each (policy, load) pair is one **level**, written as one spool file at its end:
the level record, a record per request and one per unit of work (spool/contract.py; the tables
load_levels, requests and server_steps of warehouse/README.md).

The plan of a load run:
1. load the pipeline, and calibrate the batch cost on this machine: jobs of 1 and max_batch requests
   (t(B) = fixed + marginal x B), and stream steps of 1 and max_batch rows with and without requests
   leaving (step and decode costs), fitted by least squares (`calibrate`);
2. the offered loads: with Poisson arrivals, multiples (`--loads`) of the capacity the fitted cost
   predicts at the largest batch, max_batch / t(max_batch); each level runs at least --min-requests
   requests and --min-seconds of arrivals, as MLPerf's server scenario sets a minimum query count and
   duration;
3. every level under every policy, and with --burst N, bursts of 1 and N per policy ("N requests sent
   at once finished in X times the time of one");
4. beside each level's measurement, the prediction: the discrete-event simulation of the same policy on
   the same arrival times with the calibrated cost (`scheduler.simulate`), recorded in the level.

With --ray every server is a Ray actor, and --servers N puts N of them behind a round-robin router at the
same offered loads (generator/serve/router.py: the router and a level's records; generator/cluster/servers.py:
the actors).
"""

from __future__ import annotations

import dataclasses
import sys

import numpy as np
import torch
from tqdm import tqdm

from generator.pipelines import models
from generator.pipelines.inputs import DEFAULT_PROMPTS
from generator.records.ids import hostname, new_id, utc_now_iso
from generator.records.outcome import Outcome, error_line, write_or_report
from generator.serve.arrivals import ClosedLoop, burst, read_trace
from generator.serve.engine import RealClock, Worker
from generator.serve.levels import Level, LoadConfig, levels
from generator.serve.router import Served, level_records, round_robin, serve_share
from generator.serve.scheduler import Done, LinearCost, Policy, Request, percentile, serve, simulate
from spool import FILE_KINDS, SpoolWriter


# 2. Calibration: the batch cost of this model, size and device, fitted on short real runs.

def fit_job(durations: dict[int, list[float]]) -> tuple[float, float]:
    """(fixed, marginal) of t(B) = fixed + marginal x B through the median time of each batch size."""
    sizes = sorted(durations)
    if len(sizes) < 2:
        raise ValueError(f"a job cost needs two batch sizes, got {sizes}")
    marginal, fixed = np.polyfit(sizes, [float(np.median(durations[b])) for b in sizes], 1)
    return float(fixed), float(marginal)


def fit_step(work: list[tuple[int, int, float]]) -> tuple[float, float, float, float]:
    """(step fixed, step per row, decode fixed, decode per request) from stream work units (rows, leaving,
    seconds): seconds = a + b x rows + (c + d x leaving if any left), least squares."""
    x = np.array([[1.0, rows, 1.0 if out else 0.0, out] for rows, out, _ in work])
    y = np.array([s for *_, s in work])
    if np.linalg.matrix_rank(x) < 4:
        raise ValueError("a stream cost needs steps of two row counts, with and without requests leaving")
    (a, b, c, d), *_ = np.linalg.lstsq(x, y, rcond=None)
    return float(a), float(b), float(c), float(d)


def calibrate(worker_for, max_batch: int, steps: int, repeats: int = 3) -> LinearCost:
    """Time jobs of 1 and max_batch requests and stream bursts of 1 and max_batch on the real clock, and fit
    the LinearCost the simulation predicts with. `worker_for(policy)` gives the function serve runs work
    with. A first run of each is warm-up, not fitted."""
    top = max(2, max_batch)
    jobs: dict[int, list[float]] = {1: [], top: []}
    stream: list[tuple[int, int, float]] = []
    for r in range(repeats + 1):
        for n in (1, top):
            for name in ("batch", "stream"):
                log: list = []
                policy = Policy(name, max_batch=top, max_delay_s=0.0)
                serve(policy, burst(n, steps), RealClock(), worker_for(policy),
                      on_work=lambda i, launch, start, end, out, log=log: log.append(
                          (len(launch.requests), len(out), end - start)))
                if r == 0:
                    continue  # warm-up
                if name == "batch":
                    jobs[n] += [s for rows, _, s in log if rows == n]
                else:
                    stream += log
    job_fixed, job_marginal = fit_job(jobs)
    step_fixed, step_marginal, finish_fixed, finish_marginal = fit_step(stream)
    return LinearCost(job_fixed, job_marginal, step_fixed, step_marginal, finish_fixed, finish_marginal)


def capacity(cost: LinearCost, max_batch: int) -> float:
    """Requests per second the batch cost allows at the largest batch: max_batch / t(max_batch)."""
    return max_batch / cost.job(max_batch)


# 3. A level: its arrivals, the measurement, the prediction, its records.

def predict(level: Level, cfg: LoadConfig, cost: LinearCost, servers: int = 1) -> dict:
    """The simulated p50/p90/p99 latency and throughput of a level on the calibrated cost; with n servers,
    each server's round-robin share simulated on its own (`cost`: one server's), the requests merged."""
    loop = ClosedLoop(level.clients, level.total, cfg.steps) if level.arrival == "closed" else None
    done = []
    for share in round_robin(level.requests, servers) if servers > 1 else [level.requests]:
        if share:
            done += simulate(Policy(level.policy, cfg.max_batch, cfg.max_delay), list(share), cost,
                             on_finish=loop.again if loop else None)
    return {f"predicted_{k}": v for k, v in summary(done).items()}


def summary(done: list[Done]) -> dict:
    """p50/p90/p99 latency (s) and throughput (requests/s, from the first arrival to the last finish)."""
    latencies = [d.latency_s for d in done]
    span = max(d.finish_s for d in done) - min(d.request.arrival_s for d in done)
    return {"p50_s": percentile(latencies, 50), "p90_s": percentile(latencies, 90),
            "p99_s": percentile(latencies, 99), "rps": len(done) / span if span > 0 else None}


def run_in_process(cfg: LoadConfig, progress: bool, sweep_id: str) -> Outcome:
    """Calibrate, then run every level on the real clock into one spool file each, in this process; return the
    files written (with `unwritten`, the levels whose file could not be written). generator/run.py's run_load
    chooses between this and Ray servers (generator/cluster/servers.py)."""
    # 1. Check the trace (before any work), load the pipeline, and make the work of each policy.
    cfg, trace, prompts, seeds = with_trace(cfg)
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device must be one that this machine has, got 'cuda' (no CUDA device found)")
    pipe, model_id = models.load_pipeline("txt2img", cfg.model, seed=cfg.seed, device=cfg.device,
                                          dtype=getattr(torch, cfg.dtype), arch=cfg.arch)
    worker_for = Workers(pipe, cfg, prompts, seeds)
    # 2. The batch cost on this machine, and the loads it implies.
    if progress:
        print("calibrating the batch cost (jobs and stream steps of 1 and --max-batch)", file=sys.stderr)
    cost = calibrate(worker_for, cfg.max_batch, cfg.steps)
    cap = capacity(cost, cfg.max_batch)
    plan = levels(cfg, cap, trace)
    # 3. Every level: measured on the real clock, predicted on the simulated one, one spool file.
    writer, written = SpoolWriter(cfg.spool), Outcome()
    shared = shared_fields(cfg, here(cfg, model_id), cost, cap, sweep_id)
    bar = tqdm(plan, unit="level", disable=not progress, file=sys.stderr)
    for level in bar:
        bar.set_description(describe(level))
        rows = measure(level, cfg, worker_for, shared)
        rows[0].update(predict(level, cfg, cost))
        write_level(writer, written, rows, level)
    return written


def with_trace(cfg: LoadConfig) -> tuple[LoadConfig, list[Request] | None, dict, dict]:
    """(settings, trace requests, prompt by id, seed by id): with a trace (read and checked before any work),
    its size and steps; without one, the settings as they are and no trace."""
    if cfg.arrival != "trace":
        return cfg, None, {}, {}
    trace, prompts, seeds, steps, size = read_trace(cfg.trace)
    return _with(cfg, steps=steps, resolution=size), trace, prompts, seeds


def describe(level: Level) -> str:
    """A level as the progress bar names it."""
    return f"{level.policy} {level.arrival} " + (f"{level.offered_rps:.3g}/s" if level.offered_rps
                                                 else f"{level.clients or ''}")


def write_level(writer, written, rows: list[dict], level: Level) -> None:
    """Write a level's spool file; a failure is reported (here and in the outcome) and the run goes on."""
    level_id = rows[0]["level_id"]
    write_or_report(written, lambda: writer.write(level_id, level_id, rows),
                    writer.spool_dir / level_id / f"{level_id}.jsonl",
                    f"load level {level_id} ({level.policy} {level.arrival})")


def measure(level: Level, cfg: LoadConfig, worker_for, shared: dict) -> list[dict]:
    """Run one level on the real clock, in this process; its records: the level, each request, each unit of
    work. A failure (out of memory, say) ends the level: the requests not finished are recorded with the
    error."""
    served = Served(new_id(FILE_KINDS["load_level"]), utc_now_iso())
    for r in level.requests:
        served.ask(0, r)
    try:
        serve_share(level, cfg, RealClock(), worker_for, served)
    except Exception as exc:  # recorded with the requests it left unfinished; the run goes on
        served.failed(0, error_line(exc))
    return level_records(level, cfg, shared, served, worker_for.seed_of)


def here(cfg: LoadConfig, model_id: str) -> dict:
    """Where this process serves: host, device name, torch threads, and the model it loaded."""
    import torch

    name = torch.cuda.get_device_name() if cfg.device.startswith("cuda") else cfg.device
    return {"host": hostname(), "device_name": name, "threads": torch.get_num_threads(), "model_id": model_id}


COST_FIELDS = ("job_fixed_s", "job_marginal_s", "step_fixed_s", "step_marginal_s", "finish_fixed_s",
               "finish_marginal_s")


def shared_fields(cfg, place: dict, cost: LinearCost | None, cap: float | None, sweep_id: str) -> dict:
    """The fields every level record of the run (of one server count) carries: `place` (host, device_name,
    threads, model_id: see `here`), and the cost of one server (None: not calibrated, as `generator serve`'s
    own record of its traffic). `cfg` is a LoadConfig or a ServeConfig."""
    return {"sweep_id": sweep_id, "host": place["host"], "device": cfg.device, "device_name": place["device_name"],
            "model_id": place["model_id"], "task": "txt2img", "height": cfg.resolution, "width": cfg.resolution,
            "steps": cfg.steps, "dtype": cfg.dtype, "threads": place["threads"],
            "max_batch": cfg.max_batch, "max_delay_s": cfg.max_delay, "capacity_rps": cap,
            **{name: None if cost is None else getattr(cost, name) for name in COST_FIELDS}}


class Workers:
    """The work function serve runs for a policy: a fresh engine per level, on the one pipeline."""

    def __init__(self, pipe, cfg: LoadConfig, prompts: dict, seeds: dict):
        self.pipe, self.cfg = pipe, cfg
        self.prompt_of = lambda r: prompts.get(r.id, DEFAULT_PROMPTS[r.id % len(DEFAULT_PROMPTS)])
        self.seed_of = lambda r: seeds.get(r.id, cfg.seed + r.id)

    def __call__(self, policy: Policy):
        worker = Worker(self.pipe, height=self.cfg.resolution, width=self.cfg.resolution, steps=self.cfg.steps,
                        guidance=self.cfg.guidance, prompt_of=self.prompt_of, seed_of=self.seed_of,
                        device=self.cfg.device, stream=policy.name == "stream")
        return lambda launch: worker.run(policy, launch)


def _with(cfg: LoadConfig, **changes) -> LoadConfig:
    return dataclasses.replace(cfg, **changes)

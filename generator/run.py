"""The one driver: a sweep or a load run, in this process or on Ray workers (`--ray`), whoever asks (the CLI, the
demo, the tests, the benchmarks).

`run_sweep` and `run_load` begin (or join) a sweep id and hand the plan to its runner: generator/sweep/loop.py
or generator/serve/load.py in this process, generator/serve/client.py against a server over HTTP (--endpoint), generator/cluster/workers.py (with --replicas, cluster/replicas.py)
or cluster/servers.py on Ray. Each returns the spool files written, in order, as a records.outcome.Outcome
whose `unwritten` lists every spool file it could not write.
"""

from __future__ import annotations

from generator.cluster import servers, workers
from generator.records.ids import new_id
from generator.records.outcome import Outcome
from generator.serve import client, load
from generator.serve.levels import LoadConfig
from generator.sweep import loop
from generator.sweep.config import SweepConfig


def on_ray(cfg: SweepConfig | LoadConfig) -> bool:
    """Whether the run goes to Ray actors (--ray given) rather than this process."""
    return cfg.ray is not None


def run_sweep(cfg: SweepConfig, progress: bool = True, sweep_id: str | None = None) -> Outcome:
    """Run every job of the sweep; return the spool files written, in order. `sweep_id` joins the runs to a sweep
    begun by another call (the demo's parts); None begins a new one."""
    sweep_id = sweep_id or new_id("sweep")
    if on_ray(cfg):
        return workers.run_on_ray(cfg, progress, sweep_id)
    return loop.run_in_process(cfg, progress, sweep_id)


def run_load(cfg: LoadConfig, progress: bool = True, sweep_id: str | None = None) -> Outcome:
    """Calibrate, then run every level of the load run, one spool file each; return the files written."""
    sweep_id = sweep_id or new_id("sweep")
    if cfg.endpoint is not None:
        return client.run_against(cfg, progress, sweep_id)
    if on_ray(cfg):
        return servers.run_on_ray(cfg, progress, sweep_id)
    return load.run_in_process(cfg, progress, sweep_id)

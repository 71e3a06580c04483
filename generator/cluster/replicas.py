"""The second way to do more at once: data-parallel replicas (`python -m generator sweep --ray ... --replicas 1,2`).

A bigger batch does more at once on one device; replicas do it on more devices, each running the same
jobs. For each level N of --replicas the driver starts N workers (one GPU each; on CPU an even share of the
cluster's CPUs, so on one machine the N workers split its cores — the records say so, and the dashboard shows
it rather than a pretend speed-up). Each worker opens the runs of a size (replicas N, one replica_group per
level and run setting, its replica_index), then every batch size is started on all N workers together and
waited for on all before the next one: so the N workers' measured jobs of a batch size ran at the same time,
and their images/s add up to the level's aggregate (the warehouse's view replica_throughput). Then the
workers close their runs and stop, and the next level begins with fresh ones.
"""

from __future__ import annotations

from generator.cluster.messages import Pending
from generator.records.ids import new_id
from generator.sweep.plan import plan


def run_replicas(driver, sweep_id: str) -> None:
    """Every level of --replicas, size by size, batch size by batch size, on all its workers at once."""
    cfg = driver.cfg
    for n in cfg.replicas:
        # 1. The level's workers, their pipelines loaded; one level id names its replica groups.
        level = new_id("replicas")
        actors = driver.workers(n, sweep_id, name=level)
        pending = {a: Pending() for a in actors}
        try:
            for s, _ in enumerate(plan(cfg)):
                # 2. Open the size's runs on every worker, 3. each batch size on all at once, 4. close the runs.
                live = driver.together({a: (a.open_size, (s, {"replicas": n, "level": level, "index": i}),
                                            pending[a]) for i, a in enumerate(actors)})
                for b in cfg.batch_sizes:
                    live = driver.together({a: (a.follow, (s, b), pending[a]) for a in live})
                driver.together({a: (a.close_size, (s,), pending[a]) for a in live})
        finally:
            for a in actors:
                driver.ray.kill(a, no_restart=True)

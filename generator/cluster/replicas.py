"""The second way to do more at once: data-parallel replicas (`python -m generator sweep --ray ... --replicas 1,2`).

A bigger batch does more at once on one device; replicas do it on more devices, each running the same
jobs. For each level N of --replicas the driver starts N workers (one GPU each; on CPU an even share of the
cluster's CPUs, so on one machine the N workers split its cores — the records say so, and the dashboard shows
it rather than a pretend speed-up). Each worker opens the runs of a size (replicas N, one replica_group per
level and run setting, its replica_index); then, batch size by batch size, all N do their warm-ups, then each
measured round together, with a barrier after every round, for as long as any of them asks for another (its
stop rule: --repeats, or the interval target and caps of --repeats auto), so all run the same rounds; then
their profiled jobs. So the N workers' measured jobs ran at the same time, round by round, and their images/s
add up to the level's aggregate (the warehouse's view replica_throughput). (Before, each worker ran a batch
size's rounds to its own stop, and one ran on alone after another had stopped.) Then the workers close their
runs and stop, and the next level begins with fresh ones.
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
            for s, size in enumerate(plan(cfg)):
                # 2. Open the size's runs on every worker.
                live = driver.together({a: (a.open_size, (s, {"replicas": n, "level": level, "index": i}),
                                            pending[a]) for i, a in enumerate(actors)})
                for b in cfg.batch_sizes:
                    # 3. Each batch size's warm-ups on all, then its rounds on all at once, a barrier after each,
                    # while any worker asks for another; then the profiled jobs.
                    live = driver.together({a: (a.warm_ups, (s, b), pending[a]) for a in live})
                    for r in range(len(size.only(batch_sizes={b}).rounds)):
                        live = driver.together({a: (a.measure_round, (s, b, r), pending[a]) for a in live})
                        if not any(driver.ray.get([a.wants_more.remote(s) for a in live])):
                            break
                    live = driver.together({a: (a.finish, (s, b), pending[a]) for a in live})
                # 4. Close the runs.
                driver.together({a: (a.close_size, (s,), pending[a]) for a in live})
        finally:
            for a in actors:
                driver.ray.kill(a, no_restart=True)

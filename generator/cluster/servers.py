"""Load served on Ray: `python -m generator load --ray ADDRESS|auto|local [--servers 1,2]`.

Every server is a Ray actor (`LoadServer`) that loads its pipeline once and serves with the policies of
generator/serve/scheduler.py, exactly as the in-process server does; --servers N puts N of them behind the
round-robin router of generator/serve/router.py. On cuda each server holds one GPU; on a CPU the N servers split
the cluster's CPUs evenly (cluster CPUs // N each, no more than the smallest node has), each running that
many torch threads. Ray places the actors; we do not choose machines.

The plan:
1. the offered loads: the batch cost calibrated on one server with the whole share (an actor of N = 1), its
   capacity at --max-batch times --loads: the same absolute rates for every server count, so the levels of
   1 and N servers are comparable load for load;
2. per server count N: N actors, the cost of one of them calibrated (on server 0, the others idle: a server
   with a 1/N share of the CPUs), then every level of the plan: the router splits its requests, each server
   serves its share on a clock shared by all (`SharedClock`: a wall-clock instant t0 the driver picks a
   moment ahead), and streams back each request finished and each unit of work as it happens;
3. beside each level, the prediction: each server's share simulated on the cost calibrated for N, merged
   (load.predict).

A server that dies mid-level (killed, out of host memory, its node lost): the requests of its share not
finished are recorded with status error and the reason, the level is written with the others' work, and the
next level gets a fresh actor in its place. A server whose work raises (out of device memory, say) reports
the error the same way and lives on.
"""

from __future__ import annotations

import dataclasses
import queue
import sys
import threading
import time
from datetime import UTC, datetime

from generator.cluster.messages import RequestAsked, RequestDone, ServerFailed, WorkDone
from generator.cluster.reach import TorchThread, actor_options, cause, check_fits as fits, connect, initialised, loss
from generator.pipelines import models
from generator.records.ids import new_id
from generator.records.outcome import Outcome, error_line
from generator.serve.levels import Level, LoadConfig, levels
from generator.serve.load import (
    Workers,
    calibrate,
    capacity,
    describe,
    here,
    predict,
    shared_fields,
    with_trace,
    write_level,
)
from generator.serve.router import Served, Work, level_records, round_robin, serve_share
from spool import FILE_KINDS, SpoolWriter

# How far ahead of now the driver sets a level's t0: long enough for every server to hear of the level
# before its first request arrives (a call to a live actor takes milliseconds).
LEAD_S = 0.5


class SharedClock:
    """The clock every server of a level reads: seconds since t0, a wall-clock (epoch) instant the driver
    picked a moment ahead. Each server reads its own host's clock (time.time()): servers on several hosts need
    those clocks to agree to a few ms (NTP does), or a request is served as if it came early or late by the
    hosts' offset; on one host it is one clock."""

    def __init__(self, t0: float):
        self.t0 = t0

    def now(self) -> float:
        return time.time() - self.t0

    def wait_until(self, t: float) -> None:
        while (left := t - self.now()) > 0:
            time.sleep(left)


# The server side: one actor, its pipeline loaded once.

class LoadServer:
    """A Ray actor's body: one server. `ready` says where it runs, `calibrate` fits its batch cost, `serve`
    serves one level's share, streaming back RequestDone, RequestAsked and WorkDone (cluster/messages.py) as they
    happen, and ServerFailed if its work raised."""

    def __init__(self, cfg: LoadConfig, threads: int | None, prompts: dict, seeds: dict):
        self.cfg = cfg
        self.torch = TorchThread()  # every torch call of this server on one thread (cluster.reach.TorchThread)
        self.torch.call(self._load, threads, prompts, seeds)

    def _load(self, threads: int | None, prompts: dict, seeds: dict) -> None:
        import torch

        cfg = self.cfg
        if threads:
            torch.set_num_threads(threads)
        if cfg.device == "cuda" and not torch.cuda.is_available():
            raise ValueError("device must be one that this Ray worker has, got 'cuda' (no CUDA device found)")
        pipe, self.model_id = models.load_pipeline("txt2img", cfg.model, seed=cfg.seed, device=cfg.device,
                                                   dtype=getattr(torch, cfg.dtype), arch=cfg.arch)
        self.worker_for = Workers(pipe, cfg, prompts, seeds)

    def ready(self) -> dict:
        """Where this server runs: host, device name, torch threads, model."""
        return self.torch.call(here, self.cfg, self.model_id)

    def calibrate(self):
        return self.torch.call(calibrate, self.worker_for, self.cfg.max_batch, self.cfg.steps)

    def serve(self, level: Level, server: int, t0: float):
        """Serve `level.requests` (this server's share) on the clock shared from t0; a generator of messages."""
        outbox: queue.Queue = queue.Queue()

        def work():
            try:
                serve_share(level, self.cfg, SharedClock(t0), self.worker_for, _Outbox(outbox), server)
            except Exception as exc:  # its share ends here; the driver records the requests left with this line
                outbox.put(ServerFailed(error_line(exc)))

        yield from self.torch.stream(work, outbox)


class _Outbox:
    """serve_share's sink on a server: every event becomes a message for the driver."""

    def __init__(self, outbox: queue.Queue):
        self.outbox = outbox

    def finished(self, server, done) -> None:
        self.outbox.put(RequestDone(done))

    def ask(self, server, request) -> None:
        self.outbox.put(RequestAsked(request))

    def worked(self, work: Work) -> None:
        self.outbox.put(WorkDone(work))


# The driver side: the servers, the levels, the records.

def run_on_ray(cfg: LoadConfig, progress: bool = True, sweep_id: str | None = None, watch=None):
    """Every level of the plan for every server count, on Ray actors; return the spool files written (a
    records.outcome.Outcome). Ray missing or unreachable, or a server count the cluster cannot hold, fails here with
    one line before any work. `watch(share, server, message, actor)` hears every message a server sends, with the
    level's share it serves (tests use it to kill a server at a moment it reports)."""
    from tqdm import tqdm

    # 1. The trace (checked before any work), the cluster, and whether it holds the servers asked for.
    cfg, trace, prompts, seeds = with_trace(cfg)
    started_here = not initialised()
    ray = connect(cfg.ray)
    pool = Pool(ray, cfg, prompts, seeds, watch)
    try:
        check_fits(ray, cfg)
        # 2. The offered loads, from the capacity of one server with the whole share.
        if progress:
            print("calibrating the batch cost on one Ray server (jobs and stream steps of 1 and --max-batch)",
                  file=sys.stderr)
        pool.start(1)
        base = pool.calibrate()
        cap = capacity(base, cfg.max_batch)
        plan = levels(cfg, cap, trace)
        # 3. Per server count: its servers and their cost, then every level, one spool file each.
        writer, sweep_id, written = SpoolWriter(cfg.spool), sweep_id or new_id("sweep"), Outcome()
        costs = {1: base}
        bar = tqdm(total=len(plan) * len(cfg.servers), unit="level", disable=not progress, file=sys.stderr)
        for n in cfg.servers:
            if pool.n != n:
                pool.start(n)
            if n not in costs:
                costs[n] = pool.calibrate()
            for level in plan:
                bar.set_description(f"{n} server{'s' if n > 1 else ''} · {describe(level)}")
                served = pool.serve(level)
                shared = shared_fields(cfg, pool.place(), costs[n], cap, sweep_id)
                rows = level_records(level, cfg, shared, served, pool.seed_of)
                rows[0].update(predict(level, cfg, costs[n], servers=n))
                write_level(writer, written, rows, level)
                pool.mend()  # after the level is written: a server lost in it is replaced for the next
                bar.update()
        bar.close()
        return written
    finally:
        pool.stop()
        if started_here:
            ray.shutdown()


def check_fits(ray, cfg: LoadConfig) -> None:
    """A cuda run needs GPUs in the cluster; each server count must fit it (one GPU, or one CPU, a server)."""
    fits(ray, cfg.device, cfg.servers, "servers")


class Pool:
    """The servers of one server count: started, calibrated, serving a level's shares at once, a lost one
    replaced before the next level, stopped."""

    def __init__(self, ray, cfg: LoadConfig, prompts: dict, seeds: dict, watch=None):
        self.ray, self.cfg, self.prompts, self.seeds, self.watch = ray, cfg, prompts, seeds, watch
        self.actors: list = []
        self.places: list[dict] = []
        self.lost: list[int] = []
        self.n = 0
        self.seed_of = lambda r: seeds.get(r.id, cfg.seed + r.id)

    def start(self, n: int) -> None:
        """n fresh servers, their pipelines loaded (those of the previous count stopped first: on a CPU they
        hold the cores the new ones need)."""
        self.stop()
        self.actors = [self._new(n) for _ in range(n)]
        self.places = self._ready(self.actors)
        self.n = n

    def _new(self, n: int):
        options, threads = actor_options(self.ray, self.cfg.device, n)
        remote = self.ray.remote(LoadServer).options(max_restarts=0, max_task_retries=0, **options)
        return remote.remote(dataclasses.replace(self.cfg, ray=None, servers=(1,)), threads, self.prompts,
                             self.seeds)

    def _ready(self, actors: list) -> list[dict]:
        """Where each server runs, once its pipeline is loaded; a server that cannot load fails here."""
        try:
            return self.ray.get([a.ready.remote() for a in actors])
        except self.ray.exceptions.RayError as exc:
            for a in actors:
                self.ray.kill(a)
            raise ValueError(f"a Ray load server could not start: {cause(exc)}") from None

    def stop(self) -> None:
        for a in self.actors:
            self.ray.kill(a, no_restart=True)
        self.actors, self.places, self.lost, self.n = [], [], [], 0

    def calibrate(self):
        """The batch cost of one server of this count, fitted on server 0 (the others idle)."""
        try:
            return self.ray.get(self.actors[0].calibrate.remote())
        except self.ray.exceptions.RayError as exc:
            raise ValueError(f"the Ray load server failed while calibrating: {cause(exc)}") from None

    def place(self) -> dict:
        """Where the servers run, as a level records it: their hosts (distinct, comma-separated), the device
        name, torch threads per server (the fewest of any), the model."""
        hosts = ", ".join(sorted({p["host"] for p in self.places}))
        names = ", ".join(sorted({p["device_name"] for p in self.places}))
        return {"host": hosts, "device_name": names, "threads": min(p["threads"] for p in self.places),
                "model_id": self.places[0]["model_id"]}

    def serve(self, level: Level) -> Served:
        """One level: its requests split by the router, every share served at once on the shared clock; what
        the servers reported. A server lost meanwhile is named in `lost` (`mend` replaces it)."""
        shares = round_robin(level.requests, self.n)
        t0 = time.time() + LEAD_S
        served = Served(new_id(FILE_KINDS["load_level"]), datetime.fromtimestamp(t0, UTC).isoformat(), servers=self.n)
        for k, share in enumerate(shares):
            for r in share:
                served.ask(k, r)
        lost: list[int] = []
        threads = [threading.Thread(target=self._follow, args=(k, dataclasses.replace(level, requests=share), t0,
                                                               served, lost), daemon=True)
                   for k, share in enumerate(shares) if share]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.lost = lost
        return served

    def mend(self) -> None:
        """A fresh server in the place of each lost in the last level."""
        for k in self.lost:
            self.ray.kill(self.actors[k], no_restart=True)
            self.actors[k] = self._new(self.n)
            self.places[k] = self._ready([self.actors[k]])[0]
        self.lost = []

    def _follow(self, k: int, share: Level, t0: float, served: Served, lost: list) -> None:
        """Server k's messages for one level, into `served`; if the server is lost, why, on its requests left."""
        actor = self.actors[k]
        try:
            for ref in actor.serve.options(num_returns="streaming").remote(share, k, t0):
                message = self.ray.get(ref)
                match message:
                    case RequestDone(done):
                        served.finished(k, done)
                    case RequestAsked(request):
                        served.ask(k, request)
                    case WorkDone(work):
                        served.worked(work)
                    case ServerFailed(error):
                        served.failed(k, error)
                if self.watch is not None:
                    self.watch(share, k, message, actor)
        except self.ray.exceptions.RayActorError as exc:
            served.failed(k, f"the Ray server was lost: {loss(exc)}")
            lost.append(k)
        except self.ray.exceptions.RayError as exc:  # the call itself failed (a bug, not the work)
            served.failed(k, f"the Ray server failed: {cause(exc)}")
            lost.append(k)

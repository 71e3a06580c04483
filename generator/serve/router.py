"""A load level served by one server or by N behind a router: which server gets which request, serving one
server's share of a level, and the level's records from what its servers reported.

The router is round robin over the arrival order: the i-th request to arrive (ties by request id) goes to
server i mod N, decided before the level starts. Poisson, trace and burst arrivals are known in advance; a
closed loop's next request exists only once one finishes, so a closed loop runs on one server (LoadConfig
refuses more). Each server runs the level's scheduling policy (scheduler.serve) on its share alone, as N
independent replicas behind a load balancer do.

A level's records (spool/contract.py; warehouse tables load_levels, requests, server_steps): the level, with
`servers` and `router` (round_robin, or None for one server); every request once, with the server it went
to (status ok, or error with why it did not finish: the error that ended its server's work, or `not run`);
every unit of work of every server in one list, numbered in the order they started (`step_index` unique
within the level; a request's `group_index` is the number of the unit it started in), each with its server.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from generator.serve.arrivals import ClosedLoop
from generator.serve.levels import Level, LoadConfig
from generator.serve.scheduler import Done, Policy, Request, serve
from spool import record

ROUND_ROBIN = "round_robin"


@dataclass(frozen=True)
class Work:
    """One unit of work a server ran: its `index` in that server's order, `unit` (job or step), when it started
    and ended on the level's clock, the rows it carried and how many requests left with it."""

    server: int
    index: int
    unit: str
    start_s: float
    end_s: float
    rows: int
    left: int


def round_robin(requests, n: int) -> list[tuple[Request, ...]]:
    """The n servers' shares: the i-th request in arrival order (ties by id) to server i mod n."""
    if n < 1:
        raise ValueError(f"servers must be >= 1, got {n}")
    order = sorted(requests, key=lambda r: (r.arrival_s, r.id))
    return [tuple(order[k::n]) for k in range(n)]


@dataclass
class Served:
    """What the servers of one level reported, as they reported it (appended to from one thread per server)."""

    level_id: str
    started_at: str
    servers: int = 1
    done: list = field(default_factory=list)     # (server, Done)
    asked: dict = field(default_factory=dict)    # request id -> (server, Request): every request of the level
    work: list = field(default_factory=list)     # Work, every server's
    errors: dict = field(default_factory=dict)   # server -> why its work ended before its share was done
    dropped: dict = field(default_factory=dict)  # request id -> (status, why): one request not finished

    def finished(self, server: int, done: Done) -> None:
        self.done.append((server, done))

    def ask(self, server: int, request: Request) -> None:
        self.asked[request.id] = (server, request)

    def worked(self, work: Work) -> None:
        self.work.append(work)

    def failed(self, server: int, reason: str) -> None:
        self.errors[server] = reason

    def drop(self, request_id: int, status: str, reason: str) -> None:
        """One request that will not finish: `cancelled` (its client went away) or `error` (its work failed)."""
        self.dropped[request_id] = (status, reason)


def serve_share(level: Level, cfg: LoadConfig, clock, worker_for, sink, server: int = 0) -> None:
    """Serve `level.requests` (one server's share) under the level's policy on `clock`, the work done by
    `worker_for(policy)`; tell `sink` (a Served, or a Ray server's outbox) of every request finished, every
    request a closed loop asks again, and every unit of work, as they happen. A failure ends the share and
    propagates (the caller records it)."""
    policy = Policy(level.policy, cfg.max_batch, cfg.max_delay)
    loop = ClosedLoop(level.clients, level.total, cfg.steps) if level.arrival == "closed" else None

    def on_finish(d: Done):
        sink.finished(server, d)
        again = loop.again(d) if loop else None
        if again is not None:
            sink.ask(server, again)
        return again

    serve(policy, list(level.requests), clock, worker_for(policy), on_finish=on_finish,
          on_work=lambda i, launch, start, end, out: sink.worked(Work(server, i, launch.kind, start, end,
                                                                      len(launch.requests), len(out))))


def level_records(level: Level, cfg: LoadConfig, shared: dict, served: Served, seed_of) -> list[dict]:
    """The records of a level: its load_level record, a request record per request (ok, or error with why),
    a server_step record per unit of work of any server (numbered in the order they started)."""
    level_id = served.level_id
    # 1. Every server's units of work, in one numbering: by start, then server, then the server's own order.
    order = sorted(served.work, key=lambda w: (w.start_s, w.server, w.index))
    number = {(w.server, w.index): i for i, w in enumerate(order)}
    work = [record("server_step", level_id=level_id, step_index=i, unit=w.unit, start_s=w.start_s,
                   duration_s=w.end_s - w.start_s, rows=w.rows, finished=w.left, server=w.server)
            for i, w in enumerate(order)]
    # 2. The requests: those finished, then those not (with why their server stopped, or `not run`).
    finished = {d.request.id for _, d in served.done}
    requests = [record("request", level_id=level_id, request_id=d.request.id, seed=seed_of(d.request),
                       steps=d.request.steps, arrival_s=d.request.arrival_s, start_s=d.start_s, finish_s=d.finish_s,
                       wait_s=d.wait_s, latency_s=d.latency_s, batch=d.batch, group_index=number.get((k, d.group)),
                       status="ok", error=None, server=k) for k, d in served.done]
    unfinished = {rid: served.dropped.get(rid, ("error", served.errors.get(k) or "not run"))
                  for rid, (k, _) in served.asked.items() if rid not in finished}
    requests += [record("request", level_id=level_id, request_id=r.id, seed=seed_of(r), steps=r.steps,
                        arrival_s=r.arrival_s, start_s=None, finish_s=None, wait_s=None, latency_s=None, batch=None,
                        group_index=None, status=unfinished[rid][0], error=unfinished[rid][1], server=k)
                 for rid, (k, r) in sorted(served.asked.items()) if rid not in finished]
    # 3. The level: its settings, how many servers behind which router, and its span.
    first = min((r.arrival_s for _, r in served.asked.values()), default=0.0)
    last = max((d.finish_s for _, d in served.done), default=None)
    head = record(
        "load_level", level_id=level_id, started_at=served.started_at, policy=level.policy, arrival=level.arrival,
        offered_rps=level.offered_rps, clients=level.clients, load_factor=level.load_factor,
        requests=len(served.asked), duration_s=None if last is None else last - first, arrival_seed=cfg.seed,
        servers=served.servers, router=ROUND_ROBIN if served.servers > 1 else None, **shared)
    return [head] + requests + work

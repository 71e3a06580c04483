"""`python -m generator load --endpoint URL`: the load run's arrivals sent as real concurrent HTTP requests to any
server that speaks the OpenAI Images API (ours, `generator serve`, or another), each request timed at the client.

1. Ask the server what it serves (`GET /v1/models`: the model id; ours adds its policy, batch limit and device).
2. Calibrate from its answers, its internals unknown: bursts of 1 and of --max-batch requests sent at once, the
   time until the last of a burst is back fitted as t(n) = fixed + marginal x n (load.fit_job); the capacity is
   max_batch / t(max_batch), as for the in-process server, and the loads are multiples of it.
3. Every level (Poisson, closed loop, trace, bursts: levels.py): each request sent at its arrival time on a
   thread of its own (a closed loop: N clients, each sending again once answered); the client records when it
   sent it, when the answer came back and how it ended (ok, or error with the HTTP status and the server's
   message). Beside each level, the prediction of a batcher of --max-batch with no delay on the calibrated cost.
4. One spool file per level, with the endpoint and the model it reported (load_levels.endpoint); its requests
   have no start, batch or units of work: a client cannot see them.

HTTP is httpx2 (the OpenAI client's own HTTP library, pinned with it): one pooled, thread-safe client.
"""

from __future__ import annotations

import dataclasses
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx2
from tqdm import tqdm

from generator.pipelines.inputs import DEFAULT_PROMPTS
from generator.records.ids import new_id, utc_now_iso
from generator.records.outcome import Outcome, write_or_report
from generator.serve.arrivals import burst
from generator.serve.levels import Level, LoadConfig, levels
from generator.serve.load import fit_job, shared_fields, summary, with_trace
from generator.serve.scheduler import LinearCost, Policy, Request, simulate
from spool import FILE_KINDS, SpoolWriter, record

ENDPOINT_POLICY = "endpoint"   # a level's policy when the server does not say its own


class Endpoint:
    """An OpenAI Images API server: `models()` and `generate(request)` -> (ok, error or None)."""

    def __init__(self, url: str, api_key: str | None, size: int, steps: int, timeout_s: float = 600.0):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"endpoint must be an http(s) URL such as http://127.0.0.1:8000/v1, got {url!r}")
        self.url = url.rstrip("/")
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx2.Client(headers=headers, timeout=timeout_s,
                                  limits=httpx2.Limits(max_connections=None, max_keepalive_connections=64))
        self.size, self.steps = size, steps
        self.ours = False
        self.prompts: dict[int, str] = {}    # a trace's, by request id; else the built-in prompts in turn
        self.seeds: dict[int, int] = {}      # a trace's, by request id; else seed + id
        self.seed = 0

    def seed_of(self, rid: int) -> int:
        return self.seeds.get(rid, self.seed + rid)

    def models(self) -> dict:
        """The first model the server lists (ValueError naming the endpoint when it cannot be reached)."""
        try:
            answer = self.http.get(f"{self.url}/models")
        except httpx2.HTTPError as exc:
            raise ValueError(f"endpoint {self.url} cannot be reached: {exc}") from None
        if answer.status_code != 200:
            raise ValueError(f"endpoint {self.url}/models answered {answer.status_code}: {_message(answer)}")
        listed = answer.json().get("data") or [{}]
        self.ours = listed[0].get("owned_by") == "generator"
        return listed[0]

    def generate(self, r: Request) -> tuple[bool, str | None]:
        body = {"prompt": self.prompts.get(r.id, DEFAULT_PROMPTS[r.id % len(DEFAULT_PROMPTS)]), "n": 1,
                "size": f"{self.size}x{self.size}", "response_format": "b64_json"}
        if self.ours:  # our extensions, only to a server known to take them
            body["seed"] = self.seed_of(r.id)
        try:
            answer = self.http.post(f"{self.url}/images/generations", json=body)
        except httpx2.HTTPError as exc:
            return False, f"{type(exc).__name__}: {exc}"
        if answer.status_code != 200:
            return False, f"HTTP {answer.status_code}: {_message(answer)}"
        return True, None


def _message(answer) -> str:
    try:
        return answer.json()["error"]["message"]
    except (ValueError, KeyError, TypeError):
        return answer.text[:200]


@dataclass(frozen=True)
class Seen:
    """One request as the client saw it: when it went (s from the level's start), when the answer came back,
    and how it ended (ok, or the error)."""

    request: Request
    sent_s: float
    back_s: float
    ok: bool
    error: str | None

    @property
    def latency_s(self) -> float:
        return self.back_s - self.sent_s


class Sent:
    """What the client saw of one level's requests, by request id (appended to from one thread per request)."""

    def __init__(self):
        self.t0 = time.perf_counter()
        self.seen: dict[int, Seen] = {}
        self.lock = threading.Lock()

    def now(self) -> float:
        return time.perf_counter() - self.t0

    def send(self, endpoint: Endpoint, r: Request) -> None:
        sent = self.now()
        ok, why = endpoint.generate(r)
        back = self.now()
        with self.lock:
            self.seen[r.id] = Seen(r, sent, back, ok, why)


def send_level(endpoint: Endpoint, level: Level) -> Sent:
    """Send a level's requests at their arrival times (a closed loop: each client again once answered)."""
    sent = Sent()
    if level.arrival == "closed":
        ids = iter(range(level.total))
        take = threading.Lock()

        def client():
            while True:
                with take:
                    rid = next(ids, None)
                if rid is None:
                    return
                sent.send(endpoint, Request(rid, sent.now(), endpoint.steps))

        threads = [threading.Thread(target=client) for _ in range(level.clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        return sent
    order = sorted(level.requests, key=lambda r: (r.arrival_s, r.id))
    with ThreadPoolExecutor(max_workers=max(1, len(order))) as pool:
        for r in order:
            while (left := r.arrival_s - sent.now()) > 0:
                time.sleep(left)
            pool.submit(sent.send, endpoint, r)
    return sent


def calibrate(endpoint: Endpoint, max_batch: int, repeats: int = 3) -> LinearCost:
    """Bursts of 1 and of max_batch requests sent at once (a first of each is warm-up): the time until the last
    is back, fitted as t(n) = fixed + marginal x n. Raises ValueError if the server fails a request of them."""
    top = max(2, max_batch)
    times: dict[int, list[float]] = {1: [], top: []}
    for k in range(repeats + 1):
        for n in (1, top):
            got = send_level(endpoint, Level(ENDPOINT_POLICY, "burst", tuple(burst(n, endpoint.steps)), clients=n))
            failed = [s.error for s in got.seen.values() if not s.ok]
            if failed:
                raise ValueError(f"endpoint {endpoint.url} failed a calibration request: {failed[0]}")
            if k:
                times[n].append(max(s.back_s for s in got.seen.values()))
    fixed, marginal = fit_job(times)
    return LinearCost(fixed, marginal, 0.0, 0.0)


def level_records(level: Level, cfg: LoadConfig, sent: Sent, shared: dict, cost: LinearCost, seed_of) -> list[dict]:
    """A level measured at the client: its load_level record (with the prediction) and a request record each."""
    level_id = new_id(FILE_KINDS["load_level"])
    seen = sorted(sent.seen.values(), key=lambda s: s.request.id)
    requests = [record("request", level_id=level_id, request_id=s.request.id, seed=seed_of(s.request.id),
                       steps=s.request.steps, arrival_s=s.sent_s, start_s=None,
                       finish_s=s.back_s if s.ok else None, wait_s=None, latency_s=s.latency_s if s.ok else None,
                       batch=None, group_index=None, status="ok" if s.ok else "error", error=s.error, server=0)
                for s in seen]
    # The prediction: a batcher of max_batch with no delay on the calibrated cost, at the times requests went.
    predicted = simulate(Policy("batch", max(2, cfg.max_batch), 0.0),
                         [Request(s.request.id, s.sent_s, s.request.steps) for s in seen], cost)
    first = min((s.sent_s for s in seen), default=0.0)
    last = max((s.back_s for s in seen if s.ok), default=None)
    head = record("load_level", level_id=level_id, started_at=shared["started_at"], policy=level.policy,
                  arrival=level.arrival, offered_rps=level.offered_rps, clients=level.clients,
                  load_factor=level.load_factor, requests=len(seen),
                  duration_s=None if last is None else last - first, arrival_seed=cfg.seed, servers=1, router=None,
                  **{f"predicted_{k}": v for k, v in summary(predicted).items()},
                  **{k: v for k, v in shared.items() if k != "started_at"})
    return [head] + requests


def run_against(cfg: LoadConfig, progress: bool, sweep_id: str) -> Outcome:
    """Calibrate against the endpoint, then send every level; one spool file per level."""
    # 1. What the server serves.
    cfg, trace, prompts, seeds = with_trace(cfg)
    endpoint = Endpoint(cfg.endpoint, cfg.api_key, cfg.resolution, cfg.steps)
    endpoint.prompts, endpoint.seeds, endpoint.seed = prompts, seeds, cfg.seed
    model = endpoint.models()
    policy = model.get("policy") or ENDPOINT_POLICY
    # 2. Its capacity, from its answers.
    if progress:
        print(f"calibrating against {endpoint.url}: bursts of 1 and {cfg.max_batch}", file=sys.stderr)
    cost = calibrate(endpoint, cfg.max_batch)
    cap = max(2, cfg.max_batch) / cost.job(max(2, cfg.max_batch))
    plan = [Level(policy, lv.arrival, lv.requests, lv.offered_rps, lv.clients, lv.load_factor, lv.total)
            for lv in levels(_one_policy(cfg), cap, trace)]
    # 3. Every level, sent for real.
    writer, written = SpoolWriter(cfg.spool), Outcome()
    place = {"host": urlsplit(endpoint.url).hostname, "device_name": model.get("device_name") or endpoint.url,
             "threads": None, "model_id": model.get("id") or "unknown"}
    shared = dict(shared_fields(cfg, place, cost, cap, sweep_id), device=model.get("device") or "remote",
                  dtype=None, max_batch=model.get("max_batch") or cfg.max_batch, max_delay_s=None,
                  step_fixed_s=None, step_marginal_s=None, finish_fixed_s=None, finish_marginal_s=None,
                  endpoint=endpoint.url)
    bar = tqdm(plan, unit="level", disable=not progress, file=sys.stderr)
    for level in bar:
        bar.set_description(f"{level.arrival} " + (f"{level.offered_rps:.3g}/s" if level.offered_rps
                                                   else f"{level.clients or ''}"))
        started = utc_now_iso()
        got = send_level(endpoint, level)
        rows = level_records(level, cfg, got, {**shared, "started_at": started}, cost, endpoint.seed_of)
        level_id = rows[0]["level_id"]
        write_or_report(written, lambda: writer.write(level_id, level_id, rows),
                        writer.spool_dir / level_id / f"{level_id}.jsonl", f"load level {level_id} ({level.arrival})")
    return written


def _one_policy(cfg: LoadConfig) -> LoadConfig:
    """The levels of one policy: the server has its own."""
    return dataclasses.replace(cfg, policies=(cfg.policies[0],))

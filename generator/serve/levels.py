"""A load run's settings and its levels: `LoadConfig` (each flag of `python -m generator load` one field), `Level`
(one policy at one load: how its requests arrive) and `levels`, every level of a run in order. The router
(router.py), the in-process runner (load.py) and the Ray servers (generator/cluster/servers.py) read these.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from generator.pipelines.parts import DEVICES, DTYPES
from generator.pipelines.presets import PIXART_ARCHS, check_arch
from generator.serve.arrivals import burst, poisson
from generator.serve.scheduler import POLICIES, Request, check_policy
from settings import SPOOL_DIR, setting

ARRIVALS = ("poisson", "closed", "trace")


@dataclass(frozen=True)
class LoadConfig:
    """Settings of one load run; each CLI flag of `python -m generator load` sets one field."""

    policies: tuple[str, ...] = setting(
        "Scheduling policies, one level each per load: fifo (one request at a time), batch (dynamic batching: "
        "up to --max-batch, waiting at most --max-delay), stream (step-level continuous batching).",
        ("fifo", "batch", "stream"))
    arrival: str = setting(
        "How requests arrive: poisson (at --loads times the predicted capacity), closed (--clients clients, "
        "each asking again when its image is back) or trace (--trace file).", "poisson")
    loads: tuple[float, ...] = setting(
        "Poisson offered loads as multiples of the capacity the calibrated batch cost predicts at --max-batch "
        "(requests/s), light to past capacity.", (0.25, 0.5, 0.75, 1.0, 1.25, 1.5))
    clients: tuple[int, ...] = setting("Closed-loop client counts, one level each.", (1, 2, 4, 8))
    trace: str | None = setting(
        "A CSV file with a header arrival_s,prompt,seed,steps,size and one request per line (one size and "
        "step count in a file: the server runs one).", None)
    burst: int = setting(
        "Also send bursts of 1 and of this many requests at once under each policy (0: none).", 8)
    burst_repeats: int = setting(
        "Bursts of each size per policy, taken in turns (1, N, 1, N, ...): 6 give the ratio of their median times a "
        "95% interval.", 6)
    max_batch: int = setting("The most requests the batch and stream policies run together.", 8)
    max_delay: float = setting(
        "batch policy: the most seconds the oldest request waits for the batch to fill.", 0.05)
    min_requests: int = setting(
        "Requests per level, at least. A 95% interval of a p99 needs 368 (stats.quantile_needed; MLPerf likewise "
        "sets a minimum query count for the tail it reports); with fewer the Load page gives the p99 without one.",
        400)
    min_seconds: float = setting("Seconds of arrivals per level, at least (Poisson).", 5.0)
    resolution: int = setting("Square image size in pixels (one per load run).", 64)
    steps: int = setting("Denoising steps per request.", 10)
    guidance: float = setting("Classifier-free guidance scale (above 1: CFG on, twice the UNet rows).", 1.0)
    arch: str = setting("Model built from config when no --model is given (as the sweep's --arch; txt2img).",
                        "tiny")
    model: str | None = setting("A local diffusers txt2img pipeline folder; None builds --arch.", None)
    device: str = setting("Where PyTorch runs: cpu, cuda or mps.", "cpu")
    dtype: str = setting("Weights and activations: float32, float16 or bfloat16.", "float32")
    seed: int = setting("Seed of the arrival times and of request i's image (seed + i).", 0)
    spool: str = setting("Spool folder the collector ingests from.", env=SPOOL_DIR)
    ray: str | None = setting(
        "Serve on Ray: every server a Ray actor that loads the pipeline once: a cluster's address (host:port or "
        "ray://host:port), auto (the cluster `ray start --head` began on this machine) or local (start Ray "
        "here); None serves in this process.", None)
    endpoint: str | None = setting(
        "Measure a running server instead: the base URL of any OpenAI Images API server (e.g. "
        "http://127.0.0.1:8000/v1, from `python -m generator serve`); the arrivals are sent to it as real "
        "concurrent HTTP requests, its capacity calibrated from bursts of 1 and --max-batch. None: serve in "
        "this process.", None)
    api_key: str | None = setting("With --endpoint: the bearer token to send (Authorization: Bearer KEY).", None)
    servers: tuple[int, ...] = setting(
        "Server counts, one set of levels each, at the same offered loads: N servers behind a round-robin "
        "router (request i of the arrival order to server i mod N); N > 1 needs --ray. On CPU the N servers "
        "split the cluster's CPUs evenly.", (1,))

    def __post_init__(self):
        if not self.policies:
            raise ValueError(f"policies must list at least one of {', '.join(POLICIES)}, got none")
        for p in self.policies:
            check_policy(p, self.max_batch, self.max_delay)
        if self.arrival not in ARRIVALS:
            raise ValueError(f"arrival must be one of {', '.join(ARRIVALS)}, got {self.arrival!r}")
        if self.arrival == "poisson":
            if not self.loads:
                raise ValueError("loads must list at least one multiple of capacity, got none")
            for x in self.loads:
                if not x > 0:
                    raise ValueError(f"load must be > 0 (a multiple of capacity, e.g. 0.5), got {x}")
        if self.arrival == "closed":
            for n in self.clients or (0,):
                if n < 1:
                    raise ValueError(f"clients must be >= 1, got {n}")
        if self.arrival == "trace" and not self.trace:
            raise ValueError("arrival 'trace' needs --trace FILE, got none")
        if self.trace and self.arrival != "trace":
            raise ValueError(f"--trace is for arrival 'trace', got arrival {self.arrival!r}")
        for name in ("min_requests", "steps", "burst_repeats"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', ' ')} must be >= 1, got {getattr(self, name)}")
        if self.burst < 0:
            raise ValueError(f"burst must be >= 0, got {self.burst}")
        if self.min_seconds < 0:
            raise ValueError(f"min seconds must be >= 0, got {self.min_seconds}")
        check_served_model(self, self.policies)
        self._check_servers()
        if self.endpoint is not None and (self.ray is not None or max(self.servers) > 1):
            raise ValueError(f"--endpoint measures one running server from this process; it takes no --ray or "
                             f"--servers, got endpoint {self.endpoint!r} with ray {self.ray!r}, servers "
                             f"{','.join(map(str, self.servers))}")

    def _check_servers(self) -> None:
        """--servers and --ray: counts >= 1, each once; more than one server only on Ray, and not for a
        closed loop."""
        listed = ",".join(map(str, self.servers))
        if not self.servers:
            raise ValueError("servers must list at least one server count, got none")
        for n in self.servers:
            if n < 1:
                raise ValueError(f"servers must be >= 1 each, got {n}")
        if len(set(self.servers)) < len(self.servers):
            raise ValueError(f"servers must list each count once, got {listed}")
        if self.ray is not None and not self.ray.strip():
            raise ValueError("ray must be an address (host:port), auto or local, got ''")
        many = max(self.servers) > 1
        if many and self.ray is None:
            raise ValueError(f"more than one server runs on Ray actors: --servers {listed} needs --ray (an "
                             "address, auto or local), got none")
        if many and self.arrival == "closed":
            raise ValueError("arrival 'closed' runs on one server (a closed loop's next request exists only once "
                             "one finishes; the router splits arrivals known before the level starts), got "
                             f"--servers {listed}")




def check_served_model(cfg, policies) -> None:
    """Raise ValueError naming a bad setting of the pipeline a server runs (a load run's or `generator serve`'s):
    resolution, guidance, device, dtype, the arch without a --model, and the stream policy on a model without
    a stream engine."""
    if cfg.resolution < 8 or cfg.resolution % 8:
        raise ValueError(f"resolution must be a positive multiple of 8, got {cfg.resolution}")
    if cfg.guidance < 0:
        raise ValueError(f"guidance must be >= 0, got {cfg.guidance}")
    for name, value, allowed in [("device", cfg.device, DEVICES), ("dtype", cfg.dtype, DTYPES)]:
        if value not in allowed:
            raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
    if cfg.model is None:
        check_arch(cfg.arch, "txt2img")
        if cfg.arch in ("sdxl", *PIXART_ARCHS) and "stream" in policies:
            raise ValueError(f"arch {cfg.arch!r} has no stream engine; use policies fifo,batch, got policy 'stream'")


@dataclass(frozen=True)
class Level:
    """One policy at one load: how requests arrive."""

    policy: str
    arrival: str                  # poisson | closed | trace | burst
    requests: tuple[Request, ...]  # the first arrivals (a closed loop adds the rest as it goes)
    offered_rps: float | None = None
    clients: int | None = None
    load_factor: float | None = None
    total: int | None = None      # closed loop: requests asked in all


def levels(cfg: LoadConfig, cap: float, trace: list[Request] | None = None) -> list[Level]:
    """Every level of the run, in order: per load (or client count, or the trace) every policy, then the
    bursts."""
    out = []
    if cfg.arrival == "poisson":
        for k, x in enumerate(cfg.loads):
            rate = x * cap
            n = max(cfg.min_requests, math.ceil(rate * cfg.min_seconds))
            arrivals = tuple(poisson(rate, n, cfg.steps, cfg.seed + k))
            out += [Level(p, "poisson", arrivals, offered_rps=rate, load_factor=x) for p in cfg.policies]
    elif cfg.arrival == "closed":
        for n in cfg.clients:
            out += [Level(p, "closed", tuple(burst(n, cfg.steps)), clients=n, total=max(cfg.min_requests, n))
                    for p in cfg.policies]
    else:
        out += [Level(p, "trace", tuple(trace)) for p in cfg.policies]
    if cfg.burst:
        for _ in range(cfg.burst_repeats):
            for n in sorted({1, cfg.burst}):
                out += [Level(p, "burst", tuple(burst(n, cfg.steps)), clients=n) for p in cfg.policies]
    return out

"""The image server's own cost (make bench): `generator serve` over HTTP against the in-process server, side by side.

One pipeline (the tiny model, 64 px, 10 steps) serves both arms: the HTTP server's engine loads it, and the
in-process arm runs the same object between the server's requests, so no difference of weights or memory
layout enters. At the lightest load, a closed loop of one client (each request sent when the last is back),
the rounds alternate: `--requests` requests in process (scheduler.serve on the real clock, fifo), then as many
over HTTP (client.send_level against the server, fifo). Per round, the ratio of the two p50 latencies; the
median over rounds with its 95% order-statistic interval (stats.py).

Also the server's own cost per request: the client's latency of a request less the engine's (arrival in the
queue to its last step), which is what HTTP, JSON, the queue hand-off and the PNG encoding add.
Target: the HTTP path adds at most 5% to p50 (ratio <= 1.05).
"""

from __future__ import annotations

import argparse
import statistics
import tempfile

from benchmarks.results import Results
from generator.serve.api import running
from generator.serve.arrivals import burst
from generator.serve.client import Endpoint, send_level
from generator.serve.config import ServeConfig
from generator.serve.levels import Level, LoadConfig
from generator.serve.load import Workers
from generator.serve.engine import RealClock
from generator.serve.router import Served, serve_share
from generator.serve.scheduler import percentile
from generator.serve.service import Service
from stats import median_interval


def in_process(service: Service, cfg: LoadConfig, n: int) -> list[float]:
    """Latencies of n requests of one closed-loop client, served in this thread on the server's pipeline."""
    served = Served("bench", "")
    level = Level("fifo", "closed", tuple(burst(1, cfg.steps)), clients=1, total=n)
    serve_share(level, cfg, RealClock(), Workers(service.pipe, cfg, {}, {}), served)
    return [d.latency_s for _, d in served.done]


def over_http(endpoint: Endpoint, service: Service, n: int) -> tuple[list[float], list[float]]:
    """Latencies of n requests of one closed-loop client over HTTP, and the engine's own latency of each."""
    before = len(service.served.done)
    sent = send_level(endpoint, Level("fifo", "closed", (), clients=1, total=n))
    client = [s.latency_s for s in sorted(sent.seen.values(), key=lambda s: s.sent_s) if s.ok]
    engine = [d.latency_s for _, d in service.served.done[before:]]
    return client, engine


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9, help="alternating rounds (default 9)")
    parser.add_argument("--requests", type=int, default=20, help="requests per arm and round (default 20)")
    args = parser.parse_args(argv)
    results = Results()
    with tempfile.TemporaryDirectory() as spool:
        serve_cfg = ServeConfig(policy="fifo", resolution=64, steps=10, port=0, record_idle=3600.0, spool=spool)
        load_cfg = LoadConfig(policies=("fifo",), resolution=64, steps=10, spool=spool)
        service = Service(serve_cfg)
        with running(serve_cfg, service) as url:
            endpoint = Endpoint(url, None, 64, 10)
            endpoint.models()
            in_process(service, load_cfg, 3), over_http(endpoint, service, 3)  # warm-up, not counted
            ratios, local_p50, http_p50, added = [], [], [], []
            for _ in range(args.rounds):
                local = in_process(service, load_cfg, args.requests)
                client, engine = over_http(endpoint, service, args.requests)
                local_p50.append(percentile(local, 50))
                http_p50.append(percentile(client, 50))
                ratios.append(http_p50[-1] / local_p50[-1])
                added += [c - e for c, e in zip(client, engine)]
    interval = median_interval(ratios)
    ratio = interval.value
    said = ("(too few rounds for a 95% interval)" if interval.too_few
            else f"[{interval.low:.3f}-{interval.high:.3f}] (95%)")
    print(f"\nHTTP against in-process, tiny model at 64 px, 10 steps, fifo, one closed-loop client; "
          f"{args.rounds} alternating rounds of {args.requests} requests each")
    print(f"  p50 in process {statistics.median(local_p50) * 1000:.1f} ms, over HTTP "
          f"{statistics.median(http_p50) * 1000:.1f} ms (medians over rounds)")
    print(f"  p50 ratio HTTP / in process: {ratio:.3f} {said}   target <= 1.05")
    print(f"  the server's own cost per request (client latency less the engine's): median "
          f"{statistics.median(added) * 1000:.2f} ms, {statistics.median(added) / statistics.median(local_p50):.1%} "
          f"of the in-process p50 ({len(added)} requests)")
    results.add("HTTP p50 over in-process p50", ratio, "ratio", "<= 1.05", ratio <= 1.05)
    results.add("server cost per request", statistics.median(added) * 1000, "ms")
    results.save()


if __name__ == "__main__":
    main()

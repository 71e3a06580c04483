"""Serving benchmarks (make bench): the scheduler's own cost, and the prediction against the measurement.

1. The scheduler's cost per request: each policy serves 20,000 Poisson requests on the simulated clock
   (the whole loop: arrivals, queue, decisions, bookkeeping; the work itself costs nothing here).
   Target: under 1 ms per request, so that the policy never becomes the bottleneck it measures.
2. Predicted against measured: a load run on the tiny model at a moderate load (0.5x of the calibrated
   capacity) for each policy: the discrete-event simulation's p50 and p99 on the calibrated batch cost
   against the measured ones, as (predicted - measured) / measured. Reported; the aim is within 15%.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

from benchmarks.results import Results
from generator.run import run_load
from generator.serve import load
from generator.serve.levels import LoadConfig
from generator.serve.scheduler import LinearCost, Policy, percentile, simulate

COST = LinearCost(job_fixed_s=0.08, job_marginal_s=0.02, step_fixed_s=0.008, step_marginal_s=0.002)


def scheduler_cost_us(policy: str, n: int, repeats: int) -> list[float]:
    """Microseconds of scheduler time per request, one figure per repeat."""
    arrivals = load.poisson(0.8 * load.capacity(COST, 8), n, 10, seed=1)
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        simulate(Policy(policy, max_batch=8, max_delay_s=0.02), arrivals, COST)
        out.append((time.perf_counter() - t0) / n * 1e6)
    return out


def prediction_gaps(requests: int) -> dict[str, dict[str, float]]:
    """{policy: {p50: gap, p99: gap}} of a load run on the tiny model at 0.5x capacity."""
    import json
    from pathlib import Path

    with tempfile.TemporaryDirectory() as tmp:
        cfg = LoadConfig(loads=(0.5,), burst=0, min_requests=requests, min_seconds=5.0, max_batch=8,
                              steps=10, resolution=64, spool=tmp)
        run_load(cfg, progress=False)
        gaps = {}
        for f in Path(tmp).rglob("*.jsonl"):
            rows = [json.loads(line) for line in f.read_text().splitlines()]
            level = rows[0]
            latencies = [r["latency_s"] for r in rows if r["kind"] == "request" and r["status"] == "ok"]
            gaps[level["policy"]] = {
                q: (level[f"predicted_{q}_s"] - percentile(latencies, int(q[1:]))) / percentile(latencies, int(q[1:]))
                for q in ("p50", "p99")}
        return gaps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="simulated requests per policy")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--load-requests", type=int, default=60, help="requests of the real load run per policy")
    args = parser.parse_args()
    results = Results()
    print("scheduler cost per request (simulated clock, no work)")
    for policy in ("fifo", "batch", "stream"):
        us = scheduler_cost_us(policy, args.requests, args.repeats)
        median = statistics.median(us)
        print(f"  {policy:6s} median {median:7.1f} us  (min {min(us):.1f}, max {max(us):.1f}, {args.repeats} runs)")
        results.add(f"scheduler cost per request {policy}", median, "us", "< 1000", median < 1000)
    print("\npredicted against measured latency, tiny model at 64 px, 0.5x capacity")
    for policy, gap in sorted(prediction_gaps(args.load_requests).items()):
        print(f"  {policy:6s} p50 {gap['p50']:+.1%}   p99 {gap['p99']:+.1%}")
        for q in ("p50", "p99"):
            results.add(f"prediction gap {q} {policy}", gap[q] * 100, "%", "within ±15", abs(gap[q]) <= 0.15)
    results.save()


if __name__ == "__main__":
    main()

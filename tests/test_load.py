"""The load generator's pure parts: arrivals, the trace file, the settings, the cost fit, the plan of
levels and the prediction (generator/serve/load.py). No clock, no pipeline."""

from __future__ import annotations

import numpy as np
import pytest

from collector.ingest import CollectorConfig, ingest_pending
from generator.run import run_load
from generator.serve import arrivals, levels, load
from generator.serve.levels import LoadConfig
from generator.serve.scheduler import Done, LinearCost, Request
from warehouse.queries import Warehouse

COST = LinearCost(job_fixed_s=1.0, job_marginal_s=0.25, step_fixed_s=0.1, step_marginal_s=0.05)


def test_poisson_arrivals_are_seeded_increasing_and_at_the_rate():
    a, b = arrivals.poisson(4.0, 4000, 10, seed=3), arrivals.poisson(4.0, 4000, 10, seed=3)
    assert a == b and all(x.arrival_s < y.arrival_s for x, y in zip(a, a[1:]))
    gaps = np.diff([0.0] + [r.arrival_s for r in a])
    assert gaps.mean() == pytest.approx(0.25, rel=0.05)  # 4000 exponential gaps: the mean within 5%
    assert [r.id for r in a[:3]] == [0, 1, 2] and {r.steps for r in a} == {10}
    with pytest.raises(ValueError, match="rate must be > 0 requests/s, got 0"):
        arrivals.poisson(0, 5, 10, 0)


def test_a_closed_loop_asks_again_until_its_total():
    loop = arrivals.ClosedLoop(clients=2, total=5, steps=3)
    assert [r.arrival_s for r in loop.first] == [0.0, 0.0]
    again = [loop.again(Done(Request(i, 0, 3), 0, 1.5 + i, 1, i)) for i in range(4)]
    assert [r.id if r else None for r in again] == [2, 3, 4, None]
    assert again[0].arrival_s == 1.5


def _trace(tmp_path, text):
    path = tmp_path / "trace.csv"
    path.write_text(text)
    return str(path)


def test_a_trace_gives_requests_prompts_and_seeds(tmp_path):
    requests, prompts, seeds, steps, size = arrivals.read_trace(_trace(
        tmp_path, 'arrival_s,prompt,seed,steps,size\n0.0,"a fox, in snow",7,4,64\n0.5,a lighthouse,8,4,64\n'))
    assert [r.arrival_s for r in requests] == [0.0, 0.5] and (steps, size) == (4, 64)
    assert prompts == {0: "a fox, in snow", 1: "a lighthouse"} and seeds == {0: 7, 1: 8}


@pytest.mark.parametrize("text, message", [
    ("arrival_s,prompt,seed,steps\n0,a,1,4\n", "the header must name arrival_s, prompt, seed, steps, size; missing size"),
    ("arrival_s,prompt,seed,steps,size\n0,a,,4,64\n", "line 2: missing field 'seed'"),
    ("arrival_s,prompt,seed,steps,size\n0,a,1,4,64\nsoon,a,1,4,64\n", "line 3: arrival_s must be a number"),
    ("arrival_s,prompt,seed,steps,size\n-1,a,1,4,64\n", "line 2: arrival_s >= 0"),
    ("arrival_s,prompt,seed,steps,size\n0,a,1,4,64\n1,a,1,4,128\n", "line 3: asks for 4 steps at 128 px"),
    ("arrival_s,prompt,seed,steps,size\n", "holds no requests"),
])
def test_a_bad_trace_is_refused_naming_the_line(tmp_path, text, message):
    with pytest.raises(ValueError) as info:
        arrivals.read_trace(_trace(tmp_path, text))
    assert message in str(info.value)


def test_a_missing_trace_file_is_named(tmp_path):
    with pytest.raises(ValueError, match="cannot be read"):
        arrivals.read_trace(str(tmp_path / "none.csv"))


@pytest.mark.parametrize("fields, message", [
    (dict(loads=(0.5, 0.0)), "load must be > 0 (a multiple of capacity, e.g. 0.5), got 0.0"),
    (dict(max_delay=-0.01), "max delay must be >= 0 s, got -0.01"),
    (dict(policies=("fifo", "lifo")), "policy must be one of fifo, batch, stream, got 'lifo'"),
    (dict(arrival="storm"), "arrival must be one of poisson, closed, trace, got 'storm'"),
    (dict(arrival="closed", clients=(2, 0)), "clients must be >= 1, got 0"),
    (dict(arrival="trace"), "arrival 'trace' needs --trace FILE, got none"),
    (dict(resolution=60), "resolution must be a positive multiple of 8, got 60"),
    (dict(max_batch=0), "max batch must be >= 1, got 0"),
    (dict(arch="ldm-inpaint"), "arch 'ldm-inpaint' builds task inpaint, got task 'txt2img'"),
])
def test_bad_settings_are_refused_before_any_work(tmp_path, fields, message):
    with pytest.raises(ValueError) as info:
        LoadConfig(spool=str(tmp_path), **fields)
    assert message in str(info.value)


def test_the_cost_fits_recover_a_known_line():
    assert load.fit_job({1: [1.25, 1.3, 1.2], 8: [3.0, 3.0, 2.9]}) == pytest.approx((1.0, 0.25))
    work = [(rows, out, 0.1 + 0.05 * rows + (0.2 + 0.1 * out if out else 0.0))
            for rows, out in [(1, 0), (1, 1), (8, 0), (8, 8), (8, 0)]]
    assert load.fit_step(work) == pytest.approx((0.1, 0.05, 0.2, 0.1))
    with pytest.raises(ValueError, match="two row counts"):
        load.fit_step([(8, 0, 1.0), (8, 0, 1.1)])


def test_the_plan_runs_every_policy_at_every_load_then_the_bursts(tmp_path):
    cfg = LoadConfig(spool=str(tmp_path), loads=(0.5, 1.0), burst=4, burst_repeats=1, max_batch=8,
                     min_requests=10, min_seconds=2.0)
    cap = load.capacity(COST, 8)
    assert cap == pytest.approx(8 / 3.0)
    plan = levels.levels(cfg, cap)
    assert [(lv.policy, lv.arrival, lv.clients) for lv in plan[6:]] == [
        (p, "burst", n) for n in (1, 4) for p in ("fifo", "batch", "stream")]
    light, full = plan[0], plan[3]
    assert light.offered_rps == pytest.approx(cap / 2) and light.load_factor == 0.5
    # At least --min-requests, and at least --min-seconds of arrivals at the rate.
    assert len(light.requests) == 10 and len(full.requests) == 10
    # The policies of one load see the same arrivals.
    assert plan[0].requests == plan[1].requests == plan[2].requests
    # Repeated bursts come in turns, 1 then N, each size under every policy before the next.
    again = levels.levels(LoadConfig(spool=str(tmp_path), loads=(0.5,), burst=4, burst_repeats=3, max_batch=8,
                                     min_requests=10, policies=("fifo", "batch")), cap)
    assert [(lv.policy, lv.clients) for lv in again if lv.arrival == "burst"] == [
        (p, n) for _ in range(3) for n in (1, 4) for p in ("fifo", "batch")]


def test_the_prediction_is_the_simulation_of_the_level(tmp_path):
    cfg = LoadConfig(spool=str(tmp_path), max_batch=8, steps=2)
    eight = levels.Level("fifo", "burst", tuple(arrivals.burst(8, 2)), clients=8)
    fifo = load.predict(eight, cfg, COST)
    assert fifo["predicted_p99_s"] == pytest.approx(1.25 * (7 + 0.93))  # 99th of 1.25, 2.5, ..., 10: 6.93rd
    batch = load.predict(levels.Level("batch", "burst", tuple(arrivals.burst(8, 2)), clients=8), cfg, COST)
    assert batch["predicted_p50_s"] == batch["predicted_p99_s"] == pytest.approx(COST.job(8))
    closed = load.predict(levels.Level("fifo", "closed", tuple(arrivals.burst(2, 2)), clients=2, total=6), cfg, COST)
    assert closed["predicted_rps"] == pytest.approx(1 / 1.25)  # the server never idles: one per job time


@pytest.mark.slow
def test_a_real_load_run_lands_in_the_warehouse(tmp_path):
    """generator load on the tiny model -> spool -> collector -> the load_latency view: every level, every
    request finished, the prediction beside the measurement."""
    cfg = LoadConfig(loads=(0.5, 1.2), burst=3, burst_repeats=1, max_batch=3, max_delay=0.02, min_requests=5,
                     min_seconds=0.1, steps=2, resolution=64, spool=str(tmp_path / "spool"))
    written = run_load(cfg, progress=False)
    assert len(written) == 3 * 2 + 3 * 2 and not written.unwritten  # 3 policies x (2 loads + bursts of 1, 3)
    report = ingest_pending(CollectorConfig(spool=cfg.spool, db=str(tmp_path / "w.duckdb")))
    assert not report.quarantined
    sweep = Warehouse(str(tmp_path / "w.duckdb")).sweeps().sweep_id.iloc[0]
    levels = Warehouse(str(tmp_path / "w.duckdb")).load_levels(sweep)
    assert len(levels) == 12 and (levels.requests_ok == levels.requests).all()
    assert levels.p99_s.notna().all() and levels.predicted_p99_s.notna().all() and (levels.capacity_rps > 0).all()
    poisson = levels[levels.arrival == "poisson"]
    assert sorted(set(poisson.load_factor)) == [0.5, 1.2]
    # The three policies of one load saw the same arrivals; each burst level held its N requests.
    assert poisson.groupby("load_factor").requests.nunique().eq(1).all()
    assert sorted(levels[levels.arrival == "burst"].clients.unique()) == [1, 3]

"""Serving under load, downstream of the spool: load levels, requests and server steps written as real spool
files, ingested by the real collector into a real DuckDB file; the view load_latency against numpy on the
same numbers, the named queries, the analysis (warehouse/load.py), its sentences, and the Load page."""

from __future__ import annotations

import logging
import shutil
import statistics

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import stats
from collector.ingest import DONE, CollectorConfig, ingest_pending
from spool import SpoolWriter, record
from warehouse import db, load, queries
from warehouse.explain import serving, states
from warehouse.queries import Warehouse

from .conftest import ROOT, sql_rows as _sql

SWEEP = "sweep-load"
POLICIES = ("fifo", "batch", "stream")
FACTORS = (0.5, 1.0, 1.5)
CAPACITY = 4.0  # requests/s: offered loads 2, 4 and 6 requests/s
N = 20          # requests per Poisson level
# Latency scale per policy at each load factor: the level's latencies are scale x (0.5 ... 1.5, evenly spaced),
# so that quantile_cont(q) = scale x (0.5 + q): p50 = scale, p99 = 1.49 scale.
SCALE = {"batch": (0.6, 0.8, 1.0), "fifo": (1.0, 2.0, 4.0), "stream": (1.5, 1.8, 2.5)}
# Predicted p99 over measured: batch and stream within 15% everywhere; fifo parts from 1x capacity on.
PREDICTED = {"batch": (1.05, 1.05, 1.05), "fifo": (1.1, 0.7, 0.5), "stream": (0.9, 0.9, 0.9)}
BATCH = {"fifo": 1, "batch": 4, "stream": 3}
# Bursts: one request alone takes 0.5 s under every policy; four at once finish at these latencies.
ONE_S = 0.5
BURST_OF_4 = {"fifo": (0.5, 1.0, 1.5, 2.0), "batch": (0.7, 0.7, 0.7, 0.7), "stream": (0.6, 0.7, 0.8, 1.0)}
FAILED = ("fifo", 1.5)  # this level also has two requests that failed (never ran)


def _latencies(policy: str, k: int) -> np.ndarray:
    """The latencies of the Poisson level at FACTORS[k], in a shuffled order (the order changes no percentile)."""
    lat = SCALE[policy][k] * np.linspace(0.5, 1.5, N)
    return np.random.default_rng(10 * k + POLICIES.index(policy)).permutation(lat)


def _level(level_id: str, policy: str, arrival: str, requests: int, offered=None, clients=None, factor=None,
           predicted=(None, None, None, None)) -> dict:
    p50, p90, p99, rps = predicted
    return record("load_level", level_id=level_id, sweep_id=SWEEP, started_at="2026-01-01T00:00:00+00:00",
                  host="testhost", device="cpu", device_name="cpu", model_id="embedded-tiny-ldm-txt2img",
                  task="txt2img", height=64, width=64, steps=10, dtype="float32", threads=2, policy=policy,
                  max_batch=4, max_delay_s=0.05, arrival=arrival, offered_rps=offered, clients=clients,
                  load_factor=factor, capacity_rps=CAPACITY, requests=requests, duration_s=None, arrival_seed=0,
                  job_fixed_s=0.3, job_marginal_s=0.2, step_fixed_s=0.02, step_marginal_s=0.01,
                  finish_fixed_s=0.05, finish_marginal_s=0.02, predicted_p50_s=p50, predicted_p90_s=p90,
                  predicted_p99_s=p99, predicted_rps=rps)


def _requests(level_id: str, policy: str, arrivals, latencies) -> list[dict]:
    return [record("request", level_id=level_id, request_id=i, seed=i, steps=10, arrival_s=float(a),
                   start_s=float(a + 0.3 * t), finish_s=float(a + t), wait_s=float(0.3 * t), latency_s=float(t),
                   batch=BATCH[policy], group_index=i // BATCH[policy], status="ok", error=None)
            for i, (a, t) in enumerate(zip(arrivals, latencies))]


def _steps(level_id: str, policy: str, requests: int) -> list[dict]:
    unit, rows = ("step", BATCH[policy]) if policy == "stream" else ("job", BATCH[policy])
    return [record("server_step", level_id=level_id, step_index=i, unit=unit, start_s=0.1 * i, duration_s=0.1,
                   rows=rows, finished=rows) for i in range(-(-requests // rows))]


def write_load_run(spool) -> dict[str, list[dict]]:
    """The spool files of a small load run (one per level, as the generator writes them) and a run record of
    the same sweep (so the sidebar lists it); returns each level's records by level id."""
    writer, levels = SpoolWriter(spool), {}
    run = record("run", run_id="run-load", sweep_id=SWEEP, started_at="2026-01-01T00:00:00+00:00", device="cpu",
                 model_id="embedded-tiny-ldm-txt2img", task="txt2img", mode="static", height=64, width=64, steps=10)
    writer.write("run-load", "run", [run])
    for policy in POLICIES:
        for k, factor in enumerate(FACTORS):
            offered = factor * CAPACITY
            lat = _latencies(policy, k)
            arrivals = np.arange(N) / offered
            p50, p90, p99 = (float(np.percentile(lat, q)) for q in (50, 90, 99))
            rps = N / float(np.max(arrivals + lat) - arrivals.min())
            ratio = PREDICTED[policy][k]
            level_id = f"level-{policy}-p{k}"
            reqs = _requests(level_id, policy, arrivals, lat)
            if (policy, factor) == FAILED:
                reqs += [record("request", level_id=level_id, request_id=N + j, seed=N + j, steps=10,
                                arrival_s=float(N + j) / offered, start_s=None, finish_s=None, wait_s=None,
                                latency_s=None, batch=None, group_index=None, status="error", error="not run")
                         for j in range(2)]
            head = _level(level_id, policy, "poisson", len(reqs), offered=offered, factor=factor,
                          predicted=(p50 * ratio, p90 * ratio, p99 * ratio, rps * 0.95))
            levels[level_id] = [head, *reqs, *_steps(level_id, policy, N)]
        for n, lat in ((1, (ONE_S,)), (4, BURST_OF_4[policy])):
            level_id = f"level-{policy}-b{n}"
            head = _level(level_id, policy, "burst", n, clients=n,
                          predicted=(float(np.percentile(lat, 50)),) * 3 + (n / max(lat),))
            levels[level_id] = [head, *_requests(level_id, policy, [0.0] * n, lat), *_steps(level_id, policy, n)]
    for level_id, rows in levels.items():
        writer.write(level_id, level_id, rows)
    return levels


@pytest.fixture(scope="module")
def load_run(tmp_path_factory):
    """The load run ingested by the real collector: (db path, each level's records by level id)."""
    base = tmp_path_factory.mktemp("load")
    levels = write_load_run(base / "spool")
    said, logger = _Said(), logging.getLogger("collector")
    level, logger.level = logger.level, logging.INFO
    logger.addHandler(said)
    try:
        report = ingest_pending(CollectorConfig(spool=str(base / "spool"), db=str(base / "w.duckdb")))
    finally:
        logger.removeHandler(said)
        logger.setLevel(level)
    assert report.files == len(levels) + 1 and not report.quarantined
    assert not said.lines, said.lines  # one batch, taken whole by DuckDB (the fast path): nothing refused
    return str(base / "w.duckdb"), levels


class _Said(logging.Handler):
    """What the collector logged."""

    def __init__(self):
        super().__init__(logging.INFO)
        self.lines = []

    def emit(self, rec):
        self.lines.append(rec.getMessage())


def _counts(db_path) -> dict[str, int]:
    return {t: _sql(db_path, f"SELECT count(*) FROM {t}")[0][0]
            for t in ("load_levels", "requests", "server_steps", "runs", "ingested_files")}


# -- the view against numpy ------------------------------------------------------------------------------------

def test_the_view_measures_each_level_as_numpy_does(load_run):
    db_path, levels = load_run
    view = Warehouse(db_path).load_levels(SWEEP).set_index("level_id")
    assert set(view.index) == set(levels)
    for level_id, rows in levels.items():
        ok = [r for r in rows if r["kind"] == "request" and r["status"] == "ok"]
        lat = np.array([r["latency_s"] for r in ok])
        span = max(r["finish_s"] for r in ok) - min(r["arrival_s"] for r in ok)
        got = view.loc[level_id]
        assert got.requests == sum(r["kind"] == "request" for r in rows) and got.requests_ok == len(ok)
        for q in (50, 90, 99):
            assert got[f"p{q}_s"] == pytest.approx(np.percentile(lat, q), rel=1e-12), (level_id, q)
        assert got.max_s == pytest.approx(lat.max())
        assert got.throughput_rps == pytest.approx(len(ok) / span, rel=1e-12)
        assert got.mean_wait_s == pytest.approx(np.mean([r["wait_s"] for r in ok]))
        assert got.mean_batch == pytest.approx(np.mean([r["batch"] for r in ok]))
        assert got.predicted_p99_s == pytest.approx(rows[0]["predicted_p99_s"])
    # The known percentiles of the evenly spaced latencies: p50 = scale, p99 = 1.49 scale.
    assert view.loc["level-fifo-p1"].p50_s == pytest.approx(2.0) and view.loc["level-fifo-p1"].p99_s == pytest.approx(2.98)
    # The failed requests of one level count in `requests`, not in the figures.
    assert (view.loc["level-fifo-p2"].requests, view.loc["level-fifo-p2"].requests_ok) == (N + 2, N)
    assert _sql(db_path, "SELECT count(*) FROM server_steps WHERE unit = 'step'")[0][0] > 0


def test_the_queries_order_levels_and_count_goodput_as_numpy_does(load_run):
    db_path, levels = load_run
    view = Warehouse(db_path).load_levels(SWEEP)
    keys = list(zip(view.policy, view.arrival, view.offered_rps.fillna(np.inf), view.clients.fillna(0)))
    assert keys == sorted(keys) and list(view.policy.unique()) == ["batch", "fifo", "stream"]
    assert Warehouse(db_path).load_levels("another-sweep").empty
    # The requests of two levels, with their level's policy.
    rows = Warehouse(db_path).load_requests(["level-fifo-p2", "level-batch-b4"])
    assert len(rows) == N + 2 + 4 and set(rows.policy) == {"fifo", "batch"}
    # Goodput: the ok requests within the objective per second of the level; their share of all its requests.
    objective = 2.0
    goodput = Warehouse(db_path).load_goodput(SWEEP, objective).set_index("level_id")
    for level_id, recs in levels.items():
        reqs = [r for r in recs if r["kind"] == "request"]
        ok = [r for r in reqs if r["status"] == "ok"]
        within = sum(r["latency_s"] <= objective for r in ok)
        span = max(r["finish_s"] for r in ok) - min(r["arrival_s"] for r in ok)
        got = goodput.loc[level_id]
        assert got.within == within and got.share_within == pytest.approx(within / len(reqs))
        assert got.goodput_rps == pytest.approx(within / span)
    # fifo at 1.5x: latencies 2 ... 6 s, only the first (2 s exactly) within 2 s; two failed requests miss it.
    assert goodput.loc["level-fifo-p2"].within == 1 and goodput.loc["level-fifo-p2"].share_within == pytest.approx(1 / 22)
    assert Warehouse(db_path).run_sql(queries.EXAMPLE_QUERIES["Latency under load"]).frame.shape[0] == len(levels)


# -- exactly once ---------------------------------------------------------------------------------------------

def test_load_files_are_ingested_exactly_once_by_either_path(tmp_path, load_run):
    spool, db_path = tmp_path / "spool", str(tmp_path / "w.duckdb")
    levels = write_load_run(spool)
    # A bad file in the batch: DuckDB refuses the batch, so every file is read one by one (the exact path).
    (spool / "bad").mkdir()
    (spool / "bad" / "orphan.jsonl").write_bytes(
        b'{"kind":"request","schema_version":1,"request_id":0,"arrival_s":0.0,"status":"ok"}\n')
    cfg = CollectorConfig(spool=str(spool), db=db_path)
    report = ingest_pending(cfg)
    assert report.files == len(levels) + 1
    assert report.quarantined == [("bad/orphan.jsonl", "line 1: request record lacks level_id")]
    counts = _counts(db_path)
    assert counts["load_levels"] == len(levels) and counts["requests"] == 9 * N + 2 + 3 * 5
    # The exact path stored what the fast path (the shared fixture) stored.
    view = "SELECT * EXCLUDE (started_at) FROM load_latency ORDER BY level_id"
    assert _sql(db_path, view) == _sql(load_run[0], view)
    # Ingesting again adds nothing; a file put back under its own name is only moved, under another name refused.
    assert ingest_pending(cfg).files == 0 and _counts(db_path) == counts
    shutil.copy(spool / DONE / "level-batch-p0" / "level-batch-p0.jsonl", spool / "level-batch-p0" / "level-batch-p0.jsonl")
    assert ingest_pending(cfg).skipped == 1 and _counts(db_path) == counts
    shutil.copy(spool / DONE / "level-batch-p0" / "level-batch-p0.jsonl", spool / "level-batch-p0" / "again.jsonl")
    report = ingest_pending(cfg)
    assert report.quarantined and report.quarantined[0][1].startswith("duplicate") and _counts(db_path) == counts
    # A level record sent again in another file is kept once, as first ingested.
    again = dict(levels["level-batch-p0"][0], host="elsewhere")
    SpoolWriter(spool).write("level-batch-p0", "resent", [again])
    assert ingest_pending(cfg).files == 1
    assert _counts(db_path)["load_levels"] == counts["load_levels"]
    assert _sql(db_path, "SELECT host FROM load_levels WHERE level_id = 'level-batch-p0'") == [("testhost",)]


# -- the analysis on the ingested run ----------------------------------------------------------------------------

def test_the_analysis_of_the_ingested_run(load_run):
    db_path, _ = load_run
    levels = Warehouse(db_path).load_levels(SWEEP)
    # Twice the median p50 at the lowest load (batch 0.6, fifo 1.0, stream 1.5 s).
    assert load.default_objective(levels) == 2.0
    caps = load.capacity_at(levels, 2.0)
    view = levels.set_index("level_id")
    # batch: every p99 within 2 s (0.89, 1.19, 1.49); fifo only at 0.5x (1.49; then 2.98); stream never (2.24 up).
    assert caps["batch"].served_rps == pytest.approx(view.loc["level-batch-p2"].throughput_rps)
    assert caps["batch"].first_miss_rps is None
    assert caps["fifo"].served_rps == pytest.approx(view.loc["level-fifo-p0"].throughput_rps)
    # fifo's own capacity is one request per job(1) = 0.3 + 0.2 s: 2 requests/s, so 4 requests/s is twice it.
    assert (caps["fifo"].first_miss_rps, caps["fifo"].first_miss_factor) == (4.0, 2.0)
    assert caps["stream"].served_rps is None and caps["stream"].first_miss_rps == 2.0
    bursts = load.burst(levels)
    assert [(b.policy, b.n, round(b.ratio, 9)) for b in bursts] == [("batch", 4, 1.4), ("stream", 4, 2.0),
                                                                      ("fifo", 4, 4.0)]
    gaps = {g.level_id: g for g in load.prediction_gaps(levels)}
    assert gaps["level-fifo-p1"].p99_gap == pytest.approx(-0.3) and load.parts_ways(gaps["level-fifo-p1"].p99_gap)
    assert gaps["level-batch-p1"].p50_gap == pytest.approx(0.05) and not load.parts_ways(gaps["level-batch-p1"].p99_gap)
    assert serving.load_burst(bursts) == ("**4 requests sent at once** finished in 1.4x the time of one under "
                                          "`batch`, 2.0x under `stream`, 4.0x under `fifo` (medians of 1 bursts of "
                                          "each size: too few for a 95% interval, 6 needed; `--burst-repeats`).")
    assert serving.load_prediction(load.prediction_gaps(levels)) == (
        "The simulation from the batch cost predicts p99 within 15% at every load for `batch` and `stream`; "
        "for `fifo` it parts at 4.0 requests/s (2.0x its capacity): predicted 2.1 s, measured 3.0 s.")
    curves = load.latency_curves(levels)
    assert len(curves) == 9 * 2 * 2 and set(curves.source) == {"measured", "predicted"}
    assert len(load.throughput_curves(levels)) == 9 * 2
    assert list(load.load_groups(levels)) == ["burst of 1", "burst of 4", "poisson 2 requests/s",
                                              "poisson 4 requests/s", "poisson 6 requests/s"]


# -- the analysis and the sentences on hand-made rows -------------------------------------------------------------

def _poisson(policy, offered, p99, rps, factor=None, predicted_p99=None, p50=None):
    return {"level_id": f"{policy}-{offered}", "policy": policy, "arrival": "poisson", "offered_rps": offered,
            "load_factor": factor, "clients": None, "p50_s": p50 if p50 is not None else p99 / 2, "p99_s": p99,
            "throughput_rps": rps, "predicted_p50_s": None, "predicted_p99_s": predicted_p99}


def _burst(policy, n, max_s, ok=None):
    return {"level_id": f"{policy}-b{n}", "policy": policy, "arrival": "burst", "offered_rps": None, "clients": n,
            "requests": n, "requests_ok": n if ok is None else ok, "max_s": max_s}


def test_capacity_names_the_most_served_within_the_objective():
    rows = [_poisson("batch", 2.0, 0.8, 2.0), _poisson("batch", 4.0, 1.2, 3.9), _poisson("batch", 6.0, 1.9, 5.1),
            _poisson("batch", 8.0, 3.5, 5.3),
            _poisson("fifo", 1.0, 1.5, 1.0), _poisson("fifo", 2.0, 1.9, 1.2), _poisson("fifo", 4.0, 9.0, 1.3),
            _poisson("stream", 2.0, 2.5, 1.9), _poisson("stream", 4.0, float("nan"), None)]
    caps = load.capacity_at(rows, 2.0)
    assert (caps["batch"].served_rps, caps["batch"].served_offered_rps, caps["batch"].first_miss_rps) == (5.1, 6.0, 8.0)
    assert (caps["fifo"].served_rps, caps["fifo"].first_miss_rps) == (1.2, 4.0)
    assert (caps["stream"].served_rps, caps["stream"].first_miss_rps, caps["stream"].levels) == (None, 2.0, 2)
    assert serving.load_capacity(caps) == ("Within a p99 of 2.0 s at that load and every lower one, `batch` served up "
                                           "to 5.1 requests/s; `fifo` 1.2 requests/s; `stream` missed it at every "
                                           "load measured.")
    # Another percentile, an objective under a second; every policy missing it.
    assert serving.load_capacity(load.capacity_at(rows, 0.35, "p50")) == (
        "Within a p50 of 0.35 s at that load and every lower one, `batch`, `fifo` and `stream` missed it at every "
        "load measured.")
    # A miss at a lower load ends the claim, whatever a higher load did: not 3.9 requests/s at 4.
    dip = [_poisson("batch", 1.0, 0.3, 1.0), _poisson("batch", 2.0, 0.395, 2.0), _poisson("batch", 4.0, 0.36, 3.9)]
    assert (load.capacity_at(dip, 0.37)["batch"].served_rps, load.capacity_at(dip, 0.37)["batch"].first_miss_rps) == (
        1.0, 2.0)
    # No Poisson level: no claim.
    assert load.capacity_at([_burst("fifo", 1, 0.5)], 2.0) == {}
    assert serving.load_capacity({}) is None
    with pytest.raises(ValueError, match="percentile must be one of p50, p90, p99, got 'p95'"):
        load.capacity_at(rows, 2.0, "p95")
    with pytest.raises(ValueError, match="objective must be > 0 seconds, got 0"):
        load.capacity_at(rows, 0)


def test_levels_measured_over_http_are_their_own_setup_one_per_server():
    url = "http://127.0.0.1:8000/v1"
    http = [{**_poisson("batch", 2.0, 0.9, 2.0), "endpoint": url}, {**_poisson("batch", 4.0, 3.0, 3.0), "endpoint": url},
            {**_poisson("fifo", 2.0, 0.5, 2.0), "endpoint": "http://127.0.0.1:8001/v1"},
            {**_burst("batch", 1, 0.5), "endpoint": url}, {**_burst("batch", 4, 0.8), "endpoint": url}]
    rows = [_poisson("batch", 2.0, 0.8, 2.0), _poisson("batch", 4.0, 1.2, 3.9), _burst("batch", 1, 0.5),
            _burst("batch", 4, 2.0)] + http
    caps = load.capacity_at(rows, 2.0)
    here, there = "batch over HTTP at 127.0.0.1:8000", "fifo over HTTP at 127.0.0.1:8001"
    assert set(caps) == {"batch", here, there}
    assert (caps["batch"].served_rps, caps[here].served_rps, caps[here].first_miss_rps) == (3.9, 2.0, 4.0)
    assert {(b.policy, b.ratio) for b in load.burst(rows)} == {("batch", 4.0), (here, 1.6)}
    assert set(load.latency_curves(rows).policy) == {"batch", here, there}
    # The one-server-against-many comparison is of levels served in process only.
    assert set(load.versus_curves(rows).setup) == {"1 server · batch"}


def test_the_burst_sentence_needs_a_burst_of_one_and_one_of_many_that_all_finished():
    rows = [_burst("fifo", 1, 0.5), _burst("fifo", 8, 3.95), _burst("batch", 1, 0.5), _burst("batch", 8, 0.7),
            _burst("stream", 1, 0.5), _burst("stream", 8, 1.0),
            _burst("mine", 8, 1.0),                                # no burst of one: left out
            _burst("other", 1, 0.5), _burst("other", 8, 0.6, ok=7)]  # one request of the eight failed: left out
    assert serving.load_burst(load.burst(rows)) == ("**8 requests sent at once** finished in 1.4x the time of one "
                                                    "under `batch`, 2.0x under `stream`, 7.9x under `fifo` (medians "
                                                    "of 1 bursts of each size: too few for a 95% interval, 6 needed; "
                                                    "`--burst-repeats`).")
    assert load.burst([_burst("fifo", 1, 0.5)]) == [] and serving.load_burst([]) is None
    assert load.burst(pd.DataFrame([_burst("fifo", 1, 0.5), _burst("fifo", 2, 1.0)]))[0].ratio == 2.0


def test_the_prediction_sentence_says_where_simulation_and_measurement_part():
    agree = [_poisson("batch", 2.0, 1.0, 2, factor=0.5, predicted_p99=1.1),
             _poisson("batch", 4.0, 2.0, 4, factor=1.0, predicted_p99=1.8)]
    fifo = [_poisson("fifo", 2.0, 1.0, 1, factor=0.5, predicted_p99=1.15),   # +15%: not beyond
            _poisson("fifo", 4.8, 4.5, 1, factor=1.2, predicted_p99=3.1),    # -31%: parts
            _poisson("fifo", 6.0, 9.0, 1, factor=1.5, predicted_p99=3.5)]
    gaps = load.prediction_gaps(agree + fifo)
    assert [round(g.p99_gap, 6) for g in gaps] == [0.1, -0.1, 0.15, round(3.1 / 4.5 - 1, 6), round(3.5 / 9 - 1, 6)]
    assert serving.load_prediction(gaps) == ("The simulation from the batch cost predicts p99 within 15% at every load "
                                             "for `batch`; for `fifo` it parts at 4.8 requests/s: predicted 3.1 s, "
                                             "measured 4.5 s.")
    assert serving.load_prediction(load.prediction_gaps(fifo)) == (
        "The simulation from the batch cost and the measured p99 part by more than 15%: `fifo` at 4.8 requests/s "
        "(predicted 3.1 s, measured 4.5 s).")
    # A wider tolerance: they agree everywhere.
    assert serving.load_prediction(gaps, tolerance=0.7) == (
        "The simulation from the batch cost predicts p99 within 70% at every load for `batch` and `fifo`.")
    # Without a prediction (or a measurement) there is nothing to say.
    assert serving.load_prediction(load.prediction_gaps([_poisson("fifo", 2.0, 1.0, 1)])) is None
    assert load.prediction_gaps([_poisson("fifo", 2.0, 0.0, 1, predicted_p99=1.0)])[0].p99_gap is None
    assert not load.parts_ways(None) and not load.parts_ways(0.15) and load.parts_ways(-0.1501)


def test_the_default_objective_is_twice_the_median_p50_at_the_lowest_load():
    rows = [_poisson("batch", 2.0, 1, 2, p50=0.61), _poisson("fifo", 2.0, 1, 2, p50=0.9),
            _poisson("stream", 2.0, 1, 2, p50=1.7), _poisson("fifo", 6.0, 9, 2, p50=5.0)]
    assert load.default_objective(rows) == 1.8
    assert load.default_objective([_burst("fifo", 1, 0.5) | {"p50_s": 0.5}]) == 1.0
    assert load.default_objective([_burst("fifo", 1, 0.5)]) is None


# -- the page -------------------------------------------------------------------------------------------------

def _page(monkeypatch, db_path, tmp_path) -> AppTest:
    monkeypatch.setenv("WAREHOUSE_DB", db_path)
    monkeypatch.setenv("OUTPUT_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=120).run()
    at.switch_page("pages/load.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _markdown(at) -> list[str]:
    return [m.value for m in at.markdown]


def test_the_load_page_shows_the_burst_capacity_and_prediction(load_run, monkeypatch, tmp_path):
    db_path, _ = load_run
    at = _page(monkeypatch, db_path, tmp_path)
    assert at.title[0].value == "Many requests at once"
    wh = Warehouse(db_path)
    levels = load.with_intervals(wh.load_levels(SWEEP), wh.load_latencies(SWEEP))
    shown = _markdown(at)
    assert shown[0] == serving.load_burst(load.burst(levels))
    assert serving.load_prediction(load.prediction_gaps(levels)) in shown
    assert at.number_input[0].value == 2.0
    assert serving.load_capacity(load.capacity_at(levels, 2.0)) in shown
    assert {"Latency against offered load", "Throughput against p99 latency",
            "Goodput against offered load"} <= {s.value for s in at.subheader}
    assert len(at.get("vega_lite_chart")) == 4
    # A looser objective: stream serves within it too.
    at.number_input[0].set_value(10.0).run()
    assert not at.exception
    assert serving.load_capacity(load.capacity_at(levels, 10.0)) in _markdown(at)
    assert "missed it" not in serving.load_capacity(load.capacity_at(levels, 10.0))


def test_a_sweep_without_a_load_run_says_how_to_make_one(tmp_path, monkeypatch):
    spool = tmp_path / "spool"
    SpoolWriter(spool).write("run-x", "run", [record(
        "run", run_id="run-x", sweep_id="sweep-x", started_at="2026-01-01T00:00:00+00:00", device="cpu",
        model_id="m", task="txt2img", mode="static", height=64, width=64, steps=2)])
    ingest_pending(CollectorConfig(spool=str(spool), db=str(tmp_path / "w.duckdb")))
    at = _page(monkeypatch, str(tmp_path / "w.duckdb"), tmp_path)
    assert [i.value for i in at.info] == ["No load run in this sweep: run `python -m generator load`."]
    assert not at.markdown


def test_the_load_page_on_an_empty_warehouse_shows_the_empty_state(tmp_path, monkeypatch):
    with db.writer(tmp_path / "empty.duckdb"):
        pass  # schema, papers, no runs
    at = _page(monkeypatch, str(tmp_path / "empty.duckdb"), tmp_path)
    assert any("No runs yet" in i.value for i in at.info)


def test_a_load_run_on_its_own_is_a_sweep_the_load_page_shows(tmp_path, monkeypatch):
    """`python -m generator load` alone writes no sweep runs: the sweep picker still lists it, the Load page
    shows it, and the other pages say where its figures are."""
    spool = tmp_path / "spool"
    write_load_run(spool)
    for f in (spool / "run-load").glob("*.jsonl"):  # only the levels: no run record of the sweep
        f.unlink()
    db_path = str(tmp_path / "w.duckdb")
    ingest_pending(CollectorConfig(spool=str(spool), db=db_path))
    sweeps = Warehouse(db_path).sweeps()
    assert list(zip(sweeps.sweep_id, sweeps.runs, sweeps.tasks)) == [(SWEEP, 0, "load")]
    at = _page(monkeypatch, db_path, tmp_path)
    assert _markdown(at)[0] == serving.load_burst(load.burst(Warehouse(db_path).load_levels(SWEEP)))
    at.switch_page("pages/overview.py").run()
    assert not at.exception and [i.value for i in at.info] == [states.LOAD_ONLY]


COST = dict(job_fixed_s=0.3, job_marginal_s=0.2, step_fixed_s=0.02, step_marginal_s=0.01, finish_fixed_s=0.05,
            finish_marginal_s=0.02, max_batch=4, steps=10)


def test_each_policy_is_measured_against_its_own_capacity():
    fifo, batch, stream = ({**_poisson(p, 4.0, 1.0, 1.0), **COST} for p in ("fifo", "batch", "stream"))
    assert load.own_capacity(fifo) == pytest.approx(1 / 0.5)                  # one job of one at a time
    assert load.own_capacity(batch) == pytest.approx(4 / (0.3 + 0.2 * 4))    # jobs of 4
    # stream, 4 rows of 10 steps: 0.4 requests leave a step, each step 0.06 s plus 0.4 of one decode (0.07 s)
    assert load.own_capacity(stream) == pytest.approx(0.4 / (0.06 + 0.4 * 0.07))
    assert load.own_factor(fifo) == pytest.approx(2.0)
    assert load.own_capacity({**batch, "servers": 2}) == pytest.approx(2 * 4 / 1.1)
    http = {**batch, "endpoint": "http://127.0.0.1:8000/v1", "capacity_rps": 5.0}
    assert load.own_capacity(http) == 5.0 and load.own_factor(http) == pytest.approx(0.8)
    assert load.own_capacity(_poisson("fifo", 4.0, 1.0, 1.0)) is None  # no cost recorded: nothing said
    gap = load.prediction_gaps([{**fifo, "predicted_p99_s": 0.5}])
    assert serving.load_prediction(gap) == ("The simulation from the batch cost and the measured p99 part by more "
                                            "than 15%: `fifo` at 4.0 requests/s (2.0x its capacity) (predicted "
                                            "0.5 s, measured 1.0 s).")


def test_a_capacity_resting_on_an_interval_across_the_objective_or_on_too_few_requests_is_not_sure():
    def level(offered, p99, low, high):
        return {**_poisson("batch", offered, p99, offered), "p99_low": low, "p99_high": high}
    sure = [level(1.0, 0.2, 0.18, 0.25), level(2.0, 0.3, 0.27, 0.33), level(4.0, 0.6, 0.5, 0.7)]
    cap = load.capacity_at(sure, 0.4)["batch"]
    assert (cap.served_rps, cap.first_miss_rps, cap.unsure_rps) == (2.0, 4.0, None)
    crossing = [sure[0], level(2.0, 0.3, 0.27, 0.45), sure[2]]
    cap = load.capacity_at(crossing, 0.4)["batch"]
    assert (cap.served_rps, cap.unsure_rps, cap.too_few) == (2.0, 2.0, False)
    assert serving.load_capacity({"batch": cap}) == (
        "Within a p99 of 0.4 s at that load and every lower one, `batch` served up to 2.0 requests/s (not sure: at "
        "2.0 requests/s the p99's 95% interval reaches across 0.4 s).")
    short = [level(1.0, 0.2, float("nan"), float("nan")), sure[1], sure[2]]
    cap = load.capacity_at(short, 0.4)["batch"]
    assert (cap.unsure_rps, cap.too_few, cap.needed) == (1.0, True, 368)
    assert "(not sure: at 1.0 requests/s too few requests for a 95% interval of the p99; 368 needed)" in (
        serving.load_capacity({"batch": cap}))


def test_the_ingested_run_gets_percentile_intervals_from_its_own_requests(load_run):
    db_path, records = load_run
    wh = Warehouse(db_path)
    levels = load.with_intervals(wh.load_levels(SWEEP), wh.load_latencies(SWEEP)).set_index("level_id")
    latencies = [r["latency_s"] for r in records["level-batch-p1"] if r["kind"] == "request"]
    p50 = stats.quantile_interval(latencies, 0.5)
    assert (levels.loc["level-batch-p1", "p50_low"], levels.loc["level-batch-p1", "p50_high"]) == (p50.low, p50.high)
    assert levels.loc["level-batch-p1", "p50_low"] < levels.loc["level-batch-p1", "p50_s"] < p50.high
    assert levels.p99_low.isna().all() and set(levels.p99_needed) == {368}  # 20 requests a level at most
    t = load.tail(levels.reset_index())
    assert (t.levels, t.too_few, t.most, t.needed) == (15, 15, 20, 368)
    assert serving.load_tail(t) == ("A p99 needs 368 requests for a 95% interval; every level had fewer (at most "
                                    "20), so their p99 is close to their slowest request and the table leaves its "
                                    "interval empty. More requests per level: `--min-requests`.")


def test_repeated_bursts_give_the_ratio_an_interval_and_name_the_batchers_delay():
    rng = np.random.default_rng(5)
    ones = [{**_burst("batch", 1, 0.12 + 0.01 * rng.random()), "mean_wait_s": 0.05, "max_delay_s": 0.05}
            for _ in range(6)]
    fours = [{**_burst("batch", 4, 0.2 + 0.01 * rng.random()), "mean_wait_s": 0.0, "max_delay_s": 0.05}
             for _ in range(6)]
    b = load.burst(ones + fours)[0]
    assert b.ratio == pytest.approx(statistics.median(r["max_s"] for r in fours)
                                    / statistics.median(r["max_s"] for r in ones))
    interval = stats.ratio_interval([r["max_s"] for r in fours], [r["max_s"] for r in ones])
    assert (b.ratio_low, b.ratio_high, b.bursts) == (interval.low, interval.high, 6) and not b.too_few
    said = serving.load_burst([b])
    assert said.startswith(f"**4 requests sent at once** finished in {b.ratio:.1f}x [{b.ratio_low:.1f}x–"
                           f"{b.ratio_high:.1f}x] the time of one under `batch`.")
    assert f"waited the batcher's whole 0.05 s delay for a batch to fill, {0.05 / b.one_s:.0%} of its" in said
    # Five bursts of each: no interval, and the sentence says so; a delay a tenth of the time is not named.
    few = load.burst(ones[:5] + fours[:5])[0]
    assert few.too_few and "too few for a 95% interval, 6 needed" in serving.load_burst([few])
    short = [{**r, "max_delay_s": 0.01, "mean_wait_s": 0.01} for r in ones]
    assert load.burst(short + fours)[0].waited_s is None


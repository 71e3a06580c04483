"""Replica sweeps, downstream of the spool: the small sweep's real spool files copied into the runs of a replica
sweep (levels N = 1 and N = 2, new run and job ids, replica fields, threads, hosts, chosen job times), written
through spool.SpoolWriter and ingested by the real collector into a real DuckDB file. The view
replica_throughput against numpy on the job rows written, the two ways (warehouse/replicas.py), their sentences
(warehouse/explain/workers.py), the Throughput page's section and host facet, and the Overview's side by side."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import stats
from collector.ingest import CollectorConfig, ingest_pending
from spool import SpoolWriter
from warehouse import queries, replicas
from warehouse.queries import Warehouse
from warehouse.explain import workers as said

from .conftest import ROOT, sql_rows as _sql

SWEEP = "sweep-replicas"
CPUS = 2  # logical CPUs of each host: one worker has 2 threads, two workers 1 each
SETTING = "txt2img 64x64 static"

# Job times (s) of the measured jobs of each (level N, worker, batch size), in repeat order (the small sweep has
# two measured jobs per batch size). Images/s of a worker: B / the median.
# One worker: 9.09 images/s at batch 1, 14.3 at batch 2.
ALONE = {(1, 0, 1): (0.10, 0.12), (1, 0, 2): (0.13, 0.15)}
# Two workers splitting one host: 4.76 + 4.35 = 9.11 images/s at batch 1, below one worker's batch of 2.
BATCH_WINS = {**ALONE, (2, 0, 1): (0.20, 0.22), (2, 1, 1): (0.21, 0.25),
              (2, 0, 2): (0.26, 0.30), (2, 1, 2): (0.30, 0.32)}
# Two workers on two hosts: 9.09 + 9.52 = 18.6 images/s at batch 1, above one worker's batch of 2.
WORKERS_WIN = {**ALONE, (2, 0, 1): (0.10, 0.12), (2, 1, 1): (0.10, 0.11),
               (2, 0, 2): (0.13, 0.15), (2, 1, 2): (0.14, 0.14)}
# Two workers at 9.09 and 6.25 images/s: 15.3 in all, 7% above the batch of 2, but 2 x the slower (12.5) is
# below it: the spread between the workers covers the difference.
SPREAD_COVERS = {**ALONE, (2, 0, 1): (0.10, 0.12), (2, 1, 1): (0.15, 0.17),
                 (2, 0, 2): (0.26, 0.30), (2, 1, 2): (0.30, 0.32)}

ONE_HOST = {1: [{"host": "hostA"}], 2: [{"host": "hostA"}, {"host": "hostA"}]}
TWO_HOSTS = {1: [{"host": "hostA"}], 2: [{"host": "hostA"}, {"host": "hostB"}]}
GPU = {"device": "cuda", "device_name": "NVIDIA H200"}
ONE_GPU = {1: [{"host": "gpuhost", "gpu_uuid": "GPU-aaaaaaaa-0", **GPU}],
           2: [{"host": "gpuhost", "gpu_uuid": "GPU-aaaaaaaa-0", **GPU}] * 2}
TWO_GPUS = {1: [{"host": "gpuhost", "gpu_uuid": "GPU-aaaaaaaa-0", **GPU}],
            2: [{"host": "gpuhost", "gpu_uuid": "GPU-aaaaaaaa-0", **GPU},
                {"host": "gpuhost", "gpu_uuid": "GPU-bbbbbbbb-1", **GPU}]}


def _read(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def write_replica_sweep(source: list[Path], spool: Path, places: dict, walls: dict, failed=()) -> list[dict]:
    """Each worker of each level gets a copy of every file of the small sweep: its run record with a new run id,
    the replica fields, the worker's host (and device), its share of the CPUs as threads; its jobs with new ids
    and the chosen times (measured jobs only); its phases, steps and samples re-keyed. Images and image checks
    are left out. Jobs of (N, worker, B) in `failed` are written as out of memory. Returns every record written."""
    files = {path: _read(path) for path in source}
    jobs = [r for records in files.values() for r in records if r["kind"] == "job" and not r["warmup"]]
    # The i-th measured job of a batch size (in repeat order) takes the i-th time of walls[(N, worker, B)].
    rank = {}
    for b in {j["batch_size"] for j in jobs}:
        mine = sorted((j for j in jobs if j["batch_size"] == b), key=lambda j: j["repeat"])
        rank.update({j["job_id"]: i for i, j in enumerate(mine)})
    writer, written = SpoolWriter(spool), []
    for n, workers in places.items():
        for i, place in enumerate(workers):
            run_id = f"run-rep-n{n}-w{i}"
            fields = dict(sweep_id=SWEEP, run_id=run_id, replicas=n, replica_group=f"group-n{n}", replica_index=i,
                          threads=CPUS // n, cpu_count=CPUS, worker_id=f"actor-n{n}-w{i}", ray_node_id="node-0",
                          **{"gpu_uuid": None, **place})
            for path, records in files.items():
                out = []
                for r in records:
                    if r["kind"] in ("image", "image_check"):
                        continue
                    r = dict(r, **fields) if r["kind"] == "run" else dict(r)
                    if r["kind"] != "run" and "run_id" in r:
                        r["run_id"] = run_id
                    if "job_id" in r:
                        source_id, r["job_id"] = r["job_id"], f"{r['job_id']}-n{n}w{i}"
                        if r["kind"] == "job" and not r["warmup"]:
                            b = r["batch_size"]
                            r["wall_s"] = walls[(n, i, b)][rank[source_id]]
                            if (n, i, b) in failed:
                                r.update(status="oom", error="out of memory", images=0)
                    out.append(r)
                writer.write(run_id, path.stem, out)
                written += out
    return written


def _ingest(tmp_path: Path, small_sweep, places: dict, walls: dict, failed=()) -> tuple[str, list[dict]]:
    _, files = small_sweep
    spool = tmp_path / "replica-spool"
    written = write_replica_sweep(files, spool, places, walls, failed)
    report = ingest_pending(CollectorConfig(spool=str(spool), db=str(tmp_path / "w.duckdb")))
    assert not report.quarantined
    return str(tmp_path / "w.duckdb"), written


@pytest.fixture
def one_host(tmp_path, small_sweep):
    return _ingest(tmp_path / "one_host", small_sweep, ONE_HOST, BATCH_WINS)


@pytest.fixture
def two_hosts(tmp_path, small_sweep):
    return _ingest(tmp_path / "two_hosts", small_sweep, TWO_HOSTS, WORKERS_WIN)


def _measured(written: list[dict]) -> pd.DataFrame:
    jobs = pd.DataFrame([r for r in written if r["kind"] == "job"]).drop_duplicates("job_id")
    return jobs[~jobs.warmup & ~jobs.profiled.fillna(False).astype(bool) & (jobs.status == "ok")]


def _rates(written: list[dict]) -> pd.DataFrame:
    """Each worker's images/s per batch size, from the job records written: B / median(measured wall_s), and the
    95% interval of that median as images/s (ips_low, ips_high)."""
    runs = {r["run_id"]: r for r in written if r["kind"] == "run"}
    per = _measured(written).groupby(["run_id", "batch_size"]).wall_s.agg(
        wall_s="median", interval=lambda t: stats.median_interval(t.to_numpy())).reset_index()
    per["images_per_s"] = per.batch_size / per.wall_s
    per["ips_low"] = [b / i.high for b, i in zip(per.batch_size, per.interval)]   # NaN: too few jobs
    per["ips_high"] = [b / i.low for b, i in zip(per.batch_size, per.interval)]
    for field in ("replica_group", "replicas", "host", "threads", "cpu_count", "gpu_uuid"):
        per[field] = [runs[r].get(field) for r in per.run_id]
    return per


# -- the view against numpy ------------------------------------------------------------------------------------

@pytest.mark.parametrize("places,walls", [(ONE_HOST, BATCH_WINS), (TWO_HOSTS, WORKERS_WIN), (TWO_GPUS, BATCH_WINS)],
                         ids=["one host", "two hosts", "two gpus"])
def test_the_view_sums_each_workers_rate_as_numpy_does(tmp_path, small_sweep, places, walls):
    db_path, written = _ingest(tmp_path, small_sweep, places, walls)
    view = Warehouse(db_path).replica_throughput(SWEEP).set_index(["replica_group", "batch_size"])
    expected = _rates(written)
    assert len(view) == expected.groupby(["replica_group", "batch_size"]).ngroups == 4
    for (group, b), g in expected.groupby(["replica_group", "batch_size"]):
        got = view.loc[(group, b)]
        assert got.aggregate_images_per_s == pytest.approx(g.images_per_s.sum(), rel=1e-12)
        assert got.min_worker_images_per_s == pytest.approx(g.images_per_s.min(), rel=1e-12)
        assert got.max_worker_images_per_s == pytest.approx(g.images_per_s.max(), rel=1e-12)
        assert (got.replicas, got.workers, got.threads, got.cpu_count) == (
            g.replicas.iloc[0], len(g), g.threads.min(), CPUS)
        assert got.hosts == g.host.nunique()
        assert got.devices == len({u if u else h for u, h in zip(g.gpu_uuid, g.host)})
        assert (got.task, got["mode"], got.height, got.width, got.cfg) == ("txt2img", "static", 64, 64, False)
        assert got.jobs == 2 * len(g)
    # The known figures: one worker's batch of 2 at 2 / 0.14 images/s.
    assert view.loc[("group-n1", 2)].aggregate_images_per_s == pytest.approx(2 / 0.14)
    if walls is WORKERS_WIN:
        assert view.loc[("group-n2", 1)].aggregate_images_per_s == pytest.approx(1 / 0.11 + 1 / 0.105)


def test_a_worker_without_measured_jobs_is_not_counted_and_its_group_is_no_point(tmp_path, small_sweep):
    db_path, _written = _ingest(tmp_path, small_sweep, ONE_HOST, BATCH_WINS, failed={(2, 1, 2)})
    rows = Warehouse(db_path).replica_throughput(SWEEP)
    short = rows[(rows.replicas == 2) & (rows.batch_size == 2)].iloc[0]
    assert (short.workers, short.aggregate_images_per_s) == (1, pytest.approx(2 / 0.28))
    points = replicas.ways(rows)
    assert not ((points.replicas == 2) & (points.batch_size == 2)).any()  # one of two workers: not 2 workers' rate
    assert ((points.replicas == 2) & (points.batch_size == 1)).any()


def test_a_sweep_without_replica_runs_has_no_rows_and_plain_labels(warehouse):
    assert Warehouse(warehouse).replica_throughput(_sql(warehouse, "SELECT any_value(sweep_id) FROM runs")[0][0]).empty
    assert not Warehouse(warehouse).runs().label.str.contains("worker").any()


def test_replica_runs_are_labelled_by_worker(one_host):
    db_path, _ = one_host
    labels = dict(zip(*zip(*_sql(db_path, f"SELECT r.run_id, {queries.RUN_LABEL} FROM runs r"))))
    assert "· worker 2 of 2 (" in labels["run-rep-n2-w1"] and "· worker 1 of 1 (" in labels["run-rep-n1-w0"]


# -- the two ways ----------------------------------------------------------------------------------------------

def test_the_two_ways_and_their_product_from_the_view(one_host):
    db_path, written = one_host
    points = replicas.ways(Warehouse(db_path).replica_throughput(SWEEP))
    rate = _rates(written).groupby(["replicas", "batch_size"]).images_per_s
    total, slowest, fastest = rate.sum(), rate.min(), rate.max()
    base = total[(1, 1)]
    expect = {("bigger batch", 1, 1), ("bigger batch", 1, 2), ("more workers", 1, 1), ("more workers", 2, 1),
              ("both", 2, 2)}
    assert set(zip(points.way, points.replicas, points.batch_size)) == expect
    for p in points.itertuples():
        n, b = p.replicas, p.batch_size
        assert p.k == n * b and p.setting == SETTING
        assert p.images_per_s == pytest.approx(total[(n, b)])
        assert p.speedup == pytest.approx(total[(n, b)] / base)
        assert p.efficiency == pytest.approx(total[(n, b)] / base / (n * b))
        assert (p.low, p.high) == (pytest.approx(n * slowest[(n, b)]), pytest.approx(n * fastest[(n, b)]))
    [c] = replicas.compare(points)
    assert (c.k, c.batch.replicas, c.batch.batch_size, c.workers.replicas, c.workers.batch_size) == (2, 1, 2, 2, 1)
    assert c.winner == "bigger batch" and c.ratio == pytest.approx(total[(1, 2)] / total[(2, 1)])
    # Given the measured jobs, each range widens to the sum of the workers' 95% intervals.
    widened = replicas.ways(Warehouse(db_path).replica_throughput(SWEEP), Warehouse(db_path).replica_jobs(SWEEP))
    for p in widened.itertuples():
        assert (p.low, p.high) == tuple(pytest.approx(x) for x in _range(written, p.replicas, p.batch_size))
    assert (widened.low <= points.low).all() and (widened.high >= points.high).all()


def _rows(**rates) -> pd.DataFrame:
    """replica_throughput rows of one setting by hand: n<N>b<B>=(slowest worker, fastest worker) images/s; the
    aggregate is the slowest plus N - 1 times the fastest."""
    out = []
    for key, (lo, hi) in rates.items():
        n, b = (int(x) for x in key[1:].split("b"))
        out.append({"sweep_id": "s", "replica_group": f"g{n}", "batch_size": b, "replicas": n, "workers": n,
                    "model_id": "m", "task": "txt2img", "mode": "static", "height": 64, "width": 64, "cfg": False,
                    "vae_slicing": False, "device": "cpu", "device_name": "cpu", "threads": 4 // n, "hosts": 1,
                    "devices": 1, "cpu_count": 4, "jobs": 2 * n, "min_worker_images_per_s": lo,
                    "max_worker_images_per_s": hi, "aggregate_images_per_s": lo + hi * (n - 1)})
    return pd.DataFrame(out)


def test_a_difference_within_the_jobs_intervals_is_no_win():
    rows = _rows(n1b1=(6.0, 6.0), n1b2=(10.0, 10.0), n2b1=(4.5, 4.5))

    def jobs(batch_of_two: list[float]) -> pd.DataFrame:
        six = 6  # stats.needed(): the fewest jobs with a 95% interval of a median
        return pd.DataFrame([{"replica_group": "g1", "run_id": "r10", "batch_size": 1, "wall_s": 1 / 6.0}] * six
                            + [{"replica_group": "g1", "run_id": "r10", "batch_size": 2, "wall_s": t}
                               for t in batch_of_two]
                            + [{"replica_group": "g2", "run_id": r, "batch_size": 1, "wall_s": 1 / 4.5}
                               for r in ("r20", "r21") for _ in range(six)])

    # Equal times: the intervals are points, and 10 against 9 images/s (11%) is a win.
    [c] = replicas.compare(replicas.ways(rows, jobs([2 / 10.0] * 6)))
    assert c.winner == "bigger batch" and (c.batch.low, c.batch.high) == (pytest.approx(10), pytest.approx(10))
    # The batch of 2 also took 0.25 s twice (8 images/s): of 7 jobs the interval is [min, max], it reaches below
    # 9, and no way is ahead.
    [c] = replicas.compare(replicas.ways(rows, jobs([2 / 10.0] * 5 + [0.25] * 2)))
    assert c.batch.low == pytest.approx(8) and c.winner is None
    # With 3 jobs there is no 95% interval (6 needed): the range is the workers' spread alone, not [min, max].
    [c] = replicas.compare(replicas.ways(rows, jobs([2 / 10.0] * 2 + [0.25])))
    assert (c.batch.low, c.batch.high) == (pytest.approx(10), pytest.approx(10))


def test_a_difference_within_the_tie_share_is_no_win():
    # Identical workers (no spread): 10.4 against 10 images/s is 4% (a tie), 10.6 is 6% (a win).
    for batch_rate, winner in ((10.4, None), (10.6, "bigger batch"), (9.6, None), (9.4, "more workers")):
        [c] = replicas.compare(replicas.ways(_rows(n1b1=(6.0, 6.0), n1b2=(batch_rate, batch_rate),
                                                   n2b1=(5.0, 5.0))))
        assert c.winner == winner, batch_rate
    # No one worker at batch 1: no speed-up, no comparison.
    assert replicas.compare(replicas.ways(_rows(n1b2=(5.0, 5.0), n2b1=(3.0, 3.0)))) == []
    # Both ways at 2 and 4 images at once: compared at 4.
    [c] = replicas.compare(replicas.ways(_rows(n1b1=(5.0, 5.0), n1b2=(8, 8), n1b4=(9, 9), n2b1=(4, 4),
                                               n4b1=(3, 3))))
    assert c.k == 4 and c.workers.images_per_s == pytest.approx(12) and c.winner == "more workers"


def test_a_level_run_twice_is_one_point_the_median_of_its_groups():
    # --replicas 1,2,1,2: each level twice (groups g1/h1 and g2/h2); the second pair measured faster.
    first = _rows(n1b1=(6.0, 6.0), n1b2=(10.0, 10.0), n2b1=(4.0, 4.0))
    second = _rows(n1b1=(7.0, 7.0), n1b2=(11.0, 11.0), n2b1=(5.0, 5.0)).assign(
        replica_group=lambda d: d.replica_group.str.replace("g", "h"))
    points = replicas.ways(pd.concat([first, second]))
    assert sorted(set(points.groups)) == [2]
    one = points[(points.way == "bigger batch") & (points.k == 2)].iloc[0]
    assert (one.images_per_s, one.low, one.high) == (pytest.approx(10.5), pytest.approx(10.0), pytest.approx(11.0))
    more = points[(points.way == "more workers") & (points.k == 2)].iloc[0]
    assert (more.images_per_s, more.low, more.high) == (pytest.approx(9.0), pytest.approx(8.0), pytest.approx(10.0))
    assert more.speedup == pytest.approx(9.0 / 6.5)


@pytest.mark.parametrize("two_workers, expected", [((8.0, 8.0), True), ((6.0, 6.0), False), ((5.0, 7.0), False)])
def test_more_than_k_fold_on_shared_cores_is_said_only_beyond_both_ranges(two_workers, expected):
    # One worker at batch 1: 6 images/s (range 6 to 6). Two workers on the same host: 16, 12 or 12 images/s;
    # with a slow worker (5 and 7) the range reaches 2 x 5 = 10 < 12 = 2 x 6: not beyond it.
    rows = _rows(n1b1=(6.0, 6.0), n1b2=(8.0, 8.0), n2b1=two_workers)
    [c] = replicas.compare(replicas.ways(rows))
    levels = replicas.levels(rows)
    shared = next(lv for lv in levels if lv.replicas == 2)
    text = said.more_than_k_fold(c, shared)
    if expected:
        assert text == ("On the same cores, 2 workers gave 2.67x the images/s of one worker at batch 1 (16 against "
                        "6): more than 2-fold, so one worker alone left much of that hardware's time unused.")
    else:
        assert text is None
    # On two hosts (not shared hardware) nothing is said, however fast.
    own = replicas.levels(rows.assign(hosts=2))
    assert said.more_than_k_fold(c, next(lv for lv in own if lv.replicas == 2)) is None


# -- the sentences ---------------------------------------------------------------------------------------------

def _comparison(db_path: str) -> replicas.Comparison:
    [c] = replicas.compare(replicas.ways(Warehouse(db_path).replica_throughput(SWEEP),
                                         Warehouse(db_path).replica_jobs(SWEEP)))
    return c


def _range(written, n, b) -> tuple[float, float]:
    """N x the slowest and the fastest worker, widened to the sum of the workers' 95% intervals where every
    worker has one (not with too few jobs)."""
    rate = _rates(written)
    rate = rate[(rate.replicas == n) & (rate.batch_size == b)]
    spread = (n * rate.images_per_s.min(), n * rate.images_per_s.max())
    if rate.ips_low.isna().any():
        return spread
    return min(spread[0], rate.ips_low.sum()), max(spread[1], rate.ips_high.sum())


def _figures(written, n, b):
    rate = _rates(written)
    rate = rate[(rate.replicas == n) & (rate.batch_size == b)].images_per_s
    base = _rates(written)
    base = base[(base.replicas == 1) & (base.batch_size == 1)].images_per_s.sum()
    return (rate.sum(), *_range(written, n, b), rate.sum() / base / (n * b))


@pytest.mark.parametrize("places,walls,winner", [(ONE_HOST, BATCH_WINS, "bigger batch"),
                                                  (TWO_HOSTS, WORKERS_WIN, "more workers"),
                                                  (ONE_HOST, SPREAD_COVERS, None)],
                         ids=["batch wins", "workers win", "spread covers"])
def test_the_two_ways_sentence_says_what_the_numbers_do(tmp_path, small_sweep, places, walls, winner):
    db_path, written = _ingest(tmp_path, small_sweep, places, walls)
    batch, batch_low, batch_high, batch_eff = _figures(written, 1, 2)
    more, low, high, more_eff = _figures(written, 2, 1)
    text = said.two_ways(_comparison(db_path))

    def span(lo, hi):  # two jobs a worker: too few for a 95% interval, so one worker's range is a point
        return "" if lo == hi else f" [{lo:.3g}–{hi:.3g}]"

    assert batch_low == batch_high == batch  # one worker, no interval: no range
    assert text.startswith(f"**{SETTING}**, 2 images at once: a batch of 2 on one worker gave {batch:.3g} images/s"
                           f"{span(batch_low, batch_high)} (efficiency {batch_eff:.2f}); 2 workers at batch 1 "
                           f"gave {more:.3g} images/s{span(low, high)} (efficiency {more_eff:.2f}).")
    # Which way is ahead, by numpy: by more than 5%, and its range wholly above the other's.
    batch_ahead = batch > 1.05 * more and batch_low > high
    more_ahead = more > 1.05 * batch and low > batch_high
    assert (batch_ahead, more_ahead) == (winner == "bigger batch", winner == "more workers")
    assert ("The bigger batch gave" in text) == batch_ahead
    assert ("More workers gave" in text) == more_ahead
    assert ("neither way is ahead" in text) == (not batch_ahead and not more_ahead)
    if batch_ahead:
        assert f"The bigger batch gave {batch / more:.2f}x the images/s of more workers." in text
    if more_ahead:
        assert f"More workers gave {more / batch:.2f}x the images/s of the bigger batch." in text
    if walls is SPREAD_COVERS:  # ahead by the share, but 2 x the slower worker lies below the batch of 2
        rate = _rates(written)
        slower = rate[(rate.replicas == 2) & (rate.batch_size == 1)].images_per_s.min()
        assert more > 1.05 * batch and 2 * slower < batch


@pytest.mark.parametrize("places,shared", [(ONE_HOST, True), (TWO_HOSTS, False), (ONE_GPU, True),
                                           (TWO_GPUS, False)], ids=["one host", "two hosts", "one gpu", "two gpus"])
def test_shared_hardware_is_said_only_when_workers_outnumber_it(tmp_path, small_sweep, places, shared):
    db_path, written = _ingest(tmp_path, small_sweep, places, BATCH_WINS)
    rows = Warehouse(db_path).replica_throughput(SWEEP)
    levels = replicas.levels(rows)
    texts = [said.shared_hardware(lv, replicas.alone(levels, lv)) for lv in levels]
    assert texts[0] is None  # one worker never shares
    runs = [r for r in written if r["kind"] == "run" and r["replicas"] == 2]
    hosts = len({r["host"] for r in runs})
    gpus = len({r["gpu_uuid"] or r["host"] for r in runs})
    on_cpu = runs[0]["device"] == "cpu"
    assert shared == ((hosts if on_cpu else gpus) < 2)
    if not shared:
        assert texts[1] is None
    elif on_cpu:
        assert texts[1] == ("**2 workers** split one host's 2 logical CPUs (1 torch thread each; one worker alone "
                            "had 2): more workers was not more hardware here, only the same cores shared out.")
    else:
        assert texts[1] == ("**2 workers** shared one GPU: more workers was not more GPUs here, only the same GPU "
                            "time shared out.")
    caption = said.hardware_caption(levels)
    if on_cpu:
        assert caption == (f"Behind the workers: 1 worker on 1 host (2 logical CPUs), 2 torch threads; "
                           f"2 workers on {hosts} host{'s' if hosts > 1 else ''} (2 logical CPUs), "
                           "1 torch thread each.")
    else:
        assert caption == (f"Behind the workers: 1 worker on 1 GPU in 1 host; 2 workers on {gpus} "
                           f"GPU{'s' if gpus > 1 else ''} in 1 host.")


def test_several_hosts_shared_by_more_workers_are_named():
    level = replicas.Level(replicas=4, device="cpu", hosts=2, devices=2, threads=4, cpu_count=8)
    assert said.shared_hardware(level) == ("**4 workers** split the logical CPUs of 2 hosts (up to 8 each) (4 torch "
                                           "threads each): more workers was not more hardware here, only the same "
                                           "cores shared out.")
    assert said.shared_hardware(replicas.Level(4, "cpu", 4, 4, 8, 8)) is None


# -- the pages -------------------------------------------------------------------------------------------------

def _app(monkeypatch, db_path, page):
    monkeypatch.setenv("WAREHOUSE_DB", db_path)
    monkeypatch.setenv("OUTPUT_DIR", str(Path(db_path).parent))
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=120).run()
    at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _chart(at, title: str) -> tuple[dict, pd.DataFrame]:
    import pyarrow as pa

    index = [h.value for h in at.subheader].index(title)
    chart = at.get("vega_lite_chart")[index]
    return (json.loads(chart.proto.spec),
            pd.concat([pa.ipc.open_stream(d.data.data).read_pandas() for d in chart.proto.datasets]))


@pytest.mark.slow
def test_throughput_page_shows_bigger_batch_or_more_workers(one_host, monkeypatch):
    db_path, _written = one_host
    at = _app(monkeypatch, db_path, "throughput")
    spec, drawn = _chart(at, "Bigger batch or more workers")
    layers = spec["layer"]
    assert {lay["encoding"]["x"]["field"] for lay in layers} == {"k"}
    assert layers[0]["encoding"]["x"]["scale"] == {"type": "log", "base": 2}
    assert {lay["encoding"]["y"]["field"] for lay in layers} == {"images_per_s"}
    assert any(t["field"] == "efficiency" for t in layers[0]["encoding"]["tooltip"])
    points = replicas.ways(Warehouse(db_path).replica_throughput(SWEEP))
    assert sorted(zip(drawn.way, drawn.k, drawn.images_per_s)) == sorted(zip(points.way, points.k,
                                                                              points.images_per_s))
    text = " ".join(m.value for m in at.markdown)
    assert said.two_ways(_comparison(db_path)) in text and "**2 workers** split one host's" in text
    captions = [c.value for c in at.caption]
    assert said.ways_caption() in captions
    assert said.hardware_caption(replicas.levels(Warehouse(db_path).replica_throughput(SWEEP))) in captions
    # The run list: workers of two competing by default left out, the one worker alone in.
    chosen = at.multiselect[0].value
    assert len(chosen) == 1 and "worker 1 of 1" in chosen[0]
    assert sum("worker" in o for o in at.multiselect[0].options) == 3
    # One host: no host facet.
    assert "host" not in at.radio[0].options


@pytest.mark.slow
def test_throughput_page_offers_the_host_facet_only_with_two_hosts(two_hosts, monkeypatch):
    db_path, _ = two_hosts
    at = _app(monkeypatch, db_path, "throughput")
    # Only the one worker alone is chosen (one host): no host facet; choosing every run (two hosts) adds it.
    assert "host" not in at.radio[0].options
    at.multiselect[0].set_value(at.multiselect[0].options).run()
    assert "host" in at.radio[0].options
    at.radio[0].set_value("host").run()
    assert not at.exception
    spec = json.loads(at.get("vega_lite_chart")[0].proto.spec)
    assert spec["facet"]["column"]["field"] == "host"


@pytest.mark.slow
def test_overview_puts_hosts_side_by_side_only_when_there_are_two(two_hosts, one_host, monkeypatch):
    db_path, _ = one_host
    at = _app(monkeypatch, db_path, "overview")
    assert "By host and device" not in [h.value for h in at.header]
    db_path, _ = two_hosts
    at = _app(monkeypatch, db_path, "overview")
    assert "By host and device" in [h.value for h in at.header]
    assert said.places_caption() in [c.value for c in at.caption]
    table = next(d.value for d in at.dataframe if "batch_size" in d.value.columns and "setting" in d.value.columns)
    assert {"hostA · cpu", "hostB · cpu"} <= set(table.columns)
    # Each cell: the median images/s of the runs of that setting and level on that place (throughput_by_batch).
    rows = _sql(db_path, "SELECT r.host, r.replicas, t.batch_size, median(t.images_per_s) FROM throughput_by_batch t "
                         "JOIN runs r USING (run_id) GROUP BY ALL")
    cells = table.set_index(["setting", "batch_size"])
    for host, n, b, ips in rows:
        setting = f"{SETTING}, {n} worker{'s' if n > 1 else ''}"
        assert cells.loc[(setting, b), f"{host} · cpu"] == pytest.approx(ips)
    assert np.isnan(cells.loc[(f"{SETTING}, 1 worker", 1), "hostB · cpu"])


def test_runs_that_shared_a_level_are_left_out_of_the_runs_measured_alone():
    runs = pd.DataFrame({"replicas": [None, 1, 2, 2, 4]}, dtype="Int64")
    assert list(replicas.ran_alone(runs)) == [True, True, False, False, False]

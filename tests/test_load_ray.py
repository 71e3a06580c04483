"""Load served on Ray (`generator load --ray ... --servers 1,2`): the router, the settings it refuses, a
level's records from what several servers reported, the prediction for N servers, and the comparison of one
batched server against N fifo servers with its sentences, on hand-built numbers; then (slow) a real load run
on a local Ray instance with one and two servers, a server killed mid-level, ingested by the real collector."""

from __future__ import annotations

import pytest

from collector.ingest import CollectorConfig, ingest_pending
from generator.__main__ import main
from generator.cluster.messages import RequestDone
from generator.cluster.reach import actor_options
from generator.cluster.servers import check_fits, run_on_ray
from generator.serve import arrivals, load
from generator.serve.levels import Level, LoadConfig
from generator.serve.router import ROUND_ROBIN, Served, Work, level_records, round_robin
from generator.serve.scheduler import Done, LinearCost, Policy, Request, simulate
from warehouse import load as wload
from warehouse.explain import serving
from warehouse.queries import Warehouse

from .conftest import ROOT

COST = LinearCost(job_fixed_s=1.0, job_marginal_s=0.25, step_fixed_s=0.1, step_marginal_s=0.05)


# -- the router ----------------------------------------------------------------------------------------------------

def test_round_robin_sends_the_ith_arrival_to_server_i_mod_n():
    # Ids out of arrival order (a trace may list them so), and a tie at 0.5 broken by id.
    requests = [Request(0, 0.9, 2), Request(1, 0.1, 2), Request(2, 0.5, 2), Request(3, 0.5, 2), Request(4, 0.0, 2)]
    shares = round_robin(requests, 2)
    assert [[r.id for r in share] for share in shares] == [[4, 2, 0], [1, 3]]
    assert [[r.id for r in share] for share in round_robin(requests, 3)] == [[4, 3], [1, 0], [2]]
    assert round_robin(requests, 1) == [tuple(sorted(requests, key=lambda r: (r.arrival_s, r.id)))]
    # More servers than requests: the last have nothing to serve.
    assert [len(s) for s in round_robin(requests[:1], 3)] == [1, 0, 0]
    with pytest.raises(ValueError, match="servers must be >= 1, got 0"):
        round_robin(requests, 0)


# -- the settings --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("fields, message", [
    (dict(servers=(1, 2)), "more than one server runs on Ray actors: --servers 1,2 needs --ray (an address, auto or "
                           "local), got none"),
    (dict(servers=(2,), ray=None), "--servers 2 needs --ray"),
    (dict(servers=(0,), ray="local"), "servers must be >= 1 each, got 0"),
    (dict(servers=(), ray="local"), "servers must list at least one server count, got none"),
    (dict(servers=(2, 2), ray="local"), "servers must list each count once, got 2,2"),
    (dict(ray=" "), "ray must be an address (host:port), auto or local, got ''"),
    (dict(arrival="closed", servers=(1, 2), ray="local"), "arrival 'closed' runs on one server (a closed loop's "
                                                          "next request exists only once one finishes; the router "
                                                          "splits arrivals known before the level starts), got "
                                                          "--servers 1,2"),
])
def test_server_settings_are_refused_with_their_value(tmp_path, fields, message):
    with pytest.raises(ValueError) as info:
        LoadConfig(spool=str(tmp_path), **fields)
    assert message in str(info.value)


def test_the_cli_refuses_several_servers_without_ray_before_any_work(tmp_path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["load", "--servers", "1,2", "--spool", str(tmp_path / "s"), "--quiet"])
    assert exit_info.value.code == 2
    assert "--servers 1,2 needs --ray" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    # One server, and a closed loop on one server over Ray, are allowed.
    assert LoadConfig(spool=str(tmp_path)).servers == (1,)
    assert LoadConfig(spool=str(tmp_path), arrival="closed", ray="local").servers == (1,)


class _Cluster:
    """What check_fits and cluster.actor_options read of a Ray cluster."""

    def __init__(self, cpus: int, gpus: int = 0, nodes=(None,)):
        self.cpus, self.gpus = cpus, gpus
        self._nodes = [{"Alive": True, "Resources": {"CPU": c or cpus}} for c in nodes]

    def cluster_resources(self):
        return {"CPU": self.cpus, "GPU": self.gpus}

    def nodes(self):
        return self._nodes


def test_server_counts_must_fit_the_cluster_and_split_its_cpus(tmp_path):
    cfg = LoadConfig(spool=str(tmp_path), ray="local", servers=(1, 2, 4))
    with pytest.raises(ValueError, match="servers must fit the Ray cluster's 2 CPUs \\(one each at least\\), got 4"):
        check_fits(_Cluster(2), cfg)
    check_fits(_Cluster(4), cfg)
    with pytest.raises(ValueError, match="got 'cuda' \\(the cluster offers no GPU\\)"):
        check_fits(_Cluster(4), LoadConfig(spool=str(tmp_path), ray="local", device="cuda"))
    assert actor_options(_Cluster(8), "cpu", 1) == ({"num_cpus": 8}, 8)
    assert actor_options(_Cluster(8), "cpu", 2) == ({"num_cpus": 4}, 4)
    assert actor_options(_Cluster(8, nodes=(2, 6)), "cpu", 1) == ({"num_cpus": 2}, 2)  # an actor lives on one node
    assert actor_options(_Cluster(8, gpus=2), "cuda", 2) == ({"num_gpus": 1, "num_cpus": 1}, None)


# -- the prediction for N servers ------------------------------------------------------------------------------

def test_n_servers_are_predicted_as_their_shares_simulated_apart_and_merged(tmp_path):
    cfg = LoadConfig(spool=str(tmp_path), max_batch=8, steps=2)
    four = Level("fifo", "burst", tuple(arrivals.burst(4, 2)), clients=4)
    # One fifo server: 1.25, 2.5, 3.75, 5 s; two: each serves two, 1.25 and 2.5 s each.
    two = load.predict(four, cfg, COST, servers=2)
    assert two["predicted_p50_s"] == pytest.approx(1.875) and two["predicted_rps"] == pytest.approx(4 / 2.5)
    assert two["predicted_p99_s"] == pytest.approx(2.5)
    assert load.predict(four, cfg, COST)["predicted_p99_s"] == pytest.approx(1.25 * (3 + 0.97))
    # The same as simulating each round-robin share by hand.
    shares = round_robin(four.requests, 2)
    done = [d for s in shares for d in simulate(Policy("fifo"), list(s), COST)]
    assert sorted(d.latency_s for d in done) == [1.25, 1.25, 2.5, 2.5]


# -- a level's records from what its servers reported --------------------------------------------------------------

def _served() -> tuple[Level, Served]:
    """Two fifo servers: server 0 served requests 0 and 2; server 1 served 1, then was lost before 3."""
    requests = tuple(Request(i, 0.1 * i, 2) for i in range(4))
    level = Level("fifo", "poisson", requests, offered_rps=10.0, load_factor=0.5)
    served = Served("level-x", "2026-01-01T00:00:00+00:00", servers=2)
    for k, share in enumerate(round_robin(requests, 2)):
        for r in share:
            served.ask(k, r)
    served.worked(Work(0, 0, "job", 0.00, 0.30, 1, 1))
    served.finished(0, Done(requests[0], 0.0, 0.3, 1, 0))
    served.worked(Work(1, 0, "job", 0.10, 0.35, 1, 1))
    served.finished(1, Done(requests[1], 0.1, 0.35, 1, 0))
    served.worked(Work(0, 1, "job", 0.30, 0.60, 1, 1))
    served.finished(0, Done(requests[2], 0.3, 0.6, 1, 1))
    served.failed(1, "the Ray server was lost: killed")
    return level, served


def test_a_level_of_two_servers_records_every_request_once_with_its_server(tmp_path):
    level, served = _served()
    cfg = LoadConfig(spool=str(tmp_path), ray="local", servers=(2,))
    shared = {"sweep_id": "s", "threads": 1}
    rows = level_records(level, cfg, shared, served, seed_of=lambda r: 100 + r.id)
    head, requests = rows[0], [r for r in rows if r["kind"] == "request"]
    steps = [r for r in rows if r["kind"] == "server_step"]
    assert (head["kind"], head["servers"], head["router"], head["requests"]) == ("load_level", 2, ROUND_ROBIN, 4)
    assert head["duration_s"] == pytest.approx(0.6)
    # Every server's units in one numbering, in the order they started, each with its server.
    assert [(s["step_index"], s["server"], s["start_s"]) for s in steps] == [(0, 0, 0.0), (1, 1, 0.1), (2, 0, 0.3)]
    by_id = {r["request_id"]: r for r in requests}
    assert sorted(by_id) == [0, 1, 2, 3] and len(requests) == 4
    assert [by_id[i]["server"] for i in range(4)] == [0, 1, 0, 1]
    # A request's group is the unit it ran in, in the level's numbering.
    assert [by_id[i]["group_index"] for i in range(3)] == [0, 1, 2]
    assert (by_id[3]["status"], by_id[3]["error"], by_id[3]["start_s"]) == (
        "error", "the Ray server was lost: killed", None)
    assert {by_id[i]["status"] for i in range(3)} == {"ok"} and by_id[2]["seed"] == 102
    # One server: no router; a request no server reported and none failed: not run.
    one = Served("level-y", "t", servers=1)
    one.ask(0, Request(0, 0.0, 2))
    rows = level_records(level, cfg, shared, one, seed_of=lambda r: r.id)
    assert (rows[0]["servers"], rows[0]["router"], rows[0]["duration_s"]) == (1, None, None)
    assert rows[1]["error"] == "not run" and rows[1]["server"] == 0


# -- the comparison and its sentences on hand-built numbers ---------------------------------------------------------

def _level(policy, servers, offered, p50, p99, rps, ok=10, host="box", threads=None, device="cpu"):
    return {"level_id": f"{policy}-{servers}-{offered}", "policy": policy, "servers": servers,
            "router": ROUND_ROBIN if servers > 1 else None, "arrival": "poisson", "offered_rps": offered,
            "load_factor": None, "clients": None, "requests": 10, "requests_ok": ok, "p50_s": p50, "p99_s": p99,
            "throughput_rps": rps, "host": host, "device": device,
            "threads": threads if threads is not None else (4 if servers == 1 else 4 // servers)}


LEVELS = [
    _level("batch", 1, 2.0, 0.30, 0.61, 1.9), _level("batch", 1, 4.0, 0.50, 1.24, 3.8),
    _level("batch", 1, 6.0, 0.70, 2.0, 5.5),
    _level("fifo", 1, 2.0, 0.20, 0.50, 1.9),                            # one fifo server: not in the comparison
    _level("fifo", 2, 2.0, 0.25, 0.95, 1.9), _level("fifo", 2, 4.0, 0.40, 0.80, 3.9),
    _level("fifo", 2, 6.0, 0.70, 2.04, 5.6),                            # 2.0 and 2.04: the same to two figures
    _level("fifo", 2, 8.0, 1.0, 3.0, 6.0),                              # no batch level at 8 requests/s
    _level("batch", 2, 2.0, 0.2, 0.4, 1.9),                             # two batch servers: not compared
    _level("stream", 1, 4.0, 0.45, 1.5, 3.8, ok=9),                     # a request failed: not compared
]


def test_one_batched_server_is_compared_with_n_fifo_servers_load_for_load():
    pairs = wload.servers_versus(LEVELS)
    assert [(v.batcher, v.servers, v.offered_rps, v.one_p99_s, v.many_p99_s) for v in pairs] == [
        ("batch", 2, 2.0, 0.61, 0.95), ("batch", 2, 4.0, 1.24, 0.80), ("batch", 2, 6.0, 2.0, 2.04)]
    assert (pairs[0].one, pairs[0].many) == ("1 server · batch", "2 servers · fifo")
    assert serving.load_servers_versus(pairs) == (
        "**Lower p99, `1 server · batch` against `2 servers · fifo`** at each offered load both served in full: "
        "at 2.0 requests/s `1 server · batch`, 0.61 s against 0.95 s; at 4.0 requests/s `2 servers · fifo`, "
        "0.8 s against 1.2 s; at 6.0 requests/s the same to two figures (2.0 s). `1 server · batch` was lower at 1 "
        "of 3 loads, `2 servers · fifo` at 1.")
    # One load, one side lower: no tally; nothing to compare: nothing said.
    assert serving.load_servers_versus(pairs[:1]) == (
        "**Lower p99, `1 server · batch` against `2 servers · fifo`** at each offered load both served in full: "
        "at 2.0 requests/s `1 server · batch`, 0.61 s against 0.95 s.")
    # Three servers, stream lower at both loads: one tally; the same to two figures at both: no tally.
    both = [wload.Versus(2.0, "stream", 3, 0.1, 0.2, None, 0.3, 0.5, None),
            wload.Versus(4.0, "stream", 3, 0.2, 0.3, None, 0.4, 0.9, None)]
    assert serving.load_servers_versus(both) == (
        "**Lower p99, `1 server · stream` against `3 servers · fifo`** at each offered load both served in full: "
        "at 2.0 requests/s `1 server · stream`, 0.2 s against 0.5 s; at 4.0 requests/s `1 server · stream`, 0.3 s "
        "against 0.9 s. `1 server · stream` was lower at 2 of 2 loads.")
    same = [wload.Versus(x, "batch", 2, 0.1, 0.5, None, 0.1, 0.501, None) for x in (2.0, 4.0)]
    assert serving.load_servers_versus(same).endswith("at 4.0 requests/s the same to two figures (0.5 s).")
    assert wload.servers_versus(LEVELS[:4]) == [] and serving.load_servers_versus([]) is None
    assert wload.has_servers(LEVELS) and not wload.has_servers(LEVELS[:4])
    # The curves: the batchers on one server and fifo on several, p50, p99 and throughput per load.
    curves = wload.versus_curves(LEVELS)
    assert set(curves.setup) == {"1 server · batch", "1 server · stream", "2 servers · fifo"}
    assert len(curves) == 3 * (3 + 1 + 4) and set(curves.metric) == {"p50", "p99", "throughput"}
    assert serving.load_servers_caption().startswith("One server with a batcher")


def test_levels_of_several_servers_are_never_mixed_with_one_servers():
    caps = wload.capacity_at(LEVELS, 1.0)
    assert set(caps) == {"batch", "fifo", "stream", "2 servers · fifo", "2 servers · batch"}
    assert caps["2 servers · fifo"].served_rps == 3.9 and caps["fifo"].served_rps == 1.9
    assert {g.policy for g in wload.prediction_gaps(LEVELS)} == set(caps)
    assert set(wload.latency_curves(LEVELS).policy) == set(caps)


def test_servers_that_split_one_machines_cores_are_said_to_add_no_hardware():
    shared = wload.shared_cores(LEVELS)
    assert shared == [wload.SharedCores(servers=2, threads=2, one_threads=4, host="box")]
    assert serving.load_shared_cores(shared) == (
        "The 2 servers ran on the CPU of the one machine the single server ran on (`box`), 2 torch threads each "
        "against its 4: they split its cores and add no hardware, so any difference is how the requests were "
        "scheduled, not more compute.")
    # More threads between them than the one server had, another machine, two machines, a GPU, or no one-server
    # level: no such claim.
    more = [_level("batch", 1, 2.0, 0.3, 0.6, 1.9, threads=2), _level("fifo", 2, 2.0, 0.3, 0.6, 1.9, threads=2)]
    elsewhere = [LEVELS[0], _level("fifo", 2, 2.0, 0.3, 0.6, 1.9, host="other")]
    two_hosts = [LEVELS[0], _level("fifo", 2, 2.0, 0.3, 0.6, 1.9, host="box, other")]
    gpu = [_level("batch", 1, 2.0, 0.3, 0.6, 1.9, device="cuda"), _level("fifo", 2, 2.0, 0.3, 0.6, 1.9, device="cuda")]
    for rows in (more, elsewhere, two_hosts, gpu, LEVELS[4:8]):
        assert wload.shared_cores(rows) == [] and serving.load_shared_cores(wload.shared_cores(rows)) is None
    assert serving.load_shared_cores([wload.SharedCores(2, 1, 2, "vm")]).startswith(
        "The 2 servers ran on the CPU of the one machine the single server ran on (`vm`), 1 torch thread each "
        "against its 2:")


# -- a real load run over Ray ----------------------------------------------------------------------------------

KILL = ("fifo", "burst", 32)  # the level (policy, arrival, clients) whose server 1 is killed after its first request


@pytest.fixture(scope="module")
def ray_run(ray_local, tmp_path_factory):
    """A real load run on a local Ray instance (2 CPUs): one server, then two behind the router, each at the same
    offered loads; server 1 killed in the level KILL once it reported its first request finished. Ingested by the
    real collector: (db path, sweep id, what the kill saw)."""
    base = tmp_path_factory.mktemp("load-ray")
    cfg = LoadConfig(ray="local", servers=(1, 2), policies=("fifo", "batch"), loads=(0.5, 1.0), burst=32, burst_repeats=1,
                     max_batch=4, max_delay=0.02, min_requests=8, min_seconds=0.0, steps=2, resolution=32,
                     spool=str(base / "spool"))
    killed = []

    def watch(share, server, message, actor):
        if (share.policy, share.arrival, share.clients) == KILL and server == 1 \
                and isinstance(message, RequestDone) and not killed:
            killed.append(message.done.request.id)
            ray_local.kill(actor, no_restart=True)

    written = run_on_ray(cfg, progress=False, sweep_id="sweep-load-ray", watch=watch)
    assert len(written) == 2 * (2 * 2 + 2 * 2) and not written.unwritten  # per N: 2 loads and 2 bursts x 2 policies
    report = ingest_pending(CollectorConfig(spool=cfg.spool, db=str(base / "w.duckdb")))
    assert report.files == len(written) and not report.quarantined
    return str(base / "w.duckdb"), "sweep-load-ray", killed


def _rows(db_path, sql, params=None) -> list[dict]:
    import duckdb

    con = duckdb.connect(db_path, read_only=True)
    try:
        cur = con.execute(sql, params or [])
        names = [d[0] for d in cur.description]
        return [dict(zip(names, row)) for row in cur.fetchall()]
    finally:
        con.close()


@pytest.mark.slow
def test_every_request_is_recorded_once_on_the_server_the_router_chose(ray_run):
    db_path, sweep, _ = ray_run
    levels = _rows(db_path, "SELECT * FROM load_levels WHERE sweep_id = ?", [sweep])
    assert sorted({(lv["servers"], lv["router"]) for lv in levels}, key=str) == [(1, None), (2, ROUND_ROBIN)]
    plans = {n: sorted((lv["policy"], lv["arrival"], lv["offered_rps"] or 0, lv["clients"] or 0)
                       for lv in levels if lv["servers"] == n) for n in (1, 2)}
    assert plans[1] == plans[2] and len(plans[1]) == 8  # the same levels, at the same absolute rates, for 1 and 2
    assert {lv["threads"] for lv in levels if lv["servers"] == 1} == {2}
    assert {lv["threads"] for lv in levels if lv["servers"] == 2} == {1}
    for lv in levels:
        requests = _rows(db_path, "SELECT * FROM requests WHERE level_id = ? ORDER BY arrival_s, request_id",
                         [lv["level_id"]])
        assert len(requests) == lv["requests"] and len({r["request_id"] for r in requests}) == len(requests)
        # Round robin over the arrival order: the i-th to arrive on server i mod N.
        assert [r["server"] for r in requests] == [i % lv["servers"] for i in range(len(requests))]
        steps = _rows(db_path, "SELECT * FROM server_steps WHERE level_id = ? ORDER BY step_index", [lv["level_id"]])
        assert [s["step_index"] for s in steps] == list(range(len(steps)))
        assert {s["server"] for s in steps} <= set(range(lv["servers"]))
        # Each request ran in a unit of work of its own server.
        unit = {s["step_index"]: s for s in steps}
        for r in requests:
            if r["status"] == "ok":
                assert unit[r["group_index"]]["server"] == r["server"]


@pytest.mark.slow
def test_a_server_killed_mid_level_leaves_its_unfinished_requests_as_errors_and_the_run_goes_on(ray_run):
    db_path, sweep, killed = ray_run
    assert len(killed) == 1, "the watch saw server 1 finish a request in the level it kills"
    policy, arrival, clients = KILL
    levels = _rows(db_path, "SELECT * FROM load_latency WHERE sweep_id = ? AND servers = 2 ORDER BY started_at",
                   [sweep])
    at = next(i for i, lv in enumerate(levels) if (lv["policy"], lv["arrival"], lv["clients"]) == KILL)
    lost = levels[at]
    requests = _rows(db_path, "SELECT * FROM requests WHERE level_id = ?", [lost["level_id"]])
    assert len(requests) == clients and lost["requests"] == clients
    # Server 0 served its whole share; server 1 finished the request the watch saw (at least), the rest are errors.
    assert all(r["status"] == "ok" for r in requests if r["server"] == 0)
    mine = [r for r in requests if r["server"] == 1]
    ok = {r["request_id"] for r in mine if r["status"] == "ok"}
    errors = [r for r in mine if r["status"] == "error"]
    assert killed[0] in ok and errors, "the kill landed before server 1 finished its share"
    assert all(r["error"].startswith("the Ray server was lost") and r["finish_s"] is None for r in errors)
    assert lost["requests_ok"] == clients - len(errors)
    # The next level ran on a fresh server 1: every request finished.
    after = levels[at + 1]
    assert after["requests_ok"] == after["requests"]
    assert {r["server"] for r in _rows(db_path, "SELECT server FROM requests WHERE level_id = ? AND status = 'ok'",
                                       [after["level_id"]])} == {0, 1}


@pytest.mark.slow
def test_the_comparison_and_its_sentences_on_the_real_run(ray_run, monkeypatch, tmp_path):
    from streamlit.testing.v1 import AppTest

    db_path, sweep, _ = ray_run
    levels = Warehouse(db_path).load_levels(sweep)
    assert set(levels.servers) == {1, 2}
    pairs = wload.servers_versus(levels)
    # Both Poisson loads, batch on one server against fifo on two, each figure the view's.
    view = {(r.policy, r.servers, round(r.offered_rps, 9)): r for r in levels.itertuples()}
    assert [(v.batcher, v.servers) for v in pairs] == [("batch", 2)] * 2
    for v in pairs:
        one, many = view[("batch", 1, round(v.offered_rps, 9))], view[("fifo", 2, round(v.offered_rps, 9))]
        assert (v.one_p99_s, v.many_p99_s, v.one_p50_s, v.many_p50_s) == (one.p99_s, many.p99_s, one.p50_s, many.p50_s)
    said = serving.load_servers_versus(pairs)
    for v in pairs:
        lower = v.one if v.one_p99_s < v.many_p99_s else v.many
        assert f"requests/s `{lower}`," in said or "the same to two figures" in said
    # On one machine's two CPUs: one server of 2 threads, two of 1: said so.
    shared = wload.shared_cores(levels)
    assert [(s.servers, s.threads, s.one_threads) for s in shared] == [(2, 1, 2)]
    # The page shows the section, its chart and both sentences.
    monkeypatch.setenv("WAREHOUSE_DB", db_path)
    monkeypatch.setenv("OUTPUT_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=120).run()
    at.switch_page("pages/load.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert "One server with a batcher against N servers without one" in {s.value for s in at.subheader}
    shown = [m.value for m in at.markdown]
    assert said in shown and serving.load_shared_cores(shared) in shown

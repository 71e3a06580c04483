"""Sweeps on Ray workers (generator/cluster/workers.py, generator/cluster/replicas.py) on a real local Ray instance with 2 CPUs:
the same records as without Ray, a worker killed mid-sweep, the replica sweep's records; and, without a
cluster, the refusals before any work."""

from __future__ import annotations

import queue
import signal
import socket
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

import psutil
import pytest

from collector.ingest import CollectorConfig, ingest_pending
from generator.__main__ import main
from generator.cluster.messages import JobStarting
from generator.cluster.workers import Driver
from generator.run import run_sweep
from generator.sweep.config import SweepConfig
from generator.sweep.plan import plan
from spool import SpoolWriter

from .conftest import sql_rows, wait_until

# Fixed warm-up and rounds, so that the jobs a run gets do not depend on the times it measured.
FIXED = dict(batch_sizes=(1, 2), resolutions=(64,), steps=2, repeats=2, warmup=1, warmup_max=1,
             mode=("static", "stream"), sample_hz=0)


def _sweep(tmp_path: Path, name: str, **settings) -> str:
    """Run a sweep into its own spool and warehouse; return the warehouse path."""
    base = tmp_path / name
    cfg = SweepConfig(**{**FIXED, **settings}, spool=str(base / "spool"), out=str(base / "images"))
    outcome = run_sweep(cfg, progress=False)
    assert not outcome.unwritten
    ingest_pending(CollectorConfig(spool=cfg.spool, db=str(base / "w.duckdb")))
    return str(base / "w.duckdb")


def _shape(db: str) -> dict:
    """What a sweep ran, whatever ran it: per run setting, its jobs by (batch size, kind, status) and
    the steps recorded per batch size."""
    runs = sql_rows(db, "SELECT mode, height, width, guidance_scale, vae_slicing, rounds, stop_reason FROM runs "
                        "ORDER BY mode")
    jobs = sql_rows(db, "SELECT r.mode, j.batch_size, j.warmup, j.profiled, j.status, count(*) FROM jobs j "
                        "JOIN runs r USING (run_id) GROUP BY ALL ORDER BY ALL")
    steps = sql_rows(db, "SELECT r.mode, j.batch_size, count(*) FROM steps s JOIN jobs j USING (job_id) "
                         "JOIN runs r USING (run_id) GROUP BY ALL ORDER BY ALL")
    return {"runs": runs, "jobs": jobs, "steps": steps}


# Without a cluster: the plan's shares and the refusals.

def test_a_share_is_one_run_and_the_shares_make_the_plan():
    cfg = SweepConfig(**FIXED)
    (size,) = plan(cfg)
    shares = [size.only(runs={run}) for run in size.runs]
    assert Counter(job for part in shares for job in part.jobs()) == Counter(size.jobs())
    for run, part in zip(size.runs, shares):
        assert {job.run for job in part.jobs()} == {run} and part.runs == (run,)
        assert [j for j in size.jobs() if j.run == run] == list(part.jobs())  # the same order
    one = size.only(batch_sizes={2})
    assert {j.batch_size for j in one.jobs()} == {2} and len(one.rounds) == cfg.repeats


@pytest.mark.parametrize("flags, message", [
    (["--workers", "2"], "workers needs --ray"),
    (["--replicas", "1,2"], "replicas needs --ray"),
    (["--ray-spool", "shared"], "ray spool needs --ray"),
    (["--ray", "local", "--ray-spool", "nfs"], "ray spool must be one of driver, shared, got 'nfs'"),
    (["--ray", "local", "--replicas", "1,0"], "replicas must be >= 1 each, got 0"),
    (["--ray", "local", "--workers", "0"], "workers must be >= 1, got 0"),
    (["--ray", "local", "--replicas", "2", "--until-oom"], "replicas runs the listed batch sizes"),
])
def test_bad_ray_settings_are_refused_naming_the_value(flags, message, tmp_path, capsys):
    code, err = _cli(["sweep", *flags, "--spool", str(tmp_path / "s")], capsys)
    assert code == 2 and message in err
    assert not (tmp_path / "s").exists()


def _cli(argv: list[str], capsys) -> tuple[int, str]:
    """The CLI's own entry point run in this process: (exit code, what it wrote to stderr)."""
    try:
        code = main(argv)
    except SystemExit as exc:  # argparse's refusals
        code = exc.code
    return code, capsys.readouterr().err


def test_an_unreachable_cluster_is_one_line_before_any_work(tmp_path):
    with socket.socket() as s:  # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    # In a process of its own: in this one the session's local Ray may be up, and a sweep uses a Ray already up.
    out = subprocess.run([sys.executable, "-m", "generator", "sweep", "--ray", f"127.0.0.1:{port}",
                          "--spool", str(tmp_path / "s")], capture_output=True, text=True)
    assert out.returncode == 2
    lines = [line for line in out.stderr.splitlines() if line.strip()]
    assert lines == [lines[-1]] and lines[0].startswith(f"error: no Ray cluster answers at --ray '127.0.0.1:{port}'")
    assert not (tmp_path / "s").exists()


def test_ray_not_installed_is_one_line_before_any_work(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` fails as it does where ray is not installed
    code, err = _cli(["sweep", "--ray", "local", "--spool", str(tmp_path / "s")], capsys)
    assert code == 2
    assert err.strip() == "error: --ray needs the ray package, which is not installed (pip install ray==2.60.0)"
    assert not (tmp_path / "s").exists()


def test_a_driver_never_replaces_a_file_its_worker_wrote(tmp_path):
    writer = SpoolWriter(tmp_path)
    writer.write("run-1", "job-1", [{"kind": "job", "status": "ok"}])
    with pytest.raises(FileExistsError):
        writer.write("run-1", "job-1", [{"kind": "job", "status": "error"}], replace=False)
    assert '"ok"' in (tmp_path / "run-1" / "job-1.jsonl").read_text()
    assert [p.name for p in (tmp_path / "run-1").iterdir()] == ["job-1.jsonl"]  # no temporary file left


# On a local Ray instance.

@pytest.fixture(scope="module")
def alone(tmp_path_factory) -> str:
    """The sweep both Ray variants are compared with, run once in this process."""
    return _sweep(tmp_path_factory.mktemp("alone"), "alone")


@pytest.mark.slow
@pytest.mark.parametrize("records", ["driver", "shared"])
def test_a_sweep_over_two_workers_lands_like_the_same_sweep_in_one_process(ray_local, tmp_path, records, alone):
    over_ray = _sweep(tmp_path, "ray", ray="local", workers=2, ray_spool=records)
    assert _shape(over_ray) == _shape(alone)
    # Each run records where it ran: two workers, on this node, one CPU (and thread) each.
    where = sql_rows(over_ray, "SELECT worker_id, ray_node_id, host, threads FROM runs")
    assert len({w for w, *_ in where}) == 2 and all(w and n for w, n, *_ in where)
    assert {n for _, n, _, _ in where} == {ray_local.get_runtime_context().get_node_id()}
    assert {t for *_, t in where} == {1}
    assert sql_rows(alone, "SELECT count(*) FROM runs WHERE worker_id IS NOT NULL") == [(0,)]


def _kill_actor(ray, actor_id: str) -> None:
    """Kill the worker through Ray (it restarts the actor once)."""
    ray.kill(_actor(ray, actor_id), no_restart=False)


def _kill_process(ray, actor_id: str) -> None:
    """Kill the worker's process from outside (SIGKILL): the pid Ray's actor table gives for it, which must be
    one of this test's own descendants (the local Ray instance) titled as the worker class."""
    pid = ray._private.state.actors(actor_id)["Pid"]
    workers = {p.pid: p for p in psutil.Process().children(recursive=True) if _title(p).startswith("ray::SweepWorker")}
    assert pid in workers, f"the worker's process {pid} is not among this test's Ray workers {sorted(workers)}"
    workers[pid].send_signal(signal.SIGKILL)


def _actor(ray, actor_id: str):
    """The sweep's worker actor of this id (they are named <sweep id>-worker-<i>)."""
    actors = ray._private.state.actors(actor_id)
    return ray.get_actor(actors["Name"])


def _title(process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:  # it ended meanwhile
        return ""


@pytest.mark.slow
@pytest.mark.parametrize("kill", [_kill_actor, _kill_process], ids=["ray.kill", "process"])
def test_a_worker_killed_mid_sweep_leaves_its_job_once_as_failed_and_the_rest_goes_on(ray_local, tmp_path, kill,
                                                                                        monkeypatch):
    # Three runs for two workers: one of them takes a second share (the killed one, restarted, or the other).
    cfg = SweepConfig(**{**FIXED, "repeats": 6, "steps": 6, "batch_sizes": (2, 4),
                         "mode": ("static", "stream", "sequential")}, ray="local", workers=2,
                      spool=str(tmp_path / "spool"), out=str(tmp_path / "images"))
    sweep_id = f"sweep-kill-test-{kill.__name__.strip('_')}"
    # Each job is announced before it runs: the driver's handling of the announcement says which worker has
    # just started a job (observed, the driver's own handling unchanged).
    announced, handle = queue.Queue(), Driver.handle

    def observed(self, message, pending):
        handle(self, message, pending)
        if isinstance(message, JobStarting):
            announced.put(message.run["worker_id"])

    monkeypatch.setattr(Driver, "handle", observed)
    outcome = {}
    driver = threading.Thread(target=lambda: outcome.setdefault("files", _run(cfg, sweep_id)), daemon=True)
    driver.start()
    # Once jobs are being written, kill the worker that announced the next job, while that job runs (a worker
    # picked otherwise may be between two jobs, with nothing in flight).
    spool = Path(cfg.spool)
    wait_until(lambda: len(list(spool.glob("*/job-*.jsonl"))) >= 2)
    while not announced.empty():
        announced.get_nowait()
    kill(ray_local, announced.get(timeout=300))
    driver.join()
    assert "files" in outcome and not outcome["files"].unwritten
    # The sweep gives its workers' CPUs back to the cluster when it ends (the restarted worker's too).
    wait_until(lambda: ray_local.available_resources().get("CPU") == ray_local.cluster_resources()["CPU"])
    job_files = len(list(spool.glob("*/job-*.jsonl")))
    db = str(tmp_path / "w.duckdb")
    ingest_pending(CollectorConfig(spool=cfg.spool, db=db))
    # Never twice: no (run, batch size, kind, repeat) has two jobs, and every spool job file is one job.
    twice = sql_rows(db, "SELECT run_id, batch_size, warmup, \"repeat\", count(*) FROM jobs GROUP BY ALL "
                         "HAVING count(*) > 1")
    assert twice == []
    assert sql_rows(db, "SELECT count(*) FROM jobs") == [(job_files,)]
    # The job in flight is recorded as failed, with the reason; its run ends with the reason.
    failed = sql_rows(db, "SELECT run_id, error FROM jobs WHERE status <> 'ok'")
    assert len(failed) == 1 and failed[0][1].startswith("the Ray worker was lost: its process")  # not Ray's paragraph
    lost = sql_rows(db, "SELECT run_id, stop_reason FROM runs WHERE stop_reason LIKE '%lost%'")
    assert [r for r, _ in lost] == [failed[0][0]]
    # The other runs ran whole: (1 warm-up + 6 rounds) x 2 batch sizes each, on the restarted worker or the other.
    whole = sql_rows(db, "SELECT r.mode, count(*) FROM jobs j JOIN runs r USING (run_id) "
                         "WHERE r.run_id <> ? GROUP BY ALL ORDER BY ALL", [failed[0][0]])
    assert len(whole) == 2 and all(n == 14 for _, n in whole)


def _run(cfg: SweepConfig, sweep_id: str):
    return run_sweep(cfg, progress=False, sweep_id=sweep_id)


@pytest.mark.slow
def test_a_replica_sweep_runs_each_batch_size_on_all_workers_at_once(ray_local, tmp_path):
    db = _sweep(tmp_path, "replicas", ray="local", replicas=(1, 2), mode=("static",), batch_sizes=(1, 2))
    runs = sql_rows(db, "SELECT replicas, replica_index, replica_group, threads, worker_id FROM runs "
                        "ORDER BY replicas, replica_index")
    # Level 1: one worker with both CPUs; level 2: two workers with one CPU (thread) each, one group.
    assert [(n, i, t) for n, i, _, t, _ in runs] == [(1, 0, 2), (2, 0, 1), (2, 1, 1)]
    assert runs[1][2] == runs[2][2] != runs[0][2] and runs[1][4] != runs[2][4]
    # Every worker ran every batch size: 1 warm-up and 2 rounds each.
    jobs = sql_rows(db, "SELECT r.replicas, r.replica_index, j.batch_size, count(*) FROM jobs j "
                        "JOIN runs r USING (run_id) GROUP BY ALL ORDER BY ALL")
    assert [n for *_, n in jobs] == [3] * 6
    # At level 2 the two workers ran each batch size together, and one batch size after the other: each
    # worker's jobs of batch 1 started before the other's jobs of batch 2 began, and overlapped the other's.
    spans = {(i, b): (lo, hi) for i, b, lo, hi in sql_rows(
        db, "SELECT r.replica_index, j.batch_size, min(epoch(j.started_at)), max(epoch(j.started_at) + j.wall_s) "
            "FROM jobs j JOIN runs r USING (run_id) WHERE r.replicas = 2 GROUP BY ALL")}
    for b in (1, 2):
        assert spans[(0, b)][0] < spans[(1, b)][1] and spans[(1, b)][0] < spans[(0, b)][1]
    assert max(spans[(0, 1)][1], spans[(1, 1)][1]) <= min(spans[(0, 2)][0], spans[(1, 2)][0])
    # And round by round: each measured round's job on one worker overlapped the same round's on the other, and
    # the next round began on neither before both had ended (a barrier per round).
    rounds = {(i, b, r): (lo, hi) for i, b, r, lo, hi in sql_rows(
        db, "SELECT r.replica_index, j.batch_size, j.round, epoch(j.started_at), epoch(j.started_at) + j.wall_s "
            "FROM jobs j JOIN runs r USING (run_id) WHERE r.replicas = 2 AND NOT j.warmup")}
    assert sorted({(b, r) for _, b, r in rounds}) == [(b, r) for b in (1, 2) for r in sorted({r for *_, r in rounds})]
    for (i, b, r), (lo, hi) in rounds.items():
        other = rounds[(1 - i, b, r)]
        assert lo < other[1] and other[0] < hi, (i, b, r)
        if (i, b, r + 1) in rounds:
            assert max(hi, other[1]) <= min(rounds[(i, b, r + 1)][0], rounds[(1 - i, b, r + 1)][0]), (b, r)


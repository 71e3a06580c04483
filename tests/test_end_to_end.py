"""sweep -> spool -> collector -> DuckDB -> dashboard, on the embedded model."""

from __future__ import annotations

import json
import os
import statistics
from pathlib import Path

import duckdb
import pytest
from streamlit.testing.v1 import AppTest

from .conftest import ROOT, SMALL, holding, wait_until

pytestmark = pytest.mark.slow  # real sweeps through every part


def _records(spool: Path) -> list[dict]:
    return [json.loads(line) for f in sorted(spool.rglob("*.jsonl")) for line in f.read_text().splitlines()]


def test_sweep_writes_one_complete_spool_file_per_job(small_sweep):
    cfg, files = small_sweep
    jobs = len(SMALL["batch_sizes"]) * (SMALL["warmup"] + SMALL["repeats"])
    job_files = [f for f in files if f.name.startswith("job-")]
    assert len(job_files) == jobs and len(files) == jobs + 1  # and the run's end file
    assert all(f.suffix == ".jsonl" and f.parent.parent == Path(cfg.spool) for f in files)
    assert not list(Path(cfg.spool).rglob("*.tmp")), "no temporary file may be left behind"
    # The run's end file: its record with the rounds it ran and why they stopped.
    (end,) = [f for f in files if f.name.startswith("stop-")]
    run = json.loads(end.read_text().splitlines()[0])
    assert (run["kind"], run["rounds"], run["stop_reason"]) == ("run", SMALL["repeats"], "repeats: 2 rounds as asked")
    for f in job_files:
        kinds = [json.loads(line)["kind"] for line in f.read_text().splitlines()]
        assert kinds[:2] == ["run", "job"]
        assert kinds.count("step") == SMALL["steps"]
        assert {"encode_prompt", "denoise", "decode"} <= {
            json.loads(line).get("phase") for line in f.read_text().splitlines()}


def test_phases_and_steps_fit_inside_the_job(small_sweep):
    cfg, files = small_sweep
    for f in [f for f in files if f.name.startswith("job-")]:
        recs = [json.loads(line) for line in f.read_text().splitlines()]
        job = next(r for r in recs if r["kind"] == "job")
        assert job["status"] == "ok", job["error"]
        phases = {r["phase"]: r for r in recs if r["kind"] == "phase"}
        steps = [r for r in recs if r["kind"] == "step"]
        assert sum(p["duration_s"] for p in phases.values()) <= job["wall_s"] + 1e-9
        assert abs(sum(s["duration_s"] for s in steps) - phases["denoise"]["duration_s"]) < 1e-6
        assert [s["step_index"] for s in steps] == list(range(SMALL["steps"]))
        # Timesteps run downwards, as a DDIM schedule does.
        assert steps[0]["timestep"] > steps[-1]["timestep"]


def test_images_are_written_for_the_first_measured_job(small_sweep):
    cfg, files = small_sweep
    images = [r for r in _records(Path(cfg.spool)) if r["kind"] == "image"]
    assert len(images) == sum(SMALL["batch_sizes"])
    for img in images:
        assert Path(img["path"]).is_file() and Path(img["path"]).is_relative_to(Path(cfg.out).resolve())


def test_warehouse_holds_exactly_the_sweep(warehouse, spool):
    recs = _records(spool)
    jobs = [r for r in recs if r["kind"] == "job"]
    con = duckdb.connect(warehouse, read_only=True)
    try:
        assert con.execute("SELECT count(*) FROM runs").fetchone()[0] == 1
        assert con.execute("SELECT count(*) FROM jobs").fetchone()[0] == len(jobs)
        assert con.execute("SELECT count(*) FROM steps").fetchone()[0] == len(jobs) * SMALL["steps"]
        assert con.execute("SELECT count(*) FROM phases").fetchone()[0] == sum(
            r["kind"] == "phase" for r in recs)
        # throughput_by_batch equals the medians of the measured job rows.
        view = {row[0]: row[1:] for row in con.execute(
            "SELECT batch_size, jobs, median_wall_s, images_per_s, speedup, efficiency "
            "FROM throughput_by_batch").fetchall()}
    finally:
        con.close()
    assert sorted(view) == list(SMALL["batch_sizes"])
    rate = {}
    for b in SMALL["batch_sizes"]:
        walls = [j["wall_s"] for j in jobs if j["batch_size"] == b and not j["warmup"]]
        n, median, ips, _, _ = view[b]
        assert n == SMALL["repeats"] == len(walls)
        assert abs(median - statistics.median(walls)) < 1e-9
        assert abs(ips - b / statistics.median(walls)) < 1e-9
        rate[b] = ips
    for b in SMALL["batch_sizes"]:
        speedup, efficiency = view[b][3], view[b][4]
        assert abs(speedup - rate[b] / rate[1]) < 1e-9
        assert abs(efficiency - speedup / b) < 1e-9


def test_overview_page_shows_the_warehouse_numbers(warehouse, monkeypatch):
    con = duckdb.connect(warehouse, read_only=True)
    (b1,), (b2,) = con.execute(
        "SELECT median_wall_s FROM throughput_by_batch ORDER BY batch_size").fetchall()
    con.close()
    monkeypatch.setenv("WAREHOUSE_DB", warehouse)
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    text = " ".join(m.value for m in at.markdown)
    # The small sweep's 2 repeats are too few for a 95% interval of the ratio: said instead of a bracket.
    expected = (f"Batch 2 took {b2 / b1:.1f}x as long as batch 1: {2 * b1 / b2:.1f}x the images per second. "
                f"_(Uncertain: {SMALL['repeats']} repeats: too few for a 95% interval (6 needed).)_")
    assert expected in text, expected
    assert any("trained here on the shapes data set" in i.value for i in at.info)
    # The Throughput page shows the same medians as a table.
    at.switch_page("pages/throughput.py").run()
    table = at.dataframe[1].value
    assert sorted(table.batch_size) == [1, 2]
    assert abs(table.set_index("batch_size").median_wall_s[2] - b2) < 1e-12


def test_dashboard_on_a_missing_warehouse_says_how_to_start(tmp_path, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_DB", str(tmp_path / "absent.duckdb"))
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60).run()
    assert not at.exception, at.exception
    assert any("python -m generator sweep" in i.value for i in at.info)
    assert not (tmp_path / "absent.duckdb").exists(), "a reader must never create the warehouse"


def test_sql_page_reads_and_refuses_writes(warehouse, monkeypatch):
    monkeypatch.setenv("WAREHOUSE_DB", warehouse)
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=60).run()
    at.switch_page("pages/sql.py").run()
    assert not at.exception, at.exception
    at.text_area[0].set_value("SELECT count(*) AS n FROM steps").run()
    assert at.dataframe[0].value.n[0] == 2 * (SMALL["warmup"] + SMALL["repeats"]) * SMALL["steps"]
    at.text_area[0].set_value("DELETE FROM jobs").run()
    assert not at.exception and "reads the warehouse only" in at.error[0].value
    at.text_area[0].set_value("SELEC 1").run()
    assert not at.exception and "syntax error" in at.error[0].value
    con = duckdb.connect(warehouse, read_only=True)
    assert con.execute("SELECT count(*) FROM jobs").fetchone()[0] == 2 * (SMALL["warmup"] + SMALL["repeats"])
    con.close()


def test_collector_cli_ingests_into_the_env_warehouse(spool, tmp_path):
    import subprocess
    import sys

    db = tmp_path / "cli.duckdb"
    env = dict(os.environ, SPOOL_DIR=str(spool), WAREHOUSE_DB=str(db))
    out = subprocess.run([sys.executable, "-m", "collector", "ingest", "--once"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert f"ingested {len(list(spool.rglob('*.jsonl')))} files" in out.stdout
    assert db.is_file()


def test_the_dashboard_waits_out_a_busy_warehouse(warehouse, monkeypatch, caplog):
    import threading

    # Another process writes; the page retries until it is done, then shows the numbers.
    monkeypatch.setenv("WAREHOUSE_DB", warehouse)
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=300)
    with holding(warehouse, read_only=False) as release, caplog.at_level("WARNING", logger="warehouse"):
        thread = threading.Thread(target=at.run)
        thread.start()
        wait_until(lambda: "warehouse busy" in caplog.text)  # the page met the lock and is retrying
        release()
        thread.join(timeout=300)
    assert not thread.is_alive()
    assert not at.exception, at.exception
    assert any("took" in m.value for m in at.markdown)

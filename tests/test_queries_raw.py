"""Named queries recomputed by hand from the raw records: what the dashboard reads is what was recorded,
whichever way the SQL is written for speed (the run filter first, before medians over the steps)."""

from __future__ import annotations

import random

import duckdb
import pandas as pd
import pytest

from collector.ingest import CollectorConfig, ingest_pending
from spool import SpoolWriter, record
from warehouse.queries import Warehouse

PHASES = ("encode_prompt", "prepare", "denoise", "decode", "postprocess")


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory):
    """Three runs (the last in stream mode) of varied job, phase and step times; warm-up, profiled and failed
    jobs among them."""
    base = tmp_path_factory.mktemp("raw")
    rng, writer = random.Random(11), SpoolWriter(base / "spool")
    for r in range(3):
        run_id = f"raw-run-{r}"
        run = record("run", run_id=run_id, sweep_id="raw-sweep", started_at="2026-01-01T00:00:00+00:00",
                     host="h", device="cpu", device_name="cpu", model_id="m", task="txt2img",
                     mode="stream" if r == 2 else "static",
                     height=64, width=64, steps=6, guidance_scale=1.0, seed=0)
        for j in range(12):
            job_id, batch = f"{run_id}-job-{j:02d}", 2 ** (j % 3)
            status = "oom" if j == 11 else "ok"
            rows = [run, record("job", job_id=job_id, run_id=run_id, batch_size=batch, unet_batch=batch,
                                repeat=j // 3, warmup=j < 3, profiled=j == 10,
                                started_at="2026-01-01T00:00:01+00:00", wall_s=rng.uniform(0.5, 2.0),
                                images=batch, status=status, error=None, unet_calls=6)]
            rows += [record("phase", job_id=job_id, phase=p, start_s=0.1 * i, duration_s=rng.uniform(0.01, 0.3))
                     for i, p in enumerate(PHASES)]
            rows += [record("phase", job_id=job_id, phase="decode", start_s=0.9, duration_s=rng.uniform(0.01, 0.1))]
            rows += [record("step", job_id=job_id, call_index=0, step_index=s, timestep=999.0 - s, unet_rows=batch,
                            start_s=0.01 * s + rng.uniform(0, 0.005), duration_s=rng.uniform(0.001, 0.05))
                     for s in range(batch + 5 if r == 2 else rng.randint(3, 7))]
            writer.write(run_id, job_id, rows)
    db_path = str(base / "w.duckdb")
    ingest_pending(CollectorConfig(spool=str(base / "spool"), db=db_path))
    return db_path


def _raw(db_path: str, table: str) -> pd.DataFrame:
    con = duckdb.connect(db_path, read_only=True)
    try:
        return con.execute(f"SELECT * FROM {table}").df()
    finally:
        con.close()


def test_job_costs_are_the_raw_records_of_the_runs_asked_for(warehouse):
    jobs, phases, steps = (_raw(warehouse, t) for t in ("jobs", "phases", "steps"))
    asked = ["raw-run-0", "raw-run-2"]
    measured = jobs[~jobs.warmup & ~jobs.profiled.fillna(False) & (jobs.status == "ok") & jobs.run_id.isin(asked)]
    got = Warehouse(warehouse).job_costs(asked).set_index("job_id")
    assert sorted(got.index) == sorted(measured.job_id) and len(got) == 2 * 7
    for job in measured.itertuples():
        row = got.loc[job.job_id]
        mine = phases[phases.job_id == job.job_id]
        assert row.wall_s == job.wall_s and row.batch_size == job.batch_size
        assert row.step_s == pytest.approx(steps[steps.job_id == job.job_id].duration_s.median(), rel=1e-12)
        for column, phase in (("encode_s", "encode_prompt"), ("denoise_s", "denoise"), ("decode_s", "decode")):
            assert row[column] == pytest.approx(mine[mine.phase == phase].duration_s.sum(), rel=1e-12)


def _measured(db_path: str, asked: list[str]) -> pd.DataFrame:
    jobs = _raw(db_path, "jobs")
    return jobs[~jobs.warmup & ~jobs.profiled.fillna(False) & (jobs.status == "ok") & jobs.run_id.isin(asked)]


def test_step_profile_is_the_median_of_the_raw_steps(warehouse):
    asked = ["raw-run-1", "raw-run-2"]
    steps = _raw(warehouse, "steps").merge(_measured(warehouse, asked)[["job_id", "run_id", "batch_size"]])
    want = steps.groupby(["run_id", "batch_size", "step_index"]).duration_s.agg(["median", "count"])
    got = Warehouse(warehouse).step_profile(asked).set_index(["run_id", "batch_size", "step_index"])
    assert sorted(got.index) == sorted(want.index) and len(got) > 20
    assert got.median_s.sort_index().to_numpy() == pytest.approx(want["median"].sort_index().to_numpy(), rel=1e-12)
    assert (got.samples.sort_index().to_numpy() == want["count"].sort_index().to_numpy()).all()


def test_stream_latency_is_each_requests_span_in_the_raw_steps(warehouse):
    # Stream mode: request k enters on UNet call k and leaves on call k + steps - 1 (the run's 6 steps).
    measured = _measured(warehouse, ["raw-run-2", "raw-run-0"])
    steps = _raw(warehouse, "steps").set_index(["job_id", "step_index"])
    want = {}
    for job in measured[measured.run_id == "raw-run-2"].itertuples():
        for k in range(job.batch_size):
            span = steps.loc[(job.job_id, k + 5)].start_s + steps.loc[(job.job_id, k + 5)].duration_s
            want.setdefault((job.batch_size, k), []).append(span - steps.loc[(job.job_id, k)].start_s)
    got = Warehouse(warehouse).stream_latency(["raw-run-2", "raw-run-0"])
    assert set(got.run_id) == {"raw-run-2"} and len(got) == len(want) == 1 + 2 + 4
    for row in got.itertuples():
        assert row.latency_s == pytest.approx(pd.Series(want[row.batch_size, row.request]).median(), rel=1e-12)

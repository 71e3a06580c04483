"""Synthetic spool files, shaped like the generator's, for load and fault tests.

Written with the generator's own SpoolWriter (atomic files); the records are
made up but complete, so the collector treats them like real ones.
"""

from __future__ import annotations

from pathlib import Path

from spool import SpoolWriter, record
from warehouse import db


def write_spool(spool: str | Path, runs: int, jobs_per_run: int, steps_per_job: int, prefix: str = "syn") -> dict:
    """Write runs x jobs_per_run job files; return the record counts per kind."""
    writer = SpoolWriter(spool)
    counts = {"run": runs, "job": 0, "phase": 0, "step": 0}
    for r in range(runs):
        run_id = f"{prefix}-run-{r:05d}"
        run = record("run", run_id=run_id, sweep_id=f"{prefix}-sweep", started_at="2026-01-01T00:00:00+00:00",
                     host="synthetic", device="cpu", device_name="cpu", model_id="synthetic", task="txt2img",
                     mode="static", height=64, width=64, steps=steps_per_job, guidance_scale=1.0, seed=0)
        for j in range(jobs_per_run):
            job_id = f"{run_id}-job-{j:05d}"
            batch = 2 ** (j % 5)
            rows = [run, record("job", job_id=job_id, run_id=run_id, batch_size=batch, unet_batch=batch,
                                repeat=j // 5, warmup=j < 5, profiled=False,
                                started_at="2026-01-01T00:00:01+00:00", wall_s=0.1 * batch ** 0.5,
                                images=batch, status="ok", error=None, unet_calls=steps_per_job)]
            rows += [record("phase", job_id=job_id, phase=p, start_s=0.01 * i, duration_s=0.01)
                     for i, p in enumerate(("encode_prompt", "prepare", "denoise", "decode", "postprocess"))]
            rows += [record("step", job_id=job_id, call_index=0, step_index=s, timestep=999.0 - s,
                            unet_rows=batch, start_s=0.001 * s, duration_s=0.001) for s in range(steps_per_job)]
            writer.write(run_id, job_id, rows)
            counts["job"] += 1
            counts["phase"] += 5
            counts["step"] += steps_per_job
    return counts


def add_volume(db_path: str | Path, runs: int, jobs_per_run: int, steps_per_job: int, prefix: str = "vol") -> dict:
    """Add a synthetic sweep straight to a warehouse, in SQL (no spool): the same shapes as write_spool's
    records (batch 2**(j % 5), 5 warm-up jobs a run, five phases and `steps_per_job` steps a job), started
    a year before any real run so that the dashboard's default sweep stays the latest. For page timings on a
    warehouse of millions of step records: 10M step records take well under a minute, where a spool of them
    would take many minutes to write and ingest. Returns the record counts per kind."""
    params = {"p": prefix, "runs": runs, "jobs": jobs_per_run, "steps": steps_per_job}
    with db.writer(str(db_path)) as con:
        # 1. Runs, then their jobs (ids as write_spool's), then five phases and the steps of each job.
        con.execute("""
            INSERT INTO runs BY NAME
            SELECT $p || '-run-' || lpad(r::VARCHAR, 5, '0') AS run_id, $p || '-sweep' AS sweep_id,
                   TIMESTAMPTZ '2025-01-01 00:00:00+00' AS started_at, 'synthetic' AS host, 'cpu' AS device,
                   'cpu' AS device_name, 'synthetic' AS model_id, 'txt2img' AS task, 'static' AS mode,
                   64 AS height, 64 AS width, $steps AS steps, 1.0 AS guidance_scale, 0 AS seed,
                   1 AS schema_version
            FROM range($runs) t(r)""", {k: params[k] for k in ("p", "runs", "steps")})
        con.execute("""
            INSERT INTO jobs BY NAME
            SELECT $p || '-run-' || lpad(r::VARCHAR, 5, '0') || '-job-' || lpad(j::VARCHAR, 5, '0') AS job_id,
                   $p || '-run-' || lpad(r::VARCHAR, 5, '0') AS run_id, 2 ** (j % 5) AS batch_size,
                   2 ** (j % 5) AS unet_batch, j // 5 AS "repeat", j < 5 AS warmup, false AS profiled,
                   TIMESTAMPTZ '2025-01-01 00:00:01+00' AS started_at, 0.1 * sqrt(2 ** (j % 5)) AS wall_s,
                   2 ** (j % 5) AS images, 'ok' AS status, $steps AS unet_calls, 1 AS schema_version
            FROM range($runs) t(r), range($jobs) u(j)""", params)
        con.execute("""
            INSERT INTO phases BY NAME
            SELECT job_id, ['encode_prompt', 'prepare', 'denoise', 'decode', 'postprocess'][i + 1] AS phase,
                   0.01 * i AS start_s, 0.01 AS duration_s, 1 AS schema_version
            FROM jobs, range(5) t(i) WHERE starts_with(job_id, $p || '-run-')""", {"p": prefix})
        con.execute("""
            INSERT INTO steps BY NAME
            SELECT job_id, 0 AS call_index, s AS step_index, 999.0 - s AS timestep, unet_batch AS unet_rows,
                   0.001 * s AS start_s, 0.001 AS duration_s, 1 AS schema_version
            FROM jobs, range($steps) t(s) WHERE starts_with(job_id, $p || '-run-')""",
                    {"p": prefix, "steps": steps_per_job})
    jobs = runs * jobs_per_run
    return {"run": runs, "job": jobs, "phase": 5 * jobs, "step": jobs * steps_per_job}

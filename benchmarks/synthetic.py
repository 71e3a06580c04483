"""Synthetic spool files, shaped like the generator's, for load and fault tests.

Written with the generator's own SpoolWriter (atomic files); the records are
made up but complete, so the collector treats them like real ones.
"""

from __future__ import annotations

from pathlib import Path

from spool import SpoolWriter, record


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

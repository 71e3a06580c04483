"""The warehouse as one object: its path, read-only connections, and the named queries the dashboard uses.

`Warehouse(path)` holds the path of the DuckDB file; each query method opens a short read-only connection
(db.reader, with its busy and damaged-file handling) and returns a pandas DataFrame, so callers never hold
the file. A person's own SQL goes through `Warehouse.run_sql` (warehouse/sandbox.py).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import pandas as pd

from . import db, sandbox

RUN_LABEL = ("r.task || ' ' || r.height || 'x' || r.width || ' ' || r.mode "
             # the steps, where the run's sweep ran more than one step count (--steps 2,5,10,20)
             "|| CASE WHEN (SELECT count(DISTINCT r2.steps) FROM runs r2 WHERE r2.sweep_id = r.sweep_id) > 1 "
             "THEN ' ' || r.steps || ' steps' ELSE '' END "
             "|| CASE WHEN r.cfg THEN ' cfg ' || r.guidance_scale ELSE '' END "
             "|| CASE WHEN r.vae_slicing THEN ' vae slicing' ELSE '' END "
             "|| CASE WHEN coalesce(r.attention, 'sdpa') <> 'sdpa' THEN ' ' || r.attention || ' attention' ELSE '' END "
             "|| CASE WHEN r.replicas IS NOT NULL "
             "THEN ' · worker ' || (r.replica_index + 1) || ' of ' || r.replicas ELSE '' END "
             "|| ' (' || right(r.run_id, 8) || ')'")
# Where a run ran, as a facet or column name: the device's name, and on a GPU the start of its UUID (two cards of
# one name are two devices).
DEVICE_LABEL = ("coalesce(r.device_name, r.device) "
                "|| CASE WHEN r.gpu_uuid IS NOT NULL THEN ' ' || left(r.gpu_uuid, 12) ELSE '' END")


def _steps_of(jobs: str, steps: str = "steps") -> str:
    """A filter on the steps table (as `steps`) that changes no result, only speed: the job_id range of the
    jobs asked for (`jobs`, a CTE with job_id). Its bounds are constants DuckDB checks against each row
    group's min and max, so it skips the row groups of other jobs' steps (a job's steps are ingested
    together) instead of reading every job_id of the table (10M step records: most of a query's time)."""
    return f"{steps}.job_id BETWEEN (SELECT min(job_id) FROM {jobs}) AND (SELECT max(job_id) FROM {jobs})"


# Starting points for a person's own SQL (the SQL page offers them).
EXAMPLE_QUERIES = {
    "Throughput per batch": "SELECT * FROM throughput_by_batch ORDER BY run_id, batch_size",
    "Where the time goes": "SELECT run_id, batch_size, phase, round(median_share, 3) AS share\n"
                           "FROM phase_breakdown ORDER BY run_id, batch_size, phase",
    "Operator mix": "SELECT * FROM op_mix ORDER BY run_id, batch_size, share DESC",
    "Failed jobs": "SELECT * FROM jobs_failed",
    "Effects and papers": "SELECT key, short, effect, figure FROM papers",
    "Latency under load": "SELECT policy, servers, arrival, offered_rps, clients, p50_s, p99_s, predicted_p99_s\n"
                          "FROM load_latency ORDER BY policy, servers, arrival, offered_rps, clients",
}


@dataclass(frozen=True)
class Warehouse:
    """One warehouse file. Holds only its path: every call opens (and closes) its own read-only connection."""

    path: str

    def __post_init__(self):
        object.__setattr__(self, "path", os.fspath(self.path))

    def df(self, sql: str, params: list | dict | None = None) -> pd.DataFrame:
        """One read-only query: NoWarehouse, WarehouseBusy or CorruptWarehouse (warehouse/db.py) for the file."""
        return db.query_df(self.path, sql, params)

    def held(self):
        """A block in which this process keeps the file open read-only, so that its queries skip opening it
        (db.held): `with wh.held(): render()` (pages/_shared.py guarded)."""
        return db.held(self.path)

    def run_sql(self, sql: str, max_rows: int = 1000, time_limit_s: float = 10.0) -> sandbox.SqlResult:
        """A person's own SQL, sandboxed (warehouse/sandbox.py): read-only, one statement, a time limit, a row cap."""
        return sandbox.run_sql(self.path, sql, max_rows, time_limit_s)

    def _labelled(self, view: str, run_ids: list[str], order: str, columns: str = "") -> pd.DataFrame:
        """A per-run view's rows for the given runs, each with its run's label (and `columns` of runs r)."""
        return self.df(f"""
            SELECT v.*, {RUN_LABEL} AS label{columns}
            FROM {view} v JOIN runs r USING (run_id)
            WHERE list_contains($run_ids, v.run_id)
            ORDER BY {order}
        """, {"run_ids": list(run_ids)})

    def sweeps(self) -> pd.DataFrame:
        """One row per sweep, newest first: sweep_id, started_at, runs, tasks, sizes; a load run with no sweep runs
        of its own (python -m generator load) is a sweep too, of 0 runs and task 'load'."""
        return self.df("""
            WITH parts AS (
                SELECT sweep_id, started_at, 1 AS run, task, height || 'x' || width AS size, model_id, device
                FROM runs
                UNION ALL
                SELECT sweep_id, started_at, 0, 'load', height || 'x' || width, model_id, device FROM load_levels
            )
            SELECT sweep_id,
                   min(started_at)                                       AS started_at,
                   sum(run)                                              AS runs,
                   string_agg(DISTINCT task, ', ' ORDER BY task)         AS tasks,
                   string_agg(DISTINCT size, ', ')                       AS sizes,
                   any_value(model_id)                                   AS model_id,
                   any_value(device)                                     AS device
            FROM parts
            GROUP BY sweep_id
            ORDER BY started_at DESC
        """)

    def runs(self, sweep_id: str | None = None) -> pd.DataFrame:
        """Runs (of one sweep, or all), newest first, with a readable label and job counts."""
        return self.df(f"""
            SELECT r.*, {RUN_LABEL} AS label,
                   count(j.job_id)                                   AS jobs,
                   count(j.job_id) FILTER (WHERE j.status <> 'ok')   AS failed_jobs
            FROM runs r LEFT JOIN jobs j USING (run_id)
            WHERE $sweep_id IS NULL OR r.sweep_id = $sweep_id
            GROUP BY ALL
            ORDER BY r.started_at DESC, r.height, r.width
        """, {"sweep_id": sweep_id})

    def throughput(self, run_ids: list[str]) -> pd.DataFrame:
        """throughput_by_batch for the given runs, with each run's label, task and size."""
        return self._labelled("throughput_by_batch", run_ids, "r.height, r.width, v.run_id, v.batch_size", """,
            r.task, r.height, r.width, r.mode, r.cfg, r.device, r.model_id,
            coalesce(r.vae_slicing, false) AS vae_slicing, r.host, """ + DEVICE_LABEL + """ AS device_label,
            r.replicas, r.replica_index""")

    def replica_throughput(self, sweep_id: str) -> pd.DataFrame:
        """The view replica_throughput for one sweep (empty without replica runs): by run setting, level, batch size."""
        return self.df("""
            SELECT * FROM replica_throughput
            WHERE sweep_id = $sweep_id
            ORDER BY model_id, task, height, width, mode, cfg, vae_slicing, replicas, replica_group, batch_size
        """, {"sweep_id": sweep_id})

    def replica_jobs(self, sweep_id: str) -> pd.DataFrame:
        """The measured jobs of a sweep's replica runs (the times replica_throughput takes its medians of), for the
        interval of each worker's median."""
        return self.df("""
            SELECT r.replica_group, j.run_id, j.batch_size, j.wall_s
            FROM measured_jobs j JOIN runs r USING (run_id)
            WHERE r.sweep_id = $sweep_id AND r.replica_group IS NOT NULL
            ORDER BY r.replica_group, j.run_id, j.batch_size, j."repeat"
        """, {"sweep_id": sweep_id})



    def job_costs(self, run_ids: list[str]) -> pd.DataFrame:
        """One row per measured job: its time and the time of each phase (summed over the job's calls), and its
        median denoising step: the points the cost model (warehouse/costmodel.py) is fitted to."""
        # The run filter first: a median over every job's steps would read the whole steps table (10M records:
        # seconds) where the runs asked for hold a small part of it; then only their job_id range (_steps_of).
        return self.df(f"""
            WITH mj AS (
                SELECT * FROM measured_jobs WHERE list_contains($run_ids, run_id)
            ), ph AS (
                SELECT job_id,
                       sum(duration_s) FILTER (WHERE phase = 'encode_prompt') AS encode_s,
                       sum(duration_s) FILTER (WHERE phase = 'denoise')       AS denoise_s,
                       sum(duration_s) FILTER (WHERE phase = 'decode')        AS decode_s
                FROM phases SEMI JOIN mj USING (job_id) GROUP BY job_id
            ), st AS (
                SELECT job_id, median(duration_s) AS step_s FROM steps SEMI JOIN mj USING (job_id)
                WHERE {_steps_of("mj")} GROUP BY job_id
            )
            SELECT j.run_id, {RUN_LABEL} AS label, r.mode, r.height, r.width, r.cfg, r.task, r.model_id,
                   coalesce(r.vae_slicing, false) AS vae_slicing, r.device, r.dtype, r.threads, r.steps,
                   coalesce(r.attention, 'sdpa') AS attention, coalesce(r.family, 'unet') AS family,
                   j.job_id, j.batch_size,
                   j."repeat", j.wall_s, ph.encode_s, ph.denoise_s, ph.decode_s, st.step_s
            FROM mj j JOIN runs r USING (run_id) LEFT JOIN ph USING (job_id) LEFT JOIN st USING (job_id)
            ORDER BY r.height, r.width, j.run_id, j.batch_size, j."repeat"
        """, {"run_ids": list(run_ids)})

    def roofline(self, run_ids: list[str]) -> pd.DataFrame:
        """roofline_by_batch for the given runs, with each run's label."""
        return self._labelled("roofline_by_batch", run_ids, "v.run_id, v.batch_size")

    def ingest_marker(self) -> pd.DataFrame:
        """How much has been ingested: changes whenever the collector adds files."""
        return self.df("SELECT count(*) AS files, max(ingested_at) AS last FROM ingested_files")

    def phase_breakdown(self, run_ids: list[str]) -> pd.DataFrame:
        """Median time per phase, per run and batch size (measured jobs)."""
        return self._labelled("phase_breakdown", run_ids, "v.run_id, v.batch_size, v.phase")

    def step_profile(self, run_ids: list[str]) -> pd.DataFrame:
        """Median step time per run, batch size and step index (measured jobs), aggregated in DuckDB."""
        return self.df(f"""
            WITH mj AS (
                SELECT job_id FROM measured_jobs WHERE list_contains($run_ids, run_id)
            )
            SELECT j.run_id, {RUN_LABEL} AS label, j.batch_size, s.step_index,
                   median(s.duration_s) AS median_s, median(s.unet_rows) AS unet_rows, count(*) AS samples
            FROM steps s JOIN measured_jobs j USING (job_id) JOIN runs r USING (run_id)
            WHERE list_contains($run_ids, j.run_id) AND {_steps_of("mj", "s")}
            GROUP BY ALL
            ORDER BY j.run_id, j.batch_size, s.step_index
        """, {"run_ids": list(run_ids)})

    def stream_latency(self, run_ids: list[str]) -> pd.DataFrame:
        """Stream mode (measured jobs): each request's latency, from the UNet call it entered to the one it left on."""
        return self.df(f"""
            WITH jobs_ok AS (
                SELECT j.job_id, j.run_id, j.batch_size, r.steps
                FROM measured_jobs j JOIN runs r USING (run_id)
                WHERE r.mode = 'stream' AND list_contains($run_ids, j.run_id)
            ), per_request AS (
                SELECT j.run_id, j.batch_size, first.step_index AS request,
                       last.start_s + last.duration_s - first.start_s AS latency_s
                FROM jobs_ok j
                JOIN steps first ON first.job_id = j.job_id AND first.step_index < j.batch_size
                JOIN steps last ON last.job_id = j.job_id AND last.step_index = first.step_index + j.steps - 1
                WHERE {_steps_of("jobs_ok", "first")} AND {_steps_of("jobs_ok", "last")}
            )
            SELECT p.run_id, {RUN_LABEL} AS label, p.batch_size, p.request, median(p.latency_s) AS latency_s
            FROM per_request p JOIN runs r USING (run_id)
            GROUP BY ALL
            ORDER BY p.run_id, p.batch_size, p.request
        """, {"run_ids": list(run_ids)})

    def op_mix(self, run_ids: list[str]) -> pd.DataFrame:
        """UNet time by operator category per run and batch size (profiled jobs)."""
        return self._labelled("op_mix", run_ids, "v.run_id, v.batch_size, v.category")

    def family_runs(self, sweep_id: str) -> list[str]:
        """The runs of a sweep, and beside them the profiled runs of the other denoiser family (UNet or
        transformer) at a size the sweep ran, on the same host and device: those of the newest such sweep."""
        rows = self.df("""
            WITH mine AS (SELECT * FROM runs WHERE sweep_id = $sweep_id),
            partner AS (
                SELECT r.run_id, r.sweep_id, r.started_at FROM runs r
                WHERE r.sweep_id <> $sweep_id
                  AND coalesce(r.family, 'unet') NOT IN (SELECT coalesce(family, 'unet') FROM mine)
                  AND EXISTS (SELECT 1 FROM jobs j WHERE j.run_id = r.run_id AND j.profiled AND j.status = 'ok')
                  AND EXISTS (SELECT 1 FROM mine m WHERE m.height = r.height AND m.width = r.width
                              AND m.host IS NOT DISTINCT FROM r.host AND m.device = r.device
                              AND m.device_name IS NOT DISTINCT FROM r.device_name)
            ),
            newest AS (SELECT sweep_id FROM partner ORDER BY started_at DESC LIMIT 1)
            SELECT run_id FROM mine
            UNION ALL
            SELECT run_id FROM partner WHERE sweep_id IN (SELECT sweep_id FROM newest)
        """, {"sweep_id": sweep_id})
        return list(rows.run_id)

    def family_mix(self, run_ids: list[str]) -> pd.DataFrame:
        """op_mix rows with each run's denoiser family, attention kernel, model and size (profiled jobs)."""
        return self._labelled("op_mix", run_ids, "family, r.model_id, v.run_id, v.batch_size, v.category", """,
            coalesce(r.family, 'unet') AS family, coalesce(r.attention, 'sdpa') AS attention, r.model_id,
            r.height, r.width, r.sweep_id""")

    def attention_levels(self, run_ids: list[str]) -> pd.DataFrame:
        """Attention in profiled jobs by query and key length (tokens) and the kernel that ran, per run and batch
        size: calls, time, FLOPs, and the shares of the job's attention time and of its UNet time."""
        return self.df(f"""
            WITH a AS (
                SELECT j.run_id, j.batch_size, c.query_tokens, c.key_tokens, c.kernel,
                       sum(c.calls) AS calls, sum(c.time_s) AS time_s, sum(c.flops) AS flops
                FROM attention_calls c JOIN jobs j USING (job_id)
                WHERE list_contains($run_ids, j.run_id) AND j.status = 'ok'
                GROUP BY ALL
            ), u AS (
                SELECT run_id, batch_size, sum(time_s) AS unet_s FROM op_mix
                WHERE list_contains($run_ids, run_id) GROUP BY ALL
            )
            SELECT a.*, a.time_s / sum(a.time_s) OVER (PARTITION BY a.run_id, a.batch_size) AS share_of_attention,
                   a.time_s / u.unet_s AS share_of_unet, {RUN_LABEL} AS label,
                   coalesce(r.family, 'unet') AS family, coalesce(r.attention, 'sdpa') AS attention, r.model_id, r.height, r.width
            FROM a JOIN runs r USING (run_id) LEFT JOIN u USING (run_id, batch_size)
            ORDER BY a.run_id, a.batch_size, a.query_tokens DESC, a.key_tokens
        """, {"run_ids": list(run_ids)})

    def telemetry(self, run_id: str) -> pd.DataFrame:
        """The run's telemetry, one row per second."""
        return self.df("SELECT * FROM telemetry WHERE run_id = $run_id ORDER BY second",
                           {"run_id": run_id})

    def run_samples(self, run_ids: list[str]) -> pd.DataFrame:
        """The telemetry samples of the given runs, with what the rest of the machine did (contention).
        A reading of other processes' CPU beyond every CPU of the machine (runs.cpu_count) is NULL: samplers
        before the fix in generator/measure/telemetry.py read one counter tick over a moment as many cores at a run's
        first sample."""
        return self.df("""
            SELECT s.run_id, s.t, s.cpu_util,
                   CASE WHEN s.other_cpu_util > 100 * r.cpu_count THEN NULL ELSE s.other_cpu_util END AS other_cpu_util,
                   s.cpu_steal, s.cpu_mhz, s.gpu_util, s.sm_clock_mhz, s.gpu_throttle_reasons, s.gpu_other_processes
            FROM samples s JOIN runs r USING (run_id)
            WHERE list_contains($run_ids, s.run_id) ORDER BY s.run_id, s.t
        """, {"run_ids": list(run_ids)})

    def job_marks(self, run_id: str) -> pd.DataFrame:
        """When each job of a run started and ended, for marking job boundaries on a time axis."""
        return self.df("""
            SELECT job_id, batch_size, warmup, status, started_at,
                   started_at + to_microseconds(CAST(wall_s * 1e6 AS BIGINT)) AS ended_at
            FROM jobs WHERE run_id = $run_id ORDER BY started_at
        """, {"run_id": run_id})

    def memory_by_batch(self, run_ids: list[str]) -> pd.DataFrame:
        """Peak memory per run and batch size (measured jobs only: a warm-up job and the profiler raise it), and
        whether every job of that size fitted (every job: a warm-up that ran out of memory did not fit)."""
        return self.df(f"""
            SELECT j.run_id, {RUN_LABEL} AS label, r.device, j.batch_size,
                   max(m.peak_mem_bytes) AS peak_mem_bytes,
                   bool_and(j.status = 'ok') AS fitted,
                   string_agg(DISTINCT j.status, ', ') AS statuses
            FROM jobs j JOIN runs r USING (run_id) LEFT JOIN measured_jobs m USING (job_id)
            WHERE list_contains($run_ids, j.run_id)
            GROUP BY ALL
            ORDER BY j.run_id, j.batch_size
        """, {"run_ids": list(run_ids)})

    def memory_by_phase(self, run_ids: list[str]) -> pd.DataFrame:
        """Peak memory of each phase of each measured job (what warehouse/memory.py fits per phase), with the
        run's device memory."""
        return self.df(f"""
            SELECT j.run_id, {RUN_LABEL} AS label, r.device, r.device_memory_bytes, r.vae_slicing, j.job_id,
                   j.batch_size, p.phase, p.peak_mem_bytes
            FROM phases p JOIN measured_jobs j USING (job_id) JOIN runs r USING (run_id)
            WHERE list_contains($run_ids, j.run_id) AND p.peak_mem_bytes IS NOT NULL
            ORDER BY j.run_id, j.batch_size, p.phase
        """, {"run_ids": list(run_ids)})

    def image_checks(self, run_ids: list[str]) -> pd.DataFrame:
        """Every comparison of an image with the same seed elsewhere (image_checks), with both jobs' run, mode and
        batch size; and the saved picture of each side where a job kept it: the reference's own, else one the
        same run kept of the same seed at the reference's batch size (`ref_path_same_job` says which)."""
        return self.df(f"""
            SELECT c.job_id, c."index", c.seed, c.against, c.ref_job_id, c.ref_index, c.max_abs_diff,
                   c.mean_abs_diff, c.psnr_db, c.same_shown, j.run_id, {RUN_LABEL} AS label, r.mode, r.vae_slicing, r.cfg,
                   r.model_id, coalesce(r.family, 'unet') AS family,
                   r.height, r.width, r.task, j.batch_size, j.warmup,
                   rj.run_id AS ref_run_id, rr.mode AS ref_mode, rr.vae_slicing AS ref_vae_slicing,
                   rj.batch_size AS ref_batch_size, i.path,
                   coalesce(ri.path, (SELECT min(i2.path) FROM images i2 JOIN jobs j2 ON j2.job_id = i2.job_id
                                      WHERE j2.run_id = rj.run_id AND j2.batch_size = rj.batch_size
                                        AND i2.seed = c.seed)) AS ref_path,
                   ri.path IS NOT NULL AS ref_path_same_job
            FROM image_checks c
            JOIN jobs j USING (job_id) JOIN runs r ON r.run_id = j.run_id
            JOIN jobs rj ON rj.job_id = c.ref_job_id JOIN runs rr ON rr.run_id = rj.run_id
            LEFT JOIN images i ON i.job_id = c.job_id AND i."index" = c."index"
            LEFT JOIN images ri ON ri.job_id = c.ref_job_id AND ri."index" = c.ref_index
            WHERE list_contains($run_ids, j.run_id)
            ORDER BY r.height, j.run_id, j.batch_size, c."index"
        """, {"run_ids": list(run_ids)})

    def jobs_with_images(self, run_ids: list[str]) -> pd.DataFrame:
        """Jobs that kept images, newest run first."""
        return self.df(f"""
            SELECT j.job_id, j.run_id, {RUN_LABEL} AS label, r.task, r.height, j.batch_size, count(i.path) AS images
            FROM jobs j JOIN runs r USING (run_id) JOIN images i USING (job_id)
            WHERE list_contains($run_ids, j.run_id)
            GROUP BY ALL
            ORDER BY r.height, label, j.batch_size
        """, {"run_ids": list(run_ids)})

    def images(self, job_id: str) -> pd.DataFrame:
        """The images of one job with their seed, prompt and path, and what each shows (migration 13)."""
        return self.df('SELECT "index", seed, prompt, path, mask_path, input_path, shown_colour, shown_shape, '
                       'shown_background, colours_right, shape_right FROM images WHERE job_id = $job_id '
                       'ORDER BY "index"',
                       {"job_id": job_id})

    def cfg_pairs(self, run_ids: list[str], limit: int = 8) -> pd.DataFrame:
        """The same seed and prompt drawn with CFG off and on: kept pictures of two runs that differ only in CFG
        (same model, task, size, steps and mode), at the largest batch size both kept; one row per seed."""
        return self.df("""
            SELECT a.seed, a.prompt, a.path AS off_path, b.path AS on_path, rb.guidance_scale, ja.batch_size,
                   ra.mode, ra.height, ra.width, ra.steps, a.colours_right AS off_right, b.colours_right AS on_right
            FROM images a JOIN jobs ja ON ja.job_id = a.job_id JOIN runs ra ON ra.run_id = ja.run_id
            JOIN images b ON b.seed = a.seed AND b.prompt = a.prompt
            JOIN jobs jb ON jb.job_id = b.job_id AND jb.batch_size = ja.batch_size
            JOIN runs rb ON rb.run_id = jb.run_id
            WHERE list_contains($run_ids, ra.run_id) AND list_contains($run_ids, rb.run_id)
              AND NOT coalesce(ra.cfg, false) AND rb.cfg AND ra.task = 'txt2img'
              AND (ra.model_id, ra.task, ra.height, ra.width, ra.steps, ra.mode)
                  = (rb.model_id, rb.task, rb.height, rb.width, rb.steps, rb.mode)
            QUALIFY row_number() OVER (PARTITION BY a.seed, a.prompt
                                       ORDER BY ja.batch_size DESC, ja.started_at, jb.started_at) = 1
            ORDER BY a.seed
            LIMIT $limit
        """, {"run_ids": list(run_ids), "limit": limit})

    def picture_reads(self, run_ids: list[str]) -> pd.DataFrame:
        """Per run and batch size: how many pictures of its first job that kept them were read against a caption
        prompt, and how many showed the asked colours and shape (images' shown_* reading), with the run's
        settings and its median time per image (throughput_by_batch). One job per (run, batch size), so no seed
        is counted twice (every job of a run draws the same seeds)."""
        return self.df(f"""
            WITH kept AS (
                SELECT j.run_id, j.batch_size, arg_min(j.job_id, j.started_at) AS job_id
                FROM measured_jobs j WHERE list_contains($run_ids, j.run_id)
                  AND EXISTS (SELECT 1 FROM images i WHERE i.job_id = j.job_id AND i.colours_right IS NOT NULL)
                GROUP BY ALL)
            SELECT k.run_id, {RUN_LABEL} AS label, r.model_id, r.task, r.height, r.width, r.mode, r.cfg,
                   r.guidance_scale, coalesce(r.vae_slicing, false) AS vae_slicing, r.steps, k.batch_size,
                   t.s_per_image, count(*) AS pictures, count_if(i.colours_right) AS colours_right,
                   count_if(i.shape_right) AS shape_right
            FROM kept k JOIN runs r USING (run_id) JOIN images i ON i.job_id = k.job_id
            LEFT JOIN throughput_by_batch t ON t.run_id = k.run_id AND t.batch_size = k.batch_size
            WHERE i.colours_right IS NOT NULL
            GROUP BY ALL
            ORDER BY r.height, r.steps, k.run_id, k.batch_size
        """, {"run_ids": list(run_ids)})

    def papers(self) -> pd.DataFrame:
        """The paper library (papers.toml, loaded into the warehouse)."""
        return self.df("SELECT * FROM papers ORDER BY key")

    def schema_objects(self) -> pd.DataFrame:
        """Tables and views with their columns, for the SQL page's reference list."""
        return self.df("""
            SELECT c.table_name AS name,
                   CASE WHEN v.view_name IS NULL THEN 'table' ELSE 'view' END AS type,
                   string_agg(c.column_name || ' ' || c.data_type, ', ' ORDER BY c.ordinal_position) AS columns
            FROM information_schema.columns c
            LEFT JOIN duckdb_views() v ON v.view_name = c.table_name AND NOT v.internal
            WHERE c.table_schema = 'main'
            GROUP BY ALL
            ORDER BY type, name
        """)

    def load_levels(self, sweep_id: str) -> pd.DataFrame:
        """The load levels of a sweep (view load_latency, with servers and router): by policy, arrival, offered
        load (then clients, then servers)."""
        return self.df("""
            SELECT * FROM load_latency
            WHERE sweep_id = $sweep_id
            ORDER BY policy, arrival, offered_rps NULLS LAST, clients NULLS LAST, servers, level_id
        """, {"sweep_id": sweep_id})

    def load_latencies(self, sweep_id: str) -> pd.DataFrame:
        """Per load level of a sweep: the latencies of its ok requests, smallest first (level_id, latencies)."""
        return self.df("""
            SELECT r.level_id, list(r.latency_s ORDER BY r.latency_s) AS latencies
            FROM requests r JOIN load_levels l USING (level_id)
            WHERE l.sweep_id = $sweep_id AND r.status = 'ok'
            GROUP BY r.level_id
        """, {"sweep_id": sweep_id})

    def load_requests(self, level_ids: list[str]) -> pd.DataFrame:
        """Every request of the given load levels, with its level's policy, load, servers (1 for a level
        recorded before servers existed) and endpoint."""
        return self.df("""
            SELECT r.*, l.policy, l.arrival, l.offered_rps, l.clients, l.load_factor,
                   coalesce(l.servers, 1) AS servers, l.router, l.endpoint
            FROM requests r JOIN load_levels l USING (level_id)
            WHERE list_contains($level_ids, r.level_id)
            ORDER BY l.policy, l.arrival, l.offered_rps NULLS LAST, l.clients NULLS LAST, servers, r.level_id,
                     r.request_id
        """, {"level_ids": list(level_ids)})

    def load_goodput(self, sweep_id: str, objective_s: float) -> pd.DataFrame:
        """Per load level of a sweep: the ok requests within a latency objective (`within`), their share of all
        the level's requests (`share_within`: a failed request misses it), and goodput_rps: those requests per
        second of the level, over the same span as load_latency's throughput_rps."""
        return self.df("""
            WITH met AS (
                SELECT level_id,
                       count(*) FILTER (WHERE status = 'ok' AND latency_s <= $objective_s) AS within
                FROM requests GROUP BY level_id
            )
            SELECT l.level_id, l.policy, l.servers, l.endpoint, l.arrival, l.offered_rps, l.clients, l.load_factor,
                   l.requests,
                   l.requests_ok, l.throughput_rps, l.p99_s,
                   $objective_s                                     AS objective_s,
                   coalesce(m.within, 0)                            AS within,
                   coalesce(m.within, 0) / nullif(l.requests, 0)    AS share_within,
                   coalesce(m.within, 0) / nullif(l.span_s, 0)      AS goodput_rps
            FROM load_latency l LEFT JOIN met m USING (level_id)
            WHERE l.sweep_id = $sweep_id
            ORDER BY l.policy, l.arrival, l.offered_rps NULLS LAST, l.clients NULLS LAST, l.level_id
        """, {"sweep_id": sweep_id, "objective_s": float(objective_s)})

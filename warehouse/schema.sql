-- The warehouse schema: the public contract for ad-hoc SQL (documented in warehouse/README.md).
-- Tables mirror the spool records of spool/contract.py (one table per record kind; ARCHITECTURE.md);
-- times are seconds, memory bytes, power watts, clocks MHz, FLOPs counts.
--
-- Layout: numbered migrations, applied once each and in order (recorded in
-- schema_migrations), then the views, re-created when the collector opens a file
-- whose schema_state names another version of this file or of papers.toml. A change to a table is a new migration at the end; never edit an
-- applied one.

-- migration 1: the record tables and the collector's bookkeeping
-- Exactly-once is kept by ingested_files (one transaction per batch of files), so the
-- high-volume tables (phases, steps, samples) carry no key: an index there would cost
-- about a third of the ingest time. runs and jobs keep theirs.
CREATE TABLE IF NOT EXISTS runs (
    run_id            VARCHAR PRIMARY KEY,
    sweep_id          VARCHAR NOT NULL,
    started_at        TIMESTAMPTZ NOT NULL,
    host              VARCHAR,
    device            VARCHAR NOT NULL,   -- cpu | cuda | mps
    device_name       VARCHAR,
    torch_version     VARCHAR,
    diffusers_version VARCHAR,
    model_id          VARCHAR NOT NULL,
    model_params      BIGINT,
    task              VARCHAR NOT NULL,   -- txt2img | inpaint
    mode              VARCHAR NOT NULL,   -- sequential | static | stream
    height            INTEGER NOT NULL,   -- pixels
    width             INTEGER NOT NULL,   -- pixels
    steps             INTEGER NOT NULL,
    guidance_scale    DOUBLE,
    dtype             VARCHAR,
    scheduler         VARCHAR,
    seed              BIGINT,
    cfg               BOOLEAN,            -- classifier-free guidance on (UNet rows doubled)
    threads           INTEGER,            -- torch intra-op threads
    peak_flops        DOUBLE,             -- the device's peak FLOP/s for dtype (GPU datasheet or CPU estimate)
    peak_flops_source VARCHAR,            -- where peak_flops comes from
    telemetry_gpu     BOOLEAN,            -- samples carry GPU fields (NVML present)
    tags              JSON,
    schema_version    INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS jobs (
    job_id              VARCHAR PRIMARY KEY,
    run_id              VARCHAR NOT NULL,
    batch_size          INTEGER NOT NULL,  -- images asked of this pipeline call
    unet_batch          INTEGER,           -- rows per UNet call (2x batch with CFG)
    "repeat"            INTEGER NOT NULL,  -- 0-based, warm-up jobs first
    warmup              BOOLEAN NOT NULL,
    profiled            BOOLEAN,           -- run under torch.profiler (slower): excluded from throughput
    started_at          TIMESTAMPTZ NOT NULL,
    wall_s              DOUBLE NOT NULL,   -- the whole job (all of its pipeline calls)
    images              INTEGER NOT NULL,  -- images produced
    status              VARCHAR NOT NULL,  -- ok | oom | error
    error               VARCHAR,
    peak_mem_bytes      BIGINT,            -- CUDA max allocated, or peak RSS on CPU
    unet_calls          INTEGER,           -- UNet forward calls in the job
    unet_rows           INTEGER,           -- latent rows summed over those calls
    unet_flops_per_call DOUBLE,            -- FLOPs of the job's fullest UNet call
    unet_flops_total    DOUBLE,            -- FLOPs of all UNet calls of the job
    unet_profiled_s     DOUBLE,            -- UNet time seen by the profiler (profiled jobs)
    schema_version      INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS phases (
    job_id         VARCHAR NOT NULL,
    phase          VARCHAR NOT NULL,  -- encode_prompt | prepare | denoise | decode | postprocess
    start_s        DOUBLE NOT NULL,   -- from the start of the job's pipeline call
    duration_s     DOUBLE NOT NULL,
    schema_version INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS steps (
    job_id         VARCHAR NOT NULL,
    call_index     INTEGER NOT NULL,  -- pipeline call within the job (sequential: one per image)
    step_index     INTEGER NOT NULL,  -- denoising step (stream: UNet call) within that call
    timestep       DOUBLE,            -- NULL in stream mode, where rows sit at different timesteps
    unet_rows      INTEGER,           -- latents in this step's UNet call
    start_s        DOUBLE NOT NULL,   -- from the start of the job
    duration_s     DOUBLE NOT NULL,
    schema_version INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS ops (
    job_id         VARCHAR NOT NULL,
    category       VARCHAR NOT NULL,  -- conv | attention | linear | norm | elementwise | other | overhead
    self_time_s    DOUBLE,
    calls          BIGINT,
    flops          DOUBLE,
    schema_version INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS samples (
    run_id          VARCHAR NOT NULL,
    t               DOUBLE NOT NULL,  -- UTC epoch seconds
    device_index    INTEGER,
    gpu_util        DOUBLE,           -- percent
    sm_active       DOUBLE,           -- percent
    mem_used_bytes  BIGINT,
    mem_total_bytes BIGINT,
    power_w         DOUBLE,
    sm_clock_mhz    DOUBLE,
    temp_c          DOUBLE,
    cpu_util        DOUBLE,           -- percent of one core
    rss_bytes       BIGINT,
    schema_version  INTEGER NOT NULL
);

CREATE TABLE IF NOT EXISTS images (
    job_id         VARCHAR NOT NULL,
    "index"        INTEGER NOT NULL,
    seed           BIGINT,
    prompt         VARCHAR,
    path           VARCHAR,           -- PNG under the generator's output folder
    schema_version INTEGER NOT NULL
);

-- Bookkeeping of the collector: what was ingested (exactly once) and what was refused.
CREATE TABLE IF NOT EXISTS ingested_files (
    file_id      VARCHAR PRIMARY KEY,  -- path relative to the spool folder
    content_hash VARCHAR NOT NULL,     -- sha256 of the file's bytes
    records      INTEGER NOT NULL,
    ingested_at  TIMESTAMPTZ NOT NULL
);

CREATE TABLE IF NOT EXISTS quarantined_files (
    file_id        VARCHAR NOT NULL,
    content_hash   VARCHAR NOT NULL,
    reason         VARCHAR NOT NULL,
    quarantined_at TIMESTAMPTZ NOT NULL
);

-- migration 2: the paper library (rows loaded from papers.toml: apply_schema, schema_state)
CREATE TABLE IF NOT EXISTS papers (
    key      VARCHAR PRIMARY KEY,  -- stable id the dashboard links to
    title    VARCHAR NOT NULL,
    short    VARCHAR NOT NULL,     -- short name for chart notes
    arxiv    VARCHAR,              -- arXiv identifier, '' if none given
    url      VARCHAR,              -- the paper's page
    github   VARCHAR,              -- code, '' if none given
    effect   VARCHAR NOT NULL,     -- the effect in the measurements it explains
    explains VARCHAR NOT NULL,     -- how
    figure   VARCHAR               -- the figure it reports, to compare with
);

-- migration 3: the mask of an inpainted image
ALTER TABLE images ADD COLUMN IF NOT EXISTS mask_path VARCHAR;  -- PNG of the mask (inpaint only)

-- migration 4: drop samples.sm_active (NVML's utilisation rates do not report SM activity; never written)
ALTER TABLE samples DROP COLUMN sm_active;

-- migration 5: how the run's arithmetic ran and what the device measurably reaches
-- math_mode is the precision the UNet's convolutions run in ('tf32' for float32 on a GPU
-- that allows TF32), which picks the datasheet peak; the ceilings are timed at the start
-- of each run, on its device, in its dtype (an empirical roofline's two roofs).
ALTER TABLE runs ADD COLUMN IF NOT EXISTS math_mode VARCHAR;                -- float32 | tf32 | float16 | bfloat16
ALTER TABLE runs ADD COLUMN IF NOT EXISTS tf32_matmul BOOLEAN;              -- torch.backends.cuda.matmul.allow_tf32 (GPU)
ALTER TABLE runs ADD COLUMN IF NOT EXISTS tf32_cudnn BOOLEAN;               -- torch.backends.cudnn.allow_tf32 (GPU)
ALTER TABLE runs ADD COLUMN IF NOT EXISTS gpu_uuid VARCHAR;                 -- the GPU's UUID (NVML and torch agree on it)
ALTER TABLE runs ADD COLUMN IF NOT EXISTS ceiling_matmul_flops DOUBLE;      -- measured FLOP/s of a large matrix product
ALTER TABLE runs ADD COLUMN IF NOT EXISTS ceiling_conv_flops DOUBLE;        -- measured FLOP/s of a 3x3 convolution
ALTER TABLE runs ADD COLUMN IF NOT EXISTS ceiling_copy_bytes_per_s DOUBLE;  -- measured bytes/s of a large copy (read + write)
ALTER TABLE runs ADD COLUMN IF NOT EXISTS unet_weight_bytes BIGINT;         -- bytes of the UNet's weights: read at least once per call

-- migration 6: how far to trust a measurement: rounds, why a run stopped, and what else the machine did
ALTER TABLE runs ADD COLUMN IF NOT EXISTS rounds INTEGER;                 -- measured rounds the run took part in
ALTER TABLE runs ADD COLUMN IF NOT EXISTS stop_reason VARCHAR;            -- why its rounds stopped (repeats, target met, cap)
ALTER TABLE runs ADD COLUMN IF NOT EXISTS cpu_count INTEGER;              -- logical CPUs of the machine (contention shares)
ALTER TABLE jobs ADD COLUMN IF NOT EXISTS round INTEGER;                  -- 0-based round of the sweep the job ran in
ALTER TABLE samples ADD COLUMN IF NOT EXISTS other_cpu_util DOUBLE;       -- percent of one core used by other processes
ALTER TABLE samples ADD COLUMN IF NOT EXISTS cpu_steal DOUBLE;            -- percent of CPU time stolen by the hypervisor
ALTER TABLE samples ADD COLUMN IF NOT EXISTS cpu_mhz DOUBLE;              -- current CPU clock
ALTER TABLE samples ADD COLUMN IF NOT EXISTS gpu_throttle_reasons BIGINT; -- NVML clocks-event (throttle) reason bitmask
ALTER TABLE samples ADD COLUMN IF NOT EXISTS gpu_other_processes INTEGER; -- compute processes on the GPU besides this one

-- migration 7: what fits on the card, and whether batching changed the pictures
-- A phase's peak is the highest memory reached while it ran (CUDA max allocated, or the process's peak RSS);
-- image_checks compares each image of a job with the image of the same seed at batch 1 of the same run
-- ('batch_1'), and at the same batch size in the runs that differ only in mode ('mode') or VAE slicing.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS device_memory_bytes BIGINT;  -- GPU memory (CUDA), else the machine's RAM
ALTER TABLE runs ADD COLUMN IF NOT EXISTS vae_slicing BOOLEAN;         -- the VAE decoded one image at a time
ALTER TABLE phases ADD COLUMN IF NOT EXISTS peak_mem_bytes BIGINT;     -- the highest memory while the phase ran
CREATE TABLE IF NOT EXISTS image_checks (
    job_id         VARCHAR NOT NULL,
    "index"        INTEGER NOT NULL,  -- the image within its job
    seed           BIGINT,
    against        VARCHAR NOT NULL,  -- batch_1 | mode | vae_slicing
    ref_job_id     VARCHAR NOT NULL,  -- the job of the reference image
    ref_index      INTEGER NOT NULL,  -- the reference image within that job
    max_abs_diff   INTEGER,           -- largest difference of a pixel channel, 0-255
    mean_abs_diff  DOUBLE,            -- mean difference of a pixel channel, 0-255
    psnr_db        DOUBLE,            -- NULL when the pictures are identical (infinite PSNR)
    schema_version INTEGER NOT NULL
);

-- migration 8: serving under load: levels, requests and server steps
-- A load run (python -m generator load) writes one spool file per level: one scheduling policy at one
-- offered load. Times of requests and server steps are seconds from the level's start. The level carries
-- the batch cost calibrated on the machine and the latency and throughput that a discrete-event
-- simulation of the policy on the level's own arrival times predicts with it.
CREATE TABLE IF NOT EXISTS load_levels (
    level_id          VARCHAR PRIMARY KEY,
    sweep_id          VARCHAR NOT NULL,
    started_at        TIMESTAMPTZ NOT NULL,
    host              VARCHAR,
    device            VARCHAR NOT NULL,   -- cpu | cuda | mps
    device_name       VARCHAR,
    model_id          VARCHAR NOT NULL,
    task              VARCHAR NOT NULL,   -- txt2img
    height            INTEGER NOT NULL,   -- pixels
    width             INTEGER NOT NULL,   -- pixels
    steps             INTEGER NOT NULL,   -- denoising steps per request
    dtype             VARCHAR,
    threads           INTEGER,            -- torch intra-op threads
    policy            VARCHAR NOT NULL,   -- fifo | batch | stream
    max_batch         INTEGER NOT NULL,   -- the most requests batch and stream run together
    max_delay_s       DOUBLE,             -- batch: the most the oldest request waits for the batch to fill
    arrival           VARCHAR NOT NULL,   -- poisson | closed | trace | burst | http (traffic a server took)
    offered_rps       DOUBLE,             -- poisson: the arrival rate (requests/s); NULL otherwise
    clients           INTEGER,            -- closed and burst: N; NULL otherwise
    load_factor       DOUBLE,             -- offered_rps / capacity_rps (poisson); NULL otherwise
    capacity_rps      DOUBLE,             -- max_batch / job(max_batch) of the calibrated cost
    requests          INTEGER NOT NULL,   -- requests in the level
    duration_s        DOUBLE,             -- first arrival to last finish
    arrival_seed      BIGINT,
    job_fixed_s       DOUBLE,             -- calibrated cost: job(n) = job_fixed_s + job_marginal_s * n
    job_marginal_s    DOUBLE,
    step_fixed_s      DOUBLE,             -- step(rows) = step_fixed_s + step_marginal_s * rows (stream)
    step_marginal_s   DOUBLE,
    finish_fixed_s    DOUBLE,             -- finish(n) = finish_fixed_s + finish_marginal_s * n (stream decode)
    finish_marginal_s DOUBLE,
    predicted_p50_s   DOUBLE,             -- the simulation's latency percentiles and throughput
    predicted_p90_s   DOUBLE,
    predicted_p99_s   DOUBLE,
    predicted_rps     DOUBLE,
    schema_version    INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS requests (
    level_id       VARCHAR NOT NULL,
    request_id     INTEGER NOT NULL,
    seed           BIGINT,
    steps          INTEGER,
    arrival_s      DOUBLE NOT NULL,   -- from the level's start
    start_s        DOUBLE,            -- NULL when it never ran
    finish_s       DOUBLE,
    wait_s         DOUBLE,            -- start_s - arrival_s
    latency_s      DOUBLE,            -- finish_s - arrival_s
    batch          INTEGER,           -- fifo, batch: requests run together; stream: the most rows it shared a call with
    group_index    INTEGER,           -- the batch or first step it ran in, 0-based
    status         VARCHAR NOT NULL,  -- ok | error | cancelled (a served request whose client went away)
    error          VARCHAR,
    schema_version INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS server_steps (
    level_id       VARCHAR NOT NULL,
    step_index     INTEGER NOT NULL,  -- 0-based unit of work of the level
    unit           VARCHAR NOT NULL,  -- job (fifo, batch: whole requests) | step (stream: one UNet call)
    start_s        DOUBLE NOT NULL,   -- from the level's start
    duration_s     DOUBLE NOT NULL,
    "rows"         INTEGER NOT NULL,  -- requests in it
    finished       INTEGER,           -- requests that left with it
    schema_version INTEGER NOT NULL
);

-- migration 9: where a run ran (Ray), data-parallel replicas, and load served by several servers
-- A sweep over Ray (--ray) records the worker and node of each run; host, device and gpu_uuid say the rest.
-- A replica sweep (--replicas) runs the same jobs on N workers at once: the N runs of one level and run
-- setting share a replica_group, and their images/s add up to the level's aggregate (view replica_throughput).
-- A load run with --servers N spreads requests over N servers by a router; each request and unit of work names its server.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS worker_id VARCHAR;        -- the Ray actor that ran it; NULL without Ray
ALTER TABLE runs ADD COLUMN IF NOT EXISTS ray_node_id VARCHAR;      -- the Ray node it ran on; NULL without Ray
ALTER TABLE runs ADD COLUMN IF NOT EXISTS replicas INTEGER;         -- replica sweep: workers running these jobs at once
ALTER TABLE runs ADD COLUMN IF NOT EXISTS replica_group VARCHAR;    -- replica sweep: the N runs of one level and setting
ALTER TABLE runs ADD COLUMN IF NOT EXISTS replica_index INTEGER;    -- replica sweep: this worker, 0..N-1
ALTER TABLE load_levels ADD COLUMN IF NOT EXISTS servers INTEGER;   -- servers behind the router (1: one server)
ALTER TABLE load_levels ADD COLUMN IF NOT EXISTS router VARCHAR;    -- how requests were spread: round_robin; NULL for one
ALTER TABLE requests ADD COLUMN IF NOT EXISTS server INTEGER;       -- the server (0-based) that ran it
ALTER TABLE server_steps ADD COLUMN IF NOT EXISTS server INTEGER;   -- the server (0-based) that ran this unit of work

-- migration 10: the kind of model a run measured, a field of the run record (spool/contract.py MODEL_KINDS)
-- embedded (the embedded tiny model), preset (an architecture preset, random weights) or weights (a local
-- diffusers folder or CompVis checkpoint). A run written before the field existed gets it from its model_id,
-- by model_kind_of: the one statement of that rule, used here for the runs already stored and by the
-- collector for every run it stores without one (collector/ingest.py _fill_model_kind).
ALTER TABLE runs ADD COLUMN IF NOT EXISTS model_kind VARCHAR;
CREATE OR REPLACE MACRO model_kind_of(model_id) AS
    CASE WHEN model_id LIKE 'embedded-%' THEN 'embedded' WHEN model_id LIKE 'preset-%' THEN 'preset'
         ELSE 'weights' END;
UPDATE runs SET model_kind = model_kind_of(model_id) WHERE model_kind IS NULL;

-- migration 11: the fingerprint of the views and papers last made (warehouse/db.py apply_schema)
-- A hash of schema.sql and papers.toml: a writer that finds its own version's here does not make them again.
CREATE TABLE IF NOT EXISTS schema_state (fingerprint VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL);

-- migration 12: load measured at the client, over HTTP (python -m generator load --endpoint URL)
-- The server's URL on each level a client measured; NULL for a level served in process or recorded by a server.
ALTER TABLE load_levels ADD COLUMN IF NOT EXISTS endpoint VARCHAR;

-- migration 13: the embedded models draw (python -m generator.train; generator/measure/quality.py)
-- The shipped weights file a run loaded (its SHA-256; NULL for random weights and for local weights, named by
-- model_id); what each kept picture shows against its prompt, where the prompt is a caption of the shapes data
-- set (txt2img only, else NULL); and whether a picture shows what its reference shows.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS weights_sha256 VARCHAR;
ALTER TABLE images ADD COLUMN IF NOT EXISTS shown_colour VARCHAR;       -- the shape's palette colour; NULL: none drawn
ALTER TABLE images ADD COLUMN IF NOT EXISTS shown_shape VARCHAR;        -- circle | square | triangle
ALTER TABLE images ADD COLUMN IF NOT EXISTS shown_background VARCHAR;   -- the border's palette colour
ALTER TABLE images ADD COLUMN IF NOT EXISTS colours_right BOOLEAN;      -- shape and background colours as asked
ALTER TABLE images ADD COLUMN IF NOT EXISTS shape_right BOOLEAN;        -- the shape as asked
ALTER TABLE image_checks ADD COLUMN IF NOT EXISTS same_shown BOOLEAN;   -- same colours and shape as the reference
ALTER TABLE images ADD COLUMN IF NOT EXISTS input_path VARCHAR;         -- inpaint: the picture given, its hole grey

-- migration 14: a transformer family beside the UNet, and attention kernels (arXiv 2312.14385's system findings)
-- The denoiser's family and the attention kernel a run asked for (--attention: sdpa is PyTorch's own pick); NULL
-- on runs recorded before (a UNet, PyTorch's pick). One row per kind of attention call in a profiled job: its query
-- and key lengths in tokens, heads and head width, the kernel PyTorch ran beneath scaled_dot_product_attention,
-- how many calls, their time (CPU time, or device time on CUDA) and their FLOPs. image_checks.against may now also
-- be attention: the same seed in a run that differs only in its attention kernel.
ALTER TABLE runs ADD COLUMN IF NOT EXISTS family VARCHAR;      -- unet | transformer
ALTER TABLE runs ADD COLUMN IF NOT EXISTS attention VARCHAR;   -- sdpa | flash | efficient | cudnn | math
CREATE TABLE IF NOT EXISTS attention_calls (
    job_id         VARCHAR NOT NULL,
    query_tokens   INTEGER NOT NULL,  -- sequence length of the queries (latent positions at that level, or patches)
    key_tokens     INTEGER NOT NULL,  -- of the keys: the same for self-attention, the text tokens for cross-attention
    heads          INTEGER,
    head_dim       INTEGER,
    kernel         VARCHAR NOT NULL,  -- the aten operator that ran, e.g. aten::_scaled_dot_product_attention_math
    calls          BIGINT NOT NULL,
    time_s         DOUBLE,
    flops          DOUBLE,
    schema_version INTEGER NOT NULL
);

-- views

-- The one definition of a measured job: not warm-up, not profiled (the profiler slows it), status ok.
-- Every figure over measured jobs (the views below, the named queries) reads this view.
CREATE OR REPLACE VIEW measured_jobs AS
SELECT j.*
FROM jobs j
WHERE NOT j.warmup AND NOT coalesce(j.profiled, false) AND j.status = 'ok';

-- The ceilings each run's figures are held against: the best that any run of its sweep reached under the
-- run's own settings (a ceiling timed while another process held the device reads low): the same host and
-- device (GPU, else CPU model), dtype and math mode, and the same torch threads (a CPU ceiling timed on
-- two threads is not one thread's). ceiling_flops is the higher of the matmul and conv ceilings,
-- ceiling_bytes_per_s the copy's.
CREATE OR REPLACE VIEW run_ceilings AS
SELECT run_id,
       max(greatest(ceiling_matmul_flops, ceiling_conv_flops)) OVER w AS ceiling_flops,
       max(ceiling_copy_bytes_per_s) OVER w                         AS ceiling_bytes_per_s
FROM runs
WINDOW w AS (PARTITION BY sweep_id, host, device, device_name, gpu_uuid, dtype, math_mode, threads);

-- Throughput per run and batch size, over measured jobs.
-- images_per_s uses the median job time. The one definition of speed-up and batching efficiency:
-- base_batch is the run's smallest measured batch (batch 1 when it was measured and succeeded);
-- speedup = images_per_s over base_batch's; efficiency = speedup / (batch_size / base_batch)
-- (1.0: every extra image as fast as those of the smallest batch).
-- achieved_flops_per_s = UNet FLOPs of a job / its denoise time (median), share_of_peak of the device's
-- datasheet peak, share_of_ceiling of the measured ceiling (view run_ceilings).
CREATE OR REPLACE VIEW throughput_by_batch AS
WITH per_batch AS (
    SELECT j.run_id,
           j.batch_size,
           any_value(j.unet_batch)   AS unet_batch,
           count(*)                  AS jobs,
           median(j.wall_s)          AS median_wall_s,
           min(j.wall_s)             AS min_wall_s,
           max(j.wall_s)             AS max_wall_s,
           median(j.unet_flops_total / d.duration_s) AS achieved_flops_per_s
    FROM measured_jobs j
    LEFT JOIN phases d ON d.job_id = j.job_id AND d.phase = 'denoise'
    GROUP BY j.run_id, j.batch_size
), rated AS (
    SELECT p.*,
           p.batch_size / p.median_wall_s                                     AS images_per_s,
           min(p.batch_size) OVER (PARTITION BY p.run_id)                     AS base_batch,
           p.batch_size / p.median_wall_s
               / arg_min(p.batch_size / p.median_wall_s, p.batch_size) OVER (PARTITION BY p.run_id) AS speedup
    FROM per_batch p
)
SELECT p.run_id,
       p.batch_size,
       p.unet_batch,
       p.jobs,
       p.median_wall_s,
       p.min_wall_s,
       p.max_wall_s,
       p.median_wall_s / p.batch_size                        AS s_per_image,
       p.images_per_s,
       p.median_wall_s / max(CASE WHEN p.batch_size = 1 THEN p.median_wall_s END)
           OVER (PARTITION BY p.run_id)                      AS time_vs_batch1,
       p.base_batch,
       p.speedup,
       p.speedup / (p.batch_size / p.base_batch)             AS efficiency,
       p.achieved_flops_per_s,
       p.achieved_flops_per_s / r.peak_flops                 AS share_of_peak,
       p.achieved_flops_per_s / c.ceiling_flops              AS share_of_ceiling
FROM rated p JOIN runs r USING (run_id) JOIN run_ceilings c USING (run_id);

-- Replica sweeps (--replicas): one row per sweep, replica group (the N runs of one level and run setting) and
-- batch size, over measured jobs. Each worker's images/s is batch_size / the median wall_s of its own measured
-- jobs at that batch size; aggregate_images_per_s is the SUM of those rates over the group's workers, not the
-- group's images over a shared span of time: the driver starts each batch size on all N workers together and
-- waits for all of them, so every worker's jobs were measured while the others ran theirs, and a sum of rates
-- needs no clock shared between hosts (their offsets would bias a span measured across them). workers counts
-- the runs of the group with measured jobs at the batch size (fewer than replicas when a worker's jobs failed);
-- hosts and devices (coalesce(gpu_uuid, host): a GPU, else the host) say how much hardware was behind them.
CREATE OR REPLACE VIEW replica_throughput AS
WITH per_worker AS (
    SELECT j.run_id, j.batch_size,
           count(*)                        AS jobs,
           j.batch_size / median(j.wall_s) AS images_per_s
    FROM measured_jobs j JOIN runs r USING (run_id)
    WHERE r.replica_group IS NOT NULL
    GROUP BY j.run_id, j.batch_size
)
SELECT r.sweep_id,
       r.replica_group,
       w.batch_size,
       max(r.replicas)                                   AS replicas,
       count(*)                                          AS workers,
       any_value(r.model_id)                             AS model_id,
       any_value(r.task)                                 AS task,
       any_value(r.mode)                                 AS mode,
       any_value(r.height)                               AS height,
       any_value(r.width)                                AS width,
       any_value(r.cfg)                                  AS cfg,
       any_value(r.vae_slicing)                          AS vae_slicing,
       any_value(r.device)                               AS device,
       string_agg(DISTINCT r.device_name, ', ' ORDER BY r.device_name) AS device_name,
       min(r.threads)                                    AS threads,
       count(DISTINCT r.host)                            AS hosts,
       count(DISTINCT coalesce(r.gpu_uuid, r.host))      AS devices,
       max(r.cpu_count)                                  AS cpu_count,
       CAST(sum(w.jobs) AS BIGINT)                       AS jobs,
       min(w.images_per_s)                               AS min_worker_images_per_s,
       max(w.images_per_s)                               AS max_worker_images_per_s,
       sum(w.images_per_s)                               AS aggregate_images_per_s
FROM per_worker w JOIN runs r USING (run_id)
GROUP BY r.sweep_id, r.replica_group, w.batch_size;

-- Per-step times, with the job and run they belong to. duration_per_image_s divides a step by the
-- images its UNet call carried (its rows, halved with CFG): 1 in sequential mode, up to min(B, S) in stream.
CREATE OR REPLACE VIEW step_times AS
SELECT s.job_id, j.run_id, r.mode, j.batch_size, j.warmup, j.profiled, j.status,
       s.call_index, s.step_index, s.timestep, s.unet_rows, s.start_s, s.duration_s,
       s.duration_s / coalesce(s.unet_rows / CASE WHEN r.cfg THEN 2 ELSE 1 END, j.batch_size)
           AS duration_per_image_s
FROM steps s JOIN jobs j USING (job_id) JOIN runs r USING (run_id);

-- Where the time of a job goes, per run, batch size and phase (measured jobs; medians).
-- The phase 'outside' is the rest of each job: its time outside every phase (the Python between them,
-- the generator's own bookkeeping), so the phases of a job add up to the job. median_share is the one
-- definition of a phase's share that the pages quote (the median over jobs of the phase's share of its job).
CREATE OR REPLACE VIEW phase_breakdown AS
WITH per_job AS (
    SELECT j.run_id, j.batch_size, j.job_id, j.wall_s, p.phase, sum(p.duration_s) AS duration_s
    FROM phases p JOIN measured_jobs j USING (job_id)
    GROUP BY ALL
), with_rest AS (
    SELECT run_id, batch_size, job_id, wall_s, phase, duration_s FROM per_job
    UNION ALL
    SELECT run_id, batch_size, job_id, any_value(wall_s), 'outside', greatest(any_value(wall_s) - sum(duration_s), 0)
    FROM per_job GROUP BY run_id, batch_size, job_id
)
SELECT run_id, batch_size, phase,
       count(*)                        AS jobs,
       median(duration_s)              AS median_s,
       median(duration_s / wall_s)     AS median_share
FROM with_rest
GROUP BY ALL;

-- UNet time by operator category, per run and batch size (profiled jobs).
CREATE OR REPLACE VIEW op_mix AS
SELECT j.run_id, j.batch_size, o.category,
       sum(o.self_time_s)                                      AS time_s,
       sum(o.calls)                                            AS calls,
       sum(o.self_time_s) / sum(sum(o.self_time_s)) OVER (PARTITION BY j.run_id, j.batch_size) AS share
FROM ops o JOIN jobs j USING (job_id)
GROUP BY j.run_id, j.batch_size, o.category;

-- Telemetry per run, resampled per second: means, and maxima for memory and temperature.
CREATE OR REPLACE VIEW telemetry AS
SELECT run_id,
       to_timestamp(floor(t))      AS second,
       count(*)                    AS samples,
       avg(cpu_util)               AS cpu_util,
       max(rss_bytes)              AS rss_bytes,
       avg(gpu_util)               AS gpu_util,
       max(mem_used_bytes)         AS mem_used_bytes,
       max(mem_total_bytes)        AS mem_total_bytes,
       avg(power_w)                AS power_w,
       avg(sm_clock_mhz)           AS sm_clock_mhz,
       max(temp_c)                 AS temp_c
FROM samples
GROUP BY run_id, floor(t);

-- Jobs that did not finish: out of memory or an error, with what the run was doing.
CREATE OR REPLACE VIEW jobs_failed AS
SELECT j.job_id, j.run_id, r.task, r.mode, r.height, r.width, j.batch_size, j.unet_batch,
       j.warmup, j.started_at, j.status, j.error, j.peak_mem_bytes
FROM jobs j JOIN runs r USING (run_id)
WHERE j.status <> 'ok';

-- The roofline floor of each run and batch size (measured jobs): the least time the UNet calls could
-- take on the device's measured ceilings, against the denoising time measured. Compute: the job's UNet
-- FLOPs at the higher of the matmul and conv ceilings; memory: the UNet's weights read once per call
-- at the copy ceiling. floor_s is the larger of the two (a lower bound: activations and idle time
-- only add); above_floor_share is the share of the denoising time above it. Ceilings: run_ceilings.
CREATE OR REPLACE VIEW roofline_by_batch AS
WITH per_batch AS (
    SELECT j.run_id, j.batch_size,
           count(*)                       AS jobs,
           median(d.duration_s)           AS denoise_s,
           median(j.unet_flops_total)     AS unet_flops,
           median(j.unet_calls)           AS unet_calls
    FROM measured_jobs j JOIN phases d ON d.job_id = j.job_id AND d.phase = 'denoise'
    GROUP BY j.run_id, j.batch_size
), floors AS (
    SELECT p.*,
           c.ceiling_flops, c.ceiling_bytes_per_s,
           p.unet_flops / c.ceiling_flops                                         AS compute_floor_s,
           p.unet_calls * r.unet_weight_bytes / c.ceiling_bytes_per_s             AS memory_floor_s,
           p.unet_flops / r.peak_flops                                            AS datasheet_floor_s
    FROM per_batch p JOIN runs r USING (run_id) JOIN run_ceilings c USING (run_id)
)
SELECT f.*,
       greatest(f.compute_floor_s, coalesce(f.memory_floor_s, 0))              AS floor_s,
       1 - greatest(f.compute_floor_s, coalesce(f.memory_floor_s, 0)) / f.denoise_s AS above_floor_share
FROM floors f;

-- Latency under load: one row per load level, its settings and what its ok requests measured beside what
-- the simulation predicted. Percentiles are quantile_cont (linear between order statistics, as numpy's
-- default); throughput_rps = ok requests / (their last finish - their first arrival), as predicted_rps.
-- servers: how many served the level behind the router (1 for a level recorded before servers existed).
CREATE OR REPLACE VIEW load_latency AS
WITH ok AS (
    SELECT level_id,
           count(*)                                        AS requests_ok,
           quantile_cont(latency_s, 0.5)                   AS p50_s,
           quantile_cont(latency_s, 0.9)                   AS p90_s,
           quantile_cont(latency_s, 0.99)                  AS p99_s,
           max(latency_s)                                  AS max_s,
           avg(wait_s)                                     AS mean_wait_s,
           max(finish_s) - min(arrival_s)                  AS span_s,
           avg(batch)                                      AS mean_batch
    FROM requests
    WHERE status = 'ok'
    GROUP BY level_id
)
SELECT l.level_id, l.sweep_id, l.started_at, l.model_id, l.height, l.width, l.steps, l.device,
       l.host, l.threads, coalesce(l.servers, 1)            AS servers, l.router, l.endpoint,
       l.policy, l.max_batch, l.max_delay_s, l.arrival, l.offered_rps, l.clients, l.load_factor, l.capacity_rps,
       l.requests,
       coalesce(o.requests_ok, 0)                          AS requests_ok,
       o.p50_s, o.p90_s, o.p99_s, o.max_s, o.mean_wait_s, o.span_s,
       o.requests_ok / nullif(o.span_s, 0)                 AS throughput_rps,
       o.mean_batch,
       l.predicted_p50_s, l.predicted_p90_s, l.predicted_p99_s, l.predicted_rps,
       l.job_fixed_s, l.job_marginal_s, l.step_fixed_s, l.step_marginal_s, l.finish_fixed_s, l.finish_marginal_s
FROM load_levels l LEFT JOIN ok o USING (level_id);

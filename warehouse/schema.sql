-- The warehouse schema: the public contract for ad-hoc SQL.
-- Tables mirror the spool records of DESIGN.md (one table per record kind);
-- times are seconds, memory bytes, power watts, clocks MHz.
-- Applying this file twice changes nothing.

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
    schema_version INTEGER NOT NULL,
    PRIMARY KEY (job_id, phase)
);

CREATE TABLE IF NOT EXISTS steps (
    job_id         VARCHAR NOT NULL,
    call_index     INTEGER NOT NULL,  -- pipeline call within the job (sequential: one per image)
    step_index     INTEGER NOT NULL,  -- denoising step (stream: UNet call) within that call
    timestep       DOUBLE,            -- NULL in stream mode, where rows sit at different timesteps
    unet_rows      INTEGER,           -- latents in this step's UNet call
    start_s        DOUBLE NOT NULL,   -- from the start of the job
    duration_s     DOUBLE NOT NULL,
    schema_version INTEGER NOT NULL,
    PRIMARY KEY (job_id, call_index, step_index)
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

-- Throughput per run and batch size, over measured jobs that succeeded (no warm-up, no profiled job).
-- images_per_s uses the median job time; speedup is images_per_s over batch 1's;
-- efficiency = speedup / batch_size (1.0: every image as fast as a lone one).
CREATE OR REPLACE VIEW throughput_by_batch AS
WITH per_batch AS (
    SELECT j.run_id,
           j.batch_size,
           count(*)                  AS jobs,
           median(j.wall_s)          AS median_wall_s,
           min(j.wall_s)             AS min_wall_s,
           max(j.wall_s)             AS max_wall_s
    FROM jobs j
    WHERE NOT j.warmup AND NOT coalesce(j.profiled, false) AND j.status = 'ok'
    GROUP BY j.run_id, j.batch_size
)
SELECT p.run_id,
       p.batch_size,
       p.jobs,
       p.median_wall_s,
       p.min_wall_s,
       p.max_wall_s,
       p.median_wall_s / p.batch_size                        AS s_per_image,
       p.batch_size / p.median_wall_s                        AS images_per_s,
       p.median_wall_s / max(CASE WHEN p.batch_size = 1 THEN p.median_wall_s END)
           OVER (PARTITION BY p.run_id)                      AS time_vs_batch1,
       (p.batch_size / p.median_wall_s)
           / max(CASE WHEN p.batch_size = 1 THEN 1 / p.median_wall_s END)
           OVER (PARTITION BY p.run_id)                      AS speedup,
       (p.batch_size / p.median_wall_s)
           / max(CASE WHEN p.batch_size = 1 THEN 1 / p.median_wall_s END)
           OVER (PARTITION BY p.run_id) / p.batch_size       AS efficiency
FROM per_batch p;

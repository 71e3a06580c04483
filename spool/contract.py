"""The spool contract between the generator (writer) and the collector (reader).

A spool file is JSON Lines: one record a line, each a flat object whose first key is
`kind` and which carries `schema_version`. One file holds one job (its run record, the
job, its phases, steps, operators, samples and images), a run's end (its run record with
the LATE fields filled in, and its last samples), or one load level (the level, its
requests and the server's units of work). The
fields of each kind, and their types, are the columns of its table in
warehouse/schema.sql; the reader takes them from the live warehouse, so a field is
added in one place (a migration) and a reader ignores fields it does not know.

Schema history (a version changes only when a reader of the old one would misread a file):
- 1: kinds run, job, phase, step, op, sample, image. Fields added since, without a new
  version because older readers ignore them and newer ones read them as NULL when absent:
  step call_index and unet_rows; job profiled, unet_calls, unet_rows, unet_flops_total,
  unet_profiled_s; run cfg, threads, peak_flops, peak_flops_source, telemetry_gpu;
  image mask_path (warehouse migration 3); run math_mode, tf32_matmul, tf32_cudnn, gpu_uuid,
  ceiling_matmul_flops, ceiling_conv_flops, ceiling_copy_bytes_per_s, unet_weight_bytes
  (migration 5); run rounds, stop_reason, cpu_count, job round, sample other_cpu_util,
  cpu_steal, cpu_mhz, gpu_throttle_reasons, gpu_other_processes (migration 6). A run's end
  file (`stop-*.jsonl`) carries its run record with rounds and stop_reason (LATE). Run
  device_memory_bytes, vae_slicing, phase peak_mem_bytes, and the kind image_check (each image
  of a job against the same seed at batch 1 and in the other modes; migration 7). The kinds load_level,
  request and server_step (migration 8): a load run (`python -m generator load`) writes one file per
  level, its load_level record first (kept once by level_id), then a request record per request and a
  server_step record per unit of work the server ran (its `unit`: job or step). Run worker_id,
  ray_node_id (a sweep on Ray workers), replicas, replica_group, replica_index (a replica sweep);
  load_level servers, router, request server and server_step server (a load run over several servers;
  migration 9: one file per level still, the units of work of all its servers in it). load_level endpoint
  (migration 12): a level measured at the client over HTTP (`load --endpoint`), whose requests have no start,
  batch or units of work; a level `generator serve` recorded has arrival http. Run weights_sha256, image
  shown_colour, shown_shape, shown_background, colours_right, shape_right, input_path, image_check same_shown
  (migration 13): the shipped weights a run loaded, and what a picture shows against its caption prompt. A job
  a lost Ray worker left unfinished is written by the driver: its run record and its job record with
  status error and the reason. Run family and attention, the kind attention (migration 14): the denoiser's
  family (unet | transformer), the attention kernel a run asked for (`--attention`), and in a profiled job one
  attention record per (query tokens, key tokens, heads, head width, kernel run) with its calls, time and FLOPs;
  image_check against may be 'attention' (a run that differs only in its kernel).
"""

from __future__ import annotations

SCHEMA_VERSION = 1
# Record kind -> the warehouse table its records land in.
TABLES = {"run": "runs", "job": "jobs", "phase": "phases", "step": "steps",
          "op": "ops", "sample": "samples", "image": "images", "image_check": "image_checks",
          "load_level": "load_levels", "request": "requests", "server_step": "server_steps",
          "attention": "attention_calls"}
KINDS = tuple(TABLES)
# Kinds that may repeat across files (every job file carries its run), kept once by this key.
REPEATED = {"run": "run_id", "load_level": "level_id"}
# Fields of a repeated record that only a later file knows (a run's rounds and why they stopped,
# in its end file): whichever file comes first, a known value is kept, never overwritten by a missing one.
LATE = {"run": ("rounds", "stop_reason")}
# A spool file's kind -> the prefix of its name (the id it is written under, `<prefix>-<time>-<random>.jsonl`):
# one job's records, a run's end (its run record with the LATE fields), one load level.
FILE_KINDS = {"job": "job", "run_end": "stop", "load_level": "level"}
# The kind of model a run measured (run `model_kind`, warehouse migration 10): an embedded model (trained here and
# shipped; a run before migration 13, without weights_sha256, had random weights), an
# architecture preset built from config with random weights, or local weights (a diffusers folder or a
# CompVis checkpoint file). A run record written before the field existed gets it from its model_id when the
# collector stores it (warehouse/schema.sql's model_kind_of, the one statement of that rule).
MODEL_KINDS = ("embedded", "preset", "weights")


def file_kind(name: str) -> str:
    """The kind (a key of FILE_KINDS) of the spool file `name` (a file name or path, with or without .jsonl),
    from the prefix of its name; a name with no known prefix is refused, naming it."""
    stem = name.replace("\\", "/").rsplit("/", 1)[-1].removesuffix(".jsonl")
    for kind, prefix in FILE_KINDS.items():
        if stem.startswith(prefix + "-"):
            return kind
    raise ValueError(f"spool file name must begin with one of {', '.join(p + '-' for p in FILE_KINDS.values())}, "
                     f"got {name!r}")


def record(kind: str, **fields) -> dict:
    """A flat record: kind first, then schema_version, then the fields."""
    if kind not in TABLES:
        raise ValueError(f"record kind must be one of {', '.join(KINDS)}, got {kind!r}")
    return {"kind": kind, "schema_version": SCHEMA_VERSION, **fields}

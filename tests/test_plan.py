"""The plan of a sweep, on its own: which runs and jobs, in which order, with which flags. No model needed."""

from __future__ import annotations

import dataclasses

import pytest

from generator.metadata import RUN_FIELDS, run_record
from generator.plan import JOB_KINDS, JobPlan, plan
from generator.sweep import SweepConfig

CONFIGS = [
    SweepConfig(),
    SweepConfig(batch_sizes=(1, 3), resolutions=(64, 128, 256), mode=("sequential", "static", "stream"),
                repeats=2, warmup=0, guidance=3.0, classifier_free_guidance=("off", "full"), profile_ops=True),
    SweepConfig(batch_sizes=(4,), height=64, width=128, repeats=1, warmup=3),
    SweepConfig(batch_sizes=(2, 8), resolutions=(64,), until_oom=True, max_batch=100, profile_ops=True),
]


def _listed(runs) -> list[JobPlan]:
    return [job for run in runs for job in run.jobs if not job.extra]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_the_plan_agrees_with_the_jobs_total(cfg):
    runs = plan(cfg)
    assert len(runs) == len(cfg.sizes()) * len(cfg.guidances()) * len(cfg.mode)
    assert len(_listed(runs)) == cfg.jobs_total()
    per_batch = cfg.warmup + cfg.repeats + cfg.profile_ops
    for run in runs:
        assert len([j for j in run.jobs if not j.extra]) == len(cfg.batch_sizes) * per_batch


def test_runs_go_size_then_cfg_then_mode():
    cfg = CONFIGS[1]
    order = [(r.height, r.width, r.guidance, r.mode) for r in plan(cfg)]
    assert order == [(s, s, g, m) for s in (64, 128, 256) for g in (1.0, 3.0)
                     for m in ("sequential", "static", "stream")]
    assert [r.cfg for r in plan(cfg)][:6] == [False] * 3 + [True] * 3


def test_each_batch_size_runs_warmups_then_measured_then_the_profiled_job():
    cfg = SweepConfig(batch_sizes=(2, 1), resolutions=(64,), repeats=2, warmup=1, profile_ops=True)
    (run,) = plan(cfg)
    assert [(j.batch_size, j.repeat, j.kind) for j in run.jobs] == [
        (2, 0, "warmup"), (2, 1, "measured"), (2, 2, "measured"), (2, 3, "profiled"),
        (1, 0, "warmup"), (1, 1, "measured"), (1, 2, "measured"), (1, 3, "profiled"),
    ]
    assert {j.kind for j in run.jobs} == set(JOB_KINDS)
    assert [j.warmup for j in run.jobs[:4]] == [True, False, False, False]
    assert [j.profiled for j in run.jobs[:4]] == [False, False, False, True]


@pytest.mark.parametrize("save, kept", [
    ("first", [(2, 1), (1, 1)]),  # the first measured job of each batch size
    ("all", [(b, r) for b in (2, 1) for r in range(4)]),
    ("none", []),
])
def test_which_jobs_keep_their_images(save, kept):
    cfg = SweepConfig(batch_sizes=(2, 1), resolutions=(64,), repeats=2, warmup=1, profile_ops=True,
                      save_images=save)
    (run,) = plan(cfg)
    assert [(j.batch_size, j.repeat) for j in run.jobs if j.save_images] == kept


def test_until_oom_lists_the_doublings_up_to_max_batch_in_every_run():
    cfg = SweepConfig(batch_sizes=(3, 2), resolutions=(64, 128), repeats=1, warmup=1, until_oom=True,
                      max_batch=24)
    for run in plan(cfg):
        sizes = list(dict.fromkeys((j.batch_size, j.extra) for j in run.jobs))
        assert sizes == [(3, False), (2, False), (6, True), (12, True), (24, True)]
        assert [j.kind for j in run.jobs if j.batch_size == 24] == ["warmup", "measured"]
    # Without --until-oom, or when the first doubling is past max_batch, there is nothing extra.
    assert not [j for r in plan(dataclasses.replace(cfg, until_oom=False)) for j in r.jobs if j.extra]
    assert not [j for r in plan(dataclasses.replace(cfg, max_batch=5)) for j in r.jobs if j.extra]


def test_the_plan_is_plain_frozen_data():
    cfg = CONFIGS[1]
    assert plan(cfg) == plan(cfg)
    run = plan(cfg)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.mode = "static"
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.jobs[0].batch_size = 99
    assert hash(run) == hash(plan(cfg)[0])


def test_the_progress_label_names_the_run_and_the_job():
    cfg = SweepConfig(batch_sizes=(4,), resolutions=(64,), guidance=2.0, warmup=1, repeats=1)
    (run,) = plan(cfg)
    assert [run.label(j) for j in run.jobs] == ["static 64x64 cfg on batch 4 warmup", "static 64x64 cfg on batch 4"]


def test_a_run_record_is_the_sweeps_metadata_plus_the_runs_own_fields():
    cfg = CONFIGS[1]
    metadata = {"host": "h", "device": "cpu", "device_name": "cpu", "torch_version": "2", "diffusers_version": "0",
                "model_id": "m", "model_params": 1, "scheduler": "DDIMScheduler", "threads": 2, "peak_flops": None,
                "peak_flops_source": "none", "gpu_uuid": None, "math_mode": "float32", "tf32_matmul": None,
                "tf32_cudnn": None, "ceiling_matmul_flops": 1e11, "ceiling_conv_flops": 1e11,
                "ceiling_copy_bytes_per_s": 2e10, "unet_weight_bytes": 4_000_000}
    ids = {"run_id": "run-1", "sweep_id": "sweep-1", "started_at": "t"}
    records = [run_record(metadata, cfg, run, ids, telemetry_gpu=False) for run in plan(cfg)]
    for rec, run in zip(records, plan(cfg)):
        assert list(rec) == ["kind", "schema_version", *RUN_FIELDS]
        assert {k: rec[k] for k in metadata} == metadata
        assert (rec["mode"], rec["height"], rec["guidance_scale"], rec["cfg"]) == (
            run.mode, run.height, run.guidance, run.cfg)
        assert rec["tags"] == {"threads": 2}
    with pytest.raises(ValueError, match="needs the fields host"):
        run_record({k: v for k, v in metadata.items() if k != "host"}, cfg, plan(cfg)[0], ids, False)

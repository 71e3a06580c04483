"""The plan of a sweep, on its own: which runs and jobs, in which order, with which flags. No model needed."""

from __future__ import annotations

import dataclasses
from collections import Counter

import pytest

from generator.sweep.config import AUTO, SweepConfig
from generator.sweep.metadata import RUN_FIELDS, run_record
from generator.sweep.plan import JOB_KINDS, out_of_memory, plan, round_order, rotated

CONFIGS = [
    SweepConfig(),
    SweepConfig(batch_sizes=(1, 3), resolutions=(64, 128, 256), mode=("sequential", "static", "stream"),
                repeats=2, warmup=0, guidance=3.0, classifier_free_guidance=("off", "full"), profile_ops=True),
    SweepConfig(batch_sizes=(4,), height=64, width=128, repeats=1, warmup=3),
    SweepConfig(batch_sizes=(2, 8), resolutions=(64,), until_oom=True, max_batch=100, profile_ops=True),
]


def _slots(jobs) -> list[tuple]:
    return [(j.run.mode, j.run.guidance, j.batch_size) for j in jobs]


@pytest.mark.parametrize("cfg", CONFIGS)
def test_the_plan_agrees_with_the_jobs_total(cfg):
    sizes = plan(cfg)
    assert [(s.height, s.width) for s in sizes] == cfg.sizes()
    runs = len(cfg.guidances()) * len(cfg.mode)
    listed = [j for s in sizes for j in s.jobs() if not j.extra]
    # Each planned warm-up runs at least --warmup times (more until settled); every other job once.
    assert sum(cfg.warmup if j.warmup else 1 for j in listed) == cfg.jobs_total()
    slots = runs * len(cfg.batch_sizes)
    for s in sizes:
        assert len(s.runs) == runs
        assert len(s.rounds) == (cfg.max_rounds if cfg.repeats == AUTO else cfg.repeats)
        assert Counter(j.kind for j in s.jobs() if not j.extra) == +Counter(
            {"warmup": slots if cfg.warmup else 0, "measured": slots * len(s.rounds),
             "profiled": slots if cfg.profile_ops else 0})


def test_runs_go_size_then_cfg_then_mode():
    cfg = CONFIGS[1]
    order = [(r.height, r.width, r.guidance, r.mode) for s in plan(cfg) for r in s.runs]
    assert order == [(s, s, g, m) for s in (64, 128, 256) for g in (1.0, 3.0)
                     for m in ("sequential", "static", "stream")]
    assert [r.cfg for r in plan(cfg)[0].runs] == [False] * 3 + [True] * 3


def test_every_round_runs_every_run_and_batch_size_of_the_size_once():
    cfg = CONFIGS[1]
    for size in plan(cfg):
        every = sorted((r.mode, r.guidance, b) for r in size.runs for b in cfg.batch_sizes)
        for r, jobs in enumerate(size.rounds):
            assert sorted(_slots(jobs)) == every
            assert {j.round for j in jobs} == {r} and {j.kind for j in jobs} == {"measured"}
            assert {(j.run.height, j.run.width) for j in jobs} == {(size.height, size.width)}


def test_rounds_rotate_the_batch_sizes_and_within_each_the_runs():
    cfg = SweepConfig(batch_sizes=(1, 2, 4), resolutions=(64,), mode=("static", "stream"), repeats=4, warmup=0)
    (size,) = plan(cfg)
    order = [[(j.run.mode, j.batch_size) for j in jobs] for jobs in size.rounds]
    assert order == [
        [("static", 1), ("stream", 1), ("static", 2), ("stream", 2), ("static", 4), ("stream", 4)],
        [("stream", 2), ("static", 2), ("stream", 4), ("static", 4), ("stream", 1), ("static", 1)],
        [("static", 4), ("stream", 4), ("static", 1), ("stream", 1), ("static", 2), ("stream", 2)],
        [("stream", 1), ("static", 1), ("stream", 2), ("static", 2), ("stream", 4), ("static", 4)],
    ]
    # Over as many rounds as batch sizes, each batch size leads a round once: no place is any one's.
    assert sorted(jobs[0][1] for jobs in order[:3]) == [1, 2, 4]
    # Runs alternate job by job in every round, and each run leads some rounds.
    assert all(a[0] != b[0] for jobs in order for a, b in zip(jobs, jobs[1:]))
    assert {jobs[0][0] for jobs in order} == {"static", "stream"}


def test_rotation_is_a_left_shift_that_wraps():
    assert rotated([1, 2, 4, 8, 16], 0) == [1, 2, 4, 8, 16]
    assert rotated([1, 2, 4, 8, 16], 2) == [4, 8, 16, 1, 2]
    assert rotated([1, 2, 4, 8, 16], 7) == rotated([1, 2, 4, 8, 16], 2)
    assert rotated([], 3) == []
    runs = tuple(plan(CONFIGS[1])[0].runs[:2])
    assert [b for _, b, _ in round_order(runs, [(1, False), (3, False)], 1)] == [3, 3, 1, 1]


def test_warm_up_comes_first_in_round_zeros_order_and_profiled_jobs_last():
    cfg = SweepConfig(batch_sizes=(2, 1), resolutions=(64,), mode=("static", "stream"), repeats=2, warmup=1,
                      profile_ops=True)
    (size,) = plan(cfg)
    assert _slots(size.warmups) == _slots(size.rounds[0]) == _slots(size.profiled)
    assert {j.kind for j in size.warmups} == {"warmup"} and {j.kind for j in size.profiled} == {"profiled"}
    assert {j.round for j in size.warmups + size.profiled} == {None}
    assert [j.kind for j in size.jobs()] == ["warmup"] * 4 + ["measured"] * 8 + ["profiled"] * 4
    assert {j.kind for j in size.jobs()} == set(JOB_KINDS)
    assert [j.warmup for j in size.jobs()[3:5]] == [True, False]
    assert [j.profiled for j in size.jobs()[-5:-3]] == [False, True]
    # --warmup 0: no warm-up at all.
    assert plan(dataclasses.replace(cfg, warmup=0))[0].warmups == ()


def test_auto_plans_up_to_max_rounds_in_the_same_rotating_order():
    fixed = SweepConfig(batch_sizes=(1, 2, 4), resolutions=(64,), repeats=5)
    auto = dataclasses.replace(fixed, repeats=AUTO, max_rounds=7)
    assert len(plan(auto)[0].rounds) == 7
    assert plan(auto)[0].rounds[:5] == plan(fixed)[0].rounds


@pytest.mark.parametrize("save, kept", [
    ("first", [(2, 0, "measured"), (1, 0, "measured")]),  # round 0's measured job of each batch size
    ("all", [(2, None, "warmup"), (1, None, "warmup"), (2, 0, "measured"), (1, 0, "measured"),
             (1, 1, "measured"), (2, 1, "measured"), (2, None, "profiled"), (1, None, "profiled")]),
    ("none", []),
])
def test_which_jobs_keep_their_images(save, kept):
    cfg = SweepConfig(batch_sizes=(2, 1), resolutions=(64,), repeats=2, warmup=1, profile_ops=True,
                      save_images=save)
    (size,) = plan(cfg)
    assert [(j.batch_size, j.round, j.kind) for j in size.jobs() if j.save_images] == kept


def test_until_oom_lists_the_doublings_up_to_max_batch_in_every_round():
    cfg = SweepConfig(batch_sizes=(3, 2), resolutions=(64, 128), repeats=2, warmup=1, until_oom=True,
                      max_batch=24)
    for size in plan(cfg):
        # Round 0 runs the listed sizes, then the doublings, growing: the first out-of-memory is met in order.
        assert [(j.batch_size, j.extra) for j in size.rounds[0]] == [
            (3, False), (2, False), (6, True), (12, True), (24, True)]
        assert sorted(j.batch_size for j in size.rounds[1]) == [2, 3, 6, 12, 24]
        assert [j.kind for j in size.jobs() if j.batch_size == 24] == ["warmup", "measured", "measured"]
    # Without --until-oom, or when the first doubling is past max_batch, there is nothing extra.
    assert not [j for s in plan(dataclasses.replace(cfg, until_oom=False)) for j in s.jobs() if j.extra]
    assert not [j for s in plan(dataclasses.replace(cfg, max_batch=5)) for j in s.jobs() if j.extra]


def test_after_an_out_of_memory_a_run_skips_that_batch_size_and_larger_ones_only():
    cfg = SweepConfig(batch_sizes=(1, 2), resolutions=(64,), mode=("static", "stream"), repeats=3, warmup=0,
                      until_oom=True, max_batch=16)
    (size,) = plan(cfg)
    static, stream = size.runs
    limits = {static: 4}  # static ran out of memory at batch 4
    for r, jobs in enumerate(size.rounds):
        left = [(j.run.mode, j.batch_size) for j in jobs if not out_of_memory(j, limits)]
        assert sorted(left) == sorted([("static", 1), ("static", 2)] + [("stream", b) for b in (1, 2, 4, 8, 16)])
    assert not any(out_of_memory(j, {}) for j in size.jobs())


def test_the_plan_is_plain_frozen_data():
    cfg = CONFIGS[1]
    assert plan(cfg) == plan(cfg)
    size = plan(cfg)[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        size.runs[0].mode = "static"
    with pytest.raises(dataclasses.FrozenInstanceError):
        size.rounds[0][0].batch_size = 99
    assert hash(size) == hash(plan(cfg)[0])


def test_the_progress_label_names_the_run_and_the_job():
    cfg = SweepConfig(batch_sizes=(4,), resolutions=(64,), guidance=2.0, warmup=1, repeats=1)
    (size,) = plan(cfg)
    assert [j.run.label(j) for j in size.jobs()] == ["static 64x64 cfg on 10 steps batch 4 warmup",
                                                     "static 64x64 cfg on 10 steps batch 4"]


def test_each_step_count_is_a_run_of_its_own():
    """--steps 2,5,10,20: one run per step count (outermost), each job of a run with that run's steps; a bare
    number is one step count; a count below 1 is refused, naming it."""
    cfg = SweepConfig(batch_sizes=(1, 4), resolutions=(64,), steps=(2, 20), mode=("static", "stream"), repeats=1,
                      warmup=0)
    (size,) = plan(cfg)
    assert [(r.steps, r.mode) for r in size.runs] == [(2, "static"), (2, "stream"), (20, "static"), (20, "stream")]
    assert cfg.jobs_total() == len(size.jobs()) == 8
    assert SweepConfig(steps=7).steps == (7,)
    with pytest.raises(ValueError, match=r"steps must list whole numbers >= 1, got \(5, 0\)"):
        SweepConfig(steps=(5, 0))


@pytest.mark.parametrize("given, expected", [(3, 3), ("3", 3), (" Auto ", AUTO), ("auto", AUTO)])
def test_repeats_is_a_whole_number_or_auto(given, expected):
    assert SweepConfig(repeats=given).repeats == expected
    assert SweepConfig(repeats=given).auto == (expected == AUTO)


@pytest.mark.parametrize("field, value, message", [
    ("repeats", 0, "repeats must be >= 1, got 0 (or 'auto')"),
    ("repeats", "many", "repeats must be a whole number >= 1 or 'auto', got 'many'"),
    ("repeats", 2.5, "repeats must be a whole number >= 1 or 'auto', got 2.5"),
    ("target", 3.0, "target must be a fraction between 0 and 1 (0.05 is 5%), got 3.0"),
    ("settle", 0.0, "settle must be a fraction between 0 and 1 (0.05 is 5%), got 0.0"),
    ("max_rounds", 0, "max rounds must be >= 1, got 0"),
    ("max_seconds", 0.0, "max seconds must be > 0, got 0.0"),
    ("warmup_max", -1, "warmup max must be >= 0, got -1"),
])
def test_bad_round_settings_name_themselves(field, value, message):
    with pytest.raises(ValueError) as info:
        SweepConfig(**{field: value})
    assert str(info.value) == message


def test_a_run_record_is_the_sweeps_metadata_plus_the_runs_own_fields():
    cfg = CONFIGS[1]
    metadata = {"host": "h", "device": "cpu", "device_name": "cpu", "torch_version": "2", "diffusers_version": "0",
                "model_id": "m", "model_kind": "weights", "weights_sha256": None, "family": "unet",
                "model_params": 1, "scheduler": "DDIMScheduler", "threads": 2, "peak_flops": None,
                "peak_flops_source": "none", "gpu_uuid": None, "math_mode": "float32", "tf32_matmul": None,
                "tf32_cudnn": None, "ceiling_matmul_flops": 1e11, "ceiling_conv_flops": 1e11,
                "ceiling_copy_bytes_per_s": 2e10, "unet_weight_bytes": 4_000_000, "cpu_count": 2,
                "device_memory_bytes": 8 * 2**30, "worker_id": None, "ray_node_id": None}
    ids = {"run_id": "run-1", "sweep_id": "sweep-1", "started_at": "t"}
    runs = [run for size in plan(cfg) for run in size.runs]
    records = [run_record(metadata, cfg, run, ids, telemetry_gpu=False) for run in runs]
    for rec, run in zip(records, runs):
        assert list(rec) == ["kind", "schema_version", *RUN_FIELDS]
        assert {k: rec[k] for k in metadata} == metadata
        assert (rec["mode"], rec["height"], rec["guidance_scale"], rec["cfg"], rec["vae_slicing"], rec["attention"]) == (
            run.mode, run.height, run.guidance, run.cfg, run.vae_slicing, run.attention)
        assert rec["tags"] == {"threads": 2}
        assert (rec["replicas"], rec["replica_group"], rec["replica_index"]) == (None, None, None)  # not a replica run
    replica = run_record(metadata, cfg, runs[0], {**ids, "replicas": 2, "replica_group": "g", "replica_index": 1},
                         telemetry_gpu=False)
    assert (replica["replicas"], replica["replica_group"], replica["replica_index"]) == (2, "g", 1)
    with pytest.raises(ValueError, match="needs the fields host"):
        run_record({k: v for k, v in metadata.items() if k != "host"}, cfg, runs[0], ids, False)

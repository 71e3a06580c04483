"""Derived figures with known answers, on a real warehouse of hand-made runs.

Speed-up and efficiency come from the view throughput_by_batch (their one definition), so the
hand-made runs go through the real schema: jobs rows in a DuckDB file, read back by the named
queries the dashboard uses.
"""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from generator.pipelines import presets
from warehouse import analysis, db
from warehouse.queries import Warehouse


class HandMade:
    """A real warehouse of hand-made runs. Each batch size gets measured jobs with the given times (one, or one
    per repeat), plus a warm-up and a profiled job 100x slower and 100x larger in memory that no figure may count."""

    def __init__(self, path):
        self.path = str(path)
        self._ids = itertools.count(1)

    def run(self, walls: dict[int, float | list[float]], mode: str = "static", height: int = 64, cfg: bool = False,
            failed: dict[int, str] | None = None, phases: dict[str, float] | None = None) -> str:
        """A run with the given measured job times; `failed` maps a batch size to the status of a job that
        did not finish (its only job); `phases` gives each measured job phases as shares of its time."""
        run_id = f"run-{next(self._ids):04d}"
        walls = {b: w if isinstance(w, list) else [w] for b, w in walls.items()}
        with db.writer(self.path) as con:
            con.execute("INSERT INTO runs (run_id, sweep_id, started_at, device, device_name, model_id, model_kind,"
                        " model_params, task, mode, height, width, steps, guidance_scale, dtype, cfg, schema_version) VALUES "
                        "(?, 'sweep', now(), 'cpu', 'cpu', 'embedded-tiny-ldm-txt2img', 'embedded', 2.5e6, 'txt2img',"
                        " ?, ?, ?,"
                        " 3, ?, 'float32', ?, 1)", [run_id, mode, height, height, 3.0 if cfg else 1.0, cfg])
            jobs = [(f"{run_id}-b{b}" + (f"-r{r}" if r else ""), b, r, False, False, w, "ok")
                    for b, ws in walls.items() for r, w in enumerate(ws)]
            jobs += [(f"{run_id}-b{b}-warm", b, 0, True, False, 100 * ws[0], "ok") for b, ws in walls.items()]
            jobs += [(f"{run_id}-b{b}-prof", b, 0, False, True, 100 * ws[0], "ok") for b, ws in walls.items()]
            jobs += [(f"{run_id}-b{b}-failed", b, 0, False, False, 0.01, s) for b, s in (failed or {}).items()]
            for job_id, b, repeat, warmup, profiled, wall, status in jobs:
                extra = 100 if warmup or profiled else 1
                con.execute("INSERT INTO jobs (job_id, run_id, batch_size, unet_batch, \"repeat\", warmup, profiled,"
                            " started_at, wall_s, images, status, peak_mem_bytes, schema_version) VALUES "
                            "(?, ?, ?, ?, ?, ?, ?, now(), ?, ?, ?, ?, 1)",
                            [job_id, run_id, b, 2 * b if cfg else b, repeat, warmup, profiled, wall,
                             b if status == "ok" else 0, status, 1000 * b * extra])
                for phase, share in (phases or {}).items():
                    con.execute("INSERT INTO phases (job_id, phase, start_s, duration_s, schema_version) "
                                "VALUES (?, ?, 0, ?, 1)", [job_id, phase, share * wall])
        return run_id

    def ops(self, run_id: str, batch: int, seconds: dict[str, float]) -> None:
        """Operator times of the run's profiled job at `batch`."""
        with db.writer(self.path) as con:
            for category, s in seconds.items():
                con.execute("INSERT INTO ops VALUES (?, ?, ?, 1, NULL, 1)", [f"{run_id}-b{batch}-prof", category, s])

    def throughput(self, *run_ids: str) -> pd.DataFrame:
        return Warehouse(self.path).throughput(list(run_ids))

    def tp(self, walls: dict[int, float], **run) -> pd.DataFrame:
        """The throughput rows of a new run with these measured job times."""
        return self.throughput(self.run(walls, **run))


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> HandMade:
    return HandMade(tmp_path_factory.mktemp("hand") / "w.duckdb")


# The view: measured jobs, speed-up and efficiency over the smallest measured batch.

def test_the_view_counts_measured_jobs_only(wh):
    run_id = wh.run({1: 1.0, 2: 1.5}, failed={4: "oom"})
    tp = wh.throughput(run_id)
    assert list(tp.batch_size) == [1, 2] and list(tp.jobs) == [1, 1] and list(tp.median_wall_s) == [1.0, 1.5]
    measured = db.query_df(wh.path, "SELECT job_id FROM measured_jobs WHERE run_id = ? ORDER BY job_id", [run_id])
    assert list(measured.job_id) == [f"{run_id}-b1", f"{run_id}-b2"]


def test_speedup_and_efficiency_are_over_batch_one_when_it_was_measured(wh):
    tp = wh.tp({1: 1.0, 2: 1.0, 4: 2.0, 8: 8.0})
    assert list(tp.base_batch) == [1] * 4
    assert list(tp.speedup) == [1.0, 2.0, 2.0, 1.0]
    assert list(tp.efficiency) == [1.0, 1.0, 0.5, 0.125]


@pytest.mark.parametrize("failed", [{1: "oom"}, {1: "error"}, {}], ids=["oom", "error", "missing"])
def test_speedup_and_efficiency_are_over_the_smallest_measured_batch_without_batch_one(wh, failed):
    tp = wh.tp({2: 1.0, 4: 1.0, 8: 8.0}, failed=failed)
    assert list(tp.batch_size) == [2, 4, 8] and list(tp.base_batch) == [2] * 3
    assert list(tp.speedup) == [1.0, 2.0, 0.5]
    assert list(tp.efficiency) == [1.0, 1.0, 0.125]   # speed-up / (batch / 2)
    assert tp.time_vs_batch1.isna().all()


# The cost model, applied to runs (its known answers are in test_costmodel.py).

def test_a_straight_line_past_the_old_knee_is_a_line_without_saturation(wh):
    # t = 0.5 + 0.5 B: efficiency falls below 50% from batch 4 on, yet nothing saturates.
    walls = {b: [0.5 + 0.5 * b] * 2 for b in (1, 2, 4, 8, 16)}
    run_id = wh.run(walls)
    assert (wh.throughput(run_id).set_index("batch_size").efficiency.loc[[4, 8, 16]] < 0.5).all()
    model = analysis.run_models(Warehouse(wh.path).job_costs([run_id]))[run_id]
    assert model.kind == "line" and not model.saturates
    assert (model.fixed_s.value, model.marginal_s.value) == (pytest.approx(0.5), pytest.approx(0.5))


def test_run_models_read_every_measured_job_and_nothing_else(wh):
    # Hinge at 8 with two repeats each; the warm-up and profiled jobs (100x slower) would break it.
    walls = {b: [1 + 0.1 * min(b, 8) + 1.0 * max(b - 8, 0)] * 2 for b in (1, 2, 4, 8, 16, 32)}
    run_id = wh.run(walls, failed={64: "oom"})
    costs = Warehouse(wh.path).job_costs([run_id])
    assert len(costs) == 12
    model = analysis.run_models(costs)[run_id]
    assert model.kind == "hinge" and model.knee.value == 8 and model.saturates and model.method == "repeats"
    assert (model.knee.low, model.knee.high) == (8, 8)    # identical repeats: only 8 fits exactly


def test_phase_models_name_the_phase_that_saturates_first(wh):
    walls = {b: [1.0 + 0.1 * b] * 2 for b in (1, 2, 4, 8, 16)}
    costs = Warehouse(wh.path).job_costs([wh.run(walls, phases={"encode_prompt": 0.1, "denoise": 0.8})])
    costs = costs.assign(step_s=[0.01 + 0.001 * min(b, 4) + 0.01 * max(b - 4, 0) for b in costs.batch_size])
    models = analysis.phase_models(costs)
    assert set(models) == {"encode_s", "step_s"}           # no decode phase was recorded
    first = analysis.first_saturating(models)
    assert (first.phase, first.knee, first.steady) == ("one denoising step", models["step_s"].knee, ("text encoding",))
    assert first.knee.low <= 4 <= first.knee.high
    steady = analysis.first_saturating({"encode_s": models["encode_s"]})
    assert steady.phase is None and steady.phases == steady.steady == ("text encoding",)


# One run: the largest batch against the smallest, and whether batching paid off.

def test_scaling_compares_the_largest_batch_with_the_smallest(wh):
    s = analysis.scaling(wh.tp({8: 2.6, 1: 1.0, 4: 1.5}))
    assert (s.base_batch, s.top_batch) == (1, 8)
    assert s.time_ratio == pytest.approx(2.6) and s.speedup == pytest.approx(8 / 2.6)
    assert s.efficiency == pytest.approx(1 / 2.6)
    s = analysis.scaling(wh.tp({2: 1.0, 8: 2.0}, failed={1: "oom"}))
    assert (s.base_batch, s.top_batch, s.speedup) == (2, 8, 2.0)


def test_scaling_of_one_batch_size_and_of_none(wh):
    s = analysis.scaling(wh.tp({4: 2.0}))
    assert (s.base_batch, s.top_batch, s.base_images_per_s) == (4, 4, 2.0)
    assert analysis.scaling(wh.throughput("no-such-run")) is None


def test_batch_intervals_give_none_with_too_few_jobs_and_call_that_uncertain(wh):
    run_id = wh.run({1: [1.0, 1.01, 0.99, 1.0, 1.02, 0.98], 2: [1.5, 1.6, 1.4]})
    rows = analysis.batch_intervals(Warehouse(wh.path).job_costs([run_id])).set_index("batch_size")
    six, three = rows.loc[1], rows.loc[2]
    assert (six.jobs, six.low_s, six.high_s, six.too_few, six.uncertain) == (6, 0.98, 1.02, False, False)
    assert six.half_width == pytest.approx(0.02)
    assert three.jobs == 3 and three.too_few and three.uncertain and three.needed == 6
    assert np.isnan(three.low_s) and np.isnan(three.high_s) and np.isnan(three.half_width)
    assert three.median_s == 1.5


def test_the_time_ratio_is_uncertain_without_an_interval_and_sure_only_within_the_bound(wh):
    sure = wh.run({1: [1.0, 1.01, 0.99, 1.0, 1.005, 0.995], 8: [2.0, 2.02, 1.98, 2.0, 2.01, 1.99]})
    s = analysis.scaling(wh.throughput(sure), Warehouse(wh.path).job_costs([sure]))
    assert (s.ratio_low, s.ratio_high) == (pytest.approx(1.98 / 1.01), pytest.approx(2.02 / 0.99))
    assert not s.too_few and not s.uncertain and s.jobs == 6
    few = wh.run({1: [1.0, 1.01, 0.99], 8: [2.0, 2.02, 1.98, 2.0, 2.0, 2.0]})
    s = analysis.scaling(wh.throughput(few), Warehouse(wh.path).job_costs([few]))
    assert s.too_few and s.uncertain and s.jobs == 3 and np.isnan(s.ratio_low)
    # Without the jobs no interval was made: not claimed sure either; one batch size has no ratio at all.
    assert analysis.scaling(wh.throughput(sure)).uncertain and not analysis.scaling(wh.throughput(sure)).too_few
    assert not analysis.scaling(wh.tp({4: [2.0] * 6})).uncertain


def test_trust_takes_the_widest_interval_of_the_batch_sizes_that_have_one(wh):
    run_id = wh.run({1: [1.0, 1.01, 0.99, 1.0, 1.02, 0.98], 2: [1.5, 3.0, 1.0], 4: [2.0, 2.0, 2.0]})
    t = analysis.trust("r", analysis.batch_intervals(Warehouse(wh.path).job_costs([run_id])), {})
    assert (t.widest_batch, t.too_few, t.jobs_per_batch) == (1, (2, 4), 3) and t.widest == pytest.approx(0.02)
    assert not t.sure_of_none
    none = wh.run({1: [1.0, 1.5], 2: [2.0, 2.0, 2.0]})
    t = analysis.trust("r", analysis.batch_intervals(Warehouse(wh.path).job_costs([none])), {})
    assert t.sure_of_none and t.widest_batch is None and np.isnan(t.widest) and t.too_few == (1, 2)


# The sweep: effects across runs.

def spread(value: float, width: float = 0.02) -> list[float]:
    """Eight job times around `value`, within ±width of it."""
    return [value * (1 + width * d) for d in (0.0, 0.5, -0.5, 1.0, -1.0, 0.25, -0.25, 0.0)]


def test_stream_over_sequential_is_like_for_like_and_splits_the_denoising_loop(wh):
    half = {"denoise": 0.5}
    stream = wh.run({1: 1.0, 2: 1.0, 4: 1.0}, mode="stream", phases={"denoise": 0.25})
    seq = wh.run({1: 1.0, 2: 2.0}, mode="sequential", phases=half)
    other_size = wh.run({1: 9.0, 2: 9.0}, mode="sequential", height=128, phases=half)
    other_cfg = wh.run({1: 9.0, 2: 9.0}, mode="sequential", cfg=True, phases=half)
    gains = analysis.stream_over_sequential(Warehouse(wh.path).job_costs([stream, seq, other_size, other_cfg]))
    assert len(gains) == 1   # 128 px and CFG on have no stream run to compare with
    g = gains[0]
    assert (g.size, g.cfg, g.batch) == ("64x64", False, 2)
    assert g.end_to_end == pytest.approx(2.0) and g.denoise == pytest.approx(4.0)   # 1.0 / 0.25
    assert g.over_static is None and g.static_won is None        # no static run of the setting
    assert analysis.stream_over_sequential(Warehouse(wh.path).job_costs([stream])) == []


def test_stream_is_held_against_static_of_the_same_setting_and_a_winner_named_beyond_the_interval(wh):
    seq = wh.run({1: spread(1.0), 8: spread(8.0)}, mode="sequential", height=72)
    stream = wh.run({1: spread(1.0), 8: spread(2.8)}, mode="stream", height=72)
    static = wh.run({1: spread(1.0), 8: spread(2.16)}, mode="static", height=72)   # stream at 0.77x of static
    (g,) = analysis.stream_over_sequential(Warehouse(wh.path).job_costs([seq, stream, static]))
    assert g.end_to_end == pytest.approx(8.0 / 2.8) and g.end_to_end_range[0] > 1
    assert (g.static_batch, g.over_static) == (8, pytest.approx(2.16 / 2.8))
    assert g.over_static_range[1] < 1 and g.static_won is True
    fast = wh.run({1: spread(1.0), 8: spread(4.0)}, mode="static", height=72)    # a second static run: its own
    gains = analysis.stream_over_sequential(Warehouse(wh.path).job_costs([seq, stream, static, fast]))
    assert [(g.over_static, g.static_won) for g in gains] == [(pytest.approx(2.16 / 2.8), True),
                                                              (pytest.approx(4.0 / 2.8), False)]
    level = wh.run({1: spread(1.0), 8: spread(2.8, width=0.3)}, mode="static", height=80)
    stream_80 = wh.run({1: spread(1.0), 8: spread(2.8, width=0.3)}, mode="stream", height=80)
    seq_80 = wh.run({1: spread(1.0), 8: spread(8.0)}, mode="sequential", height=80)
    (g,) = analysis.stream_over_sequential(Warehouse(wh.path).job_costs([level, stream_80, seq_80]))
    assert g.over_static_range[0] < 1 < g.over_static_range[1] and g.static_won is None


def test_runs_with_other_torch_threads_are_not_compared(wh):
    stream = wh.run({1: 1.0, 2: 1.0}, mode="stream", height=88)
    seq = wh.run({1: 1.0, 2: 2.0}, mode="sequential", height=88)
    with db.writer(wh.path) as con:
        con.execute("UPDATE runs SET threads = CASE run_id WHEN ? THEN 1 ELSE 2 END WHERE run_id IN (?, ?)",
                    [stream, stream, seq])
    assert analysis.stream_over_sequential(Warehouse(wh.path).job_costs([stream, seq])) == []
    small, large = wh.run({1: 1.0, 4: 1.0}, height=88), wh.run({1: 1.0, 4: 2.0}, height=176)
    with db.writer(wh.path) as con:
        con.execute("UPDATE runs SET threads = CASE run_id WHEN ? THEN 1 ELSE 2 END WHERE run_id IN (?, ?)",
                    [small, small, large])
    assert analysis.resolution_gain(Warehouse(wh.path).job_costs([small, large])) == []


def test_resolution_gain_is_run_against_run_at_the_largest_common_batch(wh):
    small = wh.run({1: spread(1.0), 4: spread(1.0), 8: spread(1.0)}, height=96)
    large = wh.run({1: spread(1.0), 4: spread(2.0)}, height=192)
    other_mode = wh.run({1: 1.0, 4: 4.0}, height=256, mode="stream")
    gains = analysis.resolution_gain(Warehouse(wh.path).job_costs([small, large, other_mode]))
    assert len(gains) == 1
    g = gains[0]
    assert (g.mode, g.cfg, g.base, g.batch, g.small_px, g.large_px) == ("static", False, 1, 4, 96, 192)
    assert (g.small_speedup, g.large_speedup) == (pytest.approx(4.0), pytest.approx(2.0))
    assert g.small_label.endswith(f"({small})") and g.large_label.endswith(f"({large})")
    assert g.large_range[1] < g.small_range[0] and g.change == "less"
    assert analysis.resolution_gain(Warehouse(wh.path).job_costs([small])) == []


def test_two_runs_at_one_size_are_each_held_against_the_other_size_never_pooled(wh):
    """3.9x and 4.8x at the small size: no figure is their median, 4.4x, that no run shows."""
    a = wh.run({1: spread(1.0), 8: spread(8 / 3.9)}, height=104)
    b = wh.run({1: spread(1.0), 8: spread(8 / 4.8)}, height=104)
    large = wh.run({1: spread(1.0), 8: spread(8 / 2.9)}, height=208)
    gains = analysis.resolution_gain(Warehouse(wh.path).job_costs([a, b, large]))
    assert sorted(round(g.small_speedup, 2) for g in gains) == [3.9, 4.8]
    assert all(g.large_speedup == pytest.approx(2.9) for g in gains)
    assert {g.change for g in gains} == {"less"}


def test_effects_of_a_sweep(wh):
    flat = {b: [1.0 + 0.01 * b, 1.0 + 0.012 * b] for b in (1, 2, 4, 8)}
    full = {b: [1 + 0.1 * min(b, 4) + 2.0 * max(b - 4, 0)] * 2 for b in (1, 2, 4, 8, 16)}
    plain, saturated = wh.run(flat), wh.run(full, cfg=True)
    runs = Warehouse(wh.path).runs()
    runs = runs[runs.run_id.isin([plain, saturated])]
    costs = Warehouse(wh.path).job_costs([plain, saturated])
    models = analysis.run_models(costs)
    e = analysis.effects(runs[runs.run_id == plain], wh.throughput(plain), {plain: models[plain]},
                         costs[costs.run_id == plain])
    assert [s.model for s in e.shared] == [models[plain]] and e.saturated == [] and not e.cfg
    assert (e.shared[0].overhead, e.shared[0].weight_read) == (None, None)   # no profile, no roofline given
    assert (e.stream, e.resolution) == ([], [])
    e = analysis.effects(runs, wh.throughput(plain, saturated), models, costs)
    assert [s.model for s in e.saturated] == [models[saturated]] and e.cfg


def test_sweep_summary(wh):
    a, b = wh.run({1: 1.0, 2: 1.5}, height=64), wh.run({4: 1.0}, height=128, mode="stream", cfg=True)
    runs = Warehouse(wh.path).runs()
    s = analysis.sweep_summary(runs[runs.run_id.isin([a, b])], wh.throughput(a, b))
    assert (s.runs, s.sizes, s.modes, s.batch_sizes, s.guidance) == (
        2, ("64x64", "128x128"), ("static", "stream"), (1, 2, 4), (1.0, 3.0))
    assert s.model_params == 2.5e6 and s.steps == (3,) and analysis.uses_embedded_model(runs)


def test_random_and_trained_embedded_runs_are_told_apart_by_the_weights_hash():
    runs = pd.DataFrame({"model_kind": ["embedded", "weights", "preset", "embedded"],
                         "weights_sha256": [None, None, None, "ab12"]})
    assert analysis.uses_embedded_model(runs.iloc[:1]) and not analysis.uses_trained_model(runs.iloc[:1])
    assert analysis.uses_trained_model(runs.iloc[3:]) and not analysis.uses_embedded_model(runs.iloc[3:])
    assert not analysis.draws_noise(runs.iloc[[1, 3]]) and analysis.draws_noise(runs.iloc[[2]])
    assert analysis.draws_noise(runs.iloc[[0]])
    old = pd.DataFrame({"model_kind": ["embedded"]})  # a warehouse read before migration 13: no hash column
    assert analysis.uses_embedded_model(old) and not analysis.uses_trained_model(old)


def test_every_preset_of_the_generator_is_placed_as_real_shapes_or_toy():
    """The warehouse cannot import the generator: this holds its two lists against the generator's presets."""
    placed = set(analysis.PRESETS_REAL_SHAPES) | set(analysis.PRESETS_TOY)
    assert not set(analysis.PRESETS_REAL_SHAPES) & set(analysis.PRESETS_TOY)
    assert placed == set(presets.ARCHS) - {presets.DEFAULT_ARCH}
    assert {a for a in presets.ARCHS if "tiny" in a} - {presets.DEFAULT_ARCH} <= set(analysis.PRESETS_TOY)


@pytest.mark.parametrize("model_id, arch", [
    ("preset-sd15-random-txt2img", "sd15"), ("preset-ldm-inpaint-tiny-random-inpaint", "ldm-inpaint-tiny"),
    ("preset-sd15-inpaint-random-inpaint", "sd15-inpaint"), ("embedded-tiny-ldm-txt2img", None),
    ("/models/preset-sd15", None),
])
def test_a_preset_is_read_from_the_model_id(model_id, arch):
    assert analysis.preset_arch(model_id) == arch


def test_a_preset_is_read_from_the_model_kind_column():
    assert analysis.uses_preset(["weights", "preset"]) and not analysis.uses_preset(["embedded", "weights"])


def test_presets_used_split_real_shapes_from_toys_and_an_unknown_preset_is_no_real_shape():
    used = analysis.presets_used(["preset-sdxl-random-txt2img", "preset-ldm-inpaint-tiny-random-inpaint",
                                  "preset-future-random-txt2img", "/models/sd15", "preset-sdxl-random-txt2img"])
    assert used == analysis.PresetUse(real=("sdxl",), toy=("future", "ldm-inpaint-tiny"))


# Phases, memory and operators.

def test_a_phase_share_is_the_views_median_of_each_jobs_share(wh):
    """One definition: the median over jobs of a phase's share of its job, not a median time over a sum of
    median times. Three jobs where the two differ: denoise shares 0.5, 0.6, 0.9 of jobs of 1, 2 and 4 s
    (the other reading: 1.2 s of 0.4 + 1.2 + 0.3 s, 63%)."""
    run_id = wh.run({1: [1.0, 2.0, 4.0], 4: [2.0, 2.0, 2.0]}, phases={"denoise": 0.5, "decode": 0.2})
    with db.writer(wh.path) as con:
        con.execute("UPDATE phases SET duration_s = CASE job_id WHEN ? THEN 1.2 WHEN ? THEN 3.6 END "
                    "WHERE phase = 'denoise' AND job_id IN (?, ?)", [f"{run_id}-b1-r1", f"{run_id}-b1-r2"] * 2)
    rows = Warehouse(wh.path).phase_breakdown([run_id])
    assert analysis.phase_share_ends(rows, "denoise") == (1, pytest.approx(0.6), 4, pytest.approx(0.5))
    one = rows[rows.batch_size == 1].set_index("phase").median_s
    assert one["denoise"] / one.sum() == pytest.approx(1.2 / 1.9)   # the other definition reads otherwise
    assert analysis.phase_share_ends(rows, "encode_prompt") is None
    assert analysis.phase_share_ends(rows.head(0), "denoise") is None


def test_phase_breakdown_shows_the_rest_of_the_job_outside_every_phase(wh):
    run_id = wh.run({1: 1.0, 2: 2.0}, phases={"encode_prompt": 0.1, "denoise": 0.6, "decode": 0.2})
    rows = Warehouse(wh.path).phase_breakdown([run_id])
    outside = rows[rows.phase == "outside"].set_index("batch_size").median_s
    assert list(outside) == [pytest.approx(0.1), pytest.approx(0.2)]
    assert rows[rows.batch_size == 1].set_index("phase").median_share.to_dict() == pytest.approx(
        {"encode_prompt": 0.1, "denoise": 0.6, "decode": 0.2, "outside": 0.1})


def test_step_time_per_image_divides_by_the_images_the_call_carried(wh):
    plain, cfg = wh.run({4: 1.0}, mode="stream"), wh.run({4: 1.0}, mode="stream", cfg=True)
    with db.writer(wh.path) as con:   # stream, batch 4: calls of 1, 2, 2 rows; with CFG twice the rows
        for run_id, rows in ((plain, (1, 2, 2)), (cfg, (2, 4, 4))):
            for i, r in enumerate(rows):
                con.execute("INSERT INTO steps VALUES (?, 0, ?, NULL, ?, ?, 0.2, 1)", [f"{run_id}-b4", i, r, i * 0.2])
    per_image = db.query_df(wh.path, "SELECT run_id, step_index, duration_per_image_s FROM step_times "
                                     "WHERE run_id IN (?, ?) ORDER BY run_id, step_index", [plain, cfg])
    assert list(per_image.duration_per_image_s) == pytest.approx([0.2, 0.1, 0.1] * 2)


def test_roofline_floor_is_the_larger_of_compute_and_weight_reads(wh):
    compute, memory = wh.run({1: 1.0, 4: 1.0}, phases={"denoise": 0.5}), wh.run({1: 1.0}, phases={"denoise": 0.5})
    with db.writer(wh.path) as con:
        con.execute("UPDATE runs SET ceiling_matmul_flops = 1e9, ceiling_conv_flops = 2e9, "
                    "ceiling_copy_bytes_per_s = 1e9, unet_weight_bytes = 1e6, peak_flops = 4e9 "
                    "WHERE run_id IN (?, ?)", [compute, memory])
        # 1e9 FLOPs at the conv ceiling: 0.5 s; batch 4: 4e8 FLOPs, 0.2 s; weights 10 calls x 1 MB at 1 GB/s: 0.01 s.
        con.execute("UPDATE jobs SET unet_flops_total = 1e9 * batch_size / 4 * CASE batch_size WHEN 1 THEN 4 "
                    "ELSE 0.4 END, unet_calls = 10 WHERE run_id = ?", [compute])
        con.execute("UPDATE jobs SET unet_flops_total = 1e6, unet_calls = 100 WHERE run_id = ?", [memory])
    roof = Warehouse(wh.path).roofline([compute, memory]).set_index(["run_id", "batch_size"])
    assert roof.loc[(compute, 1)].floor_s == pytest.approx(0.5) and roof.loc[(compute, 1)].above_floor_share == 0
    assert roof.loc[(compute, 4)].floor_s == pytest.approx(0.2)
    assert roof.loc[(compute, 4)].above_floor_share == pytest.approx(0.6)            # denoise 0.5 s
    assert roof.loc[(compute, 4)].datasheet_floor_s == pytest.approx(0.1)
    assert roof.loc[(memory, 1)].floor_s == pytest.approx(0.1)                        # 100 x 1 MB at 1 GB/s
    ends = analysis.roofline_ends(Warehouse(wh.path).roofline([compute, memory]))
    assert len(ends) == 1 and (ends[0].low_batch, ends[0].high_batch) == (1, 4)
    assert (ends[0].low_share, ends[0].high_share) == (pytest.approx(0.0), pytest.approx(0.6))
    assert ends[0].above_measured is None


def test_roofline_ceilings_are_the_best_of_the_sweep_and_a_floor_above_the_time_is_flagged(wh):
    quiet, busy = wh.run({1: 1.0, 2: 1.0}, phases={"denoise": 0.5}), wh.run({1: 1.0, 2: 1.0}, phases={"denoise": 0.5})
    with db.writer(wh.path) as con:   # the busy run timed its ceilings at a tenth; the quiet one's hold for both
        con.execute("UPDATE runs SET sweep_id = 'ceilings', ceiling_matmul_flops = CASE run_id WHEN ? THEN 1e10 "
                    "ELSE 1e9 END, ceiling_conv_flops = 0, ceiling_copy_bytes_per_s = 1e9, unet_weight_bytes = 0 "
                    "WHERE run_id IN (?, ?)", [quiet, quiet, busy])
        con.execute("UPDATE jobs SET unet_flops_total = 1e9 * batch_size * 4, unet_calls = 1 WHERE run_id IN (?, ?)",
                    [quiet, busy])
    roof = Warehouse(wh.path).roofline([quiet, busy]).set_index(["run_id", "batch_size"])
    assert roof.loc[(busy, 1)].ceiling_flops == 1e10 and roof.loc[(busy, 1)].floor_s == pytest.approx(0.4)
    assert roof.loc[(busy, 2)].floor_s == pytest.approx(0.8) and roof.loc[(busy, 2)].above_floor_share < 0
    ends = {e.label[-9:-1]: e for e in analysis.roofline_ends(Warehouse(wh.path).roofline([quiet, busy]))}
    assert ends[busy].above_measured == 2 and ends[quiet].above_measured == 2


def test_a_runs_ceilings_are_pooled_only_with_runs_under_its_own_settings(wh):
    one, two, other_dtype = (wh.run({1: 1.0}, phases={"denoise": 0.5}) for _ in range(3))
    with db.writer(wh.path) as con:   # the same sweep and device; one, two and four times the ceiling
        con.execute("UPDATE runs SET sweep_id = 'threads', host = 'box', ceiling_conv_flops = 0, "
                    "ceiling_matmul_flops = CASE run_id WHEN ? THEN 1e9 WHEN ? THEN 2e9 ELSE 4e9 END, "
                    "ceiling_copy_bytes_per_s = CASE run_id WHEN ? THEN 1e8 ELSE 3e8 END, "
                    "threads = CASE run_id WHEN ? THEN 1 ELSE 2 END, "
                    "dtype = CASE run_id WHEN ? THEN 'bfloat16' ELSE 'float32' END WHERE run_id IN (?, ?, ?)",
                    [one, two, one, one, other_dtype, one, two, other_dtype])
    ceilings = db.query_df(wh.path, "SELECT * FROM run_ceilings WHERE list_contains(?, run_id)",
                           [[one, two, other_dtype]]).set_index("run_id")
    assert ceilings.loc[one].tolist() == [1e9, 1e8]          # not the two-thread run's 2e9
    assert ceilings.loc[two].tolist() == [2e9, 3e8]          # not the bfloat16 run's 4e9
    assert ceilings.loc[other_dtype].tolist() == [4e9, 3e8]
    with db.writer(wh.path) as con:   # the same settings: the best of the two holds for both
        con.execute("UPDATE runs SET threads = 2 WHERE run_id = ?", [one])
    ceilings = db.query_df(wh.path, "SELECT * FROM run_ceilings WHERE list_contains(?, run_id)",
                           [[one, two]]).set_index("run_id")
    assert ceilings.loc[one].tolist() == ceilings.loc[two].tolist() == [2e9, 3e8]


def test_published_figures_are_per_image_step_with_the_speedup_over_their_batch_one(tmp_path):
    path = tmp_path / "p.toml"
    path.write_text('[[figure]]\nsetting = "s"\ndevice = "d"\nbatch = 1\nseconds_per_image = 2.0\nsteps = 50\n'
                    'source = "x"\n[[figure]]\nsetting = "s"\ndevice = "d"\nbatch = 8\nimage_steps_per_s = 100.0\n'
                    'source = "x"\n[[figure]]\nsetting = "t"\ndevice = "d"\nbatch = 16\nspeedup = 3.2\nsource = "y"\n')
    table = analysis.published_figures(db.published_rows(path))
    assert list(table.ms_per_image_step[:2]) == pytest.approx([40.0, 10.0]) and pd.isna(table.ms_per_image_step[2])
    assert list(table.speedup) == pytest.approx([1.0, 4.0, 3.2])
    assert len(analysis.published_figures(db.published_rows())) >= 10   # the shipped table parses


def test_own_figures_are_per_image_step_at_the_smallest_and_the_best_batch(wh):
    run_id = wh.run({1: 0.3, 2: 0.3, 4: 0.9})          # best images/s at batch 2
    own = analysis.own_figures(wh.throughput(run_id), pd.Series({run_id: 3}))
    assert list(own.batch) == [1, 2]
    assert list(own.ms_per_image_step) == pytest.approx([100.0, 50.0]) and list(own.speedup) == [1.0, 2.0]


def test_memory_peaks_count_measured_jobs_only(wh):
    run_id = wh.run({1: 1.0, 2: 1.0}, failed={4: "oom"})
    mem = Warehouse(wh.path).memory_by_batch([run_id]).set_index("batch_size")
    assert list(mem.peak_mem_bytes[[1, 2]]) == [1000, 2000]   # warm-up and profiled jobs used 100x
    assert pd.isna(mem.peak_mem_bytes[4]) and not mem.fitted[4]


def test_memory_fits_name_the_largest_batch_that_fitted_and_the_first_that_failed(wh):
    ok, oom = wh.run({1: 1.0, 2: 1.0}), wh.run({1: 1.0, 2: 1.0}, failed={8: "oom", 4: "oom"})
    fits = {f.label[-9:-1]: f for f in analysis.memory_fits(Warehouse(wh.path).memory_by_batch([ok, oom]))}
    assert (fits[ok].largest_fitted, fits[ok].first_failed) == (2, None)
    assert (fits[oom].largest_fitted, fits[oom].first_failed, fits[oom].failed_statuses) == (2, 4, "oom")


def test_conv_share_is_the_range_over_batch_sizes(wh):
    run_id = wh.run({1: 1.0, 2: 1.0})
    wh.ops(run_id, 1, {"conv": 1.0, "attention": 3.0})
    wh.ops(run_id, 2, {"conv": 3.0, "attention": 1.0})
    c = analysis.conv_share(Warehouse(wh.path).op_mix([run_id]))
    assert (c.low, c.high) == (0.25, 0.75) and c.overhead is None
    wh.ops(run_id, 1, {"overhead": 4.0})
    wh.ops(run_id, 2, {"overhead": 1.0})
    c = analysis.conv_share(Warehouse(wh.path).op_mix([run_id]))
    assert c.overhead == (1, pytest.approx(0.5), 2, pytest.approx(0.2))
    assert analysis.conv_share(Warehouse(wh.path).op_mix(["no-such-run"])) is None

"""Derived figures with known answers, on a real warehouse of hand-made runs.

Speed-up and efficiency come from the view throughput_by_batch (their one definition), so the
hand-made runs go through the real schema: jobs rows in a DuckDB file, read back by the named
queries the dashboard uses.
"""

from __future__ import annotations

import itertools

import pandas as pd
import pytest

from warehouse import analysis, db, queries


class HandMade:
    """A real warehouse of hand-made runs. Each batch size gets one measured job with the given time,
    plus a warm-up and a profiled job 100x slower that no figure may count."""

    def __init__(self, path):
        self.path = str(path)
        self._ids = itertools.count(1)

    def run(self, walls: dict[int, float], mode: str = "static", height: int = 64, cfg: bool = False,
            failed: dict[int, str] | None = None) -> str:
        """A run with the given measured job times; `failed` maps a batch size to the status of a job that
        did not finish (its only job)."""
        run_id = f"run-{next(self._ids):04d}"
        with db.writer(self.path) as con:
            con.execute("INSERT INTO runs (run_id, sweep_id, started_at, device, device_name, model_id, model_params,"
                        " task, mode, height, width, steps, guidance_scale, dtype, cfg, schema_version) VALUES "
                        "(?, 'sweep', now(), 'cpu', 'cpu', 'embedded-tiny-ldm-txt2img', 2.5e6, 'txt2img', ?, ?, ?,"
                        " 3, ?, 'float32', ?, 1)", [run_id, mode, height, height, 3.0 if cfg else 1.0, cfg])
            jobs = [(f"{run_id}-b{b}", b, False, False, w, "ok") for b, w in walls.items()]
            jobs += [(f"{run_id}-b{b}-warm", b, True, False, 100 * w, "ok") for b, w in walls.items()]
            jobs += [(f"{run_id}-b{b}-prof", b, False, True, 100 * w, "ok") for b, w in walls.items()]
            jobs += [(f"{run_id}-b{b}-failed", b, False, False, 0.01, s) for b, s in (failed or {}).items()]
            for job_id, b, warmup, profiled, wall, status in jobs:
                con.execute("INSERT INTO jobs (job_id, run_id, batch_size, unet_batch, \"repeat\", warmup, profiled,"
                            " started_at, wall_s, images, status, peak_mem_bytes, schema_version) VALUES "
                            "(?, ?, ?, ?, 0, ?, ?, now(), ?, ?, ?, ?, 1)",
                            [job_id, run_id, b, 2 * b if cfg else b, warmup, profiled, wall,
                             b if status == "ok" else 0, status, 1000 * b])
        return run_id

    def ops(self, run_id: str, batch: int, seconds: dict[str, float]) -> None:
        """Operator times of the run's profiled job at `batch`."""
        with db.writer(self.path) as con:
            for category, s in seconds.items():
                con.execute("INSERT INTO ops VALUES (?, ?, ?, 1, NULL, 1)", [f"{run_id}-b{batch}-prof", category, s])

    def throughput(self, *run_ids: str) -> pd.DataFrame:
        return queries.throughput(self.path, list(run_ids))

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


def test_knee_is_where_the_views_efficiency_drops_below_half(wh):
    assert analysis.knee(wh.tp({1: 1.0, 2: 1.0, 4: 2.0, 8: 8.0})) == 8    # 4 sits at exactly 0.5
    assert analysis.knee(wh.tp({1: 1.0, 2: 1.1, 4: 1.2})) is None
    assert analysis.knee(wh.tp({1: 1.0, 2: 2.5})) == 2
    assert analysis.knee(wh.tp({2: 1.0, 4: 1.0, 8: 8.0}, failed={1: "oom"})) == 8


def test_knees_per_run_name_the_batch_they_are_over(wh):
    a = wh.run({1: 1.0, 2: 2.5})
    b = wh.run({2: 1.0, 4: 1.1}, failed={1: "oom"})
    rows = analysis.knees(wh.throughput(a, b)).set_index("label")
    assert list(rows.base_batch) == [1, 2]
    assert rows.knee.iloc[0] == 2 and pd.isna(rows.knee.iloc[1])
    assert list(rows.best_images_per_s) == pytest.approx([1.0, 4 / 1.1])


# The fixed + marginal line.

def test_fit_recovers_fixed_and_marginal_cost_before_the_knee(wh):
    # t(B) = 0.9 + 0.1 B up to batch 8, then the device saturates (batch 32 far above the line).
    fit = analysis.fit_fixed_marginal(wh.tp({b: 0.9 + 0.1 * b for b in (1, 2, 4, 8)} | {32: 20.0}))
    assert fit.fixed_s == pytest.approx(0.9) and fit.marginal_s == pytest.approx(0.1)
    assert fit.fixed_share_at_1 == pytest.approx(0.9)
    assert fit.knee == 32 and fit.batch_sizes == (1, 2, 4, 8)
    res = fit.residuals.set_index("batch_size")
    assert res.residual_s.loc[[1, 2, 4, 8]].abs().max() < 1e-9 and res.residual_s[32] == pytest.approx(20.0 - 4.1)
    assert list(res.in_fit) == [True] * 4 + [False]


def test_fit_when_the_knee_comes_at_once(wh):
    fit = analysis.fit_fixed_marginal(wh.tp({1: 1.0, 2: 2.5, 4: 5.0}))   # worse than no sharing
    assert fit.knee == 2 and fit.batch_sizes == (1, 2) and fit.fixed_s < 0 and fit.fixed_share_at_1 < 0


def test_fit_needs_two_points(wh):
    assert analysis.fit_fixed_marginal(wh.tp({4: 1.0})) is None


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


@pytest.mark.parametrize("walls, kind", [
    ({1: 1.0, 16: 2.0}, "paid_off"),   # 8x for 16x: efficiency 0.5
    ({1: 1.0, 16: 6.0}, "faded"),      # 2.7x: efficiency 0.17, speed-up above 1.5
    ({1: 1.0, 4: 3.6}, "little"),      # 1.1x
])
def test_batching_outcome_tells_a_payoff_from_a_busy_device(wh, walls, kind):
    tp = wh.tp(walls)
    o = analysis.batching_outcome(tp, device="cuda")
    top = tp.iloc[-1]
    assert o.kind == kind and o.speedup == top.speedup and o.batch_ratio == top.batch_size and o.device == "cuda"


def test_batching_outcome_for_sequential_mode_and_one_batch(wh):
    assert analysis.batching_outcome(wh.tp({1: 1.0, 4: 4.0}), mode="sequential").kind == "sequential"
    assert analysis.batching_outcome(wh.tp({4: 1.0})) is None


# The sweep: effects across runs.

def test_stream_over_sequential_at_the_largest_batch_both_measured(wh):
    stream = wh.run({1: 1.0, 2: 1.0, 4: 1.0}, mode="stream")
    seq = wh.run({1: 1.0, 2: 2.0}, mode="sequential")
    gain = analysis.stream_over_sequential(wh.throughput(stream, seq))
    assert gain.batch == 2 and gain.ratio == pytest.approx(2.0)
    assert analysis.stream_over_sequential(wh.throughput(stream)) is None


def test_resolution_gain_is_the_best_speedup_per_size(wh):
    small = wh.run({1: 1.0, 4: 1.0}, height=64)
    large = wh.run({1: 1.0, 4: 2.0}, height=128)
    gain = analysis.resolution_gain(wh.throughput(small, large))
    assert (gain.small_px, gain.large_px, gain.small_speedup, gain.large_speedup) == (64, 128, 4.0, 2.0)
    assert analysis.resolution_gain(wh.throughput(small)) is None


def test_effects_of_a_sweep(wh):
    plain, knee_cfg = wh.run({1: 1.0, 2: 1.0}), wh.run({1: 1.0, 2: 2.5}, cfg=True)
    runs = queries.runs(wh.path)
    e = analysis.effects(runs[runs.run_id == plain], wh.throughput(plain))
    assert (e.knee_reached, e.cfg, e.stream, e.resolution) == (False, False, None, None)
    e = analysis.effects(runs[runs.run_id.isin([plain, knee_cfg])], wh.throughput(plain, knee_cfg))
    assert e.knee_reached and e.cfg


def test_sweep_summary(wh):
    a, b = wh.run({1: 1.0, 2: 1.5}, height=64), wh.run({4: 1.0}, height=128, mode="stream", cfg=True)
    runs = queries.runs(wh.path)
    s = analysis.sweep_summary(runs[runs.run_id.isin([a, b])], wh.throughput(a, b))
    assert (s.runs, s.sizes, s.modes, s.batch_sizes, s.guidance) == (
        2, ("64x64", "128x128"), ("static", "stream"), (1, 2, 4), (1.0, 3.0))
    assert s.model_params == 2.5e6 and s.steps == 3 and analysis.uses_embedded_model(runs.model_id)
    assert not analysis.uses_embedded_model(["/models/sd15"])


# Phases, memory and operators.

def test_phase_shares_sum_to_one_per_batch():
    phases = pd.DataFrame({"batch_size": [1, 1, 4, 4], "phase": ["denoise", "decode"] * 2,
                           "median_s": [0.3, 0.1, 0.6, 0.6]})
    shares = analysis.phase_shares(phases)
    assert list(shares.share) == pytest.approx([0.75, 0.25, 0.5, 0.5])
    assert analysis.phase_share_ends(shares, "denoise") == (1, pytest.approx(0.75), 4, pytest.approx(0.5))
    assert analysis.phase_share_ends(shares, "encode_prompt") is None
    assert analysis.phase_share_ends(shares.head(0), "denoise") is None


def test_memory_fits_name_the_largest_batch_that_fitted_and_the_first_that_failed(wh):
    ok, oom = wh.run({1: 1.0, 2: 1.0}), wh.run({1: 1.0, 2: 1.0}, failed={8: "oom", 4: "oom"})
    fits = {f.label[-9:-1]: f for f in analysis.memory_fits(queries.memory_by_batch(wh.path, [ok, oom]))}
    assert (fits[ok].largest_fitted, fits[ok].first_failed) == (2, None)
    assert (fits[oom].largest_fitted, fits[oom].first_failed, fits[oom].failed_statuses) == (2, 4, "oom")


def test_conv_share_is_the_range_over_batch_sizes(wh):
    run_id = wh.run({1: 1.0, 2: 1.0})
    wh.ops(run_id, 1, {"conv": 1.0, "attention": 3.0})
    wh.ops(run_id, 2, {"conv": 3.0, "attention": 1.0})
    c = analysis.conv_share(queries.op_mix(wh.path, [run_id]))
    assert (c.low, c.high) == (0.25, 0.75)
    assert analysis.conv_share(queries.op_mix(wh.path, ["no-such-run"])) is None

"""When warm-up has settled and when rounds stop, on synthetic job times; and the runner following
the rounds (with a stand-in for the model, the sampler and the ceilings). No model needed."""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from pathlib import Path

import numpy as np
import pytest

from generator.sweep import loop as sweep_module
from generator.sweep.config import AUTO, SweepConfig
from generator.sweep.job import JobResult
from generator.sweep.plan import plan
from generator.sweep.rounds import MIN_ROUNDS, Stop, interval_half_width, run_reason, settled, stop_rule
from spool import SpoolWriter, record
import stats


def _times(n: int, spread: float, seed: int = 1) -> list[float]:
    """n job times around 1 s with a relative spread (standard deviation) `spread`."""
    return list(1.0 + spread * np.random.default_rng(seed).standard_normal(n))


# -- warm-up until settled ----------------------------------------------------------------------


@pytest.mark.parametrize("times, done", [
    ([], False),                     # nothing run yet
    ([2.0], False),                  # one time: nothing to compare it with
    ([2.0, 1.2], False),             # 40% apart: still warming
    ([2.0, 1.2, 1.05], False),       # 12.5% apart
    ([2.0, 1.2, 1.05, 1.02], True),  # under 5% of the shorter: settled
    ([1.00, 1.049], True),           # 4.9%
    ([1.00, 1.051], False),          # 5.1%
    ([1.051, 1.00], False),          # the same the other way round
])
def test_warm_up_ends_once_two_successive_times_differ_by_less_than_the_threshold(times, done):
    assert settled(times, minimum=1, most=5, threshold=0.05) is done


def test_warm_up_runs_at_least_the_minimum_and_at_most_the_cap():
    steady = [1.0] * 10
    assert [settled(steady[:n], minimum=3, most=5, threshold=0.05) for n in range(6)] == [
        False, False, False, True, True, True]
    drifting = [1.0 + 0.2 * i for i in range(10)]  # never settles: the cap ends it
    assert [settled(drifting[:n], minimum=1, most=5, threshold=0.05) for n in range(7)] == [
        False, False, False, False, False, True, True]
    # A minimum above the cap wins; --warmup 0 asks for no warm-up at all.
    assert not settled(steady[:4], minimum=6, most=5, threshold=0.05)
    assert settled(steady[:6], minimum=6, most=5, threshold=0.05)
    assert settled([], minimum=0, most=5, threshold=0.05)


# -- the interval ---------------------------------------------------------------------------------


def test_equal_times_have_no_width_and_too_few_times_an_unknown_one():
    assert interval_half_width([0.5] * 6) == 0.0
    assert interval_half_width([0.5] * 5) == math.inf  # 5 times: too few for a 95% interval, however equal
    assert interval_half_width([0.5]) == math.inf
    assert interval_half_width([]) == math.inf
    assert interval_half_width([0.0] * 6) == math.inf  # no median to be a fraction of


def test_the_half_width_grows_with_the_spread_and_shrinks_with_more_times():
    narrow, wide = interval_half_width(_times(12, 0.02)), interval_half_width(_times(12, 0.10))
    assert 0 < narrow < wide
    assert interval_half_width(_times(80, 0.05)) < interval_half_width(_times(8, 0.05))
    # About 1.96 x 1.25 sigma / sqrt(n) for normal times (the median's standard error).
    assert interval_half_width(_times(400, 0.05, seed=3)) == pytest.approx(1.96 * 1.2533 * 0.05 / 20, rel=0.3)
    assert interval_half_width(_times(9, 0.05)) == stats.half_width(_times(9, 0.05))  # the warehouse's interval


# -- the stopping rule ----------------------------------------------------------------------------

AUTO_CFG = SweepConfig(repeats=AUTO, target=0.03, max_rounds=12, max_seconds=180.0)


def test_whole_repeats_stop_after_that_many_rounds():
    cfg = SweepConfig(repeats=3)
    wide = {"b1": _times(2, 0.5)}
    assert stop_rule(wide, 2, 1e6, cfg) == Stop(False, "repeats: 2 of 3 rounds so far")
    assert stop_rule(wide, 3, 0.0, cfg) == Stop(True, "repeats: 3 rounds as asked")
    assert run_reason([stop_rule(wide, 3, 0.0, cfg)], ["b1"], 4) == "repeats: 3 rounds as asked"  # not shared
    assert stop_rule(wide, 1, 0.0, SweepConfig(repeats=1)).reason() == "repeats: 1 round as asked"


def test_auto_stops_once_every_batch_size_is_within_the_target():
    times = {"batch 1": _times(8, 0.01, 1), "batch 2": _times(8, 0.01, 2)}
    stop = stop_rule(times, 8, 10.0, AUTO_CFG)
    assert stop.stop and stop.reason() == "target met: every batch size within ±3.0% after 8 rounds"
    # One noisy batch size keeps the rounds going, and the reason names it.
    times["batch 4"] = _times(8, 0.20, 3)
    stop = stop_rule(times, 8, 10.0, AUTO_CFG)
    assert not stop.stop and stop.reason().startswith("going on after 8 rounds (widest ±")
    assert stop.reason().endswith(": batch 4)")


def test_auto_checks_the_target_only_from_the_round_where_an_interval_exists():
    """With 3 rounds the old bootstrap's [min, max] passed for a 95% interval and 'target met' was reported:
    no interval exists before stats.needed() times, so no target can be met before."""
    assert MIN_ROUNDS == stats.needed() == 6
    steady = {"batch 1": [1.0, 1.001, 0.999], "batch 2": [2.0, 2.002, 1.998]}  # 0.1% apart: within any target
    for rounds in range(1, MIN_ROUNDS):
        times = {k: (v * 2)[:rounds] for k, v in steady.items()}
        stop = stop_rule(times, rounds, 1.0, AUTO_CFG)
        assert not stop.stop and "target met" not in stop.reason()
        assert stop.reason() == (f"going on after {rounds} round{'s' if rounds > 1 else ''} (too few times for a "
                                 f"95% interval: batch 1 has {rounds} of 6)")
    times = {k: v * 2 for k, v in steady.items()}
    assert stop_rule(times, MIN_ROUNDS, 1.0, AUTO_CFG).cause.startswith("target met")
    # A batch size left with fewer times (a failed job) holds the rounds back until it has enough.
    times["batch 2"] = times["batch 2"][:5]
    assert not stop_rule(times, MIN_ROUNDS, 1.0, AUTO_CFG).stop


def test_auto_stops_at_the_round_cap():
    times = {"static batch 16": _times(12, 0.2)}
    stop = stop_rule(times, 12, 30.0, AUTO_CFG)
    assert stop.stop and stop.reason().startswith("cap: 12 rounds (widest ±")
    assert stop.reason().endswith(": static batch 16)")
    assert stop_rule(times, 11, 30.0, AUTO_CFG).stop is False


def test_auto_stops_before_a_round_that_would_end_past_the_time_cap():
    times = {"batch 1": _times(5, 0.2)}
    # 5 rounds in 140 s: a sixth would end near 168 s, inside 180 s; at 155 s it would end near 186 s.
    assert stop_rule(times, 5, 140.0, AUTO_CFG).stop is False
    stop = stop_rule(times, 5, 155.0, AUTO_CFG)
    assert stop.stop and stop.reason() == (
        "cap: 180 s after 5 rounds in 155 s (too few times for a 95% interval: batch 1 has 5 of 6)")
    # A cap holds even before an interval exists.
    stop = stop_rule({"batch 1": [1.0]}, 1, 100.0, AUTO_CFG)
    assert stop.stop and stop.reason() == (
        "cap: 180 s after 1 round in 100 s (too few times for a 95% interval: batch 1 has 1 of 6)")


def test_auto_stops_when_nothing_is_left_to_measure():
    assert stop_rule({}, 2, 1.0, AUTO_CFG) == Stop(
        True, "nothing left to measure after 2 rounds (every batch size ran out of memory)")


def test_more_rounds_of_the_same_spread_meet_the_target_in_the_end():
    """Rounds of a known 4% spread: the rule stops with the target met, after more rounds than for 1%."""
    cfg = dataclasses.replace(AUTO_CFG, max_rounds=200, max_seconds=1e9)

    def rounds_until_stop(spread: float) -> tuple[int, str]:
        pool = {b: _times(200, spread, seed=b) for b in (1, 2, 4)}
        for n in itertools.count(1):
            stop = stop_rule({f"batch {b}": t[:n] for b, t in pool.items()}, n, float(n), cfg)
            if stop.stop:
                return n, stop.reason()

    calm, noisy = rounds_until_stop(0.01), rounds_until_stop(0.04)
    assert calm[0] == MIN_ROUNDS and calm[1].startswith("target met")
    assert MIN_ROUNDS < noisy[0] < 200 and noisy[1] == f"target met: every batch size within ±3.0% after {noisy[0]} rounds"


def test_a_runs_reason_quotes_its_own_spread_and_says_the_stop_was_shared():
    """Item 8 of issue 21: every run quoted the widest interval of the whole size, another run's ±29.4%."""
    times = {"static batch 1": _times(4, 0.01, 1), "static batch 8": _times(4, 0.01, 2),
             "stream batch 1": _times(4, 0.30, 3), "stream batch 8": _times(8, 0.30, 4)}
    stop = stop_rule(times, 8, 1000.0, AUTO_CFG)
    assert stop.stop and stop.cause == "cap: 180 s after 8 rounds in 1000 s"
    assert run_reason([stop], ["stream batch 1", "stream batch 8"], 1) == (
        "cap: 180 s after 8 rounds in 1000 s (too few times for a 95% interval: stream batch 1 has 4 of 6)")
    static = run_reason([stop], ["static batch 1", "static batch 8"], 2)
    assert "stream" not in static and static == (
        "cap: 180 s after 8 rounds in 1000 s (too few times for a 95% interval: static batch 1 has 4 of 6); "
        "one stop for the 2 runs measured together")
    # With intervals, each run's widest is its own.
    times = {"static batch 1": _times(8, 0.01, 1), "stream batch 1": _times(8, 0.30, 3)}
    stop = stop_rule(times, 8, 1000.0, AUTO_CFG)
    mine = run_reason([stop], ["static batch 1"], 2)
    assert mine.startswith(f"cap: 180 s after 8 rounds in 1000 s (widest ±{interval_half_width(times['static batch 1']):.1%}"
                           ": static batch 1)")
    # A run measured in several parts (a replica sweep: one part per batch size) hears of each part, once.
    parts = [stop_rule({"static batch 1": _times(8, 0.001, 1)}, 8, 1.0, AUTO_CFG),
             stop_rule({"static batch 2": _times(3, 0.2, 2)}, 3, 1000.0, AUTO_CFG)]
    assert run_reason(parts, ["static batch 1", "static batch 2"], 1) == (
        "target met: every batch size within ±3.0% after 8 rounds; cap: 180 s after 3 rounds in 1000 s (too few "
        "times for a 95% interval: static batch 2 has 3 of 6)")


# -- the runner following the rounds (a stand-in for the model) -------------------------------------

METADATA = {"host": "h", "device": "cpu", "device_name": "cpu", "torch_version": "2", "diffusers_version": "0",
            "model_id": "m", "model_kind": "weights", "weights_sha256": None, "family": "unet",
            "model_params": 1, "scheduler": "DDIMScheduler", "threads": 2, "peak_flops": None,
            "peak_flops_source": "none", "gpu_uuid": None, "math_mode": "float32", "tf32_matmul": None,
            "tf32_cudnn": None, "unet_weight_bytes": 1, "cpu_count": 2, "device_memory_bytes": 2**33}


class _Sampler:
    """Telemetry stand-in: one sample per drain, under the id it was started with."""

    def __init__(self, run_id, hz, device):
        self.run_id, self.gpu, self.n = run_id, False, 0

    def start(self):
        return self

    def stop(self):
        pass

    def drain(self):
        self.n += 1
        return [{"run_id": self.run_id, "t": float(self.n), "device_index": 0, "cpu_util": 1.0, "rss_bytes": 1}]


def _run_sizes(cfg: SweepConfig, tmp_path: Path, wall_s, monkeypatch) -> tuple[list[dict], list[dict]]:
    """Follow the plan of `cfg` with jobs that take wall_s(mode, batch, n-th job of that run and batch) seconds
    (None: out of memory); return (job records in the order run, end records)."""
    calls: dict = {}

    def fake_job(ctx, job, repeat, job_id):
        key = (job.run.mode, job.batch_size)
        calls[key] = calls.get(key, 0) + 1
        wall = wall_s(job.run.mode, job.batch_size, calls[key] - 1)
        rec = record("job", job_id=job_id, run_id=ctx.run["run_id"],
                     batch_size=job.batch_size, repeat=repeat, warmup=job.warmup, profiled=job.profiled,
                     wall_s=wall or 0.0, status="oom" if wall is None else "ok", error=None, round=job.round)
        return JobResult(job=rec, rows=[ctx.run, rec])

    monkeypatch.setattr(sweep_module, "run_job", fake_job)
    monkeypatch.setattr("generator.measure.telemetry.Sampler", _Sampler)
    monkeypatch.setattr("generator.measure.ceilings.measure_ceilings", lambda device, dtype: {
        "ceiling_matmul_flops": None, "ceiling_conv_flops": None, "ceiling_copy_bytes_per_s": None})
    cfg = dataclasses.replace(cfg, spool=str(tmp_path / "spool"), out=str(tmp_path / "img"))
    state = sweep_module.Sweep(cfg=cfg, pipe=None, timer=None, memory=None, writer=SpoolWriter(cfg.spool),
                                metadata=METADATA, sweep_id="sweep-1", masks={})
    monkeypatch.setattr(state, "shared", lambda h, w: {"picture": None, "masks": (), "flops_per_row": None})

    class Bar:
        total = n = 0

        def update(self):
            self.n += 1

        def set_description(self, text):
            pass

        def refresh(self):
            pass

    for size in plan(cfg):
        sweep_module.Size(state, size, Bar()).run()
    records = [[json.loads(line) for line in Path(f).read_text().splitlines()] for f in state.outcome]
    jobs = [dict(rs[1], mode=rs[0]["mode"], samples=rs[2:]) for rs in records if rs[1:] and rs[1]["kind"] == "job"]
    ends = [dict(rs[0], samples=rs[1:]) for rs in records if not rs[1:] or rs[1]["kind"] != "job"]
    return jobs, ends


def test_the_runner_warms_up_until_settled_then_interleaves_the_rounds(tmp_path, monkeypatch):
    cfg = SweepConfig(batch_sizes=(1, 2), resolutions=(64,), mode=("static", "stream"), repeats=3, warmup=1,
                      warmup_max=5, settle=0.05)
    warm = {1: [3.0, 1.5, 1.0, 1.01], 2: [2.0, 2.01]}  # batch 1 settles after 4 warm-ups, batch 2 after 2

    def wall(mode, b, n):
        return warm[b][n] if n < len(warm[b]) else float(b)

    jobs, ends = _run_sizes(cfg, tmp_path, wall, monkeypatch)
    warmups = [(j["mode"], j["batch_size"], j["repeat"]) for j in jobs if j["warmup"]]
    assert warmups == ([("static", 1, r) for r in range(4)] + [("stream", 1, r) for r in range(4)]
                       + [("static", 2, 0), ("static", 2, 1), ("stream", 2, 0), ("stream", 2, 1)])
    measured = [(j["mode"], j["batch_size"], j["round"], j["repeat"]) for j in jobs if not j["warmup"]]
    assert measured == [
        ("static", 1, 0, 4), ("stream", 1, 0, 4), ("static", 2, 0, 2), ("stream", 2, 0, 2),
        ("stream", 2, 1, 3), ("static", 2, 1, 3), ("stream", 1, 1, 5), ("static", 1, 1, 5),
        ("static", 1, 2, 6), ("stream", 1, 2, 6), ("static", 2, 2, 4), ("stream", 2, 2, 4)]
    # The samples drained after a job carry that job's run id, whichever run the sampler started with.
    assert all(s["run_id"] == j["run_id"] for j in jobs for s in j["samples"])
    assert len({j["run_id"] for j in jobs}) == 2
    # Each run ends with one file: its record, the rounds it took part in and why they stopped (as each would
    # have alone: a whole --repeats does not depend on the other run's times).
    assert sorted((e["mode"], e["rounds"], e["stop_reason"]) for e in ends) == [
        ("static", 3, "repeats: 3 rounds as asked"), ("stream", 3, "repeats: 3 rounds as asked")]
    assert {e["run_id"] for e in ends} == {j["run_id"] for j in jobs}


def test_auto_rounds_stop_at_the_target_on_steady_times_and_at_the_cap_on_noisy_ones(tmp_path, monkeypatch):
    cfg = SweepConfig(batch_sizes=(1, 2, 4), resolutions=(64, 128), repeats=AUTO, warmup=0, target=0.03,
                      max_rounds=9, max_seconds=1e6)
    noise = np.random.default_rng(5).standard_normal(1000)

    def wall(mode, b, n):
        spread = 0.005 if b != 4 else 0.004
        return b * (1 + spread * noise[n + 10 * b])

    jobs, ends = _run_sizes(cfg, tmp_path, wall, monkeypatch)
    assert [e["stop_reason"] for e in ends] == ["target met: every batch size within ±3.0% after 6 rounds"] * 2
    assert len(jobs) == 2 * 3 * MIN_ROUNDS and {j["round"] for j in jobs} == set(range(MIN_ROUNDS))

    def noisy(mode, b, n):
        return b * (1 + 0.3 * noise[n + 10 * b])

    jobs, ends = _run_sizes(cfg, tmp_path / "noisy", noisy, monkeypatch)
    assert [(e["rounds"], e["stop_reason"].split(" (")[0]) for e in ends] == [(9, "cap: 9 rounds")] * 2
    assert len(jobs) == 2 * 3 * 9


def test_each_run_measured_together_ends_with_its_own_spread_in_its_stop_reason(tmp_path, monkeypatch):
    """Item 8 of issue 21: the runs of a size stop together, and each used to quote the size's widest interval
    (another run's); each now quotes its own batch sizes' and says the stop was shared."""
    cfg = SweepConfig(batch_sizes=(1, 2), resolutions=(64,), mode=("static", "stream"), repeats=AUTO, warmup=0,
                      target=0.03, max_rounds=7, max_seconds=1e6)
    noise = np.random.default_rng(6).standard_normal(1000)

    def wall(mode, b, n):  # static steady, stream noisy
        return b * (1 + (0.002 if mode == "static" else 0.3) * noise[n + 100 * b + (500 if mode == "stream" else 0)])

    jobs, ends = _run_sizes(cfg, tmp_path, wall, monkeypatch)
    reasons = {e["mode"]: e["stop_reason"] for e in ends}
    assert {e["rounds"] for e in ends} == {7}
    for mode, other in (("static", "stream"), ("stream", "static")):
        assert reasons[mode].startswith(f"cap: 7 rounds (widest ±") and f": {mode} 64x64" in reasons[mode]
        assert other not in reasons[mode] and reasons[mode].endswith("; one stop for the 2 runs measured together")
        times = {b: [j["wall_s"] for j in jobs if j["mode"] == mode and j["batch_size"] == b] for b in (1, 2)}
        widest = max(interval_half_width(t) for t in times.values())
        assert f"widest ±{widest:.1%}:" in reasons[mode]
    assert reasons["static"] != reasons["stream"]


def test_after_an_out_of_memory_the_run_skips_larger_batch_sizes_in_later_rounds(tmp_path, monkeypatch):
    cfg = SweepConfig(batch_sizes=(1,), resolutions=(64,), mode=("static", "stream"), repeats=3, warmup=0,
                      until_oom=True, max_batch=8, profile_ops=True)

    def wall(mode, b, n):  # static runs out of memory at 4, stream never
        return None if mode == "static" and b >= 4 else 0.1 * b

    jobs, ends = _run_sizes(cfg, tmp_path, wall, monkeypatch)
    ran = {(j["mode"], j["batch_size"], j["status"], j["round"]) for j in jobs if not j["profiled"]}
    assert ("static", 4, "oom", 0) in ran
    assert not [j for j in jobs if j["mode"] == "static" and j["batch_size"] == 8]
    assert [j["round"] for j in jobs if j["mode"] == "static" and j["batch_size"] == 4] == [0]
    assert sorted(j["batch_size"] for j in jobs if j["mode"] == "static" and j["profiled"]) == [1, 2]
    assert sorted(j["batch_size"] for j in jobs if j["mode"] == "stream" and j["profiled"]) == [1, 2, 4, 8]
    assert [len([j for j in jobs if j["mode"] == "stream" and j["batch_size"] == b]) for b in (1, 2, 4, 8)] == [4] * 4
    assert sorted(e["rounds"] for e in ends) == [3, 3]

"""The demo's parts (generator/demo.py) and the default sweep: batch sizes a knee can be seen in, a main
comparison with rounds enough for an interval, every part the dashboard needs, no two parts measuring the same
thing; and --threads, set for a sweep and given back after it."""

from __future__ import annotations

import json

import pytest
import torch

from generator.demo import LOAD, demo_configs
from generator.run import run_sweep
from generator.sweep.config import SweepConfig

CONFIGS = dict(demo_configs())
MAIN = next(iter(CONFIGS.values()))


def _knee_visible(sizes: tuple[int, ...], knee: int) -> bool:
    """A bend at `knee` can be placed from the sizes: three measured sizes up to it, and two past it."""
    return sum(b <= knee for b in sizes) >= 3 and sum(b > knee for b in sizes) >= 2


@pytest.mark.parametrize("sizes", [SweepConfig().batch_sizes, MAIN.batch_sizes])
def test_the_default_sweep_and_the_demo_can_show_a_knee_at_4_and_at_8(sizes):
    assert min(sizes) == 1 and max(sizes) >= 16
    assert _knee_visible(sizes, 4) and _knee_visible(sizes, 8), sizes


def test_the_old_sizes_could_not_show_a_knee_at_8():
    assert not _knee_visible((1, 2, 4, 8), 8) and not _knee_visible((1, 2, 4, 8, 16), 8)


def test_the_main_comparison_is_static_cfg_off_at_the_small_size_with_rounds_for_an_interval():
    assert MAIN.mode == ("static",) and MAIN.guidances() == [1.0] and MAIN.task == "txt2img"
    assert MAIN.sizes() == [(64, 64)] and MAIN.threads == 1
    # An order-statistic 95% interval of a median needs at least 6 jobs; the cap leaves room for many more.
    assert MAIN.auto and MAIN.max_rounds >= 10
    assert MAIN.max_seconds >= max(c.max_seconds for c in CONFIGS.values())


def test_the_demo_keeps_every_part_the_dashboard_needs():
    runs = [(c.task, c.arch, h, mode, g > 1, c.replicas, c.profile_ops)
            for c in CONFIGS.values() for h, _ in c.sizes() for mode in c.mode for g in c.guidances()]
    assert {r[3] for r in runs} == {"sequential", "static", "stream"}
    assert {r[4] for r in runs if r[3] == "static"} == {False, True}, "static with CFG off and on"
    assert len({r[2] for r in runs if r[0] == "txt2img"}) == 2, "two sizes"
    assert any(r[6] for r in runs), "profiled operators"
    assert any(r[0] == "inpaint" for r in runs)
    assert any(r[5] == (1, 2) for r in runs), "one Ray worker and two"
    same = [(c.task, c.arch, c.sizes(), c.mode, c.guidances()) for c in CONFIGS.values()]
    steps = {s for c, key in zip(CONFIGS.values(), same) if key == same[0] for s in c.steps}
    assert len(steps) >= 3 and min(steps) <= 2, "fewer steps beside the main comparison's, one setting"
    assert LOAD["loads"] and LOAD["burst"] > 1


def test_no_two_demo_parts_measure_the_same_thing():
    """Pages group runs by size, mode, CFG, task and steps: two parts with the same would be pooled into one
    figure. (The Ray part's one-worker run differs from part 1 only in where it ran: its workers count.)"""
    seen = {}
    for name, c in CONFIGS.items():
        for h, w in c.sizes():
            for mode in c.mode:
                for g in c.guidances():
                    for steps in c.steps:
                        key = (c.task, c.arch, h, w, mode, g > 1, c.replicas, steps)
                        assert key not in seen, f"{name!r} measures {key} as {seen.get(key)!r} does"
                        seen[key] = name


@pytest.mark.parametrize("argv, message", [
    (dict(threads=0), "threads must be >= 1, got 0"),
    (dict(threads=1, ray="local"), "got --threads 1 with --ray"),
])
def test_bad_threads_are_refused_with_their_value(argv, message):
    with pytest.raises(ValueError, match=message):
        SweepConfig(**argv)


def test_a_sweep_runs_on_its_threads_and_gives_the_process_its_own_back(tmp_path):
    before = torch.get_num_threads()
    threads = 1 if before > 1 else 2
    cfg = SweepConfig(batch_sizes=(1,), resolutions=(64,), steps=1, repeats=1, warmup=0, threads=threads,
                      save_images="none", sample_hz=0, spool=str(tmp_path / "spool"), out=str(tmp_path / "out"))
    files = run_sweep(cfg, progress=False)
    assert torch.get_num_threads() == before
    runs = [r for f in files for r in map(json.loads, open(f)) if r["kind"] == "run"]
    assert runs and {r["threads"] for r in runs} == {threads}

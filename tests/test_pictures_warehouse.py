"""What the pictures show, from a real sweep over step counts to the warehouse's figures and sentences.

A real sweep of the embedded model at 2 and 10 steps (its shipped weights) writes each kept picture's reading
through the spool contract; the collector ingests it into a real DuckDB file; the warehouse's picture_reads,
tradeoff and batching_shown read it back; the sentences are held to their conditions on made-up figures.
"""

from __future__ import annotations

import pandas as pd
import pytest

import stats
from collector.ingest import CollectorConfig, ingest_pending
from generator.run import run_sweep
from generator.sweep.config import SweepConfig
from warehouse import quality
from warehouse.queries import Warehouse
from warehouse.explain import pictures

from .conftest import sql_rows


@pytest.fixture(scope="module")
def steps_sweep(tmp_path_factory):
    base = tmp_path_factory.mktemp("steps")
    cfg = SweepConfig(batch_sizes=(1, 4), resolutions=(64,), steps=(2, 10), repeats=1, warmup=0, threads=1,
                      spool=str(base / "spool"), out=str(base / "images"))
    run_sweep(cfg, progress=False)
    db = str(base / "w.duckdb")
    ingest_pending(CollectorConfig(spool=cfg.spool, db=db))
    return db


def test_every_kept_picture_carries_its_reading_and_the_run_its_weights(steps_sweep):
    rows = sql_rows(steps_sweep, "SELECT i.prompt, i.shown_background, i.colours_right, r.weights_sha256, r.steps "
                                 "FROM images i JOIN jobs j USING (job_id) JOIN runs r USING (run_id)")
    assert len(rows) == 2 * (1 + 4)  # two step counts, the first job of batch 1 and of batch 4 each
    assert all(bg is not None and right is not None for _, bg, right, _, _ in rows)
    assert {len(sha) for *_, sha, _ in rows} == {64} and {s for *_, s in rows} == {2, 10}


def test_the_tradeoff_puts_both_step_counts_at_one_batch_and_every_batch_at_the_most_steps(steps_sweep):
    wh = Warehouse(steps_sweep)
    runs = wh.runs()
    reads = wh.picture_reads(list(runs.run_id))
    assert set(zip(reads.steps, reads.batch_size, reads.pictures)) == {(2, 1, 1), (2, 4, 4), (10, 1, 1), (10, 4, 4)}
    points = quality.tradeoff(reads)
    steps = points[points.series == "steps"].sort_values("steps")
    assert list(steps.steps) == [2, 10] and set(steps.batch_size) == {4}
    assert list(points[points.series == "batch size"].sort_values("batch_size").batch_size) == [1, 4]
    assert set(points[points.series == "batch size"].steps) == {10}  # both kept two sizes: the most steps
    assert (points.low <= points.share).all() and (points.share <= points.high).all()
    assert all(" 2 steps" in label or " 10 steps" in label for label in runs.label)  # the label names the steps
    (effect,) = quality.steps_effect(points)
    assert (effect.few, effect.many, effect.batch_size) == (2, 10, 4)


def test_batching_is_held_against_batch_1_by_what_the_pictures_show(steps_sweep):
    wh = Warehouse(steps_sweep)
    checks = wh.image_checks(list(wh.runs().run_id))
    shown = quality.batching_shown(checks)
    # Seed 0 is the one seed batch 1 drew: one picture per run at batch 4 is held against it.
    assert shown.compared == 2 and shown.batch_sizes == (4,)
    assert shown.same == int(checks[checks.against == "batch_1"].same_shown.sum())


def _effect(few_k, many_k, n=16, few_s=0.01, many_s=0.05):
    return quality.StepsEffect("txt2img 64x64 static", 16, 2, 20, stats.proportion_interval(few_k, n),
                               stats.proportion_interval(many_k, n), few_s, many_s, (few_k, n), (many_k, n))


def test_fewer_steps_are_said_to_cost_pictures_only_when_the_intervals_are_apart():
    apart = pictures.steps_effect(_effect(2, 15), cite=lambda key: f"<{key}>")
    assert apart.startswith("**Fewer steps** (<perflow>; <instaflow> and <hipa> take it to one step; txt2img")
    assert "at 2 steps 2 of 16 (12% [" in apart and "cost pictures" in apart and "0.01 s against 0.05 s" in apart
    close = pictures.steps_effect(_effect(11, 14), cite=str)
    assert "cost" not in close and "cannot tell the two step counts apart" in close
    better = pictures.steps_effect(_effect(15, 2), cite=str)
    assert "more pictures were right" in better and "cost" not in better


def test_the_batching_sentence_says_no_only_when_every_picture_shows_the_same():
    same = quality.BatchingShown(7, 7, stats.proportion_interval(7, 7), (2, 4, 8))
    assert pictures.batching_shown(same).startswith("**Did batching change what the pictures show?** No: all 7")
    some = quality.BatchingShown(6, 7, stats.proportion_interval(6, 7), (2, 4, 8))
    said = pictures.batching_shown(some)
    assert "In 1 of 7 pictures" in said and "No:" not in said
    assert pictures.batching_shown(None) is None
    empty = pd.DataFrame({"against": ["batch_1"], "same_shown": [None], "batch_size": [4], "run_id": ["r"],
                          "seed": [0]})
    assert quality.batching_shown(empty) is None  # no reading on either side: nothing to say
    # Every round draws seed 0 again: three drawings of one picture are one picture, not three, and it shows the
    # same only if every drawing does.
    rounds = pd.DataFrame({"against": ["batch_1"] * 4, "same_shown": [True, True, False, True],
                           "batch_size": [4, 4, 4, 8], "run_id": ["r"] * 4, "seed": [0] * 4})
    counted = quality.batching_shown(rounds)
    assert (counted.same, counted.compared, counted.batch_sizes) == (1, 2, (4, 8))


def test_a_pictures_reading_is_said_only_for_a_caption_and_names_what_is_wrong():
    assert pictures.reading("red", "circle", "blue", True, True) == "shows a red circle on blue: as asked"
    assert pictures.reading("red", "square", "blue", True, False).endswith("colours as asked, not the shape")
    assert pictures.reading(None, None, "blue", False, False) == "shows no shape on blue: not the asked colours"
    assert pictures.reading(None, None, None, None, None) is None  # the prompt was not a caption
    off, on = pictures.cfg_pair(3, 7.5, False, True)
    assert off == "seed 3, CFG off · not as asked" and on == "seed 3, CFG 7.5 · colours as asked"


def test_the_gallery_finds_the_same_seed_without_and_with_guidance(tmp_path):
    """Two real runs that differ only in CFG keep the same seeds: cfg_pairs pairs them seed by seed."""
    cfg = SweepConfig(batch_sizes=(2,), resolutions=(64,), steps=2, repeats=1, warmup=0, threads=1,
                      classifier_free_guidance=("off", "full"), guidance=5.0, spool=str(tmp_path / "spool"),
                      out=str(tmp_path / "images"))
    run_sweep(cfg, progress=False)
    ingest_pending(CollectorConfig(spool=cfg.spool, db=str(tmp_path / "w.duckdb")))
    wh = Warehouse(str(tmp_path / "w.duckdb"))
    pairs = wh.cfg_pairs(list(wh.runs().run_id))
    assert list(pairs.seed) == [0, 1] and set(pairs.guidance_scale) == {5.0}
    assert (pairs.off_path != pairs.on_path).all() and pairs.off_right.notna().all()

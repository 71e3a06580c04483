"""Peak memory per phase, VAE slicing as a run setting, and the image checks, through the real pipeline:
the timer's memory windows, a sweep's records, and what the warehouse makes of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from collector.ingest import CollectorConfig, ingest_pending
from generator.measure.telemetry import PeakMemory
from generator.measure.timing import PipelineTimer, clock_for
from generator.pipelines import batching, inputs, models
from generator.pipelines.batching import JobInputs
from generator.run import run_sweep
from generator.sweep.config import SweepConfig
from warehouse import db as warehouse_db
from warehouse import invariance, memory
from warehouse.queries import Warehouse

PHASES = {"encode_prompt", "prepare", "denoise", "decode", "postprocess"}


@pytest.fixture(scope="module")
def tiny():
    pipe, _ = models.load_pipeline()
    mem = PeakMemory("cpu")
    return pipe, mem, PipelineTimer(pipe, clock_for("cpu"), mem)


def _run(tiny, batch: int, size: int = 128, mode: str = "static", slicing: bool = False):
    pipe, mem, timer = tiny
    models.set_vae_slicing(pipe, slicing)
    job = JobInputs(task="txt2img", prompts=["a fox"] * batch, seeds=list(range(batch)), height=size, width=size,
                    steps=2, guidance=1.0)
    mem.reset()
    images, timing = batching.execute(mode, pipe, timer, job)
    return {p["phase"]: p["peak_mem_bytes"] for p in timing.phases}, mem.peak(), images


def test_every_phase_gets_its_peak_and_the_job_peak_is_the_highest(tiny):
    peaks, job_peak, _ = _run(tiny, 2)
    assert set(peaks) == PHASES and all(p and p > 0 for p in peaks.values())
    assert job_peak == max(peaks.values())


def test_decoding_a_larger_batch_needs_more_memory_and_slicing_gives_most_of_it_back(tiny):
    """At 256 px a decoded image's activations are tens of MiB: decode's peak must grow with the batch,
    and with slicing (one image at a time) grow by much less."""
    one, _, _ = _run(tiny, 1, size=256)
    eight, _, whole = _run(tiny, 8, size=256)
    sliced, _, cut = _run(tiny, 8, size=256, slicing=True)
    grown, grown_sliced = eight["decode"] - one["decode"], sliced["decode"] - one["decode"]
    assert grown > 50 * 2 ** 20, f"decode grew {grown / 2 ** 20:.1f} MiB from batch 1 to 8"
    assert grown_sliced < grown / 2, f"sliced {grown_sliced / 2 ** 20:.1f} MiB vs {grown / 2 ** 20:.1f} MiB"
    # Slicing changes how the batch is decoded, not what: the same pictures, to within one level.
    import numpy as np
    diffs = [int(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max()) for a, b in zip(whole, cut)]
    assert max(diffs) <= 1, diffs


def test_sequential_mode_keeps_the_highest_peak_of_its_calls(tiny):
    peaks, job_peak, _ = _run(tiny, 3, size=64, mode="sequential")
    assert set(peaks) == PHASES and job_peak >= max(peaks.values())


def test_a_pipeline_without_a_text_encoder_prepares_from_the_start_of_the_call():
    pipe, _ = models.load_pipeline("inpaint", arch="ldm-inpaint-tiny")
    assert not hasattr(pipe, "encode_prompt")
    mem = PeakMemory("cpu")
    timer = PipelineTimer(pipe, clock_for("cpu"), mem)
    job = JobInputs(task="inpaint", prompts=["", ""], seeds=[0, 1], height=64, width=64, steps=2, guidance=1.0,
                    image=inputs.test_image(64, 64), masks=(inputs.test_mask(64, 64),) * 2)
    mem.reset()
    _, timing = batching.execute("static", pipe, timer, job)
    phases = {p["phase"]: p for p in timing.phases}
    assert set(phases) == PHASES - {"encode_prompt"}
    assert phases["prepare"]["start_s"] == 0.0 and phases["prepare"]["duration_s"] > 0
    assert all(p["peak_mem_bytes"] for p in phases.values())
    timer.remove()


@pytest.fixture(scope="module")
def checked(tmp_path_factory):
    """A sweep of two modes and VAE slicing off and on, ingested: (config, db path)."""
    base = tmp_path_factory.mktemp("checked")
    cfg = SweepConfig(batch_sizes=(1, 3), resolutions=(64,), mode=("static", "stream"), vae_slicing=("off", "on"),
                      steps=2, repeats=1, warmup=1, spool=str(base / "spool"), out=str(base / "images"))
    run_sweep(cfg, progress=False)
    ingest_pending(CollectorConfig(spool=cfg.spool, db=str(base / "w.duckdb")))
    return cfg, str(base / "w.duckdb")


def test_vae_slicing_is_a_run_setting_recorded_with_the_run(checked):
    cfg, db = checked
    runs = Warehouse(db).runs()
    assert sorted(zip(runs["mode"], runs.vae_slicing)) == [
        ("static", False), ("static", True), ("stream", False), ("stream", True)]
    assert runs.label.str.contains(" vae slicing ").sum() == 2
    assert (runs.device_memory_bytes > 0).all()


def test_every_job_file_carries_its_image_checks_and_phase_peaks(checked):
    cfg, db = checked
    rows = [json.loads(line) for f in sorted(Path(cfg.spool).rglob("job-*.jsonl"))
            for line in f.read_text().splitlines()]
    phases = [r for r in rows if r["kind"] == "phase"]
    assert phases and all(r["peak_mem_bytes"] > 0 for r in phases)
    checks = [r for r in rows if r["kind"] == "image_check"]
    # Each batch-3 job: image 0 against batch 1 of its run; each image against the runs differing in one thing.
    assert {c["against"] for c in checks} == {"batch_1", "mode", "vae_slicing"}
    assert all(c["job_id"] != c["ref_job_id"] for c in checks)


def test_the_warehouse_answers_did_batching_change_the_pictures(checked):
    cfg, db = checked
    runs = Warehouse(db).runs()
    rows = Warehouse(db).image_checks(list(runs.run_id))
    found = invariance.invariance(rows)
    assert {"batching", "repeat", "mode", "vae_slicing"} <= set(found)
    batching_ = found["batching"]
    # Every batch-3 job (warm-up and measured, of every run) holds its image 0 against batch 1 of its run.
    jobs = warehouse_db.query_df(db, "SELECT count(*) AS n FROM jobs WHERE batch_size = 3 AND status = 'ok'")
    assert batching_.compared == int(jobs.n.iloc[0]) >= 4 and batching_.batch_sizes == (3,)
    assert batching_.worst.max_abs_diff == int(rows[rows.against == "batch_1"].max_abs_diff.max())
    # The gallery pairs a kept image with the kept picture of the same seed it was held against.
    kept = rows[rows.path.notna() & (rows.batch_size == 3)]
    pairs = invariance.pairs(rows, kept.job_id.iloc[0])
    assert not pairs.empty and pairs.ref_path.notna().all() and (pairs.seed == pairs.seed.astype(int)).all()


def test_the_memory_lines_come_from_the_measured_jobs_phases(checked):
    cfg, db = checked
    runs = Warehouse(db).runs()
    peaks = Warehouse(db).memory_by_phase(list(runs.run_id))
    assert set(peaks.phase) == PHASES and (peaks.peak_mem_bytes > 0).all()
    lines = memory.phase_lines(peaks[peaks.run_id == runs.run_id.iloc[0]])
    assert set(lines) == PHASES and all(line.sizes == (1, 3) for line in lines.values())

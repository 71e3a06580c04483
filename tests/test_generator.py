"""Execution modes, CFG, operator mix, FLOPs, telemetry and failures, on the embedded model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator import batching
from generator.batching import JobInputs
from generator.models import load_pipeline
from generator.sweep import SweepConfig, run_sweep
from generator.timing import PipelineTimer, clock_for

from .conftest import ROOT


def _jobs(files) -> list[dict]:
    """Each job record with the records of its file grouped under it."""
    out = []
    for f in files:
        recs = [json.loads(line) for line in Path(f).read_text().splitlines()]
        job = next((r for r in recs if r["kind"] == "job"), None)
        if job is None:  # the run's last telemetry samples, after its last job
            continue
        job["run"] = recs[0]
        for kind in ("phase", "step", "op", "sample", "image"):
            job[kind + "_records"] = [r for r in recs if r["kind"] == kind]
        out.append(job)
    return out


@pytest.fixture(scope="module")
def modes_sweep(tmp_path_factory):
    base = tmp_path_factory.mktemp("modes")
    cfg = SweepConfig(batch_sizes=(1, 3), resolutions=(64,), mode=("sequential", "static", "stream"), steps=4,
                      repeats=1, warmup=0, guidance=3.0, cfg=("off", "full"), profile_ops=True,
                      spool=str(base / "spool"), out=str(base / "images"))
    return cfg, _jobs(run_sweep(cfg, progress=False))


def test_every_mode_runs_with_its_own_number_of_unet_calls(modes_sweep):
    cfg, jobs = modes_sweep
    assert {(j["run"]["mode"], j["run"]["cfg"]) for j in jobs} == {
        (m, c) for m in cfg.mode for c in (False, True)}
    steps = cfg.steps
    for j in jobs:
        assert j["status"] == "ok", j["error"]
        b, mode = j["batch_size"], j["run"]["mode"]
        # sequential: B calls of S steps; static: S calls; stream: one request enters per call.
        assert j["unet_calls"] == {"sequential": b * steps, "static": steps, "stream": b + steps - 1}[mode]
        assert j["unet_rows"] == b * steps * (2 if j["run"]["cfg"] else 1)
        assert len(j["step_records"]) == j["unet_calls"]
        assert j["images"] == b


def test_cfg_doubles_the_unet_batch(modes_sweep):
    _, jobs = modes_sweep
    by_key = {(j["run"]["mode"], j["batch_size"], j["profiled"], j["run"]["cfg"]): j for j in jobs}
    for (mode, b, profiled, cfg_on), j in by_key.items():
        if cfg_on:
            off = by_key[(mode, b, profiled, False)]
            assert j["unet_batch"] == 2 * off["unet_batch"]
            assert j["unet_flops_per_call"] == pytest.approx(2 * off["unet_flops_per_call"])
            assert j["run"]["guidance_scale"] == 3.0 and off["run"]["guidance_scale"] == 1.0


def test_flops_grow_with_the_rows_of_a_call(modes_sweep):
    _, jobs = modes_sweep
    static = {j["batch_size"]: j for j in jobs if j["run"]["mode"] == "static" and not j["run"]["cfg"]}
    assert static[1]["unet_flops_per_call"] > 0
    assert static[3]["unet_flops_per_call"] == pytest.approx(3 * static[1]["unet_flops_per_call"])
    # Static: every one of the job's `steps` UNet calls is its fullest call.
    assert static[3]["unet_flops_total"] == pytest.approx(static[3]["unet_flops_per_call"] * 4)


def test_profiled_jobs_split_unet_time_into_categories(modes_sweep):
    _, jobs = modes_sweep
    profiled = [j for j in jobs if j["profiled"]]
    assert profiled and all(not j["op_records"] for j in jobs if not j["profiled"])
    for j in profiled:
        cats = {o["category"]: o for o in j["op_records"]}
        assert {"conv", "linear", "norm"} <= set(cats), cats.keys()
        in_ops = sum(o["self_time_s"] for c, o in cats.items() if c != "overhead")
        unet_s = j["unet_profiled_s"]
        # Operators are counted once each (no double counting of nested calls) ...
        assert 0 < in_ops <= unet_s
        # ... and with the time between them the categories add up to the UNet's time.
        assert sum(o["self_time_s"] for o in cats.values()) == pytest.approx(unet_s, rel=0.05)
        # The UNet's time lies inside the denoise phase that the timer measured separately.
        denoise = next(p for p in j["phase_records"] if p["phase"] == "denoise")["duration_s"]
        assert unet_s <= denoise * 1.02
    # Convolution is a real share of UNet time on this model, as arXiv 2312.14385 finds.
    j = max(profiled, key=lambda j: j["batch_size"])
    conv = next(o for o in j["op_records"] if o["category"] == "conv")["self_time_s"]
    assert conv / j["unet_profiled_s"] > 0.05


def test_telemetry_records_cpu_fields_without_a_gpu(modes_sweep):
    _, jobs = modes_sweep
    samples = [s for j in jobs for s in j["sample_records"]]
    assert len(samples) >= 3
    assert all(s["cpu_util"] is not None and s["rss_bytes"] > 0 for s in samples)
    assert all("gpu_util" not in s for s in samples)
    assert all(j["run"]["telemetry_gpu"] is False for j in jobs)
    assert all(j["peak_mem_bytes"] > 0 for j in jobs)
    assert len({s["t"] for s in samples}) == len(samples)


def test_stream_batch_images_match_static(tmp_path):
    pipe, _ = load_pipeline("txt2img")
    timer = PipelineTimer(pipe, clock_for("cpu"))
    for guidance in (1.0, 4.0):
        job = JobInputs("txt2img", ["a fox", "a ship", "a lamp", "a tree", "a cup"], [3, 1, 4, 1, 5],
                        64, 64, 3, guidance)
        static, _ = batching.execute("static", pipe, timer, job)
        stream, timing = batching.execute("stream", pipe, timer, job)
        a = np.stack([np.asarray(i, dtype=np.int16) for i in static])
        b = np.stack([np.asarray(i, dtype=np.int16) for i in stream])
        assert a.shape == b.shape == (5, 64, 64, 3)
        # Same seeds, same schedule: equal up to float rounding (at most one 8-bit level).
        assert np.abs(a - b).max() <= 1, np.abs(a - b).max()
        # Stream Batch filled up to min(images, steps) rows per call, then drained.
        assert [s["unet_rows"] for s in timing.steps] == [
            r * (2 if guidance > 1 else 1) for r in (1, 2, 3, 3, 3, 2, 1)]


def test_a_failing_job_is_recorded_and_the_sweep_goes_on(tmp_path, monkeypatch):
    real = batching.execute

    def fail_at_batch_two(mode, pipe, timer, job):
        if len(job.prompts) == 2:
            raise RuntimeError("injected failure for batch 2")
        return real(mode, pipe, timer, job)

    monkeypatch.setattr(batching, "execute", fail_at_batch_two)
    cfg = SweepConfig(batch_sizes=(1, 2, 4), resolutions=(64,), steps=2, repeats=1, warmup=0,
                      spool=str(tmp_path / "s"), out=str(tmp_path / "o"))
    jobs = {j["batch_size"]: j for j in _jobs(run_sweep(cfg, progress=False))}
    assert jobs[2]["status"] == "error" and jobs[2]["error"] == "RuntimeError: injected failure for batch 2"
    assert jobs[2]["images"] == 0 and jobs[2]["step_records"] == []
    assert jobs[1]["status"] == jobs[4]["status"] == "ok"
    assert len(jobs[4]["step_records"]) == 2


def test_until_oom_stops_at_a_real_out_of_memory(tmp_path):
    # Cap this process's address space a little above what the loaded model needs, so a
    # growing batch really runs out of memory; then the sweep must end cleanly.
    child = f"""
import resource, sys
sys.path.insert(0, {str(ROOT)!r})
from generator.models import load_pipeline
load_pipeline("txt2img")  # map torch and diffusers first
size = next(int(l.split()[1]) * 1024 for l in open("/proc/self/status") if l.startswith("VmSize"))
resource.setrlimit(resource.RLIMIT_AS, (size + 700 * 2**20, resource.RLIM_INFINITY))
from generator.__main__ import main
sys.exit(main(sys.argv[1:]))
"""
    spool = tmp_path / "spool"
    out = subprocess.run(
        [sys.executable, "-c", child, "sweep", "--until-oom", "--batch-sizes", "8", "--resolutions", "128",
         "--steps", "1", "--repeats", "1", "--warmup", "0", "--sample-hz", "0", "--save-images", "none",
         "--max-batch", "4096", "--spool", str(spool), "--quiet"],
        cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    jobs = sorted(_jobs(spool.rglob("*.jsonl")), key=lambda j: j["batch_size"])
    statuses = [(j["batch_size"], j["status"]) for j in jobs]
    assert statuses[-1][1] == "oom", statuses
    assert all(s == "ok" for _, s in statuses[:-1]) and statuses[0] == (8, "ok")
    assert [b for b, _ in statuses] == [8 * 2 ** i for i in range(len(statuses))]
    assert "memory" in jobs[-1]["error"]


def test_masks_are_used_one_per_image(tmp_path):
    folder = tmp_path / "masks"
    folder.mkdir()
    for i, box in enumerate([(0, 0, 31, 31), (32, 32, 63, 63)]):
        mask = Image.new("L", (64, 64), 0)
        mask.paste(255, box)
        mask.save(folder / f"m{i}.png")
    cfg = SweepConfig(task="inpaint", mask=str(folder), batch_sizes=(2,), resolutions=(64,), steps=2,
                      repeats=1, warmup=0, spool=str(tmp_path / "s"), out=str(tmp_path / "o"))
    (job,) = _jobs(run_sweep(cfg, progress=False))
    assert job["status"] == "ok" and job["images"] == 2
    # Each kept image has the mask it was inpainted with beside it: mask i for image i.
    masks = [Image.open(r["mask_path"]) for r in job["image_records"]]
    assert [np.asarray(m).tolist() for m in masks] == [
        np.asarray(Image.open(folder / f"m{i}.png")).tolist() for i in range(2)]


@pytest.mark.parametrize("make, message", [
    (lambda d: Image.new("L", (32, 32)).save(d / "small.png") or d / "small.png",
     "is 32x32 (width x height), the images are 64x64; a mask must match the image size"),
    (lambda d: (d / "bad.png").write_bytes(b"not a picture") and d / "bad.png", "cannot be read as an image"),
    (lambda d: d / "absent.png", "does not exist"),
])
def test_a_bad_mask_is_refused_before_any_work(tmp_path, make, message, capsys):
    from generator.__main__ import main

    mask = make(tmp_path)
    code = main(["sweep", "--task", "inpaint", "--mask", str(mask), "--resolutions", "64",
                 "--spool", str(tmp_path / "s"), "--quiet"])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()

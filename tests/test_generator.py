"""Execution modes, CFG, operator mix, FLOPs, telemetry and failures, on the embedded model."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from generator.__main__ import main
from generator.measure.timing import PipelineTimer, clock_for
from generator.pipelines import batching
from generator.pipelines.batching import JobInputs
from generator.pipelines.models import load_pipeline
from generator.run import run_sweep
from generator.sweep.config import SweepConfig
from generator.sweep.metadata import RUN_FIELDS
from generator.sweep.plan import plan
from spool import SpoolWriter, record

from .conftest import ROOT

pytestmark = pytest.mark.slow  # real sweeps on the embedded model


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
                      repeats=1, warmup=0, guidance=3.0, classifier_free_guidance=("off", "full"), profile_ops=True,
                      spool=str(base / "spool"), out=str(base / "images"))
    return cfg, _jobs(run_sweep(cfg, progress=False))


def test_every_mode_runs_with_its_own_number_of_unet_calls(modes_sweep):
    cfg, jobs = modes_sweep
    assert {(j["run"]["mode"], j["run"]["cfg"]) for j in jobs} == {
        (m, c) for m in cfg.mode for c in (False, True)}
    (steps,) = cfg.steps
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
    child = """
import resource, sys
from generator.pipelines.models import load_pipeline
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


def _sweep_with_file_size_limit(limit: int, args: list[str]) -> subprocess.CompletedProcess:
    """`python -m generator sweep ARGS` in a child whose files may not grow past `limit` bytes."""
    child = f"""
import resource, signal, sys
# Past RLIMIT_FSIZE the kernel sends SIGXFSZ, which kills by default; ignored, write() fails with EFBIG.
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
from generator.__main__ import main
sys.exit(main(sys.argv[1:]))
"""
    return subprocess.run([sys.executable, "-c", child, "sweep", *args, "--quiet"],
                          cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_spool_write_that_fails_leaves_nothing_half_written_and_is_reported(tmp_path):
    # Sequential batch 8 makes 16 UNet calls, batch 1 makes 2: its spool file is the large one.
    # Learn the sizes from the same sweep without a limit, then cap files between them.
    sweep = dict(mode=("sequential",), batch_sizes=(1, 8, 1), resolutions=(64,), steps=2, repeats=1, warmup=0,
                 sample_hz=0.0, save_images="none")
    free = SweepConfig(**sweep, spool=str(tmp_path / "free"), out=str(tmp_path / "free_images"))
    sizes = [f.stat().st_size for f in run_sweep(free, progress=False)]
    small, large = max(sizes[0], sizes[2]), sizes[1]
    assert large > small + 1000, sizes
    limit = (small + large) // 2
    spool = tmp_path / "spool"
    out = _sweep_with_file_size_limit(limit, [
        "--mode", "sequential", "--batch-sizes", "1,8,1", "--resolutions", "64", "--steps", "2", "--repeats", "1",
        "--warmup", "0", "--sample-hz", "0", "--save-images", "none", "--spool", str(spool)])
    lines = out.stderr.strip().splitlines()
    # The CLI fails at the end, with one summary line: how many files, and why.
    assert out.returncode == 1, out.stderr[-2000:]
    assert "Traceback" not in out.stderr
    assert lines[-1] == (f"error: 1 spool file could not be written (File too large); 3 were written to '{spool}'. "
                         "The spool cannot record a failure it cannot write: the jobs not written are only in the "
                         "messages above"), lines[-1]
    # The failed job was reported with the OS error, the moment it happened.
    (failed,) = [line for line in lines if line.startswith("error: job ")]
    assert "(sequential 64x64 batch 8 measured, ran with status ok) failed: spool file '" in failed
    assert "could not be written: OSError: [Errno 27] File too large" in failed
    assert "the spool cannot record a failure it cannot write" in failed
    failed_path = Path(failed.split("spool file '")[1].split("'")[0])
    # No temporary or partial file anywhere in the spool, and no file for the failed job.
    files = [f for f in spool.rglob("*") if f.is_file()]
    assert all(f.suffix == ".jsonl" and not f.name.startswith(".") for f in files), files
    assert not failed_path.exists() and failed_path.parent == files[0].parent
    # Every file present is complete, and there is one per job reported written: the later,
    # smaller batch-1 job was written after the failure, and so was the run's end file.
    assert len(files) == 3
    jobs = []
    for f in files:
        text = f.read_text()
        assert text.endswith("\n") and f.stat().st_size < limit
        records = [json.loads(line) for line in text.splitlines()]
        assert records[0]["kind"] == "run"
        jobs += [r for r in records if r["kind"] == "job"]
    assert [(j["batch_size"], j["status"]) for j in jobs] == [(1, "ok"), (1, "ok")]


def test_an_image_that_cannot_be_saved_fails_its_job_not_the_sweep(tmp_path):
    # Each 64 px PNG of the tiny model is several times larger than a job's spool file: cap
    # files between the two, so every image save fails and every spool file is still written.
    sweep = dict(batch_sizes=(1, 2), resolutions=(64,), steps=1, repeats=1, warmup=0, sample_hz=0.0,
                 save_images="all")
    free = run_sweep(SweepConfig(**sweep, spool=str(tmp_path / "free"), out=str(tmp_path / "free_images")),
                     progress=False)
    spool_size = max(f.stat().st_size for f in free)
    png_size = min(f.stat().st_size for f in (tmp_path / "free_images").rglob("*.png"))
    assert png_size > spool_size + 2000, (spool_size, png_size)
    limit = (spool_size + png_size) // 2
    spool, images = tmp_path / "spool", tmp_path / "images"
    out = _sweep_with_file_size_limit(limit, [
        "--batch-sizes", "1,2", "--resolutions", "64", "--steps", "1", "--repeats", "1", "--warmup", "0",
        "--sample-hz", "0", "--save-images", "all", "--spool", str(spool), "--out", str(images)])
    # Failed jobs are on record, so the sweep itself succeeds.
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stderr.strip().splitlines()[-1] == f"wrote 3 spool files to {spool}"  # 2 jobs, 1 end file
    jobs = sorted(_jobs(spool.rglob("*.jsonl")), key=lambda j: j["batch_size"])
    assert [j["batch_size"] for j in jobs] == [1, 2]
    for j in jobs:
        png = images / j["run_id"] / f"{j['job_id']}_000.png"
        assert j["status"] == "error"
        assert j["error"] == f"image '{png}' could not be saved: OSError: [Errno 27] File too large"
        assert j["images"] == j["batch_size"] and j["image_records"] == []
        assert len(j["step_records"]) == 1  # the run itself was measured and kept
    assert not [f for f in images.rglob("*") if f.is_file()], "no half-written picture stays behind"


def test_the_spool_writer_removes_its_temporary_file_when_the_rename_fails(tmp_path):
    # A folder where the final file should go: the data is written and fsynced, the rename fails.
    (tmp_path / "run-x" / "job-x.jsonl").mkdir(parents=True)
    with pytest.raises(IsADirectoryError):
        SpoolWriter(tmp_path).write("run-x", "job-x", [record("run", run_id="run-x")])
    assert [p.name for p in (tmp_path / "run-x").iterdir()] == ["job-x.jsonl"]
    assert (tmp_path / "run-x" / "job-x.jsonl").is_dir()


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
    mask = make(tmp_path)
    code = main(["sweep", "--task", "inpaint", "--mask", str(mask), "--resolutions", "64",
                 "--spool", str(tmp_path / "s"), "--quiet"])
    assert code == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_the_sweep_runs_its_plan_in_order(modes_sweep):
    cfg, jobs = modes_sweep
    # No warm-up to settle (--warmup 0) and whole --repeats: the jobs run exactly as planned, the runs of
    # the size interleaved round by round, then the profiled jobs.
    planned = [(j.run.mode, j.run.cfg, j.batch_size, j.round, j.kind) for size in plan(cfg) for j in size.jobs()]
    ran = [(j["run"]["mode"], j["run"]["cfg"], j["batch_size"], j["round"],
            "profiled" if j["profiled"] else "warmup" if j["warmup"] else "measured") for j in jobs]
    assert ran == planned
    # repeat counts the jobs of each run and batch size: the measured one first, then the profiled one.
    assert {(j["profiled"], j["repeat"]) for j in jobs} == {(False, 0), (True, 1)}


def test_every_run_carries_the_sweeps_metadata_and_its_own_fields(modes_sweep):
    _, jobs = modes_sweep
    runs = list({j["run"]["run_id"]: j["run"] for j in jobs}.values())
    assert len(runs) == 6 and len({r["sweep_id"] for r in runs}) == 1
    assert all(list(r) == ["kind", "schema_version", *RUN_FIELDS] for r in runs)
    machine = ("host", "device", "device_name", "torch_version", "diffusers_version", "model_id", "model_kind",
               "model_params", "scheduler", "threads", "peak_flops", "peak_flops_source")
    assert len({tuple(str(r[k]) for k in machine) for r in runs}) == 1
    assert runs[0]["model_params"] > 0 and runs[0]["scheduler"] == "DDIMScheduler"
    assert runs[0]["model_kind"] == "embedded" and runs[0]["model_id"].startswith("embedded-")
    # Every job file of a run carries the same run record.
    for j in jobs:
        assert j["run"] == next(r for r in runs if r["run_id"] == j["run_id"])

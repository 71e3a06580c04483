"""Kinds the spool contract states (spool/contract.py): a spool file's kind from its name, and the kind of model a
run measured as a field of its run record, landing in the warehouse's `runs.model_kind`."""

from __future__ import annotations

import duckdb
import pytest

from collector.ingest import CollectorConfig, ingest_pending
from generator.pipelines import models
from generator.records.ids import new_id
from generator.sweep.config import SweepConfig
from generator.sweep.metadata import run_record
from generator.sweep.plan import plan
from spool import FILE_KINDS, MODEL_KINDS, SpoolWriter, file_kind
from warehouse import db


@pytest.mark.parametrize("kind", list(FILE_KINDS))
def test_a_spool_file_kind_is_read_back_from_the_name_it_is_written_under(kind, tmp_path):
    name = new_id(FILE_KINDS[kind])
    assert file_kind(name) == kind
    assert file_kind(f"{name}.jsonl") == kind
    path = SpoolWriter(str(tmp_path)).write("run-1", name, [{"kind": "run"}])
    assert file_kind(str(path)) == kind


@pytest.mark.parametrize("name", ["image-20260101T000000-0000abcd.jsonl", "stopped.jsonl", "jobs-1", ""])
def test_a_name_of_no_known_kind_is_refused_naming_it(name):
    with pytest.raises(ValueError, match="spool file name must begin with one of job-, stop-, level-, got " +
                       repr(name).replace("(", r"\(")):
        file_kind(name)


@pytest.mark.parametrize("model, arch, kind", [
    (None, "tiny", "embedded"), (None, "sd15", "preset"), ("/models/sd15", "tiny", "weights"),
    ("/models/last.ckpt", "ldm-inpaint", "weights"),
])
def test_the_model_kind_follows_what_load_pipeline_loads(model, arch, kind):
    assert models.model_kind(model, arch) == kind and kind in MODEL_KINDS


METADATA = {"host": "h", "device": "cpu", "device_name": "cpu", "torch_version": "2", "diffusers_version": "0",
            "model_params": 1, "scheduler": "DDIMScheduler", "threads": 2, "peak_flops": None,
            "peak_flops_source": "none", "gpu_uuid": None, "math_mode": "float32", "tf32_matmul": None,
            "tf32_cudnn": None, "ceiling_matmul_flops": 1e11, "ceiling_conv_flops": 1e11,
            "ceiling_copy_bytes_per_s": 2e10, "unet_weight_bytes": 4_000_000, "cpu_count": 2,
            "device_memory_bytes": 8 * 2**30, "worker_id": None, "ray_node_id": None, "weights_sha256": None,
            "family": "unet"}


def _run(model_id: str, model_kind: str | None, n: int) -> dict:
    cfg = SweepConfig(batch_sizes=(1,), resolutions=(64,))
    run = plan(cfg)[0].runs[0]
    rec = run_record({**METADATA, "model_id": model_id, "model_kind": model_kind}, cfg, run,
                     {"run_id": f"run-{n}", "sweep_id": "sweep-1", "started_at": "2026-01-01T00:00:00+00:00"},
                     telemetry_gpu=False)
    if model_kind is None:  # a run record written before model_kind was a field
        del rec["model_kind"]
    return rec


@pytest.mark.parametrize("one_by_one", [False, True], ids=["batch", "file by file"])
def test_model_kind_lands_in_the_runs_column_and_an_older_record_gets_it_from_its_model_id(tmp_path, one_by_one):
    spool = tmp_path / "spool"
    runs = [_run("embedded-tiny-ldm-txt2img", "embedded", 1), _run("/models/preset-x", "weights", 2),
            _run("preset-sd15-random-txt2img", None, 3), _run("embedded-tiny-ldm-inpaint", None, 4),
            _run("/models/sd15", None, 5)]
    writer = SpoolWriter(str(spool))
    for rec in runs:
        writer.write(rec["run_id"], new_id(FILE_KINDS["run_end"]), [rec])
    if one_by_one:  # a file the batch read refuses is read on its own: the same column either way
        (spool / "run-9").mkdir()
        (spool / "run-9" / "stop-bad.jsonl").write_text("not json\n")
    report = ingest_pending(CollectorConfig(spool=str(spool), db=str(tmp_path / "w.duckdb")))
    assert report.files == 5
    got = dict(db.query_df(str(tmp_path / "w.duckdb"), "SELECT run_id, model_kind FROM runs").values.tolist())
    assert got == {"run-1": "embedded", "run-2": "weights", "run-3": "preset", "run-4": "embedded", "run-5": "weights"}


def test_a_warehouse_from_before_migration_10_gets_each_runs_model_kind_from_its_model_id(tmp_path):
    """Migration 10 on a real warehouse file holding runs of the three kinds, stored before the column existed."""
    path = str(tmp_path / "old.duckdb")
    migrations, _ = db.schema_parts()
    con = duckdb.connect(path)
    con.execute("CREATE TABLE schema_migrations (version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, "
                "applied_at TIMESTAMPTZ NOT NULL)")
    for number, name, sql in migrations:
        if number < 10:
            con.execute(sql)
            con.execute("INSERT INTO schema_migrations VALUES (?, ?, now())", [number, name])
    for n, model_id in enumerate(["embedded-tiny-ldm-txt2img", "preset-sdxl-random-txt2img", "/models/sd15"]):
        con.execute("INSERT INTO runs (run_id, sweep_id, started_at, device, model_id, task, mode, height, width, "
                    "steps, schema_version) VALUES (?, 's', now(), 'cpu', ?, 'txt2img', 'static', 64, 64, 2, 1)",
                    [f"run-{n}", model_id])
    con.close()
    with db.writer(path) as con:
        got = dict(con.execute("SELECT model_id, model_kind FROM runs").fetchall())
    assert got == {"embedded-tiny-ldm-txt2img": "embedded", "preset-sdxl-random-txt2img": "preset",
                   "/models/sd15": "weights"}

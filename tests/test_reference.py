"""The GPU reference in examples/gpu-h200/: its spool files still ingest under today's contract, and
the README's step table recomputes from them."""

from __future__ import annotations

import shutil

from collector.ingest import CollectorConfig, ingest_pending

from .conftest import ROOT, sql_rows

REFERENCE = ROOT / "examples" / "gpu-h200"


def _ingest(tmp_path) -> str:
    spool = tmp_path / "spool"
    shutil.copytree(REFERENCE / "spool", spool)
    db_path = str(tmp_path / "reference.duckdb")
    report = ingest_pending(CollectorConfig(spool=str(spool), db=db_path))
    assert report.quarantined == [], report.quarantined
    return db_path


def _readme_row(label: str) -> dict[int, int]:
    """The README table's row `label`: UNet rows -> milliseconds (blank cells left out)."""
    lines = (REFERENCE / "README.md").read_text().splitlines()
    header = next(line for line in lines if line.startswith("| UNet rows"))
    row = next(line for line in lines if line.startswith(f"| {label}"))
    cells = lambda line: [c.strip() for c in line.strip("|").split("|")[1:]]  # noqa: E731
    return {int(r): int(v) for r, v in zip(cells(header), cells(row)) if v}


def test_the_reference_spool_ingests_whole_and_names_the_h200(tmp_path):
    db_path = _ingest(tmp_path)
    run_dirs = [d for d in (REFERENCE / "spool").iterdir() if d.is_dir()]
    runs = sql_rows(db_path, "SELECT run_id, device, device_name FROM runs")
    assert sorted(r[0] for r in runs) == sorted(d.name for d in run_dirs)
    assert {(r[1], r[2]) for r in runs} == {("cuda", "NVIDIA H200")}
    files = sum(1 for d in run_dirs for f in d.iterdir() if f.suffix == ".jsonl")
    assert sql_rows(db_path, "SELECT count(*) FROM ingested_files")[0][0] == files


def test_the_readme_step_table_recomputes_from_the_spool(tmp_path):
    db_path = _ingest(tmp_path)
    for label, cfg in (("step, CFG off (ms)", False), ("step, CFG on (ms)", True)):
        measured = dict(sql_rows(db_path, """
            SELECT s.unet_rows, round(median(s.duration_s) * 1000)::INT
            FROM steps s JOIN jobs j USING (job_id) JOIN runs r ON r.run_id = j.run_id
            WHERE NOT j.warmup AND NOT j.profiled AND r.mode = 'static' AND r.height = 512
              AND r.model_id LIKE 'preset-sd15-%' AND r.cfg = ?
            GROUP BY s.unet_rows""", [cfg]))
        assert _readme_row(label) == measured, label

"""Every page, through Streamlit's AppTest, on a warehouse built by a real sweep (and on an empty one)."""

from __future__ import annotations

import json
import re
import shutil

import numpy as np
import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

import stats
from collector.ingest import CollectorConfig, ingest_pending
from generator.run import run_sweep
from generator.sweep.config import SweepConfig
from warehouse import costmodel, db, invariance, queries
from warehouse.explain import answer as said_answer
from warehouse.explain import effects, measured, pictures, scaling
from warehouse.queries import Warehouse

from .conftest import ROOT, sql_rows as _sql

pytestmark = pytest.mark.slow  # every page on a real sweep's warehouse

PAGES = ["overview", "throughput", "steps", "operators", "telemetry", "memory", "load", "gallery", "papers", "sql"]


def _app(monkeypatch, db_path, out, page=None):
    monkeypatch.setenv("WAREHOUSE_DB", db_path)
    monkeypatch.setenv("OUTPUT_DIR", out)
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=120).run()
    if page:
        at.switch_page(f"pages/{page}.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _text(at) -> str:
    return " ".join(m.value for m in at.markdown) + " " + " ".join(c.value for c in at.caption)


@pytest.mark.parametrize("page", PAGES)
def test_every_page_renders_on_an_empty_warehouse(page, tmp_path, monkeypatch):
    with db.writer(tmp_path / "empty.duckdb"):
        pass  # schema, papers, no runs
    at = _app(monkeypatch, str(tmp_path / "empty.duckdb"), str(tmp_path), page)
    if page != "papers" and page != "sql":
        assert any("No runs yet" in i.value for i in at.info)


def test_the_sidebar_shows_the_servers_warehouse_and_offers_no_other(tmp_path, monkeypatch):
    with db.writer(tmp_path / "empty.duckdb"):
        pass
    at = _app(monkeypatch, str(tmp_path / "empty.duckdb"), str(tmp_path))
    assert f"Warehouse: `{tmp_path / 'empty.duckdb'}`" in [c.value for c in at.sidebar.caption]
    assert len(at.text_input) == 0  # no box to point the page at another file


def test_overview_states_the_fit_of_the_warehouse_numbers(rich, monkeypatch):
    db_path, out = rich
    at = _app(monkeypatch, db_path, out)
    text = _text(at)
    for run_id, mode in _sql(db_path, "SELECT run_id, mode FROM runs"):
        rows = _sql(db_path, "SELECT batch_size, median_wall_s FROM throughput_by_batch WHERE run_id = ? "
                             "ORDER BY batch_size", [run_id])
        b = np.array([r[0] for r in rows], float)
        t = np.array([r[1] for r in rows], float)
        # With too few jobs for a 95% interval of the ratio, the headline says so instead of a bracket.
        walls = {b: [r[0] for r in _sql(db_path, "SELECT wall_s FROM measured_jobs WHERE run_id = ? AND "
                                                 "batch_size = ?", [run_id, b])] for b in (1, 4)}
        ratio = stats.ratio_interval(walls[4], walls[1])
        span = "" if ratio.too_few else r" \[[0-9.]+–[0-9.]+\]"
        assert re.search(rf"Batch 4 took {t[-1] / t[0]:.1f}x{span} as long as batch 1: "
                         rf"{4 * t[0] / t[-1]:.1f}x the images", text), mode
        assert ("too few for a 95% interval (6 needed)" in text) == ratio.too_few
        # The cost model of the run's measured jobs is stated; a line is the least-squares line through them,
        # each job weighted by 1 / its batch size's median time (relative residuals).
        jobs = _sql(db_path, "SELECT batch_size, wall_s FROM measured_jobs WHERE run_id = ?", [run_id])
        jb, jt = np.array([r[0] for r in jobs], float), np.array([r[1] for r in jobs], float)
        model = costmodel.fit_cost(jb, jt)
        assert scaling.model(model) in text, mode
        if isinstance(model, costmodel.CostModel) and model.kind == "line":
            weights = 1 / np.array([np.median(jt[jb == b]) for b in jb])
            assert model.marginal_s.value == pytest.approx(np.polyfit(jb, jt, 1, w=weights)[0])
    # The answer comes first: the title follows the main comparison's verdict, then the main comparison's headline, and
    # one table row per run.
    assert at.title[0].value in said_answer.TITLES.values()
    assert re.match(r"\*\*Batch 4 gave [0-9.]+x", at.markdown[0].value)
    table = next(d.value for d in at.dataframe if list(d.value.columns) == said_answer.RUN_COLUMNS)
    assert len(table) == len(_sql(db_path, "SELECT run_id FROM runs"))
    # Each effect shown cites its paper; with none shown, the page says so.
    notes = [m.value for m in at.markdown if m.value.startswith("- **")]
    assert all("/papers#" in e for e in notes)
    assert notes or effects.NO_EFFECTS in [c.value for c in at.caption]
    # The runs' model kind (the run record's model_kind) brings the embedded model's note.
    assert {kind for (kind,) in _sql(db_path, "SELECT DISTINCT model_kind FROM runs")} == {"embedded"}
    assert measured.trained_note(True) in [i.value for i in at.info]  # the shipped weights: no "noise" note
    assert measured.embedded_note(True) not in [i.value for i in at.info]


def test_throughput_table_is_the_view(rich, monkeypatch):
    db_path, out = rich
    at = _app(monkeypatch, db_path, out, "throughput")
    shown = at.dataframe[1].value.sort_values(["label", "batch_size"])
    view = _sql(db_path, "SELECT count(*), sum(images_per_s) FROM throughput_by_batch")[0]
    assert len(shown) == view[0] and shown.images_per_s.sum() == pytest.approx(view[1])
    # Each median carries its interval and certainty, computed from the run's measured jobs.
    for row in shown.itertuples():
        times = [r[0] for r in _sql(db_path, "SELECT wall_s FROM measured_jobs j JOIN runs r USING (run_id) WHERE "
                                    f"{queries.RUN_LABEL} = ? AND batch_size = ?", [row.label, row.batch_size])]
        r = stats.median_interval(times)
        assert r.value == pytest.approx(row.median_wall_s)
        assert row.interval == ("" if r.too_few else f"{r.low:.3g}–{r.high:.3g} s")
        assert row.certainty.startswith("uncertain") == (r.too_few or r.half_width > 0.05)
        assert ("too few for a 95% interval" in row.certainty) == r.too_few


def _charts(at) -> dict[str, list]:
    """Each Vega-Lite chart on the page: its title (the subheader above it) -> the rows it draws."""
    charts = {}
    titles = [h.value for h in at.subheader]
    for chart, title in zip(at.get("vega_lite_chart"), titles):
        spec = json.loads(chart.proto.spec)
        y = spec.get("encoding", {}).get("y", {}).get("field") or spec["layer"][0]["encoding"]["y"]["field"]
        frames = [pa.ipc.open_stream(d.data.data).read_pandas() for d in chart.proto.datasets]
        charts[title] = (y, next(f for f in frames if y in f.columns))
    return charts


@pytest.mark.parametrize("batch_one", ["failed", "missing"])
def test_throughput_charts_and_model_table_agree_without_batch_one(rich, monkeypatch, tmp_path, batch_one):
    db_path, out = rich
    copy = str(tmp_path / "copy.duckdb")
    shutil.copy(db_path, copy)
    with db.writer(copy) as con:
        if batch_one == "failed":
            con.execute("UPDATE jobs SET status = 'oom', error = 'out of memory' WHERE batch_size = 1")
        else:
            con.execute("DELETE FROM jobs WHERE batch_size = 1")
        # Batch 4 takes 5x batch 2's time: speed-up 0.4 over batch 2, efficiency 0.2; 2 s per extra image.
        con.execute("UPDATE jobs SET wall_s = CASE batch_size WHEN 2 THEN 1.0 ELSE 5.0 END WHERE batch_size > 1")
    at = _app(monkeypatch, copy, out, "throughput")
    charts = _charts(at)
    assert "Speed-up over batch 2" in charts and "Speed-up over batch 1" not in charts
    field, speedup = charts["Speed-up over batch 2"]
    assert field == "speedup"
    field, efficiency = charts["Batching efficiency"]
    assert field == "efficiency"
    models, table = at.dataframe[0].value.set_index("run"), at.dataframe[1].value
    assert len(models) == 2  # static and stream
    for label, rows in efficiency.groupby("label"):
        rows = rows.sort_values("batch_size")
        assert list(rows.batch_size) == [2, 4] and list(rows.efficiency) == pytest.approx([1.0, 0.2])
        drawn = speedup[speedup.label == label].sort_values("batch_size")
        assert list(drawn.speedup) == pytest.approx([1.0, 0.4])
        # The model table reads the same jobs: two batch sizes make a line of (5 - 1) / (4 - 2) = 2 s per image,
        # and its fixed share is quoted at batch 2, the smallest measured.
        model = models.loc[label]
        assert model["model"] == "line" and model["per image s"] == "2 [2–2]" and model["saturates"] == "no"
        assert model["fixed share at base"].endswith("at batch 2")
    assert set(table.base_batch) == {2} and table.speedup.notna().all()


def test_operators_page_quotes_the_conv_share_of_the_warehouse(rich, monkeypatch):
    db_path, out = rich
    at = _app(monkeypatch, db_path, out, "operators")
    lo, hi = _sql(db_path, "SELECT min(share), max(share) FROM op_mix WHERE category = 'conv'")[0]
    assert f"Convolution took {lo:.0%}–{hi:.0%} of UNet time here" in _text(at)


def test_steps_page_shows_stream_latency(rich, monkeypatch):
    db_path, out = rich
    at = _app(monkeypatch, db_path, out, "steps")
    latency = Warehouse(db_path).stream_latency([r[0] for r in _sql(db_path, "SELECT run_id FROM runs")])
    # 4 requests at batch 4, each through 3 steps: entered one call apart.
    assert sorted(latency[latency.batch_size == 4].request) == [0, 1, 2, 3]
    assert (latency.latency_s > 0).all()
    assert "Stream Batch: each request's latency" in [s.value for s in at.subheader]


def test_memory_page_names_the_largest_batch_that_fitted(rich, monkeypatch):
    db_path, out = rich
    at = _app(monkeypatch, db_path, out, "memory")
    assert "measured: largest batch that fitted: 4" in _text(at)


def _pairs(db_path: str, job_label: str):
    """The gallery's pairs for the job the page chose (by its label: run label · batch B)."""
    jobs = Warehouse(db_path).jobs_with_images(list(Warehouse(db_path).runs().run_id))
    label, batch = job_label.rsplit(" · batch ", 1)
    job = jobs[(jobs.label == label) & (jobs.batch_size == int(batch))].job_id.iloc[0]
    return invariance.pairs(Warehouse(db_path).image_checks(list(jobs.run_id.unique())), job)


def test_gallery_shows_the_job_images_and_refuses_paths_outside_the_output_folder(rich, monkeypatch, tmp_path):
    db_path, out = rich
    at = _app(monkeypatch, db_path, out, "gallery")
    job = at.selectbox[-1].value
    # The job's images, and each kept picture beside the one of the same seed it was held against.
    pairs = _pairs(db_path, job)
    assert len(pairs) > 0
    assert pictures.READING in [c.value for c in at.caption]  # trained weights: each picture read, not "noise"
    assert measured.embedded_images_note(True) not in [c.value for c in at.caption]
    assert len(at.get("image")) == int(re.search(r"batch (\d+)", job).group(1)) + 2 * len(pairs)
    # A warehouse row pointing elsewhere is refused, not read.
    copy = str(tmp_path / "copy.duckdb")
    shutil.copy(db_path, copy)
    with db.writer(copy) as con:
        con.execute("UPDATE images SET path = '/etc/passwd' WHERE \"index\" = 0")
    at = _app(monkeypatch, copy, out, "gallery")
    assert any("outside the output folder" in w.value and "/etc/passwd" in w.value for w in at.warning)


def test_papers_page_lists_the_library(rich, monkeypatch):
    db_path, out = rich
    at = _app(monkeypatch, db_path, out, "papers")
    titles = {s.value for s in at.subheader}
    assert {t for (t,) in _sql(db_path, "SELECT title FROM papers")} == titles
    assert "Latent Diffusion" in " ".join(titles)


def test_sql_page_caps_rows_stops_runaway_queries_and_refuses_writes(rich, monkeypatch):
    db_path, out = rich
    # A generous limit for the queries that must finish (a loaded machine starts the sandbox slowly), 1 s for the
    # runaway one (the page reads the limit on every run).
    monkeypatch.setenv("SQL_TIME_LIMIT_S", "60")
    at = _app(monkeypatch, db_path, out, "sql")
    at.text_area[0].set_value("SELECT * FROM range(5000)").run()
    assert len(at.dataframe[0].value) == 1000 and "showing the first 1000 rows" in [c.value for c in at.caption]
    at.text_area[0].set_value("SELECT * FROM range(1000)").run()
    assert len(at.dataframe[0].value) == 1000 and "1000 rows" in [c.value for c in at.caption]
    monkeypatch.setenv("SQL_TIME_LIMIT_S", "1")
    at.text_area[0].set_value("SELECT count(*) FROM range(10_000_000) a, range(10_000_000) b "
                              "WHERE a.range * b.range = 7").run()
    assert not at.exception and "Stopped: the query ran past the 1 s limit" in at.error[0].value
    at.text_area[0].set_value("DROP TABLE jobs").run()
    assert not at.exception and at.error[0].value.startswith("The SQL page reads the warehouse only: DROP is refused")
    at.text_area[0].set_value("SELECT * FROM read_csv('/etc/passwd', sep=':', header=false)").run()
    assert not at.exception and at.error[0].value.startswith(
        "The SQL page reads the warehouse only: files, folders and the network are out of reach")
    assert len(at.dataframe) == 1  # only the list of tables and views: no rows of the file
    assert _sql(db_path, "SELECT count(*) FROM jobs")[0][0] > 0


def test_gallery_refuses_a_symlink_in_the_output_folder_that_points_outside_it(rich, monkeypatch, tmp_path):
    db_path, out = rich
    images = tmp_path / "images"
    shutil.copytree(out, images)
    outside = tmp_path / "outside.png"
    shutil.copy(next(images.rglob("*.png")), outside)  # a real image: shown if the guard let it through
    link = images / "link.png"
    link.symlink_to(outside)
    copy = str(tmp_path / "copy.duckdb")
    shutil.copy(db_path, copy)
    with db.writer(copy) as con:
        con.execute("UPDATE images SET path = replace(path, $out, $images), "
                    "mask_path = replace(mask_path, $out, $images)", {"out": str(out), "images": str(images)})
        con.execute("UPDATE images SET path = $link WHERE \"index\" = 0", {"link": str(link)})
    at = _app(monkeypatch, copy, str(images), "gallery")
    batch = int(re.search(r"batch (\d+)", at.selectbox[-1].value).group(1))
    assert [w.value for w in at.warning] == [
        f"1 image path(s) lie outside the output folder {images.resolve()} and were not shown: {link}"]
    pairs = _pairs(copy, at.selectbox[-1].value)
    shown_in_pairs = sum((pairs.path != str(link)).astype(int) + (pairs.ref_path != str(link)).astype(int))
    assert len(at.get("image")) == batch - 1 + shown_in_pairs


def test_gallery_shows_each_inpainted_image_with_its_mask(tmp_path, monkeypatch):
    cfg = SweepConfig(task="inpaint", batch_sizes=(2,), resolutions=(64,), steps=1, repeats=1, warmup=0,
                      spool=str(tmp_path / "spool"), out=str(tmp_path / "images"))
    run_sweep(cfg, progress=False)
    ingest_pending(CollectorConfig(spool=cfg.spool, db=str(tmp_path / "w.duckdb")))
    at = _app(monkeypatch, str(tmp_path / "w.duckdb"), cfg.out, "gallery")
    shown = at.get("image")
    assert len(shown) == 4  # two images, two masks
    assert not at.warning

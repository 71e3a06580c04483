"""Sentences from findings, on their own (no Streamlit): each appears exactly when its condition holds,
quotes the numbers of the data it was made from, and is absent otherwise."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import stats
from warehouse import analysis, contention, costmodel, db, memory
from warehouse.explain import capacity, effects, measured, operators, papers, pictures, scaling, sql, throughput, words
from warehouse.queries import Warehouse

from .test_analysis import HandMade, spread


def cite(key: str) -> str:
    return f"<{key}>"


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> HandMade:
    return HandMade(tmp_path_factory.mktemp("explain") / "w.duckdb")


EXPLAIN = Path(analysis.__file__).with_name("explain")


def test_explain_imports_no_streamlit_and_only_settings_stats_and_the_warehouse():
    assert "streamlit" not in Path(analysis.__file__).read_text()
    modules = sorted(EXPLAIN.glob("*.py"))
    assert len(modules) > 10
    for path in modules:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""] if node.level == 0 else ["warehouse"]
            else:
                continue
            for name in names:
                top = name.split(".")[0]
                assert top != "streamlit", path.name
                if top in {"pages", "generator", "collector", "spool", "dashboard", "benchmarks"}:
                    pytest.fail(f"warehouse/explain/{path.name} imports {name}: only settings, stats and warehouse")


def test_the_explain_package_is_a_docstring_and_re_exports_nothing():
    tree = ast.parse((EXPLAIN / "__init__.py").read_text())
    assert len(tree.body) == 1 and isinstance(tree.body[0].value, ast.Constant), "explain/__init__.py: a docstring only"


# One run: scaling and the model of batch cost.

def test_scaling_quotes_the_time_ratio_and_the_speedup_over_the_smallest_batch(wh):
    tp = wh.tp({1: 1.0, 4: 1.5, 8: 2.6})
    top = tp.iloc[-1]
    assert scaling.scaling(analysis.scaling(tp)) == (
        f"Batch 8 took {top.median_wall_s:.1f}x as long as batch 1: {top.speedup:.1f}x the images per second.")
    assert scaling.scaling(analysis.scaling(tp)) == "Batch 8 took 2.6x as long as batch 1: 3.1x the images per second."


def test_scaling_names_the_smallest_measured_batch_when_batch_one_failed(wh):
    tp = wh.tp({2: 1.0, 8: 2.0}, failed={1: "oom"})
    assert scaling.scaling(analysis.scaling(tp)) == "Batch 8 took 2.0x as long as batch 2: 2.0x the images per second."


def test_scaling_of_a_single_batch_size(wh):
    assert scaling.scaling(analysis.scaling(wh.tp({4: 2.0}))) == "Only batch 4 was measured: 2.00 images per second."


REPEATS = 3


def _model(times: dict[int, float], noise: float = 0.0, seed: int = 1):
    """The cost model of REPEATS jobs per batch size at the given times (multiplicative noise if asked)."""
    b = np.repeat(list(times), REPEATS).astype(float)
    t = np.repeat(list(times.values()), REPEATS) * (1 + noise * np.random.default_rng(seed).standard_normal(len(b)))
    return costmodel.fit_cost(b, t, resamples=300)


LINE = {b: 0.9 + 0.1 * b for b in (1, 2, 4, 8, 16)}
HINGE = {b: 1 + 0.1 * min(b, 8) + 1.0 * max(b - 8, 0) for b in (1, 2, 4, 8, 16, 32)}


def test_a_line_is_worded_as_a_line_with_its_fixed_share_and_intervals():
    text = scaling.model(_model(LINE))
    assert text.startswith("A straight line fits best: t(B) = fixed + marginal x B, with a "
                           "fixed cost of 0.9 s [0.9–0.9] per call and 0.1 s [0.1–0.1] per extra image. With batch "
                           "sizes 1-16, a bend past batch 8 cannot be seen: measure larger batches.")
    assert "At batch 1, 90% [90%–90%] of the time was fixed cost per call, shared by every image in the call." in text
    assert ("bootstrap over the repeats of each batch size, redoing the line-or-hinge choice in each redraw and "
            "widened for the 10 degrees of freedom of the noise; 15 jobs") in text
    assert "knee" not in text and "full" not in text and "bump" not in text and "short of" not in text


def test_a_saturating_hinge_names_the_knee_and_both_slopes_and_a_bend_within_the_noise_claims_nothing():
    m = _model(HINGE)
    text = scaling.model(m)
    assert text.startswith(f"The times bend at batch 8 [8–8] (BIC {m.bic_gain:.0f} below a straight line's; 6 is "
                           "strong evidence): up to it each extra image adds 0.1 s [0.1–0.1], after "
                           "it 1 s [1–1]. The slope after the knee is above the slope before it beyond both "
                           "intervals: past batch 8 the device is full")
    assert m.bic_gain > 400 and "the knee's interval from the fit's profile" in text and "cannot be seen" not in text
    m = _model({b: 1 + 0.5 * min(b, 8) + 0.52 * max(b - 8, 0) for b in (1, 2, 4, 8, 16, 32)}, noise=0.1)
    assert not m.saturates and "device is full" not in scaling.model(m)


def test_a_knee_between_measured_sizes_is_quoted_with_its_interval():
    m = _model({b: 1 + 0.05 * min(b, 5) + 0.5 * max(b - 5, 0) for b in (1, 2, 3, 4, 6, 8, 12, 16)}, noise=0.02)
    assert m.kind == "hinge" and m.knee.low < 5 < m.knee.high and m.knee.low > 3 and m.knee.high < 6
    assert scaling.model(m).startswith(
        f"The times bend at batch {m.knee.value:.3g} [{m.knee.low:.3g}–{m.knee.high:.3g}] (BIC")


def test_a_bend_short_of_strong_evidence_is_named_and_not_claimed():
    m = _model({b: 1 + 0.1 * min(b, 8) + 0.16 * max(b - 8, 0) for b in (1, 2, 3, 4, 6, 8, 12, 16)}, noise=0.05,
               seed=3)
    assert m.kind == "line" and 0 < m.bic_gain < 6
    assert (f"A bend fits a little better (BIC lower by {m.bic_gain:.1f}), short of the 6 that strong evidence "
            "needs: no bend is claimed. With batch sizes 1-16, a bend past batch 12 cannot be seen") in scaling.model(m)


def test_a_batch_slower_than_a_larger_one_is_a_bump_not_a_knee():
    times = {1: 1.0, 2: 1.5, 3: 1.2, 4: 1.3, 6: 1.5, 8: 1.7, 12: 3.0, 16: 4.4}
    m = _model(times, noise=0.02)
    assert m.kind == "line" and m.knee is None and m.bump.batch == 2 and m.bump.slower_than in (3, 4)
    text = scaling.model(m)
    assert (f"Batch 2 was slower than batch {m.bump.slower_than} ({m.bump.ratio:.2f}x its median time), beyond the "
            "noise: a bump (noise, or a kernel choice at that size), not a bend, so no knee is claimed.") in text
    assert "bend at" not in text and "short of" not in text
    row = throughput.model_table({"a": m}, {"a": "run a"}).set_index("run").loc["run a"]
    assert row["bump"] == f"batch 2 > batch {m.bump.slower_than} ({m.bump.ratio:.2f}x)" and row["knee"] == ""


def test_what_the_sizes_cannot_show_is_said_for_too_few_sizes_and_single_jobs():
    few = scaling.model(_model({1: 1.0, 2: 1.1, 4: 1.3}))
    assert ("With batch sizes 1, 2, 4, no bend can be seen: that needs 4 batch sizes or more, each measured at "
            "least twice.") in few
    single = costmodel.fit_cost([1, 2, 4, 8, 16], [1.0, 1.1, 1.3, 1.75, 2.5], resamples=300)
    assert "With batch sizes 1-16, no bend can be seen" in scaling.model(single)


def test_figures_without_noise_to_measure_are_given_without_an_interval():
    m = costmodel.fit_cost([1, 2], [1.0, 1.5], resamples=300)
    text = scaling.model(m)
    assert "fixed cost of 0.5 s (no interval: too few jobs) per call" in text
    assert "_No intervals: 2 jobs leave no noise to measure._" in text and "[" not in text


def test_no_fixed_cost_is_said_when_its_interval_holds_zero_and_a_negative_one_is_named():
    sequential = scaling.model(_model({b: 0.3 * b for b in (1, 2, 4, 8)}, noise=0.05))
    assert "No fixed cost is distinguishable from zero: each image costs its full price" in sequential
    assert "shared by every image" not in sequential
    steep = scaling.model(_model({1: 1.0, 2: 2.5, 4: 5.5}))    # worse than no sharing: the line is below 0 at 0
    assert "The fitted fixed cost is below zero: time grows faster than the batch" in steep


def test_without_a_model_the_reason_is_given_instead_of_a_sentence_about_nothing():
    assert scaling.model(_model({4: 1.0})) == "Only batch 4 was measured: one batch size fits no cost model."
    assert scaling.model(costmodel.fit_cost([], [])) == scaling.NO_MEASURED_JOBS
    noisy = scaling.model(_model({1: 1.0, 2: 0.95, 4: 0.9}))
    assert noisy.startswith("The data are too noisy to fit: the fitted cost of an extra image is negative (-0.0")
    assert "%" not in noisy


def test_the_fixed_share_is_quoted_at_the_smallest_measured_batch():
    text = scaling.model(_model({b: 0.9 + 0.1 * b for b in (2, 4, 8)}))
    assert "At batch 2, 82% [82%–82%] of the time" in text and "batch 1" not in text


def test_phase_saturation_names_the_first_phase_only_when_one_saturates():
    first = analysis.FirstFull(phase="one denoising step", knee=costmodel.Estimate(4.0, 3.5, 4.5),
                               steady=("text encoding",), phases=("text encoding", "one denoising step"),
                               batch_sizes=(1, 2, 4, 8, 16), undetectable_past=8)
    assert scaling.phase_saturation(first, 2) == (
        "Of the phases, **one denoising step** saturates first, at batch 4 [3.5–4.5]; text encoding did not "
        "saturate within the measured batches. With batch sizes 1-16, a bend past batch 8 cannot be seen: measure "
        "larger batches.")
    assert scaling.phase_saturation(None, 2) is None    # phases without a fitted model: nothing to claim
    assert scaling.phase_saturation(None, 0) is None


def test_no_phase_saturating_names_only_the_runs_phases_and_up_to_where_a_bend_could_be_seen():
    # An inpainting run: no text encoder, so its phases are the denoising step and the VAE decoding.
    b = np.repeat([1, 2, 4, 8], 3)
    costs = pd.DataFrame({"batch_size": b, "encode_s": np.nan, "step_s": 0.05 + 0.01 * b,
                          "decode_s": 0.02 + 0.004 * b})
    first = analysis.first_saturating(analysis.phase_models(costs))
    assert first.phase is None and first.phases == ("one denoising step", "VAE decoding")
    text = scaling.phase_saturation(first, 2)
    assert text == ("No phase (one denoising step, VAE decoding) saturates within the measured batches beyond its "
                    "intervals. With batch sizes 1-8, a bend past batch 4 cannot be seen: measure larger "
                    "batches.")
    assert "text encoding" not in text


def test_roofline_sentence_says_the_gap_closed_only_when_it_shrank_beyond_both_intervals():
    ends = analysis.RooflineEnds("r", 1, 0.9, 16, 0.4, 0.01, 0.1, low_range=(0.88, 0.92), high_range=(0.35, 0.45))
    assert scaling.roofline(ends) == (
        "**r**: at batch 1, 90.0% of the denoising time lay above the roofline floor (0.01 s of 0.1 s: the UNet's "
        "FLOPs and weight reads at this device's measured ceilings); at batch 16, 40.0%: the larger batch left less "
        "of the device idle, beyond both intervals (95% intervals 88.0%–92.0% and 35.0%–45.0%).")
    # 97.3% -> 96.8% within overlapping intervals: no claim either way.
    close = scaling.roofline(analysis.RooflineEnds("r", 1, 0.973, 8, 0.968, 0.01, 0.1, low_range=(0.96, 0.98),
                                                   high_range=(0.95, 0.975)))
    assert close.endswith("96.8%: the two shares do not differ beyond their intervals (95% intervals 96.0%–98.0% "
                          "and 95.0%–97.5%).") and "idle" not in close
    assert "at batch 1, 97.3% of the denoising time" in close
    wider = scaling.roofline(analysis.RooflineEnds("r", 1, 0.4, 16, 0.5, 0.01, 0.1, low_range=(0.38, 0.42),
                                                   high_range=(0.48, 0.52)))
    assert wider.endswith("at the larger batch, beyond both intervals (95% intervals 38.0%–42.0% and 48.0%–52.0%).")
    bare = scaling.roofline(analysis.RooflineEnds("r", 1, 0.9, 16, 0.4, 0.01, 0.1))
    assert bare.endswith("40.0%: too few jobs for 95% intervals of both shares, so no change is claimed.")


def test_roofline_share_intervals_come_from_the_jobs_denoising_times(wh):
    spread = [1.0, 1.02, 0.98, 1.01, 0.99, 1.03, 0.97, 1.0]    # denoising: half of each, 0.5 s +-3%
    run_id = wh.run({1: spread, 8: spread}, phases={"denoise": 0.5})
    with db.writer(wh.path) as con:   # floor 0.05 s at batch 1 and 0.4 s at batch 8 (FLOPs at 1e9 FLOP/s)
        con.execute("UPDATE runs SET sweep_id = 'ranges', ceiling_matmul_flops = 1e9, ceiling_conv_flops = 0, "
                    "ceiling_copy_bytes_per_s = 1e12, unet_weight_bytes = 0 WHERE run_id = ?", [run_id])
        con.execute("UPDATE jobs SET unet_flops_total = 5e7 * batch_size, unet_calls = 1 WHERE run_id = ?", [run_id])
    costs = Warehouse(wh.path).job_costs([run_id])
    (end,) = analysis.roofline_ends(Warehouse(wh.path).roofline([run_id]), costs)
    for share, (low, high), floor, batch in ((end.low_share, end.low_range, 0.05, 1),
                                             (end.high_share, end.high_range, 0.4, 8)):
        d = stats.median_interval(costs[costs.batch_size == batch].denoise_s)
        d_low, d_high = d.low, d.high
        assert (low, high) == (pytest.approx(1 - floor / d_low), pytest.approx(1 - floor / d_high))
        assert low <= share <= high
    assert end.change == "less" and "left less of the device idle" in scaling.roofline(end)
    (bare,) = analysis.roofline_ends(Warehouse(wh.path).roofline([run_id]))
    assert bare.low_range is None and bare.change is None


# The sweep: what was measured, and the effects its data shows.

def test_what_you_measured_quotes_the_sweep(wh):
    a, b = wh.run({1: 1.0, 2: 1.5}, height=64), wh.run({4: 1.0}, height=128, mode="stream", cfg=True)
    runs = Warehouse(wh.path).runs()
    text = measured.what_you_measured(analysis.sweep_summary(runs[runs.run_id.isin([a, b])], wh.throughput(a, b)))
    assert text == ("Batched latent-diffusion **txt2img** generation with `embedded-tiny-ldm-txt2img` (2.5 M "
                    "parameters) on **cpu** (float32): 2 runs at 64x64, 128x128 px, modes static, stream, "
                    "batch sizes 1, 2, 4, 3 denoising steps, guidance 1, 3.")


def test_embedded_notes_appear_only_for_the_embedded_model():
    random = pd.DataFrame({"model_kind": ["embedded"], "weights_sha256": [None]})
    trained = pd.DataFrame({"model_kind": ["embedded"], "weights_sha256": ["ab12"]})
    assert "noise" in measured.embedded_note(analysis.uses_embedded_model(random))
    assert measured.embedded_note(analysis.uses_embedded_model(trained)) is None
    assert "trained here on the shapes data set" in measured.trained_note(analysis.uses_trained_model(trained))
    assert measured.trained_note(analysis.uses_trained_model(random)) is None
    assert "noise, by design" in measured.embedded_images_note(True)
    assert measured.embedded_images_note(False) is None


def test_the_preset_note_appears_only_for_a_preset_and_says_real_shapes_only_of_a_real_one():
    real = measured.preset_note(analysis.presets_used(["preset-sd15-random-txt2img"]))
    assert "architecture preset" in real and "`sd15`: the published model's shapes" in real
    assert "times like the real model" in real and "toy" not in real
    toy = measured.preset_note(analysis.presets_used(["preset-ldm-inpaint-tiny-random-inpaint"]))
    assert "`ldm-inpaint-tiny`: random, seeded weights at toy widths" in toy
    assert "real model's shapes" not in toy and "times like" not in toy
    both = measured.preset_note(analysis.presets_used(["preset-ldm-inpaint-random-inpaint",
                                                      "preset-ldm-inpaint-tiny-random-inpaint"]))
    assert "`ldm-inpaint`: the published model's shapes" in both and "`ldm-inpaint-tiny`: random" in both
    assert measured.preset_note(analysis.presets_used(["embedded-tiny-ldm-txt2img", "/models/sd15"])) is None


def test_phase_label_and_caption_quote_the_views_shares_and_every_phase_not_drawn(wh):
    run_id = wh.run({1: 1.0, 4: 2.0}, phases={"prepare": 0.05, "denoise": 0.75, "decode": 0.1, "postprocess": 0.03})
    rows = Warehouse(wh.path).phase_breakdown([run_id])
    assert measured.phase_label(analysis.phase_share_ends(rows, "denoise")) == "75% at batch 1, 75% at batch 4"
    assert measured.phase_label(analysis.phase_share_ends(rows, "encode_prompt")) == ""
    undrawn = {p: analysis.phase_share_ends(rows, p) for p in ("postprocess", "prepare")}
    caption = measured.phase_caption(512, 768, "static", undrawn)
    assert "your 512x768 static run" in caption and "(`outside`)" in caption and "`median_share`" in caption
    assert caption.endswith("Phases not drawn: postprocess 3% at batch 1, 3% at batch 4; prepare 5% at batch 1, "
                            "5% at batch 4.")
    assert "need not add up to exactly 100%" in caption and "so the shares add up" not in caption
    assert "Phases not drawn" not in measured.phase_caption(512, 768, "static", {})
    assert "fill the device" not in caption     # a claim no number on the page tests


def _effects(wh, *run_ids):
    runs = Warehouse(wh.path).runs()
    runs = runs[runs.run_id.isin(run_ids)]
    costs = Warehouse(wh.path).job_costs(list(run_ids))
    return effects.effects(analysis.effects(runs, wh.throughput(*run_ids), analysis.run_models(costs), costs), cite)


FLAT = {b: [1.0 + 0.01 * b, 1.0 + 0.012 * b] for b in (1, 2, 4, 8)}              # fixed cost ~99% of batch 1
FULL = {b: [0.05 + 0.1 * min(b, 4) + 1.0 * max(b - 4, 0)] * 2 for b in (1, 2, 4, 8, 16)}   # saturates at 4


def test_effects_show_only_what_the_data_shows(wh):
    flat, full = wh.run(FLAT), wh.run(FULL)
    assert [n.split("**")[1] for n in _effects(wh, flat)] == ["Latent space"]
    assert "99%" in _effects(wh, flat)[0] and "(<ldm>)" in _effects(wh, flat)[0]
    notes = _effects(wh, full)
    assert [n.split("**")[1] for n in notes] == ["Compute-bound once batched", "Where it stops"]
    assert "up to batch 4 and 1 s [1–1] after it" in notes[0]
    assert "(batch 4)" in notes[1] and "<distrifusion>" in notes[1] and "<perflow>" in notes[1]
    assert _effects(wh, wh.run({1: [1.0, 1.0], 2: [2.0, 2.0]})) == []   # no fixed cost, no knee: nothing to say


def test_the_fixed_cost_is_explained_only_by_the_parts_the_data_measured(wh):
    flat = wh.run(FLAT, phases={"denoise": 0.5})
    note = _effects(wh, flat)[0]
    assert "launching work" not in note and "reading the weights" not in note and "Python" not in note
    assert note.endswith("What the fixed cost is made of is not measured here (`--profile-ops` profiles the UNet's "
                         "operators).")
    wh.ops(flat, 1, {"conv": 0.3, "overhead": 0.6, "attention": 0.1})
    wh.ops(flat, 8, {"conv": 0.5, "overhead": 0.4, "attention": 0.1})
    with db.writer(wh.path) as con:   # 1 MB of weights, 10 calls, at 1 GB/s: 0.01 s of about 0.5 s
        con.execute("UPDATE runs SET sweep_id = 'parts', ceiling_matmul_flops = 1e12, ceiling_conv_flops = 0, "
                    "ceiling_copy_bytes_per_s = 1e9, unet_weight_bytes = 1e6 WHERE run_id = ?", [flat])
        con.execute("UPDATE jobs SET unet_flops_total = 1e6, unet_calls = 10 WHERE run_id = ?", [flat])
    runs = Warehouse(wh.path).runs()
    runs = runs[runs.run_id == flat]
    costs = Warehouse(wh.path).job_costs([flat])
    roof = Warehouse(wh.path).roofline([flat])
    found = analysis.effects(runs, wh.throughput(flat), analysis.run_models(costs), costs,
                             mix=Warehouse(wh.path).op_mix([flat]), roof=roof)
    weight = 0.01 / roof[roof.batch_size == 1].denoise_s.iloc[0]
    assert found.shared[0].overhead == (1, pytest.approx(0.6))
    assert found.shared[0].weight_read == (1, pytest.approx(weight))
    note = effects.effects(found, cite)[0]
    assert note.endswith("What the data show of it: at batch 1, 60% of its UNet time was outside every operator "
                         "(Python and framework dispatch, or an idle device: the operator profile); reading the "
                         f"UNet's weights once per call at the measured copy speed takes {weight:.1%} of the "
                         "denoising time at batch 1 (the roofline).")


def test_effects_name_cfg_when_on(wh):
    assert any("**Classifier-free guidance doubles the UNet batch**" in n for n in _effects(wh, wh.run(FLAT, cfg=True)))
    assert not any("Classifier-free" in n for n in _effects(wh, wh.run(FLAT)))


def test_effects_quote_stream_over_sequential_like_for_like_with_the_loop_apart(wh):
    stream = wh.run({1: 1.0, 2: 1.0, 4: 1.0}, mode="stream", phases={"denoise": 0.5})
    seq = wh.run({1: 1.0, 2: 3.0}, mode="sequential", phases={"denoise": 0.5})
    notes = " ".join(_effects(wh, stream, seq))
    assert ("**Stream Batch** (<streamdiffusion>): at 64x64, CFG off, batch 2, sequential time over stream time was "
            "3.00x") in notes and "for the denoising loop (the paper reports ~1.5x on a GPU) and 3.00x" in notes
    assert "No static run of the same setting was measured to compare stream with." in notes
    assert not any("Stream Batch" in n for n in _effects(wh, stream))


def test_stream_batch_is_said_to_lose_to_static_when_static_was_faster_beyond_the_interval(wh):
    seq = wh.run({1: spread(1.0), 8: spread(8.0)}, mode="sequential", height=40, phases={"denoise": 0.5})
    stream = wh.run({1: spread(1.0), 8: spread(2.8)}, mode="stream", height=40, phases={"denoise": 0.5})
    static = wh.run({1: spread(1.0), 8: spread(2.16)}, mode="static", height=40, phases={"denoise": 0.5})
    note = next(n for n in _effects(wh, seq, stream, static) if "Stream Batch" in n)
    assert "2.86x [" in note   # over sequential, with its interval
    assert f"Against static batching (txt2img 40x40 static ({static})) at batch 8, static time over stream time " \
           "was 0.77x [" in note
    assert note.endswith(": static was faster, beyond the interval: plain batching beat Stream Batch here.")
    fast = wh.run({1: spread(1.0), 8: spread(4.0)}, mode="static", height=40, phases={"denoise": 0.5})
    note = next(n for n in _effects(wh, seq, stream, fast) if "Stream Batch" in n)
    assert note.endswith(": stream was faster than static too, beyond the interval.")
    g = analysis.StreamGain("64x64", False, 8, 2.0, float("nan"), static_batch=8, over_static=1.01,
                            over_static_range=None)
    assert "sequential time over stream time was 2.00x for the whole job" in effects.effects(
        analysis.Effects([], [], False, [g], []), cite)[0]   # the loop untimed (no phases): not quoted
    assert effects.effects(analysis.Effects([], [], False, [g], []), cite)[0].endswith(
        "1.01x: too few jobs for a 95% interval, so neither is said to be faster.")
    g = analysis.StreamGain("64x64", False, 8, 2.0, 2.0, static_batch=8, over_static=1.01,
                            over_static_range=(0.9, 1.1))
    assert effects.effects(analysis.Effects([], [], False, [g], []), cite)[0].endswith(
        ": neither was faster beyond the interval.")


def test_resolution_claims_a_difference_only_beyond_both_intervals(wh):
    small, large = wh.run({1: spread(1.0), 4: spread(1.0)}, height=48), wh.run({1: spread(1.0), 4: spread(2.0)},
                                                                               height=96)
    notes = " ".join(_effects(wh, small, large))
    assert ("**Resolution** (<flowdcn>): static, CFG off, the speed-up at batch 4 over batch 1 was 4.0x [") in notes
    assert f"at 48 px (txt2img 48x48 static ({small})) and 2.0x [" in notes
    assert "the larger size gained less from batching, beyond both 95% intervals" in notes
    small, large = wh.run({1: spread(1.0), 4: spread(2.0)}, height=56), wh.run({1: spread(1.0), 4: spread(1.0)},
                                                                               height=112)
    notes = " ".join(_effects(wh, small, large))
    assert "fills the device sooner" not in notes and "the larger size gained more from batching here" in notes
    assert "Resolution" not in " ".join(_effects(wh, small))
    close = analysis.ResolutionGain("static", False, 8, 64, 128, 3.1, 2.9, small_range=(2.8, 3.4),
                                    large_range=(2.6, 3.2))
    said = effects.effects(analysis.Effects([], [], False, [], [close]), cite)[0]
    assert said.endswith("do not differ beyond their 95% intervals, so no effect of size is claimed.")
    assert "sooner" not in said
    bare = analysis.ResolutionGain("static", False, 8, 64, 128, 4.4, 2.9)
    said = effects.effects(analysis.Effects([], [], False, [], [bare]), cite)[0]
    assert said.endswith("too few jobs for 95% intervals, so no effect of size is claimed.") and "4.4x at" in said


# Throughput: the figures' names and the model table.

def test_speedup_is_named_over_batch_n_or_over_the_smallest_batch():
    assert throughput.speedup_title([1, 1]) == "Speed-up over batch 1" and throughput.speedup_axis([1]) == "x batch 1"
    assert throughput.speedup_title([2]) == "Speed-up over batch 2" and throughput.efficiency_axis([2]) == (
        "speed-up / (batch / 2)")
    assert throughput.speedup_title([1, 2]) == "Speed-up over the smallest batch"
    assert throughput.speedup_axis([1, 2]) == "x smallest batch"
    assert throughput.efficiency_axis([1]) == "speed-up / batch"
    assert throughput.efficiency_axis([1, 2]) == "speed-up / (batch / smallest batch)"


def test_model_table_reads_each_runs_model_or_why_there_is_none():
    models = {"a": _model(HINGE), "b": _model({4: 1.0}), "c": _model({1: 1.0, 2: 0.9, 4: 0.8})}
    table = throughput.model_table(models, {"a": "run a", "b": "run b", "c": "run c"}).set_index("run")
    assert list(table.columns) == throughput.MODEL_COLUMNS[1:]
    assert table.loc["run a"].tolist() == ["hinge", "1 [1–1]", "0.1 [0.1–0.1]", "8 [8–8]", "1 [1–1]",
                                           "91% [91%–91%] at batch 1", "yes", "batch 16", ""]
    assert table.loc["run b", "model"] == "one batch size" and table.loc["run c", "model"] == "too noisy to fit"


# Operators and telemetry.

def test_conv_share_quotes_the_range_and_the_reported_share_only_with_conv_rows(wh):
    run_id = wh.run({1: 1.0, 2: 1.0})
    wh.ops(run_id, 1, {"conv": 1.0, "attention": 3.0})
    wh.ops(run_id, 2, {"conv": 3.0, "attention": 1.0})
    text = operators.conv_share(analysis.conv_share(Warehouse(wh.path).op_mix([run_id])), cite)
    assert text.startswith("Convolution took 25%–75% of UNet time here; <beyond-llms> reports up to 44%")
    assert operators.conv_share(analysis.conv_share(Warehouse(wh.path).op_mix(["no-such-run"])), cite) is None
    assert "44%" in operators.conv_rule_tooltip()


def test_memory_fit_names_the_failure_only_when_a_batch_failed(wh):
    ok, oom = wh.run({1: 1.0, 2: 1.0}), wh.run({1: 1.0, 2: 1.0}, failed={8: "oom", 4: "error"})
    text = {f.label[-9:-1]: capacity.memory_fit(f)
            for f in analysis.memory_fits(Warehouse(wh.path).memory_by_batch([ok, oom]))}
    assert text[ok].endswith(f"({ok})**, measured: largest batch that fitted: 2.") and "failed" not in text[ok]
    assert text[oom].endswith(": largest batch that fitted: 2; batch 4 failed (error).")
    assert capacity.memory_fit(analysis.MemoryFit("r", None, 1, "oom")) == (
        "**r**, measured: largest batch that fitted: none; batch 1 failed (oom).")


def test_roofline_sentence_gives_no_share_when_a_floor_exceeds_the_measurement():
    text = scaling.roofline(analysis.RooflineEnds("r", 1, -0.8, 16, 0.4, 0.2, 0.1, above_measured=1))
    assert text.startswith("**r**: at batch 1 the roofline floor is above the denoising time measured")
    assert "%" not in text


def test_an_extra_image_that_costs_nothing_measurable_is_said_to_ride_along_free():
    free = scaling.model(_model({b: 2.0 + 0.25 * max(b - 8, 0) for b in (1, 2, 4, 8, 16, 32)}))
    assert free.startswith("The times bend at batch 8 [8–8] (BIC ")
    assert ("up to it each extra image adds 0 s [0–0] (not distinguishable from zero: extra images ride along "
            "free), after it 0.25 s [0.25–0.25].") in free
    assert "device is full" in free
    assert "ride along free" not in scaling.model(_model(LINE))


def test_phase_saturation_lists_the_steady_phases_in_words():
    first = analysis.FirstFull(phase="VAE decoding", knee=costmodel.Estimate(4.0, 4.0, 4.25),
                               steady=("text encoding", "one denoising step"), phases=tuple(analysis.PHASES.values()),
                               batch_sizes=(1, 2, 4, 8), undetectable_past=4)
    assert scaling.phase_saturation(first, 3).startswith(
        "Of the phases, **VAE decoding** saturates first, at batch 4 [4–4.25]; text encoding and one denoising step "
        "did not saturate within the measured batches.")


STEADY = {1: [1.0, 1.01, 0.99, 1.0, 1.005, 0.995], 8: [2.0, 2.02, 1.98, 2.0, 2.01, 1.99]}   # 6 jobs: an interval
SHAKY = {1: [1.0, 1.5, 0.7, 1.0, 1.2, 0.9], 8: [2.0, 3.0, 1.5, 2.0, 2.4, 1.8]}


def test_the_headline_quotes_its_interval_and_says_when_it_is_uncertain(wh):
    steady = wh.run(STEADY)
    s = analysis.scaling(wh.throughput(steady), Warehouse(wh.path).job_costs([steady]))
    text = scaling.scaling(s)
    # 6 jobs a side: [min(top) / max(base), max(top) / min(base)].
    assert text == (f"Batch 8 took 2.0x [{1.98 / 1.01:.1f}–{2.02 / 0.99:.1f}] as long as batch 1: 4.0x the images per "
                    "second.") and not s.uncertain
    shaky = wh.run(SHAKY)
    text = scaling.scaling(analysis.scaling(wh.throughput(shaky), Warehouse(wh.path).job_costs([shaky])))
    assert text.endswith("_(Uncertain: the interval is wider than ±5%.)_")


def test_the_headline_says_when_its_repeats_are_too_few_for_an_interval(wh):
    """3 jobs a batch size (the demo's first part): the old bootstrap printed [min, max] and called it 95%."""
    few = wh.run({1: [1.0, 1.01, 0.99], 8: [2.0, 2.02, 1.98]})
    s = analysis.scaling(wh.throughput(few), Warehouse(wh.path).job_costs([few]))
    assert s.too_few and s.uncertain and s.jobs == 3
    text = scaling.scaling(s)
    assert text == ("Batch 8 took 2.0x as long as batch 1: 4.0x the images per second. _(Uncertain: 3 repeats: too "
                    "few for a 95% interval (6 needed).)_")
    assert "[" not in text


def test_the_trust_line_names_the_widest_interval_and_what_to_do_only_when_it_is_wide(wh):
    steady = wh.run(STEADY)
    rows = analysis.batch_intervals(Warehouse(wh.path).job_costs([steady]))
    quiet = scaling.trust(analysis.trust("r", rows, {"rounds": 6, "stop_reason": "repeats: 6 rounds as asked"}))
    assert quiet == ("**How sure**: 6 measured jobs per batch size in 6 rounds, stopped by repeats: 6 rounds as "
                     f"asked; the widest 95% interval of a median is ±{0.02 / 2 / 1.0:.1%} (batch 1).")
    shaky = wh.run({1: SHAKY[1], 8: STEADY[8]})
    rows = analysis.batch_intervals(Warehouse(wh.path).job_costs([shaky]))
    t = analysis.trust("r", rows, {})
    assert t.widest_batch == 1 and t.widest > analysis.UNCERTAIN
    loud = scaling.trust(t)
    assert "(batch 1), wider than ±5%: figures at that batch are uncertain" in loud
    assert loud.endswith("To be surer: add repeats (`--repeats`).")
    assert scaling.trust(None) is None


def test_the_trust_line_says_too_few_repeats_instead_of_an_interval(wh):
    few = wh.run({1: [1.0, 1.01, 0.99], 8: [2.0, 2.02, 1.98]})
    rows = analysis.batch_intervals(Warehouse(wh.path).job_costs([few]))
    text = scaling.trust(analysis.trust("r", rows, {"rounds": 3, "stop_reason": "repeats: 3 rounds as asked"}))
    assert text == ("**How sure**: 3 measured jobs per batch size in 3 rounds, stopped by repeats: 3 rounds as asked; "
                    "3 repeats: too few for a 95% interval (6 needed): no figure of this run is sure. To be surer: "
                    "add repeats (`--repeats`, 6 or more).")
    assert "±" not in text
    # One batch size with enough jobs, one without: the widest of those that have one, and the other named.
    mixed = wh.run({1: STEADY[1], 8: [2.0, 2.02, 1.98]})
    rows = analysis.batch_intervals(Warehouse(wh.path).job_costs([mixed]))
    text = scaling.trust(analysis.trust("r", rows, {}))
    assert text == ("**How sure**: 3 measured jobs per batch size; the widest 95% interval of a median is "
                    f"±{0.02 / 2:.1%} (batch 1); at batch 8, too few repeats for a 95% interval (6 needed): uncertain "
                    "there. To be surer: add repeats (`--repeats`, 6 or more).")


def test_a_table_cell_without_an_interval_says_why_once():
    assert throughput.interval_text(float("nan"), float("nan")) == ""
    assert throughput.certainty(float("nan"), 3, 6) == "uncertain: 3 repeats: too few for a 95% interval (6 needed)"
    assert throughput.certainty(float("nan")) == ""
    assert throughput.certainty(0.021, 8, 6) == "±2.1%"
    assert throughput.certainty(0.074, 8, 6) == "uncertain: ±7.4% (wider than ±5%)"
    assert words.too_few(1, 6) == "1 repeat: too few for a 95% interval (6 needed)"


def _trust_of(wh, run_id: str) -> str:
    """The Overview's trust line of a hand-made run, through the same queries and functions the page uses."""
    run = Warehouse(wh.path).runs().set_index("run_id").loc[run_id].to_dict()
    samples = Warehouse(wh.path).run_samples([run_id])
    flags = contention.flags(contention.contention(samples, cores=analysis.cores(run)))
    rows = analysis.batch_intervals(Warehouse(wh.path).job_costs([run_id]))
    return scaling.trust(analysis.trust(run_id, rows, run, flags))


def test_a_sample_of_other_processes_beyond_every_cpu_is_left_out(wh):
    """A sampler of an older version read a run's first sample as 607-1156% on a 2-CPU host: such a reading
    cannot be, and does not count; one within the machine's CPUs does."""
    run_id = wh.run({1: [1.0, 1.01, 0.99]})
    with db.writer(wh.path) as con:
        con.execute("UPDATE runs SET cpu_count = 2 WHERE run_id = ?", [run_id])
        for i, other in enumerate((1156.0, 6.0, 4.0, 5.0)):
            con.execute("INSERT INTO samples (run_id, t, cpu_util, other_cpu_util, schema_version) "
                        "VALUES (?, ?, 150, ?, 1)", [run_id, 1000.0 + i / 10, other])
    samples = Warehouse(wh.path).run_samples([run_id])
    assert samples.other_cpu_util.isna().tolist() == [True, False, False, False]
    assert contention.contention(samples, cores=2).other_cpu_cores == pytest.approx(0.05)
    assert "Other processes" not in _trust_of(wh, run_id)   # with the bad sample: 146% of the machine


def test_the_trust_line_flags_a_busy_run_and_not_a_quiet_one(wh):
    steady = STEADY
    busy, quiet = wh.run(steady), wh.run(steady)
    with db.writer(wh.path) as con:   # 2 logical CPUs; other processes used 0.9 cores in one run, 0.02 in the other
        con.execute("UPDATE runs SET cpu_count = 2 WHERE run_id IN (?, ?)", [busy, quiet])
        for run_id, other in ((busy, 90.0), (quiet, 2.0)):
            for i in range(20):
                con.execute("INSERT INTO samples (run_id, t, cpu_util, other_cpu_util, schema_version) "
                            "VALUES (?, ?, 150, ?, 1)", [run_id, 1000.0 + i / 10, other])
    loud = _trust_of(wh, busy)
    assert "Other processes used 45% of the machine's CPU during this run." in loud
    assert loud.endswith("To be surer: close other programs and run again.")
    calm = _trust_of(wh, quiet)
    assert "Other processes" not in calm and "To be surer" not in calm


def test_gpu_throttling_is_worded_with_its_reason_and_the_clock_advice():
    t = analysis.Trust("r", 3, None, None, 0.01, 1, flags=(contention.Flag("gpu_throttled_power", 0.3),))
    text = scaling.trust(t)
    assert "The GPU clock was throttled for power in 30% of samples." in text
    assert "pin the GPU clock" in text


# The sentences that pages used to word themselves.

def test_the_sql_pages_sentences_quote_its_limits_and_what_became_of_a_query():
    assert sql.limits(1000, 10.0).endswith("At most 1000 rows are shown; a query is stopped after 10 s.")
    assert sql.stopped("the query ran past the 2 s limit and was stopped after 3.0 s") == (
        "Stopped: the query ran past the 2 s limit and was stopped after 3.0 s. Narrow it down (a WHERE clause, "
        "a LIMIT) and try again.")
    assert sql.rows(1000, True, 1000) == "showing the first 1000 rows"
    assert sql.rows(7, False, 1000) == "7 rows"


def test_a_papers_links_appear_only_where_known():
    assert papers.reported("2x", None, None, None) == "**Reported:** 2x"
    assert papers.reported("2x", "https://x", "2401.1", None) == "**Reported:** 2x  \n[paper](https://x) · arXiv 2401.1"


def test_refused_image_paths_are_counted_and_the_first_three_named():
    said = pictures.refused(["/a", "/b", "/c", "/d"], "/out")
    assert said == "4 image path(s) lie outside the output folder /out and were not shown: /a, /b, /c"
    assert pictures.reference(7, "static", 4, True) == "seed 7 at static batch 4 with VAE slicing"


def test_the_memory_table_caption_names_how_far_it_reaches():
    assert f"not named beyond {memory.FAR}x the largest batch measured" in capacity.batch_table_caption()

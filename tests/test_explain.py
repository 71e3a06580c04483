"""Sentences from findings, on their own (no Streamlit): each appears exactly when its condition holds,
quotes the numbers of the data it was made from, and is absent otherwise."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from warehouse import analysis, explain, queries

from .test_analysis import HandMade


def cite(key: str) -> str:
    return f"<{key}>"


@pytest.fixture(scope="module")
def wh(tmp_path_factory) -> HandMade:
    return HandMade(tmp_path_factory.mktemp("explain") / "w.duckdb")


def test_explain_imports_no_streamlit():
    assert not any("streamlit" in Path(module.__file__).read_text() for module in (analysis, explain))


# One run: scaling, the fit, the outcome.

def test_scaling_quotes_the_time_ratio_and_the_speedup_over_the_smallest_batch(wh):
    tp = wh.tp({1: 1.0, 4: 1.5, 8: 2.6})
    top = tp.iloc[-1]
    assert explain.scaling(analysis.scaling(tp)) == (
        f"Batch 8 took {top.median_wall_s:.1f}x as long as batch 1: {top.speedup:.1f}x the images per second.")
    assert explain.scaling(analysis.scaling(tp)) == "Batch 8 took 2.6x as long as batch 1: 3.1x the images per second."


def test_scaling_names_the_smallest_measured_batch_when_batch_one_failed(wh):
    tp = wh.tp({2: 1.0, 8: 2.0}, failed={1: "oom"})
    assert explain.scaling(analysis.scaling(tp)) == "Batch 8 took 2.0x as long as batch 2: 2.0x the images per second."


def test_scaling_of_a_single_batch_size(wh):
    assert explain.scaling(analysis.scaling(wh.tp({4: 2.0}))) == "Only batch 4 was measured: 2.00 images per second."


def test_fit_sentence_quotes_the_fixed_share_and_the_marginal_cost_and_where_the_line_stops(wh):
    fit = analysis.fit_fixed_marginal(wh.tp({b: 0.9 + 0.1 * b for b in (1, 2, 4, 8)} | {32: 20.0}))
    text = explain.fit(fit)
    assert text.startswith("At batch 1, 90% of the time was fixed cost per call, shared by every extra image; "
                           "each extra image adds 0.1 s. The line holds up to batch 8; from batch 32 on, "
                           "batching efficiency is below 50%")
    assert text.endswith(".") and "from batch 32 on" in text and "little fixed cost" not in text


def test_fit_sentence_without_a_knee_says_nothing_of_one(wh):
    fit = analysis.fit_fixed_marginal(wh.tp({1: 1.0, 2: 1.2, 4: 1.6}))
    assert fit.knee is None
    assert explain.fit(fit) == (f"At batch 1, {fit.fixed_share_at_1:.0%} of the time was fixed cost per call, "
                                f"shared by every extra image; each extra image adds {fit.marginal_s:.3g} s.")
    assert explain.fit(fit) == ("At batch 1, 80% of the time was fixed cost per call, shared by every extra image; "
                                "each extra image adds 0.2 s.")


def test_fit_sentence_when_the_knee_comes_at_once_and_when_there_is_no_share(wh):
    fit = analysis.fit_fixed_marginal(wh.tp({1: 1.0, 2: 2.5, 4: 5.0}))   # worse than no sharing
    text = explain.fit(fit)
    assert text.startswith("At batch 1, 0% of the time was fixed cost")      # a negative share reads as none
    assert "Batching efficiency is below 50% from batch 2 on: there is little fixed cost to share" in text
    assert "The line holds" not in text
    assert explain.fit(None) is None
    steep = analysis.fit_fixed_marginal(wh.tp({4: 0.1, 8: 10.0}))    # the line is below 0 at batch 1
    assert steep.fixed_share_at_1 is None and explain.fit(steep) is None


@pytest.mark.parametrize("walls, device, start, absent", [
    ({1: 1.0, 16: 2.0}, "cpu", ("Batching paid off: extra images rode along on fixed per-call costs (8.0x the "
                                 "images per second for 16x the images per call)."), "filled up"),
    ({1: 1.0, 16: 6.0}, "cuda", ("Batching helped, then faded: 2.7x the images per second for 16x the images "
                                 "per call, as the GPU filled up."), "paid off"),
    ({1: 1.0, 4: 3.6}, "cpu", ("Batching helped little (1.1x the images per second): the CPU cores were already "
                               "busy at the smallest batch"), "GPU"),
])
def test_outcome_sentence_matches_the_speedup_at_the_largest_batch(wh, walls, device, start, absent):
    text = explain.outcome(analysis.batching_outcome(wh.tp(walls), device=device))
    assert text.startswith(start) and absent not in text


def test_outcome_sentence_for_sequential_mode_names_the_baseline(wh):
    text = explain.outcome(analysis.batching_outcome(wh.tp({1: 1.0, 4: 4.0}), mode="sequential"))
    assert text.startswith("Sequential mode makes one pipeline call per image") and text.endswith("beat.")


# The sweep: what was measured, and the effects its data shows.

def test_what_you_measured_quotes_the_sweep(wh):
    a, b = wh.run({1: 1.0, 2: 1.5}, height=64), wh.run({4: 1.0}, height=128, mode="stream", cfg=True)
    runs = queries.runs(wh.path)
    text = explain.what_you_measured(analysis.sweep_summary(runs[runs.run_id.isin([a, b])], wh.throughput(a, b)))
    assert text == ("Batched latent-diffusion **txt2img** generation with `embedded-tiny-ldm-txt2img` (2.5 M "
                    "parameters) on **cpu** (float32): 2 runs at 64x64, 128x128 px, modes static, stream, "
                    "batch sizes 1, 2, 4, 3 denoising steps, guidance 1, 3.")


def test_embedded_notes_appear_only_for_the_embedded_model():
    assert "embedded tiny model" in explain.embedded_note(analysis.uses_embedded_model(["embedded-tiny-ldm-x"]))
    assert explain.embedded_note(analysis.uses_embedded_model(["/models/sd15"])) is None
    assert "noise, by design" in explain.embedded_images_note(True)
    assert explain.embedded_images_note(False) is None


def test_phase_label_and_caption_quote_the_shares_and_the_latent():
    shares = analysis.phase_shares(pd.DataFrame({"batch_size": [1, 1, 4, 4], "phase": ["denoise", "decode"] * 2,
                                                 "median_s": [0.3, 0.1, 0.6, 0.6]}))
    assert explain.phase_label(analysis.phase_share_ends(shares, "denoise")) == "75% at batch 1, 50% at batch 4"
    assert explain.phase_label(analysis.phase_share_ends(shares, "encode_prompt")) == ""
    caption = explain.phase_caption(512, 768, "static", cite)
    assert "your 512x768 static run" in caption and "latent 64x96, 8x smaller per side" in caption
    assert "(<ldm>)" in caption


def _effects(wh, *run_ids):
    runs = queries.runs(wh.path)
    return explain.effects(analysis.effects(runs[runs.run_id.isin(run_ids)], wh.throughput(*run_ids)), cite)


def test_effects_always_name_the_latent_space_and_where_it_stops_and_nothing_unshown(wh):
    notes = _effects(wh, wh.run({1: 1.0, 2: 1.0}))
    assert [n.split("**")[1] for n in notes] == ["Latent space", "Where it stops"]
    assert "(<ldm>)" in notes[0] and "<distrifusion>" in notes[1] and "<perflow>" in notes[1]


def test_effects_name_compute_bound_exactly_when_a_knee_was_reached_and_cfg_when_on(wh):
    no_knee, knee, cfg = wh.run({1: 1.0, 2: 1.0}), wh.run({1: 1.0, 2: 2.5}), wh.run({1: 1.0, 2: 1.0}, cfg=True)
    assert not any("Compute-bound" in n for n in _effects(wh, no_knee))
    assert any(n.startswith("**Compute-bound once batched** (<beyond-llms>)") for n in _effects(wh, no_knee, knee))
    assert not any("Classifier-free" in n for n in _effects(wh, no_knee, knee))
    assert any("**Classifier-free guidance doubles the UNet batch**" in n for n in _effects(wh, no_knee, cfg))


def test_effects_quote_stream_over_sequential_only_with_both_modes(wh):
    stream = wh.run({1: 1.0, 2: 1.0, 4: 1.0}, mode="stream")
    seq = wh.run({1: 1.0, 2: 3.0}, mode="sequential")
    notes = _effects(wh, stream, seq)
    assert ("**Stream Batch** (<streamdiffusion>): at batch 2, stream mode gave 3.00x the images per second of "
            "sequential generation") in " ".join(notes)
    assert not any("Stream Batch" in n for n in _effects(wh, stream))


def test_effects_quote_the_speedup_over_the_smallest_batch_per_resolution_only_with_two_sizes(wh):
    small = wh.run({2: 1.0, 8: 1.0}, height=64, failed={1: "oom"})
    large = wh.run({1: 1.0, 4: 2.0}, height=128)
    notes = " ".join(_effects(wh, small, large))
    assert ("**Resolution** (<flowdcn>): the best speed-up over the smallest batch was 4.0x at 64 px and 2.0x at "
            "128 px") in notes
    assert "Resolution" not in " ".join(_effects(wh, small))


# Throughput: the figures' names and the knee table.

def test_speedup_is_named_over_batch_n_or_over_the_smallest_batch():
    assert explain.speedup_title([1, 1]) == "Speed-up over batch 1" and explain.speedup_axis([1]) == "x batch 1"
    assert explain.speedup_title([2]) == "Speed-up over batch 2" and explain.efficiency_axis([2]) == (
        "speed-up / (batch / 2)")
    assert explain.speedup_title([1, 2]) == "Speed-up over the smallest batch"
    assert explain.speedup_axis([1, 2]) == "x smallest batch"
    assert explain.efficiency_axis([1]) == "speed-up / batch"
    assert explain.efficiency_axis([1, 2]) == "speed-up / (batch / smallest batch)"
    assert "below 50%" in explain.knee_caption() and "smallest measured batch" in explain.knee_caption()


def test_knee_table_reads_the_knee_or_not_reached(wh):
    a, b = wh.run({1: 1.0, 2: 2.5}), wh.run({2: 1.0, 4: 1.0}, failed={1: "oom"})
    table = explain.knee_table(analysis.knees(wh.throughput(a, b)))
    assert list(table.columns) == ["run", "speed-up over batch", "knee (batch size)", "best images/s"]
    assert list(table["knee (batch size)"]) == ["2", explain.KNEE_NOT_REACHED]
    assert list(table["speed-up over batch"]) == [1, 2] and list(table["best images/s"]) == [1.0, 4.0]


# Operators and telemetry.

def test_conv_share_quotes_the_range_and_the_reported_share_only_with_conv_rows(wh):
    run_id = wh.run({1: 1.0, 2: 1.0})
    wh.ops(run_id, 1, {"conv": 1.0, "attention": 3.0})
    wh.ops(run_id, 2, {"conv": 3.0, "attention": 1.0})
    text = explain.conv_share(analysis.conv_share(queries.op_mix(wh.path, [run_id])), cite)
    assert text.startswith("Convolution took 25%–75% of UNet time here; <beyond-llms> reports up to 44%")
    assert explain.conv_share(analysis.conv_share(queries.op_mix(wh.path, ["no-such-run"])), cite) is None
    assert "44%" in explain.conv_rule_tooltip()


def test_memory_fit_names_the_failure_only_when_a_batch_failed(wh):
    ok, oom = wh.run({1: 1.0, 2: 1.0}), wh.run({1: 1.0, 2: 1.0}, failed={8: "oom", 4: "error"})
    text = {f.label[-9:-1]: explain.memory_fit(f)
            for f in analysis.memory_fits(queries.memory_by_batch(wh.path, [ok, oom]))}
    assert text[ok].endswith(f"({ok})**: largest batch that fitted: 2.") and "failed" not in text[ok]
    assert text[oom].endswith(": largest batch that fitted: 2; batch 4 failed (error).")
    assert explain.memory_fit(analysis.MemoryFit("r", None, 1, "oom")) == (
        "**r**: largest batch that fitted: none; batch 1 failed (oom).")

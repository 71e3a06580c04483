"""A transformer family beside the UNet, and attention kernels as a run setting (arXiv 2312.14385's findings).

The PixArt preset is counted on the meta device against the published figure; the attention switch is held to
change the kernel the profiler sees and not the picture; the operator categories are held to cover the
transformer's operators; real sweeps of both families with both kernels go through the spool and the collector
into a real DuckDB file, and the warehouse's figures and sentences are read back and held to their conditions.
"""

from __future__ import annotations

import json
import types

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest

from collector.ingest import CollectorConfig, ingest_pending
from generator.measure import invariance, profiling
from generator.measure.timing import denoiser
from generator.pipelines import attention, presets
from generator.pipelines.models import count_params, load_pipeline
from generator.pipelines.models import family as denoiser_family
from generator.pipelines.parts import quiet_imports
from generator.run import run_sweep
from generator.serve.levels import check_served_model
from generator.sweep.config import SweepConfig
from warehouse import kernels
from warehouse.explain import families
from warehouse.queries import Warehouse

from .conftest import ROOT, sql_rows

# PixArt-α: "0.6B parameters" (arXiv 2310.00426, Table 2); the XL-2 1024-MS transformer as diffusers builds it.
PIXART_PUBLISHED = 0.6e9
PIXART_TRANSFORMER = 611_349_152
T5_XXL_ENCODER = 4.76e9  # google/t5-v1_1-xxl's encoder (PixArt's text encoder)


def cite(key: str) -> str:
    return f"[{key}]"


# 1. The preset: counted on the meta device, against the published figure.
def test_pixart_has_the_published_shape_and_parameter_count():
    quiet_imports()
    with torch.device("meta"):
        parts = presets.build_models("pixart")
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in parts.items()}
    assert counts["transformer"] == PIXART_TRANSFORMER
    assert abs(counts["transformer"] - PIXART_PUBLISHED) / PIXART_PUBLISHED < 0.03
    config = parts["transformer"].config
    assert (config.num_layers, config.num_attention_heads, config.attention_head_dim, config.patch_size) == (28, 16, 72, 2)
    assert config.in_channels == 4 and config.caption_channels == presets.T5_WIDTH
    # The stand-in is a known, small fraction of T5-XXL's encoder, with its width.
    assert counts["text_encoder"] < T5_XXL_ENCODER / 500
    assert parts["text_encoder"].config.d_model == 4096


@pytest.fixture(scope="module")
def pixart_tiny():
    return load_pipeline("txt2img", arch="pixart-tiny")[0]


def test_a_pixart_pipeline_is_of_the_transformer_family(pixart_tiny):
    assert denoiser_family(pixart_tiny) == "transformer"
    assert denoiser_family(load_pipeline("txt2img", arch="tiny")[0]) == "unet"


def test_the_stand_in_gives_t5_xxl_output_shape(pixart_tiny):
    embeds, mask, _, _ = pixart_tiny.encode_prompt(["a red circle on a blue background"], do_classifier_free_guidance=False)
    assert tuple(embeds.shape) == (1, presets.T5_TOKENS, presets.T5_WIDTH) and tuple(mask.shape) == (1, 120)
    assert count_params(pixart_tiny) > sum(p.numel() for p in pixart_tiny.transformer.parameters())


def test_pixart_and_the_refusals_of_what_it_does_not_run(tmp_path):
    dirs = dict(spool=str(tmp_path / "s"), out=str(tmp_path / "o"))
    with pytest.raises(ValueError, match=r"arch 'pixart' runs sequential and static modes .* got mode 'stream'"):
        SweepConfig(arch="pixart", mode=("stream",), **dirs)
    with pytest.raises(ValueError, match=r"arch 'pixart' builds task txt2img, got task 'inpaint'"):
        SweepConfig(arch="pixart", task="inpaint", **dirs)
    with pytest.raises(ValueError, match=r"attention 'efficient' does not run on cpu: it offers sdpa, flash, math"):
        SweepConfig(attention=("sdpa", "efficient"), **dirs)
    with pytest.raises(ValueError, match=r"attention must be one of sdpa, flash, efficient, cudnn, math, got 'xformers'"):
        SweepConfig(attention=("xformers",), **dirs)
    with pytest.raises(ValueError, match=r"attention lists a kernel twice"):
        SweepConfig(attention=("math", "math"), **dirs)
    assert SweepConfig(attention="sdpa,math", **dirs).attention == ("sdpa", "math")
    served = types.SimpleNamespace(resolution=64, guidance=1.0, device="cpu", dtype="float32", model=None,
                                   arch="pixart-tiny")
    with pytest.raises(ValueError, match=r"arch 'pixart-tiny' has no stream engine; use policies fifo,batch"):
        check_served_model(served, ("batch", "stream"))
    check_served_model(served, ("fifo", "batch"))
    assert SweepConfig(attention=("efficient", "cudnn"), device="cuda", **dirs).attention == ("efficient", "cudnn")


def test_the_full_pixart_preset_runs_a_job_end_to_end(tmp_path):
    cfg = SweepConfig(arch="pixart", batch_sizes=(1,), resolutions=(64,), steps=1, repeats=1, warmup=0,
                      save_images="none", sample_hz=0, threads=1, spool=str(tmp_path / "s"), out=str(tmp_path / "o"))
    files = run_sweep(cfg, progress=False)
    records = [json.loads(line) for f in files for line in open(f)]
    run = next(r for r in records if r["kind"] == "run")
    job = next(r for r in records if r["kind"] == "job")
    assert job["status"] == "ok", job["error"]
    assert run["family"] == "transformer" and run["model_id"] == "preset-pixart-random-txt2img"
    assert run["model_params"] > PIXART_TRANSFORMER
    # One step of 16 patches through 28 layers: at least 2 FLOPs per weight of the blocks per patch.
    assert job["unet_flops_total"] > 2 * 16 * 0.5e9


# 2. The attention switch: another kernel in the profiler, the same picture.
def _profiled(pipe, kernel: str, prompts=("a red circle on a blue background", "a green square on a white background")):
    kwargs = dict(prompt=list(prompts), height=64, width=64, num_inference_steps=4, guidance_scale=1.0,
                  generator=[torch.Generator().manual_seed(i) for i in range(len(prompts))])
    if hasattr(pipe, "transformer"):  # PixArt: sizes as asked, captions as given
        kwargs.update(use_resolution_binning=False, clean_caption=False)
    with attention.selected(kernel), profiling.profile_unet(pipe, "cpu") as mix:
        images = pipe(**kwargs).images
    return images, mix


def test_the_attention_switch_changes_the_kernel_and_not_the_picture():
    pipe = load_pipeline("txt2img", arch="tiny")[0]  # the trained model: pictures that show something
    fused, fused_mix = _profiled(pipe, "sdpa")
    plain, plain_mix = _profiled(pipe, "math")
    assert {a["kernel"] for a in fused_mix["attention"]} == {"aten::_scaled_dot_product_flash_attention_for_cpu"}
    assert {a["kernel"] for a in plain_mix["attention"]} == {"aten::_scaled_dot_product_attention_math"}
    # The same calls either way: lengths, heads, FLOPs.
    shape = lambda mix: sorted((a["query_tokens"], a["key_tokens"], a["heads"], a["calls"], a["flops"])
                               for a in mix["attention"])
    assert shape(fused_mix) == shape(plain_mix)
    for a, b in zip(fused, plain):
        assert invariance.compare(invariance.pixels(a), invariance.pixels(b))["max_abs_diff"] <= 1


def test_the_transformer_predicts_the_same_under_both_kernels(pixart_tiny):
    net = denoiser(pixart_tiny)
    torch.manual_seed(0)
    latent, text = torch.randn(2, 4, 8, 8), torch.randn(2, 120, presets.T5_WIDTH)
    size = {"resolution": torch.tensor([[64.0, 64.0]] * 2), "aspect_ratio": torch.tensor([[1.0]] * 2)}
    out = {}
    for kernel in ("sdpa", "math"):
        with torch.no_grad(), attention.selected(kernel):
            out[kernel] = net(latent, encoder_hidden_states=text, timestep=torch.tensor([500, 500]),
                              added_cond_kwargs=size, return_dict=False)[0]
    scale = float(out["math"].abs().max())
    assert float((out["sdpa"] - out["math"]).abs().max()) <= 1e-4 * scale


def test_an_unknown_kernel_is_refused_by_name():
    with pytest.raises(ValueError, match="attention must be one of sdpa, flash, efficient, cudnn, math, got 'xformers'"):
        with attention.selected("xformers"):
            pass


# 3. The operator categories cover the transformer.
def test_the_operator_categories_cover_the_transformer(pixart_tiny):
    _, mix = _profiled(pixart_tiny, "sdpa")
    rows = {r["category"]: r["self_time_s"] for r in mix["ops"]}
    in_ops = sum(t for c, t in rows.items() if c != "overhead")
    assert rows["linear"] > rows.get("conv", 0)  # patches through linear layers; one convolution embeds them
    assert {"linear", "attention", "norm", "layout", "elementwise"} <= set(rows)
    assert rows.get("other", 0.0) < 0.03 * in_ops, rows


@pytest.mark.parametrize("name, category", [
    ("aten::reshape", "layout"), ("aten::transpose", "layout"), ("aten::t", "layout"), ("aten::tanh", "elementwise"),
    ("aten::to", "layout"), ("aten::einsum", "linear"), ("aten::layer_norm", "norm"), ("aten::cat", "layout"),
    ("aten::scaled_dot_product_attention", "attention"), ("aten::conv2d", "conv"), ("aten::rsub", "elementwise"),
])
def test_operator_names_fall_in_their_category(name, category):
    assert profiling.categorize(name) == category


# 4. Both families with both kernels, through the spool and the collector.
FAMILY_SWEEP = dict(batch_sizes=(1, 2), resolutions=(64,), steps=2, repeats=6, warmup=0, threads=1, sample_hz=0,
                    attention=("sdpa", "math"), profile_ops=True, save_images="first")


@pytest.fixture(scope="module")
def two_families(tmp_path_factory):
    base = tmp_path_factory.mktemp("families")
    spool = str(base / "spool")
    ids = {arch: f"sweep-{arch}" for arch in ("tiny", "pixart-tiny")}
    for arch, sweep_id in ids.items():
        run_sweep(SweepConfig(arch=arch, spool=spool, out=str(base / "images"), **FAMILY_SWEEP), progress=False,
                  sweep_id=sweep_id)
    db = str(base / "w.duckdb")
    ingest_pending(CollectorConfig(spool=spool, db=db))
    return db, ids


def test_runs_record_their_family_and_kernel_and_attention_calls_their_lengths(two_families):
    db, _ = two_families
    runs = sql_rows(db, "SELECT family, attention, count(*) FROM runs GROUP BY ALL ORDER BY ALL")
    assert runs == [("transformer", "math", 1), ("transformer", "sdpa", 1), ("unet", "math", 1), ("unet", "sdpa", 1)]
    kernels_seen = sql_rows(db, "SELECT DISTINCT r.attention, c.kernel FROM attention_calls c JOIN jobs j USING (job_id) "
                                "JOIN runs r USING (run_id) ORDER BY ALL")
    assert kernels_seen == [("math", "aten::_scaled_dot_product_attention_math"),
                            ("sdpa", "aten::_scaled_dot_product_flash_attention_for_cpu")]
    # PixArt at 64 px: an 8x8 latent in 2x2 patches is 16 tokens, against itself and the 120 caption tokens.
    lengths = sql_rows(db, "SELECT DISTINCT c.query_tokens, c.key_tokens FROM attention_calls c JOIN jobs j "
                           "USING (job_id) JOIN runs r USING (run_id) WHERE r.family = 'transformer' ORDER BY ALL")
    assert lengths == [(16, 16), (16, 120)]
    # The trained model's pictures under both kernels, compared seed by seed.
    checks = sql_rows(db, "SELECT max(c.max_abs_diff), count(*) FROM image_checks c JOIN jobs j USING (job_id) "
                          "JOIN runs r USING (run_id) WHERE c.against = 'attention' AND r.family = 'unet'")
    assert checks[0][1] >= 3 and checks[0][0] <= 1


def test_the_operators_figures_pair_the_families_and_the_kernels(two_families):
    db, ids = two_families
    wh = Warehouse(db)
    paired = wh.family_runs(ids["pixart-tiny"])
    assert len(paired) == 4  # its own two runs and the UNet sweep's two profiled runs at 64x64
    mixes = kernels.family_mixes(wh.family_mix(paired))
    assert [(m.family, m.model) for m in mixes] == [("unet", "tiny"), ("transformer", "pixart-tiny")]
    unet, transformer = mixes
    assert unet.share("conv")[0] > transformer.share("conv")[0]
    assert transformer.share("linear")[0] > transformer.share("conv")[0]
    assert families.families(mixes, cite).startswith("[beyond-llms] reports convolution at up to 44%")
    gains = kernels.kernel_gains(wh.job_costs(paired))
    assert {(g.family, g.batch, g.fused) for g in gains} == {(f, b, "sdpa") for f in ("unet", "transformer")
                                                             for b in (1, 2)}
    assert all(not g.too_few and g.low <= g.ratio <= g.high for g in gains)  # 6 jobs a side: an interval
    lengths = kernels.attention_lengths(wh.attention_levels(paired))
    assert {(a.model, a.lengths) for a in lengths} == {("tiny", (16,)), ("pixart-tiny", (16,))}
    assert "one length throughout" in families.lengths(lengths[0])


# 5. Sentences: shown and hidden by their conditions, on made-up figures.
def _mix(family, model, conv, linear, attention=0.05, top_apart=True):
    other = 1 - conv - linear - attention
    return kernels.FamilyMix(family=family, model=model, size="64x64", batch_sizes=(1, 4),
                             shares={"conv": (conv, conv - 0.02, conv + 0.02), "linear": (linear, linear - 0.02,
                                     linear + 0.02), "attention": (attention, attention, attention),
                                     "overhead": (other, other - (0 if top_apart else 0.3), other)})


def test_the_family_sentence_needs_both_families_and_names_a_leader_only_where_it_led_throughout():
    unet, transformer = _mix("unet", "sd15", 0.5, 0.2), _mix("transformer", "pixart", 0.03, 0.6)
    assert families.families([unet], cite) is None
    both = families.families([unet, transformer], cite)
    assert "convolution reached 52% in the UNet and linear layers 62% in the transformer" in both
    assert families.family_mix(unet).endswith("convolution took the most at every batch size.")
    close = _mix("unet", "tiny", 0.40, 0.38)
    assert families.family_mix(close).endswith("no one category led at every batch size.")


def _gain(family, batch, ratio, low, high, model="m"):
    return kernels.KernelGain(family=family, model=model, size="64x64", batch=batch, fused="sdpa", ratio=ratio,
                              low=low, high=high, jobs=8, needed=6)


def test_the_kernel_sentences_claim_only_what_the_intervals_say():
    faster = [_gain("unet", 1, 1.3, 1.2, 1.4), _gain("unet", 4, 1.5, 1.4, 1.6)]
    assert "denoised faster than math at every batch size" in families.kernel_gain(faster)
    unsure = [_gain("unet", 1, 1.02, 0.97, 1.08)]
    assert "no difference shown" in families.kernel_gain(unsure)
    too_few = [_gain("unet", 1, 1.3, np.nan, np.nan)]
    assert "too few for a 95% interval" in families.kernel_gain(too_few)
    assert families.kernel_gain([]) is None
    # Between families: more only where the intervals are apart; nothing without both families' intervals.
    apart = families.gain_by_family([_gain("unet", 4, 1.5, 1.4, 1.6), _gain("transformer", 4, 1.05, 1.0, 1.1)], cite)
    assert "the UNet gained more (the intervals are apart; 1.43x as much)" in apart
    overlap = families.gain_by_family([_gain("unet", 4, 1.1, 1.0, 1.3), _gain("transformer", 4, 1.05, 1.0, 1.1)], cite)
    assert "no difference between the families is shown" in overlap
    assert families.gain_by_family([_gain("unet", 4, 1.5, 1.4, 1.6)], cite) is None
    assert families.gain_by_family([_gain("unet", 4, 1.5, 1.4, 1.6),
                                    _gain("transformer", 4, 1.0, np.nan, np.nan)], cite) is None


def test_the_length_sentence_says_how_far_apart_the_levels_are():
    sd15 = kernels.AttentionLengths(family="unet", model="sd15", size="64x64", batch=1, lengths=(64, 16, 4, 1),
                                    shares=(0.5, 0.25, 0.2, 0.05), flop_shares=(0.9, 0.08, 0.02, 0.0))
    text = families.lengths(sd15)
    assert "the longest is 64x the shortest, more than the up to 4x the paper reports" in text
    assert "64 tokens (50% of attention time, 90% of its FLOPs)" in text and "1 token (5% of attention time" in text
    two = kernels.AttentionLengths(family="unet", model="tiny", size="128x128", batch=1, lengths=(64, 16),
                                   shares=(0.7, 0.3))
    assert "as in the up to 4x" in families.lengths(two) and "64 tokens (70% of attention time)" in families.lengths(two)


def test_the_picture_sentence_says_how_far_the_kernels_pictures_came_apart():
    same = kernels.KernelPictures(family="unet", model="tiny", comparisons=12, max_abs_diff=0, mean_abs_diff=0.0)
    assert families.kernel_pictures(same) == ("**tiny**: the same seeds drawn under the two kernels were identical "
                                              "(12 comparisons of a picture with its pair).")
    one = kernels.KernelPictures(family="unet", model="tiny", comparisons=1, max_abs_diff=1, mean_abs_diff=0.01)
    assert "differed by at most 1/255 in a pixel channel (1 comparison of a picture with its pair)" in families.kernel_pictures(one)
    four = kernels.KernelPictures(family="transformer", model="pixart-tiny", comparisons=9, max_abs_diff=4,
                                  mean_abs_diff=0.25)
    assert "differed by up to 4/255 in a pixel channel (mean 0.25/255)" in families.kernel_pictures(four)


def test_model_names_are_read_from_model_ids():
    assert kernels.model_name("preset-pixart-tiny-random-txt2img") == "pixart-tiny"
    assert kernels.model_name("embedded-tiny-shapes-txt2img") == "tiny"
    assert kernels.model_name("/models/my-folder") == "/models/my-folder"


def test_family_mixes_prefer_the_fused_kernel_runs():
    rows = pd.DataFrame([
        dict(family="unet", model_id="embedded-tiny-shapes-txt2img", height=64, width=64, attention=k, batch_size=1,
             category=c, time_s=t)
        for k, times in (("sdpa", {"conv": 3.0, "attention": 1.0}), ("math", {"conv": 3.0, "attention": 3.0}))
        for c, t in times.items()])
    (mix,) = kernels.family_mixes(rows)
    assert mix.share("attention")[0] == pytest.approx(0.25)


# 6. The Operators page, through Streamlit's AppTest, on the two families' warehouse.
def test_the_operators_page_sets_the_families_and_kernels_side_by_side(two_families, monkeypatch, tmp_path):
    db, _ = two_families
    monkeypatch.setenv("WAREHOUSE_DB", db)
    monkeypatch.setenv("OUTPUT_DIR", str(tmp_path))
    at = AppTest.from_file(str(ROOT / "dashboard.py"), default_timeout=120).run()
    at.switch_page("pages/operators.py").run()
    assert not at.exception, [e.value for e in at.exception]
    text = " ".join(m.value for m in at.markdown) + " " + " ".join(c.value for c in at.caption)
    headings = [s.value for s in at.subheader]
    assert {"UNet against transformer", "Fused attention kernel against math", "Attention by sequence length",
            "Transformer time by operator category"} <= set(headings)  # the newest sweep is the transformer's
    assert "Convolution took" not in text  # the UNet's claim is not made of a transformer's sweep
    assert "Text encoding for `pixart` is a stand-in" in text and "[PixArt-α](/papers#pixart)" in text
    assert "**tiny** (UNet, 64x64, batch sizes 1–2)" in text and "**pixart-tiny** (transformer, 64x64" in text
    assert "reports convolution at up to 44%" in text and "math time over sdpa time" in text
    assert "**tiny**: the same seeds drawn under the two kernels" in text
    assert not [i.value for i in at.info if i.value in (families.NO_FAMILIES, families.NO_KERNELS)]

"""--arch presets: real model shapes built on the meta device (no memory, no download), counted
against the published parameter figures; bad values refused by name."""

from __future__ import annotations

import pytest
import torch

from generator.pipelines import presets
from generator.pipelines.models import count_params, load_pipeline
from generator.pipelines.parts import build_tokenizer, quiet_imports
from generator.sweep.config import SweepConfig

from .conftest import ROOT

# Exact counts of the components as built here, equal to the published checkpoints':
# SD 1.5 UNet ~860M, CLIP ViT-L/14 text ~123M, SD VAE ~83.65M, SDXL UNet ~2.567B, OpenCLIP bigG text ~694.7M.
SD15_UNET = 859_520_964
CLIP_L_TEXT = 123_060_480
SD_VAE = 83_653_863
SDXL_UNET = 2_567_463_684
CLIP_BIGG_TEXT = 694_659_840
INPAINT_EXTRA = 5 * 320 * 3 * 3  # five more input channels into the first 3x3 conv (320 filters)

EXPECTED = {
    "sd15": {"unet": SD15_UNET, "text_encoder": CLIP_L_TEXT, "vae": SD_VAE},
    "sd15-inpaint": {"unet": SD15_UNET + INPAINT_EXTRA, "text_encoder": CLIP_L_TEXT, "vae": SD_VAE},
    "sdxl": {"unet": SDXL_UNET, "text_encoder": CLIP_L_TEXT, "text_encoder_2": CLIP_BIGG_TEXT, "vae": SD_VAE},
}


def _meta_counts(arch: str) -> dict[str, int]:
    quiet_imports()
    with torch.device("meta"):
        parts = presets.build_models(arch)
    assert all(p.is_meta for m in parts.values() for p in m.parameters())  # nothing was allocated
    return {name: sum(p.numel() for p in m.parameters()) for name, m in parts.items()}


@pytest.fixture(scope="module")
def counts():
    return {arch: _meta_counts(arch) for arch in EXPECTED}


@pytest.mark.parametrize("arch", list(EXPECTED))
def test_preset_parameter_counts_match_the_published_models(counts, arch):
    assert counts[arch] == EXPECTED[arch]


def test_counts_are_the_commonly_cited_figures(counts):
    assert abs(counts["sd15"]["unet"] - 860e6) / 860e6 < 0.01
    assert abs(counts["sd15"]["text_encoder"] - 123e6) / 123e6 < 0.01
    assert abs(counts["sd15"]["vae"] - 83.65e6) / 83.65e6 < 0.01
    assert abs(counts["sdxl"]["unet"] - 2.567e9) / 2.567e9 < 0.01
    assert abs(counts["sdxl"]["text_encoder_2"] - 694.7e6) / 694.7e6 < 0.01
    assert counts["sd15-inpaint"]["unet"] - counts["sd15"]["unet"] == INPAINT_EXTRA


def test_preset_configs_carry_the_published_settings():
    quiet_imports()
    with torch.device("meta"):
        sd15, sdxl = presets.build_models("sd15"), presets.build_models("sdxl")
    assert sd15["vae"].config.scaling_factor == 0.18215 and sdxl["vae"].config.scaling_factor == 0.13025
    assert sdxl["vae"].config.sample_size == 1024 and sdxl["unet"].config.sample_size == 128
    assert sd15["unet"].config.cross_attention_dim == 768 and sdxl["unet"].config.cross_attention_dim == 2048
    # SDXL's cross-attention context is both encoders' hidden states side by side; its added
    # conditioning is the pooled bigG embedding plus six 256-wide time ids.
    te, te2 = sdxl["text_encoder"].config, sdxl["text_encoder_2"].config
    assert te.hidden_size + te2.hidden_size == 2048
    assert te2.projection_dim + 6 * sdxl["unet"].config.addition_time_embed_dim == 2816
    assert te.max_position_embeddings == te2.max_position_embeddings == 77


def test_embedded_tokenizer_fits_the_clip_vocabulary():
    tokenizer = build_tokenizer()
    assert tokenizer.model_max_length == 77 and len(tokenizer) <= presets.CLIP_VOCAB
    ids = tokenizer(["a photo of an astronaut riding a horse ✓"], padding="max_length", max_length=77).input_ids
    assert max(ids[0]) < len(tokenizer) <= presets.CLIP_VOCAB


def test_arch_setting_defaults_to_tiny_and_refuses_bad_values(tmp_path):
    dirs = dict(spool=str(tmp_path / "s"), out=str(tmp_path / "o"))
    assert SweepConfig(**dirs).arch == "tiny"
    with pytest.raises(ValueError, match=r"arch must be one of tiny, tiny-random, sd15, sd15-inpaint, sdxl, ldm-inpaint, ldm-inpaint-tiny, ldm-inpaint-tiny-random, pixart, pixart-tiny, got 'sd3'"):
        SweepConfig(arch="sd3", **dirs)
    with pytest.raises(ValueError, match=r"sd15-inpaint"):
        SweepConfig(arch="sd15", task="inpaint", **dirs)
    with pytest.raises(ValueError, match=r"arch 'sd15-inpaint' builds task inpaint"):
        SweepConfig(arch="sd15-inpaint", **dirs)
    with pytest.raises(ValueError, match=r"sdxl.*stream"):
        SweepConfig(arch="sdxl", mode=("stream",), **dirs)
    assert SweepConfig(arch="sd15-inpaint", task="inpaint", **dirs).arch == "sd15-inpaint"
    # The LDM inpainting model has no text encoder: no stream mode, no CFG.
    with pytest.raises(ValueError, match=r"arch 'ldm-inpaint' has no text encoder: .* got mode 'stream'"):
        SweepConfig(arch="ldm-inpaint", task="inpaint", mode=("static", "stream"), **dirs)
    with pytest.raises(ValueError, match=r"arch 'ldm-inpaint-tiny' has no text encoder: .* got guidance 7.5"):
        SweepConfig(arch="ldm-inpaint-tiny", task="inpaint", guidance=7.5, **dirs)
    with pytest.raises(ValueError, match=r"arch 'ldm-inpaint' builds task inpaint, got task 'txt2img'"):
        SweepConfig(arch="ldm-inpaint", **dirs)
    # --model wins: a preset that does not build the task is not used, so it is not refused.
    assert SweepConfig(arch="sd15", task="inpaint", model=str(tmp_path), **dirs).model == str(tmp_path)


def test_arch_flag_refuses_a_bad_value_by_name(tmp_path):
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "generator", "sweep", "--arch", "sd3", "--spool",
                           str(tmp_path / "s"), "--out", str(tmp_path / "o")],
                          cwd=ROOT, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode != 0
    assert "arch must be one of tiny, tiny-random, sd15, sd15-inpaint, sdxl, ldm-inpaint, ldm-inpaint-tiny, ldm-inpaint-tiny-random, pixart, pixart-tiny, got 'sd3'" in done.stderr


@pytest.mark.parametrize("arch, task, cls", [("sd15", "txt2img", "StableDiffusionPipeline"),
                                             ("sd15-inpaint", "inpaint", "StableDiffusionInpaintPipeline"),
                                             ("sdxl", "txt2img", "StableDiffusionXLPipeline")])
def test_presets_assemble_their_pipelines_on_the_meta_device(arch, task, cls):
    quiet_imports()
    with torch.device("meta"):
        pipe = presets.pipeline_class(arch, task)(**presets.build_components(arch))
    assert type(pipe).__name__ == cls and pipe.vae_scale_factor == 8
    assert count_params(pipe) == sum(EXPECTED[arch].values())  # SDXL: both text encoders counted


@pytest.mark.slow
def test_sd15_preset_draws_one_small_image():
    """A real (non-meta) build of SD 1.5's shapes, ~4 GB in float32: one 64 px image, 2 steps."""
    pipe, model_id = load_pipeline("txt2img", seed=0, arch="sd15")
    assert model_id == "preset-sd15-random-txt2img"
    assert count_params(pipe) == SD15_UNET + CLIP_L_TEXT + SD_VAE
    images = pipe(prompt=["a cat"], height=64, width=64, num_inference_steps=2, guidance_scale=1.0,
                  generator=torch.Generator().manual_seed(0), output_type="pil").images
    assert images[0].size == (64, 64)

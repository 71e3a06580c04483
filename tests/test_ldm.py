"""The CompVis LDM inpainting presets (generator/pipelines/ldm.py): the real model's shapes counted on the meta device,
the toy-width pipeline run end to end, and CompVis checkpoints (last.ckpt) mapped onto diffusers names."""

from __future__ import annotations

import argparse

import numpy as np
import pytest
import torch

from generator.measure.profiling import unet_flops_per_row
from generator.pipelines import inputs, ldm, presets
from generator.pipelines.models import count_params, load_pipeline
from generator.pipelines.parts import ModelLoadError, quiet_imports


# Exact counts as built here; the same as the CompVis modules (openaimodel.UNetModel, model.Encoder/Decoder plus
# quant_conv, post_quant_conv and the 8192 x 3 codebook) give for models/ldm/inpainting_big/config.yaml.
# Published: the paper (arXiv 2112.10752, Sec. 4.5, on the "big" model of Tab. 7) says its UNet "has 387M
# parameters instead of 215M": 387,245,827 is that figure to the nearest million. It gives no count for the
# f=4 VQ first stage, so that number is checked against the CompVis modules only (53.2M: encoder 21.3M,
# decoder 31.9M, codebook 24,576).
LDM_UNET = 387_245_827
LDM_VQ = 53_219_486

# Real CompVis checkpoint names and shapes for inpainting_big, read off the source: openaimodel.UNetModel
# (input_blocks.0.0 is conv_nd(2, 7, 256, 3); input_blocks.3 is level 0's resblock_updown downsampler, so
# input_blocks.4 is level 1's first ResBlock (256 -> 512, with a 1x1 skip) and AttentionBlock (qkv is a
# conv1d 512 -> 3 x 512); output_blocks.2.2 is level 3's upsampling ResBlock; out.2 the last conv) and
# model.py Encoder / Decoder with VQModel's quantize, quant_conv and post_quant_conv (autoencoder.py).
REAL_NAMES = {
    "model.diffusion_model.input_blocks.0.0.weight": (256, 7, 3, 3),
    "model.diffusion_model.time_embed.0.weight": (1024, 256),
    "model.diffusion_model.input_blocks.3.0.in_layers.2.weight": (256, 256, 3, 3),
    "model.diffusion_model.input_blocks.4.0.skip_connection.weight": (512, 256, 1, 1),
    "model.diffusion_model.input_blocks.4.1.qkv.weight": (1536, 512, 1),
    "model.diffusion_model.middle_block.1.proj_out.weight": (1024, 1024, 1),
    "model.diffusion_model.output_blocks.2.2.in_layers.2.weight": (1024, 1024, 3, 3),
    "model.diffusion_model.output_blocks.11.0.skip_connection.weight": (256, 512, 1, 1),
    "model.diffusion_model.out.2.weight": (3, 256, 3, 3),
    "first_stage_model.encoder.conv_in.weight": (128, 3, 3, 3),
    "first_stage_model.encoder.down.0.downsample.conv.weight": (128, 128, 3, 3),
    "first_stage_model.encoder.down.1.block.0.nin_shortcut.weight": (256, 128, 1, 1),
    "first_stage_model.encoder.conv_out.weight": (3, 512, 3, 3),
    "first_stage_model.quant_conv.weight": (3, 3, 1, 1),
    "first_stage_model.quantize.embedding.weight": (8192, 3),
    "first_stage_model.decoder.conv_in.weight": (512, 3, 3, 3),
    "first_stage_model.decoder.up.2.upsample.conv.weight": (512, 512, 3, 3),
    "first_stage_model.decoder.up.0.block.0.nin_shortcut.weight": (128, 256, 1, 1),
}


def to_compvis(unet, vae, unet_cfg: dict, vq_cfg: dict) -> dict:
    """The inverse of ldm.compvis_to_diffusers: a CompVis-named state dict from diffusers modules (meta too)."""
    u, v, heads, out = unet.state_dict(), vae.state_dict(), unet_cfg["num_heads"], {}
    for old, new, how in ldm.unet_names(unet_cfg):
        key = "model.diffusion_model." + old
        if how == "squeeze":
            out[key] = u[new][..., None]
        elif how == "q":  # the legacy qkv: head by head, [q_h, k_h, v_h]
            q, k, w = (u[new.replace("to_q", f"to_{p}")] for p in "qkv")
            out[key] = torch.stack([t.reshape(heads, -1, *t.shape[1:]) for t in (q, k, w)], dim=1).flatten(0, 2)
            out[key] = out[key][..., None] if out[key].ndim == 2 else out[key]
        elif how == "copy":
            out[key] = u[new]
    out.update({"first_stage_model." + old: v[new] for old, new, _ in ldm.vq_names(vq_cfg)})
    return out


@pytest.fixture(scope="module")
def big():
    """The full ldm-inpaint preset on the meta device: shapes only, nothing allocated."""
    quiet_imports()
    with torch.device("meta"):
        parts = presets.build_models("ldm-inpaint")
    assert all(p.is_meta for m in parts.values() for p in m.parameters())
    return parts


@pytest.fixture(scope="module")
def tiny():
    pipe, model_id = load_pipeline("inpaint", seed=0, arch="ldm-inpaint-tiny")
    assert model_id == "embedded-ldm-inpaint-tiny-shapes-inpaint"  # its shipped weights, trained here
    return pipe


def _call(pipe, seeds, size=64, steps=3, **kwargs):
    picture, mask = inputs.test_image(size, size), inputs.test_mask(size, size)
    args = dict(prompt=["ignored"] * len(seeds), height=size, width=size, num_inference_steps=steps,
                guidance_scale=1.0, generator=[torch.Generator().manual_seed(s) for s in seeds],
                image=[picture] * len(seeds), mask_image=[mask] * len(seeds))
    return pipe(**{**args, **kwargs}).images


# 1. Shapes and counts.
def test_full_preset_counts_match_the_compvis_model_and_the_paper(big):
    counts = {name: sum(p.numel() for p in m.parameters()) for name, m in big.items()}
    assert counts == {"unet": LDM_UNET, "vae": LDM_VQ}
    assert round(counts["unet"] / 1e6) == 387  # the paper's figure for this UNet
    unet, vae = big["unet"], big["vae"]
    assert (unet.config.in_channels, unet.config.out_channels) == (7, 3)
    assert unet.config.block_out_channels == (256, 512, 768, 1024)
    assert (vae.config.latent_channels, vae.config.num_vq_embeddings) == (3, 8192)
    assert vae.config.block_out_channels == (128, 256, 512)
    from diffusers.models.attention_processor import Attention

    heads = {m.heads for m in unet.modules() if isinstance(m, Attention)}
    assert heads == {8}  # CompVis's num_heads at every level (head dims 64, 96, 128)


def test_full_preset_assembles_its_pipeline_on_the_meta_device():
    quiet_imports()
    with torch.device("meta"):
        pipe = presets.pipeline_class("ldm-inpaint", "inpaint")(**presets.build_components("ldm-inpaint"))
    assert type(pipe).__name__ == "LDMInpaintPipeline" and pipe.vae_scale_factor == 4
    assert count_params(pipe) == LDM_UNET + LDM_VQ
    assert not hasattr(pipe, "encode_prompt") and not hasattr(pipe, "tokenizer")


def test_the_schedule_is_ldm_linear_sampled_as_compvis_ddim():
    scheduler = ldm.build_scheduler()
    betas = torch.linspace(0.0015 ** 0.5, 0.0205 ** 0.5, 1000, dtype=torch.float64) ** 2  # ldm make_beta_schedule
    assert torch.allclose(scheduler.betas.double(), betas, rtol=1e-5)
    scheduler.set_timesteps(50)
    assert scheduler.timesteps.tolist() == list(range(981, 0, -20))  # DDIMSampler: range(0, 1000, 20) + 1
    assert scheduler.final_alpha_cumprod == scheduler.alphas_cumprod[0]  # its last a_prev: alphacums[0]


# 2. The tiny preset end to end.
def test_tiny_preset_inpaints_and_keeps_the_unmasked_pixels(tiny):
    steps = []
    images = _call(tiny, [0, 1], callback_on_step_end=lambda pipe, i, t, kw: steps.append(i) or {})
    assert steps == [0, 1, 2]  # once per step
    picture, keep = np.asarray(inputs.test_image(64, 64)), np.asarray(inputs.test_mask(64, 64)) < 128
    for image in images:
        assert image.size == (64, 64) and image.mode == "RGB"
        pixels = np.asarray(image).astype(int)
        assert np.abs(pixels[keep] - picture[keep]).max() <= 1  # the paste-back (exact here: on 8-bit values)
        assert (pixels[~keep] != picture[~keep]).any()  # the hole was repainted
    assert not np.array_equal(np.asarray(images[0]), np.asarray(images[1]))


def test_an_image_is_the_same_in_a_batch_or_alone_and_with_slicing(tiny):
    pair = _call(tiny, [0, 1])
    alone = _call(tiny, [1])[0]
    # Bit-identical on this CPU (each row's noise comes from its own generator; the ops are row-independent).
    assert np.array_equal(np.asarray(pair[1]), np.asarray(alone))
    tiny.enable_vae_slicing()
    try:
        sliced = _call(tiny, [0, 1])
    finally:
        tiny.disable_vae_slicing()
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(pair, sliced))


def test_guidance_is_refused_naming_the_value(tiny):
    with pytest.raises(ValueError, match=r"guidance_scale must be 1\.0.*got 7\.5"):
        _call(tiny, [0], guidance_scale=7.5)


def test_flops_are_counted_for_an_unconditional_unet_and_do_not_depend_on_the_head_count(tiny):
    from diffusers.models.attention_processor import Attention

    flops = unet_flops_per_row(tiny, 64, 64, False)
    assert flops > 0
    attentions = [m for m in tiny.unet.modules() if isinstance(m, Attention)]
    saved = [(m.heads, m.scale) for m in attentions]
    try:
        for m in attentions:
            m.heads, m.scale = 1, m.inner_dim ** -0.5
        assert unet_flops_per_row(tiny, 64, 64, False) == flops
    finally:
        for m, (heads, scale) in zip(attentions, saved):
            m.heads, m.scale = heads, scale


# 3. CompVis checkpoints.
def test_the_mapping_expects_the_real_compvis_names_and_shapes(big):
    names = to_compvis(big["unet"], big["vae"], ldm.INPAINT_BIG_UNET, ldm.INPAINT_BIG_VQ)
    assert {k: tuple(names[k].shape) for k in REAL_NAMES if k in names} == REAL_NAMES
    assert len([k for k in names if k.startswith("model.")]) == 416  # openaimodel UNetModel's state_dict
    unet, vq, report = ldm.compvis_to_diffusers(names, ldm.INPAINT_BIG_UNET, ldm.INPAINT_BIG_VQ)
    assert report["missing"] == report["unexpected"] == report["misshapen"] == []
    for mapped, module in ((unet, big["unet"]), (vq, big["vae"])):
        assert {k: t.shape for k, t in mapped.items()} == {k: t.shape for k, t in module.state_dict().items()}


def _tiny_checkpoint(seed: int = 3) -> tuple[dict, dict]:
    """A CompVis-style last.ckpt state dict from seeded tiny modules, with the extras a real one carries."""
    torch.manual_seed(seed)
    unet, vae = ldm.build_unet(ldm.TINY_UNET), ldm.build_vq(ldm.TINY_VQ)
    sd = to_compvis(unet, vae, ldm.TINY_UNET, ldm.TINY_VQ)
    sd.update({k.replace("first_stage_model.", "cond_stage_model."): v for k, v in sd.items()
               if k.startswith("first_stage_model.")})  # cond_stage_config: __is_first_stage__
    sd["betas"] = ldm.build_scheduler().betas.double()
    return sd, {"unet": unet.state_dict(), "vae": vae.state_dict()}


def test_a_compvis_checkpoint_loads_every_tensor(tmp_path):
    sd, want = _tiny_checkpoint()
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": sd, "global_step": 10}, path)
    pipe, model_id = load_pipeline("inpaint", model=str(path), arch="ldm-inpaint-tiny")
    assert model_id == str(path.resolve()) and type(pipe).__name__ == "LDMInpaintPipeline"
    for name in ("unet", "vae"):
        got = getattr(pipe, name).state_dict()
        assert got.keys() == want[name].keys()
        assert all(torch.equal(got[k], want[name][k]) for k in got), name
    assert len(_call(pipe, [0])) == 1  # and it runs


def test_the_ema_weights_win_when_the_checkpoint_has_them(tmp_path):
    sd, want = _tiny_checkpoint()
    rows = ldm.unet_names(ldm.TINY_UNET)
    ema = {ldm.ema_name(old): sd["model.diffusion_model." + old] + 1.0 for old in {o for o, _, _ in rows}}
    sd.update(ema)
    sd.update({"model_ema.decay": torch.tensor(0.9999), "model_ema.num_updates": torch.tensor(5)})
    unet, _, report = ldm.compvis_to_diffusers(sd, ldm.TINY_UNET, ldm.TINY_VQ)
    assert report["ema"] and report["unexpected"] == [] and report["missing"] == []
    assert torch.equal(unet["conv_in.weight"], want["unet"]["conv_in.weight"] + 1.0)


def test_a_checkpoint_that_does_not_match_is_refused_naming_keys(tmp_path):
    sd, _ = _tiny_checkpoint()
    renamed, dropped = "model.diffusion_model.out.2.weight", "first_stage_model.quant_conv.bias"
    sd["model.diffusion_model.out.9.weight"] = sd.pop(renamed)
    del sd[dropped]
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": sd}, path)
    with pytest.raises(ModelLoadError) as err:
        load_pipeline("inpaint", model=str(path), arch="ldm-inpaint-tiny")
    message = str(err.value)
    assert "2 missing" in message and renamed in message and dropped in message
    assert "1 unexpected" in message and "model.diffusion_model.out.9.weight" in message
    sd, _ = _tiny_checkpoint()
    sd["model.diffusion_model.input_blocks.0.0.weight"] = torch.zeros(32, 4, 3, 3)  # a 4-channel input
    torch.save({"state_dict": sd}, path)
    with pytest.raises(ModelLoadError, match=r"1 misshapen.*input_blocks\.0\.0\.weight \(as \(32, 4, 3, 3\), "
                                             r"needs \(32, 7, 3, 3\)\)"):
        load_pipeline("inpaint", model=str(path), arch="ldm-inpaint-tiny")


def test_a_checkpoint_needing_more_than_tensors_is_refused(tmp_path):
    sd, _ = _tiny_checkpoint()
    path = tmp_path / "last.ckpt"
    torch.save({"state_dict": sd, "hyper_parameters": argparse.Namespace(lr=1e-6)}, path)
    with pytest.raises(ModelLoadError, match="weights_only=True"):
        load_pipeline("inpaint", model=str(path), arch="ldm-inpaint-tiny")
    with pytest.raises(ModelLoadError, match="not a file"):
        load_pipeline("inpaint", model=str(tmp_path), arch="ldm-inpaint")


# 4. Bad pairings.
def test_a_bad_arch_or_task_is_refused_by_name():
    with pytest.raises(ValueError, match=r"arch 'ldm-inpaint' builds task inpaint, got task 'txt2img'.*sd15"):
        presets.check_arch("ldm-inpaint", "txt2img")
    with pytest.raises(ValueError, match=r"arch 'ldm-inpaint-tiny' builds task inpaint, got task 'txt2img'"):
        load_pipeline("txt2img", arch="ldm-inpaint-tiny")
    with pytest.raises(ValueError, match=r"arch must be one of .*ldm-inpaint, ldm-inpaint-tiny, ldm-inpaint-tiny-random, pixart, pixart-tiny, got 'ldm-big'"):
        presets.check_arch("ldm-big")

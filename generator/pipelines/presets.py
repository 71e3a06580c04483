"""Architecture presets: real model shapes, random seeded weights, built offline from config.

`--arch sd15` builds a pipeline with the shapes of Stable Diffusion 1.5, `--arch sdxl` one
with the shapes of SDXL base 1.0, and so on, from the same configs the published checkpoints
carry (runwayml/stable-diffusion-v1-5, stabilityai/stable-diffusion-xl-base-1.0): nothing is
downloaded, the tokenizer is the project's embedded one (parts.build_tokenizer, 77 tokens).
The weights are random, so the pictures are noise, but every layer has the real size, so a
step takes as long as the real model's. "tiny" is the embedded model (embedded.py). "ldm-inpaint" is
the CompVis latent-diffusion inpainting model (inpainting_big: a VQ f=4 first stage and an
unconditional 7-channel UNet, no text) and "ldm-inpaint-tiny" the same family at toy widths; both
run generator/pipelines/ldm.py's LDMInpaintPipeline. "pixart" is the transformer family: PixArt-α XL-2's
denoiser (PixArtTransformer2DModel as in PixArt-alpha/PixArt-XL-2-1024-MS: 28 layers, 16 heads of 72, patch 2,
611 M parameters; arXiv 2310.00426) on the SD VAE, run by diffusers' PixArtAlphaPipeline. Its text encoder,
T5-XXL (4.76 B parameters), is too large to build here: T5_STAND_IN gives the same output (120 tokens x 4096)
from one thin layer (6.3 M parameters), so a pixart run's text encoding is not the real model's cost.
"pixart-tiny" is the same family at toy widths (for tests and the demo).

"tiny" and "ldm-inpaint-tiny" are the two toy models trained here (TRAINED: they load the shipped weights of
pipelines/trained/ and draw the shapes data set); "tiny-random" and "ldm-inpaint-tiny-random" are the same
architectures with random seeded weights, for timing alone (they cost the same and draw noise).

Each builder takes no seed: the caller seeds (torch.manual_seed) before construction, or builds
on the meta device (`with torch.device("meta"):`) to count parameters without allocating.
"""

from __future__ import annotations

from generator.pipelines import embedded, weights
from generator.pipelines.parts import build_tokenizer, ddim_scheduler

ARCHS = ("tiny", "tiny-random", "sd15", "sd15-inpaint", "sdxl", "ldm-inpaint", "ldm-inpaint-tiny",
         "ldm-inpaint-tiny-random", "pixart", "pixart-tiny")
PIXART_ARCHS = ("pixart", "pixart-tiny")
LDM_ARCHS = ("ldm-inpaint", "ldm-inpaint-tiny", "ldm-inpaint-tiny-random")
EMBEDDED_ARCHS = ("tiny", "tiny-random")
DEFAULT_ARCH = "tiny"
# The presets that load shipped weights (weights.FILES), and the file each loads.
TRAINED = {"tiny": embedded.TRAINED, "ldm-inpaint-tiny": "ldm-inpaint-tiny-shapes"}
# The tasks each preset builds (the UNet's input channels follow the task: 4, or 9 for inpainting).
ARCH_TASKS = {
    "tiny": ("txt2img", "inpaint"),
    "tiny-random": ("txt2img", "inpaint"),
    "ldm-inpaint-tiny-random": ("inpaint",),
    "sd15": ("txt2img",),
    "sd15-inpaint": ("inpaint",),
    "sdxl": ("txt2img",),
    "ldm-inpaint": ("inpaint",),
    "ldm-inpaint-tiny": ("inpaint",),
    "pixart": ("txt2img",),
    "pixart-tiny": ("txt2img",),
}
T5_TOKENS = 120  # PixArt-α's caption length (max_sequence_length)
T5_WIDTH = 4096  # T5-XXL's width: the caption features PixArt reads (caption_channels)
# The text-encoder stand-in of the pixart presets: T5's class at T5-XXL's width, one layer of one 64-wide head.
T5_STAND_IN = dict(d_model=T5_WIDTH, d_kv=64, d_ff=256, num_layers=1, num_heads=1)
CLIP_VOCAB = 49408  # the real CLIP BPE vocabulary: kept so the parameter count matches the real model


def check_arch(arch: str, task: str | None = None) -> None:
    """Raise ValueError naming a bad preset (and the allowed ones), or a task the preset does not build."""
    if arch not in ARCHS:
        raise ValueError(f"arch must be one of {', '.join(ARCHS)}, got {arch!r}")
    if task is not None and task not in ARCH_TASKS[arch]:
        hint = {"sd15": "; use --arch sd15-inpaint for inpaint", "sd15-inpaint": "; use --arch sd15 for txt2img",
                "pixart": "; use --arch sd15-inpaint for inpaint", "pixart-tiny": "; use --arch tiny for inpaint",
                **{a: " (the CompVis LDM inpainting model has no text; use --arch sd15 for txt2img)"
                   for a in LDM_ARCHS}}
        raise ValueError(f"arch {arch!r} builds task {' or '.join(ARCH_TASKS[arch])}, got task {task!r}"
                         f"{hint.get(arch, '')}")


# 1. Components, one builder each (shapes as published; see the module docstring).
def clip_text_encoder(vocab_size: int = CLIP_VOCAB):
    """CLIP ViT-L/14 text encoder (SD 1.5's, and SDXL's first): 768 wide, 12 layers, 12 heads."""
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=768, intermediate_size=3072, num_hidden_layers=12,
        num_attention_heads=12, max_position_embeddings=77, hidden_act="quick_gelu", projection_dim=768,
        bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))


def clip_bigg_text_encoder(vocab_size: int = CLIP_VOCAB):
    """OpenCLIP ViT-bigG/14 text encoder with projection (SDXL's second): 1280 wide, 32 layers, 20 heads."""
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection

    return CLIPTextModelWithProjection(CLIPTextConfig(
        vocab_size=vocab_size, hidden_size=1280, intermediate_size=5120, num_hidden_layers=32,
        num_attention_heads=20, max_position_embeddings=77, hidden_act="gelu", projection_dim=1280,
        bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))


def sd15_unet(in_channels: int = 4):
    """SD 1.5's UNet (4 input channels; 9 for the inpainting model: latent + masked-image latent + mask)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=64, in_channels=in_channels, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=768, attention_head_dim=8,
    )


def sdxl_unet():
    """SDXL base 1.0's UNet: three levels, 1/2/10 transformer layers, text-time added conditioning."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=128, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280),
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        transformer_layers_per_block=(1, 2, 10), attention_head_dim=(5, 10, 20),
        cross_attention_dim=2048, use_linear_projection=True,
        addition_embed_type="text_time", addition_time_embed_dim=256,
        # 2816 = 1280 (pooled text embedding) + 6 time ids x 256.
        projection_class_embeddings_input_dim=2816,
    )


def sd_vae(scaling_factor: float = 0.18215, sample_size: int = 512):
    """The SD VAE (SD 1.5's; SDXL's has the same shapes, scaling 0.13025, sample size 1024)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(128, 256, 512, 512),
        layers_per_block=2, down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, sample_size=sample_size, scaling_factor=scaling_factor,
    )


def pixart_transformer(tiny: bool = False):
    """PixArt-α XL-2's transformer (PixArt-XL-2-1024-MS: sample size 128 with the resolution and aspect-ratio
    embeddings, 8 output channels for the learned variance), or its toy-width copy (2 layers, 2 heads of 24)."""
    from diffusers import PixArtTransformer2DModel

    layers, heads, head_dim = (2, 2, 24) if tiny else (28, 16, 72)  # the width a multiple of 3: the size embeddings
    return PixArtTransformer2DModel(
        sample_size=128, in_channels=4, out_channels=8, num_layers=layers, num_attention_heads=heads,
        attention_head_dim=head_dim, cross_attention_dim=heads * head_dim, patch_size=2,
        caption_channels=T5_WIDTH, activation_fn="gelu-approximate", attention_bias=True,
        norm_type="ada_norm_single", norm_elementwise_affine=False, norm_eps=1e-6, num_embeds_ada_norm=1000,
    )


def t5_stand_in(vocab_size: int):
    """The text encoder of the pixart presets: T5EncoderModel at T5-XXL's width with one thin layer (T5_STAND_IN),
    120 x 4096 out like T5-XXL's, from the embedded byte tokenizer's ids."""
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(vocab_size=vocab_size, feed_forward_proj="gated-gelu", is_encoder_decoder=False,
                                   use_cache=False, **T5_STAND_IN))


def tiny_sd_vae():
    """An SD-shaped VAE at toy widths (8x downsampling, 4 latent channels), for pixart-tiny."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, latent_channels=4, block_out_channels=(16, 16, 32, 32),
                         layers_per_block=1, down_block_types=("DownEncoderBlock2D",) * 4,
                         up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=8, sample_size=64)


# 2. The models of a preset, by pipeline component name (what the tests count on the meta device).
def build_models(arch: str) -> dict:
    """The nn.Modules of a preset other than the embedded ones, built on the current default device, unseeded."""
    check_arch(arch)
    if arch in LDM_ARCHS:
        from generator.pipelines import ldm  # heavy: diffusers' LDM parts, imported only for an LDM preset

        unet_cfg, vq_cfg = ldm.CONFIGS[arch]
        return dict(unet=ldm.build_unet(unet_cfg), vae=ldm.build_vq(vq_cfg))
    if arch in ("sd15", "sd15-inpaint"):
        return dict(unet=sd15_unet(in_channels=9 if arch == "sd15-inpaint" else 4),
                    text_encoder=clip_text_encoder(), vae=sd_vae())
    if arch == "sdxl":
        return dict(unet=sdxl_unet(), text_encoder=clip_text_encoder(),
                    text_encoder_2=clip_bigg_text_encoder(), vae=sd_vae(scaling_factor=0.13025, sample_size=1024))
    if arch in PIXART_ARCHS:
        tiny = arch == "pixart-tiny"
        return dict(transformer=pixart_transformer(tiny), text_encoder=t5_stand_in(len(build_tokenizer())),
                    vae=tiny_sd_vae() if tiny else sd_vae(sample_size=1024))
    raise ValueError(f"arch {arch!r} is the embedded model: build it with embedded.components")


def build_components(arch: str, seed: int = 0, task: str | None = None) -> dict:
    """Keyword arguments of the preset's pipeline class for `task` (None: the preset's first): the shipped weights for a TRAINED preset,
    else seeded random weights; embedded tokenizer(s) (none for the LDM presets, which have no text encoder)."""
    import torch

    check_arch(arch, task)
    if arch in EMBEDDED_ARCHS:
        return embedded.components(task or "txt2img", seed, trained=arch in TRAINED)
    if arch in LDM_ARCHS:
        from generator.pipelines.ldm import build_scheduler  # heavy: as above

        torch.manual_seed(seed)
        parts = dict(build_models(arch), scheduler=build_scheduler())
        if arch in TRAINED:
            shipped = weights.read(TRAINED[arch])
            shipped.load_into("unet", parts["unet"])
            shipped.load_into("vae", parts["vae"])
            parts["vae"].register_to_config(scaling_factor=shipped.scaling_factor)
            parts["scheduler"] = build_scheduler(shipped.prediction_type)
        return parts
    tokenizer = build_tokenizer(T5_TOKENS if arch in PIXART_ARCHS else 77)
    if len(tokenizer) > CLIP_VOCAB:  # every id the tokenizer makes must have an embedding row
        raise ValueError(f"the embedded tokenizer has {len(tokenizer)} tokens, more than CLIP's {CLIP_VOCAB}")
    torch.manual_seed(seed)
    parts = build_models(arch)
    parts.update(tokenizer=tokenizer, scheduler=ddim_scheduler())
    if arch == "sdxl":
        parts.update(tokenizer_2=build_tokenizer(), add_watermarker=False)
    elif arch not in PIXART_ARCHS:
        parts.update(safety_checker=None, feature_extractor=None, requires_safety_checker=False)
    return parts


def pipeline_class(arch: str, task: str):
    """The diffusers pipeline class a preset runs for a task."""
    from diffusers import (
        PixArtAlphaPipeline,
        StableDiffusionInpaintPipeline,
        StableDiffusionPipeline,
        StableDiffusionXLPipeline,
    )

    check_arch(arch, task)
    if arch in LDM_ARCHS:
        from generator.pipelines.ldm import LDMInpaintPipeline  # heavy: as above

        return LDMInpaintPipeline
    if arch == "sdxl":
        return StableDiffusionXLPipeline
    if arch in PIXART_ARCHS:
        return PixArtAlphaPipeline
    return StableDiffusionPipeline if task == "txt2img" else StableDiffusionInpaintPipeline

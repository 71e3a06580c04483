"""The embedded model: a tiny latent-diffusion pipeline with the shape of Stable Diffusion, trained here.

A CLIP-shaped text encoder over the project's byte-level tokenizer, a UNet that denoises a 4-channel latent
with cross-attention to the text, and a VAE whose encoder and decoder downsample by 8 per side (LDM, arXiv
2112.10752). The weights it ships with (pipelines/trained/embedded-shapes.safetensors, from
`python -m generator.train`) draw the shapes data set's captions (measure/shapes.py): "a red circle on a
blue background". The same architecture with random seeded weights (`--arch tiny-random`) draws noise at the
same cost, for timing alone.
"""

from __future__ import annotations

import torch

from generator.pipelines import weights
from generator.pipelines.parts import TASKS, build_tokenizer, ddim_scheduler, quiet_imports

TRAINED = "embedded-shapes"  # the shipped weights file (weights.FILES)


def embedded_text_encoder():
    """A CLIP-shaped text encoder over the project's byte-level tokenizer: 64 wide, 2 layers, 4 heads."""
    from transformers import CLIPTextConfig, CLIPTextModel

    return CLIPTextModel(CLIPTextConfig(
        vocab_size=len(build_tokenizer()), hidden_size=64, intermediate_size=128, num_attention_heads=4,
        num_hidden_layers=2, max_position_embeddings=77, bos_token_id=0, eos_token_id=1, pad_token_id=1,
    ))


def embedded_unet(in_channels: int = 4):
    """An SD-shaped UNet on an 8 x 8 latent: widths 32/64, cross-attention to the text at the 4 x 4 level and in the
    middle (the layout of the model before it was trained; at the 8 x 8 level too, a job took 1.4-1.6x as long).
    txt2img: 4 latent channels; inpaint: 4 latent + 1 mask + 4 masked-image latent (diffusers' order)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel(
        sample_size=8, in_channels=in_channels, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=64, attention_head_dim=8, norm_num_groups=8,
    )


def embedded_vae():
    """An SD-shaped VAE at toy widths 8/16/16/16: four blocks, three downsampling (2**3 = 8 pixels per latent)."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(
        in_channels=3, out_channels=3, block_out_channels=(8, 16, 16, 16),
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4, layers_per_block=1, norm_num_groups=8, sample_size=64,
    )


def components(task: str = "txt2img", seed: int = 0, trained: bool = True) -> dict:
    """The embedded model's pipeline components for `task`: the shipped weights (trained), or random weights drawn
    from `seed`. The inpainting UNet is the file's inpaint_unet (9 input channels)."""
    quiet_imports()
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    torch.manual_seed(seed)
    text_encoder = embedded_text_encoder()
    torch.manual_seed(seed + 1)
    unet = embedded_unet(4 if task == "txt2img" else 9)
    torch.manual_seed(seed + 2)
    vae = embedded_vae()
    if trained:
        shipped = weights.read(TRAINED)
        shipped.load_into("text_encoder", text_encoder)
        shipped.load_into("unet" if task == "txt2img" else "inpaint_unet", unet)
        shipped.load_into("vae", vae)
        vae.register_to_config(scaling_factor=shipped.scaling_factor)
    return dict(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=build_tokenizer(),
        scheduler=ddim_scheduler(),
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )



"""The CompVis latent-diffusion inpainting model (LDM, arXiv 2112.10752), rebuilt from diffusers parts.

What comes from where (github:CompVis/latent-diffusion):
- Shapes: models/ldm/inpainting_big/config.yaml, which the repository ships (the weights, last.ckpt,
  are downloaded separately). The first stage is `VQModelInterface` with embed_dim 3, n_embed 8192
  and ddconfig ch 128, ch_mult 1,2,4, num_res_blocks 2, z_channels 3, attn_type none (f = 4, the
  same as models/first_stage_models/vq-f4-noattn). The UNet is openaimodel `UNetModel` with
  in_channels 7 (3 noisy latent + 3 masked-image latent + 1 mask, `concat_mode: true`),
  out_channels 3, model_channels 256, channel_mult 1,2,3,4, num_res_blocks 2, attention_resolutions
  8,4,2 (attention at every level but the first, and in the middle), num_heads 8, resblock_updown
  true, and the UNetModel defaults: use_scale_shift_norm false, legacy attention, 32 norm groups.
  Section 4.5 of the paper gives this UNet 387M parameters.
- Schedule: linear_start 0.0015, linear_end 0.0205, 1000 timesteps; LDM's "linear" betas are
  linspace(sqrt(start), sqrt(end), T) ** 2, diffusers' "scaled_linear". The script samples with
  `DDIMSampler` (uniform timesteps 1, 21, ..., 981 for 50 steps, eta 0, alpha-bar at step 0 as the
  last "previous"): diffusers' DDIMScheduler with timestep_spacing "leading", steps_offset 1 and
  set_alpha_to_one False takes the same timesteps and coefficients.
- Sampling: scripts/inpaint.py. Pixels in [0, 1], mask binarised at 0.5, masked image
  (1 - mask) * image, then all three mapped to [-1, 1] (so the hole is -1, black, and the mask
  fed to the UNet is -1 / +1); c = first_stage.encode(masked image), the pre-quantisation latent
  (VQModelInterface.encode is encoder + quant_conv); the mask resized to the latent by nearest
  interpolation; each UNet call sees cat([x_t, c, mask]); decode_first_stage quantises then decodes
  (scale_factor 1.0); finally the paste-back (1 - mask) * image + mask * decoded.

diffusers blocks: UNet2DModel with ResnetDownsampleBlock2D / AttnDownBlock2D and
downsample_type="resnet" (ResnetUpsampleBlock2D / AttnUpBlock2D, upsample_type="resnet") is the
BigGAN-style resblock_updown: a ResnetBlock2D with down=True / up=True, average pooling / nearest
upsampling without a convolution, exactly as openaimodel's ResBlock(down=True / up=True). The time
embedding is openaimodel's with flip_sin_to_cos=True, freq_shift=0. UNet2DModel takes one head
*dimension* for all levels, CompVis one head *count* (8, so head dims 64, 96 and 128): we build with
a head dim that divides every level and then set 8 heads on each attention module, so a loaded
checkpoint computes what CompVis computes. Parameters and FLOPs do not depend on the head count (the
projections are C x C whatever the split; QK^T and PV cost 2 * L * S * C in all).

Checkpoint layout (last.ckpt, a Lightning pickle with "state_dict"): read off the code, not off a real
file (none is downloaded here): model.diffusion_model.* (the UNet), model_ema.* (LitEma: the same
tensors under dot-less names, with decay and num_updates; present since use_ema defaults to true, and
the ones scripts/inpaint.py samples with, inside model.ema_scope()), first_stage_model.*,
cond_stage_model.* (the same module registered twice, `__is_first_stage__`) and the schedule buffers.

The model is unconditional: there is no text and no classifier-free guidance.
"""

from __future__ import annotations

from math import gcd

import numpy as np
import torch
from diffusers import DDIMScheduler, DiffusionPipeline, UNet2DModel, VQModel

from generator.pipelines.parts import ModelLoadError

# 1. The configs, in CompVis's own names ("norm_groups" is ours: CompVis always uses 32).
INPAINT_BIG_UNET = dict(image_size=64, in_channels=7, out_channels=3, model_channels=256, channel_mult=(1, 2, 3, 4),
                        num_res_blocks=2, attention_resolutions=(8, 4, 2), num_heads=8, resblock_updown=True)
INPAINT_BIG_VQ = dict(embed_dim=3, n_embed=8192, ch=128, ch_mult=(1, 2, 4), num_res_blocks=2, z_channels=3,
                      in_channels=3, out_ch=3, resolution=256, attn_type="none")
# Toy widths for a 2-core CPU: the same family (7-channel UNet, resblock up/down, f = 4, 3 latent channels).
TINY_UNET = dict(image_size=16, in_channels=7, out_channels=3, model_channels=32, channel_mult=(1, 2),
                 num_res_blocks=1, attention_resolutions=(2,), num_heads=4, resblock_updown=True, norm_groups=8)
TINY_VQ = dict(embed_dim=3, n_embed=256, ch=8, ch_mult=(1, 2, 2), num_res_blocks=1, z_channels=3,
               in_channels=3, out_ch=3, resolution=64, attn_type="none", norm_groups=8)
CONFIGS = {"ldm-inpaint": (INPAINT_BIG_UNET, INPAINT_BIG_VQ), "ldm-inpaint-tiny": (TINY_UNET, TINY_VQ),
           "ldm-inpaint-tiny-random": (TINY_UNET, TINY_VQ)}
SCHEDULE_BUFFERS = ("betas", "alphas_cumprod", "alphas_cumprod_prev", "sqrt_alphas_cumprod",
                    "sqrt_one_minus_alphas_cumprod", "log_one_minus_alphas_cumprod", "sqrt_recip_alphas_cumprod",
                    "sqrt_recipm1_alphas_cumprod", "posterior_variance", "posterior_log_variance_clipped",
                    "posterior_mean_coef1", "posterior_mean_coef2")  # ldm DDPM.register_schedule


def _attention_levels(cfg: dict) -> list[bool]:
    return [2 ** level in cfg["attention_resolutions"] for level in range(len(cfg["channel_mult"]))]


# 2. Builders: diffusers modules with the configs' shapes (weights random; seed or meta-device first).
def build_unet(cfg: dict) -> UNet2DModel:
    """openaimodel UNetModel as a UNet2DModel (resblock_updown only: the inpainting model's choice)."""
    if not cfg.get("resblock_updown"):
        raise ValueError(f"only UNets with resblock_updown are built here, got {cfg.get('resblock_updown')!r}")
    widths = tuple(cfg["model_channels"] * m for m in cfg["channel_mult"])
    attn = _attention_levels(cfg)
    head_dim = 0
    for width, a in zip(widths + (widths[-1],), attn + [True]):  # the middle block attends too
        head_dim = gcd(head_dim, width // cfg["num_heads"]) if a else head_dim
    unet = UNet2DModel(
        sample_size=cfg["image_size"], in_channels=cfg["in_channels"], out_channels=cfg["out_channels"],
        block_out_channels=widths, layers_per_block=cfg["num_res_blocks"],
        down_block_types=tuple("AttnDownBlock2D" if a else "ResnetDownsampleBlock2D" for a in attn),
        up_block_types=tuple("AttnUpBlock2D" if a else "ResnetUpsampleBlock2D" for a in reversed(attn)),
        downsample_type="resnet", upsample_type="resnet", attention_head_dim=head_dim,
        norm_num_groups=cfg.get("norm_groups", 32), norm_eps=1e-5, flip_sin_to_cos=True, freq_shift=0,
    )
    from diffusers.models.attention_processor import Attention

    for module in unet.modules():  # CompVis's fixed head count (see the module docstring)
        if isinstance(module, Attention):
            module.heads = module.sliceable_head_dim = cfg["num_heads"]
            module.scale = (module.inner_dim // cfg["num_heads"]) ** -0.5
    return unet


def build_vq(cfg: dict) -> VQModel:
    """ldm VQModelInterface (Encoder/Decoder of ldm/modules/diffusionmodules/model.py) as a VQModel."""
    if cfg["attn_type"] != "none":
        raise ValueError(f"only first stages without attention are built here, got attn_type {cfg['attn_type']!r}")
    levels = len(cfg["ch_mult"])
    return VQModel(
        in_channels=cfg["in_channels"], out_channels=cfg["out_ch"], down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels, block_out_channels=tuple(cfg["ch"] * m for m in cfg["ch_mult"]),
        layers_per_block=cfg["num_res_blocks"], latent_channels=cfg["z_channels"], sample_size=cfg["resolution"],
        num_vq_embeddings=cfg["n_embed"], vq_embed_dim=cfg["embed_dim"], norm_num_groups=cfg.get("norm_groups", 32),
        scaling_factor=1.0, mid_block_add_attention=False,
    )


def build_scheduler(prediction_type: str = "epsilon") -> DDIMScheduler:
    """inpainting_big's schedule, sampled as CompVis's DDIMSampler samples it (module docstring). CompVis's UNet
    predicts the noise (epsilon); the toy model trained here predicts v (generator/train/stages.py says why)."""
    return DDIMScheduler(num_train_timesteps=1000, beta_start=0.0015, beta_end=0.0205, beta_schedule="scaled_linear",
                         clip_sample=False, set_alpha_to_one=False, steps_offset=1, timestep_spacing="leading",
                         prediction_type=prediction_type)


# 3. CompVis checkpoint names -> diffusers names.
def _resnet(old: str, new: str, skip: bool, unet: bool) -> list:
    """openaimodel ResBlock (unet) or model.py ResnetBlock -> ResnetBlock2D; skip: a 1x1 shortcut conv."""
    if unet:
        pairs = [("in_layers.0", "norm1"), ("in_layers.2", "conv1"), ("emb_layers.1", "time_emb_proj"),
                 ("out_layers.0", "norm2"), ("out_layers.3", "conv2")]
        pairs += [("skip_connection", "conv_shortcut")] if skip else []
    else:
        pairs = [(n, n) for n in ("norm1", "conv1", "norm2", "conv2")]
        pairs += [("nin_shortcut", "conv_shortcut")] if skip else []
    return [(f"{old}.{a}.{p}", f"{new}.{b}.{p}", "copy") for a, b in pairs for p in ("weight", "bias")]


def _attention(old: str, new: str) -> list:
    rows = [(f"{old}.norm.{p}", f"{new}.group_norm.{p}", "copy") for p in ("weight", "bias")]
    rows += [(f"{old}.qkv.{p}", f"{new}.to_{part}.{p}", part) for part in "qkv" for p in ("weight", "bias")]
    return rows + [(f"{old}.proj_out.weight", f"{new}.to_out.0.weight", "squeeze"),
                   (f"{old}.proj_out.bias", f"{new}.to_out.0.bias", "copy")]


def unet_names(cfg: dict) -> list[tuple[str, str, str]]:
    """(CompVis name under the UNet, diffusers name, how) for every UNet tensor; how is copy, squeeze (conv1d
    -> linear) or q / k / v (a slice of the legacy qkv, laid out head by head as [q_h, k_h, v_h])."""
    mc, mult, nrb = cfg["model_channels"], cfg["channel_mult"], cfg["num_res_blocks"]
    attn = _attention_levels(cfg)
    rows = [(f"time_embed.{a}.{p}", f"time_embedding.linear_{b}.{p}", "copy") for a, b in ((0, 1), (2, 2))
            for p in ("weight", "bias")]
    rows += [(f"input_blocks.0.0.{p}", f"conv_in.{p}", "copy") for p in ("weight", "bias")]
    k, ch, chans = 1, mc, [mc]
    for level, m in enumerate(mult):  # 3a. input_blocks, as UNetModel.__init__ appends them
        for j in range(nrb):
            rows += _resnet(f"input_blocks.{k}.0", f"down_blocks.{level}.resnets.{j}", ch != mc * m, True)
            rows += _attention(f"input_blocks.{k}.1", f"down_blocks.{level}.attentions.{j}") if attn[level] else []
            ch = mc * m
            k, chans = k + 1, chans + [ch]
        if level != len(mult) - 1:
            rows += _resnet(f"input_blocks.{k}.0", f"down_blocks.{level}.downsamplers.0", False, True)
            k, chans = k + 1, chans + [ch]
    rows += _resnet("middle_block.0", "mid_block.resnets.0", False, True)  # 3b. middle
    rows += _attention("middle_block.1", "mid_block.attentions.0")
    rows += _resnet("middle_block.2", "mid_block.resnets.1", False, True)
    k = 0
    for up, level in enumerate(reversed(range(len(mult)))):  # 3c. output_blocks
        for j in range(nrb + 1):
            rows += _resnet(f"output_blocks.{k}.0", f"up_blocks.{up}.resnets.{j}", ch + chans.pop() != mc * mult[level],
                            True)
            ch, n = mc * mult[level], 1
            if attn[level]:
                rows += _attention(f"output_blocks.{k}.1", f"up_blocks.{up}.attentions.{j}")
                n = 2
            if level and j == nrb:
                rows += _resnet(f"output_blocks.{k}.{n}", f"up_blocks.{up}.upsamplers.0", False, True)
            k += 1
    return rows + [(f"out.{a}.{p}", f"{b}.{p}", "copy") for a, b in ((0, "conv_norm_out"), (2, "conv_out"))
                   for p in ("weight", "bias")]


def vq_names(cfg: dict) -> list[tuple[str, str, str]]:
    """(CompVis name under the first stage, diffusers name, how) for every VQ model tensor."""
    ch, mult, nrb, levels = cfg["ch"], cfg["ch_mult"], cfg["num_res_blocks"], len(cfg["ch_mult"])
    plain = ["quant_conv", "post_quant_conv"] + [f"{c}.conv_{x}" for c in ("encoder", "decoder") for x in ("in", "out")]
    rows = [(f"{n}.{p}", f"{n}.{p}", "copy") for n in plain for p in ("weight", "bias")]
    rows += [("quantize.embedding.weight", "quantize.embedding.weight", "copy")]
    for c in ("encoder", "decoder"):
        rows += [(f"{c}.norm_out.{p}", f"{c}.conv_norm_out.{p}", "copy") for p in ("weight", "bias")]
        rows += _resnet(f"{c}.mid.block_1", f"{c}.mid_block.resnets.0", False, False)
        rows += _resnet(f"{c}.mid.block_2", f"{c}.mid_block.resnets.1", False, False)
    block_in = ch
    for level in range(levels):  # Encoder.down
        for j in range(nrb):
            rows += _resnet(f"encoder.down.{level}.block.{j}", f"encoder.down_blocks.{level}.resnets.{j}",
                            block_in != ch * mult[level], False)
            block_in = ch * mult[level]
        if level != levels - 1:
            rows += [(f"encoder.down.{level}.downsample.conv.{p}",
                      f"encoder.down_blocks.{level}.downsamplers.0.conv.{p}", "copy") for p in ("weight", "bias")]
    for level in reversed(range(levels)):  # Decoder.up, stored lowest resolution last
        new = f"decoder.up_blocks.{levels - 1 - level}"
        for j in range(nrb + 1):
            rows += _resnet(f"decoder.up.{level}.block.{j}", f"{new}.resnets.{j}", block_in != ch * mult[level], False)
            block_in = ch * mult[level]
        if level != 0:
            rows += [(f"decoder.up.{level}.upsample.conv.{p}", f"{new}.upsamplers.0.conv.{p}", "copy")
                     for p in ("weight", "bias")]
    return rows


def ema_name(unet_name: str) -> str:
    """LitEma's buffer for a UNet tensor: 'model_ema.' + the DiffusionWrapper name without its dots."""
    return "model_ema." + ("diffusion_model." + unet_name).replace(".", "")


def compvis_to_diffusers(state_dict: dict, unet_cfg: dict, vq_cfg: dict) -> tuple[dict, dict, dict]:
    """Map a CompVis LatentDiffusion state dict onto diffusers names: (unet, vq, report).

    UNet tensors come from the EMA copy when the checkpoint has one (scripts/inpaint.py samples inside
    model.ema_scope()), else from model.diffusion_model.*; the first stage from first_stage_model.*.
    Tolerated and unused: cond_stage_model.* (the first stage again, `__is_first_stage__`), model_ema's
    decay / num_updates, the schedule buffers. report: {"missing", "unexpected", "misshapen": [CompVis keys],
    "ema": bool, "source": {diffusers name ("vae." first for the VQ model): CompVis key}}; such tensors are
    left out of the result. Misshapen here means the qkv split or the squeeze failed; other shapes are
    compared with the modules by load_compvis_checkpoint.
    """
    used, unet, vq, missing, misshapen, source = set(), {}, {}, [], [], {}
    u_rows, v_rows = unet_names(unet_cfg), vq_names(vq_cfg)
    ema = any(ema_name(old) in state_dict for old, _, _ in u_rows)
    heads = unet_cfg["num_heads"]
    for rows, prefix, out in ((u_rows, "model.diffusion_model.", unet), (v_rows, "first_stage_model.", vq)):
        for old, new, how in rows:
            key = ema_name(old) if ema and out is unet else prefix + old
            if key not in state_dict:
                missing += [] if key in missing else [key]  # q, k and v share one qkv tensor
                continue
            used.add(key)
            t = state_dict[key]
            try:
                if how == "squeeze":
                    t = t.reshape(t.shape[:2])
                elif how in ("q", "k", "v"):
                    part = "qkv".index(how)
                    t = t.reshape(heads, 3, t.shape[0] // (3 * heads), *t.shape[1:])[:, part].flatten(0, 1)
                    t = t.reshape(t.shape[:2]) if t.ndim == 3 else t
            except RuntimeError:
                entry = f"{key} {tuple(t.shape)}"
                misshapen += [] if entry in misshapen else [entry]
                continue
            out[new] = t.contiguous()
            source[new if out is unet else "vae." + new] = key
    if ema:  # the plain UNet tensors are there too, overridden by the EMA ones
        used.update(f"model.diffusion_model.{old}" for old, _, _ in u_rows)
    tolerated = ("cond_stage_model.", "model_ema.decay", "model_ema.num_updates")
    unexpected = [k for k in state_dict if k not in used and k not in SCHEDULE_BUFFERS and not k.startswith(tolerated)]
    return unet, vq, {"missing": missing, "unexpected": unexpected, "misshapen": misshapen, "ema": ema,
                      "source": source}


# 4. The pipeline.
class LDMInpaintPipeline(DiffusionPipeline):
    """CompVis scripts/inpaint.py as a diffusers pipeline (see the module docstring for each step).

    `prompt` only sets the batch size (the model is unconditional: prompts are ignored); guidance_scale
    must be 1.0. Image i's initial noise is drawn from generator[i] alone, so an image is the same
    whatever batch it is in. VQModel has no slicing of its own: enable_vae_slicing() keeps the switch on
    the VQ model as `use_slicing` (the attribute diffusers' enable_slicing sets), and encode and decode
    then go one image at a time.
    """

    def __init__(self, vae: VQModel, unet: UNet2DModel, scheduler: DDIMScheduler):
        super().__init__()
        self.register_modules(vae=vae, unet=unet, scheduler=scheduler)
        vae.use_slicing = getattr(vae, "use_slicing", False)

    @property
    def vae_scale_factor(self) -> int:
        return 2 ** (len(self.vae.config.block_out_channels) - 1)

    def enable_vae_slicing(self) -> None:
        self.vae.use_slicing = True

    def disable_vae_slicing(self) -> None:
        self.vae.use_slicing = False

    def _per_image(self, fn, x: torch.Tensor) -> torch.Tensor:
        if self.vae.use_slicing and x.shape[0] > 1:
            return torch.cat([fn(row) for row in x.split(1)])
        return fn(x)

    @torch.no_grad()
    def __call__(self, prompt=None, height: int | None = None, width: int | None = None, num_inference_steps: int = 50,
                 guidance_scale: float = 1.0, generator=None, callback_on_step_end=None, output_type: str = "pil",
                 image=None, mask_image=None, return_dict: bool = True):
        from diffusers.pipelines.pipeline_utils import ImagePipelineOutput
        from diffusers.utils.torch_utils import randn_tensor

        # 1. Check the inputs.
        if guidance_scale != 1.0:
            raise ValueError(f"the LDM inpainting model is unconditional: guidance_scale must be 1.0 "
                             f"(no classifier-free guidance), got {guidance_scale!r}")
        if output_type not in ("pil", "np"):
            raise ValueError(f"output_type must be 'pil' or 'np', got {output_type!r}")
        sized = prompt if prompt is not None else image  # prompts only count the images
        count = len(sized) if isinstance(sized, (list, tuple)) else 1
        images, masks = (_one_per_image(x, count, name) for x, name in ((image, "image"), (mask_image, "mask_image")))
        width, height = width or images[0].size[0], height or images[0].size[1]
        multiple = self.vae_scale_factor * 2 ** (len(self.unet.config.block_out_channels) - 1)
        if height % multiple or width % multiple:
            raise ValueError(f"height and width must be multiples of {multiple} for this model, got {height}x{width}")
        gens = generator if isinstance(generator, (list, tuple)) else [generator] * count
        if len(gens) != count:
            raise ValueError(f"generator: one per image, got {len(gens)} for {count} images")
        device, dtype = self.unet.device, self.unet.dtype
        # 2. Prepare: 8-bit pixels, binary masks, the masked image's latent and the latent-size mask.
        pixels = np.stack([np.asarray(i.convert("RGB").resize((width, height), 3)) for i in images])  # 3: bicubic
        keep = np.stack([np.asarray(m.convert("L").resize((width, height), 0)) / 255.0 < 0.5  # 0: nearest
                         for m in masks])
        image01 = torch.from_numpy(pixels).permute(0, 3, 1, 2).float() / 255.0
        mask = torch.from_numpy(~keep).float()[:, None]
        masked = ((1 - mask) * image01 * 2 - 1).to(device=device, dtype=self.vae.dtype)
        cond = self._per_image(lambda x: self.vae.encode(x).latents, masked).to(dtype)
        mask_latent = torch.nn.functional.interpolate(mask * 2 - 1, size=cond.shape[-2:]).to(device=device, dtype=dtype)
        shape = (1, self.unet.config.out_channels, *cond.shape[-2:])
        latents = torch.cat([randn_tensor(shape, generator=g, device=device, dtype=dtype) for g in gens])
        latents = latents * self.scheduler.init_noise_sigma
        # 3. Denoise: DDIM, eta 0, the UNet seeing cat([x_t, c, mask]).
        self.scheduler.set_timesteps(num_inference_steps, device=device)
        with self.progress_bar(total=len(self.scheduler.timesteps)) as bar:
            for i, t in enumerate(self.scheduler.timesteps):
                eps = self.unet(torch.cat([latents, cond, mask_latent], dim=1), t).sample
                latents = self.scheduler.step(eps, t, latents, eta=0.0).prev_sample
                if callback_on_step_end is not None:
                    callback_on_step_end(self, i, t, {})
                bar.update()
        # 4. Decode (quantise, then decode), then paste the kept pixels back, on the 8-bit values.
        z = (latents / self.vae.config.scaling_factor).to(self.vae.dtype)
        decoded = self._per_image(lambda x: self.vae.decode(x).sample, z)
        predicted = ((decoded.float().clamp(-1, 1) + 1) / 2).permute(0, 2, 3, 1).cpu().numpy()
        result = np.where(keep[..., None], pixels, np.round(predicted * 255).astype(np.uint8))
        out = [_to_pil(r) for r in result] if output_type == "pil" else result.astype(np.float32) / 255.0
        return ImagePipelineOutput(images=out) if return_dict else (out,)


def _one_per_image(x, count: int, name: str) -> list:
    items = list(x) if isinstance(x, (list, tuple)) else [x] * count
    if len(items) != count or any(not hasattr(i, "convert") for i in items):
        raise ValueError(f"{name}: one PIL image per image ({count}), got {x!r}"[:200])
    return items


def _to_pil(array: np.ndarray):
    from PIL import Image

    return Image.fromarray(array)


# 5. A CompVis checkpoint (last.ckpt) loaded into a preset's shapes.
def load_compvis_checkpoint(path: str, arch: str) -> LDMInpaintPipeline:
    """Read `path` with torch.load(weights_only=True), map it (compvis_to_diffusers) and load it into the
    preset `arch`; any missing, unexpected or misshapen tensor raises parts.ModelLoadError naming some."""
    # 1. Read the pickle: tensors and plain containers only, no code from the file is run.
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ModelLoadError(
            f"checkpoint {path!r} cannot be read as tensors only (torch.load weights_only=True): {first[:200]}; "
            "if you trust the file, keep only its weights: torch.save({'state_dict': torch.load(PATH, "
            "weights_only=False)['state_dict']}, 'weights.ckpt')") from None
    sd = ckpt.get("state_dict", ckpt) if isinstance(ckpt, dict) else None
    if not isinstance(sd, dict) or not all(torch.is_tensor(v) for v in sd.values()):
        raise ModelLoadError(f"checkpoint {path!r} holds no state_dict of tensors (a CompVis last.ckpt has one)")
    # 2. Map the names, then compare with the preset's modules, built on the meta device (nothing allocated).
    unet_cfg, vq_cfg = CONFIGS[arch]
    unet_sd, vq_sd, report = compvis_to_diffusers(sd, unet_cfg, vq_cfg)
    with torch.device("meta"):
        unet, vae = build_unet(unet_cfg), build_vq(vq_cfg)
    wrong = report["misshapen"] + [
        f"{report['source'][prefix + name]} (as {tuple(mapped[name].shape)}, needs {tuple(want.shape)})"
        for module, mapped, prefix in ((unet, unet_sd, ""), (vae, vq_sd, "vae."))
        for name, want in module.state_dict().items() if name in mapped and mapped[name].shape != want.shape]
    problems = [(what, items) for what, items in (("missing", report["missing"]), ("unexpected", report["unexpected"]),
                                                 ("misshapen (after mapping)", wrong)) if items]
    if problems:
        raise ModelLoadError(f"checkpoint {path!r} does not match arch {arch!r}: " + "; ".join(
            f"{len(items)} {what}, e.g. {', '.join(items[:3])}" for what, items in problems))
    # 3. Load (the tensors become the parameters) and check the schedule the model was trained with.
    unet.load_state_dict(unet_sd, strict=True, assign=True)
    vae.load_state_dict(vq_sd, strict=True, assign=True)
    scheduler = build_scheduler()
    if "betas" in sd and not torch.allclose(sd["betas"].double(), scheduler.betas.double(), rtol=1e-4, atol=1e-7):
        raise ModelLoadError(f"checkpoint {path!r} was trained with other betas than {arch!r}'s schedule "
                             "(LDM linear 0.0015..0.0205, 1000 steps)")
    return LDMInpaintPipeline(vae=vae, unet=unet, scheduler=scheduler)


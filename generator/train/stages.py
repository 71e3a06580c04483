"""The training stages of the embedded models, each a loop over batches of the shapes data set.

Stage order (each builds on the ones before; pipelines/models.py and ldm.py hold the architectures):
1. `vae`: the embedded AutoencoderKL (f = 8), reconstruction (MSE) plus a small KL term, as LDM's
   first stage (arXiv 2112.10752) without the perceptual and adversarial terms flat shapes do not need;
   its scaling factor is then set to 1 / the latents' standard deviation, as SD's 0.18215 was.
2. `txt2img`: the UNet and the CLIP-shaped text encoder together, epsilon prediction on the DDPM
   schedule the DDIM sampler walks (parts.ddim_scheduler), a tenth of captions dropped to "" so that
   classifier-free guidance has an unconditional branch to push from (arXiv 2207.12598).
3. `inpaint`: the 9-channel inpainting UNet, started from the txt2img UNet with the new input channels
   zeroed (the way SD's inpainting model was started from SD), on random masks; text encoder frozen.
4. `vq`: the VQ first stage of ldm-inpaint-tiny (f = 4, codebook 256): reconstruction plus the codebook
   and commitment terms of VQ-VAE.
5. `ldm`: ldm-inpaint-tiny's 7-channel unconditional UNet on the VQ latents, inputs cat([x_t, c, mask])
   as CompVis's concat mode (ldm.py's module docstring), on its own schedule (ldm.build_scheduler). It predicts
   v = sqrt(a) eps - sqrt(1 - a) x0 (arXiv 2202.00512) where CompVis's predicts eps: that schedule ends at an
   alpha-bar of 0.0006 by t = 901, where x0 read back from a predicted eps multiplies the eps error by
   sqrt((1 - a) / a), about 40; a UNet this small trained with eps filled the hole with noise (mean error
   85/255 in the hole), one step's prediction being fine (eps MSE 0.012) and the 10-step DDIM path not.

Every stage keeps an exponential moving average of the weights it trains and ships the average.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from generator.measure import shapes
from generator.pipelines import embedded, ldm, weights
from generator.pipelines.parts import build_tokenizer, ddim_scheduler

STAGES = ("vae", "txt2img", "inpaint", "vq", "ldm")


@dataclass(frozen=True)
class StageSpec:
    steps: int
    batch: int
    lr: float
    ema: float = 0.999


# Steps sized so that all five end within about 40 minutes on two cores of their own (README: the embedded model).
# The average of the weights (EMA) spans about 1 / (1 - ema) steps: 100 for the first stages, 1,000 for the text
# UNets, 200 for the ldm UNet, since at 0.999 its average still held early steps after 2,000 (hole error 42/255
# against the last weights' 36).
SPECS = {
    "vae": StageSpec(steps=1500, batch=16, lr=2e-3, ema=0.99),
    "txt2img": StageSpec(steps=6000, batch=64, lr=1e-3),
    "inpaint": StageSpec(steps=1000, batch=64, lr=5e-4),
    "vq": StageSpec(steps=1500, batch=16, lr=2e-3, ema=0.99),
    "ldm": StageSpec(steps=3000, batch=64, lr=1e-3, ema=0.995),
}
KL_WEIGHT = 1e-6
DROP_CAPTION = 0.1


class Data:
    """The training pictures (float, -1..1, N x 3 x 64 x 64), their caption indices, and the captions' token
    ids (the last row is the empty caption)."""

    def __init__(self, n: int, seed: int):
        pics, caps = shapes.sample(n, seed)
        self.pixels = torch.from_numpy(pics).permute(0, 3, 1, 2).float() / 127.5 - 1
        index = {c: i for i, c in enumerate(shapes.TRAIN_CAPTIONS)}
        self.caption = torch.tensor([index[c] for c in caps])
        tok = build_tokenizer()
        texts = [c.text for c in shapes.TRAIN_CAPTIONS] + [""]
        self.ids = tok(texts, padding="max_length", max_length=tok.model_max_length, return_tensors="pt").input_ids
        self.masks = torch.from_numpy(shapes.random_masks(n, seed + 1)).float()[:, None]

    def __len__(self) -> int:
        return len(self.pixels)

    @torch.no_grad()
    def encode(self, vae, vq: bool = False, chunk: int = 256) -> None:
        """Encode every picture (and its masked copy) once with a finished first stage, so a UNet step
        runs no encoder: the VAE's posterior (mean, std) scaled by its scaling factor, or the VQ model's
        pre-quantisation latents (scaled) and the masked image's (unscaled, as ldm.py conditions on them)."""
        s = vae.config.scaling_factor
        out: dict[str, list] = {}
        for lo in range(0, len(self), chunk):
            x, mask = self.pixels[lo:lo + chunk], self.masks[lo:lo + chunk]
            if vq:
                parts = {"vq_x0": vae.encode(x).latents * s, "vq_c": vae.encode((1 - mask) * (x + 1) - 1).latents}
            else:
                post, held = vae.encode(x).latent_dist, vae.encode(x * (mask < 0.5)).latent_dist
                parts = {"mean": post.mean * s, "std": post.std * s, "masked_mean": held.mean * s,
                         "masked_std": held.std * s}
            for k, v in parts.items():
                out.setdefault(k, []).append(v)
        for k, v in out.items():
            setattr(self, k, torch.cat(v))


class Ema:
    """An exponential moving average of a module's parameters (buffers copied)."""

    def __init__(self, module: torch.nn.Module, decay: float):
        self.decay, self.shadow = decay, copy.deepcopy(module).requires_grad_(False).eval()

    @torch.no_grad()
    def update(self, module: torch.nn.Module) -> None:
        for s, p in zip(self.shadow.parameters(), module.parameters()):
            s.lerp_(p, 1 - self.decay)
        for s, b in zip(self.shadow.buffers(), module.buffers()):
            s.copy_(b)


# Each stage: build(previous, seed) -> the modules it trains; loss(modules, frozen, data, index, gen) -> tensor.
def vae_loss(m: dict, frozen: dict, data: Data, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    x = data.pixels[idx]
    post = m["vae"].encode(x).latent_dist
    z = post.mean + post.std * torch.randn(post.mean.shape, generator=gen)
    return F.mse_loss(m["vae"].decode(z).sample, x) + KL_WEIGHT * post.kl().mean()


def _noised(x0: torch.Tensor, scheduler, gen: torch.Generator):
    eps = torch.randn(x0.shape, generator=gen)
    t = torch.randint(0, scheduler.config.num_train_timesteps, (len(x0),), generator=gen)
    return scheduler.add_noise(x0, eps, t), eps, t


def _draw(mean: torch.Tensor, std: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    return mean + std * torch.randn(mean.shape, generator=gen)


def _text(m: dict, frozen: dict, data: Data, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    cap = data.caption[idx].clone()
    cap[torch.rand(len(idx), generator=gen) < DROP_CAPTION] = len(data.ids) - 1
    encoder = m.get("text_encoder") or frozen["text_encoder"]
    return encoder(data.ids[cap])[0]


def txt2img_loss(m: dict, frozen: dict, data: Data, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    x0 = _draw(data.mean[idx], data.std[idx], gen)
    xt, eps, t = _noised(x0, frozen["scheduler"], gen)
    return F.mse_loss(m["unet"](xt, t, encoder_hidden_states=_text(m, frozen, data, idx, gen)).sample, eps)


def inpaint_loss(m: dict, frozen: dict, data: Data, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    x0 = _draw(data.mean[idx], data.std[idx], gen)
    masked = _draw(data.masked_mean[idx], data.masked_std[idx], gen)  # the pipeline's masked image: the hole at 0
    small = F.interpolate(data.masks[idx], size=x0.shape[-2:])  # nearest, as StableDiffusionInpaintPipeline
    xt, eps, t = _noised(x0, frozen["scheduler"], gen)
    with torch.no_grad():
        text = _text(m, frozen, data, idx, gen)
    return F.mse_loss(m["unet"](torch.cat([xt, small, masked], 1), t, encoder_hidden_states=text).sample, eps)


def vq_loss(m: dict, frozen: dict, data: Data, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    x = data.pixels[idx]
    out = m["vae"].decode(m["vae"].encode(x).latents)
    return F.mse_loss(out.sample, x) + out.commit_loss.mean()


def ldm_loss(m: dict, frozen: dict, data: Data, idx: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    x0, c = data.vq_x0[idx], data.vq_c[idx]  # ldm.py: the masked image's hole at -1
    small = F.interpolate(data.masks[idx] * 2 - 1, size=x0.shape[-2:])
    xt, eps, t = _noised(x0, frozen["scheduler"], gen)
    target = frozen["scheduler"].get_velocity(x0, eps, t)
    return F.mse_loss(m["unet"](torch.cat([xt, c, small], 1), t).sample, target)


LOSSES = {"vae": vae_loss, "txt2img": txt2img_loss, "inpaint": inpaint_loss, "vq": vq_loss, "ldm": ldm_loss}


def build(stage: str, done: dict, seed: int) -> tuple[dict, dict]:
    """(trained modules, frozen modules) of a stage; `done` holds the finished stages' modules by name."""
    torch.manual_seed(seed + STAGES.index(stage))
    if stage == "vae":
        return {"vae": embedded.embedded_vae()}, {}
    if stage == "txt2img":
        return ({"unet": embedded.embedded_unet(4), "text_encoder": embedded.embedded_text_encoder()},
                {"vae": done["vae"], "scheduler": ddim_scheduler()})
    if stage == "inpaint":
        unet = embedded.embedded_unet(9)
        start = (done.get("unet") or embedded.embedded_unet(4)).state_dict()
        w = torch.zeros_like(unet.conv_in.weight)
        w[:, :4] = start["conv_in.weight"]
        start["conv_in.weight"] = w
        unet.load_state_dict(start)
        return ({"unet": unet}, {"vae": done["vae"], "text_encoder": done["text_encoder"],
                                 "scheduler": ddim_scheduler()})
    unet_cfg, vq_cfg = ldm.CONFIGS["ldm-inpaint-tiny"]
    if stage == "vq":
        return {"vae": ldm.build_vq(vq_cfg)}, {}
    return ({"unet": ldm.build_unet(unet_cfg)},
            {"vae": done["vq"], "scheduler": ldm.build_scheduler(weights.PREDICTION["ldm-inpaint-tiny-shapes"])})


@torch.no_grad()
def latent_scale(vae, data: Data, vq: bool) -> float:
    """1 / the standard deviation of the first stage's latents over (up to) 1024 training pictures."""
    x = data.pixels[:1024]
    z = vae.encode(x).latents if vq else vae.encode(x).latent_dist.mean
    return float(1.0 / z.std())


def batch_index(n: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    return torch.randint(0, n, (batch,), generator=gen)

"""Pipelines: the embedded model (trained here, shipped; embedded.py), a preset built from config, or local weights.
"""

from __future__ import annotations

import contextlib
import io
from pathlib import Path

import torch

from generator.pipelines import presets, weights
from generator.pipelines.parts import TASKS, ModelLoadError, quiet_imports


def _pipeline_class(task: str):
    from diffusers import StableDiffusionInpaintPipeline, StableDiffusionPipeline

    return StableDiffusionPipeline if task == "txt2img" else StableDiffusionInpaintPipeline


# 3. Load: the embedded model, or a local diffusers folder (never a hub download).
def model_kind(model: str | None, arch: str) -> str:
    """The kind (spool MODEL_KINDS) of the model load_pipeline loads for `model` and `arch`: local weights
    when a model is given (it wins over arch), else an embedded model with shipped weights (presets.TRAINED), or a
    preset with random weights."""
    if model is not None:
        return "weights"
    return "embedded" if arch in presets.TRAINED else "preset"


def model_id_of(arch: str, task: str) -> str:
    """The model_id of a model built from config: embedded-<arch>-shapes-<task> for shipped weights,
    preset-<arch>-random-<task> for random ones."""
    return f"embedded-{arch}-shapes-{task}" if arch in presets.TRAINED else f"preset-{arch}-random-{task}"


def weights_sha256(model: str | None, arch: str) -> str | None:
    """The SHA-256 of the shipped weights file a model built from config loads; None for random weights and for
    local weights (whose path is the model_id)."""
    return weights.read(presets.TRAINED[arch]).sha256 if model is None and arch in presets.TRAINED else None


def load_pipeline(task: str = "txt2img", model: str | None = None, seed: int = 0,
                  device: str = "cpu", dtype: torch.dtype = torch.float32, arch: str = "tiny"):
    """Return (pipeline, model_id). `model` is None for a model built from config (`arch`: the
    embedded tiny model, or another preset of generator/pipelines/presets.py) or a local folder, which wins over `arch`;
    with an LDM arch, `model` is a CompVis checkpoint file (last.ckpt) loaded into that arch's shapes."""
    quiet_imports()
    if task not in TASKS:
        raise ValueError(f"task must be one of {', '.join(TASKS)}, got {task!r}")
    cls = _pipeline_class(task)
    if model is None:
        presets.check_arch(arch, task)
        with contextlib.redirect_stderr(io.StringIO()):
            pipe = presets.pipeline_class(arch, task)(**presets.build_components(arch, seed, task))
        model_id = model_id_of(arch, task)
    elif arch in presets.LDM_ARCHS:
        presets.check_arch(arch, task)
        if not Path(model).is_file():
            raise ModelLoadError(f"arch {arch!r} loads a CompVis checkpoint file (models/ldm/inpainting_big/"
                                 f"last.ckpt), got {str(model)!r}, which is not a file")
        from generator.pipelines.ldm import load_compvis_checkpoint  # heavy: diffusers' LDM parts, for a checkpoint

        with contextlib.redirect_stderr(io.StringIO()):
            pipe = load_compvis_checkpoint(str(model), arch)
        model_id = str(Path(model).resolve())
    else:
        folder = Path(model)
        if not (folder / "model_index.json").is_file():
            hint = "; a CompVis .ckpt file needs --arch ldm-inpaint" if folder.is_file() else ""
            raise ModelLoadError(
                f"model folder {str(model)!r} is not a local diffusers pipeline "
                f"(expected a folder holding model_index.json, as written by save_pretrained){hint}"
            )
        try:
            with contextlib.redirect_stderr(io.StringIO()):
                pipe = cls.from_pretrained(
                    str(folder), local_files_only=True, safety_checker=None,
                    requires_safety_checker=False, torch_dtype=dtype,
                )
        except Exception as exc:  # any loader failure becomes one clear line
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ModelLoadError(f"could not load model folder {str(model)!r} for {task}: {first}") from None
        expected = 4 if task == "txt2img" else 9
        if pipe.unet.config.in_channels != expected:
            raise ModelLoadError(
                f"model folder {str(model)!r} has a UNet with {pipe.unet.config.in_channels} input "
                f"channels; task {task!r} needs {expected}"
            )
        model_id = str(folder.resolve())
        # Every mode denoises with the same DDIM schedule (stream mode's update is DDIM's).
        from diffusers import DDIMScheduler

        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    pipe = pipe.to(device=device, dtype=dtype)
    pipe.set_progress_bar_config(disable=True)
    return pipe, model_id


def set_vae_slicing(pipe, on: bool) -> None:
    """Decode one image at a time (on) or the whole batch at once (off): the pipeline's own switch where it
    has one (enable_vae_slicing: the LDM pipeline, whose VQ model does not slice), else the VAE's (diffusers'
    AutoencoderKL.enable_slicing)."""
    owner, name = (pipe, "vae_slicing") if hasattr(pipe, "enable_vae_slicing") else (pipe.vae, "slicing")
    getattr(owner, f"{'enable' if on else 'disable'}_{name}")()


def weight_bytes(module) -> int:
    """Bytes of a module's weights (and buffers): what one forward call reads at least once."""
    return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))


def family(pipe) -> str:
    """The denoiser's family (run `family`): 'unet', a UNet of convolutions with attention at some levels, or
    'transformer', patches through layers at one sequence length (arXiv 2312.14385 compares the two)."""
    return "unet" if getattr(pipe, "unet", None) is not None else "transformer"


def count_params(pipe) -> int:
    """Parameters of the UNet (or transformer), text encoder(s) and VAE together (SDXL has a second text encoder)."""
    return sum(p.numel() for name in ("unet", "transformer", "text_encoder", "text_encoder_2", "vae")
               if getattr(pipe, name, None) is not None for p in getattr(pipe, name).parameters())

"""Settings of one sweep: the SweepConfig dataclass, its choices and its checks.

Each field is one flag of `python -m generator sweep`; a bad value raises ValueError
that quotes it. What the sweep runs, in which order, is generator/plan.py's decision.
"""

from __future__ import annotations

from dataclasses import dataclass

from settings import OUTPUT_DIR, SPOOL_DIR, setting

from .batching import MODES

SAVE_IMAGES = ("first", "all", "none")
DEVICES = ("cpu", "cuda", "mps")
DTYPES = ("float32", "float16", "bfloat16")
CFG_SETTINGS = ("off", "full")


@dataclass(frozen=True)
class SweepConfig:
    """Settings of one sweep; each CLI flag of `python -m generator sweep` sets one field."""

    batch_sizes: tuple[int, ...] = setting(
        "Images per job; one job (one spool file) per batch execution.", (1, 2, 4, 8, 16))
    resolutions: tuple[int, ...] = setting(
        "Square image sizes in pixels, one run each; the latent is 8x smaller per side.", (64, 256))
    height: int | None = setting("Image height in pixels; with width, replaces `resolutions` by one size.", None)
    width: int | None = setting("Image width in pixels; defaults to height when only height is given.", None)
    mode: tuple[str, ...] = setting(
        "Execution modes, one run each: sequential (batch-1 calls), static (one call), stream (Stream Batch).", ("static",))
    steps: int = setting("Denoising steps per image (the same in every mode).", 10)
    repeats: int = setting("Measured jobs per batch size; the dashboard quotes their median.", 3)
    warmup: int = setting("Warm-up jobs per batch size before the measured ones: recorded, flagged, excluded.", 1)
    task: str = setting(
        "txt2img or inpaint (inpaint uses a generated picture and a centre mask unless --mask is given).", "txt2img")
    guidance: float = setting(
        "Classifier-free guidance scale for runs with CFG on; above 1 the UNet runs on twice the batch.", 1.0)
    classifier_free_guidance: tuple[str, ...] | None = setting(
        "CFG settings, one run each: off (guidance 1) or full (--guidance); default: full if guidance > 1.", None,
        flag="--cfg")
    seed: int = setting("Image i of every job is drawn with seed + i.", 0)
    model: str | None = setting(
        "A local diffusers pipeline folder; None runs the embedded tiny model (offline).", None)
    device: str = setting("Where PyTorch runs: cpu, cuda or mps.", "cpu")
    dtype: str = setting("Weights and activations: float32, float16 or bfloat16.", "float32")
    spool: str = setting("Spool folder the collector ingests from.", env=SPOOL_DIR)
    out: str = setting("Folder for generated PNG files.", env=OUTPUT_DIR)
    save_images: str = setting(
        "Which jobs keep their images: first measured job per batch size, all, or none.", "first")
    prompt: str | None = setting("One prompt for every image; None cycles through a few built-in prompts.", None)
    mask: str | None = setting(
        "Inpainting masks: one image file, or a folder of them used one per image in turn.", None)
    profile_ops: bool = setting(
        "One extra profiled job per batch size (torch.profiler): UNet time by operator category.", False)
    sample_hz: float = setting("Telemetry samples per second during each run (0 turns the sampler off).", 10.0)
    until_oom: bool = setting("After the listed batch sizes, keep doubling until a job runs out of memory.", False)
    max_batch: int = setting("The largest batch size --until-oom tries.", 4096)

    def __post_init__(self):
        # 1. Batch sizes and counts.
        if not self.batch_sizes:
            raise ValueError("batch sizes must list at least one size, got none")
        for b in self.batch_sizes:
            if b < 1:
                raise ValueError(f"batch size must be >= 1, got {b}")
        for name in ("steps", "repeats", "max_batch"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', ' ')} must be >= 1, got {getattr(self, name)}")
        if self.warmup < 0:
            raise ValueError(f"warmup must be >= 0, got {self.warmup}")
        # 2. Sizes: multiples of 8, the VAE's downsampling factor.
        for name, value in [("height", self.height), ("width", self.width)] + [
            ("resolution", r) for r in self.resolutions
        ]:
            if value is not None and (value < 8 or value % 8):
                raise ValueError(f"{name} must be a positive multiple of 8, got {value}")
        if not self.resolutions and self.height is None and self.width is None:
            raise ValueError("resolutions must list at least one size, got none")
        # 3. Choices and ranges.
        from .models import TASKS

        for name, value, allowed in [("task", self.task, TASKS), ("device", self.device, DEVICES),
                                     ("dtype", self.dtype, DTYPES),
                                     ("save images", self.save_images, SAVE_IMAGES)]:
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if not self.mode:
            raise ValueError(f"mode must list at least one of {', '.join(MODES)}, got none")
        for m in self.mode:
            if m not in MODES:
                raise ValueError(f"mode must be one of {', '.join(MODES)}, got {m!r}")
        if "stream" in self.mode and self.task != "txt2img":
            raise ValueError(f"stream mode runs txt2img only, got task {self.task!r}")
        if self.guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {self.guidance}")
        for c in self.classifier_free_guidance or ():
            if c not in CFG_SETTINGS:
                raise ValueError(f"cfg must be one of {', '.join(CFG_SETTINGS)}, got {c!r}")
        if "full" in (self.classifier_free_guidance or ()) and self.guidance <= 1.0:
            raise ValueError(f"cfg full needs guidance > 1, got {self.guidance}")
        if self.sample_hz < 0:
            raise ValueError(f"sample hz must be >= 0, got {self.sample_hz}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.mask is not None and self.task != "inpaint":
            raise ValueError(f"mask is for task inpaint, got task {self.task!r}")

    def sizes(self) -> list[tuple[int, int]]:
        """(height, width) of each run."""
        if self.height is not None or self.width is not None:
            h = self.height if self.height is not None else self.width
            w = self.width if self.width is not None else self.height
            return [(h, w)]
        return [(r, r) for r in self.resolutions]

    def guidances(self) -> list[float]:
        """The guidance scale of each CFG setting: off runs at 1 (one UNet pass per row)."""
        settings = self.classifier_free_guidance or (("full",) if self.guidance > 1.0 else ("off",))
        return [self.guidance if c == "full" else 1.0 for c in settings]

    def jobs_total(self) -> int:
        """Jobs of the listed batch sizes (the progress bar's total); --until-oom may run more."""
        per_batch = self.warmup + self.repeats + (1 if self.profile_ops else 0)
        runs = len(self.sizes()) * len(self.mode) * len(self.guidances())
        return runs * len(self.batch_sizes) * per_batch

"""Settings of one sweep: the SweepConfig dataclass, its choices and its checks.

Each field is one flag of `python -m generator sweep`; a bad value raises ValueError
that quotes it. What the sweep runs, in which order, is generator/sweep/plan.py's decision;
when warm-up has settled and when rounds stop, generator/sweep/rounds.py's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from generator.pipelines import attention
from generator.pipelines.batching import MODES
from generator.pipelines.parts import DEVICES, DTYPES, TASKS
from generator.pipelines.presets import PIXART_ARCHS, check_arch
from settings import OUTPUT_DIR, SPOOL_DIR, setting

SAVE_IMAGES = ("first", "all", "none")
CFG_SETTINGS = ("off", "full")
VAE_SLICING = ("off", "on")
RAY_SPOOL = ("driver", "shared")
AUTO = "auto"  # --repeats auto: measured rounds until the interval target or a cap


@dataclass(frozen=True)
class SweepConfig:
    """Settings of one sweep; each CLI flag of `python -m generator sweep` sets one field."""

    batch_sizes: tuple[int, ...] = setting(
        "Images per job; one job (one spool file) per batch execution. The default steps finely enough for a "
        "bend (a knee) at 4 or at 8 to be placed.", (1, 2, 3, 4, 6, 8, 12, 16))
    resolutions: tuple[int, ...] = setting(
        "Square image sizes in pixels, one run each; the latent is 8x smaller per side.", (64, 256))
    height: int | None = setting("Image height in pixels; with width, replaces `resolutions` by one size.", None)
    width: int | None = setting("Image width in pixels; defaults to height when only height is given.", None)
    mode: tuple[str, ...] = setting(
        "Execution modes, one run each: sequential (batch-1 calls), static (one call), stream (Stream Batch).", ("static",))
    steps: tuple[int, ...] = setting(
        "Denoising steps per image, one run each (the same in every mode): fewer steps is the other trade for "
        "speed beside batching, and unlike batching it changes the pictures.", (10,))
    # Read as text by the flag builder (str first), made an int or AUTO by __post_init__.
    repeats: str | int = setting(
        "Measured rounds per size; each round runs every batch size of every run of the size once, in a rotating "
        "order. A whole number, or auto: rounds until every batch size's 95% interval of its median is within "
        "--target, or --max-rounds or --max-seconds is reached. The dashboard quotes the medians.", AUTO)
    warmup: int = setting(
        "Warm-up jobs per batch size and run, at least (0: none); more follow until two in a row differ by less "
        "than --settle, up to --warmup-max. Recorded, flagged, excluded.", 1)
    warmup_max: int = setting("The most warm-up jobs per batch size and run, settled or not.", 5)
    settle: float = setting(
        "Warm-up has settled when two successive warm-up jobs differ by less than this fraction of the shorter "
        "(0.05: 5%).", 0.05)
    target: float = setting(
        "With --repeats auto: rounds stop once every batch size's 95% interval half-width is within this fraction "
        "of its median (0.03: ±3%); checked from the third round on.", 0.03)
    max_rounds: int = setting("With --repeats auto: the most measured rounds per size.", 20)
    max_seconds: float = setting(
        "With --repeats auto: the most seconds of measured rounds per size; a round that would end past it, at "
        "the mean round time so far, is not started.", 50.0)
    task: str = setting(
        "txt2img or inpaint (inpaint uses a generated picture and a centre mask unless --mask is given).", "txt2img")
    guidance: float = setting(
        "Classifier-free guidance scale for runs with CFG on; above 1 the UNet runs on twice the batch.", 1.0)
    classifier_free_guidance: tuple[str, ...] | None = setting(
        "CFG settings, one run each: off (guidance 1) or full (--guidance); default: full if guidance > 1.", None,
        flag="--cfg")
    vae_slicing: tuple[str, ...] = setting(
        "VAE slicing settings, one run each: off (decode the batch in one call) or on (one image at a time, "
        "diffusers' enable_slicing: less decode memory, the same pictures).", ("off",))
    attention: tuple[str, ...] = setting(
        "Attention kernels, one run each, through PyTorch's kernel selection: sdpa (PyTorch's own pick: a fused "
        "kernel where one fits), flash, efficient, cudnn (CUDA's fused kernels; a CPU offers flash) or math (the plain "
        "path: the attention matrix written out). The Operators page compares the fused kernel with math.", ("sdpa",))
    seed: int = setting("Image i of every job is drawn with seed + i.", 0)
    model: str | None = setting(
        "A local diffusers pipeline folder (with --arch ldm-inpaint: the CompVis release's last.ckpt); None runs "
        "the model --arch builds (offline).", None)
    arch: str = setting(
        "Model built from config, offline, when no --model is given (--model wins): tiny (the embedded model, with "
        "the weights trained here: it draws captions like 'a red circle on a blue background'), sd15, sd15-inpaint "
        "(task inpaint), sdxl, ldm-inpaint (CompVis inpainting_big: task inpaint, no text, no CFG), ldm-inpaint-tiny "
        "(its shape at toy widths, trained here too), or tiny-random and ldm-inpaint-tiny-random (the two toy "
        "models with random weights: the same cost, noise), pixart (PixArt-α XL-2's transformer, 611 M parameters, with a "
        "thin stand-in for its T5-XXL text encoder) or pixart-tiny (that family at toy widths). sd15, sdxl, "
        "ldm-inpaint and pixart have the real model's "
        "shapes with seeded random weights, so they time like it but draw noise.", "tiny")
    device: str = setting("Where PyTorch runs: cpu, cuda or mps.", "cpu")
    dtype: str = setting("Weights and activations: float32, float16 or bfloat16.", "float32")
    threads: int | None = setting(
        "PyTorch CPU threads for the sweep's jobs (torch.set_num_threads, restored after the sweep); None: "
        "PyTorch's default, one per core. On a shared machine 1 keeps a job's time steadier (a second thread waits "
        "on one the OS took away). With --ray each worker's share of the cluster's CPUs sets it instead.", None)
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
    ray: str | None = setting(
        "Run the jobs on Ray workers: a cluster's address (host:port or ray://host:port), auto (the cluster "
        "`ray start --head` began on this machine) or local (start Ray here); None runs them in this process.",
        None)
    workers: int | None = setting(
        "With --ray: workers at once, each loading the pipeline once and running whole runs (one per GPU with "
        "--device cuda; on CPU the cluster's CPUs are split evenly among them). None: one per GPU, or per CPU.",
        None)
    replicas: tuple[int, ...] | None = setting(
        "With --ray: a replica sweep instead: the same jobs on each of N workers at once, for each N listed "
        "(e.g. 1,2), every batch size started on all N together; the runs record N, and the dashboard adds their "
        "images/s. On CPU each level splits the cluster's CPUs evenly among its N workers.", None)
    ray_spool: str = setting(
        "With --ray, where the records go: driver (each worker hands its spool files to this process, which "
        "writes them to --spool) or shared (each worker writes them to --spool itself: a folder every node sees "
        "at the same path).", "driver")

    def __post_init__(self):
        # 1. Batch sizes and counts; repeats as a whole number or AUTO.
        if not self.batch_sizes:
            raise ValueError("batch sizes must list at least one size, got none")
        for b in self.batch_sizes:
            if b < 1:
                raise ValueError(f"batch size must be >= 1, got {b}")
        object.__setattr__(self, "repeats", parse_repeats(self.repeats))
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {self.threads}")
        if isinstance(self.steps, int):
            object.__setattr__(self, "steps", (self.steps,))
        if not self.steps or any(isinstance(n, bool) or not isinstance(n, int) or n < 1 for n in self.steps):
            raise ValueError(f"steps must list whole numbers >= 1, got {self.steps!r}")
        for name in ("max_batch", "max_rounds"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name.replace('_', ' ')} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup", "warmup_max"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name.replace('_', ' ')} must be >= 0, got {getattr(self, name)}")
        for name, value in [("settle", self.settle), ("target", self.target)]:
            if not 0 < value < 1:
                raise ValueError(f"{name} must be a fraction between 0 and 1 (0.05 is 5%), got {value}")
        if self.max_seconds <= 0:
            raise ValueError(f"max seconds must be > 0, got {self.max_seconds}")
        # 2. Sizes: multiples of 8, the VAE's downsampling factor.
        for name, value in [("height", self.height), ("width", self.width)] + [
            ("resolution", r) for r in self.resolutions
        ]:
            if value is not None and (value < 8 or value % 8):
                raise ValueError(f"{name} must be a positive multiple of 8, got {value}")
        if not self.resolutions and self.height is None and self.width is None:
            raise ValueError("resolutions must list at least one size, got none")
        # 3. Choices and ranges.
        check_arch(self.arch)  # names a bad preset and the allowed ones, --model given or not

        for name, value, allowed in [("task", self.task, TASKS), ("device", self.device, DEVICES),
                                     ("dtype", self.dtype, DTYPES),
                                     ("save images", self.save_images, SAVE_IMAGES)]:
            if value not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}, got {value!r}")
        if self.arch.startswith("ldm-"):  # no text encoder: stream mode and CFG need one
            if "stream" in self.mode or "full" in (self.classifier_free_guidance or ()) or (
                    self.classifier_free_guidance is None and self.guidance > 1.0):
                raise ValueError(f"arch {self.arch!r} has no text encoder: it runs sequential and static modes "
                                 "without CFG, got " + ("mode 'stream'" if "stream" in self.mode
                                                        else f"guidance {self.guidance}"))
        if self.model is None:  # the preset builds this task (--model wins over --arch)
            check_arch(self.arch, self.task)
            if self.arch in PIXART_ARCHS and "stream" in self.mode:
                raise ValueError(f"arch {self.arch!r} runs sequential and static modes (Stream Batch drives a UNet), "
                                 "got mode 'stream'")
            if self.arch == "sdxl" and ("stream" in self.mode or self.profile_ops):
                raise ValueError("arch 'sdxl' runs sequential and static modes without --profile-ops, got "
                                 + ("mode 'stream'" if "stream" in self.mode else "--profile-ops"))
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
        if isinstance(self.attention, str):
            object.__setattr__(self, "attention", tuple(self.attention.split(",")))
        attention.check(tuple(self.attention), self.device)
        if not self.vae_slicing:
            raise ValueError(f"vae slicing must list at least one of {', '.join(VAE_SLICING)}, got none")
        for v in self.vae_slicing:
            if v not in VAE_SLICING:
                raise ValueError(f"vae slicing must be one of {', '.join(VAE_SLICING)}, got {v!r}")
        if self.sample_hz < 0:
            raise ValueError(f"sample hz must be >= 0, got {self.sample_hz}")
        if self.seed < 0:
            raise ValueError(f"seed must be >= 0, got {self.seed}")
        if self.mask is not None and self.task != "inpaint":
            raise ValueError(f"mask is for task inpaint, got task {self.task!r}")
        # 4. Ray: how many workers, and where their records go.
        self._check_ray()

    def _check_ray(self) -> None:
        if self.ray_spool not in RAY_SPOOL:
            raise ValueError(f"ray spool must be one of {', '.join(RAY_SPOOL)}, got {self.ray_spool!r}")
        if self.ray is None:
            for name, given in [("workers", self.workers is not None), ("replicas", self.replicas is not None),
                                ("ray spool", self.ray_spool != "driver")]:
                if given:
                    raise ValueError(f"{name} needs --ray (an address, auto or local), got "
                                     f"--{name.replace(' ', '-')} without it")
            return
        if not self.ray.strip():
            raise ValueError("ray must be an address (host:port), auto or local, got ''")
        if self.threads is not None:
            raise ValueError(f"threads is set by each Ray worker's share of the cluster's CPUs, got --threads "
                             f"{self.threads} with --ray")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be >= 1, got {self.workers}")
        if self.replicas is not None:
            if not self.replicas:
                raise ValueError("replicas must list at least one worker count, got none")
            for n in self.replicas:
                if n < 1:
                    raise ValueError(f"replicas must be >= 1 each, got {n}")
            if self.workers is not None:
                raise ValueError(f"replicas sets the workers of each level, got --workers {self.workers} too")
            if self.until_oom:
                raise ValueError("replicas runs the listed batch sizes, got --until-oom too")

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

    @property
    def auto(self) -> bool:
        """--repeats auto: the rounds stop at the interval target or a cap, decided as they go."""
        return self.repeats == AUTO

    def rounds(self) -> int:
        """The most measured rounds a size runs: --repeats, or with auto --max-rounds."""
        return self.max_rounds if self.auto else self.repeats

    def jobs_total(self) -> int:
        """Jobs of the listed batch sizes with the fewest warm-ups and the most rounds (the progress bar's
        first total); settling warm-ups and --until-oom may run more, auto and out-of-memory fewer."""
        per_batch = self.warmup + self.rounds() + (1 if self.profile_ops else 0)
        runs = (len(self.sizes()) * len(self.mode) * len(self.guidances()) * len(self.vae_slicing) * len(self.steps)
                * len(self.attention))
        return runs * len(self.batch_sizes) * per_batch * sum(self.replicas or (1,))


def parse_repeats(value) -> int | str:
    """--repeats as given (an int, or text from the flag): a whole number >= 1, or AUTO."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == AUTO:
            return AUTO
        if re.fullmatch(r"[+-]?\d+", text):
            value = int(text)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"repeats must be a whole number >= 1 or {AUTO!r}, got {value!r}")
    if value < 1:
        raise ValueError(f"repeats must be >= 1, got {value} (or {AUTO!r})")
    return value

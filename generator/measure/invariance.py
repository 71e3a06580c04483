"""Did batching change my images? Each image against the same seed elsewhere in the same sweep.

Image i of a job is drawn from seed + i alone (pipelines.stream.generators), so in exact arithmetic
it is the same picture whatever the batch size, the mode or the VAE slicing. In floating
point it need not be: a kernel may pick another algorithm, or sum in another order, for
another batch shape. This module measures how far apart they come out, on the 8-bit
pixels a person sees:

- against batch 1: image i of a job of batch B (seed s) and the image of seed s in the
  first job of batch 1 of the same run (`against` = 'batch_1');
- against the other modes: image i and image i of the first job of the same batch size in
  each run of the same size and guidance that differs only in its mode ('mode'), only
  in its VAE slicing ('vae_slicing'), or only in its attention kernel ('attention').

A reference is the first job of its (run, batch size) that succeeded; a job is compared
with every reference already there when it ends (the earlier of two runs is compared when
the later one's job ends), never with itself. `compare` is the arithmetic.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from generator.measure import quality

AGAINST = ("batch_1", "mode", "vae_slicing", "attention")


def pixels(image) -> np.ndarray:
    """A PIL image (or an array) as an (H, W, C) uint8 array."""
    return np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, dtype=np.uint8)


def compare(a: np.ndarray, b: np.ndarray) -> dict:
    """How far two 8-bit pictures differ: the largest and the mean absolute difference of a pixel channel
    (0-255), and the PSNR in dB (None for identical pictures, whose PSNR is infinite)."""
    if a.shape != b.shape:
        raise ValueError(f"pictures to compare must have one shape, got {a.shape} and {b.shape}")
    diff = np.abs(a.astype(np.int16) - b.astype(np.int16))
    mse = float(np.mean(diff.astype(np.float64) ** 2))
    return {"max_abs_diff": int(diff.max()), "mean_abs_diff": float(diff.mean()),
            "psnr_db": None if mse == 0 else 10.0 * math.log10(255.0 ** 2 / mse)}


@dataclass
class _Reference:
    job_id: str
    seeds: list[int]
    images: list[np.ndarray]
    shown: list  # what each picture shows (quality.read), None where its prompt is not a caption


def _same_shown(a, b) -> bool | None:
    """Whether two pictures show the same colours and shape (None unless both prompts are captions)."""
    if a is None or b is None:
        return None
    return (a.colour, a.shape, a.background) == (b.colour, b.shape, b.background)


def _differs_only_in(run, other) -> str | None:
    """What sets two runs of one size apart when it is one thing: 'mode', 'vae_slicing' or 'attention'; else None."""
    if (run.guidance != other.guidance or (run.height, run.width) != (other.height, other.width)
            or run.steps != other.steps):
        return None
    apart = [name for name, differs in [("mode", run.mode != other.mode),
                                        ("vae_slicing", run.vae_slicing != other.vae_slicing),
                                        ("attention", run.attention != other.attention)] if differs]
    return apart[0] if len(apart) == 1 else None


@dataclass
class References:
    """The reference pictures of the runs of one size: the first successful job of each (run, batch size)."""

    first: dict = field(default_factory=dict)  # (run, batch size) -> _Reference

    def check(self, run, batch_size: int, job_id: str, seeds: list[int], images: list,
              prompts: list[str] | None = None) -> list[dict]:
        """Compare a finished job's images with the references there are; keep them if they are the first of
        their (run, batch size). Returns one row per comparison (image_check fields but the job id): the pixels,
        and (`same_shown`) whether both show the same colours and shape, where `prompts` are given (the caller
        gives them where the picture is drawn from its prompt: txt2img) and are captions of the shapes data set."""
        arrays = [pixels(img) for img in images]
        if not arrays or len(arrays) != len(seeds):  # a failed job: nothing to compare, nothing to keep
            return []
        reads = [quality.read(a, p) if p is not None else None
                 for a, p in zip(arrays, prompts or [None] * len(arrays))]
        rows = []
        # 1. Against batch 1 of the same run, seed by seed.
        ref = self.first.get((run, 1))
        if ref is not None and ref.job_id != job_id:
            for index, seed in enumerate(seeds):
                if seed in ref.seeds:
                    j = ref.seeds.index(seed)
                    rows.append(_row(index, seed, "batch_1", ref, j, compare(arrays[index], ref.images[j]),
                                     _same_shown(reads[index], ref.shown[j])))
        # 2. Against the same batch size in the runs that differ only in mode, VAE slicing or attention kernel.
        for (other, b), ref in self.first.items():
            against = _differs_only_in(run, other) if b == batch_size else None
            if against is None:
                continue
            for index, seed in enumerate(seeds[: len(ref.seeds)]):
                if ref.seeds[index] == seed:
                    rows.append(_row(index, seed, against, ref, index, compare(arrays[index], ref.images[index]),
                                     _same_shown(reads[index], ref.shown[index])))
        # 3. The first successful job of its (run, batch size) becomes a reference.
        self.first.setdefault((run, batch_size), _Reference(job_id, list(seeds), arrays, reads))
        return rows


def _row(index: int, seed: int, against: str, ref: _Reference, ref_index: int, diff: dict,
         same_shown: bool | None) -> dict:
    return {"index": index, "seed": seed, "against": against, "ref_job_id": ref.job_id, "ref_index": ref_index,
            **diff, "same_shown": same_shown}

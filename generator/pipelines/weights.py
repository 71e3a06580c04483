"""The shipped weights of the embedded models: where they lie, what each file holds, and loading them.

`python -m generator.train` writes them (generator/train/); the files are in the repository, so a fresh clone
draws offline. Each file holds float16 tensors named `<part>.<parameter>` and, as metadata, the first stage's
latent scale, what the UNet predicts (PREDICTION) and how the weights were trained. A run records the file's SHA-256 (run `weights_sha256`) so a
figure can be traced to the weights it was measured with.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch
from safetensors import safe_open

from generator.pipelines.parts import ModelLoadError

FOLDER = Path(__file__).resolve().parent / "trained"
# File name -> {part in the file: the trained module it holds (generator/train/loop.py's OUTPUTS names)}.
FILES = {
    "embedded-shapes": {"vae": "vae", "text_encoder": "text_encoder", "unet": "unet", "inpaint_unet": "inpaint_unet"},
    "ldm-inpaint-tiny-shapes": {"vae": "vq", "unet": "ldm_unet"},
}
# What each file's UNet was trained to predict (diffusers' prediction_type; generator/train/stages.py).
PREDICTION = {"embedded-shapes": "epsilon", "ldm-inpaint-tiny-shapes": "v_prediction"}


@dataclass(frozen=True)
class Shipped:
    """One weights file read: its tensors by part, the first stage's latent scale, what its UNet predicts (the
    scheduler's prediction_type: epsilon or v_prediction), its hash and its story."""

    name: str
    parts: dict
    scaling_factor: float
    prediction_type: str
    sha256: str
    training: dict

    def load_into(self, part: str, module: torch.nn.Module) -> torch.nn.Module:
        """Load `part`'s tensors into `module` (float32), every tensor present and of its shape."""
        try:
            module.load_state_dict({k: v.float() for k, v in self.parts[part].items()}, strict=True)
        except RuntimeError as exc:
            raise ModelLoadError(f"the shipped weights {self.name}.safetensors do not fit the {part} built from "
                                 f"config ({str(exc).splitlines()[0]}); retrain with python -m generator.train") \
                from None
        return module


def path_of(name: str) -> Path:
    return FOLDER / f"{name}.safetensors"


@lru_cache(maxsize=4)
def read(name: str) -> Shipped:
    """Read a shipped weights file once per process (the pipelines build from it many times)."""
    path = path_of(name)
    if not path.is_file():
        raise ModelLoadError(f"the shipped weights {path} are missing; retrain them with python -m generator.train "
                             "or use the random-weight model (--arch tiny-random)")
    parts: dict = {}
    with safe_open(str(path), framework="pt") as f:
        meta = f.metadata() or {}
        for key in f.keys():
            part, _, rest = key.partition(".")
            parts.setdefault(part, {})[rest] = f.get_tensor(key)
    return Shipped(name, parts, float(meta.get("scaling_factor", 1.0)), meta.get("prediction_type", "epsilon"),
                   sha256(path), json.loads(meta.get("training", "{}")))


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()

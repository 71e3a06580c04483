"""What the pipeline modules share, below all of them: the tasks, devices and dtypes a pipeline runs with,
the error a bad model raises, the quiet import of diffusers/transformers, and the tokenizer and DDIM schedule
every built model uses. (models.py, presets.py and ldm.py each import this, none of them each other back.)"""

from __future__ import annotations

import contextlib
import io
import os

TASKS = ("txt2img", "inpaint")
DEVICES = ("cpu", "cuda", "mps")
DTYPES = ("float32", "float16", "bfloat16")


def quiet_imports():
    """Import diffusers/transformers with their import-time chatter silenced."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
    os.environ.setdefault("DIFFUSERS_VERBOSITY", "error")
    with contextlib.redirect_stderr(io.StringIO()):
        import diffusers  # noqa: F401
        import transformers  # noqa: F401


class ModelLoadError(ValueError):
    """A model folder that is missing or is not a diffusers pipeline."""


# 1. The tokenizer the project ships: a byte-level CLIP vocabulary, no merges.
def build_tokenizer(max_length: int = 77):
    """Byte-level CLIP tokenizer padding to `max_length` tokens (77: CLIP's; 120: PixArt's T5 length)."""
    from tokenizers import pre_tokenizers
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in sorted(pre_tokenizers.ByteLevel.alphabet()):
        for token in (ch, ch + "</w>"):
            vocab.setdefault(token, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=[], model_max_length=max_length)


def ddim_scheduler():
    """The DDIM schedule of SD 1.5 (scaled-linear betas 0.00085..0.012), shared by every built model."""
    quiet_imports()
    from diffusers import DDIMScheduler

    return DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )

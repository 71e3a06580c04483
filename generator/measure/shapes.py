"""The shapes data set: the pictures the embedded models are trained on, made in code from a seed.

Each picture is 64 x 64: one shape (circle, square or triangle) in one named colour of the palette, on a
background of another, at a size and position drawn from the seed, with its caption ("a red circle on a blue
background"). The shape keeps clear of a border ring of MARGIN pixels, so the ring shows the background alone
(measure/quality.py reads the background there). Shapes are drawn at 4x and downsampled, so edges are smooth.
Nothing is downloaded: the same seed makes the same pictures on any machine.

Some captions are held out of training (HELD_OUT): each is a (colour, shape, background) whose colour pair the
model has seen with the other shapes, never with this one; the quality test asks for those.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

SIZE = 64
MARGIN = 6  # pixels of pure background at every edge
# Well apart in RGB, so the nearest palette colour of a drawn region is not a coin toss.
PALETTE = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (240, 210, 40),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
COLOURS = tuple(PALETTE)
SHAPES = ("circle", "square", "triangle")
CAPTION = re.compile(r"^an? (?P<colour>\w+) (?P<shape>\w+) on an? (?P<background>\w+) background$")


@dataclass(frozen=True)
class Caption:
    """What one picture shows: its shape, the shape's colour and the background's colour."""

    colour: str
    shape: str
    background: str

    @property
    def text(self) -> str:
        return f"a {self.colour} {self.shape} on a {self.background} background"


def parse(prompt: str) -> Caption | None:
    """The caption a prompt asks for, or None when it is not one the data set speaks (any other prompt)."""
    m = CAPTION.match(prompt.strip().lower())
    if not m or m["colour"] not in PALETTE or m["background"] not in PALETTE or m["shape"] not in SHAPES:
        return None
    return Caption(m["colour"], m["shape"], m["background"])


ALL_CAPTIONS = tuple(Caption(c, s, b) for c in COLOURS for b in COLOURS if b != c for s in SHAPES)
# One shape for each of 12 colour pairs: each colour on the next one and on the one three along the palette, so
# every colour is asked for twice as shape and twice as background; pair i holds out shape i mod 3, and the pair is
# seen in training with the two other shapes.
_PAIRS = [(COLOURS[k], COLOURS[(k + step) % len(COLOURS)]) for step in (1, 3) for k in range(len(COLOURS))]
HELD_OUT = tuple(Caption(c, SHAPES[i % len(SHAPES)], b) for i, (c, b) in enumerate(_PAIRS))
TRAIN_CAPTIONS = tuple(c for c in ALL_CAPTIONS if c not in HELD_OUT)


def draw(caption: Caption, rng: np.random.Generator, size: int = SIZE) -> Image.Image:
    """One picture of `caption`: the shape's size and position from `rng`, inside the margin."""
    scale = 4
    big = size * scale
    margin = MARGIN * size // SIZE
    side = rng.uniform(0.3, 0.6) * size  # the shape's extent, 19-38 px at 64
    x0 = rng.uniform(margin, size - margin - side)
    y0 = rng.uniform(margin, size - margin - side)
    box = [v * scale for v in (x0, y0, x0 + side, y0 + side)]
    img = Image.new("RGB", (big, big), PALETTE[caption.background])
    pen = ImageDraw.Draw(img)
    fill = PALETTE[caption.colour]
    if caption.shape == "circle":
        pen.ellipse(box, fill=fill)
    elif caption.shape == "square":
        pen.rectangle(box, fill=fill)
    else:  # an upright triangle in the box
        pen.polygon([((box[0] + box[2]) / 2, box[1]), (box[2], box[3]), (box[0], box[3])], fill=fill)
    return img.resize((size, size), Image.Resampling.LANCZOS)


def sample(n: int, seed: int, captions: tuple[Caption, ...] = TRAIN_CAPTIONS) -> tuple[np.ndarray, list[Caption]]:
    """`n` pictures (uint8, n x SIZE x SIZE x 3) and their captions, drawn uniformly from `captions`."""
    rng = np.random.default_rng(seed)
    picks = [captions[i] for i in rng.integers(0, len(captions), n)]
    return np.stack([np.asarray(draw(c, rng)) for c in picks]), picks


def random_masks(n: int, seed: int, size: int = SIZE) -> np.ndarray:
    """`n` inpainting masks (bool, n x size x size, True = repaint): one rectangle or ellipse each, covering
    a tenth to a half of the picture."""
    rng = np.random.default_rng(seed)
    out = np.zeros((n, size, size), bool)
    for i in range(n):
        w, h = (rng.uniform(0.3, 0.7, 2) * size).astype(int)
        x, y = rng.integers(0, size - w + 1), rng.integers(0, size - h + 1)
        mask = Image.new("L", (size, size), 0)
        pen = ImageDraw.Draw(mask)
        (pen.rectangle if rng.random() < 0.5 else pen.ellipse)((x, y, x + w - 1, y + h - 1), fill=255)
        out[i] = np.asarray(mask) > 127
    return out

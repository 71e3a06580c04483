"""Does a picture show what its prompt asked for? A reading of our own, for the shapes data set's captions.

For a prompt of the form "a red circle on a blue background" (measure/shapes.py):
- the background is the nearest palette colour to the median of the border ring (the data set keeps shapes
  off it);
- the shape's pixels are those inside the ring that stand clear of that background colour (RGB distance above
  FOREGROUND); its colour is the palette colour most of them are nearest to; fewer than MIN_AREA of the
  picture and there is no shape (colour None);
- the shape is read from where its pixels lie in their bounding box (1st to 99th percentile of rows and
  columns): an upright triangle has a third as many in its top half as in its bottom half (below 0.6 reads
  triangle), a square fills all of the box and a circle pi/4 of it (0.89 and above reads square).

The colour pair is right when both colours are the asked ones; the shape is right when its reading is the asked
shape. tests/test_quality.py checks the reading on the data set's own pictures.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generator.measure.shapes import MARGIN, PALETTE, SIZE, Caption, parse

FOREGROUND = 60.0  # RGB distance from the background colour that counts a pixel as the shape's
MIN_AREA = 0.02  # of the picture: below it, nothing is drawn
_RGB = np.array(list(PALETTE.values()), dtype=np.float64)
_NAMES = tuple(PALETTE)


@dataclass(frozen=True)
class Shown:
    """What a picture shows, read against what its prompt asked."""

    asked: Caption
    colour: str | None
    shape: str | None
    background: str

    @property
    def colours_right(self) -> bool:
        return self.colour == self.asked.colour and self.background == self.asked.background

    @property
    def shape_right(self) -> bool:
        return self.shape == self.asked.shape

    def fields(self) -> dict:
        """The image record's quality fields (spool contract: image shown_colour ... colours_right)."""
        return {"shown_colour": self.colour, "shown_shape": self.shape, "shown_background": self.background,
                "colours_right": self.colours_right, "shape_right": self.shape_right}


def nearest(rgb: np.ndarray) -> np.ndarray:
    """Index into the palette of the nearest colour to each RGB row (..., 3)."""
    d = ((rgb[..., None, :].astype(np.float64) - _RGB) ** 2).sum(-1)
    return d.argmin(-1)


def read(image, prompt: str) -> Shown | None:
    """What `image` (PIL or H x W x 3 uint8) shows against `prompt`; None for a prompt that is not a caption."""
    asked = parse(prompt)
    if asked is None:
        return None
    px = np.asarray(image.convert("RGB") if hasattr(image, "convert") else image, dtype=np.float64)
    h, w = px.shape[:2]
    ring = max(1, MARGIN * min(h, w) // SIZE // 2)
    # 1. The background: the border ring's median colour.
    border = np.concatenate([px[:ring].reshape(-1, 3), px[-ring:].reshape(-1, 3),
                             px[:, :ring].reshape(-1, 3), px[:, -ring:].reshape(-1, 3)])
    back_rgb = np.median(border, axis=0)
    background = _NAMES[int(nearest(back_rgb))]
    # 2. The shape's pixels: inside the ring, clear of the background's colour.
    inner = px[ring:h - ring, ring:w - ring]
    fore = np.sqrt(((inner - back_rgb) ** 2).sum(-1)) > FOREGROUND
    if fore.sum() < MIN_AREA * h * w:
        return Shown(asked, None, None, background)
    votes = np.bincount(nearest(inner[fore]), minlength=len(_NAMES))
    colour = int(votes.argmax())
    # 3. The shape: the pixels of that colour, and how much of their (robust) bounding box they fill.
    mine = fore & (nearest(inner) == colour)
    ys, xs = np.nonzero(mine)
    y0, y1 = np.percentile(ys, (1, 99))
    x0, x1 = np.percentile(xs, (1, 99))
    fill = mine.sum() / max((y1 - y0 + 1) * (x1 - x0 + 1), 1.0)
    middle = (y0 + y1) / 2
    top, bottom = (ys < middle).sum(), (ys >= middle).sum()
    shape = ("triangle" if top < 0.6 * bottom else "square" if fill >= 0.89 else "circle")
    return Shown(asked, _NAMES[colour], shape, background)

"""Job inputs: prompts, and the generated test image and mask for inpainting."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

DEFAULT_PROMPTS = (
    "a watercolor painting of a lighthouse at dawn",
    "a photo of a red fox in fresh snow",
    "an isometric drawing of a tiny workshop",
    "a bowl of ramen, studio lighting",
)


def prompts_for(batch_size: int, prompts: tuple[str, ...] = DEFAULT_PROMPTS) -> list[str]:
    """One prompt per image, cycling through the list."""
    return [prompts[i % len(prompts)] for i in range(batch_size)]


def test_image(height: int, width: int, seed: int = 0) -> Image.Image:
    """A deterministic picture to inpaint: a colour gradient with a few shapes."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x / max(width - 1, 1), y / max(height - 1, 1),
                    np.full_like(x, 0.5, dtype=float)], axis=-1)
    img = Image.fromarray((rgb * 255).astype(np.uint8))
    draw = ImageDraw.Draw(img)
    for _ in range(3):
        x0, y0 = rng.integers(0, width // 2), rng.integers(0, height // 2)
        x1, y1 = x0 + rng.integers(width // 8, width // 2), y0 + rng.integers(height // 8, height // 2)
        draw.ellipse((int(x0), int(y0), int(x1), int(y1)), fill=tuple(int(c) for c in rng.integers(0, 255, 3)))
    return img


def test_mask(height: int, width: int) -> Image.Image:
    """White (repaint) over the centre half of the picture, black (keep) elsewhere."""
    mask = Image.new("L", (width, height), 0)
    ImageDraw.Draw(mask).rectangle((width // 4, height // 4, 3 * width // 4 - 1, 3 * height // 4 - 1), fill=255)
    return mask

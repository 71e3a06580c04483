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


def load_masks(source: str, sizes: list[tuple[int, int]]) -> dict[tuple[int, int], list[Image.Image]]:
    """Masks from a file or a folder, checked against every run size before any work.

    Returns {(height, width): [masks]}; a folder's files are used in name order,
    one per image, cycling when a batch has more images than the folder has masks.
    """
    from pathlib import Path

    path = Path(source)
    if path.is_dir():
        files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith("."))
        if not files:
            raise ValueError(f"mask folder {source!r} holds no files; expected one image per mask")
    elif path.is_file():
        files = [path]
    else:
        raise ValueError(f"mask {source!r} does not exist; expected an image file or a folder of them")
    masks = []
    for f in files:
        try:
            with Image.open(f) as img:
                masks.append(img.convert("L"))
        except Exception as exc:  # PIL raises several kinds for unreadable files
            raise ValueError(f"mask {str(f)!r} cannot be read as an image: {exc}") from None
    for f, mask in zip(files, masks):
        for height, width in sizes:
            if mask.size != (width, height):
                raise ValueError(f"mask {str(f)!r} is {mask.size[0]}x{mask.size[1]} (width x height), "
                                 f"the images are {width}x{height}; a mask must match the image size")
    return {size: masks for size in sizes}

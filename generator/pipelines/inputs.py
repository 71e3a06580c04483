"""Job inputs: prompts, and the generated test image and mask for inpainting."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw

from generator.measure import shapes

# Captions the embedded model was not trained on (shapes.HELD_OUT): what it draws for them is what it learned,
# not what it saw. Any other model takes them as plain prompts.
DEFAULT_PROMPTS = tuple(c.text for c in shapes.HELD_OUT[:8])


def prompts_for(batch_size: int, prompts: tuple[str, ...] = DEFAULT_PROMPTS) -> list[str]:
    """One prompt per image, cycling through the list."""
    return [prompts[i % len(prompts)] for i in range(batch_size)]


def _test_draw(seed: int) -> tuple[shapes.Caption, np.random.Generator]:
    rng = np.random.default_rng(seed)
    return shapes.TRAIN_CAPTIONS[int(rng.integers(len(shapes.TRAIN_CAPTIONS)))], rng


def test_caption(seed: int = 0) -> shapes.Caption:
    """What test_image(..., seed) shows: the default prompt of an inpainting job (the hole is filled to match)."""
    return _test_draw(seed)[0]


def test_image(height: int, width: int, seed: int = 0) -> Image.Image:
    """A deterministic picture to inpaint: one of the shapes data set's (the embedded models were trained to
    fill holes in such pictures), drawn at the larger side and resized to height x width."""
    caption, rng = _test_draw(seed)
    side = max(height, width)
    return shapes.draw(caption, rng, side).resize((width, height), Image.Resampling.LANCZOS)


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

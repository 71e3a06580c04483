"""The shapes data set, the reading of what a picture shows, and the shipped weights drawing what they are asked.

The data set and the reading are checked on the data set's own pictures (whose truth is known); the shipped
models through the real diffusers pipelines, on captions they were not trained on.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from generator.measure import quality, shapes
from generator.pipelines import inputs, models, weights
from generator.sweep.config import SweepConfig


def test_the_data_set_is_made_from_its_seed_alone():
    a, caps_a = shapes.sample(6, seed=3)
    b, caps_b = shapes.sample(6, seed=3)
    c, _ = shapes.sample(6, seed=4)
    assert np.array_equal(a, b) and caps_a == caps_b
    assert not np.array_equal(a, c)
    assert a.shape == (6, 64, 64, 3) and a.dtype == np.uint8


def test_held_out_captions_are_never_trained_on_and_ask_for_every_colour_both_ways():
    assert not set(shapes.HELD_OUT) & set(shapes.TRAIN_CAPTIONS)
    assert {c.colour for c in shapes.HELD_OUT} == set(shapes.COLOURS)
    assert {c.background for c in shapes.HELD_OUT} == set(shapes.COLOURS)
    trained_pairs = {(c.colour, c.background) for c in shapes.TRAIN_CAPTIONS}
    assert all((c.colour, c.background) in trained_pairs for c in shapes.HELD_OUT)  # the pair, not the triple


def test_a_caption_reads_back_and_other_prompts_do_not():
    caption = shapes.Caption("red", "triangle", "blue")
    assert shapes.parse(caption.text) == caption
    assert shapes.parse("A Red triangle on a blue background ") == caption
    assert shapes.parse("a photo of a red fox in fresh snow") is None
    assert shapes.parse("a purple circle on a blue background") is None  # not in the palette
    assert quality.read(np.zeros((64, 64, 3), np.uint8), "a bowl of ramen") is None


def test_the_reading_gets_the_data_sets_own_pictures_right():
    pictures, captions = shapes.sample(300, seed=11, captions=shapes.ALL_CAPTIONS)
    reads = [quality.read(p, c.text) for p, c in zip(pictures, captions)]
    assert all(r.colours_right for r in reads)
    assert np.mean([r.shape_right for r in reads]) >= 0.98


def test_the_reading_says_when_the_colours_or_the_shape_are_wrong():
    rng = np.random.default_rng(0)
    picture = shapes.draw(shapes.Caption("green", "square", "black"), rng)
    wrong_colour = quality.read(picture, "a yellow square on a black background")
    assert (wrong_colour.colour, wrong_colour.background, wrong_colour.colours_right) == ("green", "black", False)
    wrong_shape = quality.read(picture, "a green circle on a black background")
    assert wrong_shape.colours_right and not wrong_shape.shape_right and wrong_shape.shape == "square"
    blank = quality.read(Image.new("RGB", (64, 64), shapes.PALETTE["white"]), "a red circle on a white background")
    assert blank.colour is None and blank.background == "white" and not blank.colours_right
    assert blank.fields() == {"shown_colour": None, "shown_shape": None, "shown_background": "white",
                              "colours_right": False, "shape_right": False}


def test_random_masks_cover_between_a_tenth_and_a_half():
    masks = shapes.random_masks(200, seed=1)
    share = masks.mean(axis=(1, 2))
    assert share.min() > 0.05 and share.max() < 0.5
    assert np.array_equal(masks, shapes.random_masks(200, seed=1))


# The shipped weights, through the pipelines a sweep runs.
HELD_OUT_PROMPTS = [c.text for c in shapes.HELD_OUT for _ in range(4)]  # 12 captions, 4 seeds each


def _draw(arch: str) -> list:
    defaults = SweepConfig()
    pipe, _ = models.load_pipeline("txt2img", arch=arch)
    gens = [torch.Generator().manual_seed(i) for i in range(len(HELD_OUT_PROMPTS))]
    out = pipe(HELD_OUT_PROMPTS, num_inference_steps=defaults.steps[0], guidance_scale=defaults.guidance,
               generator=gens, height=64, width=64).images
    return [quality.read(img, p) for img, p in zip(out, HELD_OUT_PROMPTS)]


def test_the_shipped_model_draws_the_asked_colours_and_random_weights_do_not():
    """At the sweep's default steps and guidance, on the 12 held-out captions x 4 seeds: the shipped weights get
    at least 80% of colour pairs right; the same architecture with random weights (tiny-random) far fewer."""
    trained = np.mean([r.colours_right for r in _draw("tiny")])
    untrained = np.mean([r.colours_right for r in _draw("tiny-random")])
    assert trained >= 0.8, trained
    assert untrained <= 0.2, untrained


def test_the_shipped_weights_are_named_and_hashed_on_the_run():
    assert models.model_kind(None, "tiny") == "embedded" and models.model_kind(None, "tiny-random") == "preset"
    assert models.model_id_of("tiny", "txt2img") == "embedded-tiny-shapes-txt2img"
    assert models.weights_sha256(None, "tiny") == weights.sha256(weights.path_of("embedded-shapes"))
    assert models.weights_sha256(None, "tiny-random") is None
    assert models.weights_sha256(None, "ldm-inpaint-tiny") == weights.sha256(weights.path_of("ldm-inpaint-tiny-shapes"))


def _hole_error(arch: str) -> float:
    """Mean absolute difference (0-255) inside the hole between the inpainted picture and the original."""
    pipe, _ = models.load_pipeline("inpaint", arch=arch)
    errors = []
    for seed in range(6):
        picture, mask = inputs.test_image(64, 64, seed), inputs.test_mask(64, 64)
        out = pipe(prompt=[""], image=picture, mask_image=mask, num_inference_steps=10, guidance_scale=1.0,
                   generator=[torch.Generator().manual_seed(seed)], height=64, width=64).images[0]
        hole = np.asarray(mask) > 127
        errors.append(np.abs(np.asarray(out, float) - np.asarray(picture, float))[hole].mean())
    return float(np.mean(errors))


def test_the_shipped_inpainting_model_fills_the_hole_with_the_picture_and_random_weights_do_not():
    """ldm-inpaint-tiny fills the centre of a shapes picture nearer what was there (33/255 mean error in the hole
    when trained; a shape mostly under the hole cannot be known); with random weights the hole is noise (101/255),
    more than twice as far off."""
    trained, untrained = _hole_error("ldm-inpaint-tiny"), _hole_error("ldm-inpaint-tiny-random")
    assert trained < 40 and untrained > 2 * trained, (trained, untrained)

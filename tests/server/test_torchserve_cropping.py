"""The image classifier's `Resize` then `CenterCrop` as one resampling of the box the crop keeps: the same
picture to within one level of 255, and the two steps as they are wherever one resampling cannot stand
in for them."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter
from torchvision import transforms
from ts.torch_handler.image_classifier import ImageClassifier

from modelplane.runtimes.torchserve.cropping import ResizedCenterCrop, resize_crops_in_one, with_resized_crop

STOCK = ImageClassifier.image_processing


def picture(width: int, height: int, mode: str, seed: int) -> Image.Image:
    """Random colours, blurred so that neighbouring pixels are alike, as a photograph's are."""
    pixels = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    return Image.fromarray(pixels).filter(ImageFilter.GaussianBlur(3)).convert(mode)


def resize_and_crop(processing: transforms.Compose, image: Image.Image) -> np.ndarray:
    first_two = processing.transforms[0]
    if isinstance(first_two, ResizedCenterCrop):
        return np.asarray(first_two(image), dtype=np.int64)
    return np.asarray(transforms.Compose(processing.transforms[:2])(image), dtype=np.int64)


SIZES = [(640, 427), (427, 640), (300, 300), (1499, 31), (31, 1499), (257, 1024), (224, 224), (80, 60)]


@pytest.mark.parametrize("mode", ["RGB", "L", "RGBA", "CMYK", "I", "F"])
@pytest.mark.parametrize("size", SIZES)
def test_one_resampling_gives_the_two_steps_picture_within_one_level(size, mode):
    faster = with_resized_crop(STOCK)
    image = picture(*size, mode, seed=sum(size))
    expected = resize_and_crop(STOCK, image)
    got = resize_and_crop(faster, image)
    assert got.shape == expected.shape
    apart = np.abs(got - expected)
    assert apart.max() <= 1
    assert (apart > 0).mean() < 0.02


def test_the_whole_preprocessing_gives_the_same_tensor_to_one_level():
    faster = with_resized_crop(STOCK)
    image = picture(640, 427, "RGB", seed=1)
    expected, got = STOCK(image), faster(image)
    assert got.shape == expected.shape == (3, 224, 224)
    one_level = 1 / 255 / min(STOCK.transforms[3].std)
    assert float((got - expected).abs().max()) <= one_level + 1e-6


@pytest.mark.parametrize("mode", ["P", "1"])
def test_pictures_resampled_by_nearest_neighbour_take_the_two_steps(mode):
    faster = with_resized_crop(STOCK)
    image = picture(500, 700, mode, seed=2)
    assert np.array_equal(resize_and_crop(faster, image), resize_and_crop(STOCK, image))


def test_a_crop_larger_than_the_resized_picture_is_padded_as_the_crop_pads():
    processing = transforms.Compose([transforms.Resize((100, 120)), transforms.CenterCrop(224)])
    faster = with_resized_crop(processing)
    image = picture(640, 427, "RGB", seed=3)
    assert np.array_equal(np.asarray(faster(image)), np.asarray(processing(image)))


def test_a_picture_the_resize_leaves_as_it_is_is_only_cropped():
    processing = transforms.Compose([transforms.Resize(256), transforms.CenterCrop(200)])
    faster = with_resized_crop(processing)
    image = picture(256, 300, "RGB", seed=4)
    assert np.array_equal(np.asarray(faster(image)), np.asarray(processing(image)))


def test_a_tensor_takes_the_two_steps():
    faster = with_resized_crop(STOCK)
    tensor = torch.rand(3, 300, 400)
    processing = transforms.Compose(STOCK.transforms[:2])
    assert torch.equal(faster.transforms[0](tensor), processing(tensor))


@pytest.mark.parametrize(
    "processing",
    [
        transforms.Compose([transforms.CenterCrop(224), transforms.Resize(256)]),
        transforms.Compose(
            [
                transforms.Resize(256, interpolation=transforms.InterpolationMode.NEAREST),
                transforms.CenterCrop(224),
            ]
        ),
        transforms.Compose([transforms.Resize(256, max_size=300), transforms.CenterCrop(224)]),
        transforms.Compose([transforms.ToTensor()]),
        None,
    ],
)
def test_other_preprocessing_is_left_as_it_is(processing):
    assert with_resized_crop(processing) is None


def test_an_image_classifier_gets_the_one_step_resize_and_its_class_keeps_the_stock_one(caplog):
    caplog.set_level(logging.INFO, "modelplane.server")
    handler = ImageClassifier()
    resize_crops_in_one(handler, "classifier")
    assert isinstance(handler.image_processing.transforms[0], ResizedCenterCrop)
    assert ImageClassifier.image_processing is STOCK
    assert "classifier: pictures resized and cropped in one resampling" in caplog.text

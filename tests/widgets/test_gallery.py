"""The image gallery: pixel conversion, captions and titles, and the thumbnails the
widget really builds and paints (nearest-neighbour scaling, cap, replace, messages)."""

from __future__ import annotations

import numpy as np
import PySide6  # noqa: F401  (before anything that may import pyqtgraph)
import pytest
from PySide6.QtGui import QImage

from widgets.gallery import (
    DEFAULT_THUMBNAIL,
    MAX_IMAGES,
    ImageGallery,
    misclassified_captions,
    misclassified_title,
    misclassified_tooltips,
    to_rgb8,
)


@pytest.fixture
def gallery(shown):
    return shown(ImageGallery(), 700, 500)


def as_array(image: QImage) -> np.ndarray:
    """A QImage as an [H, W, 3] uint8 array (copied, so it outlives the image)."""
    rgb = image.convertToFormat(QImage.Format.Format_RGB888)
    h, w, stride = rgb.height(), rgb.width(), rgb.bytesPerLine()
    raw = np.frombuffer(rgb.constBits(), dtype=np.uint8, count=h * stride)
    return raw.reshape(h, stride)[:, : w * 3].reshape(h, w, 3).copy()


def solid(n: int, rgb: tuple[int, int, int], size: int = 4) -> np.ndarray:
    images = np.zeros((n, 3, size, size), dtype=np.uint8)
    images[:] = np.array(rgb, dtype=np.uint8)[None, :, None, None]
    return images


# --- to_rgb8 --------------------------------------------------------------------------


def test_to_rgb8_grey_uint8_becomes_three_equal_channels():
    grey = np.array([[[[0, 7, 255], [128, 1, 2]]], [[[9, 8, 7], [6, 5, 4]]]], dtype=np.uint8)
    out = to_rgb8(grey)
    assert out.shape == (2, 2, 3, 3)
    assert out.dtype == np.uint8
    assert out.flags["C_CONTIGUOUS"]
    for channel in range(3):
        np.testing.assert_array_equal(out[..., channel], grey[:, 0])


def test_to_rgb8_grey_float_scales_zero_to_one_onto_0_255():
    grey = np.array([0.0, 0.25, 0.5, 1.0], dtype=np.float32).reshape(1, 1, 1, 4)
    out = to_rgb8(grey)
    assert out.shape == (1, 1, 4, 3)
    assert out[0, 0, :, 0].tolist() == [0, 64, 128, 255]
    assert (out[..., 0] == out[..., 1]).all() and (out[..., 1] == out[..., 2]).all()


def test_to_rgb8_rgb_float_clips_and_blacks_out_nan_keeping_channel_order():
    images = np.zeros((1, 3, 1, 4), dtype=np.float64)
    images[0, 0, 0] = [-0.5, 1.5, np.nan, 0.2]  # red: below range, above, NaN, in range
    images[0, 1, 0] = [0.0, 0.0, 0.0, np.inf]  # green
    images[0, 2, 0] = [1.0, 0.0, 0.0, -np.inf]  # blue
    out = to_rgb8(images)
    assert out.shape == (1, 1, 4, 3)
    assert out[0, 0].tolist() == [[0, 0, 255], [255, 0, 0], [0, 0, 0], [51, 255, 0]]


def test_to_rgb8_other_channel_counts_show_the_first_channel_as_grey():
    images = np.zeros((1, 4, 1, 2), dtype=np.uint8)
    images[0, 0, 0] = [10, 200]
    images[0, 1:, 0] = 99  # ignored
    out = to_rgb8(images)
    assert out[0, 0].tolist() == [[10, 10, 10], [200, 200, 200]]


@pytest.mark.parametrize("shape", [(28, 28), (4, 28, 28), (1, 1, 1, 28, 28)])
def test_to_rgb8_rejects_a_wrong_number_of_dimensions(shape):
    with pytest.raises(ValueError, match=r"\[N, C, H, W\]"):
        to_rgb8(np.zeros(shape, dtype=np.float32))


# --- captions and titles --------------------------------------------------------------


CLASSES = ["cat", "dog", "a_rather_long_class_name"]


def test_captions_give_prediction_with_confidence_then_truth():
    captions = misclassified_captions([1, 0], [0, 1], CLASSES, [0.874, 0.5])
    assert captions == ["pred: cat (87%)\ntrue: dog", "pred: dog (50%)\ntrue: cat"]


def test_captions_without_confidence_have_no_percentage():
    assert misclassified_captions([0], [1], CLASSES) == ["pred: dog\ntrue: cat"]


def test_captions_show_out_of_range_classes_as_numbers():
    captions = misclassified_captions([12, np.int64(-1)], [np.int64(0), 7], CLASSES)
    assert captions == ["pred: cat\ntrue: 12", "pred: 7\ntrue: -1"]


def test_captions_elide_long_class_names():
    (caption,) = misclassified_captions([2], [2], CLASSES, [1.0])
    pred, true = caption.split("\n")
    assert "a_rather_long_class_name" not in caption
    assert pred == "pred: a_rather_lo… (100%)"
    assert true == "true: a_rather_lo…"
    assert len(true.removeprefix("true: ")) == 12


def test_tooltips_keep_full_names():
    (tip,) = misclassified_tooltips([1], [2], CLASSES, [0.9])
    assert "a_rather_long_class_name" in tip and "90%" in tip and "dog" in tip


def test_captions_reject_mismatched_lengths():
    with pytest.raises(ValueError):
        misclassified_captions([0, 1], [1], CLASSES)
    with pytest.raises(ValueError):
        misclassified_captions([0, 1], [1, 0], CLASSES, [0.5])


def test_title_counts_mistakes_and_says_how_many_are_shown():
    title = misclassified_title(12, 40, 600, 3)
    assert title == (
        "Epoch 3: 40 of 600 validation images misclassified "
        "(showing the 12 most confident mistakes)"
    )
    assert "all shown" in misclassified_title(12, 12, 600, 3)


def test_title_with_no_mistakes_says_every_image_was_right():
    title = misclassified_title(0, 0, 600, 5)
    assert title.startswith("Epoch 5: ")
    assert "every one of the 600 validation images" in title
    assert "misclassified" not in title
    assert misclassified_title(0, 0, 600, None).startswith("Every one")


# --- the gallery widget ---------------------------------------------------------------


def test_shows_one_item_per_image_with_its_caption_and_title(gallery):
    captions = ["pred: cat\ntrue: dog", "pred: dog\ntrue: cat", "three"]
    gallery.set_images(solid(3, (255, 0, 0)), captions, title="Epoch 1: 3 of 10")
    assert gallery.count() == 3
    assert gallery.captions() == captions
    assert gallery.tooltips() == captions  # defaults to the captions
    assert gallery.title() == "Epoch 1: 3 of 10"
    assert gallery.message() == ""
    assert gallery.list_widget().isVisible()


def test_tooltips_are_used_when_given(gallery):
    gallery.set_images(solid(2, (0, 0, 0)), ["a", "b"], tooltips=["full a", "full b"])
    assert gallery.tooltips() == ["full a", "full b"]


def test_thumbnail_is_scaled_with_nearest_neighbour(gallery):
    pixels = np.array([[0, 255], [100, 200]], dtype=np.uint8).reshape(1, 1, 2, 2)
    gallery.set_images(pixels, ["grey"])
    thumb = as_array(gallery.thumbnail(0))
    half = DEFAULT_THUMBNAIL // 2
    assert thumb.shape == (DEFAULT_THUMBNAIL, DEFAULT_THUMBNAIL, 3)
    # Every pixel of each quadrant is exactly its source pixel: no blending at the
    # seams, which smooth scaling would produce.
    assert (thumb[:half, :half] == 0).all()
    assert (thumb[:half, half:] == 255).all()
    assert (thumb[half:, :half] == 100).all()
    assert (thumb[half:, half:] == 200).all()


def test_thumbnail_keeps_colour_order_and_aspect_ratio(gallery):
    images = np.zeros((1, 3, 2, 4), dtype=np.float32)  # 2 high, 4 wide
    images[0, 0, :, :2] = 1.0  # left half red
    images[0, 2, :, 2:] = 1.0  # right half blue
    gallery.set_images(images, ["wide"])
    thumb = as_array(gallery.thumbnail(0))
    assert thumb.shape == (DEFAULT_THUMBNAIL // 2, DEFAULT_THUMBNAIL, 3)
    assert (thumb[:, : DEFAULT_THUMBNAIL // 2] == [255, 0, 0]).all()
    assert (thumb[:, DEFAULT_THUMBNAIL // 2 :] == [0, 0, 255]).all()


def test_thumbnail_size_can_change_and_rebuilds_from_kept_pixels(gallery):
    pixels = np.array([[0, 255], [100, 200]], dtype=np.uint8).reshape(1, 1, 2, 2)
    gallery.set_images(pixels, ["grey"])
    pixels[:] = 50  # the caller reusing its buffer must not change what is shown
    gallery.set_thumbnail_size(40)
    assert gallery.list_widget().iconSize().width() == 40
    thumb = as_array(gallery.thumbnail(0))
    assert thumb.shape == (40, 40, 3)
    assert (thumb[:20, :20] == 0).all() and (thumb[20:, 20:] == 200).all()
    with pytest.raises(ValueError):
        gallery.set_thumbnail_size(0)


def test_thumbnails_are_really_painted(gallery):
    gallery.set_images(solid(3, (255, 0, 0)), ["a", "b", "c"])
    shot = as_array(gallery.grab().toImage())
    red = np.all(shot == [255, 0, 0], axis=-1).sum()
    # at least three full thumbnails' worth (the grab may be HiDPI-scaled up)
    assert red >= 3 * DEFAULT_THUMBNAIL * DEFAULT_THUMBNAIL


def test_set_images_twice_replaces_the_contents(gallery):
    gallery.set_images(solid(5, (255, 0, 0)), list("abcde"), title="first")
    gallery.set_images(solid(2, (0, 255, 0)), ["x", "y"], title="second")
    assert gallery.count() == 2
    assert gallery.captions() == ["x", "y"]
    assert gallery.title() == "second"
    assert (as_array(gallery.thumbnail(1)) == [0, 255, 0]).all()
    with pytest.raises(IndexError):
        gallery.thumbnail(2)


def test_show_message_replaces_the_thumbnails(gallery):
    gallery.set_images(solid(4, (255, 0, 0)), list("abcd"), title="Epoch 2")
    text = "No misclassified validation images: every one was right."
    gallery.show_message(text)
    assert gallery.count() == 0
    assert gallery.captions() == []
    assert gallery.message() == text
    assert gallery.title() == ""  # the stale epoch headline goes
    assert not gallery.list_widget().isVisible()
    gallery.show_message("Could not load CIFAR-10", title="Dataset preview")
    assert gallery.title() == "Dataset preview"
    # and images bring the list back
    gallery.set_images(solid(1, (0, 0, 255)), ["z"])
    assert gallery.message() == ""
    assert gallery.count() == 1
    assert gallery.list_widget().isVisible()


def test_clear_empties_everything(gallery):
    gallery.set_images(solid(2, (255, 0, 0)), ["a", "b"], title="t")
    gallery.clear()
    assert (gallery.count(), gallery.title(), gallery.message()) == (0, "", "")


def test_mismatched_captions_raise_and_leave_the_gallery_as_it_was(gallery):
    gallery.set_images(solid(2, (255, 0, 0)), ["a", "b"], title="kept")
    with pytest.raises(ValueError, match="3 captions for 2 images"):
        gallery.set_images(solid(2, (0, 255, 0)), ["x", "y", "z"], title="new")
    with pytest.raises(ValueError):
        gallery.set_images(solid(2, (0, 255, 0)), ["x", "y"], tooltips=["only one"])
    with pytest.raises(ValueError):
        gallery.set_images(np.zeros((2, 4, 4), dtype=np.uint8), ["x", "y"])
    assert gallery.captions() == ["a", "b"]
    assert gallery.title() == "kept"


def test_at_most_max_images_are_shown(gallery):
    n = MAX_IMAGES + 6
    images = np.zeros((n, 1, 3, 3), dtype=np.uint8)
    images[:, 0] = np.arange(n, dtype=np.uint8)[:, None, None]
    captions = [f"#{i}" for i in range(n)]
    gallery.set_images(images, captions, title=f"{n} images")
    assert gallery.count() == MAX_IMAGES
    assert gallery.captions() == captions[:MAX_IMAGES]
    assert gallery.title() == f"{n} images"
    assert (as_array(gallery.thumbnail(MAX_IMAGES - 1)) == MAX_IMAGES - 1).all()


def test_empty_batch_shows_an_empty_gallery(gallery):
    gallery.set_images(np.zeros((0, 1, 28, 28), dtype=np.float32), [], title="nothing")
    assert gallery.count() == 0
    assert gallery.title() == "nothing"
    assert gallery.message() == ""

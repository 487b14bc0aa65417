"""Feature-map view: one mosaic image, per-channel scaling, dead channels, vectors as bars."""

from __future__ import annotations

import numpy as np
import PySide6  # noqa: F401  (before anything that may import pyqtgraph)
import pytest

from widgets.featuremaps import MAX_CHANNELS, FeatureMapView, grid_for, normalise_channels


@pytest.fixture
def view(shown):
    return shown(FeatureMapView(), 800, 400)


def relu_maps(c: int, h: int, w: int, dead: int = 0) -> np.ndarray:
    rng = np.random.default_rng(1)
    maps = np.maximum(rng.normal(size=(c, h, w)), 0.0).astype(np.float32)
    maps[:dead] = 0.0
    return maps


def test_sixteen_channels_make_a_square_mosaic(view):
    view.show_maps("conv1", relu_maps(16, 8, 8))
    assert view.tile_grid() == (4, 4)
    assert view.mosaic_shape() == (4 * 8 + 3, 4 * 8 + 3)
    image = view.mosaic_item.image
    assert image.shape == (35, 35)
    assert np.isnan(image[8, 0]) and np.isnan(image[0, 8])  # 1-px gaps
    assert not view.showing_bars()
    assert "conv1" in view.title.text()


def test_ten_channels_make_a_near_square_grid(view):
    view.show_maps("conv2", relu_maps(10, 5, 7))
    assert view.tile_grid() in ((3, 4), (4, 3))
    rows, cols = view.tile_grid()
    assert view.mosaic_shape() == (rows * 5 + rows - 1, cols * 7 + cols - 1)
    assert grid_for(1) == (1, 1) and grid_for(256) == (16, 16)


def test_one_image_item_is_reused(view):
    item = view.mosaic_item
    view.show_maps("a", relu_maps(16, 8, 8))
    view.show_maps("b", relu_maps(4, 16, 16))
    assert view.mosaic_item is item
    assert view.mosaic_item.levels is not None
    assert tuple(np.ravel(view.mosaic_item.levels)) == (0.0, 1.0)
    assert view.mosaic_shape() == (33, 33)


def test_channels_are_normalised_on_their_own():
    maps = np.stack([np.full((4, 4), 7.0), np.arange(16.0).reshape(4, 4) * 100, -np.ones((4, 4))])
    maps[2, 0, 0] = -3.0
    out = normalise_channels(maps)
    assert np.all(np.isfinite(out))
    assert np.all(out[0] == 0.0)  # constant: no division by zero
    assert out[1].min() == 0.0 and out[1].max() == 1.0
    assert out[2].min() == 0.0 and out[2].max() == 1.0
    nan_maps = maps.copy()
    nan_maps[1, 1, 1] = np.nan
    assert np.all(np.isfinite(normalise_channels(nan_maps)))


def test_constant_maps_show_without_error(view):
    view.show_maps("bn", np.full((3, 6, 6), 2.5, dtype=np.float32))
    image = view.mosaic_item.image
    assert np.nanmax(image) == 0.0


def test_dead_channels_are_counted(view):
    view.show_maps("relu", relu_maps(12, 6, 6, dead=3))
    assert view.dead_channels() == (3, 12)
    assert view.dead_label.text() == "dead channels: 3 of 12 (25 %)"


def test_vectors_show_as_bars(view):
    values = np.array([0.5, -1.0, 2.0, 0.0, 3.0], dtype=np.float32)
    view.show_maps("fc", values)
    assert view.showing_bars()
    assert list(view.bar_item.opts["height"]) == list(values)
    assert view.dead_channels() == (2, 5)
    view.show_maps("conv", relu_maps(4, 4, 4))
    assert not view.showing_bars()


def test_histogram_counts_every_value(view):
    maps = relu_maps(8, 10, 10)
    view.show_maps("relu", maps)
    edges, counts = view.hist_item.getOriginalDataset()
    assert len(edges) == len(counts) + 1
    assert counts.sum() == maps.size


def test_channels_are_capped_with_a_note(view):
    view.show_maps("wide", relu_maps(300, 2, 2))
    assert view.tile_grid() == grid_for(MAX_CHANNELS)
    assert "256 of 300" in view.note_label.text()
    assert view.dead_channels()[1] == 300


def test_channel_numbers_only_on_big_tiles(view):
    view.show_maps("big", relu_maps(4, 16, 16))
    shown = [t for t in view._texts if t.isVisible()]
    assert [t.toPlainText() for t in shown] == ["0", "1", "2", "3"]
    view.show_maps("small", relu_maps(16, 4, 4))
    assert not any(t.isVisible() for t in view._texts)


def test_kernels_tile_one_per_filter_beside_the_maps(view):
    rng = np.random.default_rng(2)
    view.show_maps("conv1", rng.normal(size=(8, 6, 6)))
    view.show_kernels(rng.normal(size=(8, 1, 3, 3)))
    assert view.kernel_grid() == (3, 3) and view.kernel_item.image.shape == (11, 11)
    assert not view.kernel_widget.isHidden()
    assert view.tile_grid() == (3, 3) and view.mosaic_shape() == (20, 20)  # maps stay
    view.show_kernels(rng.normal(size=(16, 3, 5, 5)))  # RGB kernels of a first layer
    assert view.kernel_grid() == (4, 4)
    assert view.kernel_item.image.shape == (4 * 5 + 3, 4 * 5 + 3, 3)
    assert "RGB" in view.kernel_title.text()
    view.show_kernels(rng.normal(size=(6, 4, 3, 3)))  # deeper: one tile per filter
    assert view.kernel_grid() == (2, 3) and "mean over inputs" in view.kernel_title.text()
    view.show_kernels(None)
    assert view.kernel_widget.isHidden() and view.kernel_grid() == (0, 0)


def test_probe_choice_emits_the_index(view, qtbot):
    view.set_probe_count(8, current=0)
    assert view.probe_spin.value() == 1 and view.probe_spin.maximum() == 8
    with qtbot.waitSignal(view.probe_requested) as blocker:
        view.probe_spin.setValue(4)
    assert blocker.args == [3]
    view.set_probe_count(1)
    assert not view.probe_spin.isEnabled()


def test_probe_is_normalised(view):
    view.show_probe(np.linspace(-5, 5, 3 * 8 * 8).reshape(3, 8, 8))
    image = view.probe_item.image
    assert image.shape == (8, 8, 3)
    assert image.min() == 0.0 and image.max() == 1.0
    view.show_probe(np.full((5, 5), 3.0))
    assert view.probe_item.image.shape == (5, 5)
    assert np.all(view.probe_item.image == 0.5)  # constant: mid grey, no division by zero
    dark = np.full((1, 4, 4), 0.1)
    view.show_probe(dark)
    assert np.allclose(view.probe_item.image, 0.1)  # already 0..1: shown as is

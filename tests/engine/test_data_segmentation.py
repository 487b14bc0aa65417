"""Segmentation datasets (SPEC §7): shapes-seg, mask folders (palette, RGB + labelmap,
PASCAL VOC), .npz masks, resizing and the messages for bad input. Every fixture is
written in tmp_path."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import make_seg_folder  # noqa: E402  (tests/engine is on sys.path)
from PIL import Image

from engine.data import BUILTIN, DatasetError, load_dataset
from engine.data.shapes_seg import CLASSES as SEG_CLASSES
from engine.data.shapes_seg import _place, make_shapes_seg


def _values(t: torch.Tensor) -> set[int]:
    return {int(v) for v in torch.unique(t)}


# ---------------------------------------------------------------- shapes-seg

def test_shapes_seg_is_builtin_with_masks_of_its_images_size():
    assert "shapes-seg" in BUILTIN
    ds = load_dataset("shapes-seg", options={"count": 60})
    assert ds.task == "segmentation"
    assert ds.classes == ["background", "X", "O", "plus", "triangle", "square"]
    assert (len(ds.train), len(ds.val)) == (48, 12)
    assert ds.image_shape == (1, 64, 64)
    assert ds.train.y.dtype == torch.uint8 and ds.train.y.shape == (48, 64, 64)
    assert ds.val.y.shape == (12, 64, 64)
    assert _values(ds.train.y) <= set(range(6)) and len(_values(ds.train.y)) >= 4
    assert "segmentation" in ds.describe() and "6 classes" in ds.describe()


def test_shapes_seg_labels_glyph_pixels_with_their_class():
    x, masks, names = make_shapes_seg(seed=1, options={"count": 40, "noise": 0})
    assert names == list(SEG_CLASSES)
    img = x[:, 0]
    # Labelled pixels are inked (ink ≥ 0.6 × half coverage), unlabelled ones are not glyphs.
    assert img[masks > 0].min() >= int(0.6 * 0.5 * 255)
    assert masks[img == 0].max() == 0
    per_image = [set(np.unique(m)) - {0} for m in masks]
    assert all(1 <= len(s) <= 3 for s in per_image)
    # Each class is drawn as its glyph: the same placements drawn as X (or plus) cover
    # every glyph's centre, drawn as O leave it empty inside the ring.
    p = _place(6, 64, np.random.default_rng(2))
    at = p["placed"]
    rows, cols = p["cy"][at].astype(int), p["cx"][at].astype(int)
    which = np.nonzero(at)[1]
    for name, centre in (("X", 1), ("plus", 1), ("O", 0)):
        _, m, names_one = make_shapes_seg(seed=2, classes=[name],
                                          options={"count": 6, "noise": 0})
        assert names_one == ["background", name] and set(np.unique(m)) == {0, 1}
        assert (m[which, rows, cols] == centre).all(), name


def test_shapes_seg_is_deterministic_and_takes_options():
    a = load_dataset("shapes-seg", seed=4, options={"count": 30, "size": 48})
    b = load_dataset("shapes-seg", seed=4, options={"count": 30, "size": 48})
    c = load_dataset("shapes-seg", seed=5, options={"count": 30, "size": 48})
    assert a.image_shape == (1, 48, 48) and a.train.y.shape[1:] == (48, 48)
    assert torch.equal(a.train.x, b.train.x) and torch.equal(a.train.y, b.train.y)
    assert not torch.equal(a.train.y, c.train.y)
    glyphs = load_dataset("shapes-seg", classes=["plus", "square"], options={"count": 20})
    assert glyphs.classes == ["background", "plus", "square"]
    assert _values(glyphs.train.y) == {0, 1, 2}
    with pytest.raises(DatasetError, match="no class 'star'"):
        load_dataset("shapes-seg", classes=["star"])
    with pytest.raises(DatasetError, match="no option 'colour'"):
        load_dataset("shapes-seg", options={"colour": 1})


def test_shapes_seg_builds_thousands_of_images_in_seconds():
    start = time.perf_counter()
    x, masks, _ = make_shapes_seg(seed=0, options={"count": 2000})
    assert x.shape == (2000, 1, 64, 64) and masks.shape == (2000, 64, 64)
    assert time.perf_counter() - start < 8.0      # about 1 s on a 2-core machine


# ---------------------------------------------------------------- folders

@pytest.mark.parametrize("kind", ["palette", "rgb", "voc"])
def test_segmentation_folder_loads_with_its_split_classes_and_masks(tmp_path: Path, kind):
    written = make_seg_folder(tmp_path / kind, kind)
    ds = load_dataset(str(tmp_path / kind))
    assert ds.task == "segmentation"
    expected = (["background", "aeroplane", "bicycle"] if kind == "voc"
                else ["background", "cat", "dog"])
    assert ds.classes[:3] == expected and len(ds.classes) == (21 if kind == "voc" else 3)
    assert ds.image_shape == (3, 12, 16)
    assert (len(ds.train), len(ds.val)) == (4, 2)
    assert ds.train.y.dtype == torch.uint8 and ds.train.y.shape == (4, 12, 16)
    assert np.array_equal(ds.train.y.numpy(), written["train"])
    assert np.array_equal(ds.val.y.numpy(), written["val"])


def test_grey_masks_without_names_get_numbered_classes_and_a_random_split(tmp_path: Path):
    written = make_seg_folder(tmp_path / "flat", "flat", counts=(10,))
    ds = load_dataset(str(tmp_path / "flat"), val_fraction=0.3, seed=1)
    assert ds.classes == ["class_0", "class_1", "class_2"]
    assert (len(ds.train), len(ds.val)) == (7, 3)
    together = np.concatenate([ds.train.y.numpy(), ds.val.y.numpy()])
    assert sorted(map(bytes, together)) == sorted(map(bytes, written["train"]))
    limited = load_dataset(str(tmp_path / "flat"), limit=4, val_limit=2)
    assert (len(limited.train), len(limited.val)) == (4, 2)


def test_resizing_masks_keeps_only_their_class_values(tmp_path: Path):
    written = make_seg_folder(tmp_path / "p", "palette")
    ds = load_dataset(str(tmp_path / "p"), image_shape=(1, 23, 9))
    assert ds.image_shape == (1, 23, 9) and ds.train.y.shape == (4, 23, 9)
    values = set(np.unique(written["train"]).tolist())
    assert _values(ds.train.y) <= values and values - {255} <= _values(ds.train.y)
    # Nearest neighbour: each output pixel is the source pixel under its centre.
    rows = ((np.arange(23) + 0.5) * 12 / 23).astype(int)
    cols = ((np.arange(9) + 0.5) * 16 / 9).astype(int)
    assert np.array_equal(ds.train.y.numpy(), written["train"][:, rows][:, :, cols])


def test_choosing_classes_ignores_the_others_pixels(tmp_path: Path):
    written = make_seg_folder(tmp_path / "p", "palette")
    ds = load_dataset(str(tmp_path / "p"), classes=["dog", "background"])
    assert ds.classes == ["dog", "background"]
    src, got = written["train"], ds.train.y.numpy()
    assert (got[src == 2] == 0).all() and (got[src == 0] == 1).all()
    assert (got[(src == 1) | (src == 255)] == 255).all()


def test_an_unlisted_colour_is_refused_naming_the_file_and_colour(tmp_path: Path):
    make_seg_folder(tmp_path / "rgb", "rgb")
    bad = tmp_path / "rgb" / "val" / "masks" / "001.png"
    arr = np.asarray(Image.open(bad).convert("RGB")).copy()
    arr[2, 3] = (7, 200, 9)
    Image.fromarray(arr).save(bad)
    with pytest.raises(DatasetError, match=r"001\.png has the colour \(7, 200, 9\)"):
        load_dataset(str(tmp_path / "rgb"))


def test_bad_segmentation_folders_get_clear_messages(tmp_path: Path):
    make_seg_folder(tmp_path / "a", "palette")
    (tmp_path / "a" / "train" / "masks" / "002.png").unlink()
    with pytest.raises(DatasetError, match=r"002\.png has no mask"):
        load_dataset(str(tmp_path / "a"))

    make_seg_folder(tmp_path / "b", "palette")
    Image.new("P", (5, 5)).save(tmp_path / "b" / "train" / "masks" / "001.png")
    with pytest.raises(DatasetError, match=r"001\.png is 5×5 pixels but its image .* 16×12"):
        load_dataset(str(tmp_path / "b"))

    make_seg_folder(tmp_path / "c", "rgb")
    (tmp_path / "c" / "labelmap.txt").unlink()
    with pytest.raises(DatasetError, match="add labelmap.txt"):
        load_dataset(str(tmp_path / "c"))

    (tmp_path / "d" / "images").mkdir(parents=True)
    (tmp_path / "d" / "masks").mkdir()
    with pytest.raises(DatasetError, match="holds no images"):
        load_dataset(str(tmp_path / "d"))

    make_seg_folder(tmp_path / "e", "palette")
    (tmp_path / "e" / "classes.txt").write_text("background\ncat\n")
    with pytest.raises(DatasetError, match="holds class 2 but there are only 2 classes"):
        load_dataset(str(tmp_path / "e"))

    make_seg_folder(tmp_path / "f", "rgb")
    (tmp_path / "f" / "labelmap.txt").write_text("background:0,0\n")
    with pytest.raises(DatasetError, match="line 1: 'background:0,0' is not .* name:r,g,b::"):
        load_dataset(str(tmp_path / "f"))

    make_seg_folder(tmp_path / "g", "voc")
    (tmp_path / "g" / "SegmentationClass" / "2007_val_001.png").unlink()
    with pytest.raises(DatasetError, match=r"2007_val_001\.jpg has no mask"):
        load_dataset(str(tmp_path / "g"))


# ---------------------------------------------------------------- npz

def test_npz_with_masks_is_a_segmentation_set(tmp_path: Path):
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (10, 8, 12), dtype=np.uint8)
    y = rng.integers(0, 4, (10, 8, 12))
    y[:, 0, 0] = 255
    np.savez(tmp_path / "seg.npz", x=x, y=y, classes=np.array(["bg", "a", "b", "c"]))
    ds = load_dataset(str(tmp_path / "seg.npz"), val_fraction=0.2)
    assert ds.task == "segmentation" and ds.classes == ["bg", "a", "b", "c"]
    assert ds.image_shape == (1, 8, 12) and ds.train.y.shape == (8, 8, 12)
    assert ds.train.y.dtype == torch.uint8 and _values(ds.train.y) == {0, 1, 2, 3, 255}
    together = np.concatenate([ds.train.y.numpy(), ds.val.y.numpy()])
    assert sorted(map(bytes, together)) == sorted(map(bytes, y.astype(np.uint8)))

    np.savez(tmp_path / "plain.npz", x=x, y=y)
    assert load_dataset(str(tmp_path / "plain.npz")).classes == [f"class_{i}" for i in range(4)]
    np.savez(tmp_path / "wrong.npz", x=x, y=y[:, :4])
    with pytest.raises(DatasetError, match="one mask of the image's size"):
        load_dataset(str(tmp_path / "wrong.npz"))
    np.savez(tmp_path / "few.npz", x=x, y=y, classes=np.array(["bg", "a"]))
    with pytest.raises(DatasetError, match="class 3 but only 2 names"):
        load_dataset(str(tmp_path / "few.npz"))


# ---------------------------------------------------------------- training on each kind

def _fcn(channels: int, h: int, w: int, classes: int):
    from graph_builders import build  # noqa: E402  (tests/engine is on sys.path)

    return build([("in", "Input", {"channels": channels, "height": h, "width": w}),
                  ("c1", "Conv2d", {"out_channels": 8, "kernel_size": 3, "padding": "same"}),
                  ("act", "Activation", {}),
                  ("c2", "Conv2d", {"out_channels": classes, "kernel_size": 1}),
                  ("out", "Output", {"task": "segmentation"})],
                 [("in", "c1"), ("c1", "act"), ("act", "c2"), ("c2", "out")])


@pytest.mark.parametrize("kind", ["palette", "rgb", "voc", "shapes-seg"])
def test_one_epoch_trains_on_each_kind(tmp_path: Path, kind):
    from engine.train import Trainer
    from engine.train_config import TrainConfig
    from engine.train_events import DoneEvent, EpochEvent

    if kind == "shapes-seg":
        ds = load_dataset(kind, options={"count": 24, "size": 32})
    else:
        make_seg_folder(tmp_path / kind, kind)
        ds = load_dataset(str(tmp_path / kind))
    events: list = []
    cfg = TrainConfig.from_dict({"epochs": 1, "batch_size": 4, "device": "cpu"})
    result = Trainer(_fcn(*ds.image_shape, ds.num_classes), cfg, callback=events.append,
                     dataset=ds, out_dir=tmp_path / "run", report_interval=0).run()
    assert isinstance(result, DoneEvent) and not result.stopped
    metrics = next(e for e in events if isinstance(e, EpochEvent)).metrics
    assert {f"val_iou_{c}" for c in ds.classes} <= set(metrics)
    assert 0.0 <= metrics["val_pixel_accuracy"] <= 1.0
    ckpt = torch.load(tmp_path / "run" / "model.pt", weights_only=True)
    assert ckpt["classes"] == ds.classes

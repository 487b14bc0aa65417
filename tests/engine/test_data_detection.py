"""Detection datasets (SPEC §7): shapes-det, YOLO-layout folders (three arrangements,
classes.txt / data.yaml, resizing with boxes scaled, refusals with file and line),
class selection, limits and box-aware batches. Every fixture is written in tmp_path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.data import BUILTIN, Augment, Batches, DatasetError, ImageSet, load_dataset
from engine.data.shapes import CLASSES as GLYPHS
from engine.data.shapes_det import make_shapes_det


def _valid(y: np.ndarray | torch.Tensor) -> np.ndarray:
    """The real (non-padding) rows of [N, M, 5] labels."""
    y = np.asarray(y)
    return y[y[:, :, 0] >= 0]


# ---------------------------------------------------------------- shapes-det

def test_shapes_det_is_builtin_with_padded_box_rows():
    assert "shapes-det" in BUILTIN
    ds = load_dataset("shapes-det", options={"count": 200})
    assert ds.task == "detection" and ds.classes == list(GLYPHS)
    assert (len(ds.train), len(ds.val)) == (160, 40)
    assert ds.image_shape == (1, 64, 64)
    for part in (ds.train, ds.val):
        y = part.y.numpy()
        assert part.y.dtype == torch.float32 and y.shape[1:] == (4, 5)
        real = y[:, :, 0] >= 0
        assert real.sum(axis=1).min() >= 1 and real.sum(axis=1).max() <= 4
        # Real rows come first; padding rows are class -1 and zeros.
        assert (np.diff(real.astype(int), axis=1) <= 0).all()
        pad = y[~real]
        assert (pad[:, 0] == -1).all() and (pad[:, 1:] == 0).all()
    counts = (ds.train.y[:, :, 0] >= 0).sum(dim=1)
    assert set(counts.tolist()) == {1, 2, 3, 4}
    assert set(_valid(ds.train.y)[:, 0].astype(int)) == set(range(5))
    assert ds.describe().endswith(", detection")
    assert load_dataset("shapes_det", options={"count": 10}).name == "shapes-det"


def test_shapes_det_boxes_are_tight_around_the_ink():
    x, y, _ = make_shapes_det(seed=3, options={"count": 80, "noise": 0})
    img = x[:, 0].astype(int)
    inside_any = np.zeros(img.shape, dtype=bool)
    sides = []
    for n in range(len(y)):
        for _, x1, y1, x2, y2 in y[n][y[n, :, 0] >= 0]:
            assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 64
            assert x1 == int(x1) and y2 == int(y2)      # pixel edges
            box = img[n, int(y1):int(y2), int(x1):int(x2)]
            # Tight: every edge row and column of the box holds ink of at least half
            # coverage (ink ≥ 0.6 × 0.5 × 255) …
            strong = int(0.6 * 0.5 * 255)
            for edge in (box[0], box[-1], box[:, 0], box[:, -1]):
                assert edge.max() >= strong
            inside_any[n, int(y1):int(y2), int(x1):int(x2)] = True
            sides.append(max(x2 - x1, y2 - y1))
    # … and outside every box no pixel is covered half (only anti-aliased fringes).
    assert img[~inside_any].max() <= 128
    assert (img[inside_any] > 0).any()
    # Glyph sizes vary, so anchors matter.
    assert min(sides) <= 12 and max(sides) >= 24


def test_shapes_det_is_deterministic_per_seed():
    a = make_shapes_det(seed=5, options={"count": 30})
    b = make_shapes_det(seed=5, options={"count": 30})
    c = make_shapes_det(seed=6, options={"count": 30})
    assert np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    assert not np.array_equal(a[0], c[0])


def test_shapes_det_classes_draw_only_the_chosen_glyphs():
    ds = load_dataset("shapes-det", classes=["O", "plus"], options={"count": 40})
    assert ds.classes == ["O", "plus"]
    assert set(_valid(ds.train.y)[:, 0].astype(int)) == {0, 1}
    # The glyph drawn is the class's: a plus inks its box's centre, a ring (O) not.
    for name, inked in (("plus", True), ("O", False)):
        x, y, names = make_shapes_det(seed=1, classes=[name],
                                      options={"count": 20, "noise": 0})
        assert names == [name]
        for n in range(len(y)):
            for _, x1, y1, x2, y2 in y[n][y[n, :, 0] >= 0]:
                cx, cy = int((x1 + x2) / 2), int((y1 + y2) / 2)
                centre = x[n, 0, cy - 1:cy + 1, cx - 1:cx + 1].max()
                assert (centre > 100) == inked, (name, n)


@pytest.mark.parametrize("kwargs, words", [
    ({"options": {"colour": 1}}, "no option 'colour'"),
    ({"options": {"size": 8}}, "use 32 to 512"),
    ({"classes": ["star"]}, "no class 'star'"),
])
def test_shapes_det_refuses_bad_options(kwargs, words):
    with pytest.raises(DatasetError, match=words):
        load_dataset("shapes-det", **kwargs)


def test_shapes_det_limits_draw_random_images_and_keep_m():
    ds = load_dataset("shapes-det", options={"count": 100}, limit=10, val_limit=5, seed=2)
    assert (len(ds.train), len(ds.val)) == (10, 5)
    full = load_dataset("shapes-det", options={"count": 100}, seed=2)
    assert ds.train.y.shape[1] == full.train.y.shape[1]
    # Each kept image is one of the full split's, with its own boxes.
    rows = {tuple(img.flatten()[:64].tolist()): lab
            for img, lab in zip(full.train.x, full.train.y, strict=True)}
    for img, lab in zip(ds.train.x, ds.train.y, strict=True):
        assert torch.equal(rows[tuple(img.flatten()[:64].tolist())], lab)


# ---------------------------------------------------------------- YOLO folders

def _image(path: Path, size: tuple[int, int], mode: str = "RGB", seed: int = 0) -> None:
    """An image ``size`` (W, H) of noise, PNG or JPEG by the suffix."""
    rng = np.random.default_rng(seed)
    channels = 3 if mode == "RGB" else 1
    arr = rng.integers(0, 256, (size[1], size[0], channels), dtype=np.uint8)
    Image.fromarray(arr if channels == 3 else arr[..., 0], mode).save(path)


def _labels(path: Path, lines: list[str]) -> None:
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")


def _yolo(root: Path, images: dict[str, tuple[int, int]], labels: dict[str, list[str]],
          names: list[str] | None = ("cat", "dog", "bird")) -> Path:
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir()
    for i, (name, size) in enumerate(images.items()):
        _image(root / "images" / name, size, seed=i)
    for stem, lines in labels.items():
        _labels(root / "labels" / f"{stem}.txt", lines)
    if names is not None:
        (root / "classes.txt").write_text("\n".join(names) + "\n", encoding="utf-8")
    return root


def test_yolo_folder_resizes_images_and_scales_boxes_exactly(tmp_path):
    folder = _yolo(tmp_path / "set", {"a.png": (40, 20), "b.jpg": (30, 60), "c.png": (50, 50)},
                   {"a": ["0 0.5 0.5 0.5 0.4", "2 0.25 0.75 0.1 0.2"],
                    "b": ["1 0.5 0.25 1.0 0.5"], "c": []})
    ds = load_dataset(str(folder), image_shape=(3, 32, 48), val_fraction=0)
    assert ds.task == "detection" and ds.classes == ["cat", "dog", "bird"]
    assert ds.image_shape == (3, 32, 48) and len(ds.train) == 3
    y = ds.train.y
    assert y.dtype == torch.float32 and y.shape == (3, 2, 5)
    expected = torch.tensor([
        [[0, 12.0, 9.6, 36.0, 22.4], [2, 9.6, 20.8, 14.4, 27.2]],   # a: (0.25..0.75)·48 …
        [[1, 0.0, 0.0, 48.0, 16.0], [-1, 0, 0, 0, 0]],
        [[-1, 0, 0, 0, 0], [-1, 0, 0, 0, 0]]])                       # c: empty file
    assert torch.allclose(y, expected, atol=1e-4)
    # The image is resized bilinearly as image folders resize (same pixels as Pillow).
    src = Image.open(folder / "images" / "b.jpg").convert("RGB").resize(
        (48, 32), Image.Resampling.BILINEAR)
    assert np.array_equal(ds.train.x[1].numpy().transpose(1, 2, 0), np.asarray(src))
    assert ds.describe().endswith("3 classes, detection")


def test_yolo_folder_reads_grey_and_keeps_own_size_without_image_shape(tmp_path):
    folder = _yolo(tmp_path / "set", {"a.png": (24, 16), "b.png": (24, 16)},
                   {"a": ["1 0.5 0.5 0.5 0.5"]})
    ds = load_dataset(str(folder), image_shape=(1, 16, 24), val_fraction=0)
    assert ds.image_shape == (1, 16, 24)
    ds = load_dataset(str(folder), val_fraction=0.5)
    assert ds.image_shape == (3, 16, 24) and (len(ds.train), len(ds.val)) == (1, 1)
    both = torch.cat([ds.train.y, ds.val.y])
    assert sorted(_valid(both)[:, 1:].tolist()) == [[6.0, 4.0, 18.0, 12.0]]
    # An image without a label file is a background image: one padding row.
    assert sorted((both[:, :, 0] >= 0).sum(dim=1).tolist()) == [0, 1]


def test_yolo_folder_refuses_mixed_sizes_without_image_shape(tmp_path):
    folder = _yolo(tmp_path / "set", {"a.png": (24, 16), "b.png": (20, 20)}, {})
    with pytest.raises(DatasetError, match=r"b\.png is 20×20 .*pass an image size"):
        load_dataset(str(folder))


def test_yolo_train_val_folders_with_data_yaml_names_list(tmp_path):
    for split, n in (("train", 3), ("val", 2)):
        _yolo(tmp_path / split, {f"{split}{i}.png": (16, 16) for i in range(n)},
              {f"{split}{i}": [f"{i % 2} 0.5 0.5 0.25 0.5"] for i in range(n)}, names=None)
    (tmp_path / "data.yaml").write_text("nc: 2\nnames: ['apple', 'pear']\n", encoding="utf-8")
    ds = load_dataset(str(tmp_path), val_fraction=0.5)
    assert ds.classes == ["apple", "pear"]
    assert (len(ds.train), len(ds.val)) == (3, 2)       # the folders' split, not val_fraction
    assert ds.val.y[:, 0].tolist() == [[0, 6, 4, 10, 12], [1, 6, 4, 10, 12]]


def test_yolo_ultralytics_layout_with_data_yaml_names_dict(tmp_path):
    for split, n in (("train", 2), ("val", 1)):
        (tmp_path / "images" / split).mkdir(parents=True)
        (tmp_path / "labels" / split).mkdir(parents=True)
        for i in range(n):
            _image(tmp_path / "images" / split / f"im{i}.jpg", (20, 10), seed=i)
            _labels(tmp_path / "labels" / split / f"im{i}.txt", ["1 0.5 0.5 1 1"])
    (tmp_path / "data.yaml").write_text(
        "path: .\ntrain: images/train\nval: images/val\nnames:\n  0: person\n  1: car\n",
        encoding="utf-8")
    ds = load_dataset(str(tmp_path))
    assert ds.task == "detection" and ds.classes == ["person", "car"]
    assert (len(ds.train), len(ds.val)) == (2, 1)
    assert ds.val.y.tolist() == [[[1, 0, 0, 20, 10]]]


def test_yolo_numbers_classes_without_names_and_ignores_stray_label_files(tmp_path):
    folder = _yolo(tmp_path / "set", {"a.png": (10, 10), "b.png": (10, 10)},
                   {"a": ["3 0.5 0.5 0.2 0.2", "1 0.5 0.5 0.2 0.2"],
                    "gone": ["7 0.5 0.5 0.2 0.2"]}, names=None)
    ds = load_dataset(str(folder), val_fraction=0)
    assert ds.classes == ["0", "1", "2", "3"]       # the stray file's class 7 is not seen
    assert len(ds.train) == 2


def test_yolo_refuses_label_files_matching_no_image(tmp_path):
    folder = _yolo(tmp_path / "set", {"img_a.png": (10, 10)}, {"a": ["0 0.5 0.5 0.2 0.2"]})
    with pytest.raises(DatasetError, match=r"no label file .* matches an image .*a\.txt"):
        load_dataset(str(folder))


@pytest.mark.parametrize("line, words", [
    ("0 0.5 1.2 0.1 0.1", "cy = 1.2 is outside 0–1"),
    ("0 0.5 0.5 -0.1 0.1", "w = -0.1 is outside 0–1"),
    ("0 0.5 0.5 wide 0.1", "w 'wide' is not a number"),
    ("0 0.5 0.5 0.1", "4 values"),
    ("0 0.1 0.1 0.2 0.1 0.2 0.2 0.1 0.2", "9 values .*polygon"),
    ("3 0.5 0.5 0.1 0.1", "class 3 but .*classes.txt names only 3 classes"),
    ("-1 0.5 0.5 0.1 0.1", "class '-1' is not a class index"),
    ("1.5 0.5 0.5 0.1 0.1", "class '1.5' is not a class index"),
])
def test_yolo_refuses_bad_label_lines_naming_file_and_line(tmp_path, line, words):
    folder = _yolo(tmp_path / "set", {"a.png": (10, 10), "b.png": (10, 10)},
                   {"a": ["0 0.5 0.5 0.2 0.2"], "b": ["1 0.5 0.5 0.2 0.2", "", line]})
    with pytest.raises(DatasetError, match=r"b\.txt line 3: " + words):
        load_dataset(str(folder))


def test_yolo_allows_rounding_slack_and_drops_empty_boxes(tmp_path):
    folder = _yolo(tmp_path / "set", {"a.png": (10, 10)},
                   {"a": ["0 1.0000004 0.5 0.2 0.2", "1 0.5 0.5 0 0.3"]})
    ds = load_dataset(str(folder), val_fraction=0)
    assert ds.train.y.tolist() == [[[0, 9, 4, 10, 6]]]


def test_yolo_select_classes_keeps_images_and_renumbers(tmp_path):
    folder = _yolo(tmp_path / "set", {f"{i}.png": (10, 10) for i in range(4)},
                   {"0": ["0 0.5 0.5 0.2 0.2", "2 0.5 0.5 0.4 0.4"], "1": ["1 0.5 0.5 0.2 0.2"],
                    "2": ["2 0.5 0.5 0.6 0.6"]})
    ds = load_dataset(str(folder), classes=["bird", "cat"], val_fraction=0)
    assert ds.classes == ["bird", "cat"] and len(ds.train) == 4
    assert ds.train.y.shape == (4, 2, 5)            # M kept
    # cat (0 → 1) and bird (2 → 0) keep their rows; dog's box goes, its image stays.
    assert ds.train.y.tolist() == [[[1, 4, 4, 6, 6], [0, 3, 3, 7, 7]],
                                   [[-1, 0, 0, 0, 0], [-1, 0, 0, 0, 0]],
                                   [[0, 2, 2, 8, 8], [-1, 0, 0, 0, 0]],
                                   [[-1, 0, 0, 0, 0], [-1, 0, 0, 0, 0]]]


def test_folder_dispatch_keeps_segmentation_and_class_folders(tmp_path):
    seg = tmp_path / "seg"
    for sub in ("images", "masks", "labels"):
        (seg / sub).mkdir(parents=True)
    _image(seg / "images" / "a.png", (8, 8))
    Image.fromarray(np.ones((8, 8), np.uint8), "L").save(seg / "masks" / "a.png")
    assert load_dataset(str(seg), val_fraction=0).task == "segmentation"
    cls = tmp_path / "cls"
    for name in ("cats", "labels"):         # a class that happens to be named labels
        (cls / name).mkdir(parents=True)
        _image(cls / name / "x.png", (8, 8))
    ds = load_dataset(str(cls), val_fraction=0)
    assert ds.task == "classification" and ds.classes == ["cats", "labels"]


def test_yolo_folder_without_boxes_or_names_is_refused(tmp_path):
    folder = _yolo(tmp_path / "set", {"a.png": (8, 8)}, {"a": []}, names=None)
    with pytest.raises(DatasetError, match="no label file holds a box"):
        load_dataset(str(folder))


# ---------------------------------------------------------------- batches

def test_batches_flip_and_shift_boxes_with_their_images():
    n, h, w = 64, 16, 24
    x = torch.zeros(n, 1, h, w, dtype=torch.uint8)
    y = torch.zeros(n, 2, 5)
    y[:, 1, 0] = -1
    for i in range(n):
        x1, y1 = 1 + i % 9, 2 + i % 5
        x[i, 0, y1:y1 + 6, x1:x1 + 8] = 255
        y[i, 0] = torch.tensor([i % 3, x1, y1, x1 + 8, y1 + 6])
    data = ImageSet(x, y)
    batches = Batches(data, 16, mean=[0.0], std=[1.0], shuffle=True, seed=1,
                      augment=Augment(crop_padding=6, hflip=True))
    seen_lost = seen_kept = 0
    for bx, by in batches:
        assert by.dtype == torch.float32 and by.shape[1:] == (2, 5)
        for img, rows in zip(bx, by, strict=True):
            ink = img[0] > 0.5
            assert (rows[1] == torch.tensor([-1.0, 0, 0, 0, 0])).all()
            if not ink.any():
                assert rows[0, 0] == -1         # shifted out of the image: padding
                seen_lost += 1
                continue
            cols, lines = ink.any(0).nonzero()[:, 0], ink.any(1).nonzero()[:, 0]
            box = [cols.min(), lines.min(), cols.max() + 1, lines.max() + 1]
            assert rows[0, 1:].tolist() == [float(v) for v in box]
            seen_kept += 1
    assert seen_kept > 0
    assert seen_lost == 0 or seen_lost < seen_kept

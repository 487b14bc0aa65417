"""Writers of small dataset files in every supported format, shared by the data and
training tests."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
from PIL import Image


def idx_bytes(arr: np.ndarray) -> bytes:
    arr = np.ascontiguousarray(arr, dtype=np.uint8)
    return (struct.pack(">HBB", 0, 0x08, arr.ndim) + struct.pack(f">{arr.ndim}I", *arr.shape)
            + arr.tobytes())


def write_idx(path: Path, arr: np.ndarray, gz: bool = False) -> Path:
    data = idx_bytes(arr)
    if gz:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data, mtime=0)
    path.write_bytes(data)
    return path


def mnist_arrays(n: int, seed: int, classes: int = 3, size: int = 8):
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (n, size, size), dtype=np.uint8),
            (np.arange(n) % classes).astype(np.uint8))


def make_mnist(folder: Path, *, gz: bool = False, test: bool = True) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    x, y = mnist_arrays(30, 0)
    write_idx(folder / "train-images-idx3-ubyte", x, gz)
    write_idx(folder / "train-labels-idx1-ubyte", y, gz)
    out = {"x": x, "y": y}
    if test:
        tx, ty = mnist_arrays(9, 1)
        write_idx(folder / "t10k-images-idx3-ubyte", tx, gz)
        write_idx(folder / "t10k-labels-idx1-ubyte", ty, gz)
        out.update(tx=tx, ty=ty)
    return out


def cifar_records(n: int, seed: int) -> tuple[bytes, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, 3, 32, 32), dtype=np.uint8)
    y = (np.arange(n) % 10).astype(np.uint8)
    data = b"".join(bytes([int(label)]) + img.tobytes() for img, label in zip(x, y, strict=True))
    return data, x, y


def make_cifar(folder: Path, batches: int = 2, meta: bool = True) -> dict:
    folder.mkdir(parents=True, exist_ok=True)
    xs, ys = [], []
    for i in range(1, batches + 1):
        data, x, y = cifar_records(10, i)
        (folder / f"data_batch_{i}.bin").write_bytes(data)
        xs.append(x)
        ys.append(y)
    data, tx, ty = cifar_records(10, 99)
    (folder / "test_batch.bin").write_bytes(data)
    if meta:
        names = [f"c{i}" for i in range(10)]
        (folder / "batches.meta.txt").write_text("\n".join(names) + "\n\n")
    return {"x": np.concatenate(xs), "y": np.concatenate(ys), "tx": tx, "ty": ty}


def make_image_folder(folder: Path, *, classes=("cat", "dog"), per_class: int = 4,
                      size=(12, 10), mode: str = "L") -> None:
    rng = np.random.default_rng(0)
    for c in classes:
        (folder / c).mkdir(parents=True)
        for i in range(per_class):
            shape = (size[1], size[0]) if mode == "L" else (size[1], size[0], 3)
            Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8), mode).save(
                folder / c / f"{i}.png")


SEG_COLOURS = ((0, 0, 0), (255, 0, 0), (0, 128, 255))   # background, cat, dog as RGB


def seg_masks(n: int, seed: int, size=(12, 16), classes: int = 3) -> np.ndarray:
    """Masks [n, H, W] of 4×4 blocks of class indices, a few pixels 255 (ignore)."""
    rng = np.random.default_rng(seed)
    h, w = size
    masks = rng.integers(0, classes, (n, h // 4, w // 4)).repeat(4, 1).repeat(4, 2)
    masks = masks.astype(np.uint8)
    masks[:, 0, 0] = 255
    return masks


def _palette_png(path: Path, mask: np.ndarray) -> None:
    img = Image.fromarray(mask).convert("P")
    img.putpalette([v for c in (*SEG_COLOURS, *[(9, 9, 9)] * 253) for v in c])
    img.save(path)


def make_seg_folder(folder: Path, kind: str = "palette", *, counts=(4, 2),
                    size=(12, 16), seed: int = 0) -> dict:
    """A segmentation folder of ``kind`` "palette" (palette PNGs + classes.txt, train/
    and val/), "rgb" (RGB masks + labelmap.txt), "flat" (grey masks, no split, no
    names) or "voc" (PASCAL VOC 2012 layout). Returns the masks written per split."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed + 1)
    out: dict = {}
    splits = ("train",) if kind == "flat" else ("train", "val")
    for split, n in zip(splits, counts, strict=False):
        masks = seg_masks(n, seed + len(out), size)
        if kind == "rgb":
            masks[masks == 255] = 0          # RGB masks have no ignore colour here
        out[split] = masks
        if kind == "voc":
            img_dir, mask_dir = folder / "JPEGImages", folder / "SegmentationClass"
            sets = folder / "ImageSets" / "Segmentation"
            sets.mkdir(parents=True, exist_ok=True)
            stems = [f"2007_{split}_{i:03d}" for i in range(n)]
            (sets / f"{split}.txt").write_text("\n".join(stems) + "\n")
        else:
            base = folder if kind == "flat" else folder / split
            img_dir, mask_dir = base / "images", base / "masks"
            stems = [f"{i:03d}" for i in range(n)]
        img_dir.mkdir(parents=True, exist_ok=True)
        mask_dir.mkdir(parents=True, exist_ok=True)
        for stem, mask in zip(stems, masks, strict=True):
            pixels = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(img_dir / f"{stem}.{'jpg' if kind == 'voc' else 'png'}")
            if kind == "rgb":
                Image.fromarray(np.asarray(SEG_COLOURS, np.uint8)[mask]).save(
                    mask_dir / f"{stem}.png")
            elif kind == "flat":
                Image.fromarray(mask).save(mask_dir / f"{stem}.png")
            else:
                _palette_png(mask_dir / f"{stem}.png", mask)
    if kind == "palette":
        (folder / "classes.txt").write_text("background\ncat\ndog\n")
    if kind == "rgb":
        (folder / "labelmap.txt").write_text(
            "# label:color_rgb:parts:actions\n"
            + "".join(f"{name}:{r},{g},{b}::\n" for name, (r, g, b)
                      in zip(("background", "cat", "dog"), SEG_COLOURS, strict=True)))
    return out


def squares(n: int, seed: int, size: int = 16):
    """Grey noise with one bright square per image; its mask is class 1, the rest 0:
    the smallest segmentation set a network learns in a few epochs."""
    import torch

    from engine.data import ImageSet

    rng = np.random.default_rng(seed)
    x = rng.integers(0, 120, (n, 1, size, size)).astype(np.uint8)
    y = np.zeros((n, size, size), np.uint8)
    for i in range(n):
        side = int(rng.integers(4, 8))
        top, left = (int(v) for v in rng.integers(0, size - side + 1, 2))
        x[i, 0, top:top + side, left:left + side] = rng.integers(150, 256, (side, side))
        y[i, top:top + side, left:left + side] = 1
    return ImageSet(torch.from_numpy(x), torch.from_numpy(y))


def squares_dataset(train_count: int, val_count: int,
                    classes: tuple[str, ...] = ("background", "square")):
    """``squares`` as a segmentation Dataset (train seed 0, validation seed 1),
    normalised with the training images' mean and std."""
    from engine.data import Dataset

    train, val = squares(train_count, 0), squares(val_count, 1)
    mean = float(train.x.float().mean() / 255)
    std = float(train.x.float().std() / 255)
    data = Dataset("squares", train, val, list(classes), (mean,), (std,))
    data.task = "segmentation"  # the field engine.data's loaders set (SPEC §7)
    return data



def train_xo_classifier(out: Path):
    """The X-vs-O template trained one epoch on 160 `shapes` images (seed 3), its
    checkpoint in ``out``: the small trained classifier the predict tests share."""
    from importlib import resources

    from engine import Graph
    from engine.data import load_dataset
    from engine.train import Trainer
    from engine.train_config import TrainConfig

    text = (resources.files("resources") / "templates" / "x_vs_o.convas.json").read_text()
    data = load_dataset("shapes", classes=["X", "O"], options={"count": 160}, seed=3)
    cfg = TrainConfig.from_dict({"epochs": 1, "batch_size": 32, "lr": 3e-3, "device": "cpu"})
    trainer = Trainer(Graph.loads(text, "x_vs_o"), cfg, dataset=data, out_dir=out,
                      report_interval=0)
    trainer.run()
    return trainer

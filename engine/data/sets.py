"""The two containers every loader returns, and the one error they raise.

Images stay uint8 where the source is uint8 (a quarter of the memory of float32, and
the form in which ``Batches`` moves a whole set to the GPU once); conversion to float
and normalisation happen per batch on the device.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


class DatasetError(ValueError):
    """A dataset that cannot be found, read or used; the message says what to do."""


@dataclass
class ImageSet:
    """Images ``x`` [N, C, H, W] (uint8 0..255 or float32 0..1, on the CPU) and labels ``y``.

    ``y`` is int64 [N] for classification; for segmentation a uint8 mask [N, H, W] of
    class indices, the images' H×W, with 255 marking pixels to ignore; for detection
    float32 [N, M, 5], rows ``(class, x1, y1, x2, y2)`` in input pixels, M the most boxes
    an image of the set has (at least 1), unused rows class -1 and zeros.
    """

    x: torch.Tensor
    y: torch.Tensor

    def __len__(self) -> int:
        return int(self.x.shape[0])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        c, h, w = self.x.shape[1:]
        return int(c), int(h), int(w)


@dataclass
class Dataset:
    """A training and a validation split with their class names and normalisation.

    ``mean`` and ``std`` are per channel on the 0..1 scale, measured on ``train`` only,
    so validation images are normalised exactly as unseen images will be. ``task`` is
    what the labels mean: "classification" (one class an image), "segmentation"
    (one class a pixel) or "detection" (boxes), as the Output block's ``task`` (SPEC §7).
    """

    name: str
    train: ImageSet
    val: ImageSet
    classes: list[str]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    task: str = "classification"

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return self.train.image_shape

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def describe(self) -> str:
        """One line for the command line and the status bar:
        'mnist: 60,000 train / 10,000 val images, 1×28×28, 10 classes'; a
        segmentation or detection set ends with ', segmentation' or ', detection'."""
        c, h, w = self.image_shape
        kind = "" if self.task == "classification" else f", {self.task}"
        return (f"{self.name}: {len(self.train):,} train / {len(self.val):,} val images, "
                f"{c}×{h}×{w}, {self.num_classes} classes{kind}")


def channel_stats(x: torch.Tensor, chunk: int = 4096) -> tuple[tuple[float, ...],
                                                                 tuple[float, ...]]:
    """Per-channel mean and standard deviation of ``x`` on the 0..1 scale.

    Accumulated in float64 over chunks, so 50,000 CIFAR images need no float copy of
    the whole set. A constant channel gets std 1, so normalising never divides by zero.
    """
    c = int(x.shape[1])
    if x.shape[0] == 0:
        return (0.0,) * c, (1.0,) * c
    scale = 255.0 if x.dtype == torch.uint8 else 1.0
    total = torch.zeros(c, dtype=torch.float64)
    squares = torch.zeros(c, dtype=torch.float64)
    for start in range(0, int(x.shape[0]), chunk):
        part = x[start:start + chunk].to(torch.float64) / scale
        total += part.sum(dim=(0, 2, 3))
        squares += part.square().sum(dim=(0, 2, 3))
    count = x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    var = (squares / count - mean.square()).clamp_min(0.0)
    std = var.sqrt()
    std = torch.where(std > 1e-6, std, torch.ones_like(std))
    return tuple(float(v) for v in mean), tuple(float(v) for v in std)

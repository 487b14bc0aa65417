"""Mini-batches straight from tensors on the training device.

The small images Convas trains on fit on the device whole, so the set is moved there
once (as uint8 where it is uint8: a quarter of float32's memory) and each batch is
indexed, converted, augmented and normalised there. No DataLoader, no worker
processes, no per-batch copy from the host: on a GPU the input pipeline costs next to
nothing, and on a CPU it is a few vectorised tensor operations.

The random numbers of an epoch (order, crop offsets, flips) are drawn at once on the
CPU from ``seed`` and the epoch number, so a run repeats exactly on any device.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import torch

from .sets import ImageSet

IGNORE = 255  # a mask pixel with this class counts in no loss and no metric (SPEC §7)


@dataclass(frozen=True)
class Augment:
    """Training-time augmentation, applied per image on the device.

    ``crop_padding``: a random crop of the original size out of the image zero-padded
    (black) by that many pixels on each side, i.e. a random shift of up to that many
    pixels. ``hflip``: a horizontal mirror with probability 0.5.
    """

    crop_padding: int = 0
    hflip: bool = False

    def __post_init__(self) -> None:
        if self.crop_padding < 0:
            raise ValueError(f"crop_padding {self.crop_padding} must not be negative")

    @property
    def active(self) -> bool:
        return self.crop_padding > 0 or self.hflip


def random_crop(x: torch.Tensor, padding: int, dy: torch.Tensor,
                dx: torch.Tensor, fill: float = 0) -> torch.Tensor:
    """Crop [N, C, H, W] out of ``x`` padded by ``padding`` with ``fill`` (0: black; a
    mask uses IGNORE, so pixels shifted in from outside the image count for nothing),
    at offsets ``dy``, ``dx`` (each [N], in 0..2·padding; ``padding`` means no shift)."""
    n, c, h, w = x.shape
    padded = torch.nn.functional.pad(x, (padding, padding, padding, padding), value=fill)
    # Two gathers (rows, then columns) beat one 4-D advanced index by about 1.7× on a CPU.
    rows = dy[:, None] + torch.arange(h, device=x.device)            # [N, H]
    out = padded.gather(2, rows[:, None, :, None].expand(n, c, h, w + 2 * padding))
    cols = dx[:, None] + torch.arange(w, device=x.device)            # [N, W]
    return out.gather(3, cols[:, None, None, :].expand(n, c, h, w))


def flip_boxes(y: torch.Tensor, width: int, mirror: torch.Tensor) -> torch.Tensor:
    """Box rows [N, M, 5] of images mirrored where ``mirror`` [N] is true: x1, x2 become
    width − x2, width − x1. Padding rows (class −1, zeros) stay untouched."""
    flipped = y.clone()
    flipped[..., 1] = width - y[..., 3]
    flipped[..., 3] = width - y[..., 1]
    keep = (mirror[:, None] & (y[..., 0] >= 0))[..., None]
    return torch.where(keep, flipped, y)


def shift_boxes(y: torch.Tensor, padding: int, dy: torch.Tensor, dx: torch.Tensor,
                size: tuple[int, int]) -> torch.Tensor:
    """Box rows [N, M, 5] of images cropped as ``random_crop`` crops them: moved by
    (padding − dx, padding − dy), clipped to the image, and turned into padding rows
    (class −1, zeros) where nothing of a box is left inside."""
    h, w = size
    moved = y.clone()
    moved[..., 1::2] = (y[..., 1::2] + (padding - dx)[:, None, None]).clamp(0, w)
    moved[..., 2::2] = (y[..., 2::2] + (padding - dy)[:, None, None]).clamp(0, h)
    alive = ((y[..., 0] >= 0) & (moved[..., 3] > moved[..., 1])
             & (moved[..., 4] > moved[..., 2]))
    empty = torch.tensor([-1.0, 0.0, 0.0, 0.0, 0.0], dtype=y.dtype, device=y.device)
    return torch.where(alive[..., None], moved, empty)


class Batches:
    """Iterates (x, y) batches of an ImageSet held as tensors on ``device``: the whole set
    is moved to the device once (kept as uint8 if it is uint8) and each batch is
    indexed, converted to float32 0..1, augmented and normalised with mean/std there,
    with no DataLoader and no per-batch host→device copy.

    ``y`` is an int64 class index per image ([N]), or, for segmentation, a mask per
    image ([N, H, W], IGNORE where no class applies): masks stay uint8 on the device and
    become int64 per batch, flipped and cropped exactly as their images. For detection,
    float32 box rows per image ([N, M, 5], ``(class, x1, y1, x2, y2)``, class −1 for
    padding): they stay float32, mirrored and shifted with their images (a box shifted
    wholly out of the image becomes a padding row).

    Each ``iter()`` is one epoch with its own shuffle, deterministic from ``seed`` and
    the epoch number (``epoch`` counts the epochs started; set it to resume a run).

    ``rank`` of ``world_size`` processes (SPEC §10): ``batch_size`` is the global batch;
    every process draws the same order and augmentation, and yields only its own
    contiguous share of each global batch (shares differ by at most one image), so N
    processes together see exactly the batches one process sees.
    """

    def __init__(self, data: ImageSet, batch_size: int, *, mean: Sequence[float],
                 std: Sequence[float], device: torch.device | str = "cpu",
                 shuffle: bool = False, augment: Augment | None = None, seed: int = 0,
                 drop_last: bool = False, channels_last: bool = False, rank: int = 0,
                 world_size: int = 1):
        if batch_size < 1:
            raise ValueError(f"batch size {batch_size} must be at least 1")
        channels = data.image_shape[0]
        if len(mean) != channels or len(std) != channels:
            raise ValueError(f"mean and std need one value per channel ({channels}), got "
                             f"{len(mean)} and {len(std)}")
        self.device = torch.device(device)
        x = data.x if data.x.dtype == torch.uint8 else data.x.to(torch.float32)
        self.x = x.to(self.device)
        self.boxes = data.y.dim() == 3 and data.y.is_floating_point()
        self.masks = data.y.dim() == 3 and not self.boxes
        if self.masks and tuple(data.y.shape[1:]) != tuple(data.x.shape[2:]):
            raise ValueError(f"masks of {tuple(data.y.shape[1:])} pixels do not match the "
                             f"{tuple(data.x.shape[2:])} images")
        if self.boxes:
            self.y = data.y.to(self.device, torch.float32)
        else:
            self.y = (data.y.to(self.device) if self.masks and data.y.dtype == torch.uint8
                      else data.y.to(self.device, torch.int64))
        self.batch_size = int(batch_size)
        self.shuffle = shuffle
        self.augment = augment if augment is not None and augment.active else None
        self.seed = int(seed)
        self.drop_last = drop_last
        self.channels_last = channels_last
        self.epoch = 0
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} is not one of {world_size} processes")
        self.rank, self.world_size = int(rank), int(world_size)
        self._mean = torch.tensor(list(mean), dtype=torch.float32,
                                  device=self.device).view(1, -1, 1, 1)
        self._inv_std = 1.0 / torch.tensor(list(std), dtype=torch.float32,
                                           device=self.device).view(1, -1, 1, 1)

    def __len__(self) -> int:
        n = len(self.y)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def _to_unit(self, x: torch.Tensor) -> torch.Tensor:
        if x.dtype == torch.uint8:
            return x.to(torch.float32).mul_(1.0 / 255.0)
        return x.to(torch.float32)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """The same conversion and normalisation as the batches (no augmentation), for
        probe images: uint8 0..255 or float 0..1, [C, H, W] or [N, C, H, W]."""
        single = x.dim() == 3
        x = self._to_unit(x.to(self.device))
        out = (x[None] if single else x) - self._mean
        out = out * self._inv_std
        if self.channels_last:
            out = out.contiguous(memory_format=torch.channels_last)
        return out[0] if single else out

    def share(self, i: int) -> slice:
        """The positions in the epoch's order of this process's share of global batch
        ``i``: all of it on one process."""
        lo = i * self.batch_size
        count = min(lo + self.batch_size, len(self.y)) - lo
        base, extra = divmod(count, self.world_size)
        start = lo + self.rank * base + min(self.rank, extra)
        return slice(start, start + base + (1 if self.rank < extra else 0))

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        epoch = self.epoch
        self.epoch += 1
        n = len(self.y)
        generator = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        order = (torch.randperm(n, generator=generator) if self.shuffle
                 else torch.arange(n)).to(self.device)
        shifts = flips = None
        if self.augment is not None:
            p = self.augment.crop_padding
            if p > 0:
                shifts = torch.randint(0, 2 * p + 1, (n, 2), generator=generator).to(self.device)
            if self.augment.hflip:
                flips = (torch.rand(n, generator=generator) < 0.5).to(self.device)
        return self._batches(order, shifts, flips)

    def _batches(self, order: torch.Tensor, shifts: torch.Tensor | None,
                 flips: torch.Tensor | None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        for i in range(len(self)):
            part = self.share(i)
            idx = order[part]
            x = self._to_unit(self.x.index_select(0, idx))
            y = self.y.index_select(0, idx)
            if flips is not None:
                mirror = flips[part]
                x = torch.where(mirror.view(-1, 1, 1, 1), x.flip(3), x)
                if self.masks:
                    y = torch.where(mirror.view(-1, 1, 1), y.flip(2), y)
                elif self.boxes:
                    y = flip_boxes(y, x.shape[3], mirror)
            if shifts is not None:
                s = shifts[part]
                x = random_crop(x, self.augment.crop_padding, s[:, 0], s[:, 1])
                if self.masks:
                    y = random_crop(y[:, None], self.augment.crop_padding, s[:, 0], s[:, 1],
                                    fill=IGNORE)[:, 0]
                elif self.boxes:
                    y = shift_boxes(y, self.augment.crop_padding, s[:, 0], s[:, 1],
                                    (x.shape[2], x.shape[3]))
            if self.masks:
                y = y.to(torch.int64)  # augmented while still uint8: an eighth of the bytes
            x = (x - self._mean) * self._inv_std
            if self.channels_last:
                x = x.contiguous(memory_format=torch.channels_last)
            else:
                x = x.contiguous()
            yield x, y

"""Datasets for training: built-in, read from files, or downloaded on request (SPEC §6).

::

    from engine.data import Batches, load_dataset
    ds = load_dataset("shapes", classes=["X", "O"])
    for x, y in Batches(ds.train, 64, mean=ds.mean, std=ds.std, shuffle=True):
        ...

Loaders return uint8 (or float 0..1) tensors on the CPU with the normalisation
statistics of the training split; ``Batches`` moves a set to the training device once
and converts, augments and normalises each batch there. Importing this package reads
nothing and touches no network.
"""

from __future__ import annotations

from .batches import Augment, Batches
from .builtin import BUILTIN
from .fetch import DOWNLOADABLE, default_root, download
from .load import load_dataset
from .segfolder import VOC_CLASSES
from .sets import Dataset, DatasetError, ImageSet
from .shapes import CLASSES as SHAPES_CLASSES
from .shapes_seg import CLASSES as SHAPES_SEG_CLASSES

__all__ = [
    "BUILTIN", "DOWNLOADABLE", "SHAPES_CLASSES", "SHAPES_SEG_CLASSES", "VOC_CLASSES",
    "Augment", "Batches", "Dataset", "DatasetError", "ImageSet", "default_root", "download",
    "load_dataset",
]

"""Where the editor keeps its training runs: ``<user data folder>/runs/NAME-TIMESTAMP``.

A run's folder holds its checkpoint, which is what Export → Checkpoint copies and
what the feature maps of a finished run are computed from, so it must outlive the
session: a temporary folder is emptied by a reboot. Every run started in the editor
goes there, of saved designs too: the folder a design was opened from may be
read-only (a template) or shared, and one place is easy to find and to clean. The
folder is Qt's AppDataLocation (on Linux ``$XDG_DATA_HOME/Convas/Convas``, beside the
crash-recovery folder); ``convas train`` keeps writing ``runs/NAME-TIMESTAMP`` in
the current folder, with the same naming.
"""

from __future__ import annotations

import re
import time
from pathlib import Path


def run_stem(design_name: str) -> str:
    """``name-YYYYmmdd-HHMMSS``: the name of a run's folder, for the editor and the CLI."""
    slug = re.sub(r"[^A-Za-z0-9]+", "-", design_name).strip("-").lower() or "model"
    return f"{slug}-{time.strftime('%Y%m%d-%H%M%S')}"


def runs_folder() -> Path:
    """``<AppDataLocation>/runs`` (``~/.local/share/convas/runs`` if Qt has none)."""
    from PySide6.QtCore import QStandardPaths  # the command line imports run_stem only

    base =  QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return (Path(base) if base else Path.home() / ".local" / "share" / "convas") / "runs"


def new_run_folder(design_name: str) -> Path:
    """A fresh, empty folder for one run of ``design_name``: ``name-YYYYmmdd-HHMMSS``,
    with ``-2``, ``-3`` … when runs start within the same second."""
    parent = runs_folder()
    parent.mkdir(parents=True, exist_ok=True)
    stem = run_stem(design_name)
    for n in range(1, 1000):
        folder = parent / (stem if n == 1 else f"{stem}-{n}")
        try:
            folder.mkdir()
        except FileExistsError:
            continue
        return folder
    raise FileExistsError(f"{parent / stem}: a thousand runs started in one second")

"""Atomic output: write into a private folder beside the target, then move into place.

The ONNX exporter writes files by name (and, for models over 1.5 GiB, a second
``.data`` file beside the model), so the whole export is staged in a temporary folder
in the destination's own folder: same file system, so the final ``os.replace`` is
atomic per file, and a failure at any step (exporter, checker, full disk) removes the
folder and leaves an older file of the same name untouched.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from .errors import ExportError

NOTHING_LEFT = "nothing was written"


def os_error_message(path: Path, exc: OSError) -> str:
    """Why ``path`` could not be written, in words a user can act on."""
    folder = path.parent
    if exc.errno == errno.ENOENT and not folder.is_dir():
        why = f"the folder {folder} does not exist: create it or choose another"
    elif exc.errno in (errno.EACCES, errno.EPERM):
        why = f"no permission to write in {folder}: choose another folder"
    elif exc.errno == errno.ENOSPC:
        why = "the disk is full: free some space or choose another disk"
    elif exc.errno == errno.EROFS:
        why = f"{folder} is on a read-only file system: choose another folder"
    else:
        why = exc.strerror or str(exc)
    return f"cannot write {path}: {why}; {NOTHING_LEFT}"


@contextlib.contextmanager
def staged_output(path: Path) -> Iterator[Path]:
    """A fresh folder to write ``path.name`` (and companions) into; moved into place
    when the block succeeds, removed when it fails. OSErrors become ExportError."""
    if path.is_dir():
        raise ExportError(f"cannot write {path}: it is a folder; give a file name")
    try:
        stage = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp",
                                      dir=path.parent if str(path.parent) else "."))
    except OSError as exc:
        raise ExportError(os_error_message(path, exc)) from None
    try:
        try:
            yield stage
            written = sorted(stage.iterdir(), key=lambda f: f.name == path.name)  # model last
            for f in written:
                _fsync(f)
            for f in written:
                os.replace(f, path.parent / f.name)
        except OSError as exc:
            raise ExportError(os_error_message(path, exc)) from exc
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def write_text_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` (UTF-8) so that it is either complete or absent."""
    with staged_output(path) as stage:
        (stage / path.name).write_text(text, encoding="utf-8")


def _fsync(file: Path) -> None:
    with open(file, "rb") as fh:
        os.fsync(fh.fileno())

"""Atomic file writes: a file is either its old self or complete, never half written.

Designs, library blocks and checkpoints are written into a temporary file beside the
target (same folder, so the same file system), flushed to disk, then moved over the
target with ``os.replace``, which is atomic; a crash, a full disk or an exception
mid-write removes the temporary file and leaves the old file untouched. One writer,
here, so every file the engine saves gets the same guarantee.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from types import TracebackType
from typing import IO, Any


class AtomicFile:
    """``with AtomicFile(path) as fh: fh.write(...)`` replaces ``path`` when the block
    ends cleanly and leaves it untouched otherwise.

    The temporary file is created by the constructor, so a caller can tell "cannot
    write in this folder" (an OSError from the constructor) from "the write failed"
    (an OSError from the block or its end). ``binary`` opens it for bytes."""

    def __init__(self, path: str | os.PathLike, *, binary: bool = False) -> None:
        self.path = Path(path)
        fd, self._tmp = tempfile.mkstemp(prefix=f".{self.path.name}.", suffix=".tmp",
                                         dir=self.path.parent)
        try:
            self._fh: IO[Any] = (os.fdopen(fd, "wb") if binary
                                 else os.fdopen(fd, "w", encoding="utf-8"))
        except BaseException:
            os.close(fd)
            self._discard()
            raise

    def __enter__(self) -> IO[Any]:
        return self._fh.__enter__()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            try:
                if exc_type is None:
                    self._fh.flush()
                    os.fsync(self._fh.fileno())
            finally:
                self._fh.__exit__(exc_type, exc, tb)     # closes it
            if exc_type is None:
                os.replace(self._tmp, self.path)
                return
        except BaseException:
            self._discard()
            raise
        self._discard()

    def _discard(self) -> None:
        with contextlib.suppress(OSError):
            os.unlink(self._tmp)


def write_text_atomically(path: str | os.PathLike, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` so that it is either complete or unchanged;
    OSErrors propagate for the caller to word."""
    with AtomicFile(path) as fh:
        fh.write(text)

"""Crash recovery: unsaved work is autosaved to a private folder and offered back
after a crash.

Each running editor writes ``<folder>/<session>.convas.json`` (the graph, atomically)
and ``<session>.meta.json`` (original path, name, process id, time) while its design
has unsaved changes, and deletes both when the design is saved, closed or discarded.
Files left behind by a process that no longer runs are the crashed sessions; a file
whose process still runs belongs to another open window and is never offered.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QStandardPaths, QTimer

from engine import Graph

from .document import Document

GRAPH_SUFFIX = ".convas.json"
META_SUFFIX = ".meta.json"
META_FORMAT = "convas.recovery"
DEFAULT_INTERVAL_MS = 30_000


def default_folder() -> Path:
    """``<AppDataLocation>/recovery`` (set the application name before calling)."""
    base = QStandardPaths.writableLocation(QStandardPaths.StandardLocation.AppDataLocation)
    return Path(base or tempfile.gettempdir()) / "recovery"


@dataclass(frozen=True)
class RecoveredFile:
    """An autosave left by a session that ended without saving."""

    path: Path
    meta_path: Path
    original_path: str
    name: str
    pid: int | None
    time: float

    @property
    def when(self) -> str:
        """Local time of the autosave, for the "Restore?" question."""
        return time.strftime("%Y-%m-%d %H:%M", time.localtime(self.time))

    def load(self) -> Graph:
        return Graph.load(self.path)

    def discard(self) -> None:
        """Delete the autosave (after the user saved it or declined to restore it)."""
        for p in (self.path, self.meta_path):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()


class Recovery(QObject):
    """Autosaves ``doc`` every ``interval_ms`` while it has unsaved changes."""

    def __init__(self, doc: Document, folder: str | os.PathLike | None = None,
                 interval_ms: int = DEFAULT_INTERVAL_MS, parent: QObject | None = None) -> None:
        super().__init__(parent if parent is not None else doc)
        self.doc = doc
        self.folder = Path(folder) if folder is not None else default_folder()
        self.session = uuid.uuid4().hex
        self.graph_path = self.folder / f"{self.session}{GRAPH_SUFFIX}"
        self.meta_path = self.folder / f"{self.session}{META_SUFFIX}"
        self._written_revision: int | None = None
        self.timer = QTimer(self)
        self.timer.setInterval(interval_ms)
        self.timer.timeout.connect(self.autosave)
        self.timer.start()
        # Saved, or undone back to the saved state: the file on disk has it all.
        doc.dirty_changed.connect(self._on_dirty)

    def autosave(self) -> bool:
        """Write the design if it changed since the last autosave; True when written.

        A failure (disk full, folder not writable) is not the user's problem now: it
        is retried at the next tick and never interrupts editing.
        """
        doc = self.doc
        if not doc.is_dirty:
            return False
        if self._written_revision == doc.revision and self.graph_path.exists():
            return False
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            # Meta first: a graph file is never left without its owner's pid.
            _write_json(self.meta_path, {
                "format": META_FORMAT, "version": 1, "original_path": doc.path,
                "name": Path(doc.path).name if doc.path else doc.graph.name,
                "pid": os.getpid(), "start": _start_token(os.getpid()), "time": time.time(),
            })
            doc.graph.save(self.graph_path)
        except OSError as exc:
            sys.stderr.write(f"convas: autosave to {self.folder} failed: {exc}\n")
            return False
        self._written_revision = doc.revision
        return True

    def discard(self) -> None:
        """Delete this session's autosave (after a save, on close or on New/Open)."""
        for p in (self.graph_path, self.meta_path):
            with contextlib.suppress(FileNotFoundError):
                p.unlink()
        self._written_revision = None

    def _on_dirty(self, dirty: bool) -> None:
        if not dirty:
            self.discard()

    def stop(self) -> None:
        self.timer.stop()

    @staticmethod
    def pending(folder: str | os.PathLike | None = None) -> list[RecoveredFile]:
        """Autosaves of sessions whose process has ended, newest first."""
        folder = Path(folder) if folder is not None else default_folder()
        found = []
        for graph_path in folder.glob(f"*{GRAPH_SUFFIX}"):
            session = graph_path.name[: -len(GRAPH_SUFFIX)]
            meta_path = folder / f"{session}{META_SUFFIX}"
            meta = _read_meta(meta_path)
            pid = meta.get("pid")
            pid = pid if isinstance(pid, int) and not isinstance(pid, bool) else None
            if pid is not None and _alive(pid, meta.get("start")):
                continue
            stamp = meta.get("time")
            if not isinstance(stamp, int | float) or isinstance(stamp, bool):
                with contextlib.suppress(OSError):
                    stamp = graph_path.stat().st_mtime
            original = meta.get("original_path")
            name = meta.get("name")
            found.append(RecoveredFile(
                graph_path, meta_path, original if isinstance(original, str) else "",
                name if isinstance(name, str) and name else session, pid,
                float(stamp) if isinstance(stamp, int | float) else 0.0))
        found.sort(key=lambda r: r.time, reverse=True)
        return found

    @staticmethod
    def restore(doc: Document, recovered: RecoveredFile) -> None:
        """Load an autosave into ``doc`` as unsaved changes to its original file.

        The autosave is deleted once the user saves (or replaces the design, having
        been asked about the unsaved changes); until then it survives another crash.
        Raises ``engine.GraphFileError`` when the autosave is unreadable.
        """
        doc.open_recovered(recovered.load(), recovered.original_path)
        _DiscardWhenClean(doc, recovered)


class _DiscardWhenClean(QObject):
    """Deletes a restored autosave the first time its document becomes clean.

    Afterwards it stays, disconnected, as a small child of the document: deleting
    itself with ``deleteLater`` from inside the signal crashed a later event loop
    (PySide 6.11, seen in the test suite).
    """

    def __init__(self, doc: Document, recovered: RecoveredFile) -> None:
        super().__init__(doc)
        self.doc, self.recovered = doc, recovered
        doc.dirty_changed.connect(self._on_dirty)

    def _on_dirty(self, dirty: bool) -> None:
        if dirty:
            return
        self.recovered.discard()
        self.doc.dirty_changed.disconnect(self._on_dirty)


def _write_json(path: Path, data: dict[str, Any]) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(data, fh)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _read_meta(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # no owner known: an orphan, offered like a crashed session
    return data if isinstance(data, dict) else {}


# ---- is the writer still running? ------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """(state, start time) from Linux ``/proc``; None where there is no procfs."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = text[text.rfind(")") + 2:].split()  # the name in (...) may hold spaces
    return (fields[0], fields[19]) if len(fields) > 19 else None


def _start_token(pid: int) -> str | None:
    """When the process started, so that a reused pid is not taken for the writer."""
    stat = _proc_stat(pid)
    return stat[1] if stat else None


def _alive(pid: int, start: Any) -> bool:
    if pid == os.getpid():
        return True
    if sys.platform == "win32":
        return _alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # exists, owned by someone else
    except OSError:
        return False
    stat = _proc_stat(pid)
    if stat is None:
        return True
    state, started = stat
    if state in ("Z", "X"):
        return False  # killed, not yet reaped by its parent
    return not (isinstance(start, str) and start != started)


def _alive_windows(pid: int) -> bool:  # pragma: no cover - exercised on Windows only
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    try:
        code = ctypes.c_ulong()
        if not kernel32.GetExitCodeProcess(handle, ctypes.byref(code)):
            return True
        return code.value == 259  # STILL_ACTIVE
    finally:
        kernel32.CloseHandle(handle)

"""Crash recovery: a killed editor's unsaved design is offered back, exactly; a running
editor's autosave never is; saving or discarding leaves no files behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
from doc_helpers import norm

from designer.document import Document
from designer.recovery import META_SUFFIX, Recovery
from engine import Graph, GraphFileError

ROOT = Path(__file__).resolve().parents[2]
LENET = ROOT / "resources" / "templates" / "lenet5.convas.json"

CRASHING_EDITOR = textwrap.dedent("""
    import json, os, signal, sys
    from PySide6.QtCore import QTimer
    from PySide6.QtGui import QGuiApplication
    from designer.document import Document
    from designer.recovery import Recovery

    source, folder, expected = sys.argv[1:4]
    app = QGuiApplication([])
    doc = Document()
    doc.open(source)
    doc.set_param("c1", "out_channels", 8)
    doc.add_block_after("Dropout", "f5")
    doc.move({"c1": (40, 100)})
    doc.remove([], [("f7", "out", 0)])
    with open(expected, "w") as fh:
        json.dump(doc.to_dict(), fh)
    recovery = Recovery(doc, folder, interval_ms=50)

    def crash_once_autosaved():
        if recovery.graph_path.exists():
            os.kill(os.getpid(), signal.SIGKILL)

    poll = QTimer()
    poll.timeout.connect(crash_once_autosaved)
    poll.start(10)
    QTimer.singleShot(20000, lambda: sys.exit(3))
    app.exec()
""")


@pytest.fixture
def lenet_file(tmp_path) -> Path:
    path = tmp_path / "work" / "lenet.convas.json"
    path.parent.mkdir()
    shutil.copy(LENET, path)
    return path


@pytest.fixture
def doc(qapp, lenet_file) -> Document:
    d = Document()
    d.open(lenet_file)
    return d


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir()) if folder.exists() else []


@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs SIGKILL")
def test_a_killed_editor_s_work_is_offered_back_exactly(qapp, tmp_path, lenet_file):
    folder = tmp_path / "recovery"
    expected = tmp_path / "expected.json"
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-c", CRASHING_EDITOR, str(lenet_file), str(folder),
                           str(expected)], env=env, cwd=ROOT, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == -signal.SIGKILL, proc.stderr

    pending = Recovery.pending(folder)
    assert len(pending) == 1
    found = pending[0]
    assert found.original_path == str(lenet_file)
    assert found.name == "lenet.convas.json" and found.pid is not None
    assert abs(found.time - time.time()) < 60 and found.when

    doc = Document()
    Recovery.restore(doc, found)
    edited = json.loads(expected.read_text())
    assert norm(doc.to_dict()) == norm(edited)
    assert norm(doc.to_dict()) != norm(Graph.load(lenet_file).to_dict())
    assert doc.is_dirty and doc.path == str(lenet_file)
    assert doc.title() == "lenet.convas.json *"
    assert doc.undo_stack.count() == 0
    assert found.path.exists()  # kept until the user has saved: it survives another crash

    doc.save()
    assert not doc.is_dirty
    assert files(folder) == []
    assert norm(Graph.load(lenet_file).to_dict()) == norm(edited)


def test_autosave_writes_only_unsaved_changes_and_saving_removes_it(doc, tmp_path):
    folder = tmp_path / "recovery"
    rec = Recovery(doc, folder, interval_ms=60_000)
    assert rec.autosave() is False and files(folder) == []  # nothing unsaved
    doc.set_param("c1", "out_channels", 9)
    assert rec.autosave() is True
    assert files(folder) == sorted([rec.graph_path.name, rec.meta_path.name])
    assert norm(Graph.load(rec.graph_path).to_dict()) == norm(doc.to_dict())
    meta = json.loads(rec.meta_path.read_text())
    assert meta["pid"] == os.getpid() and meta["original_path"] == doc.path
    assert rec.autosave() is False  # unchanged since
    doc.move({"c1": (3, 3)})
    assert rec.autosave() is True
    assert Graph.load(rec.graph_path).pos_of("c1") == (3, 3)
    doc.save()
    assert files(folder) == []


def test_undo_back_to_the_saved_state_removes_the_autosave(doc, tmp_path):
    rec = Recovery(doc, tmp_path / "r", interval_ms=60_000)
    doc.set_param("c1", "out_channels", 9)
    rec.autosave()
    doc.undo()
    assert files(tmp_path / "r") == []


def test_discard_removes_the_files(doc, tmp_path):
    rec = Recovery(doc, tmp_path / "r", interval_ms=60_000)
    doc.set_param("c1", "out_channels", 9)
    rec.autosave()
    rec.discard()
    assert files(tmp_path / "r") == []
    assert rec.autosave() is True  # still unsaved: written again at the next tick


def test_the_timer_autosaves(doc, tmp_path, qtbot):
    rec = Recovery(doc, tmp_path / "r", interval_ms=20)
    doc.set_param("c1", "out_channels", 9)
    qtbot.waitUntil(rec.graph_path.exists, timeout=5000)
    assert rec.timer.interval() == 20


def test_an_unwritable_folder_does_not_interrupt_editing(doc, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    rec = Recovery(doc, blocker / "recovery", interval_ms=60_000)
    doc.set_param("c1", "out_channels", 9)
    assert rec.autosave() is False


def test_a_running_editor_s_autosave_is_not_offered(doc, tmp_path):
    folder = tmp_path / "r"
    rec = Recovery(doc, folder, interval_ms=60_000)
    doc.set_param("c1", "out_channels", 9)
    rec.autosave()
    assert Recovery.pending(folder) == []  # this very process


def _fake_autosave(folder: Path, session: str, pid: int, when: float,
                   start: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    graph = folder / f"{session}.convas.json"
    shutil.copy(LENET, graph)
    meta = {"format": "convas.recovery", "version": 1, "original_path": "",
            "name": session, "pid": pid, "time": when, "start": start}
    (folder / f"{session}{META_SUFFIX}").write_text(json.dumps(meta))
    return graph


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX process handling")
def test_offered_only_once_the_writer_has_ended(qapp, tmp_path):
    folder = tmp_path / "r"
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        _fake_autosave(folder, "other", other.pid, time.time())
        assert Recovery.pending(folder) == []
        other.kill()
        time.sleep(0.2)  # killed but not yet reaped: a zombie is not running either
        assert [r.name for r in Recovery.pending(folder)] == ["other"]
    finally:
        other.kill()
        other.wait()
    assert [r.name for r in Recovery.pending(folder)] == ["other"]


@pytest.mark.skipif(not Path(f"/proc/{os.getpid()}/stat").exists(), reason="needs /proc")
def test_a_reused_pid_is_not_taken_for_the_writer(qapp, tmp_path):
    folder = tmp_path / "r"
    _fake_autosave(folder, "old", os.getppid(), time.time(), start="1")
    assert [r.name for r in Recovery.pending(folder)] == ["old"]


def test_pending_lists_newest_first_and_restore_then_decline(qapp, tmp_path):
    folder = tmp_path / "r"
    dead = _dead_pid()
    _fake_autosave(folder, "older", dead, 1000.0)
    _fake_autosave(folder, "newer", dead, 2000.0)
    orphan = folder / "orphan.convas.json"  # no meta: owner unknown, offered
    shutil.copy(LENET, orphan)
    os.utime(orphan, (1500.0, 1500.0))
    pending = Recovery.pending(folder)
    assert [r.name for r in pending] == ["newer", "orphan", "older"]
    doc = Document()
    Recovery.restore(doc, pending[0])
    assert doc.is_dirty and doc.path == "" and doc.title() == "LeNet-5 *"
    doc.new()  # the user discarded the restored work (the window asked first)
    assert not pending[0].path.exists()
    pending[1].discard()
    assert [r.name for r in Recovery.pending(folder)] == ["older"]
    assert Recovery.pending(tmp_path / "missing") == []


def test_a_broken_autosave_raises_on_restore_and_leaves_the_document(doc, tmp_path):
    folder = tmp_path / "r"
    graph = _fake_autosave(folder, "broken", _dead_pid(), 1.0)
    graph.write_text("{")
    before = norm(doc.to_dict())
    with pytest.raises(GraphFileError):
        Recovery.restore(doc, Recovery.pending(folder)[0])
    assert norm(doc.to_dict()) == before and not doc.is_dirty


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid

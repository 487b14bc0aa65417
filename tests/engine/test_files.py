"""engine.files: the one atomic writer behind designs, library blocks and checkpoints."""

from __future__ import annotations

import os

import pytest

from engine.files import AtomicFile, write_text_atomically


def test_text_replaces_the_file_and_leaves_nothing_else(tmp_path):
    path = tmp_path / "a.json"
    path.write_text("old", encoding="utf-8")
    write_text_atomically(path, "new ✓")
    assert path.read_text(encoding="utf-8") == "new ✓"
    assert os.listdir(tmp_path) == ["a.json"]


def test_an_error_in_the_block_keeps_the_old_file_and_removes_the_temporary(tmp_path):
    path = tmp_path / "model.pt"
    path.write_bytes(b"old")
    with pytest.raises(RuntimeError, match="pickling"), AtomicFile(path, binary=True) as fh:
        fh.write(b"half")
        raise RuntimeError("pickling failed")
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["model.pt"]


def test_a_missing_folder_fails_before_the_block_runs(tmp_path):
    with pytest.raises(FileNotFoundError):
        AtomicFile(tmp_path / "nowhere" / "a.json")
    assert os.listdir(tmp_path) == []

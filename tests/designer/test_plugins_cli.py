"""Plug-in blocks on the command line (SPEC §9): every command loads them, names each
broken one on standard error and goes on; a design using one that is not loaded is
refused with exit 1, the block type and the folders searched."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from plugin_samples import BROKEN_REASONS, isolate, plugin_graph, write_broken, write_good

from designer.cli import main
from engine.plugins import load_plugins, unload_plugins

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def plugin_folders(tmp_path):
    yield {"good": write_good(tmp_path / "good"), "broken": write_broken(tmp_path / "broken"),
           "home": tmp_path / "home"}
    unload_plugins()  # main() loaded them: leave the catalogue as other tests expect


def _design(tmp_path: Path, monkeypatch, folders) -> str:
    """The sample design's file (written with the good plug-ins loaded)."""
    isolate(monkeypatch, folders["home"], folders["good"])
    load_plugins()
    path = tmp_path / "plugin_net.convas.json"
    plugin_graph().save(path)
    unload_plugins()
    return str(path)


def _assert_broken_named(err: str, folders) -> None:
    for name, reason in BROKEN_REASONS.items():
        line = next((x for x in err.splitlines() if str(folders["broken"] / name) in x), None)
        assert line is not None, f"{name} is not named in:\n{err}"
        assert line.startswith("convas: plug-in not loaded: ") and reason in line, line


def test_every_command_names_broken_plugins_and_goes_on(tmp_path, monkeypatch, capsys,
                                                        plugin_folders):
    design = _design(tmp_path, monkeypatch, plugin_folders)
    isolate(monkeypatch, plugin_folders["home"], plugin_folders["broken"],
            plugin_folders["good"])
    assert main(["summary", design, "--json"]) == 0
    captured = capsys.readouterr()
    _assert_broken_named(captured.err, plugin_folders)
    nodes = {n["id"]: n for n in json.loads(captured.out)["nodes"]}
    assert nodes["gn1"]["type"] == "GroupNorm" and nodes["gn1"]["output_shape"] == [8, 32, 32]
    assert nodes["gate"]["params"] == 72 and nodes["gate"]["macs"] == 8 * 8 * 16 * 16
    assert nodes["pool1"]["receptive_field"] == 5
    # the other commands report them too before doing their own work (here: refusing a
    # file that does not exist)
    for command in (["train", str(tmp_path / "missing.json")],
                    ["export", str(tmp_path / "missing.json"), "-o", str(tmp_path / "m.py")]):
        assert main(command) == 1
        err = capsys.readouterr().err
        _assert_broken_named(err, plugin_folders)
        assert "missing.json" in err


def test_py_export_from_the_command_line_carries_the_plugin(tmp_path, monkeypatch, capsys,
                                                            plugin_folders):
    design = _design(tmp_path, monkeypatch, plugin_folders)
    isolate(monkeypatch, plugin_folders["home"], plugin_folders["good"])
    out = tmp_path / "net.py"
    assert main(["export", design, "-o", str(out)]) == 0, capsys.readouterr().err
    source = out.read_text(encoding="utf-8")
    assert "def GatedSum(in_shapes, bias):" in source and "@block" not in source


def test_a_design_with_a_plugin_that_is_not_loaded_exits_1(tmp_path, monkeypatch,
                                                           plugin_folders):
    design = _design(tmp_path, monkeypatch, plugin_folders)
    empty = tmp_path / "empty"
    empty.mkdir()
    isolate(monkeypatch, plugin_folders["home"], empty)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    for command in (["summary", design], ["export", design, "-o", str(tmp_path / "x.onnx")],
                    ["train", design, "--epochs", "1"]):
        result = subprocess.run([sys.executable, "-m", "designer", *command], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=120)
        assert result.returncode == 1, (command, result.stderr)
        assert "Traceback" not in result.stderr
        for needed in ("unknown block type 'GroupNorm'", str(empty),
                       str(plugin_folders["home"] / ".config" / "convas" / "blocks")):
            assert needed in result.stderr, (command, needed, result.stderr)

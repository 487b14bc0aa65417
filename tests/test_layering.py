"""Layering rules (DESIGN.md): engine imports no Qt; widgets import no torch.

Each check runs in a fresh interpreter whose import system refuses the forbidden
packages, so an indirect import anywhere in the package tree fails the test.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

BLOCKER = textwrap.dedent("""
    import importlib.abc, pkgutil, sys
    BLOCKED = {blocked!r}
    class Block(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError(f"layering: {{name}} must not be imported here")
    sys.meta_path.insert(0, Block())
    import {package}
    for mod in pkgutil.walk_packages({package}.__path__, "{package}."):
        if mod.name not in {skip!r}:
            __import__(mod.name)
    print("ok")
""")


def _run(package: str, blocked: set[str], skip: set[str] = frozenset()) -> None:
    code = BLOCKER.format(package=package, blocked=sorted(blocked), skip=sorted(skip))
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=300, env={"QT_QPA_PLATFORM": "offscreen",
                                           "PATH": "/usr/bin:/bin"})
    assert run.returncode == 0 and run.stdout.strip() == "ok", run.stderr[-2000:]


@pytest.mark.parametrize("blocked", [{"PySide6", "pyqtgraph", "shiboken6", "widgets", "designer"}])
def test_engine_imports_no_qt(blocked):
    _run("engine", blocked)


def test_widgets_import_no_torch():
    _run("widgets", {"torch", "designer"})


def test_blocker_really_blocks():
    """The harness itself must be able to fail, or the two tests above prove nothing."""
    with pytest.raises(AssertionError):
        _run("designer", {"PySide6"}, skip={"designer.__main__"})


def test_no_module_of_the_application_grows_past_600_lines():
    """A file past that asks to be split along a seam (the developers' guide)."""
    root = Path(__file__).resolve().parents[1]
    long = {str(f.relative_to(root)): n for package in ("engine", "widgets", "designer")
            for f in (root / package).rglob("*.py")
            if (n := len(f.read_text(encoding="utf-8").splitlines())) > 600}
    assert not long, f"split these files: {long}"

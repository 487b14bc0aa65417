"""How the editor copes with a 1,000-block graph (offscreen).

Prints (a) the time to open a 1,000-block file in the main window until the canvas is
painted, and (b) the time from a parameter change (as the inspector makes it) to a
repainted canvas, median over many edits, at the zoom a user would have (the edited
block on screen at 100 %) and with the whole graph in view. Goals: (a) < 2 s, (b) < 50 ms.

    QT_QPA_PLATFORM=offscreen python benchmarks/editor_scale.py [--blocks 1000] [--edits 40]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks")]

from analysis_speed import build_graph  # noqa: E402
from PySide6.QtCore import QSettings  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from designer.mainwindow import MainWindow  # noqa: E402
from engine.layout import layered_layout  # noqa: E402


def _verdict(ms: float, goal: float) -> str:
    return "OK" if ms < goal else "SLOW"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--blocks", type=int, default=1000)
    ap.add_argument("--edits", type=int, default=40)
    args = ap.parse_args()
    app = QApplication.instance() or QApplication(sys.argv[:1])
    tmp = Path(tempfile.mkdtemp(prefix="convas-bench-"))
    graph, convs = build_graph(args.blocks)
    for node, pos in layered_layout(graph).items():
        graph.set_pos(node, pos)
    path = tmp / "big.convas.json"
    graph.save(path)

    window = MainWindow(settings=QSettings(str(tmp / "s.ini"), QSettings.Format.IniFormat),
                        recovery_dir=str(tmp / "recovery"))
    window.resize(1600, 1000)
    window.show()
    app.processEvents()
    start = time.perf_counter()
    assert window.open_file(str(path), ask=False)
    window.editor.flush()
    window.canvas.viewport().repaint()
    opened = time.perf_counter() - start
    assert len(window.doc.graph) == len(graph) and not window.doc.report.errors

    node = convs[len(convs) // 2]
    results = {}
    for label, frame in (("block at 100 %", lambda: _zoom_on(window, node)),
                         ("whole graph in view", window.canvas.fit_all)):
        frame()
        app.processEvents()
        samples = []
        for i in range(args.edits):
            value = 48 if i % 2 == 0 else 32
            t0 = time.perf_counter()
            window.doc.set_param(node, "out_channels", value)
            window.canvas.viewport().repaint()
            samples.append(time.perf_counter() - t0)
            assert window.canvas.node_item(node).view.shape.startswith(f"[{value},")
            window.doc.end_move()  # a new undo step each time, as separate edits are
        results[label] = 1000 * statistics.median(samples)
        app.processEvents()

    print(f"open a {len(graph)}-block graph until painted: {opened:.2f} s (goal < 2 s) "
          f"{_verdict(opened, 2)}")
    for label, ms in results.items():
        print(f"parameter change to repainted canvas ({label}): {ms:.1f} ms (goal < 50 ms) "
              f"{_verdict(ms, 50)}")
    window.doc.undo_stack.setClean()
    window.close()


def _zoom_on(window: MainWindow, node: str) -> None:
    canvas = window.canvas
    canvas.select([node])
    canvas.frame_selection()
    canvas.zoom_by(1.0 / canvas.current_scale())


if __name__ == "__main__":
    main()
